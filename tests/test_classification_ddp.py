"""``python -m classification`` under ``torchrun --nproc_per_node=2`` (gloo, CPU).

Both ranks end with bit-identical pruner state (Z, Lambda, W_prev, s, k, history), masks and
weights, and match a single-process run with the same global batch to float32 rounding: not
bit for bit, since DDP sums two half-batch gradients where one process sums the whole batch,
and the batch-norm statistics come from all-reduced partial sums; the order of float additions
differs, nothing else. The runs use SGD: with Adam this tiny ResNet amplifies rounding
differences to ~1e-2 within a dozen steps, and so does a one-process run with 2 threads instead
of 1 (measured), which would hide a real error behind a loose tolerance.

This file is also the worker that torchrun starts: ``python tests/test_classification_ddp.py
OUT ARGS...`` runs the entry point with ARGS and saves each rank's final pruner and model state
to ``OUT/rank<r>.pt``.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--table", "table7", "--profile", "smoke", "--method", "slr", "--seed", "0", "--no-progress", "--threads", "1",
        *sum((["--set", s] for s in ("model.width=0.0625", "dense.epochs=1", "pruning.epochs=2", "pruning.retrain_epochs=1",
                                      "batch_size=64", "rates=[4]", "data.image_size=8", "data.train_size=256",
                                      "data.test_size=128", "optimizer.name=sgd", "optimizer.lr=0.01",
                                      "dense.optimizer.name=sgd", "dense.optimizer.lr=0.05")), [])]
RUN = Path("runs") / "r18_cifar" / "slr_4x_seed0"


def _record_and_run(out: Path, argv: list[str]) -> None:
    """Run the entry point, keeping the pruner and model the pipeline built, and save their state."""
    sys.path.insert(0, str(ROOT))
    import core.harness.pipeline as pipeline
    from core.harness import distributed

    built = []
    build = pipeline.build_pruner

    def recording(method, model, config, **hyper):
        built.append((build(method, model, config, **hyper), model))
        return built[-1][0]

    pipeline.build_pruner = recording
    from classification.__main__ import main

    main(argv)
    pruner, model = built[-1]
    torch.save({"pruner": pruner.state_dict(), "model": model.state_dict(), "world": distributed.world_size()},
               out / f"rank{distributed.rank()}.pt")


def _run(prefix: list[str], out: Path) -> float:
    out.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    started = time.time()
    done = subprocess.run([*prefix, __file__, str(out), *ARGS, "--out", str(out / "runs")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return time.time() - started


def _tensors(state, prefix=""):
    """Flatten nested dicts/lists into ``{path: value}``."""
    if isinstance(state, dict):
        return {k: v for key, value in state.items() for k, v in _tensors(value, f"{prefix}{key}.").items()}
    if isinstance(state, (list, tuple)):
        return {k: v for i, value in enumerate(state) for k, v in _tensors(value, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): state}


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available in this build")
def test_torchrun_ranks_agree_and_match_one_process(tmp_path):
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"], tmp_path / "ddp")
    _run([sys.executable], tmp_path / "single")
    rank0, rank1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    single = torch.load(tmp_path / "single" / "rank0.pt", weights_only=False)
    assert (rank0["world"], rank1["world"], single["world"]) == (2, 2, 1)

    # every rank holds the same pruner state and weights, bit for bit, with no communication but DDP's
    a, b = _tensors({"pruner": rank0["pruner"], "model": rank0["model"]}), _tensors({"pruner": rank1["pruner"], "model": rank1["model"]})
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key

    # and the state of one process with the same global batch, to float32 rounding
    p2, p1 = rank0["pruner"], single["pruner"]
    assert p2["k"] == p1["k"] == 2
    for field in ("Z", "dual", "W_prev"):
        for name in p1[field]:
            assert torch.allclose(p2[field][name], p1[field][name], rtol=0, atol=1e-5), (field, name)  # measured 3e-7
    assert p2["s"] == pytest.approx(p1["s"], rel=1e-5)
    for r2, r1 in zip(p2["history"], p1["history"]):
        assert r2["condition"] == r1["condition"]
        assert r2["loss"] == pytest.approx(r1["loss"], rel=1e-5)  # the surrogate condition saw the global-batch loss
    for name, value in single["model"].items():
        assert torch.allclose(rank0["model"][name].to(value.dtype), value, rtol=0, atol=1e-4), name  # measured 3e-6

    ckpt2 = torch.load(tmp_path / "ddp" / RUN / "checkpoint.pt", weights_only=False)
    ckpt1 = torch.load(tmp_path / "single" / RUN / "checkpoint.pt", weights_only=False)
    assert ckpt2["masks"].keys() == ckpt1["masks"].keys()
    assert all(torch.equal(ckpt2["masks"][n], ckpt1["masks"][n]) for n in ckpt1["masks"])  # the same weights pruned
    for name, mask in ckpt1["masks"].items():
        assert torch.equal(rank1["model"][name] != 0, mask.to(torch.bool))

    res2, res1 = (json.loads((tmp_path / d / RUN / "results.json").read_text()) for d in ("ddp", "single"))
    for stage, metrics in res1["metrics"].items():
        assert res2["metrics"][stage]["top1"] == metrics["top1"], stage  # evaluation sums reduced over ranks
        assert res2["metrics"][stage]["loss"] == pytest.approx(metrics["loss"], rel=1e-5), stage
    assert res2["achieved_compression"] == res1["achieved_compression"]
    # only rank 0 wrote logs: one TensorBoard event file
    assert len(list((tmp_path / "ddp" / RUN / "tensorboard").glob("events.*"))) == 1


if __name__ == "__main__":
    _record_and_run(Path(sys.argv[1]), sys.argv[2:])
