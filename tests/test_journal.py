"""The results file's journal (store_journal.py): a status change is an fsync'd line, not a
rewrite; readers see every committed change; a writer SIGKILLed at any moment (appending,
folding, between a fold's two renames) loses no committed change and leaves a file TinyDB opens."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tinydb import TinyDB

from stilts_tui import store_journal
from stilts_tui.errors import StiltsError
from stilts_tui.store import Store
from stilts_tui.store_journal import journal_path, next_path


def _records(n: int) -> list[dict]:
    return [{"run_id": f"r{i}", "kind": "target", "intermediate": "none", "target": "rte", "config": {"lr": 1e-5, "i": i}}
            for i in range(n)]


def _scores(db: Path) -> dict[str, float | None]:
    with Store(db) as s:
        return {r["run_id"]: r.get("score") for r in s.runs()}


def _plain(db: Path) -> dict[str, dict]:
    """What a plain TinyDB user (its default JSONStorage) reads of the file."""
    with TinyDB(str(db)) as tdb:
        return {d["run_id"]: dict(d) for d in tdb.table("runs").all()}


def test_a_change_is_a_journal_line_and_the_file_holds_it_once_the_writer_closes(tmp_path):
    db = tmp_path / "results.json"
    with Store(db, writer=True) as s:
        s.add_runs(_records(3))
        base = db.read_bytes()
        s.update("r1", status="finished", score=0.7)
        s.update_many({"r0": {"status": "running"}, "r2": {"status": "failed", "reason": "oom"}})
        assert db.read_bytes() == base                     # the file was not rewritten
        lines = journal_path(db).read_bytes().splitlines()
        assert len(lines) == 4 and json.loads(lines[0])["stilts_journal"] == 1  # header, add, update, update_many
        assert _scores(db)["r1"] == 0.7                    # a reader sees the change at once
        assert _plain(db) == {}                            # plain TinyDB sees the file as of the last fold
        assert s.get("r2")["reason"] == "oom"
    assert not journal_path(db).exists() and not next_path(db).exists()
    plain = _plain(db)                                     # after the writer: the file holds everything
    assert plain["r1"]["score"] == 0.7 and plain["r0"]["status"] == "running" and plain["r2"]["reason"] == "oom"
    with Store(db, writer=True) as s:                      # ids go on from the folded file
        assert s.add_runs(_records(5)) == 2
    assert sorted(json.loads(db.read_text())["runs"], key=int) == ["1", "2", "3", "4", "5"]


def test_folds_in_the_background_keep_every_change(tmp_path, monkeypatch):
    monkeypatch.setattr(store_journal, "FOLD_MIN_BYTES", 2000)
    db = tmp_path / "results.json"
    with Store(db, writer=True) as s:
        s.add_runs(_records(50))
        for i in range(300):
            s.update(f"r{i % 50}", score=i / 1000)
            if i % 37 == 0:
                assert _scores(db)[f"r{i % 50}"] == i / 1000
        journal = s.storage.journal
        assert journal is not None
        if journal.folder is not None:
            journal.folder.join()
        assert journal.folds >= 3 and journal.fold_error is None
        expected = {f"r{k}": max(i for i in range(300) if i % 50 == k) / 1000 for k in range(50)}
        assert _scores(db) == expected
    assert {k: v["score"] for k, v in _plain(db).items()} == expected


def test_a_torn_last_line_was_never_committed(tmp_path):
    db = tmp_path / "results.json"
    s = Store(db, writer=True)
    s.add_runs(_records(2))
    s.update("r0", score=0.5)
    with open(journal_path(db), "ab") as fh:      # a writer killed mid-append
        fh.write(b'{"ops": [["set", "runs", "2", {"score": 0.9')
    s.storage.journal = None                       # killed: no fold on close
    s.close()
    assert _scores(db) == {"r0": 0.5, "r1": None}
    with Store(db, writer=True) as w:              # the next writer folds what is committed
        w.update("r1", score=0.25)
    assert {k: v.get("score") for k, v in _plain(db).items()} == {"r0": 0.5, "r1": 0.25}


def test_killed_between_a_folds_two_renames(tmp_path, monkeypatch):
    """The new base is in place, the journal that continues it still `journal.next`."""
    monkeypatch.setattr(store_journal, "FOLD_MIN_BYTES", 10**9)
    db = tmp_path / "results.json"
    s = Store(db, writer=True)
    s.add_runs(_records(3))
    s.update("r0", score=0.1)
    real = os.replace
    renames: list[str] = []

    def replace(src, dst):
        renames.append(str(dst))
        if str(dst) == str(journal_path(db)):
            raise KeyboardInterrupt("killed")      # stands for SIGKILL: nothing after this runs
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    journal = s.storage.journal
    assert journal is not None
    with pytest.raises(KeyboardInterrupt):
        journal.fold()
    monkeypatch.setattr(os, "replace", real)
    assert next_path(db).exists() and renames[-2:] == [str(db), str(journal_path(db))]
    s.storage.journal = None
    s.close()
    assert _scores(db)["r0"] == 0.1               # the new base holds it; its journal is `next`
    assert _plain(db)["r0"]["score"] == 0.1
    with Store(db, writer=True) as w:
        w.update("r1", score=0.2)
    assert not next_path(db).exists()
    assert {k: v.get("score") for k, v in _plain(db).items()} == {"r0": 0.1, "r1": 0.2, "r2": None}


def test_a_journal_that_names_another_base_is_not_applied(tmp_path):
    """A backup copied over the file while a killed writer's journal lies beside it: the journal
    continues another file, so readers read the file as it is."""
    db = tmp_path / "results.json"
    with Store(db, writer=True) as s:
        s.add_runs(_records(2))
    backup = db.read_bytes()
    s = Store(db, writer=True)
    s.update("r0", score=0.5)
    s.storage.journal = None
    s.close()
    db.write_bytes(backup)
    os.utime(db, ns=(1, 1))
    assert _scores(db) == {"r0": None, "r1": None}


def test_a_damaged_journal_line_is_one_clear_error(tmp_path):
    db = tmp_path / "results.json"
    s = Store(db, writer=True)
    s.add_runs(_records(1))
    s.update("r0", score=0.5)
    s.update("r0", score=0.6)
    raw = journal_path(db).read_bytes().split(b"\n")
    raw[2] = b"garbage"
    journal_path(db).write_bytes(b"\n".join(raw))
    s.storage.journal = None
    s.close()
    with pytest.raises(StiltsError, match="line 3 is damaged") as err:
        Store(db).runs()
    assert "move" in (err.value.fix or "") and "stilts recover" in (err.value.fix or "")


# ------------------------------------------------------------------ chaos: SIGKILL at random moments

CHILD = r"""
import os, sys
from stilts_tui import store_journal
from stilts_tui.store import Store
store_journal.FOLD_MIN_BYTES = 3000       # folds all the time
store_journal.FOLD_BASE_SHARE = 10**9
store_journal.FOLD_CHUNK = 50             # a fold serialises in chunks, appends going on between
import time
write_state = store_journal.Journal._write_state
def slow_write(self):                    # a slow disk: the fold's window is wide enough to be hit
    out = write_state(self)
    time.sleep(0.02)
    return out
store_journal.Journal._write_state = slow_write
fsync_dir = store_journal.fsync_dir
def slow_sync(folder):                   # after both renames, before the writer reopens the journal
    fsync_dir(folder)
    time.sleep(0.01)
store_journal.fsync_dir = slow_sync
fold = store_journal.Journal.fold
def traced(self):
    os.write(1, b"F\n")              # one write each: the fold thread and the main thread both print
    fold(self)
    os.write(1, b"f\n")
store_journal.Journal.fold = traced
db, start = sys.argv[1], int(sys.argv[2])
s = Store(db, writer=True)
s.add_runs([{"run_id": f"r{i}", "kind": "target", "intermediate": "none", "target": "rte",
             "config": {"pad": "x" * 400, "i": i}} for i in range(400)])
i = start
while True:
    if i % 7 == 0:
        s.update_many({f"r{i % 400}": {"score": i}, f"r{(i + 1) % 400}": {"score": i}})
    else:
        s.update(f"r{i % 400}", score=i, status="running")
    os.write(1, b"%d\n" % i)        # only after update returned: committed
    i += 1
"""


def _expected(done: int) -> dict[str, set[int]]:
    """Per run, the scores it may hold when updates 0..done are committed (and maybe done + 1)."""
    last: dict[str, int] = {}
    possible: dict[str, set[int]] = {}
    for i in range(done + 2):
        touched = [f"r{i % 400}", f"r{(i + 1) % 400}"] if i % 7 == 0 else [f"r{i % 400}"]
        for r in touched:
            if i <= done:
                last[r] = i
            possible.setdefault(r, set())
    for r in possible:
        possible[r] = {last[r]} if r in last else {None}  # type: ignore[arg-type]
    for r in ([f"r{(done + 1) % 400}", f"r{(done + 2) % 400}"] if (done + 1) % 7 == 0 else [f"r{(done + 1) % 400}"]):
        possible.setdefault(r, {None}).add(done + 1)  # type: ignore[arg-type]
    return possible


def test_a_writer_sigkilled_at_random_moments_loses_no_committed_change(tmp_path):
    rng = random.Random(37)
    db = tmp_path / "results.json"
    killed_folding = 0
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = -1
    for trial in range(10):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(done + 1)], stdout=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout is not None
        fold_wanted = trial % 2 == 0      # every other trial: killed the moment a fold starts
        deadline = time.monotonic() + rng.uniform(0.3, 1.5)
        folding = False
        for line in proc.stdout:
            line = line.strip()
            if line == "F":
                folding = True
                if fold_wanted and done >= 0:
                    time.sleep(rng.uniform(0, 0.035))   # somewhere in the fold
                    break
            elif line == "f":
                folding = False
            elif line:
                done = int(line)
            if time.monotonic() > deadline and not fold_wanted:
                break
            if time.monotonic() > deadline + 3:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for line in proc.stdout.read().split():   # what it printed before it died: committed too
            if line in ("F", "f"):
                folding = line == "F"
            else:
                done = int(line)
        killed_folding += folding
        json.loads(db.read_text())                # a file TinyDB opens, at any moment
        _plain(db)
        if done < 0:
            continue
        seen = _scores(db)
        allowed = _expected(done)
        wrong = {r: (seen.get(r), v) for r, v in allowed.items() if seen.get(r) not in v}
        assert not wrong, (trial, done, dict(list(wrong.items())[:5]))
        # a committed but unreported update may have landed; the next child starts after it
        done = max([done, *(v for v in seen.values() if isinstance(v, int))])
    assert killed_folding >= 3, killed_folding
    with Store(db, writer=True):
        pass
    assert not journal_path(db).exists()
    final = {k: v.get("score") for k, v in _plain(db).items()}
    assert final == _scores(db)


def test_a_follower_reads_only_what_changed_across_folds(tmp_path, monkeypatch):
    """The app's refresh while a runner writes: the lines since the last refresh, never the whole
    file again, folds included; a record it handed out is never changed under its reader."""
    from stilts_tui.store import Follower

    monkeypatch.setattr(store_journal, "FOLD_MIN_BYTES", 1500)
    db = tmp_path / "results.json"
    with Store(db, writer=True) as s:
        s.add_runs(_records(20))
    follower = Follower(db)                        # reads the file, no journal yet
    assert follower.refresh() and follower.full_reads == 1
    s = Store(db, writer=True)                     # a runner starts: its journal continues that file
    held = {r["run_id"]: r for r in follower.runs()}
    assert not follower.refresh()                  # nothing new: nothing read
    journal = s.storage.journal
    assert journal is not None
    for i in range(200):
        s.update(f"r{i % 20}", score=i)
        if journal.folder is not None:
            journal.folder.join()                   # a fold between two refreshes
        if i % 9 == 0:
            assert follower.refresh()
            assert {r["run_id"]: r.get("score") for r in follower.runs()} == _scores(db)
    assert journal.folds >= 5
    assert follower.full_reads == 1                 # followed every fold
    assert all(r.get("score") is None for r in held.values())   # the old records stand as they were
    s.close()                                       # the journal goes: one full read
    assert follower.refresh() and follower.full_reads == 2
    assert {r["run_id"]: r.get("score") for r in follower.runs()} == _scores(db)


def test_a_reader_during_appends_and_folds_sees_one_committed_state(tmp_path, monkeypatch):
    """Every read is the state after some prefix of the committed changes: never a base paired
    with the wrong journal, never a change lost and a later one kept."""
    import threading

    monkeypatch.setattr(store_journal, "FOLD_MIN_BYTES", 4000)
    monkeypatch.setattr(store_journal, "FOLD_CHUNK", 7)
    db = tmp_path / "results.json"
    s = Store(db, writer=True)
    s.add_runs(_records(30))
    committed = [-1]
    reads: list[tuple[int, dict]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            floor = committed[0]
            reads.append((floor, _scores(db)))

    t = threading.Thread(target=reader)
    t.start()
    for i in range(600):
        s.update(f"r{i % 30}", score=i)
        committed[0] = i
    stop.set()
    t.join()
    journal = s.storage.journal
    assert journal is not None and journal.folds >= 3
    s.close()
    assert len(reads) > 20
    for floor, seen in reads:
        top = max((v for v in seen.values() if v is not None), default=-1)
        assert top >= floor                      # nothing committed before the read began is missing
        for k in range(30):                      # the state after update `top`, exactly
            want = max((i for i in range(top + 1) if i % 30 == k), default=None)
            assert seen[f"r{k}"] == want, (floor, top, k)


def test_an_old_file_reads_unchanged_and_stays_plain_tinydb(tmp_path):
    """A file written before the journal (here by plain TinyDB, indented) reads as it is, is not
    rewritten by readers, and after a writer is still a TinyDB file holding every change."""
    db = tmp_path / "results.json"
    with TinyDB(str(db), indent=2) as tdb:
        tdb.table("runs").insert_multiple([r | {"status": "queued"} for r in _records(3)])
    before = db.read_bytes()
    assert sorted(_scores(db)) == ["r0", "r1", "r2"] and db.read_bytes() == before
    assert not journal_path(db).exists()
    with Store(db, writer=True) as s:
        s.update("r2", status="finished", score=0.9)
        assert s.add_runs(_records(4)) == 1
    assert _plain(db)["r2"]["score"] == 0.9 and sorted(_plain(db)) == ["r0", "r1", "r2", "r3"]
