"""The local executor: a warm worker process on every slot of this machine (runner/pool.py),
each handed the longest ready run (or a fused group of runs, runner/fusing.py) as it goes idle; their event lines arrive on stdout pipes.
It reports what happens as outcomes (runner/outcomes.py); the runner records them."""

from __future__ import annotations

import contextlib
import selectors
import time
from pathlib import Path

from stilts_tui.diskspace import DiskFullError
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.executor import failure, last_word, said
from stilts_tui.runner.fusing import placement_fields
from stilts_tui.runner.outcomes import (
    Assignment,
    Failed,
    Lost,
    NotStarted,
    Outcome,
    Started,
    in_groups,
)
from stilts_tui.runner.pool import Member, Worker
from stilts_tui.runner.slots import Slot, visible_gpus


class LocalExecutor:
    kind = "local"

    def __init__(self, slots: list[Slot], log_dir: Path, env: dict[str, str] | None = None) -> None:
        if not slots:
            raise ValueError("a runner needs at least one slot")
        self.slots = slots
        self.log_dir = log_dir
        self.env = env
        self.workers: dict[str, Worker] = {}   # slot id -> worker
        self.selector = selectors.DefaultSelector()
        # Estimates match throughput by device: the GPU's name is recorded with each run.
        self.gpu_names = {g.index: g.name for g in visible_gpus()} if any(s.gpu is not None for s in slots) else {}

    def reattach(self, cfg: RunConfig, rec: dict) -> None:
        return None  # a local worker dies with its runner: nothing to follow again

    def busy(self) -> set[str]:
        return {m.run.run_id for w in self.workers.values() for m in w.live() if m.run is not None}

    def in_flight(self) -> bool:
        return any(w.live() for w in self.workers.values())

    def _spawn(self, slot: Slot) -> Worker:
        worker = Worker(slot, self.log_dir, self.env)
        self.workers[slot.id] = worker
        if worker.proc.stdout is not None:
            self.selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)
        return worker

    def warm(self, queued: int) -> bool:
        """A worker warms up for every slot that queued work may need, while earlier work runs;
        idle workers that no queued run will ever need are let go (memory back to the others)."""
        spawned = False
        for slot in self.slots:
            if slot.id not in self.workers and len(self.workers) < queued:
                self._spawn(slot)
                spawned = True
        if not queued:
            for sid, w in list(self.workers.items()):
                if w.run is None:
                    self._retire(sid)
        return spawned

    def capacity(self) -> int:
        return sum(w.idle for w in self.workers.values())

    def place(self, ready: list[Assignment]) -> list[Started]:
        """One idle worker per run, or per fused group (the assignments of one group come in a row)."""
        idle = [w for w in self.workers.values() if w.idle]
        out: list[Started] = []
        for w, group in zip(idle, in_groups(ready), strict=False):
            fused = placement_fields([a.run for a in group])
            out += [Started(a.run, a.attempt, slot=w.slot.id, device=w.slot.device, pid=w.pid,
                            where={"device_name": self.gpu_names.get(w.slot.gpu, "gpu") if w.slot.gpu is not None else "cpu",
                                   "warm_start": w.ready_at is not None, **fused})
                    for a in group]
        return out

    def start(self, placed: list[Started]) -> list[Outcome]:
        by_slot: dict[str, list[Started]] = {}
        for s in placed:
            by_slot.setdefault(str(s.slot), []).append(s)
        done = 0
        for slot, group in by_slot.items():
            try:
                self.workers[slot].assign_group([s.run for s in group], [s.attempt for s in group])
            except DiskFullError as exc:  # its run file could not be written: it and those after it never started
                return [NotStarted(p.run, p.attempt, "disk_full",
                                   "the disk was full when it was to start; `stilts resume` runs it",
                                   error=exc if i == 0 else None) for i, p in enumerate(placed[done:])]
            done += len(group)
        return []

    def wait(self, timeout: float) -> list[Outcome]:
        out: list[Outcome] = []
        for key, _ in self.selector.select(timeout=timeout):
            out += _said(key.data, key.data.read_events())
        return out + self._check_dead()

    def _check_dead(self) -> list[Outcome]:
        out: list[Outcome] = []
        for sid, w in list(self.workers.items()):
            if w.alive():
                continue
            out += _said(w, w.read_events())  # what it said before dying
            rc = w.proc.returncode
            how = f"signal {-rc}" if rc < 0 else f"code {rc}"
            # A fused group's worker stopped for one of its runs: the others are lost, not failed.
            ended_by = [m for m in w.members if m.stop_requested or m.stall_killed]
            for m in w.live():
                assert m.run is not None
                if ended_by and m not in ended_by:
                    out.append(Lost(m.run, m.attempt, "stopped", f"run {ended_by[0].run_id} it trained fused with was "
                                    "stopped; it runs again", {"pid": None, "slot": None}))
                else:
                    out.append(failure(m, "killed", f"worker exited with {how} before the run ended", w.stderr_tail()))
                m.run = None
            self._unregister(w)
            w.close()
            del self.workers[sid]
        return out

    def _unregister(self, w: Worker) -> None:
        with contextlib.suppress(KeyError, ValueError):
            if w.proc.stdout is not None:
                self.selector.unregister(w.proc.stdout)

    def _retire(self, slot_id: str) -> None:
        w = self.workers.pop(slot_id)
        self._unregister(w)
        with contextlib.suppress(OSError, BrokenPipeError):
            if w.proc.stdin is not None:
                w.proc.stdin.close()  # end of input: a warm worker exits by itself
        try:
            w.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            w.kill_now()
        w.close()

    def stop_run(self, run_id: str) -> None:
        for w, m in self._member(run_id):
            m.stop_requested = True
            w.terminate()

    def running(self) -> list[tuple[RunConfig, int, float]]:
        """A run waits for its worker's imports before it starts: the clock starts when both are there."""
        return [(m.run, m.attempt, max(m.assigned_at or 0.0, w.ready_at)) for w in self.workers.values()
                for m in w.live() if m.run is not None and w.ready_at is not None]

    def kill_stalled(self, run_id: str) -> None:
        for w, m in self._member(run_id):
            m.stall_killed = True
            w.dump_stacks()  # where it hangs, into its log, before the kill
            w.terminate()

    def _member(self, run_id: str) -> list[tuple[Worker, Member]]:
        return [(w, m) for w in self.workers.values() for m in w.live() if m.run is not None and m.run.run_id == run_id]

    def reap(self) -> None:
        for w in self.workers.values():
            w.reap()

    def slots_state(self) -> list[dict]:
        out = []
        for s in self.slots:
            w = self.workers.get(s.id)
            out.append({"id": s.id, "device": s.device, "threads": s.threads, "worker_pid": w.pid if w else None,
                        "run_id": w.run.run_id if w and w.run else None,
                        "run_ids": [m.run.run_id for m in w.live() if m.run] if w else [],
                        "since": w.assigned_at if w and w.run else None})
        return out

    def shutdown(self, cancel: bool) -> list[Outcome]:
        for w in self.workers.values():
            w.terminate()
        deadline = time.time() + 15
        while any(w.alive() for w in self.workers.values()) and time.time() < deadline:
            for w in self.workers.values():
                w.reap()
            time.sleep(0.05)
        out: list[Outcome] = []
        for w in self.workers.values():
            if w.alive():
                w.kill_now(grace=0)
            unread = w.read_events()
            for m in w.live():
                assert m.run is not None
                out.append(last_word(m.run, m.attempt, unread) or
                           Lost(m.run, m.attempt, "stopped",
                                "the sweep was stopped while this run was in flight; stilts resume runs it",
                                {"pid": None, "slot": None}))
                m.run = None
            w.close()
        self.workers.clear()
        self.selector.close()
        return out



def _said(w: Worker, events: list) -> list[Outcome]:
    """What a worker's lines say of each of its runs in flight."""
    if not w.live():  # no run in flight: only its `ready` matters
        return said(_Idle(w), events)
    # every member, ended or not: the stopped run's own end may have been read already
    ended_by = [m.run_id for m in w.members if m.stop_requested or m.stall_killed]
    out: list[Outcome] = []
    for m in w.live():
        for o in said(m, events):
            if ended_by and isinstance(o, Failed) and o.run.run_id not in ended_by:
                # its fused group's worker was stopped for another run: this one runs again, no retry spent
                o = Lost(o.run, o.attempt, "stopped", f"run {ended_by[0]} it trained fused with was stopped; "
                         "it runs again", {"pid": None, "slot": None})
            out.append(o)
    return out


class _Idle:
    """An idle worker's handle: its lines set when it is ready, and belong to no run."""

    def __init__(self, w: Worker) -> None:
        self.w = w
        self.run: RunConfig | None = None
        self.attempt = 0
        self.slot = w.slot
        self.stop_requested = self.stall_killed = False
        self.assigned_at: float | None = None

    @property
    def ready_at(self) -> float | None:
        return self.w.ready_at

    @ready_at.setter
    def ready_at(self, t: float | None) -> None:
        self.w.ready_at = t

    def stderr_tail(self, lines: int = 12) -> list[str]:
        return self.w.stderr_tail(lines)
