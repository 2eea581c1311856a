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

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from common.data import image_ops
from common.data.idx import read_idx
from common.data.resumable import ResumableDataLoader
from common.data.seeding import generator_for
from common.errors import ConfigError, DataError

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


class ImageBatches(Dataset):
    """In-memory uint8 images served whole batches at a time (``__getitems__``), transformed batched.

    Augmentation randomness is a function of (seed, the batch's indices), so it is reproducible with
    any number of workers and still differs between epochs (the shuffled batches differ).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor, *,
                 pad_to: int, augment: bool, seed: int) -> None:
        self.images, self.labels, self.indices = images, labels, indices
        self.pad_to, self.augment, self.seed = pad_to, augment, seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.indices[torch.as_tensor(positions, dtype=torch.int64)]
        x = image_ops.center_pad(image_ops.to_unit_float(self.images[idx]), self.pad_to)
        if self.augment:
            weights = torch.arange(1, len(idx) + 1, dtype=torch.int64) * 1_000_003
            generator = generator_for(self.seed, int((idx * weights).sum()), len(idx))
            x = image_ops.random_crop_flip(x, 4, generator)
        return image_ops.normalize(x, MEAN, STD), self.labels[idx]

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([position])
        return x[0], y[0]


def balanced_prefix(order: torch.Tensor, labels: torch.Tensor, size: int) -> torch.Tensor:
    """The first ``size // classes`` indices of each class in ``order`` (kept in ``order``'s sequence)."""
    classes = int(labels.max()) + 1
    per_class = size // classes
    chosen = torch.zeros(len(order), dtype=torch.bool)
    for c in range(classes):
        hits = (labels[order] == c).nonzero().flatten()
        if len(hits) < per_class:
            raise ConfigError(f"balanced subset of {size} needs {per_class} examples of class {c}, "
                              f"only {len(hits)} available")
        chosen[hits[:per_class]] = True
    return order[chosen]


def _batch_passthrough(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """collate_fn for datasets that already return whole batches."""
    return batch


class FashionMNISTDataModule(pl.LightningDataModule):
    """Fashion-MNIST train/val/test loaders; images (B, 1, S, S) normalised, S = ``pad_to``.

    ``val_size`` examples are held out of the 60k training images by a permutation seeded with
    ``split_seed`` (fixed across training seeds, so every seed is validated on the same images);
    ``seed`` drives the training order and augmentation. ``subset`` keeps the first ``subset``
    training examples of that permutation (``balanced=True``: the first ``subset // 10`` of each class,
    a deterministic class-balanced subset), and ``test_size`` the first ``test_size`` test images,
    for smoke runs.
    """

    num_classes = NUM_CLASSES
    in_channels = 1

    def __init__(self, batch_size: int = 128, root: str | Path | None = None, pad_to: int = 28,
                 augment: bool = False, val_size: int = 5000, seed: int = 0, subset: int | None = None,
                 eval_batch_size: int = 1000, num_workers: int = 0, split_seed: int = 0,
                 test_size: int | None = None, balanced: bool = False) -> None:
        super().__init__()
        if pad_to not in (28, 32):
            raise ConfigError(f"pad_to must be 28 or 32, got {pad_to!r}")
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if test_size is not None and test_size < 1:
            raise ConfigError(f"test_size must be >= 1 or None, got {test_size}")
        if val_size < 0 or (subset is not None and subset < 1) or num_workers < 0:
            raise ConfigError(f"need val_size >= 0, subset >= 1 or None, num_workers >= 0; got "
                              f"val_size={val_size}, subset={subset}, num_workers={num_workers}")
        self.batch_size, self.root, self.pad_to, self.augment = batch_size, root, pad_to, augment
        self.val_size, self.seed, self.subset, self.split_seed = val_size, seed, subset, split_seed
        self.eval_batch_size, self.num_workers = eval_batch_size, num_workers
        self.image_size, self.test_size, self.balanced = pad_to, test_size, balanced
        self._sets: dict[str, ImageBatches] = {}

    def setup(self, stage: str | None = None) -> None:
        if self._sets:
            return
        x, y = load_fashion_mnist("train", self.root)
        if self.val_size >= len(x):
            raise ConfigError(f"val_size={self.val_size} leaves no training data ({len(x)} train images)")
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = perm[: self.val_size], perm[self.val_size:]
        if self.subset is not None:
            train_idx = balanced_prefix(train_idx, y, self.subset) if self.balanced else train_idx[: self.subset]
        tx, ty = load_fashion_mnist("test", self.root)
        common = {"pad_to": self.pad_to, "seed": self.seed}
        self._sets = {
            "train": ImageBatches(x, y, train_idx, augment=self.augment, **common),
            "val": ImageBatches(x, y, val_idx, augment=False, **common),
            "test": ImageBatches(tx, ty, torch.arange(min(len(tx), self.test_size or len(tx))), augment=False,
                                 **common),
        }

    @property
    def num_train(self) -> int:
        """Training examples after the val hold-out and ``subset`` (sets the steps per epoch)."""
        return len(self._dataset("train"))

    def _dataset(self, name: str) -> ImageBatches:
        self.setup()
        return self._sets[name]

    def _loader(self, name: str, batch_size: int, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        cls = ResumableDataLoader if shuffle else DataLoader  # the train loader's position survives a checkpoint
        return cls(self._dataset(name), batch_size=batch_size, shuffle=shuffle, generator=generator,
                          collate_fn=_batch_passthrough, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_size == 0:
            return []  # Lightning skips validation for an empty list
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)
