"""The ``python-stdlib`` corpus: text that ships with the running CPython, so it needs no download.

Contents, in this order, joined with newlines: the pydoc topic texts (``pydoc_data.topics.topics``, values
sorted by key), then every ``.py`` file under ``sysconfig.get_paths()["stdlib"]`` in sorted relative-path
order, read as UTF-8 with errors replaced. Directories named in :data:`EXCLUDED_DIRS` are skipped (third
party packages and the test suites), which leaves about 13 MB on CPython 3.11. The text differs between
Python versions but is fixed for a given interpreter.
"""

from __future__ import annotations

import codecs
import functools
import os
import sysconfig
from pathlib import Path

from common.errors import DataError

EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"})


def stdlib_dir() -> Path:
    """The running interpreter's standard library directory (the base install's, also inside a venv)."""
    return Path(sysconfig.get_paths()["stdlib"])


def python_stdlib_files(root: str | Path | None = None) -> list[str]:
    """Sorted relative POSIX paths of the corpus's ``.py`` files under ``root`` (default: the stdlib)."""
    base = Path(root) if root is not None else stdlib_dir()
    if not base.is_dir():
        raise DataError(f"python-stdlib corpus: standard library directory {base} does not exist")
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS]
        rel = Path(dirpath).relative_to(base)
        found.extend((rel / f).as_posix() for f in filenames if f.endswith(".py"))
    return sorted(found)


def _pydoc_topics() -> str:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise DataError("python-stdlib corpus: this Python lacks pydoc_data (install its stdlib)") from None
    return "\n".join(topics[k] for k in sorted(topics))


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """Longest prefix of ``text`` whose UTF-8 encoding fits in ``max_bytes`` (never splits a character)."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return codecs.getincrementaldecoder("utf-8")().decode(data[:max_bytes], final=False)


@functools.lru_cache(maxsize=4)
def python_stdlib_text(max_bytes: int | None = None) -> str:
    """The corpus text, cut to at most ``max_bytes`` UTF-8 bytes (files past the budget are not read)."""
    if max_bytes is not None and max_bytes < 1:
        raise DataError(f"python-stdlib corpus: max_bytes must be >= 1, got {max_bytes}")
    base = stdlib_dir()
    pieces = [_pydoc_topics()]
    size = len(pieces[0].encode("utf-8"))
    for rel in python_stdlib_files(base):
        if max_bytes is not None and size >= max_bytes:
            break
        try:
            piece = (base / rel).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            reason = exc.strerror or exc
            raise DataError(f"python-stdlib corpus: cannot read {base / rel}: {reason}") from None
        pieces.append(piece)
        size += len(piece.encode("utf-8")) + 1
    text = "\n".join(pieces)
    return text if max_bytes is None else _truncate_utf8(text, max_bytes)
