"""CIFAR-10/100 on tiny fixtures in the official on-disk format: Python 2 protocol-2 pickles (the archives were
written with Python 2's cPickle, so keys, strings and array payloads are py2 ``str`` opcodes and numpy is referenced
as ``numpy.core.multiarray``), written here by an independent pickler, not by the reader under test."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from common.data import cifar
from common.data.vision import image_datamodule
from common.errors import ConfigError, DataError

REAL_FETCH = cifar._fetch  # the fixture below replaces the module's with an offline stand-in


class Py2Pickler(pickle._Pickler):  # the pure-Python pickler, so opcodes can be chosen per type
    """Protocol 2 as Python 2's cPickle wrote it: bytes and str as py2 ``str`` (SHORT_BINSTRING / BINSTRING), numpy
    arrays through ``numpy.core.multiarray._reconstruct`` with their raw bytes as the state payload."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=2)

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_py2_str, str: save_py2_str}

    def save_global(self, obj: object, name: str | None = None) -> None:
        where = {"_reconstruct": ("numpy.core.multiarray", "_reconstruct"), "ndarray": ("numpy", "ndarray"),
                 "dtype": ("numpy", "dtype")}[getattr(obj, "__name__", "")]
        self.write(pickle.GLOBAL + f"{where[0]}\n{where[1]}\n".encode())
        self.memoize(obj)

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, np.ndarray):
            return np.ndarray.__reduce__(obj)
        if isinstance(obj, np.dtype):
            return np.dtype.__reduce__(obj)
        return NotImplemented


def py2_pickle(obj: object) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf).dump(obj)
    return buf.getvalue()


def write_batch(path: Path, images: np.ndarray, labels: np.ndarray, label_key: str, extra: dict | None = None) -> None:
    """images: N x 3 x 32 x 32 uint8 -> the official N x 3072 rows (R plane, G plane, B plane)."""
    batch = {"batch_label": "training batch 1 of 5", label_key: [int(v) for v in labels],
             "data": images.reshape(len(images), -1), "filenames": [f"img_{i}.png" for i in range(len(images))]}
    path.write_bytes(py2_pickle({**batch, **(extra or {})}))


def make_cifar10(root: Path, per_batch: int = 12, n_test: int = 10) -> tuple[Path, dict[str, np.ndarray]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    for i, name in enumerate([*cifar.CIFAR10.files["train"], "test_batch"]):
        n = n_test if name == "test_batch" else per_batch
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = (np.arange(n) + i) % 10
        write_batch(folder / name, images, labels, "labels")
        arrays[name], arrays[name + "/labels"] = images, labels
    (folder / "batches.meta").write_bytes(py2_pickle({"label_names": ["airplane", "automobile", "bird", "cat", "deer",
                                                                      "dog", "frog", "horse", "ship", "truck"],
                                                      "num_cases_per_batch": per_batch, "num_vis": 3072}))
    return folder, arrays


def make_cifar100(root: Path, n_train: int = 200, n_test: int = 20) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = np.arange(n) % 100
        write_batch(folder / name, rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), fine, "fine_labels",
                    {"coarse_labels": [int(f) // 5 for f in fine]})
    (folder / "meta").write_bytes(py2_pickle({"fine_label_names": [f"fine{i}" for i in range(100)],
                                              "coarse_label_names": [f"coarse{i}" for i in range(20)]}))
    return folder


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test sees the developer's env vars, cache, torchvision or network."""
    for v in cifar.VARIANTS.values():
        monkeypatch.delenv(v.env_var, raising=False)
    monkeypatch.setattr(cifar, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(cifar, "_torchvision_download", lambda v, d: False)

    def offline(url: str, dest: Path) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(cifar, "_fetch", offline)
    cifar._load_cached.cache_clear()


def test_fixture_is_a_python2_pickle():
    """The fixture pickles as the official files do (py2 str opcodes, numpy.core) and needs latin-1 to load."""
    blob = py2_pickle({"data": np.zeros((1, 3072), np.uint8), "labels": [3]})
    assert blob.startswith(b"\x80\x02}q\x00(U\x04data") and b"cnumpy.core.multiarray\n_reconstruct\n" in blob
    with pytest.raises(UnicodeDecodeError):  # py3's default ASCII decoding of py2 strings fails on the pixels
        pickle.loads(py2_pickle({"data": np.full((1, 3072), 200, np.uint8)}))


def test_cifar10_reads_every_batch_in_order(tmp_path):
    folder, arrays = make_cifar10(tmp_path)
    x, y = cifar.load_cifar("cifar10", "train", tmp_path)  # torchvision's layout: root/cifar-10-batches-py
    want = np.concatenate([arrays[n] for n in cifar.CIFAR10.files["train"]])
    assert x.dtype == torch.uint8 and x.shape == (60, 3, 32, 32) and torch.equal(x, torch.from_numpy(want))
    assert y.dtype == torch.int64 and y.tolist() == np.concatenate(
        [arrays[n + "/labels"] for n in cifar.CIFAR10.files["train"]]).tolist()
    tx, ty = cifar.load_cifar("cifar10", "test", folder)  # or the batch folder itself
    assert torch.equal(tx, torch.from_numpy(arrays["test_batch"])) and len(ty) == 10
    assert cifar.label_names("cifar10", tmp_path)[:2] == ["airplane", "automobile"]


def test_channel_planes_are_red_green_blue(tmp_path):
    """Row layout: 1024 red, then 1024 green, then 1024 blue values, each plane row-major."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    row = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.arange(1024) % 256]).astype(np.uint8)[None]
    for name in [*cifar.CIFAR10.files["train"], "test_batch"]:
        (folder / name).write_bytes(py2_pickle({"data": row, "labels": [0]}))
    x, _ = cifar.load_cifar("cifar10", "test", tmp_path)
    assert x[0, 0].unique().tolist() == [10] and x[0, 1].unique().tolist() == [20]
    assert x[0, 2, 0, :3].tolist() == [0, 1, 2] and x[0, 2, 1, 0] == 32


def test_cifar100_fine_labels_and_meta(tmp_path):
    make_cifar100(tmp_path)
    x, y = cifar.load_cifar("cifar100", "train", tmp_path)
    assert x.shape == (200, 3, 32, 32) and y.tolist() == (np.arange(200) % 100).tolist()
    assert cifar.label_names("cifar100", tmp_path)[99] == "fine99"
    assert cifar.label_names("cifar100", tmp_path, coarse=True) == [f"coarse{i}" for i in range(20)]


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    hint = r"cifar-10-python\.tar\.gz.*OPTREPRO_CIFAR10=FOLDER"
    with pytest.raises(DataError, match=r"CIFAR-10 not found in root .*empty .*" + hint):
        cifar.load_cifar("cifar10", "train", tmp_path / "empty")
    monkeypatch.setenv("OPTREPRO_CIFAR100", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"not found in \$OPTREPRO_CIFAR100"):
        cifar.load_cifar("cifar100", "test")
    monkeypatch.delenv("OPTREPRO_CIFAR100")
    with pytest.raises(DataError, match="download of .* failed \\(network is unreachable\\).*OPTREPRO_CIFAR100"):
        cifar.load_cifar("cifar100", "test")


def test_env_var_then_cache(tmp_path, monkeypatch):
    make_cifar10(tmp_path / "env")
    monkeypatch.setenv("OPTREPRO_CIFAR10", str(tmp_path / "env"))
    assert cifar.load_cifar("cifar10", "test")[0].shape == (10, 3, 32, 32)
    monkeypatch.delenv("OPTREPRO_CIFAR10")
    make_cifar10(tmp_path / "cache", n_test=4)
    assert cifar.load_cifar("cifar10", "test")[0].shape == (4, 3, 32, 32)


def _tarball(tmp_path: Path) -> tuple[Path, str]:
    make_cifar10(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_checks_the_md5_and_unpacks_into_the_cache(tmp_path, monkeypatch):
    archive, md5 = _tarball(tmp_path)
    monkeypatch.setattr(cifar, "_fetch", REAL_FETCH)  # over a file:// URL: the real code path, no network
    bad = cifar.Variant(**{**cifar.CIFAR10.__dict__, "url": archive.as_uri(), "md5": "0" * 32})
    monkeypatch.setitem(cifar.VARIANTS, "cifar10", bad)
    with pytest.raises(DataError, match=f"corrupt: md5 {md5}, expected 0{{32}}"):
        cifar.load_cifar("cifar10", "train")
    assert not (tmp_path / "cache" / "cifar-10-batches-py").exists()
    monkeypatch.setitem(cifar.VARIANTS, "cifar10", cifar.Variant(**{**bad.__dict__, "md5": md5}))
    x, _ = cifar.load_cifar("cifar10", "train")
    assert x.shape == (60, 3, 32, 32) and (tmp_path / "cache" / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert sorted(os.listdir(tmp_path / "cache")) == ["cifar-10-batches-py"]  # no temp folder left


def test_the_real_fetch_copies_a_file_url(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"xyz" * 1000)
    REAL_FETCH(src.as_uri(), tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == src.read_bytes()


def test_corrupt_and_foreign_files_are_data_errors(tmp_path):
    folder, _ = make_cifar10(tmp_path)
    (folder / "data_batch_3").write_bytes(b"\x80\x02}q\x00(U\x04data")  # cut short
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR python batch"):
        cifar.load_cifar("cifar10", "train", tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match=r"global (posix|os)\.system is not allowed"):
        cifar.load_cifar("cifar10", "train", tmp_path)
    (folder / "data_batch_3").write_bytes(py2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [1]}))
    with pytest.raises(DataError, match="count mismatch.*2 images, 1 labels"):
        cifar.load_cifar("cifar10", "train", tmp_path)
    (folder / "data_batch_3").write_bytes(py2_pickle({"data": np.zeros((1, 3072), np.uint8), "labels": [10]}))
    with pytest.raises(DataError, match="label 10 outside 0..9"):
        cifar.load_cifar("cifar10", "train", tmp_path)
    (folder / "data_batch_3").write_bytes(py2_pickle({"data": np.zeros((1, 784), np.uint8), "labels": [1]}))
    with pytest.raises(DataError, match=r"N x 3072, got uint8 \[1, 784\]"):
        cifar.load_cifar("cifar10", "train", tmp_path)


def test_datamodule_normalises_per_channel_and_augments(tmp_path):
    make_cifar10(tmp_path)
    dm = image_datamodule("cifar10", root=tmp_path, batch_size=8, val_size=12, eval_batch_size=6, augment=True)
    dm.setup()
    assert (dm.num_classes, dm.in_channels, dm.image_size, dm.num_train) == (10, 3, 32, 48)
    x, y = next(iter(dm.val_dataloader()))
    raw, _ = cifar.load_cifar("cifar10", "train", tmp_path)
    idx = dm._dataset("val").indices[:6]
    mean, std = torch.tensor(cifar.CIFAR10.mean), torch.tensor(cifar.CIFAR10.std)
    want = (raw[idx].float() / 255 - mean[:, None, None]) / std[:, None, None]
    assert x.shape == (6, 3, 32, 32) and torch.allclose(x, want, atol=1e-6)
    tx, _ = next(iter(dm.train_dataloader()))
    plain = image_datamodule("cifar10", root=tmp_path, batch_size=8, val_size=12, augment=False)
    px, _ = next(iter(plain.train_dataloader()))
    assert tx.shape == px.shape == (8, 3, 32, 32) and not torch.equal(tx, px)  # same images, cropped/flipped
    again, _ = next(iter(image_datamodule("cifar10", root=tmp_path, batch_size=8, val_size=12,
                                          augment=True).train_dataloader()))
    assert torch.equal(tx, again)  # augmentation is a function of (seed, batch)


def test_cifar100_datamodule_and_paper_style_no_val(tmp_path):
    make_cifar100(tmp_path)
    dm = image_datamodule("cifar100", root=tmp_path, batch_size=16, val_size=0, subset=100, balanced=True)
    dm.setup()
    assert dm.num_classes == 100 and dm.num_train == 100 and dm.val_dataloader() == []
    assert len(next(iter(dm.test_dataloader()))[0]) == 20


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="pad_to must be 32 for CIFAR10DataModule, got 28"):
        image_datamodule("cifar10", pad_to=28)
    with pytest.raises(ConfigError, match="unknown image dataset 'svhn'; valid: fashion_mnist, cifar10, cifar100"):
        image_datamodule("svhn")


@pytest.mark.slow  # a whole claim end to end
def test_a_paper_claim_runs_on_cifar10(tmp_path):
    """A preset's ``data.dataset=cifar10`` reaches the CIFAR loader: RAdam's CIFAR claim end to end on the fixture
    (AdaBelief's C2 picks its datamodule with the same ``image_datamodule`` call)."""
    import json

    from reproduce.cli import main

    make_cifar10(tmp_path / "data")
    c = "claims.c3"
    assert main(["radam", "c3", "--preset", "smoke", "--seeds", "1", f"{c}.data.dataset=cifar10",
                 f"{c}.data.root={tmp_path / 'data'}", f"{c}.data.val_size=12", f"{c}.data.subset=null",
                 f"{c}.data.test_size=null", f"{c}.lrs=[0.1]", "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "c3.json").read_text())
    assert record["config"]["claim"]["data"]["dataset"] == "cifar10"  # and data.root holds no Fashion-MNIST
    assert '"test_acc": null' not in json.dumps(record["arms"]) and '"test_acc": ' in json.dumps(record["arms"])


def test_vr_depth_diagnostic_reads_cifar10(tmp_path):
    """The variance-ratio depth claim takes ``data.dataset`` (default fashion_mnist): CIFAR images reach its MLPs."""
    import io

    from omegaconf import OmegaConf

    from common.config import load_yaml
    from common.results.context import RunContext
    from papers.vr_methods.depth import run_depth

    make_cifar10(tmp_path / "data")
    cfg = load_yaml(Path(__file__).resolve().parents[2] / "papers/vr_methods/configs/smoke.yaml").claims.a2
    cfg = OmegaConf.merge(cfg, {"data": {"dataset": "cifar10", "root": str(tmp_path / "data"), "val_size": 12,
                                         "subset": None, "balanced": False}, "batch_size": 16, "depths": [1]})
    ctx = RunContext(out_dir=tmp_path / "out", preset="smoke", seeds=[0], stream=io.StringIO())
    m = run_depth(cfg, ctx)
    assert [r["depth"] for r in m.arms["runs"]] == [1] and m.arms["runs"][0]["probes"]
