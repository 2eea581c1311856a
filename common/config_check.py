"""Checks a preset's values before anything runs: each known key has a type and a range, so a wrong value in a
preset or an override is one ``error:`` line naming the key, not a traceback in the middle of a run.

The keys are the ones the experiments share (schedule, batch, grid, seeds, optimizer options); they are checked
wherever they appear in a claim's section, so every paper's presets get the same rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig

from common.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    says: str  # what a valid value is, for the error line
    ok: Callable[[Any], bool]


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return _num(v) and float(v).is_integer()


def positive_int() -> Rule:
    return Rule("a positive integer", lambda v: _int(v) and v > 0)


def count(minimum: int) -> Rule:
    return Rule(f"an integer >= {minimum}", lambda v: _int(v) and v >= minimum)


def number(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False, none: bool = False) -> Rule:
    lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
    says = f"a number in {lb}{lo:g}, {hi:g}{rb}" + (" or null" if none else "")

    def ok(v: Any) -> bool:
        if v is None:
            return none
        return _num(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    return Rule(says, ok)


def positive_list() -> Rule:
    return Rule("a non-empty list of positive numbers", lambda v: isinstance(v, (list, ListConfig)) and len(v) > 0
                and all(_num(x) and x > 0 for x in v))


INF = float("inf")
RULES: dict[str, Rule] = {
    "steps": positive_int(), "epochs": positive_int(), "batch_size": positive_int(), "val_every": positive_int(),
    "val_batches": positive_int(), "evals": positive_int(), "block_size": positive_int(),
    "seeds": count(1), "tuning_seeds": count(1), "max_extensions": count(0),
    "warmup_frac": number(0, 1), "min_lr_ratio": number(0, 1), "grad_clip": number(0, INF, lo_open=True, none=True),
    "lr": number(0, INF, lo_open=True), "lrs": positive_list(),
    "weight_decay": number(0, INF), "eps": number(0, INF, lo_open=True), "momentum": number(0, 1, hi_open=True),
    "betas": Rule("a list of numbers in [0, 1)", lambda v: isinstance(v, (list, ListConfig)) and len(v) >= 2
                  and all(_num(x) and 0 <= x < 1 for x in v)),
    "f": number(0, 1, lo_open=True), "fail_margin": number(0, INF),
}


def check_section(section: Any, where: str, rules: dict[str, Rule] = RULES) -> None:
    """Every known key anywhere in ``section`` must satisfy its rule (ConfigError naming the first that does
    not)."""
    for key, value in _items(section, where):
        if isinstance(value, (DictConfig, dict)):
            continue  # a section (e.g. an arm named "momentum"), not a setting
        name = key.rsplit(".", 1)[-1]
        rule = rules.get(name)
        if rule is not None and not rule.ok(_plain(value)):
            raise ConfigError(f"{key} = {_plain(value)!r} is not valid: it must be {rule.says}")


def check_types(before: Any, after: Any, keys: Iterable[str]) -> None:
    """An override keeps the type of the value it replaces (a number stays a number, a list a list)."""
    from omegaconf import OmegaConf

    for key in keys:
        old = OmegaConf.select(before, key, default=None, throw_on_missing=False)
        new = OmegaConf.select(after, key, default=None, throw_on_missing=False)
        if old is None or new is None:
            continue
        kinds = (_kind(old), _kind(new))
        if kinds[0] != kinds[1] and kinds[0] != "other":
            raise ConfigError(f"{key} = {_plain(new)!r} is not valid: the preset has a {kinds[0]} there "
                              f"({_plain(old)!r})")


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if _num(v):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, ListConfig)):
        return "list"
    if isinstance(v, (dict, DictConfig)):
        return "mapping"
    return "other"


def _plain(v: Any) -> Any:
    from omegaconf import OmegaConf

    if isinstance(v, (DictConfig, ListConfig)):
        return OmegaConf.to_container(v, resolve=True)
    return v


def _items(node: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    if isinstance(node, (DictConfig, dict)):
        for k in node.keys():
            v = node[k]
            key = f"{prefix}.{k}" if prefix else str(k)
            yield key, v
            if isinstance(v, (DictConfig, dict)):
                yield from _items(v, key)
