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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import psutil

from stilts_tui.diskspace import DiskFullError, inject, is_disk_full, room_made
from stilts_tui.fileio import atomic_write
from stilts_tui.sweep.placement import runs_folder

BALLAST_BYTES = 64 * 1024


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
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.control, self.sweeps, self.workers):
            os.chmod(d, 0o700)

    # ----------------------------------------------------------------- state

    def write_state(self, state: dict) -> None:
        write_private_json(self.state, state)

    def read_state(self) -> dict | None:
        try:
            return json.loads(self.state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    # ----------------------------------------------------------------- control

    def request(self, kind: str, run_id: str | None) -> Path:
        """Drop a request (`stop` or `retry`) for one run, or `stop` for all (run_id None)."""
        self.control.mkdir(parents=True, exist_ok=True)
        os.chmod(self.control, 0o700)
        path = self.control / (f"{kind}-{run_id}" if run_id else f"{kind}-all")
        write_private_json(path, {"t": time.time(), "by_pid": os.getpid()})
        return path

    def request_stop(self, run_id: str | None) -> Path:
        return self.request("stop", run_id)

    def take_requests(self) -> tuple[bool, list[str], list[str]]:
        """(stop everything?, run ids to stop, run ids to retry), removing the requests read."""
        if not self.control.is_dir():
            return False, [], []
        stop_all, stops, retries = False, [], []
        for f in self.control.iterdir():
            if f.name.startswith(".") or f.name.endswith(".tmp"):
                continue  # a request still being written (write_private_json's temporary file)
            if f.name == "stop-all":
                stop_all = True
            elif f.name.startswith("stop-"):
                stops.append(f.name[5:])
            elif f.name.startswith("retry-"):
                retries.append(f.name[6:])
            else:
                continue
            f.unlink(missing_ok=True)
        return stop_all, stops, retries


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


def runner_alive(state: dict | None) -> TypeGuard[dict]:
    return state is not None and state.get("status") in ("starting", "running", "stopping") and \
        process_alive(state.get("pid"), state.get("create_time"))
