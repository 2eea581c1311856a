"""Reader for IDX files (the MNIST family's format), plain or gzip-compressed.

Only the uint8 element type (dtype byte 0x08) is supported: it is the only one the datasets we use ship.
Every malformed input raises a one-line :class:`DataError` naming the file, so a half-downloaded or
corrupt dataset is reported as such instead of as a reshape error deep inside numpy.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from common.errors import DataError

UINT8 = 0x08


def _read_bytes(path: Path) -> bytes:
    """Whole file contents, transparently gunzipped when the name ends in ``.gz``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"corrupt gzip file {path}: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc.strerror or exc}") from None


def parse_idx(data: bytes, source: str = "<bytes>") -> torch.Tensor:
    """Decode IDX bytes into a uint8 tensor shaped by the header's big-endian dimensions."""
    if len(data) < 4:
        raise DataError(f"{source} is not an IDX file: only {len(data)} bytes")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{source} is not an IDX file: bad magic {data[:4].hex()} (want 000008XX)")
    if data[2] != UINT8:
        raise DataError(f"{source}: unsupported IDX dtype 0x{data[2]:02x} (only 0x08 = uint8 is supported)")
    ndim = data[3]
    if ndim == 0:
        raise DataError(f"{source}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source} is truncated: {len(data)} bytes, header alone needs {header}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(dims)
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "too long"
        raise DataError(f"{source} is {what}: payload has {got} bytes, dims {list(dims)} need {expected}")
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file (``.gz`` or raw) into a uint8 tensor; raises DataError when it is unusable."""
    path = Path(path)
    return parse_idx(_read_bytes(path), source=str(path))


def write_idx(path: str | Path, array: np.ndarray | torch.Tensor) -> Path:
    """Write a uint8 array as IDX (gzipped when the name ends in ``.gz``); used to build test fixtures."""
    path = Path(path)
    arr = np.ascontiguousarray(array.numpy() if isinstance(array, torch.Tensor) else array, dtype=np.uint8)
    header = bytes([0, 0, UINT8, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + arr.tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path
