"""The results store: one TinyDB JSON file, the single source of truth for every run.

- Cheap, durable writes: a change is one fsync'd line appended to `<db>.journal`, folded into
  the file in the background and when the writer closes (store_journal.py); the file itself is
  only ever replaced whole (a temporary file, fsync'd and renamed), so a crash (or a full disk)
  at any moment leaves a file TinyDB opens, and no committed change is lost.
- One writer: a process that writes holds an exclusive lock on `<db>.lock` for as long as it
  has the store open; a second writer gets a clear error instead of corrupting records.
  Readers take no lock and always see a complete file."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import orjson
from filelock import FileLock, Timeout
from tinydb import TinyDB
from tinydb.storages import Storage

from stilts_tui.domain.records import RunStatus
from stilts_tui.errors import StiltsError
from stilts_tui.fileio import remove_orphan_temps
from stilts_tui.record_check import json_kind, record_problem
from stilts_tui.store_journal import (
    Follow,
    Journal,
    Op,
    apply_ops,
    follow_from,
    journal_path,
    merged,
    next_path,
    read_consistent,
    read_on,
)

RUNS = "runs"
# A run's life: queued -> running -> finished | failed | stopped (by the user); a run that fails
# for a reason worth retrying goes back to queued; a failed intermediate blocks its targets.
STATUSES = tuple(RunStatus)


class JournalStorage(Storage):
    """TinyDB storage over the results file and its journal (store_journal.py): the writer
    appends each change as one fsync'd line and folds the lines into the file in the background
    and on close; a reader reads the file and applies the journal that continues it. The file is
    only ever replaced whole, so it is always one TinyDB itself opens."""

    def __init__(self, path: str, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.journal: Journal | None = None   # the writer's: it holds the state in memory

    def open_writer(self) -> None:
        """Load the state (what a killed writer left in its journal included) and fold it into
        the file, so this writer starts from a file that holds everything."""
        state = read_consistent(self.path)
        data = checked(merged(state, self.parse), self.path) if state is not None else None
        left = state is not None and (state.journal is not None or journal_path(self.path).exists()
                                      or next_path(self.path).exists())
        self.journal = Journal(self.path, data if data is not None else {RUNS: {}})
        if data is None or left:
            self.journal.write_whole(self.journal.data)

    def read(self) -> dict | None:
        if self.journal is not None:
            return self.journal.data
        state = read_consistent(self.path)
        if state is None:
            return None
        data = merged(state, self.parse)
        return checked(data, self.path) if data is not None else None

    def parse(self, raw: bytes) -> dict | None:
        return parse_results(self.path, raw)

    def write(self, data: dict) -> None:
        """A write through TinyDB's table API: the whole file, atomically (the store's own writes
        append to the journal instead)."""
        if self.read_only:
            raise StiltsError(f"results file {self.path} was opened read-only")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.journal is None:
            self.journal = Journal(self.path, data)
        self.journal.write_whole(data)

    def append(self, ops: list[Op]) -> None:
        if self.read_only or self.journal is None:
            raise StiltsError(f"results file {self.path} was opened read-only")
        self.journal.append(ops)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


AtomicJSONStorage = JournalStorage  # its name before the journal


def parse_results(path: Path, raw: bytes) -> dict | None:
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)  # several times faster than json on a 10,000-run file
    except orjson.JSONDecodeError as exc:
        raise StiltsError(f"results file {path} is not valid JSON ({exc}); stilts only ever replaces it "
                          "whole (atomically), so another program changed it", damaged_fix(path)) from None


class Follower:
    """A reader that keeps the runs in memory and, on each refresh, reads and applies only the
    journal lines committed since the last (the app while a runner writes): the cost of a refresh
    is that of what changed. It reads the whole file again only when the journal it follows is
    gone (the writer closed) or was folded past the point it had read."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.data: dict | None = None
        self.at: Follow | None = None
        self.full_reads = 0
        self.changed: set[str] | None = None   # the documents the last refresh changed (None: all)

    def refresh(self) -> bool:
        """Bring the copy up to date; True when anything changed."""
        if self.at is not None and self.data is not None:
            got = read_on(self.path, self.at)
            if got is not None:
                lines, at = got
                changed: set[str] = set()
                for ops in lines:
                    apply_ops(self.data, ops, changed)
                docs = self.data.get(RUNS, {})
                checked({RUNS: {k: docs[k] for k in changed if k in docs}}, self.path)
                self.at, self.changed = at, changed
                return bool(lines)
        state = read_consistent(self.path)
        self.full_reads += 1
        self.changed = None
        if state is None:
            self.data, self.at = None, None
            return True
        data = merged(state, lambda raw: parse_results(self.path, raw))
        self.data = checked(data, self.path) if data is not None else None
        self.at = follow_from(state)
        return True

    def runs(self) -> list[dict]:
        return list(self.docs().values())

    def docs(self) -> dict[str, dict]:
        """Document id -> record (a changed record is a new dict: one handed out never changes)."""
        return (self.data or {}).get(RUNS, {})


def recovered_path(path: Path) -> Path:
    """Where `stilts recover` writes a results file rebuilt from its run logs (ops/recover.py)."""
    return path.with_name(path.stem + ".recovered.json")


def damaged_fix(path: Path) -> str:
    """What to do about a results file that no reader can use."""
    return (f"restore {path} from a backup, or rebuild it from its runs' event logs "
            f"({path.with_name(path.stem + '.runs')}/<run id>/events.jsonl) and sweep files: stilts recover --db {path} "
            f"writes {recovered_path(path)} and keeps this file; stilts resume --db {recovered_path(path)} then "
            "continues the sweep")


def checked(data: object, path: Path) -> dict:
    """The parsed file, if it has the store's shape and every record reads (record_check.py);
    else one error naming the first record and field that does not."""
    if not isinstance(data, dict) or not isinstance(data.get(RUNS, {}), dict):
        what = data if not isinstance(data, dict) else data[RUNS]
        where = "the file" if not isinstance(data, dict) else f"its {RUNS!r}"
        raise StiltsError(f"results file {path} is not a stilts results file: {where} is {json_kind(what)}, "
                          f'not an object ({{"{RUNS}": {{"1": {{"run_id": ...}}, ...}}}})',
                          f"pass the results file a sweep wrote (--db PATH); if this is one, {damaged_fix(path)}")
    for key, doc in data.get(RUNS, {}).items():
        problem = record_problem(doc)
        if problem:
            run = doc.get("run_id") if isinstance(doc, dict) else None
            name = f"the record of run {run!r} (key {key!r})" if isinstance(run, str) else f"record {key!r}"
            raise StiltsError(f"results file {path}: {name} {problem}",
                              f"edit that record in {path} (see a complete record beside it), or delete the "
                              "record: the next `stilts run` of its spec runs that run again; or rebuild the whole "
                              f"file from its runs' event logs: stilts recover --db {path} (this file is kept)")
    return data


class Store:
    """Runs keyed by run id. Open with ``writer=True`` to write (takes the writer lock)."""

    def __init__(self, path: str | Path, writer: bool = False, lock_timeout: float = 0.0) -> None:
        self.path = Path(path)
        self.writer = writer
        self.lock: FileLock | None = None
        if writer:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.lock = FileLock(str(self.path) + ".lock")
            try:
                self.lock.acquire(timeout=lock_timeout)
            except Timeout:
                raise StiltsError(f"another stilts process is writing to {self.path}",
                                  "wait for that sweep to finish, or use another --db") from None
            remove_orphan_temps(self.path)  # only the lock holder writes the file: these are a killed writer's
        elif not self.path.is_file():
            raise StiltsError(f"results file {self.path} not found", "run a sweep first, or pass --db PATH")
        self.db = TinyDB(str(self.path), storage=JournalStorage, read_only=not writer)
        storage = self.db.storage
        assert isinstance(storage, JournalStorage)
        self.storage = storage
        if writer:
            try:
                self.storage.open_writer()
            except BaseException:
                self.lock.release()  # type: ignore[union-attr]
                raise
        self.table = self.db.table(RUNS)
        self._ids: dict[str, str] | None = None   # the writer's run id -> document id

    def close(self) -> None:
        self.db.close()
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --------------------------------------------------------------- reads

    def _docs(self) -> dict[str, dict]:
        data = self.storage.read() or {}
        return data.get(RUNS, {})

    def runs(self) -> list[dict]:
        docs = self._docs().values()
        # A reader's records are its own, parsed for this call; the writer's are its live state.
        return [dict(d) for d in docs] if self.writer else list(docs)

    def get(self, run_id: str) -> dict | None:
        docs = self._docs()
        if self.writer:
            doc_id = self._id_map().get(run_id)
            doc = docs.get(doc_id) if doc_id is not None else None
        else:
            doc = next((d for d in docs.values() if d.get("run_id") == run_id), None)
        return dict(doc) if doc else None

    def _id_map(self) -> dict[str, str]:
        docs = self._docs()
        if self._ids is None or len(self._ids) != len(docs):  # a write through TinyDB's table API
            self._ids = {d["run_id"]: k for k, d in docs.items()}
        return self._ids

    # --------------------------------------------------------------- writes (writer only)

    def _commit(self, ops: list[Op]) -> None:
        self.storage.append(ops)
        self.table.clear_cache()  # TinyDB's own query cache and next id know nothing of the journal
        self.table._next_id = None

    def add_runs(self, records: Iterable[dict]) -> int:
        """Insert runs not yet known (one journal line for all of them); returns how many were new."""
        if not self.writer:
            raise StiltsError(f"results file {self.path} was opened read-only")
        ids = self._id_map()
        docs = self._docs()
        next_id = max((int(k) for k in docs), default=0) + 1
        now = time.time()
        ops: list[Op] = []
        for r in records:
            if r["run_id"] in ids:
                continue
            doc = r | {"status": RunStatus.QUEUED, "queued_at": now, "attempts": 0}
            ids[r["run_id"]] = str(next_id)
            ops.append(["put", RUNS, str(next_id), doc])
            next_id += 1
        if ops:
            try:
                self._commit(ops)
            except BaseException:
                self._ids = None  # some ids above were never committed
                raise
        return len(ops)

    def update(self, run_id: str, **fields) -> None:
        self.update_many({run_id: fields})

    def update_many(self, updates: dict[str, dict]) -> None:
        """Several runs' fields in one journal line."""
        for f in updates.values():
            if f.get("status") not in (None, *STATUSES):
                raise ValueError(f"unknown status {f['status']!r}")
        if not self.writer:
            raise StiltsError(f"results file {self.path} was opened read-only")
        ids = self._id_map()
        ops: list[Op] = [["set", RUNS, ids[r], dict(f)] for r, f in updates.items() if r in ids and f]
        if ops:
            self._commit(ops)
