"""Find the papers: every subpackage of ``papers`` that exposes a ``PAPER`` record."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path

import papers
from common.errors import ConfigError
from common.results.paper import Paper


@lru_cache(maxsize=1)
def paper_ids() -> tuple[str, ...]:
    """Subpackages of ``papers`` that expose ``PAPER``; a package without it is work in progress and not
    offered (an import error in a paper still raises)."""
    found = []
    for m in pkgutil.iter_modules(papers.__path__):
        if m.ispkg and hasattr(importlib.import_module(f"papers.{m.name}"), "PAPER"):
            found.append(m.name)
    return tuple(sorted(found))


def resolve_id(paper_id: str) -> str:
    """Package names use underscores; accept hyphens too (``stable-spam`` is ``stable_spam``)."""
    return paper_id.replace("-", "_") if paper_id.replace("-", "_") in paper_ids() else paper_id


def get_paper(paper_id: str) -> Paper:
    """The paper record for ``paper_id`` (hyphens may stand for underscores); an unknown id is one clear error
    listing the valid ones."""
    ids = paper_ids()
    paper_id = resolve_id(paper_id)
    if paper_id not in ids:
        near = difflib.get_close_matches(paper_id, ids, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(f"unknown paper {paper_id!r}{hint}; valid papers: {', '.join(ids)}")
    module = importlib.import_module(f"papers.{paper_id}")
    return module.PAPER


def all_papers() -> list[Paper]:
    return [get_paper(i) for i in paper_ids()]


def repo_root() -> Path:
    """The source checkout (the CLI's table/regress commands work on the committed tree)."""
    return Path(papers.__file__).resolve().parent.parent
