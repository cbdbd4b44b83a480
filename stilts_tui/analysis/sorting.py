"""Runs in the order a user asks for (`stilts results --runs --sort score --top 10`, the runs
table's `sort=` token): by the score or any field a run has (`Run.value`: a record field, else
its config's). The score sorts best first, every other field smallest first; `-key` turns the
order round. Runs without the field come last either way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stilts_tui.analysis.validate import check_field, fields_of
from stilts_tui.domain.run import Run, runs_of
from stilts_tui.errors import StiltsError

DESCENDING_FIRST = frozenset({"score", "finished_at", "started_at", "wall_s", "attempts"})  # biggest is what is looked for


def parse_sort(text: str) -> tuple[str, bool]:
    """(field, descending) of `score`, `-lr`, `+seed`."""
    key = text.strip()
    if key.startswith(("-", "+")):
        if len(key) == 1:
            raise StiltsError(f"--sort {text!r} names no field", "e.g. --sort score, --sort=-lr")
        return key[1:], key[0] == "-" if key[1:] not in DESCENDING_FIRST else key[0] != "-"
    if not key:
        raise StiltsError("--sort names no field", "e.g. --sort score, --sort=-lr")
    return key, key in DESCENDING_FIRST


def sort_runs(runs: Iterable[Run | Mapping[str, Any]], sort: str | None = None, top: int | None = None,
              option: str = "--sort") -> list[Run]:
    """The runs ordered by `sort` (see parse_sort; None keeps their order), the first `top` of them."""
    out = runs_of(runs)
    if top is not None and top < 1:
        raise StiltsError(f"--top {top}: must be 1 or more", "e.g. --top 10")
    if sort:
        key, descending = parse_sort(sort)
        if out:
            check_field(option, key, fields_of(out))
        have = [r for r in out if r.value(key) is not None]
        have.sort(key=lambda r: _order(r.value(key)), reverse=descending)
        out = have + [r for r in out if r.value(key) is None]
    return out[:top] if top is not None else out


def _order(value: Any) -> tuple[int, Any]:
    """Numbers before text, each in its own order (a field holding both never compares them)."""
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))


_OPS = (">=", "<=", ">", "<")


def parse_comparison(token: str) -> tuple[str, str, float] | None:
    """`score>0.7`, `lr<=2e-5`: (field, operator, number); None for a token that is no comparison."""
    for op in _OPS:
        key, sep, value = token.partition(op)
        if sep and key and "=" not in key:
            try:
                return key.strip(), op, float(value)
            except ValueError:
                raise StiltsError(f"{token!r}: {value!r} is not a number", f"e.g. {key}{op}0.7") from None
    return None


def compare_runs(runs: Iterable[Run | Mapping[str, Any]], comparisons: list[tuple[str, str, float]]) -> list[Run]:
    """The runs whose field holds a number that passes every comparison (runs without it drop out)."""
    out = runs_of(runs)
    known = fields_of(out)
    for key, op, limit in comparisons:
        if out:
            check_field("filter", key, known)
        out = [r for r in out if _passes(r.value(key), op, limit)]
    return out


def _passes(value: Any, op: str, limit: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return {">": value > limit, "<": value < limit, ">=": value >= limit, "<=": value <= limit}[op]
