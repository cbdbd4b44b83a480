"""What is finished: the one definition every count of "done" and "to run" uses."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from stilts_tui.domain.records import RunStatus
from stilts_tui.store import Store


def finished_ids(records: Iterable[dict]) -> set[str]:
    return {r["run_id"] for r in records if r.get("status") == RunStatus.FINISHED}


def read_records(db: Path) -> list[dict]:
    """The results file's records; none before the first sweep wrote it."""
    if not db.is_file():
        return []
    with Store(db) as store:
        return store.runs()
