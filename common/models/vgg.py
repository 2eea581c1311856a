"""CIFAR-style VGG with batch norm (the AdaBound demo code's models, which AdaBelief's CIFAR runs use)."""

from __future__ import annotations

import torch
from torch import nn

CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """conv3x3-BN-ReLU stacks with max pools, then one linear layer on the 512-d pooled features.
    Built for 32x32 inputs (five pools); smaller inputs are padded by the caller (Fashion-MNIST: pad_to=32)."""

    def __init__(self, name: str = "vgg11", num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if name not in CONFIGS:
            raise ValueError(f"unknown VGG {name!r}; valid: {sorted(CONFIGS)}")
        layers: list[nn.Module] = []
        c = in_channels
        for v in CONFIGS[name]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 32 or x.shape[-2] != 32:
            raise ValueError(f"VGG expects 32x32 inputs, got {tuple(x.shape[-2:])}")
        return self.classifier(torch.flatten(self.features(x), 1))


def vgg(name: str = "vgg11", num_classes: int = 10, in_channels: int = 3) -> VGG:
    return VGG(name, num_classes, in_channels)
