"""DenseNet-BC for CIFAR (Huang et al. 2017, "Densely Connected Convolutional Networks"), the network Defazio &
Bottou call "densenet-40-36" (depth 40, growth rate 36).

Layout: a 3x3 stem conv to 2k channels; three dense blocks of n bottleneck layers (BN-ReLU-conv1x1(4k)-BN-ReLU-
conv3x3(k), output concatenated to the input), depth = 6n + 4; between blocks a transition BN-ReLU-conv1x1 that
halves the channels (compression 0.5) followed by 2x2 average pooling; then BN-ReLU, global average pooling and a
linear classifier. dvr's densenet-40-36 uses these bottleneck layers and compression 2 (its default ``block``),
i.e. DenseNet-BC: n = 6 layers per block, 72 -> 288 -> 144 -> 360 -> 180 -> 396 channels, 1.54M parameters for
10 classes. ``bottleneck=False`` gives the plain DenseNet (BN-ReLU-conv3x3 layers, n = (depth - 4) / 3).
Why it exists: one of A2's deep, batch-normalised networks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DenseLayer(nn.Module):
    """One layer of a dense block: k new feature maps concatenated to its input."""

    def __init__(self, in_planes: int, growth_rate: int, bottleneck: bool) -> None:
        super().__init__()
        self.bottleneck = bottleneck
        mid = 4 * growth_rate if bottleneck else in_planes
        if bottleneck:
            self.bn0 = nn.BatchNorm2d(in_planes)
            self.conv0 = nn.Conv2d(in_planes, mid, 1, bias=False)
        self.bn = nn.BatchNorm2d(mid)
        self.conv = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv0(F.relu(self.bn0(x))) if self.bottleneck else x
        out = self.conv(F.relu(self.bn(out)))
        return torch.cat((x, out), 1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 (compression) -> 2x2 average pool."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    """Stem conv3x3(2k) -> [dense block -> transition] x 2 -> dense block -> BN-ReLU -> avg pool -> fc."""

    def __init__(self, depth: int = 40, growth_rate: int = 36, num_classes: int = 10, in_channels: int = 3,
                 bottleneck: bool = True, compression: float = 0.5) -> None:
        super().__init__()
        per = 6 if bottleneck else 3
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 4 + per or (depth - 4) % per:
            raise ValueError(f"depth must be {per}n+4 with n >= 1 for bottleneck={bottleneck}, got {depth!r}")
        for name, value in (("growth_rate", growth_rate), ("num_classes", num_classes),
                            ("in_channels", in_channels)):
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"compression must be in (0, 1], got {compression!r}")
        n = (depth - 4) // per
        planes = 2 * growth_rate
        self.conv1 = nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for block in range(3):
            layers: list[nn.Module] = []
            for _ in range(n):
                layers.append(DenseLayer(planes, growth_rate, bottleneck))
                planes += growth_rate
            stages.append(nn.Sequential(*layers))
            if block < 2:
                out = int(math.floor(planes * compression))
                stages.append(Transition(planes, out))
                planes = out
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(planes)
        self.fc = nn.Linear(planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.features(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def densenet(depth: int = 40, growth_rate: int = 36, num_classes: int = 10, in_channels: int = 3,
             bottleneck: bool = True, compression: float = 0.5) -> DenseNet:
    """DenseNet(-BC) for CIFAR; the defaults are dvr's densenet-40-36."""
    return DenseNet(depth, growth_rate, num_classes, in_channels, bottleneck, compression)
