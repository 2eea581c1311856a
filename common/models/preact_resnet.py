"""Pre-activation CIFAR ResNets (He et al. 2016, "Identity Mappings in Deep Residual Networks"), the variant
Defazio & Bottou's ratio plots use for "resnet-small" and "resnet110".

Blocks are BN-ReLU-conv3x3-BN-ReLU-conv3x3 with the identity added after the second conv; where the shape changes
the shortcut is a 1x1 strided convolution of the pre-activated input (no BN on it). Three stages at widths
(w, 2w, 4w), n blocks each, depth 6n + 2. As in dvr's CIFAR ResNet, the last stage's output goes straight to
global average pooling (no final BN-ReLU). dvr's two networks:

- ``resnet-small``: n = 3 (depth 20) at width 8 (8/16/32 channels), 68k parameters for 10 classes;
- ``resnet110``: n = 18 (depth 110) at width 16, 1.73M parameters.

Why not :mod:`common.models.resnet`: that is the post-activation ResNet of the original paper (option-A
shortcuts); A2 compares networks by depth, and the block type is part of dvr's networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 + shortcut (identity, or 1x1 conv of the pre-activated input)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + skip


class PreActResNet(nn.Module):
    """conv3x3(w)-BN-ReLU stem -> 3 stages of n PreActBlocks (w, 2w, 4w; stride 1, 2, 2) -> avg pool -> fc."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages: list[nn.Module] = []
        in_planes = width
        for i, planes in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for j in range(blocks_per_stage):
                blocks.append(PreActBlock(in_planes, planes, 2 if (i > 0 and j == 0) else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def preact_resnet(depth: int, num_classes: int = 10, in_channels: int = 3, width: int = 16) -> PreActResNet:
    """A pre-activation CIFAR ResNet of depth 6n + 2 (20, 56, 110, ...) and base width ``width``."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"depth must be 6n+2 with n >= 1 (8, 14, 20, ..., 110), got {depth!r}")
    for name, value in (("width", width), ("num_classes", num_classes), ("in_channels", in_channels)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return PreActResNet((depth - 2) // 6, num_classes, in_channels, width)
