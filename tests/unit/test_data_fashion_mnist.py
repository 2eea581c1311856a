"""IDX reading, Fashion-MNIST discovery/validation, and the in-memory DataModule, on tiny fixtures."""

from __future__ import annotations

import gzip
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from common.data import fashion_mnist as fm
from common.data.idx import read_idx, write_idx
from common.errors import ConfigError, DataError


def idx_bytes(array: np.ndarray, dtype_byte: int = 0x08) -> bytes:
    """IDX encoding written independently of common.data.idx, so reader bugs cannot cancel out."""
    header = struct.pack(">BBBB", 0, 0, dtype_byte, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write(path: Path, data: bytes) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_dataset(directory: Path, n_train: int = 60, n_test: int = 20, gz: bool = True) -> Path:
    """A Fashion-MNIST-shaped fixture: random pixels, labels cycling 0..9."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for split, n in (("train", n_train), ("test", n_test)):
        images_name, labels_name = fm.FILES[split]
        write(directory / (images_name + ext), idx_bytes(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)))
        write(directory / (labels_name + ext), idx_bytes(np.arange(n, dtype=np.uint8) % 10))
    return directory


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test may see the developer's env var, cache or a real torchvision."""
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    monkeypatch.setattr(fm, "CACHE_DIR", tmp_path / "cache")
    fm._load_cached.cache_clear()


# --- IDX -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 3, 1, 2)])
def test_read_idx_round_trip(tmp_path, name, shape):
    arr = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    out = read_idx(write(tmp_path / name, idx_bytes(arr)))
    assert out.dtype == torch.uint8
    assert out.shape == shape
    assert np.array_equal(out.numpy(), arr)


def test_write_idx_matches_reference_encoding(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert write_idx(tmp_path / "w.idx", arr).read_bytes() == idx_bytes(arr)
    assert torch.equal(read_idx(write_idx(tmp_path / "w.idx.gz", arr)), torch.from_numpy(arr))


@pytest.mark.parametrize("name", ["t.idx", "t.idx.gz"])
def test_truncated_payload(tmp_path, name):
    data = idx_bytes(np.zeros((4, 5), dtype=np.uint8))[:-3]
    path = write(tmp_path / name, data)
    with pytest.raises(DataError, match="truncated") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_extra_bytes_and_short_header(tmp_path):
    with pytest.raises(DataError, match="too long"):
        read_idx(write(tmp_path / "long.idx", idx_bytes(np.zeros(3, dtype=np.uint8)) + b"x"))
    with pytest.raises(DataError, match="truncated"):
        read_idx(write(tmp_path / "hdr.idx", bytes([0, 0, 8, 3, 0, 0])))


def test_bad_magic_and_dtype(tmp_path):
    good = idx_bytes(np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match="bad magic"):
        read_idx(write(tmp_path / "magic.idx", b"\x1f\x8b" + good[2:]))
    with pytest.raises(DataError, match="dtype 0x0d"):
        read_idx(write(tmp_path / "float.idx", idx_bytes(np.zeros(3, dtype=np.uint8), dtype_byte=0x0D)))


def test_missing_and_corrupt_gzip(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        read_idx(tmp_path / "nope.idx")
    assert str(tmp_path / "nope.idx") in str(err.value)
    bad = tmp_path / "bad.idx.gz"
    bad.write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(bad)
    cut = tmp_path / "cut.idx.gz"
    cut.write_bytes(gzip.compress(idx_bytes(np.zeros(1000, dtype=np.uint8)))[:-10])
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(cut)


# --- discovery and validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_explicit_root(tmp_path, gz):
    root = make_dataset(tmp_path / "fm", gz=gz)
    x, y = fm.load_fashion_mnist("train", root)
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((60, 28, 28), torch.uint8, (60,), torch.int64)
    assert y.tolist() == [i % 10 for i in range(60)]
    assert fm.load_fashion_mnist("test", str(root))[0].shape == (20, 28, 28)


def test_loads_are_cached_until_the_file_changes(tmp_path):
    root = make_dataset(tmp_path / "fm")
    first, second = fm.load_fashion_mnist("test", root), fm.load_fashion_mnist("test", root)
    assert first[0] is second[0]
    labels = root / (fm.FILES["test"][1] + ".gz")
    write(labels, idx_bytes(np.full(20, 3, dtype=np.uint8)))
    os.utime(labels, ns=(1, 1))
    assert fm.load_fashion_mnist("test", root)[1].tolist() == [3] * 20


def test_missing_explicit_root_names_both_ways(tmp_path):
    with pytest.raises(DataError) as err:
        fm.load_fashion_mnist("train", tmp_path / "does-not-exist")
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "torchvision" in msg
    assert fm.ENV_VAR in msg
    assert "\n" not in msg


def test_nothing_anywhere_names_both_ways(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fm, "_torchvision_download", lambda cache_dir: None)
    with pytest.raises(DataError) as err:
        fm.load_fashion_mnist("test")
    assert "apt-get install dataset-fashion-mnist" in str(err.value)
    assert "torchvision" in str(err.value)


def test_broken_torchvision_is_wrapped(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    real_find_spec = fm.importlib.util.find_spec
    monkeypatch.setattr(fm.importlib.util, "find_spec",
                        lambda name, *a: object() if name == "torchvision" else real_find_spec(name, *a))
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes its import fail
    with pytest.raises(DataError, match="torchvision download failed") as err:
        fm.load_fashion_mnist("train")
    assert "apt-get install dataset-fashion-mnist" in str(err.value)


def test_env_var_and_search_order(tmp_path, monkeypatch):
    env_dir = make_dataset(tmp_path / "env", n_train=30)
    monkeypatch.setenv(fm.ENV_VAR, str(env_dir))
    assert len(fm.load_fashion_mnist("train")[0]) == 30
    assert len(fm.load_fashion_mnist("train", make_dataset(tmp_path / "root", n_train=40))[0]) == 40
    monkeypatch.setenv(fm.ENV_VAR, str(tmp_path / "empty"))
    with pytest.raises(DataError, match=f"\\${fm.ENV_VAR}"):
        fm.load_fashion_mnist("train")


def test_previous_download_in_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    make_dataset(fm.CACHE_DIR / "FashionMNIST" / "raw", n_test=12)
    assert len(fm.load_fashion_mnist("test")[1]) == 12


def test_count_mismatch_and_label_range(tmp_path):
    root = make_dataset(tmp_path / "fm")
    write(root / (fm.FILES["train"][1] + ".gz"), idx_bytes(np.zeros(59, dtype=np.uint8)))
    with pytest.raises(DataError, match="count mismatch: 60 images"):
        fm.load_fashion_mnist("train", root)
    write(root / (fm.FILES["test"][1] + ".gz"), idx_bytes(np.full(20, 10, dtype=np.uint8)))
    with pytest.raises(DataError, match="label 10 outside 0..9"):
        fm.load_fashion_mnist("test", root)


def test_wrong_image_shape(tmp_path):
    root = make_dataset(tmp_path / "fm")
    write(root / (fm.FILES["test"][0] + ".gz"), idx_bytes(np.zeros((20, 32, 32), dtype=np.uint8)))
    with pytest.raises(DataError, match="N x 28 x 28"):
        fm.load_fashion_mnist("test", root)


def test_real_debian_dataset():
    """CI installs dataset-fashion-mnist (.ci/run); a missing package must fail here, not skip."""
    x, y = fm.load_fashion_mnist("train", fm.DEBIAN_DIR)
    tx, ty = fm.load_fashion_mnist("test", fm.DEBIAN_DIR)
    assert x.shape == (60000, 28, 28) and tx.shape == (10000, 28, 28)
    assert torch.equal(torch.bincount(y), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(ty), torch.full((10,), 1000))
    pixels = x[:5000].float() / 255
    assert abs(pixels.mean().item() - fm.MEAN) < 0.01 and abs(pixels.std().item() - fm.STD) < 0.01


# --- DataModule ------------------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path):
    return make_dataset(tmp_path / "fm", n_train=60, n_test=20)


def first_batch(dm: fm.FashionMNISTDataModule, which: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    dm.setup("fit")
    return next(iter(getattr(dm, f"{which}_dataloader")()))


@pytest.mark.parametrize("pad_to", [28, 32])
def test_shapes_and_attributes(root, pad_to):
    dm = fm.FashionMNISTDataModule(batch_size=8, root=root, pad_to=pad_to, val_size=10, eval_batch_size=7)
    x, y = first_batch(dm)
    assert x.shape == (8, 1, pad_to, pad_to) and x.dtype == torch.float32
    assert y.shape == (8,) and y.dtype == torch.int64
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 1, pad_to)
    assert [len(b[0]) for b in dm.val_dataloader()] == [7, 3]
    assert sum(len(b[1]) for b in dm.test_dataloader()) == 20


def test_normalisation_and_padding(root):
    raw_x, raw_y = fm.load_fashion_mnist("train", root)
    dm = fm.FashionMNISTDataModule(root=root, pad_to=32, val_size=10, eval_batch_size=100)
    x, y = first_batch(dm, "val")
    idx = dm._sets["val"].indices
    expected = (raw_x[idx].float() / 255 - 0.2860) / 0.3530
    assert torch.allclose(x[:, 0, 2:30, 2:30], expected, atol=1e-6)
    assert torch.equal(y, raw_y[idx])
    border = torch.cat([x[:, :, :2].flatten(), x[:, :, 30:].flatten(), x[..., :2].flatten()])
    assert torch.allclose(border, torch.tensor(-0.2860 / 0.3530))


def test_split_sizes_disjoint_and_subset(root):
    dm = fm.FashionMNISTDataModule(root=root, val_size=15)
    dm.setup()
    train, val = dm._sets["train"].indices, dm._sets["val"].indices
    assert (len(train), len(val)) == (45, 15)
    assert sorted(torch.cat([train, val]).tolist()) == list(range(60))
    small = fm.FashionMNISTDataModule(root=root, val_size=15, subset=5)
    small.setup()
    assert torch.equal(small._sets["train"].indices, train[:5])
    assert sum(len(b[1]) for b in small.train_dataloader()) == 5


def test_val_split_independent_of_training_seed(root):
    a, b = (fm.FashionMNISTDataModule(root=root, val_size=15, seed=s) for s in (0, 1))
    a.setup(), b.setup()
    assert torch.equal(a._sets["val"].indices, b._sets["val"].indices)
    c = fm.FashionMNISTDataModule(root=root, val_size=15, split_seed=1)
    c.setup()
    assert not torch.equal(a._sets["val"].indices, c._sets["val"].indices)


def test_val_size_zero_disables_validation(root):
    dm = fm.FashionMNISTDataModule(root=root, val_size=0, batch_size=60)
    dm.setup()
    assert dm.val_dataloader() == []
    assert len(first_batch(dm)[1]) == 60


@pytest.mark.parametrize("augment", [False, True])
def test_train_order_deterministic_per_seed(root, augment):
    def batches(seed: int) -> list[torch.Tensor]:
        dm = fm.FashionMNISTDataModule(batch_size=10, root=root, val_size=10, seed=seed, augment=augment)
        dm.setup()
        loader = dm.train_dataloader()
        return [x for _ in range(2) for x, _ in loader]  # two epochs

    run, again, other = batches(0), batches(0), batches(1)
    assert all(torch.equal(a, b) for a, b in zip(run, again, strict=True))
    assert not torch.equal(run[0], other[0])
    assert not torch.equal(run[0], run[5])  # epoch 2 is reshuffled


def test_augment_changes_pixels_not_shapes(root):
    kwargs = {"batch_size": 50, "root": root, "val_size": 10, "pad_to": 32}
    x, y = first_batch(fm.FashionMNISTDataModule(**kwargs))
    ax, ay = first_batch(fm.FashionMNISTDataModule(augment=True, **kwargs))
    assert ax.shape == x.shape and torch.equal(ay, y)
    changed = (ax != x).flatten(1).any(1)
    assert changed.float().mean() > 0.8  # a few images may draw offset 0 and no flip
    background = torch.tensor(-0.2860 / 0.3530)
    assert torch.isclose(ax.min(), background) and ax.max() <= (1 - 0.2860) / 0.3530 + 1e-6
    vx, _ = first_batch(fm.FashionMNISTDataModule(augment=True, **kwargs), "val")
    assert torch.equal(vx, first_batch(fm.FashionMNISTDataModule(**kwargs), "val")[0])


def test_bad_arguments(root):
    with pytest.raises(ConfigError, match="pad_to"):
        fm.FashionMNISTDataModule(pad_to=30)
    with pytest.raises(ConfigError, match="val_size"):
        fm.FashionMNISTDataModule(root=root, val_size=60).setup()


def test_balanced_prefix_takes_equal_counts_per_class_in_order():
    import torch

    from common.data.fashion_mnist import balanced_prefix

    labels = torch.tensor([0, 0, 1, 0, 1, 1, 2, 2, 2, 0])
    order = torch.tensor([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    out = balanced_prefix(order, labels, 6)
    assert out.tolist() == [9, 8, 7, 5, 4, 3]
    assert torch.bincount(labels[out]).tolist() == [2, 2, 2]


def test_balanced_prefix_too_large_is_a_clear_error():
    import pytest
    import torch

    from common.data.fashion_mnist import balanced_prefix
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="class 1"):
        balanced_prefix(torch.arange(4), torch.tensor([0, 0, 0, 1]), 4)
