"""The runner's loop: one process that owns the store's writer lock, keeps a warm worker on every
slot, hands each free slot the longest ready run, applies the retry policy, and records exactly
one outcome per attempt. Everything it learns it writes to the store before acting on it, so a
runner killed at any moment can be resumed (`recover`) without losing or duplicating a result."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import psutil

from stilts_tui.errors import StiltsError
from stilts_tui.runner.estimate import cost
from stilts_tui.runner.files import RunnerFiles
from stilts_tui.runner.pool import Worker
from stilts_tui.runner.slots import Slot
from stilts_tui.runner.slurm import ENDED, QUEUED, SlurmLane, SlurmRun
from stilts_tui.store import Store
from stilts_tui.train.config import RunConfig
from stilts_tui.train.events import read_events

OnEvent = Callable[[RunConfig, dict], None]
OnRun = Callable[[RunConfig, dict], None]

NOT_RETRIED = {"nan_loss": "the same seed would fail the same way", "data_error": "the data must be fixed first",
               "timeout": "the same time limit would end it again; raise time_min in [slurm]",
               "host_oom": "the job's memory limit would end it again; raise mem_gb in [slurm]"}
# A Slurm job that ended without its run saying finished or failed: why, by the job's state.
JOB_ENDED = {"TIMEOUT": ("timeout", "the job reached its time limit"),
             "OUT_OF_MEMORY": ("host_oom", "the job ran out of host memory"),
             "CANCELLED": ("killed", "the job was cancelled outside stilts"),
             "NODE_FAIL": ("killed", "the job's node failed"), "BOOT_FAIL": ("killed", "the job's node failed to boot"),
             "PREEMPTED": ("killed", "the job was preempted and not requeued"),
             "DEADLINE": ("killed", "the job missed its deadline"),
             "LOST": ("killed", "Slurm has no record of the job (neither sacct nor squeue knows it; is "
                                "accounting down?)")}


def _oom_why(cfg: RunConfig) -> str:
    if cfg.device_batch:
        return (f"the study fixes its device batch at {cfg.device_batch} (device_batch), which a smaller one would "
                "change; give it a device with more memory")
    return "out of memory even with a device batch of 1"


def run_record(cfg: RunConfig) -> dict:
    """The store's view of a run: the grouping fields at the top level, the full config inside."""
    return {"run_id": cfg.run_id, "kind": cfg.kind, "intermediate": cfg.intermediate, "target": cfg.task,
            "model": cfg.model, "lr": cfg.lr, "batch_size": cfg.batch_size, "warmup_ratio": cfg.warmup_ratio,
            "seed": cfg.seed, "epochs": cfg.epochs, "max_length": cfg.max_length, "train_size": cfg.train_size,
            "init_from": cfg.init_from, "spec": cfg.spec_name, "config": asdict(cfg),
            "events_path": cfg.events_path, "output_dir": cfg.output_dir}


def recovered_result(record: dict) -> dict | None:
    """The `finished` event of the record's current attempt, when its worker got that far before
    the runner died: the result is kept instead of training again."""
    attempt = record.get("attempts", 0)
    for ev in reversed(read_events(record.get("events_path") or "")):
        if ev.get("attempt", 1) != attempt:
            continue
        return ev if ev["event"] == "finished" else None
    return None


class _Unsubmitted:
    """A run sbatch refused, in the shape the retry policy takes."""

    def __init__(self, cfg: RunConfig, attempt: int) -> None:
        self.run, self.attempt, self.stop_requested = cfg, attempt, False
        self.slot = Slot(id="slurm", gpu=None, threads=0)


class Runner:
    def __init__(self, db: str | Path, runs: list[RunConfig], slots: list[Slot], *, max_retries: int = 2,
                 resume: bool = False, name: str = "", sweep_file: str | None = None,
                 on_event: OnEvent | None = None, on_run: OnRun | None = None,
                 env: dict[str, str] | None = None, poll_s: float = 0.25, lane: SlurmLane | None = None) -> None:
        if not slots and lane is None:
            raise ValueError("a runner needs at least one slot")
        self.db = Path(db)
        self.files = RunnerFiles(self.db)
        self.runs = {r.run_id: r for r in runs}
        self.slots = slots
        self.max_retries = max_retries
        self.resume = resume
        self.name = name
        self.sweep_file = sweep_file
        self.on_event = on_event
        self.on_run = on_run
        self.env = env
        self.poll_s = poll_s
        self.workers: dict[str, Worker] = {}   # slot id -> worker
        self.lane = lane                       # Slurm: runs go out as jobs instead of to local workers
        self.jobs: dict[str, SlurmRun] = {}    # run id -> its job, while the run is in Slurm's hands
        self.stopped_by: int | None = None
        self.last_tail = 0.0
        self.pending: dict[str, RunConfig] = {}
        self.stop_flag = False
        self.counts = {"finished": 0, "failed": 0, "stopped": 0, "blocked": 0, "skipped": 0, "retried": 0, "recovered": 0}
        self.started_at = time.time()
        self.last_state = 0.0
        self.store: Store | None = None
        self.dirty = True  # something changed that may make a run ready
        self.old_handlers: dict = {}

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
            if status == "running" and self.lane is not None and self._reattach(cfg, rec):
                continue
            if status == "running":  # in flight when an earlier runner died
                ev = recovered_result(rec)
                if ev is not None:
                    self._record_finished(cfg, ev, recovered=True)
                    continue
                updates[run_id] = {"status": "queued", "pid": None, "slot": None, "reason": "interrupted",
                                   "message": "its runner stopped before the run ended; it runs again"}
                status = "queued"
            if status == "finished":
                self.counts["skipped"] += 1
                continue
            if self.resume and status in ("failed", "stopped"):
                continue  # a resumed sweep continues; it does not retry what already failed for good
            old = RunConfig.from_dict(rec["config"]) if rec.get("config") else cfg
            # An earlier OOM taught us a smaller device batch; identity (and results) are unchanged.
            cfg = replace(cfg, max_device_batch=min(cfg.max_device_batch, old.max_device_batch))
            self.pending[run_id] = cfg
            if not self.resume or status != "queued":
                updates[run_id] = updates.get(run_id, {}) | {"status": "queued", "config": asdict(cfg)}
                if not self.resume:
                    updates[run_id]["retries"] = 0  # a new `stilts run` gives failed runs a fresh budget
        store.update_many(updates)

    def _reattach(self, cfg: RunConfig, rec: dict) -> bool:
        """A run an earlier runner handed to Slurm: follow its job again if it is still queued or
        running (never submit it twice). False when it must be dealt with as an interrupted run."""
        job_id = rec.get("slurm_job")
        if not job_id:
            self.lane.cancel_name(rec.get("slurm_name") or "")  # submitted, perhaps, but never written down
            return False
        state = self.lane.state_now(str(job_id))
        if state in ENDED:
            return False
        cfg = RunConfig.from_dict(rec["config"]) if rec.get("config") else cfg
        handle = self.lane.attach(cfg, rec.get("attempts", 1), str(job_id), rec.get("slurm_name") or "")
        handle.queue_state = state
        handle.assigned_at = rec.get("started_at") or time.time()
        self.jobs[cfg.run_id] = handle
        self.pending[cfg.run_id] = cfg
        self.counts["reattached"] = self.counts.get("reattached", 0) + 1
        self.store.update(cfg.run_id, queue_state=state, message=f"re-attached to Slurm job {job_id} ({state})")
        return True

    # ------------------------------------------------------------------ outcomes

    def _record_finished(self, cfg: RunConfig, ev: dict, recovered: bool = False) -> None:
        m = ev["metrics"]
        self.store.update(cfg.run_id, status="finished", finished_at=ev.get("t", time.time()), pid=None,
                          score=m["score"], metric=m["metric"], metrics=m, wall_s=ev.get("wall_s"), reason=None,
                          message="result recovered from the event log after the runner stopped" if recovered else None)
        self.pending.pop(cfg.run_id, None)
        self.dirty = True
        self.counts["recovered" if recovered else "finished"] += 1
        if self.on_run:
            self.on_run(cfg, self.store.get(cfg.run_id) or {})

    def _record_failure(self, worker: Worker, reason: str, message: str, tail: list[str]) -> None:
        cfg = worker.run
        rec = self.store.get(cfg.run_id) or {}
        failures = [*rec.get("failures", []), {"attempt": worker.attempt, "reason": reason, "message": message,
                                               "t": time.time(), "slot": worker.slot.id}]
        common = {"pid": None, "failures": failures, "stderr_tail": tail, "finished_at": time.time()}
        retries = rec.get("retries", 0)
        self.dirty = True
        if worker.stop_requested:
            self.store.update(cfg.run_id, status="stopped", reason="stopped", message="stopped by the user", **common)
            self.pending.pop(cfg.run_id, None)
            self.counts["stopped"] += 1
        elif reason == "oom" and cfg.can_shrink_device_batch():
            smaller = replace(cfg, max_device_batch=cfg.micro_batch()[0] // 2)
            self.pending[cfg.run_id] = smaller
            self.store.update(cfg.run_id, status="queued", reason="oom", config=asdict(smaller),
                              message=f"out of memory with a device batch of {cfg.micro_batch()[0]}; retrying with "
                                      f"{smaller.micro_batch()[0]} and gradient accumulation (same effective batch)", **common)
            self.counts["retried"] += 1
        elif reason not in NOT_RETRIED and reason != "oom" and retries < self.max_retries:
            self.store.update(cfg.run_id, status="queued", reason=reason, retries=retries + 1,
                              message=f"{message} (retry {retries + 1} of {self.max_retries})", **common)
            self.counts["retried"] += 1
        else:
            why = NOT_RETRIED.get(reason) or (_oom_why(cfg) if reason == "oom" else f"gave up after {retries} retries")
            self.store.update(cfg.run_id, status="failed", reason=reason, message=f"{message} (not retried: {why})"
                              if reason in NOT_RETRIED or reason == "oom" else f"{message} ({why})", **common)
            self.pending.pop(cfg.run_id, None)
            self.counts["failed"] += 1
        if self.on_run:
            self.on_run(cfg, self.store.get(cfg.run_id) or {})

    # ------------------------------------------------------------------ scheduling

    def _parent_state(self, cfg: RunConfig, records: dict[str, dict]) -> str:
        """ready / wait / blocked for a run that starts from an intermediate checkpoint."""
        if not cfg.init_from:
            return "ready"
        if cfg.init_from in self.pending:
            return "wait"
        parent = records.get(cfg.init_from) or {}
        if parent.get("status") == "finished" and Path(cfg.init_checkpoint or "").is_dir():
            return "ready"
        return "blocked"

    def _busy(self) -> set[str]:
        return {w.run.run_id for w in self.workers.values() if w.run is not None} | set(self.jobs)

    def _ready(self) -> list[RunConfig]:
        busy = self._busy()
        records = {r["run_id"]: r for r in self.store.runs()}
        ready = []
        for run_id, cfg in list(self.pending.items()):
            if run_id in busy:
                continue
            state = self._parent_state(cfg, records)
            if state == "blocked":
                parent = records.get(cfg.init_from) or {}
                self.store.update(run_id, status="blocked", reason="intermediate_failed",
                                  message=f"intermediate run {cfg.init_from} is {parent.get('status', 'missing')}"
                                          + ("" if parent.get("status") != "finished" else " but its checkpoint is gone"))
                self.pending.pop(run_id)
                self.counts["blocked"] += 1
            elif state == "ready":
                ready.append(cfg)
        # Intermediates first (each unblocks many runs), then longest first so the sweep ends sooner.
        ready.sort(key=lambda c: (c.kind != "intermediate", -cost(c), c.run_id))
        return ready

    def _spawn(self, slot: Slot) -> Worker:
        worker = Worker(slot, self.files.workers, self.env)
        self.workers[slot.id] = worker
        self.selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)
        self.dirty = True
        return worker

    def _assign(self) -> None:
        if self.lane is not None:
            self._submit()
            return
        # Warm a worker for every slot that queued work may need, while earlier work runs.
        for slot in self.slots:
            if slot.id not in self.workers and len(self.workers) < len(self.pending):
                self._spawn(slot)
        idle = [w for w in self.workers.values() if w.idle]
        if idle and self.dirty:
            self.dirty = False
            ready = self._ready()
            for w in idle:
                if not ready:
                    break
                cfg = ready.pop(0)
                attempt = (self.store.get(cfg.run_id) or {}).get("attempts", 0) + 1
                # Store first: a runner killed right after this line re-runs the attempt on resume.
                self.store.update(cfg.run_id, status="running", attempts=attempt, started_at=time.time(), pid=w.pid,
                                  slot=w.slot.id, device=w.slot.device, config=asdict(cfg), warm_start=w.ready_at is not None)
                w.assign(cfg, attempt)
            if ready:
                self.dirty = True
        # Idle workers that no queued run will ever need are let go (memory back to the others).
        if not self.pending:
            for sid, w in list(self.workers.items()):
                if w.run is None:
                    self._retire(sid)

    def _submit(self) -> None:
        """Hand ready runs to Slurm, as many as its share of the queue allows, in one sbatch."""
        if not self.dirty or self.lane.capacity == 0:
            return
        self.dirty = False
        ready = self._ready()[: self.lane.capacity]
        if not ready:
            return
        name = self.lane.new_name()
        batch = []
        updates = {}
        for cfg in ready:
            cfg = self.lane.prepare(cfg)
            attempt = (self.store.get(cfg.run_id) or {}).get("attempts", 0) + 1
            batch.append((cfg, attempt))
            # Store first: a runner killed during sbatch finds the name and cancels what it submitted.
            updates[cfg.run_id] = {"status": "running", "attempts": attempt, "started_at": time.time(), "pid": None,
                                   "executor": "slurm", "slurm_name": name, "slurm_job": None, "queue_state": "SUBMITTING",
                                   "slot": None, "device": "slurm", "config": asdict(cfg), "warm_start": False}
        self.store.update_many(updates)
        try:
            handles = self.lane.submit(batch, name)
            if os.environ.get("STILTS_RUNNER_FAULT") == "after_sbatch":  # tests: die before the ids are written
                os.kill(os.getpid(), signal.SIGKILL)
        except StiltsError as exc:
            for cfg, attempt in batch:
                self.pending[cfg.run_id] = cfg
                self._record_failure(_Unsubmitted(cfg, attempt), "error", exc.problem, [exc.fix or ""])
            return
        ids = {}
        for h in handles:
            self.jobs[h.run.run_id] = h
            self.pending[h.run.run_id] = h.run
            ids[h.run.run_id] = {"slurm_job": h.job_id, "slot": h.slot.id, "queue_state": "PENDING"}
        self.store.update_many(ids)

    def _poll_jobs(self) -> None:
        """Events from the runs' logs, then what Slurm says of their jobs. At most once a second:
        the logs live on a shared filesystem, and the app tails them itself for live views."""
        now = time.time()
        if now - self.last_tail < min(1.0, self.lane.settings.poll_s):
            return
        self.last_tail = now
        self.lane.refresh()
        for run_id, h in list(self.jobs.items()):
            for ev in h.read_events():
                self._handle(h, ev)
            if h.run is None:  # it said finished or failed
                self._drop_job(run_id)
                continue
            state = self._unless_lost(h, self.lane.state(h.job), now)
            if state != h.queue_state:
                fields = {"queue_state": state}
                if state in QUEUED and h.queue_state in ("RUNNING", "PREEMPTED", "TIMEOUT"):
                    h.requeues += 1  # submitit (timeout) or Slurm (preemption) put it back in the queue
                    rec = self.store.get(run_id) or {}
                    fields |= {"requeues": rec.get("requeues", 0) + 1,
                               "message": f"requeued after {h.queue_state.lower()}; it continues from its last saved step"}
                node = self.lane.node(h.job)
                if node:
                    fields["device"] = node
                self.store.update(run_id, **fields)
                h.queue_state = state
                h.ended_since = None
            if state not in ENDED:
                continue
            h.ended_since = h.ended_since or now
            if now - h.ended_since < h.grace_s():
                continue
            for ev in h.read_events():  # the last lines may reach this filesystem late
                self._handle(h, ev)
            if h.run is not None:
                self._job_ended(h, state)
            self._drop_job(run_id)

    def _unless_lost(self, h: SlurmRun, state: str, now: float) -> str:
        """sacct's state, except that a job it has not known for a long while is asked of the
        queue, which either still holds it or does not (then the job is LOST)."""
        if state != "UNKNOWN":
            h.unknown_since = None
            return state
        if h.queue_state == "LOST":
            return "LOST"  # until sacct knows better
        h.unknown_since = h.unknown_since or now
        if now - h.unknown_since < self.lane.lost_after_s:
            return state
        h.unknown_since = now  # still unknown: ask the queue again after another while
        return self.lane.queue_state(h.job_id)

    def _job_ended(self, h: SlurmRun, state: str) -> None:
        cfg = h.run
        if h.bystander and not h.stop_requested:
            self.store.update(cfg.run_id, status="queued", pid=None, reason="interrupted", queue_state=state,
                              message="its job was cancelled to stop another run packed with it; it runs again")
            self.dirty = True
            h.run = None
            return
        reason, why = JOB_ENDED.get(state, ("killed", f"the job ended {state} before the run did"))
        if state == "CANCELLED" and h.job_id in self.lane.cancelled:
            why = "the job was cancelled"
        self._record_failure(h, reason, f"Slurm job {h.job_id}: {why}", h.stderr_tail())
        h.run = None

    def _drop_job(self, run_id: str) -> None:
        h = self.jobs.pop(run_id)
        if not any(o.job_id == h.job_id for o in self.jobs.values()):
            self.lane.forget(h.job_id)
        self.dirty = True

    def _retire(self, slot_id: str) -> None:
        w = self.workers.pop(slot_id)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(w.proc.stdout)
        with contextlib.suppress(OSError, BrokenPipeError):
            w.proc.stdin.close()  # end of input: a warm worker exits by itself
        try:
            w.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            w.kill_now()
        w.close()

    # ------------------------------------------------------------------ events

    def _handle(self, w: Worker, ev: dict) -> None:
        kind = ev["event"]
        if kind == "ready":
            w.ready_at = ev.get("t", time.time())
            return
        cfg = w.run
        if cfg is None or ev.get("run_id") != cfg.run_id or ev.get("attempt", 1) != w.attempt:
            return  # a stray line from an earlier run
        if self.on_event:
            self.on_event(cfg, ev)
        if kind == "started":
            self.store.update(cfg.run_id, train_examples=ev.get("train_examples"), total_steps=ev.get("total_steps"),
                              micro_batch=ev.get("micro_batch"), accumulation=ev.get("accumulation"),
                              params=ev.get("params"), precision=ev.get("precision"),
                              overhead_s=ev.get("t", time.time()) - (w.assigned_at or time.time()))
        elif kind == "finished":
            w.run = None
            self._record_finished(cfg, ev)
        elif kind == "failed":
            self._record_failure(w, ev.get("reason", "error"), ev.get("message", ""), ev.get("stderr_tail") or [])
            w.run = None

    def _check_dead(self) -> None:
        for sid, w in list(self.workers.items()):
            if w.alive():
                continue
            for ev in w.read_events():  # what it said before dying
                self._handle(w, ev)
            if w.run is not None:
                rc = w.proc.returncode
                how = f"signal {-rc}" if rc < 0 else f"code {rc}"
                self._record_failure(w, "killed", f"worker exited with {how} before the run ended", w.stderr_tail())
                w.run = None
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(w.proc.stdout)
            w.close()
            del self.workers[sid]

    def _control(self) -> None:
        stop_all, stop_runs, retry_runs = self.files.take_requests()
        if stop_all:
            self.stop_flag = True
        busy = self._busy()
        for run_id in retry_runs:
            rec = self.store.get(run_id)
            if rec is None or run_id in self.pending or run_id in busy or rec.get("status") == "finished":
                continue
            cfg = RunConfig.from_dict(rec["config"])
            self.runs.setdefault(run_id, cfg)
            self.pending[run_id] = cfg
            self.store.update(run_id, status="queued", retries=0, reason="retry", message="queued again by the user")
            self.dirty = True
        for run_id in stop_runs:
            for w in self.workers.values():
                if w.run is not None and w.run.run_id == run_id:
                    w.stop_requested = True
                    w.terminate()
            if run_id in self.jobs:
                h = self.jobs[run_id]
                h.stop_requested = True
                for other in self.jobs.values():  # runs packed in the same job go back to the queue
                    if other is not h and other.job_id == h.job_id:
                        other.bystander = True
                h.terminate()
            if run_id in self.pending and run_id not in self._busy():
                self.pending.pop(run_id)
                self.store.update(run_id, status="stopped", reason="stopped", message="stopped by the user before it started")
                self.counts["stopped"] += 1
        for w in self.workers.values():
            w.reap()

    # ------------------------------------------------------------------ state file

    def _state(self, status: str, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last_state < 1.0:
            return
        self.last_state = now
        me = psutil.Process()
        self.files.write_state({
            "pid": os.getpid(), "create_time": me.create_time(), "status": status, "name": self.name,
            "db": str(self.db), "sweep_file": self.sweep_file, "started_at": self.started_at, "heartbeat": now,
            "run_ids": list(self.runs), "counts": self.counts, "pending": len(self.pending),
            "executor": "slurm" if self.lane else "local",
            "slots": [{"id": h.slot.id, "device": "slurm", "threads": h.slot.threads, "worker_pid": None,
                       "run_id": run_id, "since": h.assigned_at, "queue_state": h.queue_state}
                      for run_id, h in self.jobs.items()] if self.lane else [{"id": s.id, "device": s.device, "threads": s.threads,
                       "worker_pid": (w := self.workers.get(s.id)) and w.pid,
                       "run_id": w.run.run_id if w and w.run else None,
                       "since": w.assigned_at if w and w.run else None} for s in self.slots]})

    # ------------------------------------------------------------------ main

    def run(self) -> dict[str, int]:
        self.files.make_dirs()
        self._signals()
        self.store = Store(self.db, writer=True)
        self.selector = selectors.DefaultSelector()
        try:
            self._state("starting", force=True)
            self._prepare()
            while not self.stop_flag:
                self._control()
                if self.stop_flag:
                    break
                self._assign()
                if not self.pending and not any(w.run is not None for w in self.workers.values()) and not self.jobs:
                    break
                for key, _ in self.selector.select(timeout=self.poll_s):
                    for ev in key.data.read_events():
                        self._handle(key.data, ev)
                self._check_dead()
                if self.lane is not None:
                    self._poll_jobs()
                self._state("running")
            stopped = self.stop_flag
            self._shutdown()
            self._state("stopped" if stopped else "finished", force=True)
        except BaseException:
            self._shutdown()
            self._state("crashed", force=True)
            raise
        finally:
            self.selector.close()
            self.store.close()
            for sig, handler in self.old_handlers.items():
                signal.signal(sig, handler)
        return self.counts

    def _shutdown(self) -> None:
        """Stop every worker; runs still in flight go back to the queue for `stilts resume`.
        Slurm jobs are cancelled only when the user stopped the sweep (`stilts stop --all`,
        Ctrl-C); a runner that is merely terminated leaves them to run, and `stilts resume`
        re-attaches to them."""
        if self.jobs:
            cancel = self.stopped_by == signal.SIGINT or (self.files.control / "stop-all").exists()
            for h in self.jobs.values():
                if cancel:
                    h.terminate()
                    self.store.update(h.run.run_id, status="queued", pid=None, reason="stopped", queue_state="CANCELLED",
                                      message="the sweep was stopped and its Slurm job cancelled; stilts resume runs it")
            self.jobs.clear()
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
            if w.run is not None:
                with contextlib.suppress(Exception):
                    self.store.update(w.run.run_id, status="queued", pid=None, slot=None, reason="stopped",
                                      message="the sweep was stopped while this run was in flight; stilts resume runs it")
                w.run = None
            w.close()
        self.workers.clear()
