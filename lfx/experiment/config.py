"""One config source: frozen dataclasses are the truth, ml_collections ConfigDicts are derived.

An experiment's configuration is a set of dataclasses (for PPO: `PPOConfig`, `HParams` and the
harness's `RunConfig`). `to_configdict` lays their fields out in one ConfigDict (the file a user
edits and the `--config.<field>=` flags override); `from_configdict` turns it back, field by field,
into the same dataclasses. Every field is therefore settable from the command line, and a key no
dataclass claims is an error that names the closest fields.

Layout: `to_configdict(PPOConfig(), RunConfig(), hparams=HParams())` puts the fields of positional
dataclasses at the top level and those of keyword dataclasses in a sub-dict (`c.hparams.lr`).
Fields whose name ends in `_kwargs` hold `((name, value), ...)` tuples in the dataclass (hashable,
so they can sit in a static config) and a sub-dict in the ConfigDict (`--config.env_kwargs.backend`).
A field whose value is itself a dataclass becomes a nested sub-dict, recursively.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any

import ml_collections


class ConfigError(ValueError):
    """A configuration that cannot run; the message says what to change."""


def _is_dataclass_instance(x: Any) -> bool:
    return dataclasses.is_dataclass(x) and not isinstance(x, type)


def _fields(obj_or_cls: Any) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(obj_or_cls) if f.init}


def _value_to_cd(name: str, value: Any) -> Any:
    if name.endswith("_kwargs"):
        return ml_collections.ConfigDict(dict(value))
    if _is_dataclass_instance(value):
        return _dataclass_to_cd(value)
    return value


def _dataclass_to_cd(obj: Any) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {name: _value_to_cd(name, getattr(obj, name)) for name in _fields(obj)}
    )


def to_configdict(*flat: Any, **nested: Any) -> ml_collections.ConfigDict:
    """Dataclass instances -> one ConfigDict (positional: top level; keyword: sub-dicts)."""
    c = ml_collections.ConfigDict()
    for obj in flat:
        for name, value in _dataclass_to_cd(obj).items():
            if name in c:
                raise ConfigError(f"Field {name!r} is defined by two dataclasses; nest one of them.")
            c[name] = value
    for key, obj in nested.items():
        c[key] = _dataclass_to_cd(obj)
    return c


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _coerce(path: str, value: Any, annotation: Any, default: Any) -> Any:
    """Converts a ConfigDict value to the field's type, refusing what cannot be meant."""
    target = type(default) if default is not dataclasses.MISSING else None
    hint = annotation if not isinstance(annotation, str) else None
    if target is None and hint is not None:
        origin = typing.get_origin(hint) or hint
        target = origin if isinstance(origin, type) else None
    if target is None or value is None:
        return value
    if target is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path} must be true or false, got {value!r}.")
    if target is int:
        if isinstance(value, bool):
            raise ConfigError(f"{path} must be an integer, got {value!r}.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{path} must be an integer, got {value!r}.")
    if target is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path} must be a number, got {value!r}.")
        return float(value)
    if target is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}.")
        return value
    if target is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(value)
        if isinstance(value, str):
            raise ConfigError(f"{path} must be a tuple, e.g. --{path}='(64, 64)', got {value!r}.")
        return (value,)
    return value


def _build(cls: type, cd: Any, path: str) -> Any:
    if not isinstance(cd, (ml_collections.ConfigDict, dict)):
        raise ConfigError(f"{path} must be a group of fields, got {cd!r}.")
    fields = _fields(cls)
    hints = typing.get_type_hints(cls) if not isinstance(cls, types.GenericAlias) else {}
    values = {}
    for name, value in cd.items():
        if name not in fields:
            raise ConfigError(
                f"Unknown field {path}.{name}.{_suggest(name, list(fields))} "
                f"Known fields of {path}: {', '.join(sorted(fields))}."
            )
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING
        )
        sub = f"{path}.{name}"
        if name.endswith("_kwargs"):
            if not isinstance(value, (ml_collections.ConfigDict, dict)):
                raise ConfigError(f"{sub} must be a group of keyword arguments, got {value!r}.")
            items = value.to_dict() if isinstance(value, ml_collections.ConfigDict) else dict(value)
            values[name] = tuple(sorted(items.items()))
        elif _is_dataclass_instance(default):
            values[name] = _build(type(default), value, sub)
        else:
            values[name] = _coerce(sub, value, hints.get(name), default)
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from err


def from_configdict(
    cd: ml_collections.ConfigDict, *flat: type, **nested: type
) -> tuple[Any, ...]:
    """Turns a ConfigDict back into the dataclasses it was derived from (`to_configdict`'s inverse).

    Args:
      cd: the (possibly command-line-overridden) ConfigDict.
      *flat: dataclass types whose fields sit at the top level.
      **nested: sub-dict name -> dataclass type.

    Returns:
      The instances, in the order of `flat` then `nested`.

    Raises:
      ConfigError: a key no dataclass claims (naming the close matches), a value of the wrong type,
        or one a dataclass's `__post_init__` refuses.
    """
    owner: dict[str, type] = {}
    for cls in flat:
        for name in _fields(cls):
            owner[name] = cls
    known = sorted(set(owner) | set(nested))
    per_cls: dict[type, dict[str, Any]] = {cls: {} for cls in flat}
    for name, value in cd.items():
        if name in nested:
            continue
        if name not in owner:
            raise ConfigError(
                f"Unknown config field {name!r}.{_suggest(name, known)} "
                f"Known fields: {', '.join(known)}."
            )
        per_cls[owner[name]][name] = value
    out = [_build(cls, per_cls[cls], "config") for cls in flat]
    for key, cls in nested.items():
        out.append(_build(cls, cd[key] if key in cd else {}, f"config.{key}"))
    return tuple(out)


def describe_fields(cd: ml_collections.ConfigDict, prefix: str = "config") -> list[str]:
    """`config.a.b = value` lines for every leaf of a ConfigDict (for --help and --print_config)."""
    lines = []
    for name, value in cd.items():
        path = f"{prefix}.{name}"
        if isinstance(value, ml_collections.ConfigDict):
            sub = describe_fields(value, path)
            lines.extend(sub if sub else [f"{path} = {{}}"])
        else:
            lines.append(f"{path} = {value!r}")
    return lines


def variant_config(variants: dict[str, Any], variant: str, what: str) -> ml_collections.ConfigDict:
    """Looks up `variants[variant]()` and refuses an unknown variant, listing the known ones."""
    if variant not in variants:
        raise ConfigError(
            f"Unknown {what} variant {variant!r}.{_suggest(variant, list(variants))} "
            f"Variants: {', '.join(variants)}."
        )
    return variants[variant]()
