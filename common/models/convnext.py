"""ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s"), with the femto size that alpha-SVRG (Yin et al.) trains.

Block: 7x7 depthwise conv -> LayerNorm (over channels) -> Linear 4x expand -> GELU -> Linear project -> layer
scale gamma (init 1e-6) -> residual (optional stochastic depth). Stages are separated by a LayerNorm + 2x2
stride-2 conv downsample; the stem is a ``patch_size`` x ``patch_size`` stride-``patch_size`` conv + LayerNorm;
the head is global average pooling -> LayerNorm -> Linear. Weights: truncated normal (std 0.02), zero biases.

ConvNeXt-femto (the timm size alpha-SVRG calls ConvNeXt-F): depths (2, 2, 6, 2), dims (48, 96, 192, 384);
5.22M parameters with the 1000-class ImageNet head, 4.83M with 10 classes. ImageNet uses ``patch_size=4``
(224 -> 56); for CIFAR-sized inputs (32x32, Fashion-MNIST 28x28) :func:`convnext` picks ``patch_size=1`` unless
told otherwise, so the four stages see 32/16/8/4 pixels instead of collapsing to 1x1 after the third downsample
(a CIFAR-sized stem; parameter count changes only in the stem).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIZES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
    "femto": ((2, 2, 6, 2), (48, 96, 192, 384)),
    "pico": ((2, 2, 6, 2), (64, 128, 256, 512)),
    "nano": ((2, 2, 8, 2), (80, 160, 320, 640)),
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
}


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dim of a (B, C, H, W) tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """dwconv7x7 -> LN -> Linear(4d) -> GELU -> Linear(d) -> gamma * . -> drop path -> + x."""

    def __init__(self, dim: int, layer_scale_init: float = 1e-6, drop_path: float = 0.0) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init)) if layer_scale_init > 0 else None
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dwconv(x).permute(0, 2, 3, 1)  # (B, H, W, C): the Linear layers act per pixel
        out = self.pwconv2(F.gelu(self.pwconv1(self.norm(out))))
        if self.gamma is not None:
            out = self.gamma * out
        out = out.permute(0, 3, 1, 2)
        if self.training and self.drop_path > 0:  # stochastic depth: drop the whole residual branch per sample
            keep = torch.rand(out.shape[0], 1, 1, 1, device=out.device) >= self.drop_path
            out = out * keep.to(out.dtype) / (1.0 - self.drop_path)
        return x + out


class ConvNeXt(nn.Module):
    """Stem -> 4 stages of ConvNeXt blocks (downsampling between them) -> avg pool -> LN -> Linear."""

    def __init__(self, depths: tuple[int, ...] = (2, 2, 6, 2), dims: tuple[int, ...] = (48, 96, 192, 384),
                 num_classes: int = 1000, in_channels: int = 3, patch_size: int = 4, drop_path: float = 0.0,
                 layer_scale_init: float = 1e-6) -> None:
        super().__init__()
        if len(depths) != len(dims) or not depths or min(depths) < 1 or min(dims) < 1:
            raise ValueError(f"depths and dims must be equally long lists of positive ints, got {depths}, {dims}")
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels), ("patch_size", patch_size)):
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path!r}")
        self.downsample = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, dims[0], patch_size, stride=patch_size), LayerNorm2d(dims[0], eps=1e-6))])
        for i in range(1, len(dims)):
            self.downsample.append(nn.Sequential(LayerNorm2d(dims[i - 1], eps=1e-6),
                                                 nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)))
        total = sum(depths)  # stochastic depth grows linearly with depth, 0 at the first block
        rates = [drop_path * i / max(1, total - 1) for i in range(total)]
        self.stages = nn.ModuleList()
        k = 0
        for depth, dim in zip(depths, dims, strict=True):
            self.stages.append(nn.Sequential(*[ConvNeXtBlock(dim, layer_scale_init, rates[k + j])
                                               for j in range(depth)]))
            k += depth
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and not m.weight.is_meta:  # meta: parameter counts, FLOPs
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample, self.stages, strict=True):
            x = stage(down(x))
        return self.head(self.norm(x.mean(dim=(-2, -1))))


def convnext(size: str = "femto", num_classes: int = 1000, in_channels: int = 3, image_size: int = 224,
             patch_size: int | None = None, drop_path: float = 0.0) -> ConvNeXt:
    """A named ConvNeXt size (atto, femto, pico, nano, tiny); ``patch_size`` None means 4 for inputs of 128 pixels
    or more (the ImageNet stem) and 1 below (a CIFAR-sized stem)."""
    if size not in SIZES:
        raise ValueError(f"unknown ConvNeXt size {size!r}; valid: {sorted(SIZES)}")
    depths, dims = SIZES[size]
    if patch_size is None:
        patch_size = 4 if image_size >= 128 else 1
    return ConvNeXt(depths, dims, num_classes, in_channels, patch_size, drop_path)


def convnext_femto(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224,
                   patch_size: int | None = None, drop_path: float = 0.0) -> ConvNeXt:
    """ConvNeXt-F(emto): 5.22M parameters at the ImageNet head."""
    return convnext("femto", num_classes, in_channels, image_size, patch_size, drop_path)
