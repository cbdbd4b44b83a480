"""What the screens show, loaded off the UI thread: a snapshot of the store and the runner, and
the new lines of the event logs of runs in flight (read incrementally, so 16 runs streaming 20
events a second cost a few hundred short lines per refresh)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from weakref import WeakKeyDictionary

from stilts_tui.domain.events import Eval, Event, Failed, Handoff, Started, parse_event
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run import Run
from stilts_tui.fileio import EventLines
from stilts_tui.runner.files import RunnerFiles, runner_alive
from stilts_tui.runner.slots import Gpu
from stilts_tui.store import Follower

HISTORY = 200  # loss points kept per run for the sparkline


@dataclass
class Live:
    """What the event log of one run has said so far (its current attempt)."""

    attempt: int = 0
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    losses: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    steps: deque = field(default_factory=lambda: deque(maxlen=HISTORY))     # the step of each loss point
    lrs: deque = field(default_factory=lambda: deque(maxlen=HISTORY))       # the learning rate there
    sequences_per_s: float | None = None
    memory_mb: float | None = None
    evals: list[Eval] = field(default_factory=list)
    handoff: Handoff | None = None
    started: Started | None = None
    failed: Failed | None = None
    last_t: float = 0.0
    resumed_from: int | None = None   # the step a saved state put this attempt at
    lines: deque = field(default_factory=lambda: deque(maxlen=40))


class EventTails:
    """Per run, the byte offset read so far in its event log and what it said."""

    def __init__(self, history: int = HISTORY) -> None:
        self.readers: dict[str, EventLines[Event]] = {}
        self.live: dict[str, Live] = {}
        self.history = history  # points kept per run: a sparkline's few, or a whole curve

    def read(self, run_id: str, path: str | None, attempt: int) -> Live:
        live = self.live.get(run_id)
        if live is None or live.attempt != attempt:
            live = self.live[run_id] = Live(attempt=attempt, losses=deque(maxlen=self.history),
                                            steps=deque(maxlen=self.history), lrs=deque(maxlen=self.history))
            self.readers[run_id] = EventLines(parse_event)
        for ev in self.readers[run_id].read_file(path):
            if ev["attempt"] == attempt:
                apply_event(live, ev)
        return live


def apply_event(live: Live, ev: Event) -> None:
    live.last_t = ev["t"]
    if ev["event"] == "started":
        live.started = ev
        live.total_steps = ev.get("total_steps", 0)
        live.lines.append(f"started on {ev.get('device')} ({ev.get('precision')}), {ev.get('params', 0):,} parameters, "
                          f"{ev.get('total_steps')} steps")
    elif ev["event"] == "resumed":
        live.resumed_from = live.step = ev["step"]
        live.lines.append(f"resumed at step {ev['step']} from its saved state")
    elif ev["event"] == "handoff":
        live.handoff = ev
        live.lines.append(f"hand-off: {ev['rule']}")
    elif ev["event"] == "step":
        live.step, live.total_steps = ev["step"], ev["total_steps"]
        live.loss, live.sequences_per_s, live.memory_mb = ev["loss"], ev["sequences_per_s"], ev["memory_mb"]
        live.losses.append(ev["loss"])
        live.steps.append(ev["step"])
        live.lrs.append(ev["lr"])
        live.lines.append(f"step {live.step}/{live.total_steps} loss {ev['loss']:.4f} {ev['sequences_per_s']:.0f} seq/s")
    elif ev["event"] == "eval":
        live.evals.append(ev)
        live.lines.append(f"eval epoch {ev['epoch']}: {ev['metric']} {ev['score']:.4f}")
    elif ev["event"] == "finished":
        live.lines.append(f"finished: {ev['metrics']['metric']} {ev['metrics']['score']:.4f}")
    elif ev["event"] == "failed":
        live.failed = ev
        live.lines.append(f"failed: {ev['reason']} {ev['message']}")


def restart_note(live: Live) -> str:
    """Why a run's progress went back, said wherever it shows: a later attempt starts from its
    saved state (the step it resumed at), or from step 0 when it had none."""
    if live.attempt <= 1 or live.started is None:
        return ""
    if live.resumed_from is not None:
        return f"attempt {live.attempt}: resumed at step {live.resumed_from}"
    return f"attempt {live.attempt}: from step 0, no save"


@dataclass
class Snapshot:
    db: Path
    records: list[Run]
    state: dict | None
    runner_running: bool
    live: dict[str, Live]
    loaded_at: float
    load_s: float
    stamp: tuple = ()          # the results file's (mtime, size) when read
    version: int = 0           # bumps whenever the records changed
    gpus: list[Gpu] = field(default_factory=list)  # the NVIDIA GPUs, read at the same refresh

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            out[r.status] = out.get(r.status, 0) + 1
        return out


@dataclass
class _Follow:
    """The store follower of one app, and the typed runs it made, kept by document id: a refresh
    makes runs only for the records it changed (making 100,000 again would also wake the cycle
    collector over the whole heap, seconds at that size)."""

    follower: Follower
    runs: dict[str, Run] = field(default_factory=dict)

    def records(self) -> list[Run]:
        docs, changed = self.follower.docs(), self.follower.changed
        if changed is None:
            self.runs = {k: Run(d) for k, d in docs.items()}
        else:
            for k in changed:
                d = docs.get(k)
                if d is None:
                    self.runs.pop(k, None)
                else:
                    self.runs[k] = Run(d)
        return list(self.runs.values())


_follows: WeakKeyDictionary[EventTails, _Follow] = WeakKeyDictionary()


def load_snapshot(db: Path, tails: EventTails, previous: Snapshot | None = None) -> Snapshot:
    """The records are kept between refreshes and brought up to date from the results file's
    journal (store.Follower): a refresh while the runner writes reads the lines committed since
    the last one, not the file; the event logs of running runs are read incrementally."""
    t0 = time.perf_counter()
    records: list[Run] = []
    stamp: tuple = ()  # no results file (yet): nothing to read
    try:
        st = db.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        pass
    version = previous.version if previous else 0
    follow = _follows.get(tails)
    if follow is None or follow.follower.path != db:
        follow = _follows[tails] = _Follow(Follower(db))
    if stamp and (follow.follower.refresh() or previous is None):
        records = follow.records()
        version += 1
    elif stamp and previous is not None:
        records = previous.records
    state = RunnerFiles(db).read_state()
    live = {}
    for r in records:
        if r.record["status"] == RunStatus.RUNNING:  # the raw field: no enum made per run of 100,000
            live[r.run_id] = tails.read(r.run_id, r.events_path or None, r.attempts or 1)
    return Snapshot(db, records, state, runner_alive(state, db), live, time.time(), time.perf_counter() - t0, stamp, version)


CURVE_HISTORY = 100_000  # loss points the run detail keeps: a whole run's curve


def read_full(run: Run) -> Live:
    """Everything the event log of a run's latest attempt holds."""
    return EventTails(CURVE_HISTORY).read(run.run_id, run.events_path or None, run.attempts or 1)
