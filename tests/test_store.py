"""The TinyDB results store: atomic writes, one writer, clear errors."""

from __future__ import annotations

import json
import os

import pytest

from stilts_tui.errors import StiltsError
from stilts_tui.store import Store


def _records(n: int) -> list[dict]:
    return [{"run_id": f"r{i}", "kind": "target", "intermediate": "none", "target": "rte"} for i in range(n)]


def test_add_update_and_read_back(tmp_path):
    db = tmp_path / "results.json"
    with Store(db, writer=True) as s:
        assert s.add_runs(_records(3)) == 3
        assert s.add_runs(_records(4)) == 1  # only the unknown one
        s.update("r1", status="finished", score=0.7)
    with Store(db) as s:
        runs = {r["run_id"]: r for r in s.runs()}
    assert len(runs) == 4 and runs["r1"]["status"] == "finished" and runs["r0"]["status"] == "queued"
    assert json.loads(db.read_text())["runs"]  # plain TinyDB JSON


def test_a_crash_mid_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    db = tmp_path / "results.json"
    with Store(db, writer=True) as s:
        s.add_runs(_records(2))
    before = db.read_bytes()
    s = Store(db, writer=True)

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StiltsError, match="the disk is full: could not write the results file") as err:
        s.update("r0", status="finished", score=1.0)
    assert "free on" in err.value.problem and "the results file is intact" in (err.value.fix or "")
    monkeypatch.undo()
    s.close()
    assert db.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no debris


def test_only_one_writer(tmp_path):
    db = tmp_path / "results.json"
    first = Store(db, writer=True)
    try:
        with pytest.raises(StiltsError, match="another stilts process is writing"):
            Store(db, writer=True)
        Store(db).runs()  # readers are never blocked
    finally:
        first.close()
    Store(db, writer=True).close()  # free again once the first writer is gone


def test_missing_and_corrupt_files_are_clear_errors(tmp_path):
    with pytest.raises(StiltsError, match="not found"):
        Store(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"runs": {"1": ')
    with pytest.raises(StiltsError, match="not valid JSON"):
        Store(bad).runs()


def test_readers_cannot_write(tmp_path):
    db = tmp_path / "results.json"
    Store(db, writer=True).close()
    with pytest.raises(StiltsError, match="read-only"):
        Store(db).add_runs(_records(1))
