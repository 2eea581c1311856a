"""A file's hash, read in chunks (archives and token shards can be larger than memory)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of ``path`` with ``algorithm`` (any name ``hashlib.new`` takes, e.g. md5 for CIFAR's archives)."""
    h = hashlib.new(algorithm)
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()
