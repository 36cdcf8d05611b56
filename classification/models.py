"""Classification models: CIFAR ResNet-18/50 and VGG-16-BN, and ResNet-18/50 for ImageNet.

The ResNets keep torchvision's parameter names (``conv1``, ``layer1.0.conv1``, ``downsample.0``,
``fc``), so one sparsity config serves both stems. ``width`` scales every channel count, so CPU
and smoke runs can use narrow versions of the same architectures.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from core.errors import ConfigError
from core.harness.task import load_weights

__all__ = ["ARCHITECTURES", "build_model", "CifarResNet", "VGG", "load_checkpoint_weights"]

# blocks per stage (ResNet) and channel plan (VGG, "M" = 2x2 max-pool)
_RESNET_STAGES = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet50": ("bottleneck", (3, 4, 6, 3))}
_VGG16_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
ARCHITECTURES = ("resnet18", "resnet50", "vgg16")


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, as in torchvision's v1.5), 1x1 expand by 4, with a shortcut."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_planes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes))


class CifarResNet(nn.Module):
    """ResNet-18/50 with a CIFAR stem (3x3 conv, stride 1, no max-pool) or the ImageNet stem
    (7x7 conv, stride 2, 3x3 max-pool), at any channel ``width``."""

    def __init__(self, depth: str = "resnet18", num_classes: int = 10, width: float = 1.0, stem: str = "cifar") -> None:
        super().__init__()
        if depth not in _RESNET_STAGES:
            raise ConfigError(f"unknown ResNet '{depth}'; use one of {sorted(_RESNET_STAGES)}")
        kind, blocks = _RESNET_STAGES[depth]
        block: Callable[..., nn.Module] = BasicBlock if kind == "basic" else Bottleneck
        expansion = block.expansion  # type: ignore[attr-defined]
        stem_planes = _scaled(64, width)
        if stem == "cifar":
            self.conv1 = nn.Conv2d(3, stem_planes, 3, 1, 1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        elif stem == "imagenet":
            self.conv1 = nn.Conv2d(3, stem_planes, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            raise ConfigError(f"unknown stem '{stem}'; use cifar or imagenet")
        self.bn1 = nn.BatchNorm2d(stem_planes)
        self.relu = nn.ReLU(inplace=True)
        in_planes = stem_planes
        for index, (count, base) in enumerate(zip(blocks, (64, 128, 256, 512))):
            planes = _scaled(base, width)
            stage = []
            for i in range(count):
                stage.append(block(in_planes, planes, 2 if (i == 0 and index > 0) else 1))
                in_planes = planes * expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG(nn.Module):
    """VGG-16 with batch norm for 32x32 inputs: 13 conv-BN-ReLU layers and one linear classifier.

    Convolutions are named ``features.convN`` so that ``*conv*.weight`` selects them.
    """

    def __init__(self, num_classes: int = 10, width: float = 1.0, plan: tuple = _VGG16_PLAN) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        in_planes, conv_index, pool_index = 3, 0, 0
        for item in plan:
            if item == "M":
                pool_index += 1
                layers.append((f"pool{pool_index}", nn.MaxPool2d(2, 2, ceil_mode=True)))  # ceil: tiny inputs keep 1x1
                continue
            conv_index += 1
            planes = _scaled(int(item), width)
            layers += [(f"conv{conv_index}", nn.Conv2d(in_planes, planes, 3, padding=1, bias=False)),
                       (f"bn{conv_index}", nn.BatchNorm2d(planes)), (f"relu{conv_index}", nn.ReLU(inplace=True))]
            in_planes = planes
        self.features = nn.Sequential(OrderedDict(layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def _torchvision_resnet(arch: str, num_classes: int, pretrained: bool) -> nn.Module:
    """torchvision's ResNet; ImageNet weights through torchvision's weights API when ``pretrained``
    (read from the torch hub cache when present there, downloaded otherwise)."""
    import torchvision

    builder = getattr(torchvision.models, arch)
    weights = None
    if pretrained:
        if num_classes != 1000:
            raise ConfigError(f"pretrained ImageNet weights need num_classes=1000, got {num_classes}; set pretrained: false")
        weights = "IMAGENET1K_V1"  # the weights whose accuracy the paper lists (top-5 89.07 / 92.87)
    return builder(weights=weights, num_classes=num_classes)


def build_model(arch: str, num_classes: int = 10, width: float = 1.0, stem: str = "cifar", pretrained: bool = False) -> nn.Module:
    """A classifier by name: ``resnet18``, ``resnet50`` or ``vgg16`` (VGG-16-BN).

    ``stem: imagenet`` at ``width: 1`` is torchvision's own ResNet (``pretrained`` loads its
    ImageNet weights); other widths use the same layout at reduced width.
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown model '{arch}'; use one of {', '.join(ARCHITECTURES)}")
    if not width > 0:
        raise ConfigError(f"model width {width} must be positive, e.g. 1.0 or 0.25")
    if pretrained and not (stem == "imagenet" and width == 1.0 and arch.startswith("resnet")):
        raise ConfigError("pretrained weights exist only for the ImageNet ResNets at width 1; set pretrained: false")
    if arch == "vgg16":
        if stem != "cifar":
            raise ConfigError("VGG-16 is built for CIFAR inputs only; use stem: cifar")
        return VGG(num_classes, width)
    if stem == "imagenet" and width == 1.0:
        return _torchvision_resnet(arch, num_classes, pretrained)
    return CifarResNet(arch, num_classes, width, stem)


def load_checkpoint_weights(model: nn.Module, path: str | Path) -> None:
    """Load a dense checkpoint (a state dict, or a dict holding one under ``model`` / ``state_dict``)."""
    load_weights(model, path, "check model.arch, model.width and the data set's classes, or pass an existing PyTorch state-dict file "
                              "to --dense-checkpoint")
