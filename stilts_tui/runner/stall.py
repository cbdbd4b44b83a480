"""Runs that stopped making progress: a deadlocked data loader, a GPU that no longer answers, a
stuck filesystem. A run whose worker has said nothing (no event of its current attempt) for
longer than its stall limit is killed and retried as `stalled`.

The limit is the user's (`stall_limit_min` in the spec, `--stall-limit` on the command line) or,
by default, learnt from the sweep itself, for each model:

    max(10 min, 20 x the slowest step seen, 3 x the longest quiet spell seen, 2 x the run's dev pass)

where a step's time is the span between two `step` events over the steps between them, a quiet
spell is the span between any two events of one attempt (an evaluation, a checkpoint write), and
the dev pass is estimated from the run's dev size and its training throughput (a forward pass
of one sequence costs about a third of a training step's). Before a run's first event (loading
and tokenising, which report nothing; a Slurm job's own start) the limit, learnt or set, is
three times as long."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from stilts_tui.domain.events import Event
from stilts_tui.domain.run_config import RunConfig

FLOOR_S = 600.0
STEP_FACTOR = 20.0
GAP_FACTOR = 3.0
EVAL_FACTOR = 2.0
LOADING_FACTOR = 3.0
NEARING = 0.5  # share of its limit after which a quiet run is shown as nearing it


@dataclass
class _Watched:
    attempt: int
    since: float                       # its start, or the time it was first seen running (Slurm)
    last: float                        # its last event
    events: int = 0
    step: tuple[float, int] | None = None
    dev_sequences: int = 0
    dev_s: float = 0.0                 # estimated duration of one pass over its dev set
    where: str = "before its first event"


@dataclass
class Stalled:
    run_id: str
    quiet_s: float
    limit_s: float
    where: str

    def message(self) -> str:
        return (f"no progress for {_mins(self.quiet_s)} (stall limit {_mins(self.limit_s)}), {self.where}; "
                "killed")


@dataclass
class StallWatch:
    """What the runner knows of its runs' progress; `due` names the runs past their limit."""

    fixed_s: float | None = None                               # the user's limit; None: learnt
    runs: dict[str, _Watched] = field(default_factory=dict)
    slowest_step: dict[str, float] = field(default_factory=dict)   # model -> seconds
    longest_gap: dict[str, float] = field(default_factory=dict)    # model -> seconds
    killed: dict[str, str] = field(default_factory=dict)           # run id -> why (recorded as stalled)

    def progress(self, cfg: RunConfig, ev: Event, now: float | None = None) -> None:
        now = time.time() if now is None else now
        w = self.runs.get(cfg.run_id)
        if w is None or w.attempt != ev["attempt"]:
            w = self.runs[cfg.run_id] = _Watched(ev["attempt"], now, now)
        elif w.events:
            gap = now - w.last
            self.longest_gap[cfg.model] = max(self.longest_gap.get(cfg.model, 0.0), gap)
        w.last, w.events = now, w.events + 1
        if ev["event"] == "started":
            w.where = "after loading"
            w.dev_sequences = int(ev.get("dev_examples") or 0) * _choices(cfg.task)
        elif ev["event"] == "step":
            if w.step is not None and ev["step"] > w.step[1]:
                per_step = (now - w.step[0]) / (ev["step"] - w.step[1])
                self.slowest_step[cfg.model] = max(self.slowest_step.get(cfg.model, 0.0), per_step)
            w.step = (now, ev["step"])
            w.where = f"after step {ev['step']} of {ev['total_steps']}"
            if ev["sequences_per_s"] > 0:
                w.dev_s = w.dev_sequences / (ev["sequences_per_s"] * 3)
        elif ev["event"] in ("eval", "handoff", "resumed"):
            w.where = f"after its {ev['event']} event"
        if ev["event"] in ("finished", "failed"):
            self.runs.pop(cfg.run_id, None)

    def limit(self, cfg: RunConfig, w: _Watched | None) -> float:
        loading = LOADING_FACTOR if w is None or not w.events else 1.0
        if self.fixed_s is not None:
            return self.fixed_s * loading
        learnt = max(FLOOR_S, STEP_FACTOR * self.slowest_step.get(cfg.model, 0.0),
                     GAP_FACTOR * self.longest_gap.get(cfg.model, 0.0),
                     EVAL_FACTOR * (w.dev_s if w else 0.0))
        return learnt * loading

    def watch(self, cfg: RunConfig, attempt: int, since: float) -> _Watched:
        """The run's record, begun at `since` when the run has said nothing yet this attempt."""
        w = self.runs.get(cfg.run_id)
        if w is None or w.attempt != attempt:
            w = self.runs[cfg.run_id] = _Watched(attempt, since, since)
        return w

    def due(self, running: list[tuple[RunConfig, int, float]], now: float | None = None) -> list[Stalled]:
        """Of the runs in flight, (config, attempt, since when it runs), those past their limit."""
        now = time.time() if now is None else now
        out = []
        for cfg, attempt, since in running:
            if cfg.run_id in self.killed:
                continue  # already being killed
            w = self.watch(cfg, attempt, since)
            quiet, limit = now - w.last, self.limit(cfg, w if w.events else None)
            if quiet > limit:
                out.append(Stalled(cfg.run_id, quiet, limit, w.where))
        return out

    def report(self, running: list[tuple[RunConfig, int, float]], now: float | None = None) -> dict[str, dict]:
        """For the state file: each run in flight's quiet time and limit (`stilts status`, the app)."""
        now = time.time() if now is None else now
        out = {}
        for cfg, attempt, since in running:
            w = self.watch(cfg, attempt, since)
            out[cfg.run_id] = {"quiet_s": round(now - w.last, 1),
                               "limit_s": round(self.limit(cfg, w if w.events else None), 1)}
        return out

    def forget(self, run_id: str) -> None:
        self.runs.pop(run_id, None)


def _choices(task: str) -> int:
    from stilts_tui.errors import StiltsError
    from stilts_tui.tasks import get_task

    try:
        return get_task(task).num_choices or 1
    except StiltsError:
        return 1


def nearing(quiet_s: float | None, limit_s: float | None) -> bool:
    return bool(quiet_s is not None and limit_s and quiet_s >= NEARING * limit_s)


def _mins(s: float) -> str:
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
