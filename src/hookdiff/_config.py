"""Frozen dataclass configs and their command-line options, from one declaration per field.

A config field is declared with :func:`option`: its default, its help text (kept in the field's
metadata, so ``--help``, error messages and docs read it at run time without the source), and
optional checks (``min``, ``choices``, a ``check`` function). :func:`add_options` turns every field of a config class
into a command-line option, :func:`from_args` builds the config back from the parsed options,
:func:`from_dict` from JSON values, and :func:`check` validates the declared checks. A field
without a default becomes a positional argument. The dataclass is the one source of defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from hookdiff.errors import ConfigError, unknown_name_message

__all__ = [
    "add_options",
    "check",
    "field_help",
    "flag",
    "from_args",
    "from_dict",
    "option",
    "parse_value",
    "to_dict",
]

C = TypeVar("C")

#: Strings an optional field reads as None on the command line.
_NONE = ("", "none")


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    factor: float | None = None,
    min: float | None = None,
    choices: Sequence[str] | None = None,
    check: Callable[[Any], Any] | None = None,
) -> Any:
    """A dataclass field with its help text and checks in its metadata.

    Args:
        default: The default value (immutable); none: a required (positional) argument.
        help: What the field means, in a sentence or two (the option's ``--help`` text).
        flag: The option's name when it is not ``--`` + the field name with dashes.
        factor: The option's value times ``factor`` is the field's (e.g. minutes -> seconds).
        min: The smallest valid value (numbers).
        choices: The valid values (strings).
        check: Called with the value; raises :class:`~hookdiff.errors.ConfigError` saying what is
            wrong with it (values whose validity is not a list or a bound, e.g. device names).

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Demo:
        ...     seed: int = option(0, "Seeds everything.", min=0)
        >>> field_help(dataclasses.fields(Demo)[0])
        'Seeds everything.'
    """
    meta = {
        "help": " ".join(help.split()),
        "flag": flag,
        "factor": factor,
        "min": min,
        "choices": tuple(choices) if choices is not None else None,
        "check": check,
    }
    return dataclasses.field(default=default, metadata=meta)


def field_help(f: dataclasses.Field) -> str:
    """The help text :func:`option` recorded for a field ("" when there is none)."""
    return str(f.metadata.get("help") or "")


def flag(f: dataclasses.Field) -> str:
    """The command-line name of a field's option (``out_dir`` -> ``--out-dir`` unless renamed)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(hint, False)``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def parse_value(value: Any, hint: Any) -> Any:
    """``value`` (a command-line string or a JSON value) as a value of type ``hint``.

    Tuples are read from lists or from comma-separated strings (``"-1,0,1"``); an optional field
    reads ``None``, ``""`` and ``"none"`` as None.

    Raises:
        ValueError: the value is not of that type; the message says what was expected.

    Example:
        >>> parse_value("-1,0.5", tuple[float, ...])
        (-1.0, 0.5)
    """
    hint, optional = _split_optional(hint)
    if optional and (value is None or (isinstance(value, str) and value.lower() in _NONE)):
        return None
    if typing.get_origin(hint) is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"expected a comma-separated list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(parse_value(v.strip() if isinstance(v, str) else v, item) for v in items)
    return _parse_scalar(value, hint)


def _parse_scalar(value: Any, hint: Any) -> Any:
    name = getattr(hint, "__name__", str(hint))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise ValueError(f"expected true or false, got {value!r}")
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected {'an' if name == 'int' else 'a'} {name}, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(
            f"expected {'an' if name == 'int' else 'a'} {name}, got {value!r}"
        ) from None
    if hint is int:
        if not number.is_integer():
            raise ValueError(f"expected an int, got {value!r}")
        return int(number)
    return hint(value)


def _check_field(f: dataclasses.Field, value: Any) -> str | None:
    """What is wrong with ``value`` for field ``f`` by its declared checks (None: nothing)."""
    lo, choices = f.metadata.get("min"), f.metadata.get("choices")
    if value is None:
        return None
    if lo is not None and value < lo:
        return f"expected {'an int' if isinstance(value, int) else 'a number'} >= {lo}"
    if choices is not None and value not in choices:
        return unknown_name_message(f"valid {f.name}", str(value), choices)
    if f.metadata.get("check") is not None:
        try:
            f.metadata["check"](value)
        except ConfigError as e:
            return str(e)
    return None


def check(config: C) -> C:
    """Check every field of ``config`` against its declared ``min`` / ``choices``; return it.

    Raises:
        ConfigError: names the first bad field, its value, its option and what was expected.
    """
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        problem = _check_field(f, value := getattr(config, f.name))
        if problem:
            raise ConfigError(
                f"{type(config).__name__}.{f.name} = {value!r} ({flag(f)}): {problem}"
            )
    return config


def _argument_type(f: dataclasses.Field, hint: Any) -> Callable[[str], Any]:
    """argparse's ``type=`` for a field: parse, check, and scale by the field's factor."""
    factor = f.metadata.get("factor")

    def parse(text: str) -> Any:
        try:
            value = parse_value(text, hint)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if factor is not None and value is not None:
            value = value * factor
        problem = _check_field(f, value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = f.name
    return parse


def _shown(f: dataclasses.Field) -> str:
    """The default as a user types it (tuples comma-separated, None as ``none``)."""
    value = f.default
    if f.metadata.get("factor") and value is not None:
        value = value / f.metadata["factor"]
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one option per field of the dataclass ``cls`` (a positional one without a default).

    Options left out on the command line are absent from the parsed namespace, so
    :func:`from_args` can lay the given ones over any base config (defaults, a profile, a file).
    """
    for f in dataclasses.fields(cls):
        hint = _hints(cls)[f.name]
        text = field_help(f).replace("%", "%%")
        if f.default is dataclasses.MISSING:
            parser.add_argument(f.name, type=_argument_type(f, hint), help=text)
            continue
        text += f" (default: {_shown(f)})"
        if hint is bool:
            parser.add_argument(
                flag(f),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=text,
            )
            continue
        is_list = typing.get_origin(_split_optional(hint)[0]) is tuple
        metavar = "A,B,..." if is_list else flag(f).lstrip("-").replace("-", "_").upper()
        parser.add_argument(
            flag(f),
            dest=f.name,
            type=_argument_type(f, hint),
            default=argparse.SUPPRESS,
            metavar=metavar,
            help=text,
        )


def from_args(cls: type[C], args: argparse.Namespace, base: C | None = None) -> C:
    """The config of class ``cls``: the options given in ``args`` laid over ``base``.

    ``base`` defaults to the dataclass's defaults. The result is :func:`check`-ed.
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    given = {k: v for k, v in vars(args).items() if k in names}
    config = dataclasses.replace(base, **given) if base is not None else cls(**given)
    return check(config)


def from_dict(cls: type[C], values: Mapping[str, Any], base: C | None = None) -> C:
    """The config of class ``cls``: JSON-like ``values`` (any subset of fields) over ``base``.

    Raises:
        ConfigError: an unknown key (with the closest field names), or a value of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in values:
        if key not in fields:
            what = f"field of {cls.__name__} (unknown keys {sorted(set(values) - set(fields))})"
            raise ConfigError(unknown_name_message(what, key, list(fields)))
    parsed = {}
    for key, value in values.items():
        try:
            parsed[key] = parse_value(value, _hints(cls)[key])
        except ValueError as e:
            raise ConfigError(f"{cls.__name__}.{key} = {value!r}: {e}") from None
    config = dataclasses.replace(base, **parsed) if base is not None else cls(**parsed)
    return check(config)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-able values of every field of ``config`` (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(config, f.name), tuple) else v
        for f in dataclasses.fields(config)
    }
