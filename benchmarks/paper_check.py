"""make paper-check: every paper-profile experiment of Tables 1-8, two iterations of every stage, on CPU.

Each experiment row of the paper's tables runs through its task's real command line
(``python -m <task> --profile paper --max-batches 2 --set pruning.epochs=1 --set
pruning.retrain_epochs=1 ...``) at its real architecture, input size, optimizer, sparsity config
and batch, with one method (SLR) and one rate per row, on the real sample data
(``$SLR_DATA_ROOT``, ../shared/data) laid out as each task reads it, in a temporary folder. Every
stage runs one epoch of two training batches; every evaluation reads two batches of
``EVAL_BATCH`` images (the paper gives no evaluation batch; YOLO keeps Ultralytics' own). The
batch is the paper's except in the two rows whose paper batch does not fit the 24 GiB of the CI
machine (ResNet-50 ImageNet at 256, YOLOv3-SPP at 16): ``batch_why`` says so, and
``--largest-batch`` runs those two at the largest batch that fits.
The dense model is trained here for one epoch of two batches where the paper profile trains it
here (CIFAR-10, YOLO, PointPillars), and is a checkpoint of random weights at the real
architecture where the paper starts from released weights (ImageNet: torchvision's; UFLD: its
TuSimple model), which a CPU check cannot download.

Each run's ``results.json`` is then checked (:func:`check_results`): every key of
``core.harness.results.REQUIRED_KEYS``, every stage's metrics and history rows, the dense model's
source, and the achieved per-layer and pruned-layer rates against the paper's target within the
rounding of integer budgets (the rate solver keeps ``round(N / rate)`` weights over the pruned
layers, each layer ``floor`` or ``ceil`` of its share). One line per experiment gives the batch,
the time per training iteration (the pruning and retraining stages' wall time over their
iterations, evaluations included; and the whole command's wall time over all its iterations,
start-up included), the CPU time, the peak memory (maximum resident set of the child process
or one of its workers, ``os.wait4``), the rates and PASS/FAIL; the exit code is 1 on any failure.

    python benchmarks/paper_check.py [--only table1/r18_cifar ...] [--largest-batch] [--doc docs/paper_check.md] [--keep DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.harness.results import REQUIRED_KEYS, SCHEMA_VERSION  # noqa: E402

MAX_BATCHES = 2
METHOD = "slr"
STAGES = ("dense", "after_training", "after_hard_pruning", "after_retraining")
PRUNE_EPOCHS = RETRAIN_EPOCHS = DENSE_EPOCHS = 1
MEMORY_GIB = 24  # the CI machine's memory; a batch is lowered only where a run would not fit in it
EVAL_BATCH = 16  # images per evaluation batch (classification, UFLD): the paper gives none, and 2 batches check the code path


@dataclass
class Row:
    """One experiment row of the paper: how its command is made and what its results must show."""

    key: str  # table<N>/<experiment>
    table: str  # "Table 1"
    task: str  # python -m <task>
    config: str  # the task's config name
    experiment: str | None  # the config's experiment (None: a config without experiments)
    rate: float  # the paper's target compression rate (over the pruned layers)
    what: str  # architecture, data set, input size
    paper_batch: int
    batch: int | None = None  # the batch of this check where the paper's does not fit MEMORY_GIB (see batch_why)
    batch_why: str = ""  # why the paper's batch does not fit, and why this one of the batches that do
    largest_batch: int | None = None  # the largest batch that fits MEMORY_GIB, where the paper's does not (--largest-batch)
    dense: str = "trained"  # trained (one epoch of MAX_BATCHES batches), or the random checkpoint: resnet18 | resnet50 | ufld
    sets: list[str] = field(default_factory=list)  # further --set overrides (data layout, one sweep point, ...)
    note: str = ""  # what else differs from the row's own schedule

    @property
    def used_batch(self) -> int:
        return self.batch or self.paper_batch

    @property
    def trains_dense(self) -> bool:
        return self.dense == "trained"

    def iterations(self, dense_trained: bool) -> int:
        """Training iterations of the row's command (``dense_trained``: whether it trained the dense model)."""
        return MAX_BATCHES * (PRUNE_EPOCHS + RETRAIN_EPOCHS + (DENSE_EPOCHS if dense_trained else 0))


def _cifar(key: str, config: str, experiment: str, rate: float, what: str, **extra: Any) -> Row:
    return Row(key, f"Table {config.removeprefix('table')}", "classification", config, experiment, rate, what, 128, **extra)


def _imagenet(key: str, config: str, experiment: str, rate: float, arch: str, **extra: Any) -> Row:
    return Row(key, f"Table {config.removeprefix('table')}", "classification", config, experiment, rate,
               f"{arch} ImageNet 224 px", 256, dense=arch.lower().replace("-", ""), **extra)


def _yolo(experiment: str, rate: float, what: str, **extra: Any) -> Row:
    # COCO 2014 -> the 128 real COCO images of coco128 (train = val, as Ultralytics' coco128.yaml)
    sets = ["data.name=coco128", "data.subdir=coco128", "data.yaml=null"]
    return Row(f"table2/{experiment}", "Table 2", "detection_yolo", "table2", experiment, rate, what, 16, sets=sets, **extra)


# Measured on 2 cores of an AMD EPYC with 24 GiB (docs/paper_check.md, docs/paper_check_largest_batch.md):
# every row runs at the paper's batch except the two whose paper batch does not fit 24 GiB; of the
# batches that fit, those two run a small one, since the largest would add 7 minutes to a check that
# already takes 17 (--largest-batch runs the largest).
_R18_CIFAR = "ResNet-18 CIFAR-10 32 px"
_NO_RETRAIN = "1 retraining epoch (the row has none; every stage runs)"

ROWS: list[Row] = [
    _cifar("table1/r18_cifar", "table1", "r18_cifar", 8.71, _R18_CIFAR),
    _cifar("table1/r50_cifar", "table1", "r50_cifar", 3.4, "ResNet-50 CIFAR-10 32 px"),
    _cifar("table1/vgg16_cifar", "table1", "vgg16_cifar", 3.08, "VGG-16 CIFAR-10 32 px"),
    _imagenet("table1/r18_imagenet", "table1", "r18_imagenet", 6.5, "ResNet-18"),
    _imagenet("table1/r50_imagenet", "table1", "r50_imagenet", 3.89, "ResNet-50", batch=32, largest_batch=128,
              batch_why="memory: measured 4.6 GiB at batch 32 and 12.4 GiB at 128 (0.08 GiB an image), so 256 needs "
                        "about 22.7 GiB in the training process alone, over 24 GiB with the loader's 8 workers; 128 "
                        "fits (--largest-batch: 46 s an iteration, 3.2 min for the row)"),
    _yolo("yolov3-tiny_1.19x", 1.19, "YOLOv3-tiny COCO 640 px", note=_NO_RETRAIN),
    _yolo("yolov3-tiny_2x", 2.0, "YOLOv3-tiny COCO 640 px"),
    _yolo("yolov3-tiny_3.33x", 3.33, "YOLOv3-tiny COCO 640 px", note=_NO_RETRAIN),
    _yolo("yolov3-spp_1.986x", 1.986, "YOLOv3-SPP COCO 640 px", batch=2, largest_batch=8, note=_NO_RETRAIN,
          batch_why="memory: measured 8.8 GiB at batch 2 and 16.1 GiB at 8 (1.2 GiB an image), so 16 needs about "
                    "26 GiB; 8 fits (--largest-batch: 75 s an iteration, 7.3 min for the row)"),
    Row("table3/pointpillars", "Table 3", "pointpillars_kitti", "pointpillars", None, 9.449,
        "PointPillars KITTI (69 x 79 m, 0.16 m pillars)", 4),
    Row("table4/ufld", "Table 4", "lane_tusimple", "ufld_tusimple", None, 4.21, "UFLD ResNet-18 TuSimple 288x800", 32,
        dense="ufld", sets=["data.train_labels=[{tusimple_labels}]", "data.test_labels=[{tusimple_test_labels}]",
                            f"eval_batch_size={EVAL_BATCH}"]),
    _cifar("table5/r18_cifar", "table5", "r18_cifar", 1.96, _R18_CIFAR,
           sets=["sweeps=[{rho: 0.1, s0: 1.0e-4}]"], note="one sweep point (rho 0.1, s0 1e-4)"),
    _cifar("table6/r18_cifar", "table6", "r18_cifar", 1.96, _R18_CIFAR,
           sets=["sweeps=[{M: 200, r: 0.1}]"], note="one sweep point (M 200, r 0.1)"),
    _cifar("table7/r18_cifar", "table7", "r18_cifar", 4.69, _R18_CIFAR, note="one of the five rates"),
    _imagenet("table8/r18_imagenet", "table8", "r18_imagenet", 7.15, "ResNet-18", note="one of the three rates"),
]


def largest_batches(rows: Sequence[Row]) -> list[Row]:
    """``rows`` with the largest batch that fits MEMORY_GIB where the paper's does not."""
    import dataclasses

    return [dataclasses.replace(r, batch=r.largest_batch, batch_why=r.batch_why.split("; ")[0] + f"; {r.largest_batch} fits")
            if r.largest_batch else r for r in rows]


# --- data laid out as each task reads it, in a temporary folder ---------------------------------
def imagenet_layout(sample: Path, dest: Path, classes: int = 1000) -> Path:
    """``train/<wnid>/`` and ``val/<wnid>/`` for all ``classes`` classes (so that the model has its
    real 1000 outputs) from the 100 real images of ``imagenet_sample`` (one for every 10th class):
    each real image in its own class, and linked again into the classes after it that the sample
    lacks (named ``<wnid>_<index>``, which sorts them into their class index)."""
    with open(sample / "labels.csv", newline="") as handle:
        real = {int(r["class_index"]): (r["wnid"], r["file"]) for r in csv.DictReader(handle)}
    if 0 not in real:
        raise SystemExit(f"{sample}/labels.csv has no class 0; cannot lay out ImageNet")
    base = real[0]
    for index in range(classes):
        if index in real:
            base = real[index]
            name = base[0]
        else:
            name = f"{base[0]}_{index:04d}"
        for split in ("train", "val"):
            folder = dest / split / name
            folder.mkdir(parents=True, exist_ok=True)
            link = folder / base[1]
            if not link.exists():
                os.symlink((sample / "images" / base[1]).resolve(), link)
    return dest


def kitti_layout(kitti: Path, dest: Path) -> Path:
    """``training/`` (linked) and ``ImageSets/{train,val}.txt`` listing every sample frame."""
    dest.mkdir(parents=True, exist_ok=True)
    if not (dest / "training").exists():
        os.symlink((kitti / "training").resolve(), dest / "training")
    frames = sorted(p.stem for p in (kitti / "training" / "velodyne").glob("*.bin"))
    (dest / "ImageSets").mkdir(exist_ok=True)
    for split in ("train", "val"):
        (dest / "ImageSets" / f"{split}.txt").write_text("\n".join(frames) + "\n")
    return dest


def tusimple_labels(labels: Path, dest: Path, count: int) -> Path:
    """A TuSimple label file of ``count`` lines cycling through the real full-size frames' lines."""
    lines = [line for line in labels.read_text().splitlines() if line.strip()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n".join(lines[i % len(lines)] for i in range(count)) + "\n")
    return dest


def random_checkpoints(work: Path) -> dict[str, Path]:
    """Dense checkpoints of random weights at the real architectures of the rows that start from
    released weights: torchvision's ResNet-18/50 (1000 classes) and UFLD ResNet-18 (288x800)."""
    import torch
    import torchvision
    import yaml

    from lane_tusimple.model import UFLD, UFLDConfig

    torch.manual_seed(0)
    paths = {}
    for arch in ("resnet18", "resnet50"):
        paths[arch] = work / f"{arch}_imagenet_random.pt"
        torch.save(getattr(torchvision.models, arch)(num_classes=1000).state_dict(), paths[arch])
    model_cfg = yaml.safe_load((ROOT / "lane_tusimple" / "configs" / "ufld_tusimple.yaml").read_text())["model"]
    paths["ufld"] = work / "ufld_resnet18_random.pt"
    torch.save(UFLD(UFLDConfig.from_dict(model_cfg)).state_dict(), paths["ufld"])
    return paths


def _link(target: Path, link: Path) -> None:
    if not link.exists():
        os.symlink(target.resolve(), link)


def prepare(sample: Path, work: Path, rows: Sequence[Row]) -> dict[str, str]:
    """The data root every row reads (``{data}``, ``work/data``: each task's folder as its paper
    profile reads it, made from the sample data) and the files the rows name (``{tusimple_labels}``,
    the random checkpoints)."""
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    places: dict[str, str] = {"data": str(data), "dense": str(work / "dense")}  # dense models trained here, shared by the rows
    tasks = {r.task for r in rows}
    if "classification" in tasks:
        _link(sample / "cifar10", data / "cifar10")  # the image-folder layout the loader reads
        if any(r.experiment and "imagenet" in r.experiment for r in rows):
            imagenet_layout(sample / "imagenet_sample", data / "imagenet")
    if "detection_yolo" in tasks:
        _link(sample / "coco128", data / "coco128")
    if "pointpillars_kitti" in tasks:
        kitti_layout(sample / "kitti", data / "kitti")
    if "lane_tusimple" in tasks:
        full = sample / "tusimple" / "fullres_1280x720"  # the real 1280x720 frames; raw_file is relative to it
        _link(full, data / "tusimple")
        ufld = next(r for r in rows if r.task == "lane_tusimple")
        labels = full / "label_data_sample.json"
        places["tusimple_labels"] = str(tusimple_labels(labels, work / "tusimple_labels.json", MAX_BATCHES * ufld.used_batch))
        places["tusimple_test_labels"] = str(tusimple_labels(labels, work / "tusimple_test_labels.json", MAX_BATCHES * EVAL_BATCH))
    if any(not r.trains_dense for r in rows):
        places.update({k: str(v) for k, v in random_checkpoints(work).items()})
    return places


# --- one row -----------------------------------------------------------------------------------
def _fill(text: str, places: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` of ``places`` replaced (other braces, YAML's, stay)."""
    for name, value in places.items():
        text = text.replace("{" + name + "}", value)
    return text


def command(row: Row, out: Path, places: Mapping[str, str], threads: int) -> list[str]:
    """The row's command line: its task's entry point with the paper profile and the check's flags."""
    cmd = [sys.executable, "-m", row.task, "--config", row.config, "--profile", "paper", "--method", METHOD,
           "--data-root", places["data"], "--device", "cpu", "--threads", str(threads), "--no-progress",
           "--max-batches", str(MAX_BATCHES), "--out", str(out), "--dense-dir", places["dense"]]
    if row.experiment:
        cmd += ["--experiment", row.experiment]
    sets = [f"rates=[{row.rate}]", f"pruning.epochs={PRUNE_EPOCHS}", f"pruning.retrain_epochs={RETRAIN_EPOCHS}"]
    if row.trains_dense:
        sets.append(f"dense.epochs={DENSE_EPOCHS}")
    if row.batch:
        sets.append(f"batch_size={row.batch}")
    if row.task == "classification":  # a seeded subset of the real images: 2 training batches, 2 evaluation batches
        sets += [f"data.train_subset={MAX_BATCHES * row.used_batch}", f"data.test_subset={MAX_BATCHES * EVAL_BATCH}",
                 f"data.eval_batch_size={EVAL_BATCH}"]
    sets += [_fill(s, places) for s in row.sets]
    for item in sets:
        cmd += ["--set", item]
    if not row.trains_dense:
        cmd += ["--dense-checkpoint", places[row.dense]]
    return cmd


def run_child(cmd: list[str], log: Path, env: Mapping[str, str]) -> tuple[int, float, float, int]:
    """Run ``cmd`` with its output in ``log``: (exit code, wall s, CPU s, peak RSS in bytes of the
    process and the workers it waited for)."""
    start = time.time()
    with open(log, "w") as handle:
        child = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, env=dict(env))
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - start
    return child.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


# --- the checks ----------------------------------------------------------------------------------
def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_results(results: Mapping[str, Any], target: float, prune_epochs: int = PRUNE_EPOCHS,
                  retrain_epochs: int = RETRAIN_EPOCHS) -> tuple[list[str], dict[str, Any]]:
    """The failures of one results file (empty: it passes) and its rates.

    Checks: every key of REQUIRED_KEYS and the schema version; the four stages' metrics (the
    primary metric a finite number each); ``prune_epochs`` pruning and ``retrain_epochs``
    retraining rows in the history, with finite losses; the target rate; the pruned layers keep
    ``round(N / target)`` weights in all (N: their weights) and each layer ``floor`` or ``ceil`` of
    its share ``n * round(N / target) / N`` (at least one), which is what integer budgets allow;
    the recorded rates agree with the per-layer counts."""
    failures: list[str] = []
    rates: dict[str, Any] = {}
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        failures.append(f"results lack required keys {missing}")
    if results.get("schema_version") != SCHEMA_VERSION:
        failures.append(f"schema_version {results.get('schema_version')!r} is not {SCHEMA_VERSION}")
    metric = results.get("primary_metric")
    metrics = results.get("metrics") or {}
    for stage in STAGES:
        values = metrics.get(stage)
        if not isinstance(values, Mapping) or not values:
            failures.append(f"stage {stage} did not run (no metrics)")
        elif not _finite(values.get(metric)):
            failures.append(f"stage {stage}: {metric} is {values.get(metric)!r}, not a number")
    history = results.get("history") or []
    for stage, wanted in (("prune", prune_epochs), ("retrain", retrain_epochs)):
        rows = [r for r in history if isinstance(r, Mapping) and r.get("stage") == stage]
        if len(rows) != wanted:
            failures.append(f"stage {stage} ran {len(rows)} epoch(s), not {wanted}")
        bad = [r.get("epoch") for r in rows if not _finite(r.get("loss"))]
        if bad:
            failures.append(f"stage {stage}: loss not finite in epoch(s) {bad}")
    if results.get("target_compression") != target:
        failures.append(f"target_compression {results.get('target_compression')!r} is not the paper's {target}")
    layers = results.get("per_layer") or []
    if not layers:
        failures.append("per_layer lists no pruned layer")
        return failures, rates
    total = sum(int(r["total"]) for r in layers)
    nonzero = sum(int(r["nonzero"]) for r in layers)
    budget = round(total / target)
    rates.update(layers=len(layers), total=total, nonzero=nonzero, budget=budget, pruned_layers=total / max(nonzero, 1),
                 whole_model=(results.get("achieved_compression") or {}).get("whole_model"))
    if nonzero != budget:
        failures.append(f"the pruned layers keep {nonzero} of {total} weights, not round({total} / {target}) = {budget} "
                        f"(rate {total / max(nonzero, 1):.4f}x)")
    worst, off = 0.0, []
    for r in layers:
        n, kept = int(r["total"]), int(r["nonzero"])
        share = n * budget / total
        allowed = {1} if share < 1 else {math.floor(share), math.ceil(share)}
        if kept not in allowed:
            off.append(f"{r['name']} keeps {kept} of {n} (share {share:.2f})")
        if kept:
            worst = max(worst, abs(n / kept / target - 1))
    if off:
        failures.append(f"{len(off)} layer(s) off their budget: " + "; ".join(off[:3]))
    rates["worst_layer_deviation"] = worst
    achieved = (results.get("achieved_compression") or {}).get("pruned_layers")
    if not _finite(achieved) or abs(achieved - total / max(nonzero, 1)) > 1e-6 * achieved:
        failures.append(f"achieved_compression.pruned_layers {achieved!r} disagrees with the per-layer counts ({total / max(nonzero, 1):.6f}x)")
    if not _finite(rates["whole_model"]):
        failures.append(f"achieved_compression.whole_model {rates['whole_model']!r} is not a number")
    return failures, rates


def dense_source(row: Row, results: Mapping[str, Any], log_text: str) -> str:
    """Where the run's dense model came from, as the run reports it."""
    if row.task == "detection_yolo":
        return str(((results.get("config") or {}).get("task") or {}).get("dense_model", {}).get("source", ""))
    lines = [line for line in log_text.splitlines() if line.startswith("dense model: ")]
    return lines[-1].removeprefix("dense model: ") if lines else ""


def dense_failures(row: Row, source: str, places: Mapping[str, str]) -> list[str]:
    """Whether the dense model came from where the row says: trained here (by this command, or by
    an earlier row of the check with the same dense settings, cached in the check's dense folder,
    as the paper's own grids share it), or the random checkpoint."""
    if row.trains_dense:
        cached = source.endswith("(cached)") and places.get("dense") and source.startswith(places["dense"])
        return [] if source.startswith("trained here") or cached else [f"the dense model was not trained here (source: {source or 'not reported'})"]
    return [] if source == places.get(row.dense) else [f"the dense model is not the random checkpoint (source: {source or 'not reported'})"]


@dataclass
class Outcome:
    row: Row
    code: int = -1
    wall: float = 0.0
    cpu: float = 0.0
    rss: int = 0
    failures: list[str] = field(default_factory=list)
    rates: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    dense: str = ""  # where the dense model came from
    run_seconds: float = float("nan")  # results.json wall_time_s: pruning, hard-pruning and retraining, evaluations included

    @property
    def dense_trained(self) -> bool:
        return self.dense.startswith("trained here")

    @property
    def iterations(self) -> int:
        return self.row.iterations(self.dense_trained)

    @property
    def per_iteration(self) -> float:
        """The whole command's wall time over its training iterations (start-up, data, dense model included)."""
        return self.wall / self.iterations

    @property
    def run_per_iteration(self) -> float:
        """The pruning and retraining stages' wall time over their training iterations (their evaluations included)."""
        return self.run_seconds / (MAX_BATCHES * (PRUNE_EPOCHS + RETRAIN_EPOCHS))

    @property
    def passed(self) -> bool:
        return self.code == 0 and not self.failures


def run_row(row: Row, work: Path, places: Mapping[str, str], threads: int, env: Mapping[str, str]) -> Outcome:
    out = work / "runs" / row.key.replace("/", "_")
    cmd = command(row, out, places, threads)
    outcome = Outcome(row, command=shlex.join([Path(cmd[0]).name, *cmd[1:]]))
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    outcome.code, outcome.wall, outcome.cpu, outcome.rss = run_child(cmd, log, env)
    text = log.read_text(errors="replace")
    if outcome.code != 0:
        tail = [line for line in text.splitlines() if line.strip()][-3:]
        outcome.failures.append(f"exit code {outcome.code}: " + " | ".join(tail))
        return outcome
    found = sorted(out.rglob("results.json"))
    found = [p for p in found if "dense" not in p.relative_to(out).parts[:1]]
    if len(found) != 1:
        outcome.failures.append(f"{len(found)} results files under {out}, not 1")
        return outcome
    results = json.loads(found[0].read_text())
    outcome.failures, outcome.rates = check_results(results, row.rate)
    outcome.dense = dense_source(row, results, text)
    outcome.failures += dense_failures(row, outcome.dense, places)
    if _finite(results.get("wall_time_s")):
        outcome.run_seconds = float(results["wall_time_s"])
    return outcome


# --- the report ----------------------------------------------------------------------------------
HEADER = ("| experiment | model, data, input | batch (paper's) | dense model | s / iteration: stages (command) | "
          "CPU s (CPU / wall) | peak memory | pruned layers (target) | whole model | layers, worst deviation | result |")


def _batch_cell(r: Row) -> str:
    return f"{r.used_batch}" if r.used_batch == r.paper_batch else f"**{r.used_batch}** ({r.paper_batch})"


def table_line(o: Outcome) -> str:
    r, rates = o.row, o.rates
    if not r.trains_dense:
        dense = "random weights, real architecture"
    else:
        dense = f"trained here, {DENSE_EPOCHS} epoch" if o.dense_trained else "trained by an earlier row (cached)"
    pruned = f"{rates['pruned_layers']:.4f}x ({r.rate}x)" if "pruned_layers" in rates else f"- ({r.rate}x)"
    whole = f"{rates['whole_model']:.3f}x" if _finite(rates.get("whole_model")) else "-"
    layers = f"{rates['layers']}, {100 * rates['worst_layer_deviation']:.2f} %" if "layers" in rates else "-"
    result = "PASS" if o.passed else "FAIL: " + "; ".join(o.failures)
    stages = f"{o.run_per_iteration:.1f}" if _finite(o.run_per_iteration) else "-"
    ratio = o.cpu / o.wall if o.wall else float("nan")
    return (f"| {r.key} | {r.what} | {_batch_cell(r)} | {dense} | {stages} ({o.per_iteration:.1f}; {o.iterations} it, {o.wall:.0f} s) | "
            f"{o.cpu:.0f} ({ratio:.2f}) | {o.rss / 2**30:.2f} GiB | {pruned} | {whole} | {layers} | {result} |")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
        memory = f", {kib / 2**20:.0f} GiB memory"
    except (OSError, StopIteration, ValueError):
        pass
    load = f", load average {os.getloadavg()[0]:.1f} at the end" if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {len(os.sched_getaffinity(0))} CPUs{memory}{load}; Python {platform.python_version()}"


DOC_NOTES = """\
## What each run is, against the row's paper profile

- **Command**: the task's own entry point with `--profile paper` (the full command of each row is listed
  below), so the architecture, input size, optimizer and its schedule, sparsity config (layers, irregular
  scheme, target rate over the pruned layers) and SLR hyperparameters are the paper profile's. The check
  adds: `--method slr`, one rate per row (`--set rates=[r]`), `--set pruning.epochs=1
  pruning.retrain_epochs=1`, `--max-batches 2` (every training epoch and every evaluation stops after 2
  batches), `--device cpu`, `--threads N`; `dense.epochs=1` where the dense model is trained here; the batch
  where the paper's does not fit (below). Tables 5 and 6 run one sweep point each (rho 0.1, s0 1e-4; M 200, r 0.1), the
  paper's defaults; Table 7 one of its five rates, Table 8 one of its three (a rate Table 1 does not run).
  The YOLO rows with no retraining in the paper (1.19x, 3.33x, SPP) retrain one epoch here, so that every
  stage runs.
- **Data**: the real sample data under `SLR_DATA_ROOT`, laid out in a temporary data root as each
  paper profile reads it. CIFAR-10: the real image folders, a seeded subset of 2 batches of training and
  2 evaluation batches of 16 test images (`data.train_subset`, `data.test_subset`, `data.eval_batch_size`;
  the paper gives no evaluation batch, the profile's default is the larger of the batch and 256). ImageNet: the 100
  real sample images (one for every 10th class) in `train/<wnid>/` and `val/<wnid>/` with all 1000 class
  folders (each real image is linked again into the 9 classes after it that the sample lacks), so the
  model keeps its 1000 outputs; same subsets. COCO 2014 is replaced by the 128 real COCO images of
  coco128 (`--set data.name=coco128`; train = val as in Ultralytics' coco128.yaml), 640 px as the paper.
  KITTI: the 8 real frames, `ImageSets/train.txt` = `val.txt` = all 8 (batch 4: 2 batches; each
  evaluation reads 2 frames). TuSimple: the 6 real 1280x720 frames with their official labels, the label
  lines cycled to 2 training batches and 2 evaluation batches of 16 (`data.train_labels`, `data.test_labels`,
  `eval_batch_size`). YOLO validates at Ultralytics' own batch (twice the training batch), 2 batches.
- **Dense model**: trained here for one epoch of 2 batches where the paper profile trains it here
  (CIFAR-10, YOLO, PointPillars; rows of the same architecture and settings then share it from the
  check's dense folder, as the paper's grids do: "trained by an earlier row"); a checkpoint of random
  weights at the real architecture where the paper starts from released weights a CPU check cannot
  download (ImageNet: torchvision's ResNet-18/50, 1000 classes; UFLD: its TuSimple ResNet-18 model at
  288x800).
- **Checks** (`check_results`): every key of `core.harness.results.REQUIRED_KEYS` and the schema version;
  the primary metric after each stage (dense, after training, after hard-pruning, after retraining) is a
  number; one pruning and one retraining row in the history, with finite losses; the dense model's source;
  the pruned layers keep `round(N / rate)` of their N weights and each layer `floor` or `ceil` of its share
  (at least one), which is the paper's rate within the rounding of integer budgets; the recorded rate
  agrees with the per-layer counts. The whole-model rate (every parameter, biases and batch norm included)
  is reported. Metrics are not judged: 2 batches train nothing.
- **Not exercised**: the paper's data sets at full size (COCO 2014, ImageNet, the full KITTI and TuSimple
  splits), the released dense weights, ADMM (the same pipeline with another pruner; `--method admm`
  runs it), multi-epoch schedules (learning-rate schedules over many epochs, `eval_every` > 1), a GPU.
"""


def write_doc(path: Path, outcomes: list[Outcome], total: float, argv: list[str], threads: int) -> None:
    import torch

    cpu = sum(o.cpu for o in outcomes)
    reduced = [o.row for o in outcomes if o.row.used_batch != o.row.paper_batch]
    lines = [
        "# `make paper-check`: every paper experiment, two iterations of every stage, on the CPU",
        "",
        "Written by `benchmarks/paper_check.py` from its own run (rerun `make paper-check` to refresh it).",
        "",
        f"- command: `{shlex.join(['python', 'benchmarks/paper_check.py', *argv])}` (`make paper-check`)",
        f"- machine: {machine()}; torch {torch.__version__}, {threads} torch threads per run",
        f"- total: {total:.0f} s wall ({total / 60:.1f} min), {cpu:.0f} s of CPU time, for {len(outcomes)} experiments; "
        f"{sum(o.passed for o in outcomes)} passed, {sum(not o.passed for o in outcomes)} failed; the CPU time alone, "
        f"spread over all {len(os.sched_getaffinity(0))} CPUs without a moment idle, would take {cpu / len(os.sched_getaffinity(0)) / 60:.1f} min",
        "- batch: the paper's in every row but these (in bold in the table)" + (":" if reduced else ": none"),
        *[f"  - {r.key}: {r.used_batch}, not {r.paper_batch}: {r.batch_why}" for r in reduced],
        "",
        "\"s / iteration\" is the pruning and retraining stages' wall time (`wall_time_s` of the results file, their "
        "evaluations and the hard-pruning included) over their 4 training iterations; in brackets the whole command's "
        "wall time (start-up, data loading, the dense model's training when this row trained it) over all its "
        "training iterations. \"CPU s\" is the command's user + system time, and its ratio to the wall time (2 "
        "cores busy: near 2; lower where start-up, data loading or a single-threaded step dominates). \"peak "
        "memory\" is the largest resident set of the process or of one of its data-loader workers (`os.wait4`). "
        "\"pruned layers\" is the achieved rate over the pruned layers (the paper's target in brackets), \"layers\" "
        "their number and the largest deviation of one layer's rate from the target (integer budgets: small "
        "layers round furthest).",
        "",
        HEADER,
        "|" + "---|" * HEADER.count(" | ") + "---|",
        *[table_line(o) for o in outcomes],
        "",
        DOC_NOTES,
        "## Notes per row",
        "",
        *[f"- {o.row.key}: {o.row.note}" for o in outcomes if o.row.note],
        "",
        "## Commands",
        "",
        *[f"- {o.row.key}: `{o.command}`" for o in outcomes],
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=os.environ.get("SLR_DATA_ROOT"),
                        help="the sample data folder (default $SLR_DATA_ROOT): cifar10/, imagenet_sample/, coco128/, kitti/, tusimple/")
    parser.add_argument("--only", action="append", default=None, help="run only this row (e.g. table1/r18_cifar; repeatable)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads of each run (default: the CPUs)")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temporary folder)")
    parser.add_argument("--doc", type=Path, default=None, help="also write the table as Markdown here (docs/paper_check.md)")
    parser.add_argument("--largest-batch", action="store_true",
                        help=f"where the paper's batch does not fit {MEMORY_GIB} GiB, the largest that does (not the check's smaller one)")
    parser.add_argument("--batch", action="append", default=[], metavar="ROW=N", help="run ROW at batch N (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    args = parser.parse_args(argv)
    rows = ROWS if not args.only else [r for r in ROWS if r.key in args.only]
    unknown = sorted(set(args.only or []) - {r.key for r in ROWS})
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {[r.key for r in ROWS]}")
    rows = [_with_batch(r, args.batch) for r in (largest_batches(rows) if args.largest_batch else rows)]
    if args.list:
        for r in rows:
            print(r.key, r.what, f"batch {r.used_batch}")
        return 0
    if not args.data_root or not Path(args.data_root).is_dir():
        parser.error("--data-root (or SLR_DATA_ROOT) must name the sample data folder (../shared/data)")
    data_root = Path(args.data_root).resolve()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="paper_check_") as tmp:
        work = Path(args.keep or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        places = prepare(data_root, work, rows)
        print(f"paper check: {len(rows)} experiment(s), {METHOD}, {MAX_BATCHES} batches per epoch and evaluation, "
              f"1 epoch per stage, {args.threads} threads; work folder {work}", flush=True)
        for r in rows:
            if r.used_batch != r.paper_batch:
                print(f"  {r.key}: batch {r.used_batch}, not the paper's {r.paper_batch}: {r.batch_why}", flush=True)
        outcomes = []
        for row in rows:
            outcome = run_row(row, work, places, args.threads, env)
            outcomes.append(outcome)
            print(summary_line(outcome), flush=True)
    total = time.time() - started
    failed = [o for o in outcomes if not o.passed]
    print(f"paper check: {len(outcomes) - len(failed)}/{len(outcomes)} passed in {total:.0f} s ({total / 60:.1f} min)")
    if args.doc:
        write_doc(args.doc, outcomes, total, argv, args.threads)
        print(f"table written to {args.doc}")
    print("PASS" if not failed else f"FAIL: {', '.join(o.row.key for o in failed)}")
    return 1 if failed else 0


def _with_batch(row: Row, items: list[str]) -> Row:
    """``row`` at the batch ``--batch ROW=N`` gives it (its data subsets follow)."""
    import dataclasses

    for item in items:
        key, _, value = item.partition("=")
        if key == row.key:
            return dataclasses.replace(row, batch=int(value), batch_why="--batch")
    return row


def summary_line(o: Outcome) -> str:
    r, rates = o.row, o.rates
    batch = f"batch {r.used_batch}" + (f" (paper {r.paper_batch}: {r.batch_why.split(':')[0]})" if r.used_batch != r.paper_batch else "")
    stages = f"{o.run_per_iteration:6.1f}" if _finite(o.run_per_iteration) else "     -"
    parts = [f"{r.key:<26}", f"{batch:<26}", f"{stages} s/it ({o.per_iteration:.1f} with start-up)", f"cpu {o.cpu:5.0f} s",
             f"peak {o.rss / 2**30:5.2f} GiB"]
    if "pruned_layers" in rates:
        parts.append(f"pruned {rates['pruned_layers']:.4f}x (target {r.rate}x)")
        if _finite(rates.get("whole_model")):
            parts.append(f"whole {rates['whole_model']:.3f}x")
    parts.append("PASS" if o.passed else "FAIL: " + "; ".join(o.failures))
    return "  ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
