"""What the runner asks of wherever runs execute. Two implementations: `LocalExecutor` (a warm
worker process per slot of this machine, runner/local.py) and `SlurmExecutor` (one Slurm job per
run or per pack of runs, runner/slurm/executor.py); the tests drive the runner with a third,
without processes (tests/fake_executor.py).

An executor starts runs, reads what their workers say and stops them. It never sees the runner:
what it learns it returns as outcomes (runner/outcomes.py), and the runner, which keeps the queue,
the store and the retry policy, records them. What it needs to know of the queue comes as
arguments (the ready runs, in order, with their attempt numbers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.outcomes import (
    Assignment,
    EventLines,
    Failed,
    Finished,
    Outcome,
    Reattached,
    Started,
)
from stilts_tui.runner.slots import Slot

if TYPE_CHECKING:
    from stilts_tui.domain.events import Event


class Handle(Protocol):
    """One attempt of one run, in flight (a local Worker, or a run inside a Slurm job)."""

    run: RunConfig | None   # None once the attempt has ended
    attempt: int
    slot: Slot
    stop_requested: bool
    stall_killed: bool      # killed for want of progress (runner/stall.py)
    assigned_at: float | None
    ready_at: float | None

    def stderr_tail(self, lines: int = 12) -> list[str]: ...


def failure(h: Handle, reason: str, message: str, tail: list[str]) -> Failed:
    """The handle's attempt failed; after a stall kill, its log's end comes along (it holds every
    thread's stack, dumped before the kill)."""
    assert h.run is not None
    return Failed(h.run, h.attempt, h.slot.id, reason, message, tail, stop_requested=h.stop_requested,
                  log_tail=h.stderr_tail(40) if h.stall_killed else [])


def said(h: Handle, events: list[Event]) -> list[Outcome]:
    """What a handle's new event lines report: the lines of its current attempt, and its end when
    it says `finished` or `failed` (the handle is then free: later lines are strays)."""
    out: list[Outcome] = []
    lines: list[Event] = []
    for ev in events:
        if ev["event"] == "ready":
            h.ready_at = ev["t"]  # a warm worker is up
            continue
        cfg = h.run
        if cfg is None or ev["run_id"] != cfg.run_id or ev["attempt"] != h.attempt:
            continue  # a stray line from an earlier run
        lines.append(ev)
        if ev["event"] == "finished":
            out += [EventLines(cfg, h.attempt, lines, h.assigned_at), Finished(cfg, h.attempt, ev)]
        elif ev["event"] == "failed":
            out += [EventLines(cfg, h.attempt, lines, h.assigned_at),
                    failure(h, ev["reason"], ev["message"], ev.get("stderr_tail") or [])]
        else:
            continue
        lines = []
        h.run = None
    if lines and h.run is not None:  # lines are only kept while their run is in flight
        out.append(EventLines(h.run, h.attempt, lines, h.assigned_at))
    return out


def last_word(run: RunConfig, attempt: int, events: list[Event]) -> Finished | None:
    """At shutdown: the attempt's `finished` line among those not read yet (its worker got that
    far as it was being stopped); the result is kept instead of training again."""
    done = [ev for ev in events if ev["event"] == "finished" and ev["run_id"] == run.run_id and ev["attempt"] == attempt]
    return Finished(run, attempt, done[-1]) if done else None


class Executor(Protocol):
    kind: str  # "local" or "slurm": written to the runner's state file

    def reattach(self, cfg: RunConfig, rec: dict) -> Reattached | None:
        """A run an earlier runner left running: follow it again, or None to have it re-queued."""
        ...

    def warm(self, queued: int) -> bool:
        """Get ready for `queued` runs still to end (local: start a worker per slot they may use,
        let go of those none will); True when that made room for more runs."""
        ...

    def capacity(self) -> int:
        """How many runs it would take now."""
        ...

    def place(self, ready: list[Assignment]) -> list[Started]:
        """Choose where each of these runs goes (at most `capacity()`, in their order), starting
        nothing yet: the runner records them first, then calls `start`."""
        ...

    def start(self, placed: list[Started]) -> list[Outcome]:
        """Start runs placed (and recorded); outcomes of those that could not start."""
        ...

    def wait(self, timeout: float) -> list[Outcome]:
        """Up to `timeout` seconds: what the runs said, and attempts that ended without saying so."""
        ...

    def busy(self) -> set[str]:
        """Run ids in flight."""
        ...

    def in_flight(self) -> bool: ...

    def stop_run(self, run_id: str) -> None:
        """Stop one run in flight; its end is reported by `wait` (with stop_requested)."""
        ...

    def running(self) -> list[tuple[RunConfig, int, float]]:
        """Runs executing now (not waiting in a queue): (config, attempt, since when), for the
        stall watch (runner/stall.py)."""
        ...

    def kill_stalled(self, run_id: str) -> None:
        """End a run that stopped making progress; `wait` then reports its failure."""
        ...

    def reap(self) -> None:
        """Escalate stops that were asked for a while ago (terminate, then kill)."""
        ...

    def slots_state(self) -> list[dict]:
        """What runs where, for the state file (`stilts status`)."""
        ...

    def shutdown(self, cancel: bool) -> list[Outcome]:
        """Stop everything; runs in flight are reported Finished (their result was written as
        they were stopped) or Lost. `cancel`: the user stopped the sweep (Slurm jobs are cancelled
        then; otherwise they are left to run and reported nothing, to be re-attached)."""
        ...
