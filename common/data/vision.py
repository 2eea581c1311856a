"""Image datamodules by the name a preset's ``data.dataset`` gives (fashion_mnist, cifar10, cifar100).

A module of its own, above the loaders, so that the base class in :mod:`common.data.images` needs none of them.
"""

from __future__ import annotations

from typing import Any

from common.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from common.data.fashion_mnist import FashionMNISTDataModule
from common.data.images import ImageDataModule
from common.errors import ConfigError

IMAGE_DATASETS: dict[str, type[ImageDataModule]] = {
    "fashion_mnist": FashionMNISTDataModule, "cifar10": CIFAR10DataModule, "cifar100": CIFAR100DataModule,
}


def image_datamodule(dataset: str, **kwargs: Any) -> ImageDataModule:
    """The DataModule for a preset's ``data.dataset`` built with ``kwargs`` (ImageDataModule's arguments)."""
    if dataset not in IMAGE_DATASETS:
        raise ConfigError(f"unknown image dataset {dataset!r}; valid: {', '.join(IMAGE_DATASETS)}")
    return IMAGE_DATASETS[dataset](**kwargs)
