"""The Slurm executor: ready runs go out as Slurm jobs (lane.py: submitit, job arrays, packing),
their event logs are tailed on the shared filesystem, and job states come from sacct. A run whose
job ends without the run saying finished or failed is reported as a failure with the job's state
as its reason; a runner that restarts re-attaches to jobs still queued or running instead of
submitting them twice. Everything is reported as outcomes (runner/outcomes.py): the runner
records them."""

from __future__ import annotations

import os
import signal
import time

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.runner.executor import failure, last_word, said
from stilts_tui.runner.outcomes import (
    Assignment,
    Failed,
    Lost,
    Outcome,
    Placed,
    Reattached,
    Started,
)
from stilts_tui.runner.slurm.lane import ENDED, QUEUED, SlurmLane, SlurmRun

# A Slurm job that ended without its run saying finished or failed: why, by the job's state.
JOB_ENDED = {"TIMEOUT": ("timeout", "the job reached its time limit"),
             "OUT_OF_MEMORY": ("host_oom", "the job ran out of host memory"),
             "CANCELLED": ("killed", "the job was cancelled outside stilts"),
             "NODE_FAIL": ("killed", "the job's node failed"), "BOOT_FAIL": ("killed", "the job's node failed to boot"),
             "PREEMPTED": ("killed", "the job was preempted and not requeued"),
             "DEADLINE": ("killed", "the job missed its deadline"),
             "LOST": ("killed", "Slurm has no record of the job (neither sacct nor squeue knows it; is "
                                "accounting down?)")}


class SlurmExecutor:
    kind = "slurm"

    def __init__(self, lane: SlurmLane) -> None:
        self.lane = lane
        self.jobs: dict[str, SlurmRun] = {}    # run id -> its job, while the run is in Slurm's hands
        self.last_tail = 0.0

    def busy(self) -> set[str]:
        return set(self.jobs)

    def in_flight(self) -> bool:
        return bool(self.jobs)

    def reattach(self, cfg: RunConfig, rec: dict) -> Reattached | None:
        """A run an earlier runner handed to Slurm: follow its job again if it is still queued or
        running (never submit it twice). None when it must be dealt with as an interrupted run."""
        job_id = rec.get("slurm_job")
        if not job_id:
            self.lane.cancel_name(rec.get("slurm_name") or "")  # submitted, perhaps, but never written down
            return None
        state = self.lane.state_now(str(job_id))
        if state in ENDED:
            return None
        cfg = RunConfig.from_dict(rec["config"]) if rec.get("config") else cfg
        handle = self.lane.attach(cfg, rec.get("attempts", 1), str(job_id), rec.get("slurm_name") or "")
        handle.queue_state = state
        handle.running_since = time.time() if state == "RUNNING" else None
        handle.assigned_at = rec.get("started_at") or time.time()
        self.jobs[cfg.run_id] = handle
        return Reattached(cfg, f"re-attached to Slurm job {job_id} ({state})", {"queue_state": state})

    def warm(self, queued: int) -> bool:
        return False  # nothing to warm: a job starts its own process

    def capacity(self) -> int:
        """Runs that may go to Slurm now: its share of the queue (max_jobs, runs_per_job)."""
        return self.lane.capacity

    def place(self, ready: list[Assignment]) -> list[Started]:
        """The runs of one sbatch, under one name: a runner killed during sbatch finds the name in
        the store and cancels what it submitted."""
        if not ready:
            return []
        name = self.lane.new_name()
        return [Started(self.lane.prepare(a.run), a.attempt, slot=None, device="slurm",
                        where={"executor": "slurm", "slurm_name": name, "slurm_job": None, "queue_state": "SUBMITTING",
                               "warm_start": False})
                for a in ready]

    def start(self, placed: list[Started]) -> list[Outcome]:
        """Submit the placed runs in one sbatch; their job ids, or sbatch's refusal."""
        if not placed:
            return []
        try:
            handles = self.lane.submit([(s.run, s.attempt) for s in placed], str(placed[0].where["slurm_name"]))
            if os.environ.get("STILTS_RUNNER_FAULT") == "after_sbatch":  # tests: die before the ids are written
                os.kill(os.getpid(), signal.SIGKILL)
        except StiltsError as exc:
            return [Failed(s.run, s.attempt, "slurm", "error", exc.problem, [exc.fix or ""]) for s in placed]
        out: list[Outcome] = []
        for h in handles:
            assert h.run is not None
            self.jobs[h.run.run_id] = h
            out.append(Placed(h.run.run_id, {"slurm_job": h.job_id, "slot": h.slot.id, "queue_state": "PENDING"}))
        return out

    def wait(self, timeout: float) -> list[Outcome]:
        time.sleep(timeout)
        return self._poll_jobs()

    def _poll_jobs(self) -> list[Outcome]:
        """Events from the runs' logs, then what Slurm says of their jobs. At most once a second:
        the logs live on a shared filesystem, and the app tails them itself for live views."""
        out: list[Outcome] = []
        now = time.time()
        if now - self.last_tail < min(1.0, self.lane.settings.poll_s):
            return out
        self.last_tail = now
        self.lane.refresh()
        for run_id, h in list(self.jobs.items()):
            out += said(h, h.read_events())
            if h.run is None:  # it said finished or failed
                self._drop_job(run_id)
                continue
            state = self._unless_lost(h, self.lane.state(h.job), now)
            if state != h.queue_state:
                out.append(self._state_changed(run_id, h, state))
            if state not in ENDED:
                continue
            h.ended_since = h.ended_since or now
            if now - h.ended_since < h.grace_s():
                continue
            out += said(h, h.read_events())  # the last lines may reach this filesystem late
            if h.run is not None:
                out.append(self._job_ended(h, state))
            self._drop_job(run_id)
        return out

    def _state_changed(self, run_id: str, h: SlurmRun, state: str) -> Placed:
        fields: dict = {"queue_state": state}
        requeued_after = None
        if state in QUEUED and h.queue_state in ("RUNNING", "PREEMPTED", "TIMEOUT"):
            h.requeues += 1  # submitit (timeout) or Slurm (preemption) put it back in the queue
            requeued_after = h.queue_state
        node = self.lane.node(h.job)
        if node:
            fields["device"] = node
        h.queue_state = state
        h.running_since = time.time() if state == "RUNNING" else None
        h.ended_since = None
        return Placed(run_id, fields, requeued_after)

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

    def _job_ended(self, h: SlurmRun, state: str) -> Outcome:
        cfg = h.run
        assert cfg is not None
        out: Outcome
        if h.bystander and not h.stop_requested:
            out = Lost(cfg, h.attempt, "interrupted",
                       "its job was cancelled to stop another run packed with it; it runs again",
                       {"pid": None, "queue_state": state})
        else:
            reason, why = JOB_ENDED.get(state, ("killed", f"the job ended {state} before the run did"))
            if state == "CANCELLED" and h.job_id in self.lane.cancelled:
                why = "the job was cancelled"
            out = failure(h, reason, f"Slurm job {h.job_id}: {why}", h.stderr_tail())
        h.run = None
        return out

    def _drop_job(self, run_id: str) -> None:
        h = self.jobs.pop(run_id)
        if not any(o.job_id == h.job_id for o in self.jobs.values()):
            self.lane.forget(h.job_id)

    def stop_run(self, run_id: str) -> None:
        if run_id in self.jobs:
            h = self.jobs[run_id]
            h.stop_requested = True
            for other in self.jobs.values():  # runs packed in the same job go back to the queue
                if other is not h and other.job_id == h.job_id:
                    other.bystander = True
            h.terminate()

    def running(self) -> list[tuple[RunConfig, int, float]]:
        return [(h.run, h.attempt, h.running_since) for h in self.jobs.values()
                if h.run is not None and h.queue_state == "RUNNING" and h.running_since is not None]

    def kill_stalled(self, run_id: str) -> None:
        h = self.jobs.get(run_id)
        if h is None:
            return
        h.stall_killed = True
        for other in self.jobs.values():  # runs packed in the same job go back to the queue
            if other is not h and other.job_id == h.job_id:
                other.bystander = True
        h.terminate()

    def reap(self) -> None:
        return None  # scancel is the whole stop: Slurm escalates by itself

    def slots_state(self) -> list[dict]:
        return [{"id": h.slot.id, "device": "slurm", "threads": h.slot.threads, "worker_pid": None, "run_id": run_id,
                 "since": h.assigned_at, "queue_state": h.queue_state} for run_id, h in self.jobs.items()]

    def shutdown(self, cancel: bool) -> list[Outcome]:
        """Jobs are cancelled only when the user stopped the sweep; otherwise they run on, and
        nothing is reported: `stilts resume` re-attaches to them."""
        out: list[Outcome] = []
        for h in self.jobs.values():
            if cancel:
                h.terminate()
            if cancel and h.run is not None:
                out.append(last_word(h.run, h.attempt, h.read_events()) or
                           Lost(h.run, h.attempt, "stopped",
                                "the sweep was stopped and its Slurm job cancelled; stilts resume runs it",
                                {"pid": None, "queue_state": "CANCELLED"}))
        self.jobs.clear()
        return out
