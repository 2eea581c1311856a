"""In-memory image classification data shared by Fashion-MNIST and CIFAR-10/100: batched datasets and the common
Lightning DataModule (:func:`common.data.vision.image_datamodule` picks one by a preset's ``data.dataset`` name).

A subclass supplies only how to load a split (uint8 images and int64 labels) and the per-channel statistics; the
split, subset, augmentation and loader logic is written once here, so every image dataset behaves the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from common.data import image_ops
from common.data.resumable import ResumableDataLoader
from common.data.seeding import generator_for
from common.errors import ConfigError

Stats = float | Sequence[float]


class ImageBatches(Dataset):
    """In-memory uint8 images served whole batches at a time (``__getitems__``), transformed batched.

    Augmentation randomness is a function of (seed, the batch's indices), so it is reproducible with
    any number of workers and still differs between epochs (the shuffled batches differ). ``mean``/``std`` are
    one value or one per channel; the defaults are Fashion-MNIST's.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor, *,
                 pad_to: int, augment: bool, seed: int, mean: Stats = 0.2860, std: Stats = 0.3530) -> None:
        self.images, self.labels, self.indices = images, labels, indices
        self.pad_to, self.augment, self.seed = pad_to, augment, seed
        self.mean, self.std = mean, std

    def __len__(self) -> int:
        return len(self.indices)

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.indices[torch.as_tensor(positions, dtype=torch.int64)]
        x = image_ops.center_pad(image_ops.to_unit_float(self.images[idx]), self.pad_to)
        if self.augment:
            weights = torch.arange(1, len(idx) + 1, dtype=torch.int64) * 1_000_003
            generator = generator_for(self.seed, int((idx * weights).sum()), len(idx))
            x = image_ops.random_crop_flip(x, 4, generator)
        return image_ops.normalize(x, self.mean, self.std), self.labels[idx]

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


class ImageDataModule(pl.LightningDataModule):
    """Train/val/test loaders over an in-memory image dataset; images (B, C, S, S) normalised, S = ``pad_to``.

    ``val_size`` examples are held out of the training images by a permutation seeded with ``split_seed``
    (fixed across training seeds, so every seed is validated on the same images); ``seed`` drives the training
    order and augmentation (zero-pad by 4, random crop back to ``pad_to``, horizontal flip). ``subset`` keeps the
    first ``subset`` training examples of that permutation (``balanced=True``: the first ``subset // classes`` of
    each class, a deterministic class-balanced subset), and ``test_size`` the first ``test_size`` test images,
    for smoke runs. Subclasses set ``num_classes``, ``in_channels``, ``image_size``, ``mean``, ``std`` and
    ``load(split)``.
    """

    num_classes: int
    in_channels: int
    native_size: int
    mean: Stats
    std: Stats
    pad_choices: tuple[int, ...]

    def __init__(self, batch_size: int = 128, root: str | Path | None = None, pad_to: int | None = None,
                 augment: bool = False, val_size: int = 5000, seed: int = 0, subset: int | None = None,
                 eval_batch_size: int = 1000, num_workers: int = 0, split_seed: int = 0,
                 test_size: int | None = None, balanced: bool = False) -> None:
        super().__init__()
        pad_to = self.native_size if pad_to is None else pad_to
        if pad_to not in self.pad_choices:
            raise ConfigError(f"pad_to must be {' or '.join(map(str, self.pad_choices))} for "
                              f"{type(self).__name__}, got {pad_to!r}")
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

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images N x H x W or N x C x H x W, int64 labels N) of ``split`` ("train" or "test")."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._sets:
            return
        x, y = self.load("train")
        if self.val_size >= len(x):
            raise ConfigError(f"val_size={self.val_size} leaves no training data ({len(x)} train images)")
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = perm[: self.val_size], perm[self.val_size:]
        if self.subset is not None:
            train_idx = balanced_prefix(train_idx, y, self.subset) if self.balanced else train_idx[: self.subset]
        tx, ty = self.load("test")
        common: dict[str, Any] = {"pad_to": self.pad_to, "seed": self.seed, "mean": self.mean, "std": self.std}
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
