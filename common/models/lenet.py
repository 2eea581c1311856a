"""LeNet-5 for small images, as Defazio & Bottou's CIFAR-10 "default" network (dvr's ratio plots).

Two 5x5 valid convolutions (6 and 16 channels), each followed by ReLU and a 2x2 max pool, then three fully
connected layers (120, 84, classes). dvr runs it with batch norm after every conv and hidden fc layer (its
``batchnorm`` flag defaults to on), so ``batchnorm=True`` is the default here. Why it exists: it is the shallow
end of A2's model family, the network where variance reduction still helps.
"""

from __future__ import annotations

import torch
from torch import nn


class LeNet(nn.Module):
    """conv5x5(6)-[BN]-ReLU-pool2 -> conv5x5(16)-[BN]-ReLU-pool2 -> fc120-[BN]-ReLU -> fc84-[BN]-ReLU -> fc."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                 batchnorm: bool = True) -> None:
        super().__init__()
        side = ((image_size - 4) // 2 - 4) // 2  # 32 -> 28 -> 14 -> 10 -> 5; 28 -> 24 -> 12 -> 8 -> 4
        if side < 1:
            raise ValueError(f"image_size must be at least 16, got {image_size!r}")
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

        def norm(kind: type[nn.Module], n: int) -> nn.Module:
            return kind(n) if batchnorm else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), norm(nn.BatchNorm2d, 6), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), norm(nn.BatchNorm2d, 16), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120), norm(nn.BatchNorm1d, 120), nn.ReLU(),
            nn.Linear(120, 84), norm(nn.BatchNorm1d, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def lenet(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, batchnorm: bool = True) -> LeNet:
    """dvr's CIFAR LeNet: 62,006 parameters without batch norm, 62,458 with it (10 classes, 32x32x3)."""
    return LeNet(num_classes, in_channels, image_size, batchnorm)
