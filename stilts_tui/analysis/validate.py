"""The analysis options checked against the records they read: a `--baseline` no run has, a
`--by` or `--filter` field no run carries, each one message with the closest names ("did you
mean"), never an empty or silently unpaired table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stilts_tui.domain.run import Run, runs_of
from stilts_tui.errors import StiltsError, did_you_mean


def fields_of(runs: list[Run]) -> set[str]:
    return set().union(*(r.field_names() for r in runs))


def check_field(option: str, key: str, known: set[str]) -> None:
    if key in known:
        return
    hint = did_you_mean(key, known)
    raise StiltsError(f"{option}: no run has a field {key!r}" + (f"; {hint}" if hint else ""),
                      "fields include " + ", ".join(sorted(known)[:20]))


def check_by(records: Iterable[Run | Mapping[str, Any]], by: tuple[str, ...]) -> None:
    runs = runs_of(records)
    known = fields_of(runs)
    if runs:
        for key in by:
            check_field("--by", key, known)


def check_baseline(records: Iterable[Run | Mapping[str, Any]], baseline: str | None) -> None:
    """A baseline that is none of the intermediates would leave every Δ empty without a word."""
    names = {r.intermediate for r in runs_of(records) if r.kind in ("target", "probe") and r.intermediate}
    if not baseline or not names or baseline in names:
        return
    hint = did_you_mean(baseline, names)
    raise StiltsError(f"--baseline {baseline!r}: no target run starts from an intermediate of that name"
                      + (f"; {hint}" if hint else ""), "intermediates with target runs: " + ", ".join(sorted(names)))
