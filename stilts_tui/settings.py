"""One checker for every value read from outside (specs, task files, Slurm settings, the worker's
events): each value is checked against the dataclass field (or TypedDict key) it fills, by the
field's type annotation and the range the field declares with `ranged(...)`. The rules live next
to the fields, so a new field is checked the moment it is declared. `parse_table` builds the
dataclass from a checked table, so what leaves the parser is typed, not a table to read again.

One rule for every source: true and false are not numbers (TOML's and JSON's `true` is not 1),
a whole number is a fine float, None fits only a type that says `| None`."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

from stilts_tui.errors import SpecError, unknown_keys

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclass(frozen=True)
class Range:
    """Bounds on a number: `gt`/`ge` below, `lt`/`le` above (None: unbounded)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def holds(self, x: float) -> bool:
        return ((self.gt is None or x > self.gt) and (self.ge is None or x >= self.ge)
                and (self.lt is None or x < self.lt) and (self.le is None or x <= self.le))

    def describe(self, key: str) -> str:
        low = f"{_num(self.gt)} < " if self.gt is not None else f"{_num(self.ge)} ≤ " if self.ge is not None else ""
        high = f" < {_num(self.lt)}" if self.lt is not None else f" ≤ {_num(self.le)}" if self.le is not None else ""
        return f"{low}{key}{high}"


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"  # a seed's bound in full, not 4.29497e+09


# Whole numbers end up in the results file and the run's config, JSON that orjson writes: it
# takes 64 bits at most, and a larger seed crashed the runner at its first store write.
INT_MAX = 2**63 - 1


def ranged(default: Any, *, gt: float | None = None, ge: float | None = None, lt: float | None = None,
           le: float | None = None) -> Any:
    """A dataclass field whose user-given values must lie in a range."""
    return dataclasses.field(default=default, metadata={"range": Range(gt, ge, lt, le)})


@cache
def _fields(cls: type) -> dict[str, tuple[Any, Range | None]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata.get("range")) for f in dataclasses.fields(cls)}


_NAMES = {int: ("an integer", "integers"), float: ("a number", "numbers"), str: ("a string", "strings"),
          bool: ("true or false", "true or false")}


def _type_name(tp: Any, plural: bool = False) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a, plural) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        args = typing.get_args(tp)
        return ("lists" if plural else "a list") + (f" of {_type_name(args[0], True)}" if args else "")
    if origin is dict or tp is dict:
        args = typing.get_args(tp)
        return ("tables" if plural else "a table") + (f" of {_type_name(args[1], True)}" if args else "")
    if dataclasses.is_dataclass(tp):
        return "tables" if plural else "a table"
    return _NAMES.get(tp, (getattr(tp, "__name__", str(tp)),) * 2)[plural]


def fits(value: Any, tp: Any) -> bool:
    """Does a value read from TOML or JSON fit a declared type? A dataclass type stands for a table
    (its keys are checked when it is parsed); a TypedDict for an object holding its keys."""
    return _checker(tp)(value)


# Each type's check is made once: event logs are checked line by line, and reading a type's
# annotation again for every value was most of the time of decoding a line.
@cache
def _checker(tp: Any) -> Callable[[Any], bool]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return lambda v: True
    if tp is type(None):
        return lambda v: v is None
    if origin is Literal:
        return lambda v: v in args
    if origin in (Union, types.UnionType):
        parts = tuple(_checker(a) for a in args)
        return lambda v: any(part(v) for part in parts)
    if origin is list:
        item = _checker(args[0]) if args else None
        return lambda v: isinstance(v, list) and (item is None or all(map(item, v)))
    if origin is dict:
        entry = _checker(args[1]) if args else None
        return lambda v: isinstance(v, dict) and (entry is None or all(map(entry, v.values())))
    if typing.is_typeddict(tp):
        return lambda v: isinstance(v, dict) and conforms(v, tp)
    if dataclasses.is_dataclass(tp):
        return lambda v: isinstance(v, dict)
    if tp is bool:
        return lambda v: isinstance(v, bool)
    # TOML's and JSON's true is not the number 1 (bool is an int to Python), and 1 is a fine float.
    kinds = (int, float) if tp is float else tp
    return lambda v: isinstance(v, kinds) and not isinstance(v, bool)


@cache
def _keys(kind: Any) -> tuple[frozenset[str], tuple[tuple[str, Callable[[Any], bool]], ...]]:
    return kind.__required_keys__, tuple((key, _checker(hint)) for key, hint in typing.get_type_hints(kind).items())


def conforms(obj: dict, kind: Any) -> bool:
    """Does a JSON object hold every required key of a TypedDict, and each key it has fit its type?
    (Keys the TypedDict does not declare are let through: a newer writer may add some.)"""
    required, checks = _keys(kind)
    return all(key in obj for key in required) and all(check(obj[key]) for key, check in checks if key in obj)


def check_value(cls: type, key: str, value: Any, where: str) -> None:
    """Raise one clear SpecError unless `value` may fill `cls.key`: right type, within range."""
    known = _fields(cls)
    if key not in known:
        raise SpecError(f"{where}: {unknown_keys([key], known)}", f"keys: {', '.join(known)}")
    tp, rng = known[key]
    if not fits(value, tp):
        raise SpecError(f"{where}: {key} = {value!r} is not {_type_name(tp)}", f"give {key} as {_type_name(tp)}")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(value, float) and not math.isfinite(value):  # TOML has nan and inf; JSON has neither
        raise SpecError(f"{where}: {key} = {value!r} is not a finite number", f"give {key} as a finite number")
    if rng is not None and number and not rng.holds(value):
        raise SpecError(f"{where}: {key} = {value!r} is out of range", f"allowed: {rng.describe(key)}")
    if number and isinstance(value, int) and abs(value) > INT_MAX:
        raise SpecError(f"{where}: {key} = {value!r} is too large: whole numbers must fit in 64 bits",
                        f"give {key} at most {INT_MAX}" if value > 0 else f"give {key} at least {-INT_MAX}")


def check_table(cls: type, raw: dict, where: str) -> None:
    """Every key of a user table one of cls's fields, and its value valid."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a table", f"e.g. {where} then key = value")
    allowed = list(_fields(cls))
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise SpecError(f"{where}: {unknown_keys(unknown, allowed)}", f"keys: {', '.join(allowed)}")
    for key, value in raw.items():
        check_value(cls, key, value, where)


def parse_table(cls: type[T], raw: Any, where: str, missing_fix: str | None = None) -> T:
    """`cls` built from a user table, checked as `check_table` does; a required field the table
    leaves out is named (with `missing_fix`), and a field whose type is a dataclass is parsed from
    its own table the same way."""
    check_table(cls, raw, where)
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SpecError(f"{where}: missing key {f.name!r}", missing_fix or f"add {f.name} = ...")
            continue
        value = raw[f.name]
        values[f.name] = parse_table(hints[f.name], value, f"{where} [{f.name}]", missing_fix) \
            if dataclasses.is_dataclass(hints[f.name]) else value
    return cls(**values)
