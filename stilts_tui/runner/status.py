"""Where a sweep stands, from the store and the runner's state file (read-only: safe while the
runner writes)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stilts_tui.analysis.degenerate import degenerate_sources
from stilts_tui.diskspace import fmt_bytes, free_bytes
from stilts_tui.domain.events import Event, parse_event
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run import Run, runs_of
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.estimate import cost
from stilts_tui.runner.files import RunnerFiles, runner_alive
from stilts_tui.runner.stall import nearing
from stilts_tui.runner.state_file import damage_message
from stilts_tui.store import Store


def newest_events(events_path: str | None, attempt: int) -> list[Event]:
    """This attempt's events at the end of the run's event log, newest first."""
    if not events_path:
        return []
    try:
        with open(events_path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16384))
            lines = fh.read().splitlines()
    except OSError:
        return []
    return [ev for ev in map(parse_event, reversed(lines)) if ev and ev["attempt"] == attempt]


@dataclass
class SweepCosts:
    """The relative costs (runner/estimate.py cost) of this runner's runs: finished, queued, and
    each run in flight, so runs of different sizes weigh as they should."""

    done: float = 0.0
    queued: float = 0.0
    running: dict[str, float] = field(default_factory=dict)


def sweep_costs(records: Iterable[Run | Mapping[str, Any]], state: dict) -> SweepCosts:
    started = state.get("started_at") or 0
    out = SweepCosts()
    for r in runs_of(records):
        if not r.config:
            continue
        if r.status == RunStatus.FINISHED and (r.finished_at or 0) >= started:
            out.done += cost(RunConfig.from_dict(dict(r.config)))
        elif r.status == RunStatus.QUEUED:
            out.queued += cost(RunConfig.from_dict(dict(r.config)))
        elif r.status == RunStatus.RUNNING:
            out.running[r.run_id] = cost(RunConfig.from_dict(dict(r.config)))
    return out


def sweep_eta(costs: SweepCosts, state: dict, now: float, progress: dict[str, float] | None = None) -> float | None:
    """Seconds left: the time this runner has taken so far, scaled by the work left over the work
    done. ``progress`` (run id → fraction of its steps done) credits the runs in flight with the
    work they did: without it, the time they took counts as if it had done nothing and the ETA
    of a sweep of a few long runs comes out several times too long. None before any work is
    measured."""
    progress = progress or {}
    partial = sum(c * min(1.0, max(0.0, progress.get(rid, 0.0))) for rid, c in costs.running.items())
    done = costs.done + partial
    left = costs.queued + sum(costs.running.values()) - partial
    started = state.get("started_at")
    return (now - started) * left / done if started and done > 0 else None


def run_progress(step: int | None, total_steps: int | None) -> float:
    return step / total_steps if step and total_steps else 0.0


def _running(r: Run, stall: dict, now: float) -> dict:
    """A running run as `stilts status` reports it: where it runs and how far it is."""
    events = newest_events(r.events_path or None, r.attempts or 1)
    ev: dict = dict(next((e for e in events if e["event"] in ("step", "started")), None) or {})
    return {"run_id": r.run_id, "kind": r.kind, "intermediate": r.intermediate, "target": r.target,
            "slot": r.slot or None, "device": r.device or None, "attempt": r.attempts, "step": ev.get("step", 0),
            "total_steps": ev.get("total_steps") or r.value("total_steps"), "loss": ev.get("loss"),
            "elapsed_s": now - (r.started_at or now), "queue_state": r.queue_state or None,
            "slurm_job": r.slurm_job or None, "requeues": r.requeues, "fused_with": list(r.fused_with),
            # quiet since its last event (its log is fresher than the state file), and its limit
            "quiet_s": now - events[0]["t"] if events else stall.get("quiet_s"), "limit_s": stall.get("limit_s")}


def sweep_status(db: Path) -> dict:
    files = RunnerFiles(db)
    state = files.read_state() or {}
    with Store(db) as store:
        runs = runs_of(store.runs())
    ids = set(state.get("run_ids") or [r.run_id for r in runs])
    mine = [r for r in runs if r.run_id in ids]
    counts = Counter(str(r.status) for r in mine)
    now = time.time()
    stalls = state.get("stalls") or {}
    running = [_running(r, stalls.get(r.run_id) or {}, now) for r in mine if r.status == RunStatus.RUNNING]
    alive = runner_alive(state, db)
    progress = {r["run_id"]: run_progress(r["step"], r["total_steps"]) for r in running}
    eta = sweep_eta(sweep_costs(mine, state), state, now, progress) if alive else None
    by_slot = Counter(r.slot or None for r in mine if r.status == RunStatus.RUNNING)
    runner = "running" if alive else (state.get("status") if state.get("status") in ("finished", "stopped", "crashed")
                                      else ("unknown" if state.get("damaged") else "died" if state else "none"))
    left = counts.get("queued", 0) + counts.get("running", 0)
    return {"db": str(db), "name": state.get("name"), "runner_pid": state.get("pid"), "runner": runner,
            "stop_reason": state.get("stop_reason"), "ended_at": state.get("ended_at"), "error": state.get("error"),
            "disk_full": state.get("disk_full"), "last_heard_at": state.get("heartbeat"),
            "resume": f"stilts resume --db {db}" if runner in ("stopped", "died", "crashed") and left else None,
            "free_bytes": free_bytes(db.parent),
            "heartbeat_age_s": now - state["heartbeat"] if state.get("heartbeat") else None,
            "runs": len(mine), "counts": dict(counts), "running": running, "eta_s": eta,
            "slots": [s | {"runs_now": by_slot.get(s["id"], 0)} for s in state.get("slots", [])], "log": str(files.log),
            "state_damaged": damage_message(files.state, state), "degenerate": _degenerate(runs, ids)}


def _degenerate(runs: list[Run], ids: set[str]) -> list[dict]:
    """The degenerate intermediate runs this sweep has or trains from, and its runs that start
    from each (analysis/degenerate.py): an earlier sweep's intermediate counts when this one's
    targets start from it."""
    sources = degenerate_sources(runs)
    out = []
    for rid, r in sorted(sources.by_id.items()):
        targets = [t.run_id for t in sources.targets.get(rid, []) if t.run_id in ids]
        if rid in ids or targets:
            out.append({"run_id": rid, "task": r.target, "note": sources.note(r), "targets": targets})
    return out


STOP_REASONS = {"hangup": "its terminal closed (SIGHUP: a dropped SSH session?)", "interrupt": "Ctrl-C",
                "terminated": "terminated (SIGTERM)", "stop_requested": "stilts stop --all",
                "disk_full": "the disk is full", "error": "an error"}


def runner_line(st: dict) -> str:
    """The runner's state in words: running, finished, stopped (why, when), died (when last heard of)."""
    r = st["runner"]
    if r == "running":
        line = f"runner: running (pid {st['runner_pid']})"
    elif r == "stopped":
        line = f"runner: stopped {_when(st.get('ended_at'))}: {STOP_REASONS.get(st.get('stop_reason') or '', 'stopped')}"
    elif r == "crashed":
        line = f"runner: crashed {_when(st.get('ended_at'))}: {st.get('error') or '?'}"
    elif r == "died":
        line = f"runner: died (pid {st['runner_pid']}, last heard of {_when(st.get('last_heard_at'))})"
    else:
        line = f"runner: {r}"
    if st.get("resume"):
        line += f"\n  continue it with: {st['resume']}"
    return line


def runner_words(state: dict | None, alive: bool) -> str:
    """The runner's state in a few words, for the app's summary line."""
    if alive:
        return "running"
    if not state:
        return "none"
    status = state.get("status")
    if state.get("damaged") and status is None:
        return "unknown: its state file is damaged (stilts status says how)"
    if status == "stopped":
        return f"stopped: {STOP_REASONS.get(state.get('stop_reason') or '', 'stopped')}"
    if status in ("finished", "crashed"):
        return str(status)
    return f"died ({fmt_duration(time.time() - state['heartbeat'])} ago)" if state.get("heartbeat") else "died"


def _when(t: float | None) -> str:
    if not t:
        return "at an unknown time"
    return f"at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t))} ({fmt_duration(time.time() - t)} ago)"


def fmt_duration(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def ended_summary(db: Path, name: str, runs: Iterable[Run | Mapping[str, Any]], wall_s: float | None) -> str:
    """What a sweep that ended did: its wall time, its runs by outcome, where the failures and the
    results are read (the CLI after a foreground sweep, the app when its runner ends)."""
    counts = Counter(str(r.status) for r in runs_of(runs))
    shown = [f"{counts.get(k, 0)} {k}" for k in ("finished", "failed", "blocked", "stopped", "queued")
             if counts.get(k) or k == "finished"]
    lines = [f"sweep {name or '?'} ended after {fmt_duration(wall_s)}: {', '.join(shown)}"]
    if counts.get("failed") or counts.get("blocked"):
        lines.append(f"  why they failed: stilts results --runs --filter status=failed --db {db}")
    lines.append(f"  results: stilts results --db {db}")
    return "\n".join(lines)


def render_status(st: dict) -> str:
    c = st["counts"]
    lines = [f"sweep {st['name'] or '?'}  ({st['db']})", runner_line(st)]
    if st.get("state_damaged"):
        lines.append(f"  warning: {st['state_damaged']}")
    full = st.get("disk_full")
    if full:
        lines.append(f"  {full.get('message')}; now {fmt_bytes(st.get('free_bytes'))} free on {full.get('mount')}")
    lines += ["runs: " + "  ".join(f"{k} {c.get(k, 0)}" for k in ("queued", "running", "finished", "failed", "stopped", "blocked"))
             + f"  of {st['runs']}" + (f"   ETA {fmt_duration(st['eta_s'])}" if st["eta_s"] is not None else "")]
    queue = Counter(r["queue_state"] for r in st["running"] if r.get("queue_state"))
    if queue:
        lines.append("Slurm jobs: " + "  ".join(f"{k} {n}" for k, n in sorted(queue.items())))
    elif st["slots"]:
        devices = Counter(s["device"] for s in st["slots"])
        lines.append("slots: " + ", ".join(f"{d} ×{n}" for d, n in devices.items()))
    for r in sorted(st["running"], key=lambda r: r["slot"] or ""):
        total = r["total_steps"] or 0
        prog = f"step {r['step']}/{total}" if total else "loading"
        if r.get("queue_state") and r["queue_state"] != "RUNNING":
            prog = r["queue_state"]  # still in (or back in) Slurm's queue
        elif r.get("queue_state") and not total:
            prog = "starting"
        if r.get("requeues"):
            prog += f" (requeued {r['requeues']}×)"
        loss = f" loss {r['loss']:.3f}" if r["loss"] is not None else ""
        pair = r["target"] if r["kind"] == "intermediate" else f"{r['intermediate']} → {r['target']}"
        quiet = f"  ⚠ silent {fmt_duration(r['quiet_s'])} of its {fmt_duration(r['limit_s'])} stall limit" \
            if st["runner"] == "running" and nearing(r.get("quiet_s"), r.get("limit_s")) else ""
        lines.append(f"  {r['slot'] or '?':<9} {r['run_id']}  {pair:<36} {prog}{loss}  {fmt_duration(r['elapsed_s'])}"
                     + (f"  (attempt {r['attempt']})" if (r["attempt"] or 1) > 1 else "")
                     + (f"  fused with {len(r['fused_with'])}" if r.get("fused_with") else "") + quiet)
    for d in st.get("degenerate") or []:
        lines.append(f"⚠ run {d['run_id']}: {d['note']}" + (f": {', '.join(d['targets'][:6])}"
                                                           + (", …" if len(d["targets"]) > 6 else "") if d["targets"] else ""))
    lines.append(f"log: {st['log']}")
    return "\n".join(lines) + "\n"
