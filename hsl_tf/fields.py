"""The machinery of hsl_tf.config: a field with its help, choices and bounds (:func:`option`), the
validation every config runs on construction, and the lookup of registry choice lists."""

import dataclasses
import importlib
import math
import types

from hsl_tf.errors import ConfigError


def registry(name):
    """A registry the library owns, named ``"module:ATTR"`` under hsl_tf, read when first needed:
    importing this module loads no TensorFlow, so a configuration is checked before it starts."""
    module, attr = name.split(":")
    return tuple(getattr(importlib.import_module(f"hsl_tf.{module}"), attr))


def option(default, help, *, choices=None, low=None, high=None, above=None, flag=True, branch=None):
    """A config field: ``help`` for ``--help``; ``choices`` names (a tuple, a ``"module:ATTR"`` registry
    or a function returning them);
    ``low``/``high`` inclusive bounds, ``above`` an exclusive lower bound; ``flag=False`` for
    values the stage derives (not a command-line option); ``branch`` the critic whose part of the
    model the field changes ("xz": T_β, "xa": the structure branch m_η/T_ω; None: every run), so a
    run that trains without that critic does not depend on it (:func:`relevant_fields`)."""
    meta = dict(help=help, choices=choices, low=low, high=high, above=above, flag=flag, branch=branch)
    return dataclasses.field(default=default, metadata=meta)


def flag_fields(cls):
    """The fields of ``cls`` that are command-line options, in definition order."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("flag", False)]


def relevant_fields(cls, critics):
    """The option fields of ``cls`` that can change a run which trains the critics ``critics``
    (a subset of {"xz", "xa"}; empty for supervised training)."""
    return [f for f in flag_fields(cls) if f.metadata.get("branch") in (None, *critics)]


def choices_of(f):
    """The allowed values of field ``f`` (None: any)."""
    c = f.metadata.get("choices")
    if c is None or isinstance(c, tuple):
        return c
    return registry(c) if isinstance(c, str) else tuple(c())


def _check_field(f, value):
    m = f.metadata
    if value is None or not m:
        return
    choices = choices_of(f)
    if choices is not None and value not in choices:
        raise ConfigError(f.name, value, f"unknown; choose one of {', '.join(choices)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise ConfigError(f.name, value, "must be finite")
    if m["above"] is not None and not value > m["above"]:
        raise ConfigError(f.name, value, "must be positive" if m["above"] == 0 else f"must be > {m['above']}")
    if m["low"] is not None and value < m["low"]:
        raise ConfigError(f.name, value, "must be ≥ 0" if m["low"] == 0 else f"must be ≥ {m['low']}")
    if m["high"] is not None and value > m["high"]:
        raise ConfigError(f.name, value, f"must be ≤ {m['high']}")


class _Validated:
    """Checks every field against its metadata, then the class's cross-field rules (``_check``)."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        for cls in type(self).__mro__:
            check = cls.__dict__.get("_check")
            if check is not None:
                check(self)


def value_type(f):
    """The type of a field's values: ``int`` for ``int | None``, else the annotation itself."""
    return f.type.__args__[0] if isinstance(f.type, types.UnionType) else f.type


def parse_overrides(cls, items, field):
    """``["--name=value", "--flag", "--noflag"]`` → {name: typed value} for the option fields of ``cls``."""
    fields = {f.name: f for f in flag_fields(cls)}
    out = {}
    for item in items:
        key, eq, value = item.lstrip("-").partition("=")
        name = key[2:] if not eq and key.startswith("no") and key[2:] in fields else key
        if name not in fields:
            raise ConfigError(field, item, f"not an option of the stage ({', '.join(fields)})")
        kind = value_type(fields[name])
        try:
            if kind is bool:
                out[name] = (value.lower() in ("1", "true", "yes")) if eq else not key.startswith("no")
            else:
                out[name] = kind(value)
        except ValueError:
            raise ConfigError(field, item, f"{value!r} is not a {kind.__name__}") from None
    return out
