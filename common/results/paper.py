"""The paper record (our metafile): citation, claims, how each claim runs and how it is judged."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from common.results.summary import Summary
from common.results.verdict import Verdict


@dataclass
class Measurement:
    """What a claim's experiment measured: per-arm per-seed results, a summary and plot files."""

    arms: dict[str, Any]
    summary: Summary  # the claim's ``summary_type``
    plots: dict[str, str] = field(default_factory=dict)  # name -> path of a PNG written by the run
    protocol: dict[str, Any] | None = None  # the tuning-and-evidence object (common.results.protocol)


@dataclass(frozen=True)
class Claim:
    """One headline claim of a paper and the experiment that tests it.

    ``run(cfg, ctx)`` performs the experiment for one preset's config section; ``judge(summary)``
    applies the verdict rule to the measured summary (so verdicts can be recomputed from a record). A paper's
    ``run`` functions live in its ``__init__`` and import their experiment module when called, so importing the
    paper's optimizers does not load Lightning. Claims with the same ``run`` function and equal config sections
    share one measurement: the runner makes it once and each claim judges it.
    ``tolerances`` bound the drift of summary metrics in the regression suite (absolute).
    """

    id: str
    title: str
    paper_result: str
    source: str
    metric: str
    rule: str
    run: Callable[[Any, Any], Measurement]
    judge: Callable[[Any], Verdict]
    headline: Callable[[Any], str]
    # the experiment's typed summary (a ``common.results.summary.Summary``): ``judge``, ``headline`` and ``test``
    # receive this type whether the summary comes from the run or from a record's plain JSON
    summary_type: type[Summary]
    tolerances: Mapping[str, float] = field(default_factory=dict)
    arxiv: str = ""  # the paper this claim is about, where a package holds several papers
    test: Callable[[Any], dict[str, Any] | None] | None = None  # the protocol record's test object
    # ``plan(section)``: the section as the dry-run plan (``reproduce --dry-run``) should read it, for an experiment
    # whose arms, grid or sizes are not in the common keys (``arms``, ``lrs``, ``steps``/``epochs``, ``model``)
    plan: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        typed = self.summary_type

        def reading(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            return lambda s: fn(s if isinstance(s, typed) else typed.from_record(s))

        for name in ("judge", "headline", "test"):
            fn = getattr(self, name)
            if fn is not None:
                object.__setattr__(self, name, reading(fn))


@dataclass(frozen=True)
class Paper:
    """A paper: citation, links and claims. Configs live in ``<package>/configs/<preset>.yaml``."""

    id: str
    title: str
    authors: str
    venue: str
    arxiv: str
    code_url: str
    code_commit: str
    bibtex: str
    claims: tuple[Claim, ...]
    package: str

    @property
    def arxiv_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)

    def configs_dir(self) -> Path:
        return Path(str(resources.files(self.package) / "configs"))

    def presets(self) -> list[str]:
        order = ["smoke", "cpu", "gpu", "paper"]
        found = {p.stem for p in self.configs_dir().glob("*.yaml")}
        return [p for p in order if p in found] + sorted(found - set(order))

