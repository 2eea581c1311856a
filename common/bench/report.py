"""Benchmark rows to JSON and a markdown table (results/bench/<device>-<shapes>.{json,md})."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.bench.timing import StepTimes

__all__ = ["COLUMNS", "Row", "markdown", "write"]


@dataclass(frozen=True)
class Row:
    """One timed optimizer: which rule, which implementation (ours or a package's), its times and ratios."""

    optimizer: str
    impl: str
    source: str
    times: StepTimes | None
    bytes_per_param: int | None  # traffic of the update rule (fp32), None when not elementwise
    state_bytes_per_param: float | None
    vs_fused_adamw: float | None
    vs_fused_adamw_scaled: float | None  # against fused AdamW's time x bytes_per_param / AdamW's bytes
    bound_ms: float | None
    vs_bound: float | None
    note: str = ""


COLUMNS = ("optimizer", "impl", "source", "median ms", "mean ms", "min ms", "max ms", "x fused AdamW",
           "x fused AdamW scaled by bytes", "x bandwidth bound", "bytes/param moved", "state bytes/param", "note")


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(meta: dict[str, Any], rows: list[Row]) -> str:
    """The table with a header naming the hardware, the parameter set and the yardstick."""
    hw = meta["hardware"]
    load = hw.get("load_average")
    lines = [
        f"Shapes `{meta['shapes']}`: {meta['n_params']:,} fp32 parameters in {meta['n_tensors']} tensors; "
        f"{meta['steps']} timed steps after {meta['warmup']} warm-up steps.",
        f"Hardware: {hw['name']} ({hw['device']}, {hw['torch_threads']} torch thread(s), {hw['cpu_cores']} cores), "
        f"torch {hw['torch']}, triton {hw['triton'] or 'not installed'}; copy bandwidth "
        f"{meta['copy_bandwidth_gbs']:.1f} GB/s (read + write); load average "
        f"{' '.join(str(x) for x in load) if load else 'n/a'} before the run, "
        f"{' '.join(str(x) for x in meta.get('load_average_after', [])) or 'n/a'} after.",
        f"Yardstick: {meta['yardstick']['label']} at {meta['yardstick']['median_ms']:.2f} ms median. Each optimizer's "
        f"implementations were timed in {meta.get('rounds', 1)} rounds interleaved with the yardstick, and its ratios "
        "are to the yardstick of those rounds (`yardstick.paired_median_ms` in the JSON).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        t = r.times
        cells = [r.optimizer, r.impl, r.source, _fmt(t and t.median_ms), _fmt(t and t.mean_ms), _fmt(t and t.min_ms),
                 _fmt(t and t.max_ms),
                 _fmt(r.vs_fused_adamw), _fmt(r.vs_fused_adamw_scaled), _fmt(r.vs_bound),
                 "-" if r.bytes_per_param is None else str(r.bytes_per_param),
                 _fmt(r.state_bytes_per_param, 1), r.note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(out_dir: Path, stem: str, meta: dict[str, Any], rows: list[Row]) -> tuple[Path, Path]:
    """Write ``<stem>.json`` (meta + rows) and ``<stem>.md``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {**meta, "rows": [asdict(r) for r in rows]}
    json_path = out_dir / f"{stem}.json"
    md_path = out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(markdown(meta, rows))
    return json_path, md_path
