"""A real run killed with SIGKILL mid-training resumes to the numbers of an uninterrupted run."""
import json
import signal
import subprocess
import sys
import time

ARGS = ["--epochs", "6", "--retrain-epochs", "1", "--no-progress"]


def run(out, *extra):
    return subprocess.run([sys.executable, "-m", "core.demo", "--out", str(out), *ARGS, *extra], capture_output=True, text=True, timeout=600)


def comparable(path):
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in ("wall_time_s", "stage_wall_time_s", "code_version")}


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    full = run(tmp_path / "full")
    assert full.returncode == 0, full.stderr
    victim = subprocess.Popen([sys.executable, "-m", "core.demo", "--out", str(tmp_path / "killed"), *ARGS],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "slr" / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert checkpoint.exists() and not (tmp_path / "killed" / "slr" / "results.json").exists()
    resumed = run(tmp_path / "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for method in ("slr", "admm"):
        assert comparable(tmp_path / "killed" / method / "results.json") == comparable(tmp_path / "full" / method / "results.json")
