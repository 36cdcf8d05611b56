"""python -m classification killed with SIGKILL in the middle of its SLR stage resumes with
--resume to the results of an uninterrupted run, bit for bit (CPU)."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from core.harness.results import read_results, reproducible_part

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--table", "table7", "--profile", "smoke", "--method", "slr", "--seed", "0", "--no-progress", "--threads", "1",
        *sum((["--set", s] for s in ("model.width=0.0625", "dense.epochs=1", "pruning.epochs=3", "pruning.retrain_epochs=1",
                                      "batch_size=64", "rates=[4]", "data.image_size=8", "data.train_size=256",
                                      "data.test_size=128")), [])]
RUN = Path("runs") / "r18_cifar" / "slr_4x_seed0"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "classification", *ARGS, "--out", str(out / "runs")]



def test_sigkill_mid_pruning_then_resume_equals_uninterrupted(tmp_path, sigkill_once_written):
    full = subprocess.run(_command(tmp_path / "full"), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-3000:]

    checkpoint = tmp_path / "killed" / RUN / "checkpoint.pt"
    assert sigkill_once_written(_command(tmp_path / "killed"), checkpoint, cwd=ROOT, env=ENV) == -signal.SIGKILL
    state = torch.load(checkpoint, weights_only=False)["state"]
    assert state["stage"] == "prune" and 1 <= state["epoch"] < 3  # killed inside the SLR stage
    assert not (tmp_path / "killed" / RUN / "results.json").exists()

    resumed = subprocess.run([*_command(tmp_path / "killed"), "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after_resume = reproducible_part(read_results(tmp_path / "killed" / RUN / "results.json"))
    assert after_resume == reproducible_part(read_results(tmp_path / "full" / RUN / "results.json"))
    final = [torch.load(d / RUN / "checkpoint.pt", weights_only=False) for d in (tmp_path / "killed", tmp_path / "full")]
    for name, value in final[1]["model"].items():
        assert torch.equal(final[0]["model"][name], value), name
    for field in ("Z", "dual"):
        for name, value in final[1]["pruner"][field].items():
            assert torch.equal(final[0]["pruner"][field][name], value), (field, name)
