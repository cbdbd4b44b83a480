"""What an executor reports to the runner: one typed record per thing that happened to a run.
Executors only report; the runner alone changes its queue and writes the store (runner/loop.py),
so the retry policy, the counters and the store's order of writes are the same whatever runs
the runs (local workers, Slurm jobs, or a test's fake executor)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stilts_tui.domain.run_config import RunConfig

if TYPE_CHECKING:
    from stilts_tui.diskspace import DiskFullError
    from stilts_tui.domain.events import Event
    from stilts_tui.domain.events import Finished as FinishedEvent


@dataclass(frozen=True)
class Assignment:
    """A ready run the runner hands to an executor, with the number of the attempt it starts (its
    worker tags every event line with it, so that lines of an earlier attempt are told apart)."""

    run: RunConfig
    attempt: int
    group: int | None = None   # assignments in a row with the same group train fused in one worker (runner/fusing.py)


def in_groups(ready: list[Assignment]) -> list[list[Assignment]]:
    """The assignments in a row that share a fused group, each alone otherwise: what one worker
    (or one slot of the fake executor) takes."""
    out: list[list[Assignment]] = []
    for a in ready:
        if out and a.group is not None and out[-1][-1].group == a.group:
            out[-1].append(a)
        else:
            out.append([a])
    return out


@dataclass(frozen=True)
class Started:
    """A run placed on a slot or in a job. The runner records it before the executor starts it
    (place, record, start): a runner killed in between finds the run running, and runs the attempt
    again on resume (Slurm: cancels by name whatever was submitted)."""

    run: RunConfig               # as it runs (Slurm: with its resumable-state interval)
    attempt: int
    slot: str | None
    device: str
    pid: int | None = None
    where: dict = field(default_factory=dict)   # the executor's own fields: device_name, warm_start, Slurm's job name


@dataclass(frozen=True)
class NotStarted:
    """A placed run that could not start (its run file did not fit on the disk): back in the queue,
    the attempt not counted. `error` is raised once it is recorded: no new run starts."""

    run: RunConfig
    attempt: int
    reason: str
    message: str
    error: DiskFullError | None = None


@dataclass(frozen=True)
class EventLines:
    """Event lines of a run's current attempt, in the order its worker wrote them; lines of an
    earlier run or attempt, and a warm worker's own `ready`, are left out by the executor."""

    run: RunConfig
    attempt: int
    events: list[Event]
    assigned_at: float | None    # when the run was handed over: a `started` line's overhead is counted from it


@dataclass(frozen=True)
class Finished:
    """The attempt's worker said `finished` (its line also comes in EventLines, when it was read
    while the sweep ran)."""

    run: RunConfig
    attempt: int
    event: FinishedEvent


@dataclass(frozen=True)
class Failed:
    """The attempt ended without a result: its worker said `failed`, or died, or its job ended or
    could not be submitted. The runner's retry policy decides what follows (runner/retry.py)."""

    run: RunConfig
    attempt: int
    slot: str
    reason: str
    message: str
    stderr_tail: list[str]
    stop_requested: bool = False          # the user stopped it (executor.stop_run)
    log_tail: list[str] = field(default_factory=list)  # after a stall kill: its log's end, every thread's stack


@dataclass(frozen=True)
class Lost:
    """The attempt ended without a word from its worker, through no fault of the run (the sweep
    was stopped; its Slurm job was cancelled to stop another run packed with it). Unless its event
    log holds its result, it goes back to the queue with `message`, its retries untouched."""

    run: RunConfig
    attempt: int
    reason: str
    message: str
    fields: dict = field(default_factory=dict)   # what else its record should say (pid, slot, queue_state)


@dataclass(frozen=True)
class Placed:
    """Where a run in flight is now (its Slurm job's id, queue state, node); its status is unchanged."""

    run_id: str
    fields: dict
    requeued_after: str | None = None     # it went back to Slurm's queue after this state: counted, and said


@dataclass(frozen=True)
class Reattached:
    """A run an earlier runner left in flight that this executor follows again (a Slurm job still
    queued or running): it stays running, and in the queue until it ends."""

    run: RunConfig
    message: str
    fields: dict = field(default_factory=dict)


Outcome = Started | NotStarted | EventLines | Finished | Failed | Lost | Placed | Reattached
