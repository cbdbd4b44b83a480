"""The local executor: a warm worker process on every slot of this machine (runner/pool.py),
each handed the longest ready run as it goes idle; their event lines arrive on stdout pipes.
It reports what happens as outcomes (runner/outcomes.py); the runner records them."""

from __future__ import annotations

import contextlib
import selectors
import time
from pathlib import Path

from stilts_tui.diskspace import DiskFullError
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.executor import failure, last_word, said
from stilts_tui.runner.outcomes import Assignment, Lost, NotStarted, Outcome, Started
from stilts_tui.runner.pool import Worker
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
        return {w.run.run_id for w in self.workers.values() if w.run is not None}

    def in_flight(self) -> bool:
        return any(w.run is not None for w in self.workers.values())

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
        idle = [w for w in self.workers.values() if w.idle]
        return [Started(a.run, a.attempt, slot=w.slot.id, device=w.slot.device, pid=w.pid,
                        where={"device_name": self.gpu_names.get(w.slot.gpu, "gpu") if w.slot.gpu is not None else "cpu",
                               "warm_start": w.ready_at is not None})
                for w, a in zip(idle, ready, strict=False)]

    def start(self, placed: list[Started]) -> list[Outcome]:
        for i, s in enumerate(placed):
            try:
                self.workers[str(s.slot)].assign(s.run, s.attempt)
            except DiskFullError as exc:  # its run file could not be written: it and those after it never started
                return [NotStarted(p.run, p.attempt, "disk_full",
                                   "the disk was full when it was to start; `stilts resume` runs it",
                                   error=exc if p is s else None) for p in placed[i:]]
        return []

    def wait(self, timeout: float) -> list[Outcome]:
        out: list[Outcome] = []
        for key, _ in self.selector.select(timeout=timeout):
            out += said(key.data, key.data.read_events())
        return out + self._check_dead()

    def _check_dead(self) -> list[Outcome]:
        out: list[Outcome] = []
        for sid, w in list(self.workers.items()):
            if w.alive():
                continue
            out += said(w, w.read_events())  # what it said before dying
            if w.run is not None:
                rc = w.proc.returncode
                how = f"signal {-rc}" if rc < 0 else f"code {rc}"
                out.append(failure(w, "killed", f"worker exited with {how} before the run ended", w.stderr_tail()))
                w.run = None
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
        for w in self.workers.values():
            if w.run is not None and w.run.run_id == run_id:
                w.stop_requested = True
                w.terminate()

    def running(self) -> list[tuple[RunConfig, int, float]]:
        """A run waits for its worker's imports before it starts: the clock starts when both are there."""
        return [(w.run, w.attempt, max(w.assigned_at or 0.0, w.ready_at)) for w in self.workers.values()
                if w.run is not None and w.ready_at is not None]

    def kill_stalled(self, run_id: str) -> None:
        for w in self.workers.values():
            if w.run is not None and w.run.run_id == run_id:
                w.stall_killed = True
                w.dump_stacks()  # where it hangs, into its log, before the kill
                w.terminate()

    def reap(self) -> None:
        for w in self.workers.values():
            w.reap()

    def slots_state(self) -> list[dict]:
        out = []
        for s in self.slots:
            w = self.workers.get(s.id)
            out.append({"id": s.id, "device": s.device, "threads": s.threads, "worker_pid": w.pid if w else None,
                        "run_id": w.run.run_id if w and w.run else None,
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
            if w.run is not None:
                out.append(last_word(w.run, w.attempt, w.read_events()) or
                           Lost(w.run, w.attempt, "stopped",
                                "the sweep was stopped while this run was in flight; stilts resume runs it",
                                {"pid": None, "slot": None}))
                w.run = None
            w.close()
        self.workers.clear()
        self.selector.close()
        return out

