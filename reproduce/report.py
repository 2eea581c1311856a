"""`reproduce table`: RESULTS.md and each paper README's generated block, from reference records."""

from __future__ import annotations

from pathlib import Path

from common.results.record import load_record
from common.results.table import paper_block, replace_block, results_markdown
from reproduce.registry import all_papers, repo_root


def reference_records(reference: Path, paper_id: str) -> list[tuple[Path, dict]]:
    """The finished records of one paper, in claim order (a partial file is an error, not skipped)."""
    folder = reference / paper_id
    if not folder.is_dir():
        return []
    records = [(p, load_record(p)) for p in sorted(folder.glob("*.json"))]
    return sorted(records, key=lambda pr: pr[1]["claim"])


def write_tables(reference: Path | None = None) -> list[Path]:
    root = repo_root()
    reference = reference or root / "results" / "reference"
    entries = []
    written = []
    for paper in all_papers():
        records = reference_records(reference, paper.id)
        entries.append((paper, records))
        readme = root / "papers" / paper.id / "README.md"
        text = readme.read_text() if readme.exists() else f"# {paper.title}\n"
        readme.write_text(replace_block(text, paper_block(paper, records, root, readme.parent)))
        written.append(readme)
    results = root / "RESULTS.md"
    results.write_text(results_markdown(entries, root) + "\n")
    written.append(results)
    return written
