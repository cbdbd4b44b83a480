"""Warm worker processes, one per slot: spawned once, fed one run (or one fused group of runs,
train/fused/) at a time over stdin, read line by line without blocking. Each worker has its own
process group so one run can be stopped (its worker killed and replaced) without touching the
others; stopping one run of a fused group ends its worker, and the group's other runs run again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stilts_tui.diskspace import DiskFullError, inject, is_disk_full
from stilts_tui.domain.events import Event, parse_event
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.fileio import EventLines, atomic_write
from stilts_tui.runner.slots import Slot

KILL_GRACE_S = 5.0


class Member:
    """One run in flight on a worker: the executor's handle (runner/executor.py) for that run.
    A worker holds one, or several when it trains a fused group."""

    def __init__(self, worker: Worker, run: RunConfig, attempt: int, assigned_at: float) -> None:
        self.worker = worker
        self.run_id = run.run_id  # kept once the run has ended (`run` is None then)
        self.run: RunConfig | None = run
        self.attempt = attempt
        self.slot = worker.slot
        self.assigned_at: float | None = assigned_at
        self.stop_requested = False
        self.stall_killed = False

    @property
    def ready_at(self) -> float | None:
        return self.worker.ready_at

    @ready_at.setter
    def ready_at(self, t: float | None) -> None:
        self.worker.ready_at = t

    def stderr_tail(self, lines: int = 12) -> list[str]:
        return self.worker.stderr_tail(lines)


class Worker:
    def __init__(self, slot: Slot, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.slot = slot
        self.stderr_path = log_dir / f"{slot.id}.stderr.log"
        self.stderr = self.stderr_path.open("ab")
        cmd = [sys.executable, "-m", "stilts_tui.train", "--serve", "--threads", str(slot.threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=(env or os.environ) | slot.env(), start_new_session=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None  # pipes, by construction
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        os.set_blocking(self.stdout.fileno(), False)
        self.spawned_at = time.time()
        self.ready_at: float | None = None
        self.lines: EventLines[Event] = EventLines(parse_event)
        self.members: list[Member] = []
        self.kill_deadline: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def live(self) -> list[Member]:
        """Its runs still in flight."""
        return [m for m in self.members if m.run is not None]

    @property
    def run(self) -> RunConfig | None:
        """The first run still in flight (a solo worker's one run)."""
        return next((m.run for m in self.members if m.run is not None), None)

    @property
    def assigned_at(self) -> float | None:
        return self.members[0].assigned_at if self.members else None

    @property
    def idle(self) -> bool:
        """Free for a run: alive, and not on its way out (a stopped or stalled run's worker exits)."""
        return not self.live() and self.alive() and self.kill_deadline is None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def assign(self, cfg: RunConfig, attempt: int) -> None:
        self.assign_group([cfg], [attempt])

    def assign_group(self, cfgs: list[RunConfig], attempts: list[int]) -> None:
        """Hand over one run, or several that train fused in this worker (each still its own run)."""
        files = [_write_run_file(c) for c in cfgs]
        now = time.time()
        self.members = [Member(self, c, a, now) for c, a in zip(cfgs, attempts, strict=True)]
        if len(cfgs) == 1:
            cmd = {"run": str(files[0]), "attempt": attempts[0]}
        else:
            cmd = {"group": [str(f) for f in files], "attempts": attempts}
        try:
            self.stdin.write((json.dumps(cmd) + "\n").encode())
            self.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died; the runner sees it exit and requeues the run

    def read_events(self) -> list[Event]:
        try:
            chunk = self.stdout.read()
        except (OSError, ValueError):
            chunk = None
        return self.lines.feed(chunk)

    def dump_stacks(self, wait_s: float = 0.5) -> None:
        """Ask the worker for every thread's stack (faulthandler, on SIGUSR1) into its stderr log:
        it answers even when its Python code is stuck, and the log's tail is kept with the run."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.proc.pid, signal.SIGUSR1)
            time.sleep(wait_s)

    def terminate(self) -> None:
        """SIGTERM to the worker's process group now, SIGKILL if it is still there after a grace."""
        if self.kill_deadline is None:
            self.kill_deadline = time.time() + KILL_GRACE_S
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def reap(self) -> bool:
        """Escalate a pending termination; True once the process is gone."""
        if self.proc.poll() is not None:
            return True
        if self.kill_deadline is not None and time.time() >= self.kill_deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        return False

    def kill_now(self, grace: float = KILL_GRACE_S) -> None:
        self.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.close()

    def close(self) -> None:
        for fh in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError, BrokenPipeError):
                if fh:
                    fh.close()
        with contextlib.suppress(OSError):
            self.stderr.close()

    def stderr_tail(self, lines: int = 12) -> list[str]:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return []


def _write_run_file(cfg: RunConfig) -> Path:
    run_file = Path(cfg.output_dir) / "run.json"
    try:
        run_file.parent.mkdir(parents=True, exist_ok=True)
        inject("run_file", run_file)
        atomic_write(run_file, lambda fh: fh.write(cfg.to_json().encode()))
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(run_file, "write the run file") from None
        raise
    return run_file
