"""Exports of a pruned detection checkpoint keep every zero: ONNX when the optional ``onnx`` is
installed (skipped otherwise); without it the export is a one-line error naming the extra."""
import importlib.util
import tempfile
from collections import Counter

import pytest
import torch

from detection_yolo.ultralytics_env import prepare_ultralytics

prepare_ultralytics(tempfile.mkdtemp(prefix="yolo_cfg_"))  # before anything imports Ultralytics

from ultralytics import YOLO  # noqa: E402

from core import build_pruner, compression_stats  # noqa: E402
from core.errors import ConfigError  # noqa: E402
from detection_yolo.layers import default_sparsity, expand_patterns  # noqa: E402


@pytest.fixture
def pruned_checkpoint(tmp_path):
    """YOLOv3-tiny from YAML, hard-pruned to 2x over the default layers, saved as Ultralytics saves it."""
    torch.manual_seed(0)
    model = YOLO("yolov3-tiny.yaml")
    pruner = build_pruner("slr", model.model, expand_patterns(default_sparsity(2.0), model.model))
    pruner.hard_prune()
    path = tmp_path / "pruned.pt"
    model.save(str(path))
    names = list(pruner.names)
    assert compression_stats(YOLO(str(path)).model, names).pruned_layers_rate == pytest.approx(2.0, rel=1e-3)
    return path, names


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed")
def test_onnx_export_without_onnx_names_the_extra(pruned_checkpoint):
    from detection_yolo.export import export_onnx

    with pytest.raises(ConfigError, match=r"^ONNX export needs the optional package 'onnx', which is not installed; pip install 'slr-pruning\[onnx\]'"):
        export_onnx(pruned_checkpoint[0], imgsz=64)


def test_onnx_export_keeps_every_zero(pruned_checkpoint):
    pytest.importorskip("onnx", reason="ONNX export is the optional extra: pip install 'slr-pruning[onnx]'")
    from detection_yolo.export import export_onnx, onnx_weights

    path, names = pruned_checkpoint
    params = dict(YOLO(str(path)).model.named_parameters())
    pruned = Counter((tuple(params[n].shape), int((params[n] == 0).sum())) for n in names)
    exported = onnx_weights(export_onnx(path, imgsz=64))
    kernels = Counter((tuple(a.shape), int((a == 0).sum())) for a in exported.values() if a.ndim == 4)
    assert pruned - kernels == Counter()  # each pruned kernel is there with exactly its zeros (BN fusion scales, never fills)
    total = sum(params[n].numel() for n in names)
    zeros = sum(z for (_, z), k in pruned.items() for _ in range(k))
    assert total / (total - zeros) == pytest.approx(2.0, rel=1e-3)
