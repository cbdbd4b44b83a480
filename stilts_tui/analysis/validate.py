"""The analysis options checked against the records they read: a `--baseline` no run has, a
`--by` or `--filter` field no run carries, each one message with the closest names ("did you
mean"), never an empty or silently unpaired table."""

from __future__ import annotations

from stilts_tui.errors import StiltsError, did_you_mean


def fields_of(records: list[dict]) -> set[str]:
    return set().union(*(set(r) | set(r.get("config") or {}) for r in records)) - {"config"} if records else set()


def check_field(option: str, key: str, known: set[str]) -> None:
    if key in known:
        return
    hint = did_you_mean(key, known)
    raise StiltsError(f"{option}: no run has a field {key!r}" + (f"; {hint}" if hint else ""),
                      "fields include " + ", ".join(sorted(known)[:20]))


def check_by(records: list[dict], by: tuple[str, ...]) -> None:
    known = fields_of(records)
    if records:
        for key in by:
            check_field("--by", key, known)


def check_baseline(records: list[dict], baseline: str | None) -> None:
    """A baseline that is none of the intermediates would leave every Δ empty without a word."""
    names = {str(r.get("intermediate")) for r in records if r.get("kind") in ("target", "probe") and r.get("intermediate")}
    if not baseline or not names or baseline in names:
        return
    hint = did_you_mean(baseline, names)
    raise StiltsError(f"--baseline {baseline!r}: no target run starts from an intermediate of that name"
                      + (f"; {hint}" if hint else ""), "intermediates with target runs: " + ", ".join(sorted(names)))
