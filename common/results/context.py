"""What an experiment gets from the runner: where to write, which seeds, how to report progress."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass
class RunContext:
    """Shared by every claim's ``run``; experiments never print or pick paths on their own."""

    out_dir: Path
    preset: str
    seeds: list[int]  # eval seeds: they measure the chosen configurations
    trainer: dict[str, Any] = field(default_factory=dict)  # Lightning Trainer overrides from the preset
    stream: TextIO | None = None  # None: sys.stderr at the time of writing
    claim_id: str = ""
    resume: bool = False  # reuse finished runs found under runs_dir (reproduce --resume)
    tuning_seeds: list[int] = field(default_factory=list)  # choose hyperparameters; disjoint from ``seeds``
    runs_key: str = ""  # names runs_dir; the runner derives it from the claim's config, so a changed config
    #                     never reuses another config's runs (and two claims sharing one sweep share them)

    def path(self, name: str) -> Path:
        """A file in this run's output folder (created on demand)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name

    def say(self, message: str) -> None:
        print(message, file=self.stream or sys.stderr, flush=True)

    @property
    def runs_dir(self) -> Path:
        return self.out_dir / "runs" / (self.runs_key or self.claim_id or "claim")

    def cached(self, key: str, run: Callable[[], dict[str, Any]], label: str = "") -> dict[str, Any]:
        """``run()``'s result, saved as ``runs_dir/<key>.json`` (atomically, marked complete); with ``resume``
        a finished one on disk is returned instead of running again. NaN/Inf survive the round trip."""
        path = self.runs_dir / (re.sub(r"[^A-Za-z0-9_.=-]+", "_", key) + ".json")
        if self.resume and path.is_file():
            try:
                saved = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                saved = None
            if isinstance(saved, dict) and saved.get("complete") is True:
                self.say(f"[{label or key}] reusing the finished run {path}")
                return saved["result"]
        result = run()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.partial")
        tmp.write_text(json.dumps({"complete": True, "result": _plain(result)}, allow_nan=True))
        os.replace(tmp, path)
        return result

    def label(self, index: int, total: int, description: str) -> str:
        """Progress label for multi-arm runs: ``c2 arm 3/45 radam lr=0.001 seed 1``."""
        prefix = f"{self.claim_id} " if self.claim_id else ""
        return f"{prefix}arm {index}/{total} {description}"


def _plain(obj: Any) -> Any:
    """JSON-ready without losing non-finite floats (json writes NaN/Infinity and reads them back)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _plain(obj.tolist())
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
