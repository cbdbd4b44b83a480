"""`--filter key=value`: keep the runs whose field (a top-level record field, or any field of the
run's config) equals the value; numbers compare as numbers (lr=1e-5 matches 0.00001)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stilts_tui.domain.run import Run, runs_of
from stilts_tui.errors import StiltsError


def parse_filters(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StiltsError(f"--filter {item!r} is not key=value", "e.g. --filter lr=1e-5 --filter seed=42")
        out[key.strip()] = value.strip()
    return out


def _equal(actual, wanted: str) -> bool:
    if actual is None:
        return wanted.lower() in ("none", "null", "")
    if isinstance(actual, bool):
        return wanted.lower() in (("true", "1", "yes") if actual else ("false", "0", "no"))
    if isinstance(actual, (int, float)):
        try:
            return abs(float(wanted) - float(actual)) <= 1e-12 * max(1.0, abs(float(actual)))
        except ValueError:
            return False
    return str(actual) == wanted


def apply_filters(runs: Iterable[Run | Mapping[str, Any]], filters: dict[str, str]) -> list[Run]:
    runs = runs_of(runs)
    if not filters:
        return runs
    from stilts_tui.analysis.validate import check_field, fields_of

    known = fields_of(runs)
    if runs:
        for key in filters:
            check_field("--filter", key, known)
    return [r for r in runs if all(_equal(r.value(k), v) for k, v in filters.items())]
