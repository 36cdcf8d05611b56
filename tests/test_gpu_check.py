"""benchmarks/gpu_check.sh on the CPU: its first iterations run for every model of every task,
and the report it writes has a row per model with numbers that parse (about 50 s on 2 cores)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
TASKS = {"classification", "pointpillars_kitti", "lane_tusimple", "detection_yolo"}
MODELS = ["r18_cifar", "r50_cifar", "vgg16_cifar", "r18_imagenet", "r50_imagenet", "pointpillars", "ufld", "yolov3-tiny", "yolov3-spp"]


def _run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    full = {**os.environ, "PY": sys.executable, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout)


def _number(cell: str) -> float:
    match = re.fullmatch(r"([0-9][0-9,]*\.?[0-9]*)(x| images/s| frames/s)?", cell.strip())
    assert match, f"not a number: {cell!r}"
    return float(match.group(1).replace(",", ""))


def _table(text: str, first_column: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_column} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in ln.strip("|").split("|")))))
    return rows


def test_gpu_check_runs_on_the_cpu(tmp_path):
    report, numbers = tmp_path / "gpu_check.md", tmp_path / "gpu_check.json"
    done = _run({"DEVICE": "cpu", "PROFILE": "smoke", "ITERS": "2", "REPORT": str(report), "WORKDIR": str(tmp_path / "work")},
                "--json", str(numbers))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = report.read_text()
    assert f"| torch | {torch.__version__} |" in text
    assert "| command | `DEVICE=cpu ITERS=2 PROFILE=smoke REPORT=" in text and "bash benchmarks/gpu_check.sh --json" in text
    assert "| AMP | off |" in text

    rows = _table(text, "case")
    assert [r["case"] for r in rows] == MODELS
    assert {r["task"] for r in rows} == TASKS  # a row for every task
    for r in rows:
        assert r["AMP"] == "off" and int(r["iters"]) == 2
        for column in ("plain ms/step", "throughput", "SLR ms/step", "SLR/plain", "SLR update ms", "proj torch ms", "proj numpy ms",
                       "proj speed-up"):
            assert _number(r[column]) > 0, (r["case"], column)
        assert r["peak MiB plain"] == r["peak MiB SLR"] == "n/a"  # no GPU memory on the CPU
        plain, slr, batch = _number(r["plain ms/step"]), _number(r["SLR ms/step"]), int(r["batch x input"].split(" x ")[0])
        rounding = 0.05 / plain + 0.05 / slr + 1e-3  # the ms are shown to 0.1
        assert _number(r["SLR/plain"]) == pytest.approx(slr / plain, rel=rounding, abs=6e-4)
        assert _number(r["throughput"]) == pytest.approx(batch / plain * 1e3, rel=rounding, abs=0.06)
    for line in ("r18_cifar: ", "pointpillars: ", "ufld: ", "yolov3-spp: "):  # printed per model too
        assert line in done.stdout

    core = _table(text, "batch")
    assert [r["batch"] for r in core] == ["8"] and all(_number(r[c]) > 0 for r in core for c in ("plain ms", "SLR ms", "masks/plain"))
    assert re.search(r"ResNet-50 full-model irregular projection .* speed-up [0-9.]+x", text)
    assert "Backend: gloo on the CPU" in text and re.search(r"Exit code 0, \d+ s; dense [0-9.]+", text)

    data = json.loads(numbers.read_text())
    assert data["device"] == "cpu" and data["ddp"]["rc"] == 0 and len(data["models"]) == len(MODELS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_gpu_check_without_a_gpu_says_so():
    done = _run({"DEVICE": "cuda"}, timeout=120)
    assert done.returncode == 2
    assert "no CUDA GPU is visible; use --device cpu (DEVICE=cpu)" in done.stderr
