"""Run records: one JSON file per (paper, claim, run), written atomically and marked complete."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from common.errors import OptreproError

RECORD_VERSION = 1


class IncompleteRecordError(OptreproError):
    """A record file exists but was never finished (an interrupted run) or is unreadable."""


def json_safe(obj: Any) -> Any:
    """Turn tensors, numpy scalars and non-finite floats into plain JSON (NaN/Inf become None)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return json_safe(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """Where and with what a run was made: commit, dirty flag, versions, device, threads, date."""
    import lightning
    import torch

    status = _git("status", "--porcelain", "--untracked-files=no")
    device = "cpu"
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),  # other work on the machine inflates wall times
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
    }


def write_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` with ``complete: true`` via a temp file + rename, so a crash never leaves a
    file that looks finished."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = dict(json_safe(record))
    body["complete"] = True
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(json.dumps(body, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def load_record(path: str | Path) -> dict[str, Any]:
    """Read a finished record; a partial, truncated or unmarked file raises IncompleteRecordError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise IncompleteRecordError(f"record not found: {path}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IncompleteRecordError(f"record {path} is truncated or corrupt ({e.__class__.__name__})") from e
    if not isinstance(data, dict) or data.get("complete") is not True:
        raise IncompleteRecordError(f"record {path} is incomplete (the run that wrote it did not finish)")
    return data


def find_records(root: str | Path) -> list[Path]:
    """Finished-looking record files under ``root`` (``*.partial`` files are never listed)."""
    root = Path(root)
    return sorted(p for p in root.rglob("*.json") if p.is_file())
