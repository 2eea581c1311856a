"""Typed summaries: what an experiment measured, as a dataclass its claims judge.

Every claim names its ``summary_type``; the judge, headline and test receive an instance of it, whether it comes
fresh from the experiment or is read back from a record (``from_record``), so a judge reads ``s.arms["mars"].mean``
with an editor's help instead of string keys. The record stores ``to_record()``: plain JSON, one key per field
(an :func:`optional` field left at None is left out), so a record reads the same whichever way it was made.
Nested summaries, ``list[...]`` and ``dict[str, ...]`` of them are rebuilt from the field annotations.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

S = TypeVar("S", bound="Summary")

_OPTIONAL = "optrepro.optional"


def optional(default: Any = None) -> Any:
    """A field that may be absent: it defaults to ``default`` and the record leaves it out while it is None."""
    return dataclasses.field(default=default, metadata={_OPTIONAL: True})


@dataclasses.dataclass
class Summary:
    """Base of typed summaries."""

    def to_record(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get(_OPTIONAL):
                continue
            out[f.name] = _plain_value(value)
        return out

    @classmethod
    def from_record(cls: type[S], data: Mapping[str, Any]) -> S:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        names = {f.name for f in fields}
        unknown = [k for k in data if k not in names]
        if unknown:
            raise KeyError(f"{cls.__name__}: the record's summary has fields this type does not declare: "
                           f"{', '.join(unknown)}")
        missing = [f.name for f in fields if f.name not in data and _required(f)]
        if missing:
            raise KeyError(f"{cls.__name__}: the record's summary lacks {', '.join(missing)}")
        hints = typing.get_type_hints(cls)
        return cls(**{f.name: _typed_value(hints[f.name], data[f.name]) for f in fields if f.name in data})

    @classmethod
    def extending(cls: type[S], base: Summary, **more: Any) -> S:
        """An instance of ``cls`` (a subclass of ``base``'s type) with ``base``'s fields plus ``more``."""
        return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)}, **more)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _plain_value(value: Any) -> Any:
    if isinstance(value, Summary):
        return value.to_record()
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    return value


def _typed_value(hint: Any, value: Any) -> Any:
    """``value`` from a record's JSON as the annotation ``hint`` wants it (summaries rebuilt, all else as is)."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        return _typed_value(options[0], value) if len(options) == 1 else value
    if isinstance(hint, type) and issubclass(hint, Summary):
        return value if isinstance(value, hint) else hint.from_record(value)
    if origin is dict:
        _, item = typing.get_args(hint)
        return {k: _typed_value(item, v) for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_typed_value(item, v) for v in value]
    return value


def plain(summary: Any) -> Any:
    """A summary as the record stores it (typed summaries become their plain form; dicts stay as they are)."""
    return summary.to_record() if isinstance(summary, Summary) else summary
