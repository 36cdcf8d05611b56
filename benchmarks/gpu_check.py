"""The GPU check: every task's paper-size model trained on the device, with and without SLR (a
measurement, not a test). ``benchmarks/gpu_check.sh`` runs it; it writes a Markdown report.

    python benchmarks/gpu_check.py [--device cuda] [--iters 200] [--report docs/gpu_check.md]
    python benchmarks/gpu_check.py --device cpu --profile smoke --iters 2 --no-entry   # the CPU check

What it measures, per model (``--cases``; default: every model of the paper's tables):

* training steps on synthetic batches at the paper's shapes (``--profile paper``: each config's
  paper settings, batch size and input size; ``--profile smoke``: the smoke profiles' narrow
  models and small inputs). The batches are made once, on the device, and cycled, so the numbers
  are the GPU's training throughput without data loading. A harness task's step is the harness's
  own: ``core.harness.loop.train_one_epoch`` with the task's ``batch_loss`` and ``build_optimizer``
  (its ``prune``-stage optimizer and schedule), AMP as ``--amp`` runs it (autocast and a gradient
  scaler). YOLO's step is Ultralytics' trainer step (autocast, scaled backward, unscale, the
  penalty gradient, clipping at 10, SGD, EMA), as detection_yolo/trainer.py runs it;
* plain steps against steps with SLR attached (the config's sparsity and first rate, the
  paper's rho, s0, M, r), in interleaved rounds; the medians give ms per step, the throughput
  and SLR's step overhead;
* the peak GPU memory (``torch.cuda.max_memory_allocated``) of each variant alone, over a few
  steps after the timing (the two cycled batches included);
* one SLR ``update()`` (the per-epoch Z projection and multiplier step) on the device, and the
  projection of the pruned weights with core's torch projection against the authors' numpy
  percentile with a host round trip (benchmarks/bench_core.py's functions);

then bench_core.py's own comparison on the device (ResNet-18 CIFAR steps: plain, SLR, ADMM,
masks; ResNet-50 full-model projection), a 2-process DDP run of ``python -m classification
--table table7`` under torchrun (nccl when 2+ GPUs are visible, else gloo on the CPU), and each
task's entry point for one short real run of every stage with ``--amp --max-batches N``.
A time limit (``--time-limit``, default 540 s) shrinks the iterations of the later models.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import itertools
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_core  # noqa: E402
from core.harness.loop import train_one_epoch  # noqa: E402
from core.harness.recipe import PruningRecipe, load_experiments  # noqa: E402
from core.pruning.methods import build_pruner  # noqa: E402

CASES = ("r18_cifar", "r50_cifar", "vgg16_cifar", "r18_imagenet", "r50_imagenet", "pointpillars", "ufld", "yolov3-tiny", "yolov3-spp")
TASK_OF = {**{c: "classification" for c in CASES[:5]}, "pointpillars": "pointpillars_kitti", "ufld": "lane_tusimple",
           "yolov3-tiny": "detection_yolo", "yolov3-spp": "detection_yolo"}
TABLE_COLUMNS = ("case", "task", "model", "batch x input", "AMP", "iters", "plain ms/step", "throughput", "SLR ms/step",
                 "SLR/plain", "peak MiB plain", "peak MiB SLR", "SLR update ms", "proj torch ms", "proj numpy ms", "proj speed-up")
KITTI_FOV_POINTS = 20000  # points per frame in the paper profile (KITTI keeps ~20k points of a scan in the camera's view)


# ---------------------------------------------------------------------------------------------
# the device


def synchronize(device: torch.device) -> None:
    bench_core.synchronize(device)


def timed(run: Callable[[int], None], steps: int, device: torch.device) -> float:
    """Seconds per step of ``run(steps)``, the device's queue drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    run(steps)
    synchronize(device)
    return (time.perf_counter() - start) / steps


def machine(device: torch.device) -> dict[str, str]:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "CUDA (torch build)": str(torch.version.cuda), "CPU cores": str(os.cpu_count()),
            "torch CPU threads": str(torch.get_num_threads()), "host": platform.node() or "?"}
    if torch.backends.cudnn.is_available():
        info["cuDNN"] = str(torch.backends.cudnn.version())
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names = [torch.cuda.get_device_name(i) for i in range(count)]
        props = torch.cuda.get_device_properties(device if device.type == "cuda" else 0)
        info["GPU"] = f"{names[0]} ({props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor})"
        info["GPUs visible"] = f"{count}: " + ", ".join(names)
        info["driver"] = _nvidia_smi_driver()
    else:
        info["GPU"] = "none visible"
    return info


def _nvidia_smi_driver() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


# ---------------------------------------------------------------------------------------------
# the workloads: a model, its batches, its training step, its sparsity


class _Sized:
    """A stand-in data set for a task's constructor: only its length is read (steps per epoch)."""

    cache = True  # lane_tusimple's loader then asks for no workers

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


@dataclass
class Workload:
    case: str
    task: str
    model_label: str
    unit: str  # images or frames
    batch_size: int
    input_label: str
    sparsity: dict[str, Any]
    pruner_settings: dict[str, Any]
    new_model: Callable[[], nn.Module]
    new_step: Callable[[nn.Module, Any], Callable[[int], None]]  # (model, pruner or None) -> run(steps)
    batches: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def variant(self, slr: bool, device: torch.device) -> tuple[nn.Module, Any, Callable[[int], None]]:
        torch.manual_seed(0)  # both variants start from the same weights
        model = self.new_model().to(device)
        pruner = build_pruner("slr", model, self.sparsity, **self.pruner_settings) if slr else None
        return model, pruner, self.new_step(model, pruner)


def _slr_settings(settings: dict[str, Any], rate: float) -> tuple[dict[str, Any], dict[str, Any]]:
    sparsity = {**settings["sparsity"], "target_rate": float(rate)}
    recipe = PruningRecipe.build("slr", sparsity, settings["pruning"])
    return sparsity, recipe.pruner_settings()


def _harness_step(task, batches: list[Any]) -> Callable[[nn.Module, Any], Callable[[int], None]]:
    """The harness's step: train_one_epoch over ``steps`` of the cycled batches, the task's
    prune-stage optimizer and schedule, the SLR penalty through ``attach`` (as the pipeline does)."""

    def new_step(model: nn.Module, pruner) -> Callable[[int], None]:
        optimizer, scheduler = task.build_optimizer(model, "prune")
        if pruner is not None:
            pruner.attach(optimizer)

        def run(steps: int) -> None:
            task.train_batches = lambda stage, epoch, seed: itertools.islice(itertools.cycle(batches), steps)
            train_one_epoch(task, model, optimizer, scheduler, 0, "prune", 0)

        return run

    return new_step


def _experiment(config: Path, profile: str, name: str | None, overrides: list[str]) -> dict[str, Any]:
    return load_experiments(config, profile, overrides, [name] if name else None)[0].settings


def classification_workload(case: str, profile: str, device: torch.device, amp: bool, batch: int | None) -> Workload:
    from classification.task import ClassificationTask

    s = _experiment(ROOT / "classification" / "configs" / "table1.yaml", profile, case, ["model.pretrained=false"])
    data = s["data"]
    if data["name"] == "digits":
        size, classes = int(data.get("image_size", 16)) + 2 * int(data.get("pad", 0) or 0), 10
    elif data["name"] == "imagenet":
        size, classes = int(data.get("image_size", 224)), 1000
    else:
        size, classes = 32, 10
    if batch:
        s["batch_size"] = batch
    bs = int(s["batch_size"])
    stub = SimpleNamespace(name=f"synthetic-{data['name']}", num_classes=classes, train=_Sized(50000), test=_Sized(10000))
    task = ClassificationTask(s, stub, device, progress=False)
    task.amp = amp
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(bs, 3, size, size, generator=g).to(device), torch.randint(0, classes, (bs,), generator=g).to(device))
               for _ in range(2)]
    sparsity, hyper = _slr_settings(s, s["rates"][0])
    model = s["model"]
    label = {"resnet18": "ResNet-18", "resnet50": "ResNet-50", "vgg16": "VGG-16-BN"}[model["arch"]]
    label += f" ({model.get('stem', 'cifar')} stem{'' if float(model.get('width', 1)) == 1 else ', width ' + str(model['width'])})"
    opt = s["optimizer"]
    return Workload(case, "classification", label, "images", bs, f"3x{size}x{size}, {classes} classes", sparsity, hyper,
                    task.new_model, _harness_step(task, batches), batches,
                    [f"{case}: {opt['name']} lr {opt['lr']} (the config's pruning optimizer), SLR at {s['rates'][0]}x"])


def _kitti_frames(s: dict[str, Any], count: int, paper: bool) -> list[dict[str, Any]]:
    from pointpillars_kitti.synthetic import make_scene

    rng = np.random.default_rng(0)
    pc = s["model"]["point_cloud_range"]
    classes = list(s["classes"])
    max_range = float(pc[3]) - 1.0 if paper else float(s["data"].get("max_range", 18.0))
    frames = []
    for i in range(count):
        points, boxes, names, _ = make_scene(rng, max_range=max_range, num_objects=(20, 30) if paper else (3, 7))
        if paper and len(points) < KITTI_FOV_POINTS:  # fill the camera's view like a KITTI scan: denser near the car,
            n = (KITTI_FOV_POINTS - len(points)) // 4  # several beams hitting each surface: 4 points per spot
            r, ang = 3.0 + (max_range - 3.0) * rng.uniform(0, 1, n) ** 2, rng.uniform(-0.7, 0.7, n)
            xy = np.repeat(np.column_stack([r * np.cos(ang), r * np.sin(ang)]), 4, axis=0) + rng.normal(0, 0.04, (4 * n, 2))
            extra = np.column_stack([xy, rng.uniform(-1.8, 1.0, 4 * n), rng.uniform(0, 1, 4 * n)])
            points = np.concatenate([points, extra.astype(np.float32)])
        labels = np.array([classes.index(n) + 1 for n in names], dtype=np.float32)
        gt = np.column_stack([boxes.reshape(-1, 7), labels]).astype(np.float32)
        frames.append({"index": i, "points": torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)), "gt_boxes": torch.from_numpy(gt)})
    return frames


def pointpillars_workload(case: str, profile: str, device: torch.device, amp: bool, batch: int | None) -> Workload:
    from pointpillars_kitti.dataset import collate
    from pointpillars_kitti.task import KittiTask

    s = _experiment(ROOT / "pointpillars_kitti" / "configs" / "pointpillars.yaml", profile, None, [])
    if batch:
        s["batch_size"] = batch
    bs = int(s["batch_size"])
    stub = SimpleNamespace(name="synthetic-kitti", train=_Sized(3712), eval=_Sized(3769))
    task = KittiTask(s, stub, device, progress=False)
    task.amp = amp
    frames = _kitti_frames(s, 2 * bs, profile == "paper")
    batches = []
    for k in range(2):
        b = collate(frames[k * bs:(k + 1) * bs])
        batches.append({**b, "points": [p.to(device) for p in b["points"]], "gt_boxes": b["gt_boxes"].to(device)})
    probe = task.new_model().to(device).train()
    with torch.no_grad():
        pillars = [len(probe.voxelize([p])["voxels"]) for p in batches[0]["points"]]
    del probe
    m = s["model"]
    grid = [round((m["point_cloud_range"][i + 3] - m["point_cloud_range"][i]) / m["voxel_size"][i]) for i in range(2)]
    sparsity, hyper = _slr_settings(s, s["rates"][0])
    points = int(np.mean([len(p) for p in batches[0]["points"]]))
    boxes = float((batches[0]["gt_boxes"][..., 7] > 0).sum()) / bs
    return Workload(case, "pointpillars_kitti", f"PointPillars (width {m.get('width', 1.0)})", "frames", bs,
                    f"{points:,} points, ~{int(np.mean(pillars)):,} pillars, {grid[0]}x{grid[1]} grid", sparsity, hyper,
                    task.new_model, _harness_step(task, batches), batches,
                    [f"pointpillars: generated scenes (pointpillars_kitti.synthetic.make_scene{', padded with points in the camera view' if profile == 'paper' else ''}), "
                     f"{boxes:.0f} boxes per frame; voxelization on the device inside the step; AdamW one-cycle; SLR at {s['rates'][0]}x"])


def ufld_workload(case: str, profile: str, device: torch.device, amp: bool, batch: int | None) -> Workload:
    from lane_tusimple.task import LaneTask

    s = _experiment(ROOT / "lane_tusimple" / "configs" / "ufld_tusimple.yaml", profile, None, [])
    if batch:
        s["batch_size"] = batch
    bs = int(s["batch_size"])
    stub = SimpleNamespace(name="synthetic-tusimple", root=ROOT, train=_Sized(3268), test=_Sized(2782))
    task = LaneTask(s, stub, device, progress=False)
    task.amp = amp
    m = s["model"]
    h, w = m["input_size"]
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(bs, 3, h, w, generator=g).to(device),
                torch.randint(0, int(m["griding_num"]) + 1, (bs, int(m["num_anchors"]), int(m["num_lanes"])), generator=g).to(device),
                torch.randint(0, int(m["num_lanes"]) + 1, (bs, h // 8, w // 8), generator=g).to(device)) for _ in range(2)]
    sparsity, hyper = _slr_settings(s, s["rates"][0])
    return Workload(case, "lane_tusimple", f"UFLD ResNet-18 (width {m['width']}, aux seg)", "frames", bs, f"3x{h}x{w}",
                    sparsity, hyper, task.new_model, _harness_step(task, batches), batches,
                    [f"ufld: random targets (grid cells and segmentation), Adam with warm-up + cosine; SLR at {s['rates'][0]}x"])


def _prepare_ultralytics(workdir: Path) -> None:
    from detection_yolo.ultralytics_env import prepare_ultralytics

    prepare_ultralytics(workdir / "ultralytics", threads=torch.get_num_threads(), verbose=False)


def _yolo_optimizer(model: nn.Module, lr: float, momentum: float, decay: float) -> torch.optim.Optimizer:
    """Ultralytics' SGD: weights with decay, biases and norm weights without, Nesterov momentum."""
    decayed, plain, biases = [], [], []
    norms = tuple(v for k, v in nn.__dict__.items() if "Norm" in k and isinstance(v, type))
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if "bias" in name:
                biases.append(p)
            elif isinstance(module, norms):
                plain.append(p)
            else:
                decayed.append(p)
    optimizer = torch.optim.SGD(biases, lr=lr, momentum=momentum, nesterov=True)
    optimizer.add_param_group({"params": decayed, "weight_decay": decay})
    optimizer.add_param_group({"params": plain, "weight_decay": 0.0})
    return optimizer


def yolo_workload(case: str, profile: str, device: torch.device, amp: bool, batch: int | None, workdir: Path) -> Workload:
    _prepare_ultralytics(workdir)
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG
    from ultralytics.utils.torch_utils import ModelEMA

    from detection_yolo.layers import expand_patterns
    from detection_yolo.models import resolve_model

    experiment = {"yolov3-tiny": "yolov3-tiny_2x", "yolov3-spp": "yolov3-spp_1.986x"}[case]
    s = _experiment(ROOT / "detection_yolo" / "configs" / "table2.yaml", profile, experiment, [])
    if batch:
        s["batch_size"] = batch
    bs = int(s["batch_size"])
    size = int((s.get("train") or {}).get("imgsz", 640))
    source = resolve_model(s["model"]["name"], workdir / "yolo_models", s["model"].get("width_multiple"))
    hyp = get_cfg(DEFAULT_CFG)
    opt = s["optimizer"]

    def new_model() -> nn.Module:
        model = DetectionModel(source.source, nc=80, verbose=False)
        model.args = hyp
        return model

    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(2):
        per = torch.randint(4, 12, (bs,), generator=g)  # about COCO's 7 objects per image
        n = int(per.sum())
        centers, sizes = 0.1 + 0.8 * torch.rand(n, 2, generator=g), 0.03 + 0.35 * torch.rand(n, 2, generator=g)
        batches.append({"img": torch.randint(0, 256, (bs, 3, size, size), generator=g, dtype=torch.uint8).to(device),
                        "batch_idx": torch.repeat_interleave(torch.arange(bs), per).float().to(device),
                        "cls": torch.randint(0, 80, (n, 1), generator=g).float().to(device),
                        "bboxes": torch.cat([centers, sizes], 1).to(device)})
    use_amp = amp and device.type == "cuda"

    def new_step(model: nn.Module, pruner) -> Callable[[int], None]:
        model.train()
        optimizer = _yolo_optimizer(model, float(opt["lr"]), float(opt.get("momentum", 0.937)), float(opt.get("weight_decay", 5e-4)))
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        ema = ModelEMA(model)

        def run(steps: int) -> None:
            for batch in itertools.islice(itertools.cycle(batches), steps):
                with torch.autocast("cuda", enabled=True) if use_amp else contextlib.nullcontext():
                    loss, _ = model({**batch, "img": batch["img"].float() / 255})
                    loss = loss.sum()
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)  # trainer.optimizer_step: unscale, penalty, clip, step, EMA
                if pruner is not None:
                    pruner.add_penalty_grad()
                nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad()
                ema.update(model)

        return run

    sparsity, hyper = _slr_settings(s, s["rates"][0])
    probe = new_model()
    sparsity = expand_patterns(sparsity, probe)
    params = sum(p.numel() for p in probe.parameters())
    del probe
    width = s["model"].get("width_multiple")
    label = f"{s['model']['name']}{'' if width in (None, 1, 1.0) else f' (width {width})'}, {params / 1e6:.1f}M parameters"
    return Workload(case, "detection_yolo", label, "images", bs, f"3x{size}x{size}, 80 classes", sparsity, hyper, new_model, new_step,
                    batches, [f"{case}: Ultralytics {__import__('ultralytics').__version__} DetectionModel from its YAML (no weights), "
                              f"its v8 detection loss on random boxes (4-11 per image), SGD lr {opt['lr']} momentum 0.937 Nesterov, "
                              f"clipping at 10, EMA; SLR at {s['rates'][0]}x"])


def build_workload(case: str, args, device: torch.device, amp: bool) -> Workload:
    if TASK_OF[case] == "classification":
        return classification_workload(case, args.profile, device, amp, args.batch)
    if case == "pointpillars":
        return pointpillars_workload(case, args.profile, device, amp, args.batch)
    if case == "ufld":
        return ufld_workload(case, args.profile, device, amp, args.batch)
    return yolo_workload(case, args.profile, device, amp, args.batch, args.workdir)


# ---------------------------------------------------------------------------------------------
# one model's measurements


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _median_ms(values: list[float]) -> float:
    return 1e3 * statistics.median(values)


def measure(work: Workload, args, device: torch.device, budget_s: float) -> dict[str, Any]:
    """Plain and SLR steps in interleaved rounds, then the memory of each alone, SLR's update and the projections."""
    row: dict[str, Any] = {"case": work.case, "task": work.task, "model": work.model_label, "unit": work.unit,
                           "batch": work.batch_size, "input": work.input_label}
    variants = {name: work.variant(name == "slr", device) for name in ("plain", "slr")}
    for _, _, run in variants.values():
        run(args.warmup)  # cuDNN's algorithm choice, the allocator, AMP's first steps
    iters = args.iters
    if iters > args.rounds:  # as many steps as the budget allows, from one timed step of each
        probe = sum(timed(run, 1, device) for _, _, run in variants.values())
        iters = max(1, min(iters, int(budget_s / max(probe, 1e-6))))
    rounds = max(1, min(args.rounds, iters))
    chunk = max(1, iters // rounds)
    times: dict[str, list[float]] = {"plain": [], "slr": []}
    for r in range(rounds):
        for name in (("plain", "slr") if r % 2 == 0 else ("slr", "plain")):
            times[name].append(timed(variants[name][2], chunk, device))
    row["iters"] = rounds * chunk
    row["rounds"] = rounds
    row["plain_ms"], row["slr_ms"] = _median_ms(times["plain"]), _median_ms(times["slr"])
    row["throughput"] = work.batch_size / (row["plain_ms"] / 1e3)
    row["slr_throughput"] = work.batch_size / (row["slr_ms"] / 1e3)
    row["slr_ratio"] = row["slr_ms"] / row["plain_ms"]

    model, pruner, _ = variants["slr"]
    row.update(slr_update_ms=_time_update(pruner, device, args.proj_repeats), **_projection(model, pruner, work, device, args.proj_repeats))
    del variants, model, pruner
    _free(device)
    for name in ("plain", "slr"):  # each variant alone: its peak memory
        if device.type != "cuda":
            row[f"peak_{name}_mib"] = None
            continue
        torch.cuda.reset_peak_memory_stats(device)
        alone = work.variant(name == "slr", device)
        alone[2](args.memory_steps)
        synchronize(device)
        row[f"peak_{name}_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        del alone
        _free(device)
    return row


def _time_update(pruner, device: torch.device, repeats: int) -> float:
    """Median ms of SLR's ``update()`` (Z projection, multipliers, step size) on the device."""
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no penalty since the last update": no steps between these calls
        for _ in range(max(1, repeats)):
            synchronize(device)
            start = time.perf_counter()
            pruner.update(1.0)
            synchronize(device)
            times.append(time.perf_counter() - start)
    return _median_ms(times)


def _projection(model: nn.Module, pruner, work: Workload, device: torch.device, repeats: int) -> dict[str, Any]:
    """bench_core's comparison on this model's pruned weights at the rate's uniform ratio 1 - 1/rate."""
    weights = [p.detach() for p in pruner.params]
    ratio = 1.0 - 1.0 / float(work.sparsity["target_rate"])
    times: dict[str, list[float]] = {"numpy": [], "torch": []}
    fns = (("numpy", bench_core.numpy_percentile_projection), ("torch", bench_core.torch_projection))
    bench_core.torch_projection(weights, ratio)  # warm-up
    for r in range(max(1, repeats)):
        for name, fn in fns[:: 1 if r % 2 else -1]:
            synchronize(device)
            start = time.perf_counter()
            fn(weights, ratio)
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    torch_ms, numpy_ms = _median_ms(times["torch"]), _median_ms(times["numpy"])
    return {"proj_torch_ms": torch_ms, "proj_numpy_ms": numpy_ms, "proj_speedup": numpy_ms / torch_ms,
            "pruned_weights": sum(w.numel() for w in weights), "pruned_layers": len(weights)}


# ---------------------------------------------------------------------------------------------
# the subprocess checks: DDP and the entry points


def run_command(cmd: list[str], timeout: float, env: dict[str, str] | None = None, deadline: float | None = None) -> dict[str, Any]:
    """Run ``cmd`` in the repository; ``timeout`` is cut to what is left before ``deadline`` (60 s of grace, at least 30 s)."""
    if deadline is not None:
        timeout = min(timeout, max(30.0, deadline + 60.0 - time.perf_counter()))
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        rc = None
        out = (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        out += f"\n(timed out after {timeout:.0f} s)"
    return {"command": _display(cmd), "rc": rc, "seconds": time.perf_counter() - start, "output": out}


def _display(cmd: list[str]) -> str:
    shown = ["python" if c == sys.executable else c for c in cmd]
    return shlex.join(shown)


def ddp_check(args, device: torch.device, workdir: Path) -> dict[str, Any]:
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    nccl = gpus >= 2
    out = workdir / "ddp" / "table7"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "classification",
           "--table", "table7", "--profile", "smoke", "--method", "slr", "--device", "cuda" if nccl else "cpu",
           "--max-batches", str(args.ddp_max_batches), "--set", "rates=[8.71]", "--set", "pruning.epochs=1",
           "--set", "pruning.retrain_epochs=1", "--set", "dense.epochs=1", "--no-progress", "--out", str(out)]
    if nccl and args.amp:
        cmd.insert(cmd.index("--max-batches"), "--amp")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = run_command(cmd, args.ddp_timeout, env, args.deadline)
    result["backend"] = "nccl (2 GPUs, cuda:0 and cuda:1)" if nccl else (
        f"gloo on the CPU ({gpus} GPU visible: two processes cannot share cuda:LOCAL_RANK)" if device.type == "cuda"
        else "gloo on the CPU (--device cpu)")
    results = sorted(out.glob("*/*/results.json"))
    if results:
        data = json.loads(results[0].read_text())
        m = data.get("metrics", {})
        metric = data.get("primary_metric", "top1")
        result["summary"] = ", ".join(f"{k} {m[k][metric]:.2f}" for k in ("dense", "after_training", "after_hard_pruning", "after_retraining")
                                      if isinstance(m.get(k), dict) and metric in m[k])
        result["summary"] += f" ({metric}, %); rate {data.get('achieved_compression', {}).get('pruned_layers', float('nan')):.2f}x"
    return result


def entry_checks(args, device: torch.device, workdir: Path) -> list[dict[str, Any]]:
    """Each task's entry point: one short real run of every stage (dense, SLR, hard-pruning,
    masked retraining, evaluation) on the device with --amp and --max-batches, smoke data."""
    common = ["--profile", "smoke", "--method", "slr", "--device", str(device), "--no-progress",
              "--set", "pruning.epochs=1", "--set", "pruning.retrain_epochs=1", "--set", "dense.epochs=1"]
    limited = ["--max-batches", str(args.entry_max_batches)] + (["--amp"] if args.amp else [])
    commands = {
        "classification": ["-m", "classification", "--table", "table1", "--experiment", "r18_cifar", "--set", "model.width=1.0", *limited],
        "pointpillars_kitti": ["-m", "pointpillars_kitti", "--set", "rates=[4.874]", *limited],
        "lane_tusimple": ["-m", "lane_tusimple", "--set", "rates=[2.54]", *limited],
        # Ultralytics runs its own loop (AMP on by its default on a GPU); it reads no --max-batches
        "detection_yolo": ["-m", "detection_yolo", "--config", "table2", "--experiment", "yolov3-tiny_2x", *(["--amp"] if args.amp else [])],
    }
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    results = []
    for task, cmd in commands.items():
        result = run_command([sys.executable, *cmd, *common, "--out", str(workdir / "entry" / task)], args.entry_timeout, env, args.deadline)
        result["task"] = task
        lines = [ln for ln in result["output"].splitlines() if ln.strip() and not ln.startswith(" ")]
        result["last_line"] = lines[-1] if lines else ""
        results.append(result)
    return results


def bench_core_check(args, device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": {}}
    for batch_size in args.bench_batches:
        out["steps"][batch_size] = bench_core.bench_steps(args.bench_rounds, args.bench_steps, batch_size, device)
    out["projection"] = bench_core.bench_projection(args.proj_repeats, device)
    return out


# ---------------------------------------------------------------------------------------------
# the report


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"
    return str(value)


def table_rows(rows: list[dict[str, Any]], amp: bool) -> list[list[str]]:
    out = []
    for r in rows:
        if "error" in r:
            out.append([r["case"], r["task"], "failed: " + r["error"]] + [""] * (len(TABLE_COLUMNS) - 3))
            continue
        out.append([r["case"], r["task"], r["model"], f"{r['batch']} x {r['input']}", "on" if amp else "off", str(r["iters"]),
                    _fmt(r["plain_ms"]), f"{_fmt(r['throughput'])} {r['unit']}/s", _fmt(r["slr_ms"]), _fmt(r["slr_ratio"], 3),
                    _fmt(r["peak_plain_mib"], 0), _fmt(r["peak_slr_mib"], 0), _fmt(r["slr_update_ms"]),
                    _fmt(r["proj_torch_ms"], 2), _fmt(r["proj_numpy_ms"], 1), f"{_fmt(r['proj_speedup'])}x"])
    return out


def markdown_table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]


def write_report(path: Path, info: dict[str, str], args, device: torch.device, rows: list[dict[str, Any]],
                 core: dict[str, Any] | None, ddp: dict[str, Any] | None, entries: list[dict[str, Any]] | None,
                 notes: list[str], total_s: float) -> str:
    amp = args.amp and device.type == "cuda"
    lines = ["# GPU check", "",
             f"Written by `benchmarks/gpu_check.py` on {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} in {total_s:.0f} s "
             "(a measurement, not a test; `bash benchmarks/gpu_check.sh` runs it).", "", "## Machine", "",
             *markdown_table(("", ""), [[k, v] for k, v in info.items()] + [
                 ["device", str(device)], ["AMP", "on (autocast float16 + gradient scaler)" if amp else "off"],
                 ["profile", f"{args.profile} (model sizes, batch sizes and input shapes of each config's `{args.profile}` profile)"],
                 ["command", f"`{args.command}`"]]), ""]
    lines += ["## Training steps", "",
              f"Synthetic batches at the {args.profile} profile's shapes, made once on the device and cycled (no data loading in "
              "the numbers). The harness tasks' step is `core.harness.loop.train_one_epoch` with the task's own loss and "
              "prune-stage optimizer; YOLO's is Ultralytics' trainer step. Plain and SLR steps alternate in "
              f"rounds after {args.warmup} warm-up step(s) each; ms/step are medians over the rounds (iters: timed steps per "
              "variant), throughput is the batch over the plain step. Peak memory: `torch.cuda.max_memory_allocated` over "
              f"{args.memory_steps} steps of each variant alone (the two cycled batches included). SLR update: one `update()` "
              "(the Z projection and the multiplier step, once per epoch). Projection: the pruned weights projected at the "
              "uniform ratio 1 - 1/rate, core's torch projection on the device against the authors' numpy percentile with a "
              "host round trip (bench_core.py's functions).", "",
              *markdown_table(TABLE_COLUMNS, table_rows(rows, amp)), ""]
    if core:
        lines += [f"## bench_core.py on {device}", "",
                  "ResNet-18 (CIFAR shape), Adam, float32 (no AMP): one training step, medians of "
                  f"{args.bench_rounds} interleaved rounds of {args.bench_steps} steps.", "",
                  *markdown_table(("batch", "plain ms", "SLR ms", "ADMM ms", "masks ms", "SLR/plain", "masks/plain"),
                                  [[str(b), *(_fmt(s[v] * 1e3, 2) for v in bench_core.VARIANTS), _fmt(s["slr"] / s["plain"], 3),
                                    _fmt(s["masks"] / s["plain"], 3)] for b, s in core["steps"].items()]), ""]
        p = core["projection"]
        lines += [f"ResNet-50 full-model irregular projection at 90% ({p['weights']:,} weights, {p['kept']:,} kept): numpy "
                  f"percentile + host round trip {p['numpy'] * 1e3:.1f} ms, torch on {device} {p['torch'] * 1e3:.2f} ms, "
                  f"speed-up {p['numpy'] / p['torch']:.1f}x (median of {args.proj_repeats}).", ""]
    if ddp:
        lines += ["## DDP: 2 processes under torchrun", "", f"Backend: {ddp['backend']}.", "",
                  f"    {ddp['command']}", "",
                  f"Exit code {ddp['rc']}, {ddp['seconds']:.0f} s" + (f"; {ddp['summary']}" if ddp.get("summary") else "") + ".", ""]
        if ddp["rc"] != 0:
            lines += ["```", *ddp["output"].strip().splitlines()[-15:], "```", ""]
    if entries:
        lines += ["## Entry points: every stage, once, on the device", "",
                  "Each task's `python -m <task>` on its smoke data (generated or bundled), one epoch per stage.", "",
                  *markdown_table(("task", "exit", "seconds", "last line", "command"),
                                  [[e["task"], str(e["rc"]), f"{e['seconds']:.0f}", f"`{e['last_line'][:160]}`", f"`{e['command']}`"] for e in entries]), ""]
        for e in entries:
            if e["rc"] != 0:
                lines += [f"{e['task']} output (last lines):", "", "```", *e["output"].strip().splitlines()[-15:], "```", ""]
    for r in rows:
        if "traceback" in r:
            lines += [f"{r['case']} failed:", "", "```", *r["traceback"], "```", ""]
    notes = [*notes, "Not in the numbers: data loading and augmentation (the batches are on the device already), "
             "`torch.backends.cudnn.benchmark` (off, as the harness leaves it), channels-last memory format (off in the "
             "configs), evaluation. A step's host syncs are the task's own (PointPillars' loss reads its parts with "
             "`.item()`; the gradient scaler checks for infinities)."]
    if amp:
        notes.append("With AMP each timed round of a harness task is one `train_one_epoch` call, which starts a fresh gradient "
                     "scaler (as every epoch of the harness does): a round's first steps may be skipped for infinite gradients "
                     "(no optimizer step, no penalty), in both variants alike.")
    lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda (default when visible), cuda:N or cpu")
    p.add_argument("--profile", choices=("paper", "smoke"), default="paper", help="the configs' profile giving model and input sizes")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated models (default: all of {', '.join(CASES)})")
    p.add_argument("--iters", type=int, default=200, help="timed steps per variant and model (fewer when --task-budget runs out)")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds the timed steps are split into")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per variant first (default 5 on a GPU, 1 on the CPU)")
    p.add_argument("--batch", type=int, default=None, help="batch size for every model (default: each config's)")
    p.add_argument("--task-budget", type=float, default=45.0, help="at most these seconds of timed steps per model, both variants together")
    p.add_argument("--time-limit", type=float, default=540.0, help="seconds for the whole check: later models get less time")
    p.add_argument("--memory-steps", type=int, default=2)
    p.add_argument("--proj-repeats", type=int, default=None, help="repeats of the projection timings (default 3 on a GPU, 1 on the CPU)")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="float32 steps on the GPU (AMP is always off on the CPU)")
    p.add_argument("--no-bench-core", dest="bench_core", action="store_false")
    p.add_argument("--bench-batches", type=int, nargs="+", default=None, help="bench_core step batches (default 128 32 on a GPU, 8 on the CPU)")
    p.add_argument("--bench-rounds", type=int, default=None)
    p.add_argument("--bench-steps", type=int, default=None)
    p.add_argument("--no-ddp", dest="ddp", action="store_false")
    p.add_argument("--ddp-max-batches", type=int, default=None, help="batches per epoch of the DDP run (default 20 on GPUs, 2 on the CPU)")
    p.add_argument("--ddp-timeout", type=float, default=180.0)
    p.add_argument("--entry", dest="entry", action="store_true", default=None, help="run the entry-point checks (default: on a GPU)")
    p.add_argument("--no-entry", dest="entry", action="store_false")
    p.add_argument("--entry-max-batches", type=int, default=5)
    p.add_argument("--entry-timeout", type=float, default=150.0)
    p.add_argument("--workdir", type=Path, default=None, help="scratch folder, kept (default: a temporary folder, removed at the end)")
    p.add_argument("--report", type=Path, default=ROOT / "docs" / "gpu_check.md")
    p.add_argument("--json", type=Path, default=None, help="also write every number as JSON here")
    p.add_argument("--command", default=None, help="the command line to record in the report (gpu_check.sh passes its own)")
    return p.parse_args(argv)


def _settle(args: argparse.Namespace) -> torch.device | str:
    """The device, and the defaults that depend on it; a message instead when they cannot run."""
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    if gpu and not torch.cuda.is_available():
        return "--device cuda but no CUDA GPU is visible; use --device cpu (DEVICE=cpu)"
    if gpu:
        device = device if device.index is not None else torch.device("cuda", torch.cuda.current_device())
        if device.index >= torch.cuda.device_count():
            return f"{device} does not exist ({torch.cuda.device_count()} GPU(s) visible)"
        torch.cuda.set_device(device)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        return f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}"
    args.amp = args.amp and gpu
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    args.proj_repeats = args.proj_repeats or (3 if gpu else 1)
    args.bench_batches = args.bench_batches or ([128, 32] if gpu else [8])
    args.bench_rounds = args.bench_rounds or (5 if gpu else 1)
    args.bench_steps = args.bench_steps or (20 if gpu else 1)
    args.ddp_max_batches = args.ddp_max_batches or (20 if gpu else 2)
    args.entry = gpu if args.entry is None else args.entry
    args.command = args.command or _display([sys.executable, *sys.argv])
    args.scratch = args.workdir is None  # a temporary folder, removed at the end
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    return device


def run_models(args: argparse.Namespace, device: torch.device, notes: list[str]) -> list[dict[str, Any]]:
    """One row per model; a model that fails gets its error (and traceback) instead of numbers."""
    # what the later sections take on a GPU (estimates); a model's set-up, warm-up, memory and projections ~10 s more
    reserve = (30.0 if args.bench_core else 0) + (45.0 if args.ddp else 0) + (150.0 if args.entry else 0)
    rows = []
    for i, case in enumerate(args.cases):
        left = args.deadline - reserve - time.perf_counter()
        budget = max(2.0, min(args.task_budget, left / (len(args.cases) - i) - 10.0))  # a fast model leaves its time to the next
        t0 = time.perf_counter()
        try:
            work = build_workload(case, args, device, args.amp)
            row = measure(work, args, device, budget)
            notes += work.notes
            del work
        except Exception as err:  # one model's failure is reported, the others still run
            traceback.print_exc()
            row = {"case": case, "task": TASK_OF[case], "error": f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}",
                   "traceback": traceback.format_exc().strip().splitlines()[-12:]}
        _free(device)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(_row_line(row), flush=True)
    return rows


def _row_line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['case']}: FAILED {row['error']}"
    mem = f", peak {row['peak_plain_mib']:.0f}/{row['peak_slr_mib']:.0f} MiB" if row["peak_plain_mib"] is not None else ""
    return (f"{row['case']}: {row['throughput']:.1f} {row['unit']}/s ({row['plain_ms']:.1f} ms/step plain, {row['slr_ms']:.1f} SLR, "
            f"{row['slr_ratio']:.3f}x, {row['iters']} iters){mem}; SLR update {row['slr_update_ms']:.1f} ms; projection "
            f"{row['proj_speedup']:.1f}x ({row['proj_torch_ms']:.2f} vs {row['proj_numpy_ms']:.1f} ms); {row['seconds']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    device = _settle(args)
    if isinstance(device, str):
        print(f"gpu_check: {device}", file=sys.stderr)
        return 2
    args.deadline = started + args.time_limit
    info = machine(device)
    print("gpu_check: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    print(f"gpu_check: {len(args.cases)} models on {device}, AMP {'on' if args.amp else 'off'}, profile {args.profile}, "
          f"up to {args.iters} timed steps per variant; scratch {args.workdir}", flush=True)
    notes: list[str] = []
    rows = run_models(args, device, notes)
    core = ddp = entries = None
    if args.bench_core:
        core = bench_core_check(args, device)
        print("bench_core: " + "; ".join(f"batch {b}: SLR/plain {s['slr'] / s['plain']:.3f}, masks/plain {s['masks'] / s['plain']:.3f}"
                                         for b, s in core["steps"].items())
              + f"; ResNet-50 projection {core['projection']['numpy'] / core['projection']['torch']:.1f}x", flush=True)
    if args.ddp:
        ddp = ddp_check(args, device, args.workdir)
        print(f"ddp: {ddp['backend']}: exit {ddp['rc']} in {ddp['seconds']:.0f} s {ddp.get('summary', '')}", flush=True)
    if args.entry:
        entries = entry_checks(args, device, args.workdir)
        for e in entries:
            print(f"entry {e['task']}: exit {e['rc']} in {e['seconds']:.0f} s: {e['last_line'][:120]}", flush=True)
    total = time.perf_counter() - started
    write_report(args.report, info, args, device, rows, core, ddp, entries, notes, total)
    if args.json:
        payload = {"machine": info, "device": str(device), "amp": args.amp, "profile": args.profile, "command": args.command,
                   "models": rows, "bench_core": core and {"steps": {str(k): v for k, v in core["steps"].items()}, "projection": core["projection"]},
                   "ddp": ddp and {k: v for k, v in ddp.items() if k != "output"},
                   "entries": entries and [{k: v for k, v in e.items() if k != "output"} for e in entries], "seconds": total}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=str))
    if args.scratch:
        shutil.rmtree(args.workdir, ignore_errors=True)
    print(f"gpu_check: report {args.report} ({total:.0f} s)", flush=True)
    failed = [r["case"] for r in rows if "error" in r] + (["ddp"] if ddp and ddp["rc"] != 0 else []) + \
             [e["task"] for e in entries or [] if e["rc"] != 0]
    if failed:
        print(f"gpu_check: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
