"""Bad input through the real entry points: one ``error: ...`` line naming the problem and the
fix, exit code 2, no traceback, and nothing written (or changed) under ``--out``.

Each case builds its bad files in ``tmp_path`` (from the project's own generators, never from the
shared data) and calls the command's ``main(argv)`` in-process; the cases marked ``subprocess``
run ``python -m <entry>`` for real, to prove the exit code end to end.
"""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_torch_thread")

# the smallest classification run: digits at 8 px, a 1/16-width ResNet-18, one dense epoch, one pruning epoch
CLS_TINY = ["--table", "table7", "--method", "slr", "--no-progress",
            *sum((["--set", s] for s in ("model.width=0.0625", "dense.epochs=1", "pruning.epochs=1", "pruning.retrain_epochs=0",
                                          "rates=[4]", "data.image_size=8", "data.train_size=256", "data.test_size=128")), [])]
CLS_RUN = Path("r18_cifar") / "slr_4x_seed0"  # the run folder CLS_TINY writes under --out
# table1_cpu on a CIFAR-10 image folder of a handful of images
CLS_FOLDER = ["--table", "table1_cpu", "--profile", "paper", "--method", "slr", "--no-progress",
              "--set", "data.train_subset=4", "--set", "data.test_subset=4"]
# a lane_tusimple paper run whose train and test labels are the folder's train_label.json
LANE_LABELS = ["--profile", "paper", "--no-progress", "--set", "data.train_labels=[train_label.json]",
               "--set", "data.test_labels=[train_label.json]"]

ENTRIES = {"classification": "classification.__main__", "lane_tusimple": "lane_tusimple.__main__",
           "pointpillars_kitti": "pointpillars_kitti.__main__", "detection_yolo": "detection_yolo.__main__",
           "examples.digits_demo": "examples.digits_demo", "figures.table1": "figures.table1", "figures.table4": "figures.table4"}


# --- bad files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kitti_scenes(tmp_path_factory) -> Path:
    """Three generated frames in the KITTI layout (two train, one val)."""
    from pointpillars_kitti.synthetic import generate_kitti_scenes

    return generate_kitti_scenes(tmp_path_factory.mktemp("kitti") / "kitti", 2, 1, seed=0, max_range=18.0)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """The --out folder of a finished CLS_TINY run: results.json, checkpoint.pt, logs."""
    out = tmp_path_factory.mktemp("finished") / "out"
    before = torch.get_num_threads()
    importlib.import_module(ENTRIES["classification"]).main([*CLS_TINY, "--out", str(out)])
    torch.set_num_threads(before)
    assert (out / CLS_RUN / "results.json").is_file() and (out / CLS_RUN / "checkpoint.pt").is_file()
    return out


@dataclass
class Ctx:
    """Where a case writes its bad input; ``out`` is the --out folder checked afterwards."""

    tmp: Path
    kitti_scenes: Path
    finished_run: Path | None = None

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def folder(self, name: str) -> Path:
        (self.tmp / name).mkdir(parents=True, exist_ok=True)
        return self.tmp / name

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
        return path

    def kitti(self, damage: Callable[[Path], None]) -> Path:
        """A copy of the generated KITTI frames with ``damage(training_folder)`` applied."""
        root = shutil.copytree(self.kitti_scenes, self.tmp / "kitti")
        damage(root / "training")
        return root

    def tusimple(self, damage: Callable[[list[str]], None] = lambda lines: None,
                 damage_root: Callable[[Path], None] = lambda root: None) -> Path:
        """Generated TuSimple frames whose label lines ``damage`` edits in place, then ``damage_root(root)``."""
        from lane_tusimple.synthetic import generate_split

        labels = generate_split(self.tmp / "tusimple", "train", 2, 128, 72, seed=0)
        lines = labels.read_text().splitlines()
        damage(lines)
        labels.write_text("\n".join(lines) + "\n")
        damage_root(labels.parent)
        return labels.parent

    def image_folder(self, damage: Callable[[Path], None]) -> Path:
        """``cifar10/{train,test}/{cat,dog}/*.png`` with two tiny images per class and ``damage(root)``."""
        from PIL import Image

        root = self.tmp / "cifar10"
        for split in ("train", "test"):
            for cls in ("cat", "dog"):
                (root / split / cls).mkdir(parents=True)
                for i in range(2):
                    Image.new("RGB", (32, 32), (40 * i, 80, 120)).save(root / split / cls / f"{i}.png")
        damage(root)
        return root

    def resume(self, keep_results: bool, damage: Callable[[Path], None] = lambda run: None) -> list[str]:
        """CLS_TINY with --resume on a copy of the finished run, without results.json unless ``keep_results``."""
        shutil.copytree(self.finished_run, self.out)
        if not keep_results:
            (self.out / CLS_RUN / "results.json").unlink()
        damage(self.out / CLS_RUN)
        return [*CLS_TINY, "--resume", "--out", str(self.out)]


def _truncate(path: Path, keep: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])


def _drop_calib_key(training: Path) -> None:
    calib = training / "calib" / "000000.txt"
    calib.write_text("".join(line + "\n" for line in calib.read_text().splitlines() if not line.startswith("R0_rect")))


def _label_with_14_fields(training: Path) -> None:
    label = training / "label_2" / "000001.txt"
    lines = label.read_text().splitlines()
    lines[0] = " ".join(lines[0].split()[:14])
    label.write_text("\n".join(lines) + "\n")


def _drop_h_samples(lines: list[str]) -> None:
    import json

    record = json.loads(lines[1])
    del record["h_samples"]
    lines[1] = json.dumps(record)


def _other_model_state(ctx: Ctx) -> Path:
    path = ctx.tmp / "other.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    return path


def _foreign_dense_cache(ctx: Ctx, root: Path, argv: list[str]) -> list[str]:
    """``argv`` with ``--dense-dir`` and ``--out``; the dense-model cache file the run looks up
    (core.harness.dense.dense_cache_path of its settings) holds another model."""
    from core.harness.dense import dense_cache_path
    from core.harness.recipe import load_experiments
    from lane_tusimple.__main__ import DEFAULT_CONFIG
    from lane_tusimple.task import LaneData, LaneTask, build_datasets

    overrides = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
    (experiment,) = load_experiments(DEFAULT_CONFIG, "paper", overrides)
    task = LaneTask(experiment.settings, LaneData(root, "tusimple", *build_datasets(experiment.settings, root)), progress=False)
    cache = dense_cache_path(task, ctx.tmp / "dense")
    cache.parent.mkdir(parents=True)
    torch.save(torch.nn.Linear(3, 2).state_dict(), cache)
    return [*argv, "--data-root", str(root), "--dense-dir", str(cache.parent), "--out", str(ctx.out)]


# dense training of a UFLD small enough to reach the first frame in a moment
LANE_SMALL = [*sum((["--set", s] for s in ("dense.checkpoint=null", "dense.epochs=1", "model.width=8", "model.fc_hidden=16",
                                           "model.input_size=[64, 160]", "rates=[1.82]")), []), "--method", "slr"]


# --- the cases ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    entry: str
    argv: Callable[[Ctx], list[str]]
    problem: tuple[str, ...]  # words of the line that name what is wrong
    fix: tuple[str, ...]  # words that name what to do
    env: dict[str, str] = field(default_factory=dict)
    subprocess: bool = False


def out(ctx: Ctx) -> list[str]:
    return ["--out", str(ctx.out)]


CASES = [
    # configs and overrides (core)
    Case("malformed-config-yaml", "lane_tusimple",
         lambda c: ["--config", str(c.write("run.yaml", "pruning: {rates: [1.82,\nepochs: 3\n")), *out(c)],
         ("run.yaml", "malformed YAML at line"), ("fix the syntax",), subprocess=True),
    Case("malformed-sparsity-yaml", "examples.digits_demo",
         lambda c: ["--sparsity", str(c.write("ratios.yaml", "prune_ratios:\n  0.weight: 0.5\n   2.weight: 0.5\n")), *out(c)],
         ("ratios.yaml", "malformed YAML at line 3"), ("fix the syntax",)),
    Case("ratio-1.5", "classification", lambda c: [*CLS_TINY, "--set", "sparsity.prune_ratios={fc.weight: 1.5}", *out(c)],
         ("prune_ratios['fc.weight'] = 1.5", "outside [0, 1)"), ("fraction of weights removed", "target_rate")),
    Case("negative-ratio", "examples.digits_demo",
         lambda c: ["--sparsity", str(c.write("ratios.yaml", "prune_ratios:\n  0.weight: -0.2\n")), *out(c)],
         ("ratios.yaml", "prune_ratios['0.weight'] = -0.2", "outside [0, 1)"), ("fraction of weights removed",)),
    Case("unknown-layer", "examples.digits_demo",
         lambda c: ["--sparsity", str(c.write("ratios.yaml", "prune_ratios:\n  0.weight: 0.8\n  3.weight: 0.5\n")), *out(c)],
         ("ratios.yaml", "'3.weight' matches no parameter"), ("did you mean '4.weight'", "named_parameters")),
    Case("unreachable-target-rate", "examples.digits_demo", lambda c: ["--rate", "1e6", *out(c)],
         ("target rate 1000000.0x is unreachable", "reachable: 1x to about"), ("lower target_rate or include more layers",)),
    Case("unknown-scheme", "classification", lambda c: [*CLS_TINY, "--set", "sparsity.scheme=diagonal", *out(c)],
         ("unknown sparsity scheme 'diagonal'",), ("use one of irregular", "2:4")),
    Case("unknown-set-key", "lane_tusimple", lambda c: ["--set", "epochs=5", *out(c)],
         ("override 'epochs=5'", "not a key of the config"), ("did you mean 'dense.epochs' or 'pruning.epochs'",)),
    Case("unknown-profile-flag", "pointpillars_kitti", lambda c: ["--profile", "large", *out(c)],
         ("invalid choice: 'large'",), ("choose from 'smoke', 'paper'", "--help"), subprocess=True),
    Case("unknown-profile-env", "lane_tusimple", lambda c: out(c),
         ("unknown profile 'large'", "$PROFILE"), ("use one of smoke, paper",), env={"PROFILE": "large"}),
    # data roots
    Case("missing-data-root", "pointpillars_kitti", lambda c: ["--profile", "paper", *out(c)],
         ("no data root for KITTI",), ("pass --data-root PATH or set DATA_ROOT",)),
    Case("nonexistent-data-root", "lane_tusimple", lambda c: ["--profile", "paper", "--data-root", str(c.tmp / "nowhere"), *out(c)],
         ("nowhere does not exist",), ("pass --data-root pointing at the TuSimple (tusimple/) folder",)),
    Case("data-root-without-cifar-layout", "classification",
         lambda c: [*CLS_FOLDER, "--data-root", str(c.folder("empty")), *out(c)],
         ("holds neither CIFAR-10 pickles", "nor an image folder"), ("check --data-root",)),
    Case("data-root-without-kitti-imagesets", "pointpillars_kitti",
         lambda c: ["--profile", "paper", "--set", "dense.epochs=1", "--data-root",
                    str(c.kitti(lambda training: shutil.rmtree(training.parent / "ImageSets"))), *out(c)],
         ("split file not found", "ImageSets/train.txt"), ("add ImageSets/train.txt",)),
    # classification data
    Case("empty-class-folder", "classification",
         lambda c: [*CLS_FOLDER, "--data-root", str(c.image_folder(lambda r: [p.unlink() for p in (r / "train" / "dog").iterdir()])), *out(c)],
         ("class folder", "train/dog holds no images"), ("add its images or remove the folder",)),
    Case("corrupt-image", "classification",
         lambda c: [*CLS_FOLDER, "--data-root", str(c.image_folder(lambda r: (r / "train" / "dog" / "1.png").write_bytes(b"not a png"))),
                    *out(c)],
         ("cannot decode image", "train/dog/1.png"), ("remove or replace the file",)),
    # KITTI files
    Case("truncated-velodyne-bin", "pointpillars_kitti",
         lambda c: ["--profile", "paper", "--set", "dense.epochs=1", "--data-root",
                    str(c.kitti(lambda t: _truncate(t / "velodyne" / "000000.bin", -6))), *out(c)],
         ("velodyne/000000.bin has", "not a multiple of 4 float32 values (16 bytes)", "truncated"), ("copy it again",)),
    Case("kitti-label-line-with-14-fields", "pointpillars_kitti",
         lambda c: ["--profile", "paper", "--set", "dense.epochs=1", "--data-root", str(c.kitti(_label_with_14_fields)), *out(c)],
         ("label_2/000001.txt:1", "15 fields", "got 14"), ("fix or remove that line",)),
    Case("kitti-calib-missing-key", "pointpillars_kitti",
         lambda c: ["--profile", "paper", "--set", "dense.epochs=1", "--data-root", str(c.kitti(_drop_calib_key)), *out(c)],
         ("calib/000000.txt has no R0_rect line",), ("copy it again from the KITTI archive",)),
    Case("kitti-dense-checkpoint-of-another-model", "pointpillars_kitti",
         lambda c: ["--profile", "paper", "--no-progress", "--data-root", str(c.kitti(lambda t: None)),
                    "--set", f"dense.checkpoint={_other_model_state(c)}", *out(c)],
         ("other.pt does not fit this PointPillars", "Missing key(s)"), ("use a checkpoint of the same model settings",)),
    Case("kitti-corrupt-dense-checkpoint", "pointpillars_kitti",
         lambda c: ["--profile", "paper", "--no-progress", "--data-root", str(c.kitti(lambda t: None)),
                    "--set", f"dense.checkpoint={c.write('dense.pt', b'PK not a checkpoint')}", *out(c)],
         ("dense checkpoint", "dense.pt cannot be read", "truncated or not a PyTorch file"), ("use a checkpoint of the same model settings",)),
    # TuSimple labels
    Case("tusimple-malformed-json-line", "lane_tusimple",
         lambda c: [*LANE_LABELS, "--data-root", str(c.tusimple(lambda lines: lines.__setitem__(1, lines[1][:40]))), *out(c)],
         ("train_label.json:2 is not JSON",), ("fix or remove that line",)),
    Case("tusimple-missing-h_samples", "lane_tusimple",
         lambda c: [*LANE_LABELS, "--data-root", str(c.tusimple(_drop_h_samples)), *out(c)],
         ("train_label.json:2", "has no 'h_samples'"), ("fix or remove that line",)),
    Case("tusimple-corrupt-frame", "lane_tusimple",
         lambda c: [*LANE_LABELS, *LANE_SMALL, "--data-root",
                    str(c.tusimple(damage_root=lambda root: _truncate(root / "clips/train/00001/20.jpg", 200))), *out(c)],
         ("cannot decode image", "clips/train/00001/20.jpg"), ("replace the file or drop its label line",),
         subprocess=True),  # read in a DataLoader worker (the paper profile's num_workers), whose pipes outlive an in-process test
    Case("lane-resume-with-a-foreign-cached-dense-model", "lane_tusimple",
         lambda c: _foreign_dense_cache(c, c.tusimple(), [*LANE_LABELS, *LANE_SMALL, "--resume"]),
         ("dense/ufld-resnet18-w8_tusimple_", ".pt does not fit this UFLD", "Missing key(s)"), ("delete the stale cache file",)),
    # detection data
    Case("yolo-data-yaml-missing", "detection_yolo",
         lambda c: ["--profile", "paper", "--no-progress", "--data-root", str(c.write("coco/README", "").parent), *out(c)],
         ("data YAML", "coco.yaml not found"), ("--data-root holding it or --set data.yaml=PATH",)),
    Case("yolo-data-yaml-malformed", "detection_yolo",
         lambda c: ["--profile", "paper", "--no-progress", "--data-root", str(c.write("coco/coco.yaml", "train: [images\n").parent), *out(c)],
         ("coco.yaml", "malformed YAML"), ("fix the syntax",)),
    # checkpoints and training
    Case("nan-loss", "classification", lambda c: [*CLS_TINY, "--set", "optimizer.lr=1e30", *out(c)],
         ("training loss is nan in prune epoch 0",), ("lower the learning rate or rho",)),
    Case("resume-checkpoint-of-another-model", "classification",
         lambda c: [*c.resume(keep_results=False), "--set", "model.width=0.125"],
         ("checkpoint.pt does not fit", "size mismatch"), ("resume with the model settings that wrote it", "without --resume")),
    Case("resume-checkpoint-of-another-config", "classification",
         lambda c: [*c.resume(keep_results=False), "--set", "pruning.rho=0.5"],
         ("checkpoint.pt was written by a run with another configuration",), ("resume with the same settings or use a new --out",)),
    Case("resume-finished-run-of-another-config", "classification",
         lambda c: [*c.resume(keep_results=True), "--set", "pruning.rho=0.5"],
         ("holds a finished run with another configuration",), ("use a new --out or run without --resume",)),
    Case("resume-truncated-checkpoint", "classification",
         lambda c: c.resume(keep_results=False, damage=lambda run: _truncate(run / "checkpoint.pt", 2000)),
         ("checkpoint.pt cannot be read", "truncated or not a PyTorch file"), ("delete it and run again without --resume",)),
    Case("missing-dense-checkpoint", "classification",
         lambda c: [*CLS_TINY, "--dense-checkpoint", str(c.tmp / "dense.pt"), *out(c)],
         ("dense checkpoint", "dense.pt does not exist"), ("pass an existing PyTorch state-dict file to --dense-checkpoint",)),
    Case("dense-checkpoint-of-another-model", "classification",
         lambda c: [*CLS_TINY, "--dense-checkpoint", str(_other_model_state(c)), *out(c)],
         ("dense checkpoint", "other.pt does not fit this CifarResNet", "Missing key(s)"), ("check model.arch, model.width",)),
    # tables and figures
    Case("table-without-results", "figures.table4", lambda c: ["--runs", str(c.folder("runs")), *out(c)],
         ("no lane_tusimple results under",), ("run `make table4`",), subprocess=True),
    Case("table-with-a-broken-results-file", "figures.table1",
         lambda c: ["--runs", str(c.write("runs/a/results.json", '{"task": "classification",').parent.parent), *out(c)],
         ("cannot read results file", "results.json"), ("rerun the run that writes it",)),
]


def _files(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every file under ``folder`` with its size and modification time, and every folder (None)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_naming_the_fix(case, tmp_path, kitti_scenes, request, monkeypatch, capsys):
    for name in ("DATA_ROOT", "PROFILE"):
        monkeypatch.delenv(name, raising=False)
    ctx = Ctx(tmp_path, kitti_scenes, request.getfixturevalue("finished_run") if case.id.startswith("resume") else None)
    argv = case.argv(ctx)
    before = _files(ctx.out)
    if case.subprocess:
        env = {k: v for k, v in os.environ.items() if k not in ("DATA_ROOT", "PROFILE")}
        proc = subprocess.run([sys.executable, "-m", case.entry, *argv], cwd=REPO, capture_output=True, text=True, timeout=300,
                              env={**env, "OMP_NUM_THREADS": "1", **case.env})
        code, err = proc.returncode, proc.stderr
    else:
        for name, value in case.env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            importlib.import_module(ENTRIES[case.entry]).main(argv)
        code, err = exit_info.value.code, capsys.readouterr().err

    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in case.problem + case.fix:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    after = _files(ctx.out)
    assert after == before, f"--out changed: {sorted(set(after) ^ set(before))}"  # nothing written, nothing half-written
    assert not any(name.endswith("results.json") for name in after) or case.id == "resume-finished-run-of-another-config"


def test_every_task_folder_core_and_figures_have_cases():
    entries = {c.entry.split(".")[0] if c.entry.startswith("figures") else c.entry for c in CASES}
    assert entries == {"examples.digits_demo", "classification", "pointpillars_kitti", "lane_tusimple", "detection_yolo", "figures"}
    assert len(CASES) >= 18 and sum(c.subprocess for c in CASES) >= 2
