"""The results store: one TinyDB JSON file, the single source of truth for every run.

- Atomic writes: each write goes to a temporary file, is fsync'd and renamed over the old one,
  so a crash (or a full disk) mid-write leaves the previous file intact.
- One writer: a process that writes holds an exclusive lock on `<db>.lock` for as long as it
  has the store open; a second writer gets a clear error instead of corrupting records.
  Readers take no lock and always see a complete file."""

from __future__ import annotations

import time
from collections.abc import Iterable, MutableMapping
from pathlib import Path

import orjson
from filelock import FileLock, Timeout
from tinydb import Query, TinyDB
from tinydb.storages import Storage

from stilts_tui.diskspace import DiskFullError, inject, is_disk_full
from stilts_tui.domain.records import RunStatus
from stilts_tui.errors import StiltsError
from stilts_tui.fileio import atomic_write, remove_orphan_temps
from stilts_tui.record_check import json_kind, record_problem

RUNS = "runs"
# A run's life: queued -> running -> finished | failed | stopped (by the user); a run that fails
# for a reason worth retrying goes back to queued; a failed intermediate blocks its targets.
STATUSES = tuple(RunStatus)


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind."""

    def __init__(self, path: str, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        # The writer holds the lock, so what it last wrote is what the file holds: no re-reading.
        self.cache: dict | None = None

    def read(self) -> dict | None:
        if self.cache is not None:
            return self.cache
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = orjson.loads(raw)  # several times faster than json on a 10,000-run file
        except orjson.JSONDecodeError as exc:
            raise StiltsError(f"results file {self.path} is not valid JSON ({exc}); stilts only ever replaces it "
                              "whole (atomically), so another program changed it", damaged_fix(self.path)) from None
        return checked(data, self.path)

    def write(self, data: dict) -> None:
        if self.read_only:
            raise StiltsError(f"results file {self.path} was opened read-only")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = orjson.dumps(data)
        try:
            inject("store", self.path)
            atomic_write(self.path, lambda fh: fh.write(payload))
            self.cache = data
        except OSError as exc:
            self.cache = None  # memory may hold a change the file does not: read the file again
            if is_disk_full(exc):
                raise DiskFullError(self.path, "write the results file") from None
            raise StiltsError(f"could not write results file {self.path}: {exc.strerror}",
                              "check the folder's permissions; the previous results file is intact") from None

    def close(self) -> None:
        pass


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
        self.db = TinyDB(str(self.path), storage=AtomicJSONStorage, read_only=not writer)
        if writer and not self.path.is_file():
            self.db.storage.write({RUNS: {}})  # readers can open a sweep's store from its first moment
        self.table = self.db.table(RUNS)

    def close(self) -> None:
        self.db.close()
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --------------------------------------------------------------- reads

    def runs(self) -> list[dict]:
        data = self.db.storage.read() or {}
        return [dict(d) for d in data.get(RUNS, {}).values()]

    def get(self, run_id: str) -> dict | None:
        doc = self.table.get(Query().run_id == run_id)
        return dict(doc) if doc else None

    # --------------------------------------------------------------- writes (writer only)

    def add_runs(self, records: Iterable[dict]) -> int:
        """Insert runs not yet known (one file write for all of them); returns how many were new."""
        known = {d["run_id"] for d in self.table.all()}
        new = [r | {"status": RunStatus.QUEUED, "queued_at": time.time(), "attempts": 0} for r in records if r["run_id"] not in known]
        if new:
            self.table.insert_multiple(new)
        return len(new)

    def update(self, run_id: str, **fields) -> None:
        if fields.get("status") not in (None, *STATUSES):
            raise ValueError(f"unknown status {fields['status']!r}")
        self.table.update(fields, Query().run_id == run_id)

    def update_many(self, updates: dict[str, dict]) -> None:
        """Several runs' fields in one file write."""
        if not updates:
            return
        for f in updates.values():
            if f.get("status") not in (None, *STATUSES):
                raise ValueError(f"unknown status {f['status']!r}")

        def apply(doc: MutableMapping) -> None:
            doc.update(updates[doc["run_id"]])

        self.table.update(apply, lambda doc: doc.get("run_id") in updates)
