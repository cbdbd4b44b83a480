"""Turning records and live event state into the strings the screens show."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Collection

from rich.text import Text
from textual.markup import escape

from stilts_tui.analysis.degenerate import MARK, DegenerateSources
from stilts_tui.analysis.report import violins_for
from stilts_tui.app.data import Live
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run import Run

SPARK = "▁▂▃▄▅▆▇█"


def esc(value: object) -> str:
    """Any user or run text (task names, messages, stderr, paths) made literal for Textual markup:
    `[demo_realfake]` or `[/x]` would otherwise vanish or raise a markup error."""
    return escape(str(value))


# The fixes the operations give name the CLI's options; in the app the same thing is a field or
# another command line. Longest first, so a phrase is replaced whole.
_APP_WORDS = (
    (re.compile(r",? or set data_dir in the spec| \(or data_dir in the spec\)| \(the folder holding its files\)"), ""),
    (re.compile(r"(?:then )?pass --data-dir(?: DIR)?(?: pointing at an existing folder)?"), "set the data dir field to the folder"),
    (re.compile(r"\s*\(--no-preflight starts it anyway\)"), ""),
    (re.compile(r"give --db a results file on a larger disk"),
     "open the app on a results file on a larger disk (stilts tui --db PATH)"),
    (re.compile(r"--data-dir"), "the data dir field"),
)


def app_words(text: str) -> str:
    """A message of the operations (spec checks, the launch's preflight) in the app's words:
    the Plan screen's fields, not the CLI's options."""
    for pattern, words in _APP_WORDS:
        text = pattern.sub(words, text)
    return text


def violins(records: list[Run], target: str, baseline: str, width: int, color: bool,
            only: Collection[str] | None = None, height: int = 14) -> Text:
    """A target's violins for a screen, one per intermediate, using the screen's width and the
    `height` given (two violins share the whole width): plotext's ANSI colours read
    as styles, so task names are never taken for markup."""
    return Text.from_ansi(violins_for(records, target, baseline, width=max(60, width), height=max(8, height),
                                      color=color, only=only, max_column=max(24, (width - 8) // 2)))


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


def pair(r: Run) -> str:
    if r.kind == "intermediate":
        size = f" ({r.train_size})" if r.train_size else ""
        return f"[{r.target}]{size}"
    return f"{r.intermediate} → {r.target}" + (" 0-shot" if r.kind == "zero_shot" else "")


def _shown(v: object) -> str:
    return "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def run_row(r: Run, live: Live | None, now: float | None = None, sources: DegenerateSources | None = None) -> dict:
    """A runs-table row; `sources` marks degenerate intermediates and the runs trained from them (⚠)."""
    now = now or time.time()
    status = r.status
    progress = eta = loss = ""
    queued_in_slurm = status == RunStatus.RUNNING and r.queue_state not in ("", "RUNNING", "COMPLETING")
    if queued_in_slurm:  # handed to Slurm, not (or no longer) running: say where it waits
        progress = r.queue_state.lower()[:9]
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
    score = f"{r.score * 100:.1f}" if r.finished and r.score is not None else ""
    if status in (RunStatus.FAILED, RunStatus.STOPPED, RunStatus.BLOCKED) and r.reason:
        progress = r.reason[:9]
    return {"run_id": r.run_id, "status": status + ("↻" if r.attempts > 1 and status != RunStatus.FINISHED else ""),
            "pair": (MARK if sources is not None and sources.flagged(r) else "") + pair(r), "lr": _shown(r.lr or 0.0), "batch_size": _shown(r.batch_size),
            "warmup_ratio": _shown(r.warmup_ratio or 0.0), "seed": _shown(r.seed), "progress": progress,
            "loss": loss, "score": score, "slot": r.slot + (f" ⊕{len(r.fused_with) + 1}" if r.fused_with else ""),
            "eta": eta,
            "_sort": {"status": status, "pair": pair(r), "score": r.score or -1.0, "lr": r.lr or 0.0,
                      "seed": r.seed or 0, "started": r.started_at or 0.0}}
