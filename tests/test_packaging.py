"""The library as users install it: the wheel's metadata, `import core` without the task stacks,
and a docstring on every public name."""
import email
import inspect
import pydoc
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import core

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["core", "classification", "detection_yolo", "pointpillars_kitti", "lane_tusimple", "figures"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from a copy of the sources (the checkout stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "-w", str(dist), str(src)], check=True, timeout=300)
    (path,) = dist.glob("slr_pruning-*.whl")
    return path


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_wheel_requires_only_the_library_dependencies(wheel):
    meta = metadata(wheel)
    requires = meta.get_all("Requires-Dist")
    unconditional = sorted(r for r in requires if "extra ==" not in r)
    assert unconditional == ["pyyaml>=5.4", "torch>=2.1"]
    assert not [r for r in requires if "==" in r.split(";")[0]], "no exact pins"
    assert meta["Requires-Python"] == ">=3.10"
    assert {"classification", "yolo", "kitti", "lane", "all"} <= set(meta.get_all("Provides-Extra"))
    yolo = [r.split(";")[0].strip() for r in requires if 'extra == "yolo"' in r]
    assert "ultralytics>=8.4" in yolo
    with zipfile.ZipFile(wheel) as archive:
        files = archive.namelist()
    assert "core/__init__.py" in files and "core/pruning/names.py" in files
    assert not [f for f in files if f.startswith("tests/")]


BLOCKER = textwrap.dedent("""
    import importlib.machinery, sys
    HARNESS = {"numpy", "tqdm", "torchvision", "ultralytics", "sklearn", "matplotlib", "tensorboard", "PIL",
               "spconv", "pycocotools", "scipy", "nni"}

    class NotInstalled(importlib.machinery.PathFinder):
        # the path finder, blind to the task stacks: as if only torch and PyYAML were installed
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in HARNESS:
                return None
            return super().find_spec(name, path, target)

    sys.meta_path[:] = [NotInstalled if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
    import torch
    from torch import nn
    import core
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    pruner = core.SLR(model, {"target_rate": 4.0})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner.attach(optimizer)
    for _ in range(2):
        loss = model(torch.randn(4, 8)).square().mean()
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        pruner.update(loss)
    masks = pruner.hard_prune()
    masks.attach(optimizer)
    print(core.compression_stats(model, pruner.names).pruned_layers_rate)
    print(sorted(m for m in sys.modules if m.split(".")[0] in HARNESS))
""")


def test_import_core_needs_only_torch_and_pyyaml():
    result = subprocess.run([sys.executable, "-c", BLOCKER], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rate, loaded = result.stdout.split("\n")[:2]
    assert float(rate) == 4.0 and loaded == "[]"


def public_objects():
    for name in core.__all__:
        obj = getattr(core, name)
        yield name, obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, (property, classmethod, staticmethod))):
                    yield f"{name}.{attr}", member


def test_every_public_name_has_a_docstring():
    missing = [name for name, obj in public_objects() if not inspect.getdoc(obj.__func__ if isinstance(obj, (classmethod, staticmethod)) else obj)]
    assert missing == []


@pytest.mark.parametrize("pruner", [core.SLR, core.ADMM])
def test_help_of_a_pruner_documents_the_forms_of_model_and_config(pruner):
    text = " ".join(pydoc.render_doc(pruner, renderer=pydoc.plaintext).replace("|", " ").split())
    for phrase in ("model: any ``nn.Module``", "``_orig_mod.``", "a tied parameter may be named by any of its names",
                   "a :class:`~core.SparsityConfig`", "a mapping in the YAML form", "a path (``str`` or ``Path``) to such a YAML file",
                   "``target_rate`` selects every weight with at least two dimensions", "``module_types``",
                   "``attach(optimizer)`` or ``add_penalty_grad()``, not both"):
        assert phrase in text
