"""The runner's files beside the results file, readable by this user only. The runner listens on
nothing: control is a file dropped in its control folder, state is a file it rewrites atomically.

    results.json            the store (the runs)            results.runner.json  the runner's state
    results.runner.log      the runner's own output         results.control/     stop requests
    results.sweeps/         the runs each sweep was asked to run (what `stilts resume` continues)
    results.slurm/          Slurm jobs' scripts and logs (executor = "slurm")
    results.runs/           each run's event log, checkpoint and outputs (sweep/placement.py)"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

import psutil

from stilts_tui.diskspace import DiskFullError, inject, is_disk_full, room_made
from stilts_tui.errors import StiltsError
from stilts_tui.fileio import atomic_write
from stilts_tui.runner.identity import runner_process
from stilts_tui.runner.state_file import LIVE, read_state_file
from stilts_tui.sweep.placement import runs_folder

BALLAST_BYTES = 64 * 1024
# Run ids are hashes (domain/run_config.py); a request's file name holds one, so nothing else may.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class RunnerFiles:
    db: Path

    @property
    def state(self) -> Path:
        return self.db.with_name(self.db.stem + ".runner.json")

    @property
    def log(self) -> Path:
        return self.db.with_name(self.db.stem + ".runner.log")

    @property
    def control(self) -> Path:
        return self.db.with_name(self.db.stem + ".control")

    @property
    def sweeps(self) -> Path:
        return self.db.with_name(self.db.stem + ".sweeps")

    @property
    def slurm(self) -> Path:
        """submitit's folder: the jobs' sbatch scripts, pickles and logs."""
        return self.db.with_name(self.db.stem + ".slurm")

    @property
    def runs(self) -> Path:
        return runs_folder(self.db)

    @property
    def workers(self) -> Path:
        return self.db.with_name(self.db.stem + ".workers")

    @property
    def ballast(self) -> Path:
        """Space the runner holds while it runs and lets go of on a full disk, so that it can
        still write its state and its log to say what happened."""
        return self.control / ".ballast"

    def make_ballast(self) -> None:
        size = BALLAST_BYTES + 2 * (self.state.stat().st_size if self.state.is_file() else 0)
        try:
            with self.ballast.open("wb") as fh:
                fh.write(bytes(size))  # real blocks, not a sparse file: they are what gets freed
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            self.release_ballast()  # already too full to hold it: the sweep's own writes will say so

    def release_ballast(self) -> None:
        with contextlib.suppress(OSError):
            self.ballast.unlink()
            room_made()

    def make_dirs(self) -> None:
        for d in (self.db.parent, self.control, self.sweeps, self.workers):
            try:
                d.mkdir(parents=True, exist_ok=True)
                if d != self.db.parent:
                    os.chmod(d, 0o700)
                if not os.access(d, os.W_OK | os.X_OK):
                    raise PermissionError(13, "Permission denied")
            except OSError as exc:
                raise StiltsError(f"cannot write {d} ({exc.strerror}): a sweep keeps its control, sweep and worker "
                                  "files beside the results file", f"make it yours and writable (chmod u+rwx {d}), "
                                  "or pass another --db") from None

    # ----------------------------------------------------------------- state

    def write_state(self, state: dict) -> None:
        write_private_json(self.state, state)

    def read_state(self) -> dict | None:
        """The state, its fields checked (runner/state_file.py); None when there is none."""
        return read_state_file(self.state)

    def runner(self, state: dict | None) -> psutil.Process | None:
        """The runner process of this results file, proven (runner/identity.py), while it runs."""
        if not state or state.get("status") not in LIVE:
            return None
        return runner_process(self.db, state.get("pid"), state.get("create_time"))

    # ----------------------------------------------------------------- control

    def request(self, kind: str, run_id: str | None) -> Path:
        """Drop a request (`stop`, `retry` or `retrain`) for one run, or `stop` for all (run_id None).
        A folder that cannot be written is a StiltsError saying so (stopping the whole sweep still
        works by signal: runner/control.py)."""
        if run_id is not None and not SAFE_ID.fullmatch(run_id):
            raise StiltsError(f"{run_id!r} is not a run id", f"list the run ids with stilts results --runs --db {self.db}")
        path = self.control / (f"{kind}-{run_id}" if run_id else f"{kind}-all")
        try:
            self.control.mkdir(parents=True, exist_ok=True)
            os.chmod(self.control, 0o700)
            write_private_json(path, {"t": time.time(), "by_pid": os.getpid()})
        except OSError as exc:
            raise StiltsError(f"cannot write the runner's control folder {self.control} ({exc.strerror})",
                              f"give it back to yourself (chmod u+rwx {self.control}); "
                              f"stilts stop --all --db {self.db} still stops the sweep, by signal") from None
        return path

    def withdraw(self, path: Path) -> bool:
        """Take back a request the runner did not read; False when the runner took it already."""
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False
        except OSError:
            return False

    def request_stop(self, run_id: str | None) -> Path:
        return self.request("stop", run_id)

    def take_requests(self) -> Requests:
        """The requests waiting in the control folder, removing those read."""
        req = Requests()
        try:
            entries = list(self.control.iterdir())
        except OSError:
            return req
        for f in entries:
            if f.name.startswith(".") or f.name.endswith(".tmp"):
                continue  # a request still being written (write_private_json's temporary file)
            kind, _, run_id = f.name.partition("-")
            if f.name == "stop-all":
                req.stop_all = True
            elif kind == "stop" and run_id:
                req.stops.append(run_id)
            elif kind == "retry" and run_id:
                req.retries.append(run_id)
            elif kind == "retrain" and run_id:
                req.retrains.append(run_id)
            else:
                continue
            with contextlib.suppress(OSError):
                f.unlink(missing_ok=True)
        return req


@dataclass
class Requests:
    """What the users asked of a running sweep since the runner last looked."""

    stop_all: bool = False
    stops: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    retrains: list[str] = field(default_factory=list)


def write_private_json(path: Path, data: dict) -> None:
    """Atomic replace, mode 0600; a full disk is a DiskFullError (the old file stays whole)."""
    try:
        inject("state", path)
        atomic_write(path, lambda fh: fh.write(json.dumps(data, default=str).encode()), mode=0o600)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(path) from None
        raise


def process_alive(pid: int | None, create_time: float | None = None) -> bool:
    """True when `pid` runs and is the same process (its start time matches), not a reused pid."""
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(p.create_time() - create_time) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def runner_alive(state: dict | None, db: Path) -> TypeGuard[dict]:
    """The state says a runner works on `db`, and that process proves it is `db`'s runner: a live
    pid alone is not enough (reused, or written by hand), see runner/identity.py."""
    return RunnerFiles(db).runner(state) is not None
