"""An executor without processes, for the scheduler's tests: each run follows a script (finish
with a score after some steps, fail with a reason, hang until stopped, run out of memory above a
device batch), and time is the fake's own: one `wait` is one step of every run in flight. It
implements runner/executor.py's protocol and reports outcomes exactly as the real executors do,
so the runner under test is the real one, from its queue to its store. A fused group (assignments
in a row with one `group`, runner/fusing.py) shares one slot, as on a local worker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.fusing import placement_fields
from stilts_tui.runner.outcomes import (
    Assignment,
    EventLines,
    Failed,
    Finished,
    Lost,
    Outcome,
    Started,
    in_groups,
)


@dataclass(frozen=True)
class Script:
    """What a run does, attempt by attempt (attempts counted by this fake, from 1)."""

    steps: int = 2
    score: float = 0.5
    fail: str | None = None           # the reason its attempts fail with, at their last step
    fail_times: int | None = None     # how many attempts fail (None: all)
    hang: bool = False                # says `started`, then nothing, until stopped or killed
    hang_times: int | None = None     # how many attempts hang (None: all)
    oom_above: int | None = None      # out of memory at its first step while its device batch is above this
    at_stop: str | None = None        # stopped with the sweep: "stdout" or "log" says it finished as it was stopped
    oom_fused_above: int | None = None  # out of memory at its first step while fused with more than this many trials


def finishes(score: float = 0.5, steps: int = 2, **kw) -> Script:
    return Script(steps=steps, score=score, **kw)


def fails(reason: str, times: int | None = None, **kw) -> Script:
    return Script(fail=reason, fail_times=times, **kw)


def hangs(times: int | None = None, **kw) -> Script:
    return Script(hang=True, hang_times=times, **kw)


def oom_above(device_batch: int, **kw) -> Script:
    return Script(oom_above=device_batch, **kw)


@dataclass
class _Attempt:
    run: RunConfig
    attempt: int
    slot: str
    try_no: int
    since: float
    step: int = -1                    # -1: not started yet
    stop_requested: bool = False
    stall_killed: bool = False
    group_size: int = 1


@dataclass
class FakeExecutor:
    """`slots` runs at once; `scripts` by run id (the others: `default`). `when` holds actions the
    test takes once, at the first `wait` where their condition holds (a request dropped into the
    control folder, as `stilts stop` would)."""

    slots: int = 1
    scripts: dict[str, Script] = field(default_factory=dict)
    default: Script = field(default_factory=Script)
    kind: str = "fake"
    running_now: dict[str, _Attempt] = field(default_factory=dict)
    tries: dict[str, int] = field(default_factory=dict)
    starts: list[tuple[str, int]] = field(default_factory=list)     # (run id, attempt), in the order started
    groups: list[list[str]] = field(default_factory=list)            # the run ids started together on one slot
    most_at_once: int = 0
    reported: list[Outcome] = field(default_factory=list)
    actions: list[tuple[Callable[[FakeExecutor], bool], Callable[[], object]]] = field(default_factory=list)

    def when(self, condition: Callable[[FakeExecutor], bool], action: Callable[[], object]) -> None:
        self.actions.append((condition, action))

    def ended(self, run_id: str) -> list[Outcome]:
        """What this fake reported as the ends of a run's attempts."""
        return [o for o in self.reported if isinstance(o, (Finished, Failed, Lost)) and o.run.run_id == run_id]

    # ---------------------------------------------------------------- the protocol

    def reattach(self, cfg: RunConfig, rec: dict) -> None:
        return None

    def warm(self, queued: int) -> bool:
        return False

    def capacity(self) -> int:
        return self.slots - len({a.slot for a in self.running_now.values()})

    def place(self, ready: list[Assignment]) -> list[Started]:
        used = {a.slot for a in self.running_now.values()}
        free = [f"fake{i}" for i in range(self.slots) if f"fake{i}" not in used]
        groups = in_groups(ready)
        return [Started(a.run, a.attempt, slot=slot, device="cpu",
                        where={"device_name": "cpu", "warm_start": True, **placement_fields([x.run for x in group])})
                for slot, group in zip(free, groups, strict=False) for a in group]

    def start(self, placed: list[Started]) -> list[Outcome]:
        by_slot: dict[str, list[str]] = {}
        for s in placed:
            by_slot.setdefault(str(s.slot), []).append(s.run.run_id)
        self.groups += list(by_slot.values())
        for s in placed:
            run_id = s.run.run_id
            self.tries[run_id] = self.tries.get(run_id, 0) + 1
            self.running_now[run_id] = _Attempt(s.run, s.attempt, str(s.slot), self.tries[run_id], time.time(),
                                                group_size=len(by_slot[str(s.slot)]))
            self.starts.append((run_id, s.attempt))
        self.most_at_once = max(self.most_at_once, len(self.running_now))
        return []

    def wait(self, timeout: float) -> list[Outcome]:
        for i, (condition, action) in enumerate(self.actions):
            if condition(self):
                del self.actions[i]
                action()
                break
        out: list[Outcome] = []
        for a in list(self.running_now.values()):
            out += self._step(a)
        if not out:
            time.sleep(timeout)  # only hanging runs: let the runner's clock (stall limits) move on
        self.reported += out
        return out

    def busy(self) -> set[str]:
        return set(self.running_now)

    def in_flight(self) -> bool:
        return bool(self.running_now)

    def stop_run(self, run_id: str) -> None:
        if run_id in self.running_now:
            self.running_now[run_id].stop_requested = True

    def running(self) -> list[tuple[RunConfig, int, float]]:
        return [(a.run, a.attempt, a.since) for a in self.running_now.values() if a.step >= 0]

    def kill_stalled(self, run_id: str) -> None:
        if run_id in self.running_now:
            self.running_now[run_id].stall_killed = True

    def reap(self) -> None:
        return None

    def slots_state(self) -> list[dict]:
        return [{"id": a.slot, "device": "cpu", "threads": 1, "worker_pid": None, "run_id": run_id, "since": a.since}
                for run_id, a in self.running_now.items()]

    def shutdown(self, cancel: bool) -> list[Outcome]:
        self.shutdown_cancel = cancel  # what the runner asked: cancel (stop --all, Ctrl-C) or leave to run
        out: list[Outcome] = []
        for a in self.running_now.values():
            script = self.scripts.get(a.run.run_id, self.default)
            done = self._event(a, "finished", metrics=self._metrics(script), wall_s=1.0)
            if script.at_stop == "stdout":
                out.append(Finished(a.run, a.attempt, done))  # type: ignore[arg-type]
                continue
            if script.at_stop == "log":
                Path(a.run.events_path).parent.mkdir(parents=True, exist_ok=True)
                with open(a.run.events_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(done) + "\n")
            out.append(Lost(a.run, a.attempt, "stopped",
                            "the sweep was stopped while this run was in flight; stilts resume runs it",
                            {"pid": None, "slot": None}))
        self.running_now.clear()
        self.reported += out
        return out

    # ---------------------------------------------------------------- the scripts

    def _event(self, a: _Attempt, kind: str, **fields) -> dict:
        return {"v": 1, "event": kind, "run_id": a.run.run_id, "attempt": a.attempt, "t": time.time(), **fields}

    @staticmethod
    def _metrics(script: Script) -> dict:
        return {"score": script.score, "metric": "accuracy", "n": 8, "final_loss": 0.5}

    def _step(self, a: _Attempt) -> list[Outcome]:
        script = self.scripts.get(a.run.run_id, self.default)
        if a.stop_requested or a.stall_killed:
            return self._end(a, Failed(a.run, a.attempt, a.slot, "killed", "worker exited with signal 15 before the run "
                                       "ended", ["Terminated"], stop_requested=a.stop_requested,
                                       log_tail=["Thread 0x1 (most recent call first):", "  File hang"]
                                       if a.stall_killed else []))
        a.step += 1
        micro, accumulation = a.run.micro_batch()
        if a.step == 0:
            return [self._lines(a, self._event(a, "started", total_steps=script.steps, train_examples=8,
                                               micro_batch=micro, accumulation=accumulation, dev_examples=4))]
        if script.hang and (script.hang_times is None or a.try_no <= script.hang_times):
            a.step -= 1  # no progress
            return []
        if script.oom_above is not None and micro > script.oom_above:
            return self._fail(a, "oom", f"CUDA out of memory with a device batch of {micro}")
        if script.oom_fused_above is not None and a.group_size > script.oom_fused_above:
            return self._fail(a, "oom", f"CUDA out of memory fused with {a.group_size} trials")
        step = self._event(a, "step", step=a.step, total_steps=script.steps, epoch=a.step / script.steps, loss=1.0,
                           lr=1e-3, tokens_per_s=100.0, sequences_per_s=10.0, memory_mb=None)
        if a.step < script.steps:
            return [self._lines(a, step)]
        if script.fail and (script.fail_times is None or a.try_no <= script.fail_times):
            return self._fail(a, script.fail, f"the script says {script.fail}")
        if a.run.kind == "intermediate":  # what its targets start from
            (Path(a.run.output_dir) / "checkpoint").mkdir(parents=True, exist_ok=True)
        done = self._event(a, "finished", metrics=self._metrics(script), wall_s=float(script.steps))
        return [self._lines(a, step, done), *self._end(a, Finished(a.run, a.attempt, done))]  # type: ignore[arg-type]

    def _fail(self, a: _Attempt, reason: str, message: str) -> list[Outcome]:
        failed = self._event(a, "failed", reason=reason, message=message)
        return [self._lines(a, failed), *self._end(a, Failed(a.run, a.attempt, a.slot, reason, message, []))]

    def _lines(self, a: _Attempt, *events: dict) -> EventLines:
        return EventLines(a.run, a.attempt, list(events), a.since)  # type: ignore[arg-type]

    def _end(self, a: _Attempt, outcome: Outcome) -> list[Outcome]:
        del self.running_now[a.run.run_id]
        return [outcome]
