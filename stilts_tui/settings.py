"""One checker for every value a user writes (specs, task files, Slurm settings): each value is
checked against the dataclass field it fills, by the field's type annotation and the range the
field declares with `ranged(...)`. The rules live next to the fields, so a new field is checked
the moment it is declared."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Union

from stilts_tui.errors import SpecError, unknown_keys


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
    return _NAMES.get(tp, (getattr(tp, "__name__", str(tp)),) * 2)[plural]


def _fits(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        args = typing.get_args(tp)
        return isinstance(value, list) and (not args or all(_fits(v, args[0]) for v in value))
    if origin is dict:
        args = typing.get_args(tp)
        return isinstance(value, dict) and (not args or all(_fits(v, args[1]) for v in value.values()))
    if tp is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # TOML true is not the number 1
        return False
    if tp is float:
        return isinstance(value, (int, float))
    return isinstance(value, tp)


def check_value(cls: type, key: str, value: Any, where: str) -> None:
    """Raise one clear SpecError unless `value` may fill `cls.key`: right type, within range."""
    known = _fields(cls)
    if key not in known:
        raise SpecError(f"{where}: {unknown_keys([key], known)}", f"keys: {', '.join(known)}")
    tp, rng = known[key]
    if not _fits(value, tp):
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
