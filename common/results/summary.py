"""Typed summaries: what an experiment measured, as a dataclass its claims judge.

A claim with ``summary_type`` set judges an instance of that class, whether it comes fresh from the experiment or
is read back from a record (``from_record``), so a judge reads ``s.per_mu["1"].adam_ratio`` with an editor's help
instead of string keys. The record stores ``to_record()``: the same plain JSON a dict summary would give, fields
in declaration order, so records do not change when a paper moves to a typed summary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

S = TypeVar("S", bound="Summary")


@dataclasses.dataclass
class Summary:
    """Base of typed summaries. Subclasses with nested summaries override ``from_record`` for those fields."""

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls: type[S], data: Mapping[str, Any]) -> S:
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise KeyError(f"{cls.__name__}: the record's summary lacks {', '.join(missing)}")
        return cls(**{n: data[n] for n in names})


def plain(summary: Any) -> Any:
    """A summary as the record stores it (typed summaries become their plain form; dicts stay as they are)."""
    return summary.to_record() if isinstance(summary, Summary) else summary
