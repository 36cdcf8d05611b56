"""A real run killed with SIGKILL mid-training resumes to the numbers of an uninterrupted run."""
import signal
import subprocess
import sys

from core.harness.results import read_results, reproducible_part

ARGS = ["--epochs", "6", "--retrain-epochs", "1", "--no-progress"]


def run(out, *extra):
    return subprocess.run([sys.executable, "-m", "examples.digits_demo", "--out", str(out), *ARGS, *extra], capture_output=True, text=True, timeout=600)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, sigkill_once_written):
    full = run(tmp_path / "full")
    assert full.returncode == 0, full.stderr
    checkpoint = tmp_path / "killed" / "slr" / "checkpoint.pt"
    code = sigkill_once_written([sys.executable, "-m", "examples.digits_demo", "--out", str(tmp_path / "killed"), *ARGS], checkpoint)
    assert code == -signal.SIGKILL
    assert checkpoint.exists() and not (tmp_path / "killed" / "slr" / "results.json").exists()
    resumed = run(tmp_path / "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for method in ("slr", "admm"):
        after_resume = reproducible_part(read_results(tmp_path / "killed" / method / "results.json"))
        assert after_resume == reproducible_part(read_results(tmp_path / "full" / method / "results.json"))
