"""Turning records and live event state into the strings the screens show."""

from __future__ import annotations

import math
import time
from collections.abc import Collection

from rich.text import Text
from textual.markup import escape

from stilts_tui.analysis.report import violins_for
from stilts_tui.app.data import Live
from stilts_tui.domain.records import RunStatus

SPARK = "▁▂▃▄▅▆▇█"


def esc(value: object) -> str:
    """Any user or run text (task names, messages, stderr, paths) made literal for Textual markup:
    `[demo_realfake]` or `[/x]` would otherwise vanish or raise a markup error."""
    return escape(str(value))


def violins(records: list[dict], target: str, baseline: str, width: int, color: bool,
            only: Collection[str] | None = None) -> Text:
    """A target's violins for a screen, one per intermediate: plotext's ANSI colours read as
    styles, so task names are never taken for markup."""
    return Text.from_ansi(violins_for(records, target, baseline, width=max(60, width), color=color, only=only))


def sparkline(values, width: int = 30) -> str:
    vals = [v for v in list(values)[-width:] if math.isfinite(v)]  # a hand-edited NaN has no height
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(SPARK[min(7, int((v - lo) / span * 7.999))] for v in vals)


def duration(s: float | None) -> str:
    if s is None or s < 0:
        return ""
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}" if s >= 3600 else f"{s // 60}m{s % 60:02d}"


def pair(r: dict) -> str:
    if r.get("kind") == "intermediate":
        size = f" ({r['train_size']})" if r.get("train_size") else ""
        return f"[{r.get('target')}]{size}"
    label = f"{r.get('intermediate')} → {r.get('target')}"
    return label + (" 0-shot" if r.get("kind") == "zero_shot" else "")


def run_row(r: dict, live: Live | None, now: float | None = None) -> dict:
    now = now or time.time()
    status = r.get("status", "?")
    progress = eta = loss = ""
    queued_in_slurm = status == RunStatus.RUNNING and r.get("queue_state") not in (None, "RUNNING", "COMPLETING")
    if queued_in_slurm:  # handed to Slurm, not (or no longer) running: say where it waits
        progress = str(r["queue_state"]).lower()[:9]
    elif status == RunStatus.RUNNING and live is not None and live.total_steps:
        progress = f"{live.step}/{live.total_steps}"
        loss = f"{live.loss:.3f}" if live.loss is not None else ""
        started = live.started["t"] if live.started else None
        if started and live.step:
            eta = duration((live.last_t - started) / live.step * (live.total_steps - live.step))
    elif status == RunStatus.RUNNING:
        progress = "loading"
    elif status == RunStatus.FINISHED:
        progress = "done"
    score = f"{r['score'] * 100:.1f}" if r.get("score") is not None and status == RunStatus.FINISHED else ""
    if status in (RunStatus.FAILED, RunStatus.STOPPED, RunStatus.BLOCKED) and r.get("reason"):
        progress = str(r["reason"])[:9]
    attempts = r.get("attempts") or 0
    return {"run_id": r["run_id"], "status": status + ("↻" if attempts > 1 and status != RunStatus.FINISHED else ""),
            "pair": pair(r), "lr": f"{r.get('lr', 0):g}", "batch_size": str(r.get("batch_size", "")),
            "warmup_ratio": f"{r.get('warmup_ratio', 0):g}", "seed": str(r.get("seed", "")), "progress": progress,
            "loss": loss, "score": score, "slot": r.get("slot") or "", "eta": eta,
            "_sort": {"status": status, "pair": pair(r), "score": r.get("score") or -1.0, "lr": r.get("lr") or 0.0,
                      "seed": r.get("seed") or 0, "started": r.get("started_at") or 0.0}}
