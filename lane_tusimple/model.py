"""Ultra-Fast-Lane-Detection (Qin et al., ECCV 2020) for TuSimple, built to the published design.

A ResNet-18 backbone (torchvision) feeds a 1x1 convolution down to 8 channels, flattened
(8 x 9 x 25 = 1800 for a 288x800 input) into a two-layer fully connected head that outputs,
for every lane and row anchor, logits over ``griding_num`` horizontal cells plus "no lane":
``(N, griding_num + 1, anchors, lanes)``. During training an auxiliary segmentation branch on
the stride-8, -16 and -32 features predicts a lane-slot mask at stride 8.

``width`` scales the backbone (64 is ResNet-18; smaller values build the same block layout
narrower, for the smoke profile), and the head sizes follow from it unless given.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from core.errors import CheckpointError
from core.harness.results import read_checkpoint

from .labels import GRIDING_NUM, NUM_LANES, TUSIMPLE_ROW_ANCHORS

__all__ = ["UFLDConfig", "UFLD", "ConvBNReLU", "build_backbone", "load_ufld_checkpoint"]


@dataclass
class UFLDConfig:
    """Sizes of the model; the defaults are UFLD's TuSimple ResNet-18 setting."""

    input_size: tuple[int, int] = (288, 800)
    griding_num: int = GRIDING_NUM
    num_anchors: int = len(TUSIMPLE_ROW_ANCHORS)
    num_lanes: int = NUM_LANES
    width: int = 64  # backbone stem width; 64 = ResNet-18
    aux_channels: int | None = None  # 128 for ResNet-18
    fc_hidden: int = 2048
    pool_channels: int = 8
    use_aux: bool = True
    pretrained_backbone: bool = False  # ImageNet weights from torchvision (downloads; paper profile only)

    def __post_init__(self) -> None:
        self.input_size = tuple(int(v) for v in self.input_size)  # type: ignore[assignment]
        if self.aux_channels is None:
            self.aux_channels = 2 * self.width

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "UFLDConfig":
        return cls(**dict(data))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConvBNReLU(nn.Sequential):
    """Convolution without bias, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, padding: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)


class _NarrowResNet18(nn.Module):
    """ResNet-18's layout (torchvision's BasicBlock, same parameter names) with stem width ``width``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = width
        for i, (cout, stride) in enumerate(((width, 1), (2 * width, 2), (4 * width, 2), (8 * width, 2)), 1):
            downsample = None
            if stride != 1 or cin != cout:
                downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, cout, stride, downsample), BasicBlock(cout, cout)))
            cin = cout
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def build_backbone(width: int = 64, pretrained: bool = False) -> nn.Module:
    """torchvision's ResNet-18 for ``width`` 64 (ImageNet weights when ``pretrained``), else the narrow variant."""
    if width == 64:
        from torchvision.models import ResNet18_Weights, resnet18

        net = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1 if pretrained else None)
        del net.fc, net.avgpool
        return net
    if pretrained:
        raise ValueError("pretrained backbone weights exist only for width 64")
    return _NarrowResNet18(width)


class UFLD(nn.Module):
    """The UFLD lane detector; ``forward`` returns ``cls_logits`` and, in training with ``use_aux``, ``(cls_logits, seg_logits)``."""

    def __init__(self, config: UFLDConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or UFLDConfig()
        h, w = cfg.input_size
        if h % 32 or w % 32:
            raise ValueError(f"input size {cfg.input_size} must be a multiple of 32 in both sides, e.g. (288, 800)")
        c2, c3, c4, a = 2 * cfg.width, 4 * cfg.width, 8 * cfg.width, cfg.aux_channels
        self.backbone = build_backbone(cfg.width, cfg.pretrained_backbone)
        self.cls_dim = (cfg.griding_num + 1, cfg.num_anchors, cfg.num_lanes)
        self.pool = nn.Conv2d(c4, cfg.pool_channels, 1)
        self.pooled_dim = cfg.pool_channels * (h // 32) * (w // 32)
        self.cls = nn.Sequential(
            nn.Linear(self.pooled_dim, cfg.fc_hidden),
            nn.ReLU(),
            nn.Linear(cfg.fc_hidden, self.cls_dim[0] * self.cls_dim[1] * self.cls_dim[2]),
        )
        if cfg.use_aux:
            self.aux_header2 = nn.Sequential(ConvBNReLU(c2, a), ConvBNReLU(a, a), ConvBNReLU(a, a), ConvBNReLU(a, a))
            self.aux_header3 = nn.Sequential(ConvBNReLU(c3, a), ConvBNReLU(a, a), ConvBNReLU(a, a))
            self.aux_header4 = nn.Sequential(ConvBNReLU(c4, a), ConvBNReLU(a, a))
            self.aux_combine = nn.Sequential(
                ConvBNReLU(3 * a, 2 * a, padding=2, dilation=2),
                ConvBNReLU(2 * a, a, padding=2, dilation=2),
                ConvBNReLU(a, a, padding=2, dilation=2),
                ConvBNReLU(a, a, padding=4, dilation=4),
                nn.Conv2d(a, cfg.num_lanes + 1, 1),
            )
        self._init_head()

    def _init_head(self) -> None:
        """Kaiming-normal convolutions and N(0, 0.01) linear layers outside the backbone, as UFLD initialises them."""
        for name, module in self.named_modules():
            if name.startswith("backbone"):
                continue
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        x = b.layer1(x)
        x2 = b.layer2(x)
        x3 = b.layer3(x2)
        return x2, x3, b.layer4(x3)

    def forward(self, x: torch.Tensor):
        x2, x3, x4 = self.features(x)
        logits = self.cls(self.pool(x4).flatten(1)).view(-1, *self.cls_dim)
        if not (self.config.use_aux and self.training):
            return logits
        size = x2.shape[-2:]
        seg = torch.cat([
            self.aux_header2(x2),
            F.interpolate(self.aux_header3(x3), size=size, mode="bilinear", align_corners=False),
            F.interpolate(self.aux_header4(x4), size=size, mode="bilinear", align_corners=False),
        ], dim=1)
        return logits, self.aux_combine(seg)


def load_ufld_checkpoint(model: UFLD, path: str | Path) -> None:
    """Load a checkpoint of this model or of the UFLD code base (``model.model.*`` backbone names)."""
    path = Path(path)
    state = read_checkpoint(path, "checkpoint", "download UFLD's TuSimple ResNet-18 model (tusimple_18.pth) or set dense.checkpoint: null")
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no model state dict; use a TuSimple ResNet-18 UFLD checkpoint")
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("model.model."):
            key = "backbone." + key[len("model.model."):]
        elif key.startswith("model."):
            key = "backbone." + key[len("model."):]
        renamed[key] = value
    own = model.state_dict()
    wanted = {k for k in own if not k.startswith("aux_")} if not model.config.use_aux else set(own)
    missing = sorted(wanted - set(renamed))
    mismatched = sorted(k for k in wanted & set(renamed) if tuple(renamed[k].shape) != tuple(own[k].shape))
    if missing or mismatched:
        raise CheckpointError(f"{path} does not fit UFLD {model.config.input_size} width {model.config.width}: "
                              f"missing {missing[:3]}, shape mismatch {mismatched[:3]}; use a TuSimple ResNet-18 UFLD checkpoint")
    model.load_state_dict({k: renamed[k] for k in wanted}, strict=False)
