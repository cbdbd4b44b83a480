"""The Slurm executor: ready runs go out as Slurm jobs (runner/slurm.py's lane: submitit, job
arrays, packing), their event logs are tailed on the shared filesystem, and job states come from
sacct. A run whose job ends without the run saying finished or failed is reported as a failure
with the job's state as its reason; a runner that restarts re-attaches to jobs still queued or
running instead of submitting them twice."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import asdict

from stilts_tui.errors import StiltsError
from stilts_tui.records import RunStatus
from stilts_tui.runner.executor import Host
from stilts_tui.runner.slots import Slot
from stilts_tui.runner.slurm import ENDED, QUEUED, SlurmLane, SlurmRun
from stilts_tui.train.config import RunConfig

# A Slurm job that ended without its run saying finished or failed: why, by the job's state.
JOB_ENDED = {"TIMEOUT": ("timeout", "the job reached its time limit"),
             "OUT_OF_MEMORY": ("host_oom", "the job ran out of host memory"),
             "CANCELLED": ("killed", "the job was cancelled outside stilts"),
             "NODE_FAIL": ("killed", "the job's node failed"), "BOOT_FAIL": ("killed", "the job's node failed to boot"),
             "PREEMPTED": ("killed", "the job was preempted and not requeued"),
             "DEADLINE": ("killed", "the job missed its deadline"),
             "LOST": ("killed", "Slurm has no record of the job (neither sacct nor squeue knows it; is "
                                "accounting down?)")}


class _Unsubmitted:
    """A run sbatch refused, in the shape the retry policy takes."""

    def __init__(self, cfg: RunConfig, attempt: int) -> None:
        self.run: RunConfig | None = cfg
        self.attempt, self.stop_requested = attempt, False
        self.slot = Slot(id="slurm", gpu=None, threads=0)
        self.assigned_at: float | None = None
        self.ready_at: float | None = None


class SlurmExecutor:
    kind = "slurm"

    def __init__(self, host: Host, lane: SlurmLane) -> None:
        self.host = host
        self.lane = lane
        self.jobs: dict[str, SlurmRun] = {}    # run id -> its job, while the run is in Slurm's hands
        self.last_tail = 0.0

    def busy(self) -> set[str]:
        return set(self.jobs)

    def in_flight(self) -> bool:
        return bool(self.jobs)

    def reattach(self, cfg: RunConfig, rec: dict) -> bool:
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
        handle.running_since = time.time() if state == "RUNNING" else None
        handle.assigned_at = rec.get("started_at") or time.time()
        self.jobs[cfg.run_id] = handle
        self.host.pending[cfg.run_id] = cfg
        self.host.counts["reattached"] = self.host.counts.get("reattached", 0) + 1
        self.host.store.update(cfg.run_id, queue_state=state, message=f"re-attached to Slurm job {job_id} ({state})")
        return True

    def assign(self) -> None:
        """Hand ready runs to Slurm, as many as its share of the queue allows, in one sbatch."""
        host = self.host
        if not host.dirty or self.lane.capacity == 0:
            return
        host.dirty = False
        ready = host.ready()[: self.lane.capacity]
        if not ready:
            return
        name = self.lane.new_name()
        batch = []
        updates = {}
        for cfg in ready:
            cfg = self.lane.prepare(cfg)
            attempt = (host.store.get(cfg.run_id) or {}).get("attempts", 0) + 1
            batch.append((cfg, attempt))
            # Store first: a runner killed during sbatch finds the name and cancels what it submitted.
            updates[cfg.run_id] = {"status": RunStatus.RUNNING, "attempts": attempt, "started_at": time.time(),
                                   "pid": None, "executor": "slurm", "slurm_name": name, "slurm_job": None,
                                   "queue_state": "SUBMITTING", "slot": None, "device": "slurm",
                                   "config": asdict(cfg), "warm_start": False}
        host.store.update_many(updates)
        try:
            handles = self.lane.submit(batch, name)
            if os.environ.get("STILTS_RUNNER_FAULT") == "after_sbatch":  # tests: die before the ids are written
                os.kill(os.getpid(), signal.SIGKILL)
        except StiltsError as exc:
            for cfg, attempt in batch:
                host.pending[cfg.run_id] = cfg
                host.record_failure(_Unsubmitted(cfg, attempt), "error", exc.problem, [exc.fix or ""])
            return
        ids = {}
        for h in handles:
            assert h.run is not None
            self.jobs[h.run.run_id] = h
            host.pending[h.run.run_id] = h.run
            ids[h.run.run_id] = {"slurm_job": h.job_id, "slot": h.slot.id, "queue_state": "PENDING"}
        host.store.update_many(ids)

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)
        self._poll_jobs()

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
                self.host.handle(h, ev)
            if h.run is None:  # it said finished or failed
                self._drop_job(run_id)
                continue
            state = self._unless_lost(h, self.lane.state(h.job), now)
            if state != h.queue_state:
                self._state_changed(run_id, h, state)
            if state not in ENDED:
                continue
            h.ended_since = h.ended_since or now
            if now - h.ended_since < h.grace_s():
                continue
            for ev in h.read_events():  # the last lines may reach this filesystem late
                self.host.handle(h, ev)
            if h.run is not None:
                self._job_ended(h, state)
            self._drop_job(run_id)

    def _state_changed(self, run_id: str, h: SlurmRun, state: str) -> None:
        fields: dict = {"queue_state": state}
        if state in QUEUED and h.queue_state in ("RUNNING", "PREEMPTED", "TIMEOUT"):
            h.requeues += 1  # submitit (timeout) or Slurm (preemption) put it back in the queue
            rec = self.host.store.get(run_id) or {}
            fields |= {"requeues": rec.get("requeues", 0) + 1,
                       "message": f"requeued after {h.queue_state.lower()}; it continues from its last saved step"}
        node = self.lane.node(h.job)
        if node:
            fields["device"] = node
        self.host.store.update(run_id, **fields)
        h.queue_state = state
        h.running_since = time.time() if state == "RUNNING" else None
        h.ended_since = None

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
        assert cfg is not None
        if h.bystander and not h.stop_requested:
            self.host.store.update(cfg.run_id, status=RunStatus.QUEUED, pid=None, reason="interrupted", queue_state=state,
                                   message="its job was cancelled to stop another run packed with it; it runs again")
            self.host.dirty = True
            h.run = None
            return
        reason, why = JOB_ENDED.get(state, ("killed", f"the job ended {state} before the run did"))
        if state == "CANCELLED" and h.job_id in self.lane.cancelled:
            why = "the job was cancelled"
        self.host.record_failure(h, reason, f"Slurm job {h.job_id}: {why}", h.stderr_tail())
        h.run = None

    def _drop_job(self, run_id: str) -> None:
        h = self.jobs.pop(run_id)
        if not any(o.job_id == h.job_id for o in self.jobs.values()):
            self.lane.forget(h.job_id)
        self.host.dirty = True

    def stop_run(self, run_id: str) -> None:
        if run_id in self.jobs:
            h = self.jobs[run_id]
            h.stop_requested = True
            for other in self.jobs.values():  # runs packed in the same job go back to the queue
                if other is not h and other.job_id == h.job_id:
                    other.bystander = True
            h.terminate()

    def running(self) -> list[tuple]:
        return [(h.run, h.attempt, h.running_since) for h in self.jobs.values()
                if h.run is not None and h.queue_state == "RUNNING" and h.running_since is not None]

    def kill_stalled(self, run_id: str) -> None:
        h = self.jobs.get(run_id)
        if h is None:
            return
        for other in self.jobs.values():  # runs packed in the same job go back to the queue
            if other is not h and other.job_id == h.job_id:
                other.bystander = True
        h.terminate()

    def reap(self) -> None:
        return None  # scancel is the whole stop: Slurm escalates by itself

    def slots_state(self) -> list[dict]:
        return [{"id": h.slot.id, "device": "slurm", "threads": h.slot.threads, "worker_pid": None, "run_id": run_id,
                 "since": h.assigned_at, "queue_state": h.queue_state} for run_id, h in self.jobs.items()]

    def shutdown(self, cancel: bool) -> None:
        for h in self.jobs.values():
            if cancel:
                h.terminate()
            if cancel and h.run is not None and not self.host.keep_finished(h, h.read_events()):
                self.host.store.update(h.run.run_id, status=RunStatus.QUEUED, pid=None, reason="stopped",
                                       queue_state="CANCELLED",
                                       message="the sweep was stopped and its Slurm job cancelled; stilts resume runs it")
        self.jobs.clear()
