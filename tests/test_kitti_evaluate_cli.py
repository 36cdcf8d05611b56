"""python -m pointpillars_kitti.evaluate: label and result folders in, the devkit's AP out; bad input is one line."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from pointpillars_kitti.evaluate import main
from pointpillars_kitti.kitti_eval import DIFFICULTIES, average_precision
from pointpillars_kitti.kitti_io import labels_to_arrays, read_labels

CAR = "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59"
CAR2 = "Car 0.00 0 1.55 100.00 150.00 300.00 250.00 1.50 1.60 3.90 -8.00 1.70 12.00 1.00"
PED = "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01"
DONTCARE = "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10"


def write(folder: Path, frames: dict[str, list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for fid, lines in frames.items():
        (folder / f"{fid}.txt").write_text("".join(line + "\n" for line in lines))
    return folder


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as stop:
        code = int(stop.code)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_labels_as_results_score_100_and_json_has_every_key(tmp_path, capsys):
    # 41 frames: the devkit samples 41 score thresholds, so perfect results score 100 only from 41 objects on
    frames = {f"{i:06d}": [CAR2, PED] + ([DONTCARE] if i == 0 else []) for i in range(41)}
    labels = write(tmp_path / "label_2", frames)
    results = write(tmp_path / "res", {fid: [CAR2 + " 0.9", PED + f" {0.5 + i / 100:.2f}"] for i, fid in enumerate(frames)})
    code, out, _ = run(["--label-dir", str(labels), "--result-dir", str(results), "--json", str(tmp_path / "m.json")], capsys)
    assert code == 0 and "Car AP@0.70, 0.70, 0.70 (official" in out and "Car AP@0.70, 0.50, 0.50 (loose" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert len(metrics) == 4 * 2 * 2 * 3 * 3  # metric x overlap set x R11/R40 x class x difficulty
    assert metrics["3d/official/R40/Car/moderate"] == pytest.approx(100.0)
    assert metrics["aos/loose/R11/Pedestrian/easy"] == pytest.approx(100.0)
    assert all(math.isnan(metrics[f"bev/official/R40/Cyclist/{d}"]) for d in ("easy", "moderate", "hard"))  # no Cyclist labelled
    counted = [v for v in metrics.values() if not math.isnan(v)]
    assert len(counted) == 4 * 2 * 2 * 2 * 3 and all(v == pytest.approx(100.0) for v in counted)


def test_missing_result_file_is_a_frame_without_detections_and_split_selects_frames(tmp_path, capsys):
    labels = write(tmp_path / "label_2", {f"{i:06d}": [CAR2] for i in range(60)})
    results = write(tmp_path / "res", {f"{i:06d}": [CAR2 + f" {0.9 - i / 100:.2f}"] for i in range(30)})
    (results / "000030.txt").write_text("")  # empty: no detections either
    code, _, _ = run(["--label-dir", str(labels), "--result-dir", str(results), "--json", str(tmp_path / "a.json")], capsys)
    assert code == 0
    half = json.loads((tmp_path / "a.json").read_text())
    # recall 1/2 at precision 1: 21 of the 41 sampled thresholds (recall 0, 1/40, ..., 20/40)
    assert half["bbox/official/R11/Car/easy"] == pytest.approx(100 * 6 / 11)  # recall 0, 0.1, ..., 0.5
    assert half["3d/official/R40/Car/hard"] == pytest.approx(100 * 20 / 40)
    (tmp_path / "val.txt").write_text("".join(f"{i:06d}\n" for i in range(30)))
    code, _, _ = run(["--label-dir", str(labels), "--result-dir", str(results), "--split", str(tmp_path / "val.txt"),
                      "--json", str(tmp_path / "b.json")], capsys)
    found = json.loads((tmp_path / "b.json").read_text())
    # 30 objects, all found: the devkit takes 30 thresholds, so R11 counts 8 of 11 points and R40 29 of 40
    assert code == 0 and found["bbox/official/R11/Car/easy"] == pytest.approx(100 * 8 / 11)
    assert found["bev/loose/R40/Car/moderate"] == pytest.approx(100 * 29 / 40)


@pytest.mark.parametrize("line, says", [
    (" ".join(CAR.split()[:14]) + " 0.9", "res/000000.txt:2: a result line has 16 fields (the score last), got 15"),
    (" ".join(CAR.split()[:14]), "res/000000.txt:2: a result line has 16 fields (the score last), got 14"),
    (CAR.replace("46.70", "4x.70") + " 0.9", "res/000000.txt:2: '4x.70' is not a number"),
])
def test_bad_result_lines_are_one_error_line_naming_file_and_line(tmp_path, capsys, line, says):
    labels = write(tmp_path / "label_2", {"000000": [CAR]})
    results = write(tmp_path / "res", {"000000": [CAR + " 0.9", line]})
    code, out, err = run(["--label-dir", str(labels), "--result-dir", str(results), "--json", str(tmp_path / "m.json")], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert says in err and not (tmp_path / "m.json").exists()


def test_bad_labels_and_missing_files_are_one_error_line(tmp_path, capsys):
    labels = write(tmp_path / "label_2", {"000000": [CAR, " ".join(PED.split()[:14])]})
    results = write(tmp_path / "res", {})
    code, _, err = run(["--label-dir", str(labels), "--result-dir", str(results)], capsys)
    assert code == 2 and "label_2/000000.txt:2: a label line has 15 fields, got 14" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "split.txt").write_text("000000\n000007\n")
    write(labels, {"000000": [CAR]})
    code, _, err = run(["--label-dir", str(labels), "--result-dir", str(results), "--split", str(tmp_path / "split.txt")], capsys)
    assert code == 2 and "label_2/000007.txt not found" in err
    code, _, err = run(["--label-dir", str(tmp_path / "nowhere"), "--result-dir", str(results)], capsys)
    assert code == 2 and "label folder" in err and "--label-dir" in err


def test_real_kitti_labels_as_results_and_perturbed_copies(data_root, tmp_path, capsys):
    labels = data_root / "kitti" / "training" / "label_2"
    if not labels.is_dir():
        pytest.skip("the sample data holds no kitti/training/label_2")
    exact, shifted = tmp_path / "exact", tmp_path / "shifted"
    exact.mkdir()
    shifted.mkdir()
    for path in sorted(labels.glob("*.txt")):
        rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("DontCare")]
        (exact / path.name).write_text("".join(" ".join(r) + f" {0.9 - 0.01 * i:.2f}\n" for i, r in enumerate(rows)))
        moved = []
        for i, r in enumerate(rows):
            vals = [float(v) for v in r[1:]]
            vals[10] += 0.4 * (1 if i % 2 else -1)  # x moved 0.4 m: a car seen side-on keeps IoU 0.6, a pedestrian at most 0.5
            moved.append(" ".join([r[0]] + [f"{v:.2f}" for v in vals]) + f" {0.9 - 0.01 * i:.2f}")
        (shifted / path.name).write_text("".join(m + "\n" for m in moved))
    code, out, _ = run(["--label-dir", str(labels), "--result-dir", str(exact), "--json", str(tmp_path / "exact.json")], capsys)
    assert code == 0 and "8 frames" in out
    good = json.loads((tmp_path / "exact.json").read_text())
    gts = [labels_to_arrays(read_labels(p)) for p in sorted(labels.glob("*.txt"))]
    for key, value in good.items():  # the literal transcription of the devkit gives the same numbers
        kind, set_name, interp, cls, diff = key.split("/")
        if kind != "aos":
            n_valid = average_precision(gts, gts, cls, DIFFICULTIES.index(diff), kind, 0.5)["num_gt"]
            # perfect results and n < 41 objects: the devkit reads precision 1 at n thresholds of 41
            want = float("nan") if n_valid == 0 else 100 * (-(-n_valid // 4) if interp == "R11" else n_valid - 1) / (11 if interp == "R11" else 40)
            assert value == pytest.approx(want, nan_ok=True), key
    assert good["bbox/official/R11/Car/moderate"] > 0
    code, _, _ = run(["--label-dir", str(labels), "--result-dir", str(shifted), "--json", str(tmp_path / "shifted.json")], capsys)
    bad = json.loads((tmp_path / "shifted.json").read_text())
    assert bad["bbox/official/R40/Car/moderate"] == pytest.approx(good["bbox/official/R40/Car/moderate"])  # the 2D boxes did not move
    assert bad["3d/official/R40/Car/moderate"] < good["3d/official/R40/Car/moderate"]
    assert bad["3d/official/R40/Pedestrian/moderate"] < good["3d/official/R40/Pedestrian/moderate"]
    assert bad["3d/loose/R40/Car/moderate"] > bad["3d/official/R40/Car/moderate"] and bad["bev/loose/R40/Pedestrian/moderate"] > 0
    shutil.rmtree(exact)
