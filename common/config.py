"""Preset loading: OmegaConf YAML plus ``key=value`` overrides, with one clear error per mistake."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from common.errors import ConfigError


def load_yaml(path: str | Path) -> DictConfig:
    """Load one YAML file as a DictConfig; malformed YAML or a non-mapping top level is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"malformed YAML in {path}{where}: {getattr(e, 'problem', e)}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level, got {type(data).__name__}")
    return OmegaConf.create(data)


def flat_keys(cfg: DictConfig | ListConfig, prefix: str = "") -> list[str]:
    """All dotted keys of a config, leaves and inner nodes (used to suggest near misses)."""
    keys: list[str] = []
    if isinstance(cfg, DictConfig):
        for k in cfg.keys():
            full = f"{prefix}{k}"
            keys.append(full)
            child = cfg._get_node(k)
            if isinstance(child, DictConfig):
                keys.extend(flat_keys(child, full + "."))
    return keys


def _number(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text


def parse_value(raw: str, item: str = "") -> object:
    """YAML value of an override; numbers such as ``1e-6`` (a string to YAML 1.1) become floats."""
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"cannot parse the value of override {item or raw!r}{where}: {problem}") from e
    if isinstance(value, str):
        return _number(value)
    if isinstance(value, list):
        return [_number(v) if isinstance(v, str) else v for v in value]
    return value


def apply_overrides(cfg: DictConfig, overrides: Sequence[str],
                    open_sections: Mapping[str, Callable[[], Sequence[str]]] | None = None) -> DictConfig:
    """Merge ``key=value`` overrides onto ``cfg``. Keys must already exist: a typo is an error that
    names the nearest valid keys, never a silently ignored setting. ``open_sections`` maps a section (e.g.
    ``trainer``) to the names it may take beyond those present (Lightning Trainer arguments), checked the same
    way."""
    from common.config_check import check_types

    valid = flat_keys(cfg)
    out = cfg.copy()
    changed = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        section, _, name = key.partition(".")
        if key not in valid and open_sections and section in open_sections and name:
            allowed = list(open_sections[section]())
            if name.split(".")[0] not in allowed:
                near = difflib.get_close_matches(name, allowed, n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(f'{section}.{n}' for n in near)}?" if near else ""
                raise ConfigError(f"unknown override key {key!r}: not a {section} argument{hint}")
            if section not in out or out[section] is None:
                out[section] = {}
            valid.append(key)
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else "; see the preset YAML for valid keys"
            raise ConfigError(f"unknown override key {key!r}{hint}")
        value = parse_value(raw, item)
        try:
            OmegaConf.update(out, key, value, merge=False)
        except OmegaConfBaseException as e:
            raise ConfigError(f"cannot apply override {item!r}: {e}") from e
        changed.append(key)
    check_types(cfg, out, changed)
    return out


def to_plain(cfg: DictConfig) -> dict:
    """Resolved plain-dict form, stored in records."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def require_keys(cfg: DictConfig, keys: Iterable[str], where: str) -> None:
    """Fail early, by name, when a preset lacks a key its experiment reads."""
    missing = [k for k in keys if OmegaConf.select(cfg, k, default=None) is None]
    if missing:
        raise ConfigError(f"{where}: missing config keys {missing}")
