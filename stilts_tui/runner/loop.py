"""The runner's loop: one process that owns the store's writer lock, keeps the queue, hands ready
runs (intermediates first, then longest first) to its executor (local warm workers, or Slurm:
runner/executor.py), applies the retry policy (runner/retry.py), and records exactly one outcome
per attempt. Executors report what happens (runner/outcomes.py); the runner alone changes the
queue and writes the store. Everything it learns it writes to the store before acting on it, so
a runner killed at any moment can be resumed (`recover`) without losing or duplicating a result."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path

import psutil

from stilts_tui.diskspace import DiskFullError, free_bytes, mount_point
from stilts_tui.domain.events import Event, read_events
from stilts_tui.domain.events import Finished as FinishedEvent
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.fileio import remove_orphan_temps
from stilts_tui.runner.estimate import cost
from stilts_tui.runner.executor import Executor
from stilts_tui.runner.files import RunnerFiles
from stilts_tui.runner.fusing import form_groups
from stilts_tui.runner.local import LocalExecutor
from stilts_tui.runner.outcomes import (
    Assignment,
    EventLines,
    Failed,
    Finished,
    Lost,
    NotStarted,
    Outcome,
    Placed,
    Reattached,
    Started,
)
from stilts_tui.runner.retry import Attempt, decide
from stilts_tui.runner.slots import Slot
from stilts_tui.runner.slurm.executor import SlurmExecutor
from stilts_tui.runner.slurm.lane import SlurmLane
from stilts_tui.runner.stall import StallWatch
from stilts_tui.store import Store

OnEvent = Callable[[RunConfig, Event], None]
OnRun = Callable[[RunConfig, dict], None]

def run_record(cfg: RunConfig) -> dict:
    """The store's view of a run: the grouping fields at the top level, the full config inside."""
    return {"run_id": cfg.run_id, "kind": cfg.kind, "intermediate": cfg.intermediate, "target": cfg.task,
            "model": cfg.model, "lr": cfg.lr, "batch_size": cfg.batch_size, "warmup_ratio": cfg.warmup_ratio,
            "seed": cfg.seed, "epochs": cfg.epochs, "max_length": cfg.max_length, "train_size": cfg.train_size,
            "init_from": cfg.init_from, "spec": cfg.spec_name, "config": asdict(cfg),
            "events_path": cfg.events_path, "output_dir": cfg.output_dir}


def recovered_result(record: dict) -> FinishedEvent | None:
    """The `finished` event of the record's current attempt, when its worker got that far before
    the runner died: the result is kept instead of training again."""
    attempt = record.get("attempts", 0)
    for ev in reversed(read_events(record.get("events_path") or "")):
        if ev["attempt"] != attempt:
            continue
        return ev if ev["event"] == "finished" else None
    return None


class Runner:
    """The queue, the store and the retry policy; `executor` starts the runs (local slots, or
    Slurm when a `lane` is given; the tests pass one of their own)."""

    def __init__(self, db: str | Path, runs: list[RunConfig], slots: list[Slot], *, max_retries: int = 2,
                 resume: bool = False, name: str = "", sweep_file: str | None = None,
                 on_event: OnEvent | None = None, on_run: OnRun | None = None,
                 env: dict[str, str] | None = None, poll_s: float = 0.25, lane: SlurmLane | None = None,
                 stall_limit_s: float | None = None, on_notice: Callable[[str], None] | None = None,
                 executor: Executor | None = None) -> None:
        self.db = Path(db)
        self.files = RunnerFiles(self.db)
        self.runs = {r.run_id: r for r in runs}
        self.max_retries = max_retries
        self.resume = resume
        self.name = name
        self.sweep_file = sweep_file
        self.on_event = on_event
        self.on_run = on_run
        self.on_notice = on_notice
        self.env = env
        self.poll_s = poll_s
        self.stopped_by: int | None = None
        self.disk_full: DiskFullError | None = None  # set when a write failed for want of space: no new runs start
        self.error: str | None = None                # what ended a crashed runner, for `stilts status`
        self.stalls = StallWatch(stall_limit_s)
        self.pending: dict[str, RunConfig] = {}
        self.stop_flag = False
        self.stop_all_asked = False   # `stilts stop --all`: Slurm jobs are cancelled, not left to run
        self.counts = {"finished": 0, "failed": 0, "stopped": 0, "blocked": 0, "skipped": 0, "retried": 0, "recovered": 0,
                       "stalled": 0}
        self.started_at = time.time()
        self.last_state = 0.0
        self.store: Store = None  # type: ignore[assignment]  # opened by run(), which holds the writer lock
        self.dirty = True  # something changed that may make a run ready
        self.fuse_caps: dict[str, int] = {}  # run id -> most trials it fuses with (halved after a fused OOM)
        self.old_handlers: dict = {}
        if executor is None:
            executor = SlurmExecutor(lane) if lane is not None else LocalExecutor(slots, self.files.workers, env)
        self.executor: Executor = executor

    # ------------------------------------------------------------------ setup

    def _signals(self) -> None:
        def stop(signum, _frame):
            self.stop_flag = True
            self.stopped_by = signum

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(ValueError):  # not the main thread: the caller handles signals
                self.old_handlers[sig] = signal.signal(sig, stop)

    def _prepare(self) -> None:
        store = self.store
        store.add_runs(run_record(r) for r in self.runs.values())
        records = {r["run_id"]: r for r in store.runs()}
        updates: dict[str, dict] = {}
        for run_id, cfg in self.runs.items():
            rec = records[run_id]
            status = rec.get("status")
            if status == RunStatus.RUNNING and (followed := self.executor.reattach(cfg, rec)) is not None:
                self._apply([followed])
                continue
            if status == RunStatus.RUNNING:  # in flight when an earlier runner died
                ev = recovered_result(rec)
                if ev is not None:
                    self._record_finished(cfg, ev, recovered=True)
                    continue
                updates[run_id] = {"status": RunStatus.QUEUED, "pid": None, "slot": None, "reason": "interrupted",
                                   "message": "its runner stopped before the run ended; it runs again"}
                status = RunStatus.QUEUED
            if status == RunStatus.FINISHED:
                self.counts["skipped"] += 1
                continue
            if self.resume and status in (RunStatus.FAILED, RunStatus.STOPPED):
                continue  # a resumed sweep continues; it does not retry what already failed for good
            old = RunConfig.from_dict(rec["config"]) if rec.get("config") else cfg
            # An earlier OOM taught us a smaller device batch; identity (and results) are unchanged.
            cfg = replace(cfg, max_device_batch=min(cfg.max_device_batch, old.max_device_batch))
            self.pending[run_id] = cfg
            if not self.resume or status != RunStatus.QUEUED:
                updates[run_id] = updates.get(run_id, {}) | {"status": RunStatus.QUEUED, "config": asdict(cfg)}
                if not self.resume:
                    updates[run_id]["retries"] = 0  # a new `stilts run` gives failed runs a fresh budget
        store.update_many(updates)

    # ------------------------------------------------------------------ outcomes

    def _apply(self, outcomes: Iterable[Outcome]) -> None:
        """Record what the executor reported, in order; placements in a row are written in one
        go. A full disk on one outcome does not lose the others: it is raised once all are tried."""
        batch: dict[str, dict] = {}
        full: DiskFullError | None = None
        for o in outcomes:
            try:
                if isinstance(o, Started):
                    self.pending[o.run.run_id] = o.run
                    batch[o.run.run_id] = {"status": RunStatus.RUNNING, "attempts": o.attempt, "started_at": time.time(),
                                           "pid": o.pid, "slot": o.slot, "device": o.device, "config": asdict(o.run),
                                           **o.where}
                    continue
                if isinstance(o, Placed) and o.requeued_after is None:
                    batch[o.run_id] = batch.get(o.run_id, {}) | o.fields
                    continue
                self._write(batch)
                self._record(o)
            except DiskFullError as exc:
                full = full or exc
        try:
            self._write(batch)
        except DiskFullError as exc:
            full = full or exc
        if full is not None:
            raise full

    def _write(self, batch: dict[str, dict]) -> None:
        updates = dict(batch)
        batch.clear()
        self.store.update_many(updates)

    def _record(self, o: Outcome) -> None:
        if isinstance(o, EventLines):
            self._record_lines(o)
        elif isinstance(o, Finished):
            self._record_finished(o.run, o.event)
        elif isinstance(o, Failed):
            self.record_failure(o)
        elif isinstance(o, Lost):
            self._record_lost(o)
        elif isinstance(o, NotStarted):
            with contextlib.suppress(DiskFullError):  # the disk that stopped it may refuse this too
                self.store.update(o.run.run_id, status=RunStatus.QUEUED, pid=None, slot=None, attempts=o.attempt - 1,
                                  reason=o.reason, message=o.message)
            if o.error is not None:
                raise o.error
        elif isinstance(o, Placed):  # back in Slurm's queue: counted
            rec = self.store.get(o.run_id) or {}
            self.store.update(o.run_id, **o.fields, requeues=rec.get("requeues", 0) + 1,
                              message=f"requeued after {(o.requeued_after or '').lower()}; it continues from its last "
                                      "saved step")
        elif isinstance(o, Reattached):
            self.pending[o.run.run_id] = o.run
            self.counts["reattached"] = self.counts.get("reattached", 0) + 1
            self.store.update(o.run.run_id, **o.fields, message=o.message)
        else:  # Started, and Placed without a requeue, are batched by _apply
            raise TypeError(f"not an outcome: {o!r}")

    def _record_lines(self, o: EventLines) -> None:
        cfg = o.run
        for ev in o.events:
            self.stalls.progress(cfg, ev)
            self._tell(self.on_event, cfg, ev)
            if ev["event"] == "started":
                self.store.update(cfg.run_id, train_examples=ev.get("train_examples"), total_steps=ev.get("total_steps"),
                                  micro_batch=ev.get("micro_batch"), accumulation=ev.get("accumulation"),
                                  params=ev.get("params"), precision=ev.get("precision"),
                                  overhead_s=ev["t"] - (o.assigned_at or time.time()))

    def _record_finished(self, cfg: RunConfig, ev: FinishedEvent, recovered: bool = False) -> None:
        m = ev["metrics"]
        self.stalls.killed.pop(cfg.run_id, None)  # it finished as it was being killed: the result stands
        self.store.update(cfg.run_id, status=RunStatus.FINISHED, finished_at=ev["t"], pid=None,
                          score=m["score"], metric=m["metric"], metrics=m, wall_s=ev.get("wall_s"), reason=None,
                          message="result recovered from the event log after the runner stopped" if recovered else None)
        self.pending.pop(cfg.run_id, None)
        self.dirty = True
        self.counts["recovered" if recovered else "finished"] += 1
        self._tell(self.on_run, cfg, self.store.get(cfg.run_id) or {})

    def _record_lost(self, o: Lost) -> None:
        """A run whose worker got to `finished` before it was stopped (the line only in its event
        log) keeps that result instead of training again; any other goes back to the queue."""
        ev = recovered_result(self.store.get(o.run.run_id) or {})
        if ev is not None:
            self._record_finished(o.run, ev)
            return
        self.store.update(o.run.run_id, status=RunStatus.QUEUED, reason=o.reason, message=o.message, **o.fields)
        self.dirty = True

    def record_failure(self, o: Failed) -> None:
        """One failed attempt: stored with its reason, then retried or given up (runner/retry.py)."""
        cfg = o.run
        reason, message, tail = o.reason, o.message, o.stderr_tail
        stalled = self.stalls.killed.pop(cfg.run_id, None)
        if stalled is not None and not o.stop_requested:  # what the killed worker said is not why it ended
            reason, message = "stalled", stalled
            self.counts["stalled"] += 1
            tail = o.log_tail or tail  # its log's tail holds every thread's stack (runner/stall.py)
        rec = self.store.get(cfg.run_id) or {}
        failures = [*rec.get("failures", []), {"attempt": o.attempt, "reason": reason, "message": message,
                                               "t": time.time(), "slot": o.slot}]
        common = {"pid": None, "failures": failures, "stderr_tail": tail, "finished_at": time.time()}
        retries = rec.get("retries", 0)
        self.dirty = True
        fused_with = rec.get("fused_group") or []
        if reason == "oom" and len(fused_with) > 1 and not o.stop_requested:
            # Fewer trials per group before a smaller device batch: the retry is the same run either way.
            self.fuse_caps[cfg.run_id] = len(fused_with) // 2
            self.store.update(cfg.run_id, status=RunStatus.QUEUED, reason="oom",
                              message=f"out of memory fused with {len(fused_with)} trials; retrying with at most "
                                      f"{len(fused_with) // 2}", **common)
            self.counts["retried"] += 1
            self._tell(self.on_run, cfg, self.store.get(cfg.run_id) or {})
            return
        d = decide(Attempt(reason=reason, retries=retries, max_retries=self.max_retries, device_batch=cfg.micro_batch()[0],
                           can_shrink=cfg.can_shrink_device_batch(), fixed_device_batch=cfg.device_batch,
                           stop_requested=o.stop_requested))
        if d.action == "stopped":
            self.store.update(cfg.run_id, status=RunStatus.STOPPED, reason="stopped", message="stopped by the user", **common)
            self.pending.pop(cfg.run_id, None)
            self.counts["stopped"] += 1
        elif d.action == "shrink":
            smaller = replace(cfg, max_device_batch=d.device_batch or 1)
            self.pending[cfg.run_id] = smaller
            self.store.update(cfg.run_id, status=RunStatus.QUEUED, reason="oom", config=asdict(smaller),
                              message=f"out of memory with a device batch of {cfg.micro_batch()[0]}; retrying with "
                                      f"{smaller.micro_batch()[0]} and gradient accumulation (same effective batch)", **common)
            self.counts["retried"] += 1
        elif d.action == "requeue":  # a full disk: the run waits in the queue, its retries untouched
            full = DiskFullError.reported(cfg.output_dir or self.db.parent, message)
            self.store.update(cfg.run_id, status=RunStatus.QUEUED, reason=reason,
                              message=f"{full.problem}; queued again: `stilts resume` runs it once space is freed",
                              **common)
            self.counts["retried"] += 1
            self._enter_disk_full(full, ending=cfg.run_id)
        elif d.action == "retry":
            self.store.update(cfg.run_id, status=RunStatus.QUEUED, reason=reason, retries=retries + 1,
                              message=f"{message} (retry {retries + 1} of {self.max_retries})", **common)
            self.counts["retried"] += 1
        else:
            self.store.update(cfg.run_id, status=RunStatus.FAILED, reason=reason, message=f"{message} ({d.why})", **common)
            self.pending.pop(cfg.run_id, None)
            self.counts["failed"] += 1
        self._tell(self.on_run, cfg, self.store.get(cfg.run_id) or {})

    def _tell(self, callback, cfg: RunConfig, what) -> None:
        """A display's callback: one that fails (its terminal is gone: EIO after a dropped SSH
        session) is dropped; the sweep goes on and the store still gets everything."""
        if callback is None:
            return
        try:
            callback(cfg, what)
        except OSError:
            self.on_event = self.on_run = None

    # ------------------------------------------------------------------ scheduling

    def _parent_state(self, cfg: RunConfig, records: dict[str, dict]) -> str:
        """ready / wait / blocked for a run that starts from an intermediate checkpoint."""
        if not cfg.init_from:
            return "ready"
        if cfg.init_from in self.pending:
            return "wait"
        parent = records.get(cfg.init_from) or {}
        if parent.get("status") == RunStatus.FINISHED and Path(cfg.init_checkpoint or "").is_dir():
            return "ready"
        return "blocked"

    def ready(self) -> list[RunConfig]:
        """Queued runs that may start now, in the order they should; blocks the runs whose
        intermediate failed."""
        busy = self.executor.busy()
        records = {r["run_id"]: r for r in self.store.runs()}
        ready = []
        for run_id, cfg in list(self.pending.items()):
            if run_id in busy:
                continue
            state = self._parent_state(cfg, records)
            if state == "blocked":
                parent = records.get(cfg.init_from or "") or {}
                self.store.update(run_id, status=RunStatus.BLOCKED, reason="intermediate_failed",
                                  message=f"intermediate run {cfg.init_from} is {parent.get('status', 'missing')}"
                                          + (f"; stilts retry {run_id} --db {self.db} runs both again"
                                             if parent.get("status") != RunStatus.FINISHED
                                             else f" but its checkpoint is gone; stilts retry --retrain {run_id} "
                                                  f"--db {self.db} trains it again, then this run"))
                self.pending.pop(run_id)
                self.counts["blocked"] += 1
            elif state == "ready":
                ready.append(cfg)
        # Intermediates first (each unblocks many runs), then longest first so the sweep ends sooner.
        ready.sort(key=lambda c: (c.kind != "intermediate", -cost(c), c.run_id))
        return ready

    def _assign(self) -> None:
        """Hand ready runs to the executor's free capacity: placed, recorded, then started (a
        runner killed in between finds them running and runs them again on resume)."""
        if self.executor.warm(len(self.pending)):
            self.dirty = True
        free = self.executor.capacity()
        if not free or not self.dirty:
            return
        self.dirty = False
        ready = self.ready()
        groups = form_groups(ready, free, self.fuse_caps)  # runs that train fused share a worker (runner/fusing.py)
        if sum(map(len, groups)) < len(ready):
            self.dirty = True  # runs left over wait for the next free capacity
        if not groups:
            return
        placed = self.executor.place([Assignment(c, (self.store.get(c.run_id) or {}).get("attempts", 0) + 1,
                                                 group=i if len(g) > 1 else None)
                                      for i, g in enumerate(groups) for c in g])
        self._apply(placed)
        self._apply(self.executor.start(placed))

    def _control(self) -> None:
        req = self.files.take_requests()
        if req.stop_all:
            self.stop_flag = True
            self.stop_all_asked = True  # the request file is gone once read: _shutdown must still know
        busy = self.executor.busy()
        # `stilts retry` drops an intermediate's request before its target's (runner/requeue.py), so
        # both are queued in the same turn or the intermediate first: the target then waits for it.
        for run_id, retrain in [(r, False) for r in req.retries] + [(r, True) for r in req.retrains]:
            rec = self.store.get(run_id)
            if rec is None or run_id in self.pending or run_id in busy or not rec.get("config") or \
                    (rec.get("status") == RunStatus.FINISHED and not retrain):
                continue
            cfg = RunConfig.from_dict(rec["config"])
            self.runs.setdefault(run_id, cfg)
            self.pending[run_id] = cfg
            self.store.update(run_id, status=RunStatus.QUEUED, retries=0, reason="retrain" if retrain else "retry",
                              message="to be trained again, by the user" if retrain else "queued again by the user")
            self.dirty = True
        stop_runs = req.stops
        for run_id in stop_runs:
            self.executor.stop_run(run_id)
            if run_id in self.pending and run_id not in self.executor.busy():
                self.pending.pop(run_id)
                self.store.update(run_id, status=RunStatus.STOPPED, reason="stopped",
                                  message="stopped by the user before it started")
                self.counts["stopped"] += 1
        self.executor.reap()

    # ------------------------------------------------------------------ stalls

    def _check_stalls(self) -> None:
        running = self.executor.running()
        for stalled in self.stalls.due(running):
            self.stalls.killed[stalled.run_id] = stalled.message()
            self._notice(f"run {stalled.run_id}: {stalled.message()}; it is retried")
            self.executor.kill_stalled(stalled.run_id)

    # ------------------------------------------------------------------ a full disk

    def _enter_disk_full(self, exc: DiskFullError, ending: str | None = None) -> None:
        """Stop taking new runs: the ones in flight go on (what they finish is kept), then the
        runner stops, and `stilts resume` continues once space is freed."""
        if self.disk_full is not None:
            return
        self.disk_full = exc
        self.files.release_ballast()  # room for the state file and the log to say so
        in_flight = len(self.executor.busy() - {ending})
        self._notice(f"{exc.problem}; no new run starts" + (f", the {in_flight} in flight go on" if in_flight else "")
                     + f". {self.resume_hint()}")

    def resume_hint(self) -> str:
        return f"Free space on {self.disk_full_mount()}, then `stilts resume --db {self.db}` continues the sweep"

    def disk_full_mount(self) -> str:
        return str(mount_point(self.disk_full.path)) if self.disk_full else ""

    def _notice(self, msg: str) -> None:
        with contextlib.suppress(OSError):  # a terminal gone, or the log's own disk full: the state file says it too
            (self.on_notice or _print_notice)(msg)

    # ------------------------------------------------------------------ state file

    def _state(self, status: str, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last_state < 1.0:
            return
        self.last_state = now
        me = psutil.Process()
        state = {
            "pid": os.getpid(), "create_time": me.create_time(), "status": status, "name": self.name,
            "db": str(self.db), "sweep_file": self.sweep_file, "started_at": self.started_at, "heartbeat": now,
            "run_ids": list(self.runs), "counts": self.counts, "pending": len(self.pending),
            "executor": self.executor.kind, "slots": self.executor.slots_state(),
            "stalls": self.stalls.report(self.executor.running(), now),
            "stall_limit_s": self.stalls.fixed_s}
        if status in ("stopped", "finished", "crashed"):
            state["ended_at"] = now
            state["stop_reason"] = self._stop_reason(status)
        if self.disk_full is not None:
            state["disk_full"] = {"path": self.disk_full.path, "free": free_bytes(self.disk_full.path),
                                  "mount": self.disk_full_mount(), "message": self.disk_full.problem}
        if self.error:
            state["error"] = self.error
        self.files.write_state(state)

    def _stop_reason(self, status: str) -> str | None:
        if status == "crashed":
            return "error"
        if status == "finished":
            return None
        if self.disk_full is not None and not self.stop_flag:
            return "disk_full"
        return {signal.SIGHUP: "hangup", signal.SIGINT: "interrupt", signal.SIGTERM: "terminated"}.get(
            self.stopped_by or 0, "stop_requested")  # type: ignore[call-overload]

    # ------------------------------------------------------------------ main

    def run(self) -> dict[str, int]:
        self.files.make_dirs()
        self._signals()
        self.store = Store(self.db, writer=True)
        remove_orphan_temps(self.files.state)  # the runner is the state file's one writer
        try:
            self._state("starting", force=True)
            self.files.make_ballast()
            try:
                self._prepare()
            except DiskFullError as exc:
                self._enter_disk_full(exc)
            while not self.stop_flag and self._turn():
                pass
            stopped = self.stop_flag or self.disk_full is not None
            self._shutdown()
            self._final_state("stopped" if stopped else "finished")
        except BaseException as exc:
            self.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self._shutdown()
            self._final_state("crashed")
            raise
        finally:
            self.files.release_ballast()
            self.store.close()
            for sig, handler in self.old_handlers.items():
                signal.signal(sig, handler)
        return self.counts

    def _turn(self) -> bool:
        """One pass of the loop; False when the sweep is over (or, on a full disk, drained)."""
        try:
            self._control()
            if self.stop_flag:
                return False
            if self.disk_full is None:
                self._assign()
            elif not self.executor.in_flight():
                return False
            if not self.pending and not self.executor.in_flight():
                return False
            self._apply(self.executor.wait(self.poll_s))
            self._check_stalls()
            self._state("running")
        except DiskFullError as exc:
            if self.disk_full is not None:
                time.sleep(self.poll_s)  # still full while draining: what the runs write is in their logs
            self._enter_disk_full(exc)
        return True

    def _final_state(self, status: str) -> None:
        try:
            self._state(status, force=True)
        except DiskFullError as exc:  # even the released ballast was not enough: the old state stands
            self._notice(f"could not record that the runner {status}: {exc.problem}")

    def _shutdown(self) -> None:
        """Stop every run in flight; they go back to the queue for `stilts resume`. Slurm jobs are
        cancelled only when the user stopped the sweep (`stilts stop --all`, Ctrl-C); a runner
        that is merely terminated leaves them to run, and `stilts resume` re-attaches to them."""
        cancel = self.stopped_by == signal.SIGINT or self.stop_all_asked or (self.files.control / "stop-all").exists()
        for o in self.executor.shutdown(cancel):
            try:
                self._apply([o])
            except DiskFullError as exc:
                self._enter_disk_full(exc)
            except (StiltsError, OSError):
                if not isinstance(o, Lost):
                    raise  # a lost run's record still says running: a resume queues it again


def _print_notice(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", file=sys.stderr, flush=True)
