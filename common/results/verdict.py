"""Verdicts are computed from a claim's rule and the run's summary, never typed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

REPRODUCED = "reproduced"
PARTIAL = "partially reproduced"
NOT_REPRODUCED = "not reproduced"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"  # the run could not measure the claim, or the protocol capped it (see ``cap``)
VERDICTS = (REPRODUCED, PARTIAL, NOT_REPRODUCED, CONTRADICTED, INCONCLUSIVE)


@dataclass(frozen=True)
class Verdict:
    """The outcome of a claim's rule: a status, the checks that led to it, and the protocol's cap reason when
    the protocol lowered it (an unbracketed arm, a winner unstable at its chosen lr, too few seeds)."""

    status: str
    checks: dict[str, bool | str] = field(default_factory=dict)  # a check that could not fire is "not exercised"
    reasons: list[str] = field(default_factory=list)
    cap: str | None = None

    def __post_init__(self) -> None:
        if self.status not in VERDICTS:
            raise ValueError(f"unknown verdict {self.status!r}; valid: {VERDICTS}")

    def to_dict(self) -> dict:
        return {"status": self.status, "checks": dict(self.checks), "reasons": list(self.reasons), "cap": self.cap}

    @classmethod
    def from_dict(cls, d: Mapping) -> Verdict:
        return cls(d["status"], dict(d.get("checks", {})), list(d.get("reasons", [])), d.get("cap"))

    @property
    def label(self) -> str:
        """The status with its cap reason, as headlines and tables show it."""
        return f"{self.status} ({self.cap})" if self.cap else self.status


def count_rule(checks: Mapping[str, bool], *, partial_at_least: int, contradicted: bool = False,
               reasons: list[str] | None = None) -> Verdict:
    """The common rule shape: all checks hold -> reproduced; at least ``partial_at_least`` -> partially;
    fewer -> not reproduced; ``contradicted`` (a separate condition of the claim) overrides."""
    held = sum(bool(v) for v in checks.values())
    if contradicted:
        status = CONTRADICTED
    elif held == len(checks):
        status = REPRODUCED
    elif held >= partial_at_least:
        status = PARTIAL
    else:
        status = NOT_REPRODUCED
    return Verdict(status, {k: bool(v) for k, v in checks.items()}, list(reasons or []))
