"""The 2D bird's-eye-view backbone: three strided conv blocks, each upsampled and concatenated."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["ConvBNReLU", "BEVBackbone"]


class ConvBNReLU(nn.Module):
    """Conv (or transposed conv) without bias, BatchNorm (eps 1e-3, momentum 0.01), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, transposed: bool = False,
                 bn_momentum: float = 0.01) -> None:
        super().__init__()
        conv_cls = nn.ConvTranspose2d if transposed else nn.Conv2d
        self.conv = conv_cls(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class BEVBackbone(nn.Module):
    """Blocks of ``layer_nums`` 3x3 convs after a strided 3x3 conv; deconvs bring each to one size."""

    def __init__(self, in_channels: int, layer_nums: Sequence[int] = (3, 5, 5), layer_strides: Sequence[int] = (2, 2, 2),
                 num_filters: Sequence[int] = (64, 128, 256), upsample_strides: Sequence[int] = (1, 2, 4),
                 num_upsample_filters: Sequence[int] = (128, 128, 128), bn_momentum: float = 0.01) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        self.deblocks = nn.ModuleList()
        c_in = in_channels
        for n, stride, c, up, c_up in zip(layer_nums, layer_strides, num_filters, upsample_strides, num_upsample_filters, strict=True):
            layers = [nn.ZeroPad2d(1), ConvBNReLU(c_in, c, 3, stride=stride, bn_momentum=bn_momentum)]
            layers += [ConvBNReLU(c, c, 3, padding=1, bn_momentum=bn_momentum) for _ in range(n)]
            self.blocks.append(nn.Sequential(*layers))
            self.deblocks.append(ConvBNReLU(c, c_up, up, stride=up, transposed=True, bn_momentum=bn_momentum))
            c_in = c
        self.out_channels = sum(num_upsample_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ups = []
        for block, deblock in zip(self.blocks, self.deblocks):
            x = block(x)
            ups.append(deblock(x))
        return torch.cat(ups, dim=1)
