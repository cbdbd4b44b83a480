"""The local executor: a warm worker process on every slot of this machine (runner/pool.py),
each handed the longest ready run as it goes idle; their event lines arrive on stdout pipes."""

from __future__ import annotations

import contextlib
import selectors
import time
from dataclasses import asdict
from pathlib import Path

from stilts_tui.diskspace import DiskFullError
from stilts_tui.records import RunStatus
from stilts_tui.runner.executor import Host
from stilts_tui.runner.pool import Worker
from stilts_tui.runner.slots import Slot, visible_gpus


class LocalExecutor:
    kind = "local"

    def __init__(self, host: Host, slots: list[Slot], log_dir: Path) -> None:
        if not slots:
            raise ValueError("a runner needs at least one slot")
        self.host = host
        self.slots = slots
        self.log_dir = log_dir
        self.workers: dict[str, Worker] = {}   # slot id -> worker
        self.selector = selectors.DefaultSelector()
        # Estimates match throughput by device: the GPU's name is recorded with each run.
        self.gpu_names = {g.index: g.name for g in visible_gpus()} if any(s.gpu is not None for s in slots) else {}

    def reattach(self, cfg, rec: dict) -> bool:
        return False  # a local worker dies with its runner: nothing to follow again

    def busy(self) -> set[str]:
        return {w.run.run_id for w in self.workers.values() if w.run is not None}

    def in_flight(self) -> bool:
        return any(w.run is not None for w in self.workers.values())

    def _spawn(self, slot: Slot) -> Worker:
        worker = Worker(slot, self.log_dir, self.host.env)
        self.workers[slot.id] = worker
        if worker.proc.stdout is not None:
            self.selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)
        self.host.dirty = True
        return worker

    def assign(self) -> None:
        host = self.host
        # Warm a worker for every slot that queued work may need, while earlier work runs.
        for slot in self.slots:
            if slot.id not in self.workers and len(self.workers) < len(host.pending):
                self._spawn(slot)
        idle = [w for w in self.workers.values() if w.idle]
        if idle and host.dirty:
            host.dirty = False
            ready = host.ready()
            for w in idle:
                if not ready:
                    break
                cfg = ready.pop(0)
                attempt = (host.store.get(cfg.run_id) or {}).get("attempts", 0) + 1
                # Store first: a runner killed right after this line re-runs the attempt on resume.
                host.store.update(cfg.run_id, status=RunStatus.RUNNING, attempts=attempt, started_at=time.time(),
                                  pid=w.pid, slot=w.slot.id, device=w.slot.device, config=asdict(cfg),
                                  device_name=self.gpu_names.get(w.slot.gpu, "gpu") if w.slot.gpu is not None else "cpu",
                                  warm_start=w.ready_at is not None)
                try:
                    w.assign(cfg, attempt)
                except DiskFullError:  # its run file could not be written: it never started
                    with contextlib.suppress(DiskFullError):
                        host.store.update(cfg.run_id, status=RunStatus.QUEUED, pid=None, slot=None,
                                          attempts=attempt - 1, reason="disk_full",
                                          message="the disk was full when it was to start; `stilts resume` runs it")
                    raise
            if ready:
                host.dirty = True
        # Idle workers that no queued run will ever need are let go (memory back to the others).
        if not host.pending:
            for sid, w in list(self.workers.items()):
                if w.run is None:
                    self._retire(sid)

    def wait(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout=timeout):
            for ev in key.data.read_events():
                self.host.handle(key.data, ev)
        self._check_dead()

    def _check_dead(self) -> None:
        for sid, w in list(self.workers.items()):
            if w.alive():
                continue
            for ev in w.read_events():  # what it said before dying
                self.host.handle(w, ev)
            if w.run is not None:
                rc = w.proc.returncode
                how = f"signal {-rc}" if rc < 0 else f"code {rc}"
                self.host.record_failure(w, "killed", f"worker exited with {how} before the run ended", w.stderr_tail())
                w.run = None
            self._unregister(w)
            w.close()
            del self.workers[sid]

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

    def running(self) -> list[tuple]:
        """A run waits for its worker's imports before it starts: the clock starts when both are there."""
        return [(w.run, w.attempt, max(w.assigned_at or 0.0, w.ready_at)) for w in self.workers.values()
                if w.run is not None and w.ready_at is not None]

    def kill_stalled(self, run_id: str) -> None:
        for w in self.workers.values():
            if w.run is not None and w.run.run_id == run_id:
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

    def shutdown(self, cancel: bool) -> None:
        for w in self.workers.values():
            w.terminate()
        deadline = time.time() + 15
        while any(w.alive() for w in self.workers.values()) and time.time() < deadline:
            for w in self.workers.values():
                w.reap()
            time.sleep(0.05)
        for w in self.workers.values():
            if w.alive():
                w.kill_now(grace=0)
            if w.run is not None and self.host.keep_finished(w, w.read_events()):
                w.close()
                continue
            if w.run is not None:
                with contextlib.suppress(Exception):
                    self.host.store.update(w.run.run_id, status=RunStatus.QUEUED, pid=None, slot=None, reason="stopped",
                                           message="the sweep was stopped while this run was in flight; "
                                                   "stilts resume runs it")
                w.run = None
            w.close()
        self.workers.clear()
        self.selector.close()
