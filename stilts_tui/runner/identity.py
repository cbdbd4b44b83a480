"""Which processes belong to a results file's sweep, proven rather than taken from a file.

The runner's state file names a pid, but a pid is only a number: it may have been reused by
another program since, or the file may have been edited by hand (`"pid": 1`). stilts signals a
process only when the process itself proves it is this results file's:

- the runner holds the store's writer lock for its whole life (`Store(writer=True)`), so it has
  `<db>.lock` open: no other process can, while it runs;
- a local worker runs `python -m stilts_tui.train` with its stderr in the sweep's
  `<db>.workers/` folder (runner/pool.py), so it has a file of that folder open.

Both are read from /proc through psutil (`open_files`), so a process of another user, or one
that cannot be inspected, is never ours. A start time recorded beside a pid must match as well."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

WORKER_MODULE = "stilts_tui.train"


def _real(path: Path) -> str:
    return os.path.realpath(path)


def lock_path(db: Path) -> Path:
    """The store's writer lock (store.py takes it as `<db>.lock`)."""
    return Path(str(db) + ".lock")


def _alive(pid: object, create_time: object = None) -> psutil.Process | None:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        if isinstance(create_time, (int, float)) and not isinstance(create_time, bool) \
                and abs(p.create_time() - create_time) >= 1.0:
            return None  # the pid was reused by a later process
        return p
    except (psutil.Error, OverflowError):
        return None


def _open_paths(p: psutil.Process) -> list[str]:
    try:
        return [f.path for f in p.open_files()]
    except (psutil.Error, OSError):
        return []


def holds_lock(p: psutil.Process, db: Path) -> bool:
    lock = _real(lock_path(db))
    return lock in _open_paths(p)


def runner_process(db: Path, pid: object, create_time: object = None) -> psutil.Process | None:
    """The process `pid` if it is alive and is the runner of `db` (it holds the store's lock)."""
    p = _alive(pid, create_time)
    return p if p is not None and holds_lock(p, db) else None


def worker_process(db: Path, pid: object, create_time: object = None) -> psutil.Process | None:
    """The process `pid` if it is alive and is a worker of `db`'s sweep (a stilts worker whose
    output goes to the sweep's workers folder)."""
    from stilts_tui.runner.files import RunnerFiles

    p = _alive(pid, create_time)
    if p is None:
        return None
    try:
        if WORKER_MODULE not in p.cmdline():
            return None
    except psutil.Error:
        return None
    folder = _real(RunnerFiles(db).workers) + os.sep
    return p if any(path.startswith(folder) for path in _open_paths(p)) else None


def lock_holders(db: Path) -> list[psutil.Process]:
    """Every process of this user holding `db`'s store lock: how a runner is found when its state
    file is damaged or cannot be trusted (at most one, unless the lock was broken by hand)."""
    lock = _real(lock_path(db))
    me = os.getuid()
    found = []
    for p in psutil.process_iter(["uids"]):
        try:
            if p.info["uids"] is None or p.info["uids"].real != me:
                continue
        except (AttributeError, KeyError):
            continue
        if lock in _open_paths(p):
            found.append(p)
    return found
