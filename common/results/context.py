"""What an experiment gets from the runner: where to write, which seeds, how to report progress."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass
class RunContext:
    """Shared by every claim's ``run``; experiments never print or pick paths on their own."""

    out_dir: Path
    preset: str
    seeds: list[int]
    trainer: dict[str, Any] = field(default_factory=dict)  # Lightning Trainer overrides from the preset
    stream: TextIO | None = None  # None: sys.stderr at the time of writing
    claim_id: str = ""

    def path(self, name: str) -> Path:
        """A file in this run's output folder (created on demand)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name

    def say(self, message: str) -> None:
        print(message, file=self.stream or sys.stderr, flush=True)

    def label(self, index: int, total: int, description: str) -> str:
        """Progress label for multi-arm runs: ``c2 arm 3/45 radam lr=0.001 seed 1``."""
        prefix = f"{self.claim_id} " if self.claim_id else ""
        return f"{prefix}arm {index}/{total} {description}"
