"""CIFAR-10 and CIFAR-100 in torchvision's on-disk format (the official python-pickle batches), read without it.

The official archives unpack to ``cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``) and
``cifar-100-python/`` (``train``, ``test``, ``meta`` with fine and coarse label names): Python 2 pickles of dicts whose
``data`` is an N x 3072 uint8 array (the red, green and blue 32 x 32 planes of each image in turn). torchvision reads
the same folders, but it does not import with every torch build, so the reader here is pickle + numpy; the unpickler
accepts only numpy arrays and plain containers, so a tampered file cannot run code.

Where the folder comes from (in order): an explicit ``root``, ``$OPTREPRO_CIFAR10`` / ``$OPTREPRO_CIFAR100``, a
previous download in ``~/.cache/optrepro``, and only then a download into that cache: torchvision's when it imports,
else the official tarball over HTTP, checked against its md5 before it is unpacked.
"""

from __future__ import annotations

import functools
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from common.data.digest import file_digest
from common.data.images import ImageDataModule
from common.errors import DataError

CACHE_DIR = Path.home() / ".cache" / "optrepro"
Split = Literal["train", "test"]


@dataclass(frozen=True)
class Variant:
    """One CIFAR dataset: where its files are and how they are keyed."""

    name: str
    env_var: str
    folder: str  # what the official tarball unpacks to (torchvision's base_folder)
    files: dict[str, tuple[str, ...]]  # split -> pickled batch files
    meta: str
    label_key: str
    names_key: str
    num_classes: int
    url: str
    md5: str  # of the tarball, as torchvision checks it
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CIFAR10 = Variant(
    "CIFAR-10", "OPTREPRO_CIFAR10", "cifar-10-batches-py",
    {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}, "batches.meta",
    "labels", "label_names", 10, "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
    # The statistics RAdam's and AdaBelief's CIFAR code normalise with (kuangliu/pytorch-cifar's constants).
    (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
CIFAR100 = Variant(
    "CIFAR-100", "OPTREPRO_CIFAR100", "cifar-100-python", {"train": ("train",), "test": ("test",)}, "meta",
    "fine_labels", "fine_label_names", 100, "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "eb9058c3a382ffc7106e4002c42a8d85",
    (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
VARIANTS = {"cifar10": CIFAR10, "cifar100": CIFAR100}
IMAGE_SIZE = 32


def _hint(v: Variant) -> str:
    return (f"download {v.url} and unpack it into a folder (it creates {v.folder}/), then pass data.root=FOLDER or "
            f"set {v.env_var}=FOLDER; or run once online (downloads to {CACHE_DIR})")


class _NumpyOnly(pickle.Unpickler):
    """Unpickles the official batches (numpy arrays in dicts and lists) and refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in (("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")):
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, whatever module it lives in
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def read_batch(path: Path) -> dict[str, Any]:
    """One pickled batch as a dict with str keys (the files are Python 2 pickles: latin-1 strings)."""
    try:
        with path.open("rb") as f:
            batch = _NumpyOnly(f, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"CIFAR batch file not found: {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path} is not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path} is not a CIFAR python batch (holds a {type(batch).__name__}, not a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _has_files(directory: Path, v: Variant, split: Split) -> bool:
    return all((directory / name).is_file() for name in v.files[split])


def _folder_in(root: Path, v: Variant) -> Path:
    """``root`` itself when it holds the batch files, else torchvision's layout ``root/<folder>``."""
    return root if (root / v.files["test"][0]).is_file() else root / v.folder


def _fetch(url: str, dest: Path) -> None:
    """Copy ``url`` (http(s) or file://) to ``dest``; the one network call, replaced in tests."""
    with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)


def _torchvision_download(v: Variant, cache_dir: Path) -> bool:
    """torchvision's own download (it checks the md5 too); False when torchvision does not import or fails."""
    try:
        from torchvision import datasets
    except Exception:  # not installed, or broken against this torch: use the plain download
        return False
    try:
        getattr(datasets, v.name.replace("-", ""))(str(cache_dir), train=True, download=True)
    except Exception:
        return False
    return True


def download(v: Variant, cache_dir: Path) -> Path:
    """Fetch and unpack the official archive into ``cache_dir``; returns ``cache_dir/<folder>``.

    The archive is checked against its md5 before anything is unpacked, and unpacked with tarfile's ``data`` filter
    (no absolute paths, links out of the folder or device files).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    if _torchvision_download(v, cache_dir) and _has_files(cache_dir / v.folder, v, "train"):
        return cache_dir / v.folder
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        archive = Path(tmp) / Path(v.url).name
        try:
            _fetch(v.url, archive)
        except OSError as exc:  # URLError, timeouts, refused connections: offline
            raise DataError(f"{v.name} not found locally and the download of {v.url} failed "
                            f"({getattr(exc, 'reason', None) or exc}); {_hint(v)}") from None
        got = file_digest(archive, "md5")
        if got != v.md5:
            raise DataError(f"{v.name} download {v.url} is corrupt: md5 {got}, expected {v.md5}; {_hint(v)}")
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python without extraction filters (< 3.10.12 / 3.11.4)
                tar.extractall(tmp)  # noqa: S202 - md5-checked official archive
        unpacked = Path(tmp) / v.folder
        if not unpacked.is_dir():
            raise DataError(f"{v.name} archive {v.url} has no {v.folder}/ folder; {_hint(v)}")
        target = cache_dir / v.folder
        shutil.rmtree(target, ignore_errors=True)
        unpacked.replace(target)
    return target


def find_cifar(v: Variant, split: Split, root: str | Path | None = None) -> Path:
    """Folder holding ``split``'s batch files, searched in the module docstring's order.

    An explicit ``root`` or environment variable that lacks the files is an error, not a reason to download: the
    user asked for that folder.
    """
    if split not in v.files:
        raise DataError(f"unknown {v.name} split {split!r}; valid: {sorted(v.files)}")
    need = ", ".join(v.files[split])
    for label, value in (("root", root), (f"${v.env_var}", os.environ.get(v.env_var) or None)):
        if value is not None:
            directory = _folder_in(Path(value).expanduser(), v)
            if _has_files(directory, v, split):
                return directory
            raise DataError(f"{v.name} not found in {label} {Path(value).expanduser()} (need {need} there or in "
                            f"its {v.folder}/); {_hint(v)}")
    cached = CACHE_DIR / v.folder
    if _has_files(cached, v, split):
        return cached
    directory = download(v, CACHE_DIR)
    if not _has_files(directory, v, split):
        raise DataError(f"{v.name} download in {directory} lacks {need}; {_hint(v)}")
    return directory


def _images_and_labels(path: Path, v: Variant) -> tuple[np.ndarray, np.ndarray]:
    batch = read_batch(path)
    for key in ("data", v.label_key):
        if key not in batch:
            raise DataError(f"{path}: no {key!r} entry (keys: {', '.join(map(str, batch))}); is it a {v.name} file?")
    data, labels = np.asarray(batch["data"]), np.asarray(batch[v.label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * IMAGE_SIZE * IMAGE_SIZE:
        raise DataError(f"{path}: expected uint8 data shaped N x 3072, got {data.dtype} {list(data.shape)}")
    if labels.shape != (len(data),):
        raise DataError(f"{v.name} count mismatch in {path}: {len(data)} images, {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= v.num_classes):
        raise DataError(f"{path}: label {int(labels.max())} outside 0..{v.num_classes - 1}")
    return data, labels


@functools.lru_cache(maxsize=8)
def _load_cached(paths: tuple[Path, ...], variant: str, _stamp: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    v = VARIANTS[variant]
    parts = [_images_and_labels(p, v) for p in paths]
    data = np.concatenate([d for d, _ in parts])
    labels = np.concatenate([lab for _, lab in parts]).astype(np.int64)
    images = torch.from_numpy(data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).copy())
    return images, torch.from_numpy(labels)


def load_cifar(dataset: str, split: Split, root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images N x 3 x 32 x 32, int64 labels N) of ``dataset`` ("cifar10" or "cifar100", fine labels).

    Cached per resolved file set and mtime; the returned tensors are shared with the cache: treat them as read-only.
    """
    if dataset not in VARIANTS:
        raise DataError(f"unknown CIFAR dataset {dataset!r}; valid: {', '.join(VARIANTS)}")
    v = VARIANTS[dataset]
    directory = find_cifar(v, split, root)
    paths = tuple((directory / name).resolve() for name in v.files[split])
    stamp = tuple(x for p in paths for x in (p.stat().st_mtime_ns, p.stat().st_size))
    return _load_cached(paths, dataset, stamp)


def label_names(dataset: str, root: str | Path | None = None, coarse: bool = False) -> list[str]:
    """Class names from the meta file (CIFAR-100: fine names, or the 20 coarse ones with ``coarse=True``)."""
    v = VARIANTS[dataset]
    meta = read_batch(find_cifar(v, "test", root) / v.meta)
    key = "coarse_label_names" if coarse else v.names_key
    if key not in meta:
        raise DataError(f"{v.name} meta file has no {key!r} (keys: {', '.join(map(str, meta))})")
    return list(meta[key])


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 train/val/test loaders: (B, 3, 32, 32) normalised per channel; ``augment`` is the papers' random
    crop (zero-pad 4) and horizontal flip. Arguments are :class:`common.data.images.ImageDataModule`'s; ``val_size``
    images of the 50k training set are held out (0 for the papers' train-on-all, test-on-test runs)."""

    dataset = "cifar10"
    num_classes = CIFAR10.num_classes
    in_channels = 3
    native_size = IMAGE_SIZE
    pad_choices = (IMAGE_SIZE,)
    mean, std = CIFAR10.mean, CIFAR10.std

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return load_cifar(self.dataset, split, self.root)  # type: ignore[arg-type]


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100 (fine labels, 100 classes); otherwise as :class:`CIFAR10DataModule`."""

    dataset = "cifar100"
    num_classes = CIFAR100.num_classes
    mean, std = CIFAR100.mean, CIFAR100.std
