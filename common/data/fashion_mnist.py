"""Fashion-MNIST from local IDX files, with a Lightning DataModule that keeps everything in memory.

The machines have no network, so the data comes from (in order): an explicit ``root``, the directory
in ``$OPTREPRO_FASHION_MNIST``, the Debian package ``dataset-fashion-mnist``, a previous torchvision
download in ``~/.cache/optrepro``, and only then a torchvision download (when torchvision is installed).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Literal

import torch

from common.data.idx import read_idx
from common.data.images import ImageBatches, ImageDataModule, balanced_prefix
from common.errors import DataError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "OPTREPRO_FASHION_MNIST"
CACHE_DIR = Path.home() / ".cache" / "optrepro"
MEAN, STD = 0.2860, 0.3530
NUM_CLASSES = 10
IMAGE_SIZE = 28
FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

Split = Literal["train", "test"]
__all__ = ["FashionMNISTDataModule", "ImageBatches", "balanced_prefix", "find_fashion_mnist", "load_fashion_mnist"]


def _hint() -> str:
    return (
        "install the Debian package: sudo apt-get install dataset-fashion-mnist, "
        f"or pip install torchvision and run online (downloads to {CACHE_DIR}), "
        f"or set {ENV_VAR}=DIR (a directory with the four IDX files, .gz or raw)"
    )


def _find(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _has_split(directory: Path, split: Split) -> bool:
    return all(_find(directory, stem) is not None for stem in FILES[split])


def _torchvision_download(cache_dir: Path) -> Path | None:
    """Download via torchvision into ``cache_dir``; None when torchvision is not installed."""
    if importlib.util.find_spec("torchvision") is None:
        return None
    try:
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(str(cache_dir), train=train, download=True)
    except Exception as exc:  # any failure (offline, broken install) means "not available"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"Fashion-MNIST torchvision download failed ({msg}); {_hint()}") from None
    return cache_dir / "FashionMNIST" / "raw"


def find_fashion_mnist(split: Split, root: str | Path | None = None) -> Path:
    """Directory holding ``split``'s image and label files, searched in the module docstring's order.

    An explicit ``root`` or ``$OPTREPRO_FASHION_MNIST`` that lacks the files is an error, not a reason
    to fall back silently: the user asked for that directory.
    """
    if split not in FILES:
        raise DataError(f"unknown Fashion-MNIST split {split!r}; valid: {sorted(FILES)}")
    looked_for = " and ".join(f"{s}[.gz]" for s in FILES[split])
    explicit = [("root", root), (f"${ENV_VAR}", os.environ.get(ENV_VAR) or None)]
    for label, value in explicit:
        if value is not None:
            directory = Path(value).expanduser()
            if _has_split(directory, split):
                return directory
            raise DataError(f"Fashion-MNIST not found in {label} {directory} (need {looked_for}); {_hint()}")
    for directory in (DEBIAN_DIR, CACHE_DIR / "FashionMNIST" / "raw"):
        if _has_split(directory, split):
            return directory
    downloaded = _torchvision_download(CACHE_DIR)
    if downloaded is not None and _has_split(downloaded, split):
        return downloaded
    raise DataError(f"Fashion-MNIST not found (looked in {DEBIAN_DIR} and {CACHE_DIR}); {_hint()}")


@functools.lru_cache(maxsize=8)
def _load_cached(images: Path, labels: Path, _stamp: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        x = read_idx(images)
        y = read_idx(labels)
    except DataError as e:  # say which dataset and how to get a good copy, not only which bytes are wrong
        raise DataError(f"Fashion-MNIST file unusable: {e}; {_hint()}") from None
    if x.dim() != 3 or tuple(x.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{images}: expected images shaped N x 28 x 28, got {list(x.shape)}")
    if y.dim() != 1:
        raise DataError(f"{labels}: expected a 1-D label vector, got shape {list(y.shape)}")
    if len(x) != len(y):
        raise DataError(f"Fashion-MNIST count mismatch: {len(x)} images in {images}, "
                        f"{len(y)} labels in {labels}")
    if len(y) and int(y.max()) >= NUM_CLASSES:
        raise DataError(f"{labels}: label {int(y.max())} outside 0..{NUM_CLASSES - 1}")
    return x, y.to(torch.int64)


def load_fashion_mnist(split: Split, root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images N x 28 x 28, int64 labels N) for ``split``; cached per resolved file and mtime.

    The returned tensors are shared with the cache: treat them as read-only.
    """
    directory = find_fashion_mnist(split, root)
    paths = [_find(directory, stem) for stem in FILES[split]]
    images, labels = (p.resolve() for p in paths if p is not None)
    stamp = tuple(v for p in (images, labels) for v in (p.stat().st_mtime_ns, p.stat().st_size))
    return _load_cached(images, labels, stamp)


class FashionMNISTDataModule(ImageDataModule):
    """Fashion-MNIST train/val/test loaders; images (B, 1, S, S) normalised, S = ``pad_to`` (28, or 32 zero-padded
    for CIFAR-shaped networks). Of the 60k training images ``val_size`` are held out; the rest of the arguments
    are :class:`common.data.images.ImageDataModule`'s.
    """

    num_classes = NUM_CLASSES
    in_channels = 1
    native_size = IMAGE_SIZE
    pad_choices = (28, 32)
    mean, std = MEAN, STD

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return load_fashion_mnist(split, self.root)  # type: ignore[arg-type]
