"""The runner's Slurm lane: runs go out as Slurm jobs through submitit (job arrays when several
are submitted at once, several runs per job when packing is asked for), their event logs are
tailed on the shared filesystem like a local worker's, and job states come from `sacct`.

A `SlurmRun` stands for one run inside one job and offers the Slurm executor the same surface
as a local `Worker` (run, attempt, slot, read_events, terminate, ...: runner/executor.py's
Handle), so what it reports is read the same way, whatever the executor."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

from stilts_tui.domain.events import Event, parse_event
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.fileio import EventLines
from stilts_tui.runner.options import RunnerOptions
from stilts_tui.runner.slots import Slot
from stilts_tui.runner.slurm.check import check_slurm, slurm_command
from stilts_tui.sweep.slurm_settings import SlurmSettings

# Slurm's job states, as sacct spells them (the first word: "CANCELLED by 0" is CANCELLED).
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESV_DEL_HOLD", "SUSPENDED",
          "UNKNOWN", "SUBMITTING"}
ACTIVE = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"}
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE", "REVOKED", "SPECIAL_EXIT", "LOST"}
# LOST is ours, not Slurm's: a job sacct has not known for LOST_AFTER_S and that the queue (squeue)
# does not hold either (accounting down, or the record purged before it was read). Its run goes
# back to the queue instead of being waited on forever.
LOST_AFTER_S = 600.0
# How long an ended job's run waits for its last events to show up on the shared filesystem
# (and, when preempted, for Slurm to requeue it) before the runner decides it ended without a result.
GRACE_S = {"PREEMPTED": 90.0}
DEFAULT_GRACE_S = 10.0
# submitit's LocalExecutor (the unit tests' stand-in for a cluster) has its own words.
_LOCAL_STATES = {"RUNNING": "RUNNING", "FINISHED": "COMPLETED", "INTERRUPTED": "CANCELLED", "FAILED": "FAILED"}


def normalise_state(state: str | None) -> str:
    word = (state or "UNKNOWN").split()[0].upper().rstrip("+")
    return _LOCAL_STATES.get(word, word)


class SlurmRun:
    """One run in one Slurm job, seen from the runner."""

    def __init__(self, cfg: RunConfig, attempt: int, job, lane: SlurmLane, name: str) -> None:
        self.run: RunConfig | None = cfg
        self.attempt = attempt
        self.job = job
        self.lane = lane
        self.name = name
        self.slot = Slot(id=f"job {job.job_id}", gpu=None, threads=lane.settings.cpus_per_run)
        self.assigned_at: float | None = time.time()
        self.ready_at: float | None = None
        self.stop_requested = False
        self.stall_killed = False
        self.bystander = False          # its job was cancelled for another run of the same pack
        self.queue_state = "PENDING"
        self.running_since: float | None = None   # when it was first seen RUNNING (the stall watch's start)
        self.ended_since: float | None = None
        self.unknown_since: float | None = None
        self.requeues = 0
        self.lines: EventLines[Event] = EventLines(parse_event)

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    @property
    def pid(self) -> None:
        return None

    def read_events(self) -> list[Event]:
        """New complete lines of the run's event log (the job may be anywhere on the cluster)."""
        return self.lines.read_file(self.run.events_path if self.run else None)

    def terminate(self) -> None:
        self.lane.cancel(self.job)

    def stderr_tail(self, lines: int = 12) -> list[str]:
        try:
            text = Path(self.job.paths.stderr).read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            return []
        return text.strip().splitlines()[-lines:]

    def grace_s(self) -> float:
        return GRACE_S.get(self.queue_state, DEFAULT_GRACE_S)


class SlurmLane:
    """Submits packs of runs, reads job states, cancels jobs; knows nothing of the store."""

    def __init__(self, settings: SlurmSettings, folder: Path, executor=None) -> None:
        import submitit

        self.settings = settings
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if executor is None:
            executor = submitit.SlurmExecutor(folder=self.folder, max_num_timeout=settings.max_timeouts,
                                              python=settings.python or sys.executable)
            executor.update_parameters(**self.parameters())
        self.executor = executor
        self.is_slurm = isinstance(executor, submitit.SlurmExecutor)
        self.lost_after_s = LOST_AFTER_S
        self.last_poll = 0.0
        self.jobs: dict[str, object] = {}
        self.cancelled: set[str] = set()

    def parameters(self) -> dict:
        """submitit's SlurmExecutor parameters for the settings."""
        s = self.settings
        p: dict = {"time": s.time_min, "cpus_per_task": s.cpus_per_run, "ntasks_per_node": 1, "nodes": 1,
                   "array_parallelism": s.max_jobs, "use_srun": s.use_srun,
                   "signal_delay_s": min(120, max(30, s.time_min * 60 // 10))}
        if s.gpus_per_run:
            p["gpus_per_node"] = s.gpus_per_run
        if s.partition:
            p["partition"] = s.partition
        if s.mem_gb:
            p["mem"] = f"{int(s.mem_gb * 1024)}M"
        if s.account:
            p["account"] = s.account
        if s.qos:
            p["qos"] = s.qos
        if s.setup:
            p["setup"] = list(s.setup)
        if s.sbatch:
            p["additional_parameters"] = {k.replace("-", "_"): v for k, v in s.sbatch.items()}
        return p

    @property
    def capacity(self) -> int:
        """Runs that may be handed to Slurm now."""
        live = {jid for jid in self.jobs if jid not in self.cancelled}
        return max(0, self.settings.max_jobs - len(live)) * self.settings.runs_per_job

    def new_name(self) -> str:
        return f"stilts-{uuid.uuid4().hex[:10]}"

    def prepare(self, cfg: RunConfig) -> RunConfig:
        """The run as the job runs it: a resumable state saved every checkpoint_every_min."""
        if self.settings.checkpoint_every_min:  # saved at least as often as [slurm] and the run ask
            every = self.settings.checkpoint_every_min * 60
            cfg = replace(cfg, resume_every_s=min(cfg.resume_every_s or every, every))
        return cfg

    def submit(self, runs: list[tuple[RunConfig, int]], name: str) -> list[SlurmRun]:
        """Submit runs (in order), `runs_per_job` per job, all in one sbatch call: a job array
        when there is more than one job. Raises StiltsError with sbatch's own words on refusal."""
        from stilts_tui.train.slurm_job import SlurmRuns

        k = self.settings.runs_per_job
        packs = [runs[i : i + k] for i in range(0, len(runs), k)]
        for pack in packs:
            for cfg, _attempt in pack:
                run_file = Path(cfg.output_dir) / "run.json"
                run_file.parent.mkdir(parents=True, exist_ok=True)
                run_file.write_text(cfg.to_json(), encoding="utf-8")
        if self.is_slurm:
            self.executor.update_parameters(job_name=name)
        try:
            with self.executor.batch():
                jobs = [self.executor.submit(SlurmRuns([(str(Path(c.output_dir) / "run.json"), a) for c, a in pack]))
                        for pack in packs]
        except Exception as exc:  # noqa: BLE001 - sbatch's refusal, whatever submitit wraps it in
            said = str(exc).strip().splitlines()
            detail = next((ln for ln in reversed(said) if "error" in ln.lower()), said[-1] if said else type(exc).__name__)
            raise StiltsError(f"sbatch refused the jobs: {detail.strip()}",
                              "check the [slurm] settings (partition, account, qos, time_min, mem_gb) with your cluster") from None
        handles = []
        for job, pack in zip(jobs, packs, strict=True):
            self.jobs[str(job.job_id)] = job
            handles += [SlurmRun(cfg, attempt, job, self, name) for cfg, attempt in pack]
        self.last_poll = 0.0
        return handles

    def attach(self, cfg: RunConfig, attempt: int, job_id: str, name: str) -> SlurmRun:
        """A handle on a job submitted by an earlier runner (re-attaching after `stilts resume`)."""
        import submitit

        job = self.jobs.get(job_id) or submitit.SlurmJob(folder=self.folder, job_id=job_id)
        self.jobs[job_id] = job
        return SlurmRun(cfg, attempt, job, self, name)

    # ------------------------------------------------------------------ states

    def refresh(self, force: bool = False) -> None:
        """Read every job's state with one sacct call, at most every poll_s."""
        now = time.time()
        if not force and now - self.last_poll < self.settings.poll_s:
            return
        self.last_poll = now
        if self.is_slurm:
            import submitit

            watcher = submitit.SlurmJob.watcher
            for jid in self.jobs:
                watcher.register_job(jid)
            with contextlib.suppress(Exception):
                watcher.update()

    def state(self, job) -> str:
        if self.is_slurm:
            import submitit

            state = submitit.SlurmJob.watcher.get_state(str(job.job_id), mode="cache")
        else:
            state = job.state
        return normalise_state(state)

    def state_now(self, job_id: str) -> str:
        """One job's state, read at once (used when re-attaching)."""
        import submitit

        job = self.jobs.get(job_id) or submitit.SlurmJob(folder=self.folder, job_id=job_id)
        self.jobs[job_id] = job
        self.refresh(force=True)
        state = self.state(job)
        if state == "UNKNOWN":  # sacct may lag a fresh job: ask the queue too
            queued = self.queue_state(job_id)
            state = state if queued == "LOST" else queued
        return state

    def queue_state(self, job_id: str) -> str:
        """What the queue (squeue) says of a job: its state; LOST when the controller answers
        without it; UNKNOWN when the controller does not answer (then nothing can be concluded)."""
        if not self.is_slurm:
            return "UNKNOWN"
        try:
            out = slurm_command(["squeue", "--noheader", "--format=%T", "--jobs", job_id])
        except (OSError, subprocess.TimeoutExpired):
            return "UNKNOWN"
        words = out.stdout.split()
        if out.returncode == 0:
            return normalise_state(words[0]) if words else "LOST"
        return "LOST" if "invalid job id" in (out.stderr + out.stdout).lower() else "UNKNOWN"

    def node(self, job) -> str | None:
        if not self.is_slurm:
            return None
        import submitit

        node = submitit.SlurmJob.watcher.get_info(str(job.job_id), mode="cache").get("NodeList")
        return node if node and node not in ("None assigned", "(null)") else None

    def forget(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self.cancelled.discard(job_id)

    # ------------------------------------------------------------------ cancelling

    def cancel(self, job) -> None:
        jid = str(job.job_id)
        if jid in self.cancelled:
            return
        self.cancelled.add(jid)
        with contextlib.suppress(Exception):
            job.cancel(check=False)
        self.last_poll = 0.0

    def cancel_name(self, name: str) -> None:
        """Cancel whatever was submitted under `name` (a runner that died between sbatch and
        writing the job id down): the runs are then submitted again, never twice."""
        if self.is_slurm and name:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                slurm_command(["scancel", "--name", name])


def slurm_lane(db, options: RunnerOptions) -> SlurmLane | None:
    """The runner's Slurm lane for these sweep options, or None for the local executor."""
    if options.executor != "slurm":
        return None
    from stilts_tui.runner.files import RunnerFiles

    settings = SlurmSettings(**options.slurm)
    check_slurm(settings)
    return SlurmLane(settings, RunnerFiles(Path(db)).slurm)
