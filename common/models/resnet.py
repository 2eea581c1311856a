"""CIFAR-style ResNet (He et al. 2016, "Deep Residual Learning", section 4.2).

Three stages of BasicBlocks at widths (w, 2w, 4w) with n blocks each, depth = 6n + 2: ResNet-20 is n = 3,
0.27M parameters. The layout follows the paper and bearpaw/pytorch-classification's
``models/cifar/resnet.py``; the stem keeps full resolution, so 28x28 (Fashion-MNIST) and 32x32 (CIFAR)
both work, and global average pooling makes the head independent of the input size.

Shortcuts: ``shortcut="A"`` (default) is the paper's CIFAR choice: identity, with stride-2 subsampling and
zero-padded channels where the shape changes (no extra parameters). ``shortcut="B"`` is bearpaw's 1x1
convolution + BatchNorm projection at those points.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Shortcut = Literal["A", "B"]


class _PadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and zero-pad the new channels (parameter-free)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra = planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: Shortcut = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = _PadShortcut(in_planes, planes, stride)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem conv3x3(w) -> 3 stages of n BasicBlocks (w, 2w, 4w; stride 1, 2, 2) -> global avg pool -> fc."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_channels: int = 3, width: int = 16,
                 shortcut: Shortcut = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages = []
        in_planes = width
        for i, planes in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for j in range(blocks_per_stage):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(in_planes, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # Kaiming normal (fan_out) for convs, as bearpaw's normal_(0, sqrt(2 / (k*k*out)));
        # BN starts as the identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def resnet(depth: int, num_classes: int = 10, in_channels: int = 3, width: int = 16,
           shortcut: Shortcut = "A") -> CifarResNet:
    """CIFAR ResNet of the given depth (6n + 2: 8, 14, 20, 32, 44, 56, 110, ...)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"depth must be 6n+2 with n >= 1 (8, 14, 20, 32, ...), got {depth!r}")
    if width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    if shortcut not in ("A", "B"):
        raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")
    return CifarResNet((depth - 2) // 6, num_classes, in_channels, width, shortcut)


def resnet20(num_classes: int = 10, in_channels: int = 3, shortcut: Shortcut = "A") -> CifarResNet:
    """ResNet-20 (0.27M parameters), the paper's smallest CIFAR network."""
    return resnet(20, num_classes, in_channels, shortcut=shortcut)


def small_resnet(num_classes: int = 10, in_channels: int = 3, width: int = 16,
                 shortcut: Shortcut = "A") -> CifarResNet:
    """ResNet-8 (one block per stage): the same architecture family, cheap enough for CPU presets."""
    return resnet(8, num_classes, in_channels, width, shortcut)
