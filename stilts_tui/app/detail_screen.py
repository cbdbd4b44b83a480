"""One run: its full config, the hand-off report, its loss (or learning-rate) curve drawn through
plotext, growing while the run trains, its evaluations, the log, and why it failed."""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from stilts_tui.analysis.curves import render_curves
from stilts_tui.analysis.degenerate import MARK
from stilts_tui.app.data import Live, read_full, restart_note
from stilts_tui.app.format import esc, pair
from stilts_tui.app.live_curves import LiveCurvesScreen, run_curve
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run import Run


def detail_head(rec: Run, live: Live, degenerate: str = "") -> str:
    """Markup: every value that came from a user or a run goes through `esc`. `degenerate` says
    that the run is, or starts from, a degenerate intermediate (analysis/degenerate.py)."""
    lines = [f"[b]run {esc(rec.run_id)}[/b]  {esc(pair(rec))}  status {esc(rec.status)}  attempts {esc(rec.attempts)}"]
    if degenerate:
        lines.append(f"[b reverse]{MARK} {esc(degenerate)}[/]")
    if restart_note(live):  # why its progress went back
        lines.append(f"[i]{esc(restart_note(live))}[/i]")
    if rec.score is not None:
        lines.append(f"score: {esc(rec.metric)} {rec.score * 100:.2f}  wall {rec.wall_s or 0:.1f} s")
    if rec.fused_with:  # one fused model for several runs' trials (README, "Fused trials")
        lines.append(esc(f"trained fused with {len(rec.fused_with)} other run(s): {', '.join(rec.fused_with)}"))
    elif rec.fused_note:
        lines.append(esc(f"trained alone although fusion was asked for: {rec.fused_note}"))
    if rec.executor == "slurm":
        lines.append(esc(f"Slurm job {rec.slurm_job or '(submitting)'}: {rec.queue_state or '?'}"
                         + (f" on {rec.device}" if rec.device not in ("", "slurm") else "")
                         + (f", requeued {rec.requeues}×" if rec.requeues else "")))
    if rec.status in (RunStatus.FAILED, RunStatus.STOPPED, RunStatus.BLOCKED, RunStatus.QUEUED) and rec.reason:
        lines.append(f"[b]reason:[/b] {esc(rec.reason)}: {esc(rec.message)}")
    for f in rec.failures:
        lines.append(esc(f"  attempt {f.attempt}: {f.reason or None} — {f.message or None} ({f.slot or None})"))
    if rec.stderr_tail:
        lines += ["[b]stderr tail:[/b]", *[f"  {esc(x)}" for x in rec.stderr_tail[-8:]]]
    if live.handoff:
        h = live.handoff
        lines += ["[b]hand-off:[/b] " + esc(h["rule"]),
                  esc(f"  kept {', '.join(h.get('kept', []))}; re-initialised {', '.join(h.get('reinitialised', [])) or '—'}")]
    return "\n".join(lines)


def detail_tail(rec: Run, live: Live) -> str:
    lines = []
    if live.evals:
        lines.append("[b]evals:[/b] " + ", ".join(f"epoch {esc(e['epoch'])} (step {esc(e['step'])}): "
                                                  f"{e['score'] * 100:.1f}" for e in live.evals))
    lines += ["[b]log:[/b]", *[f"  {esc(x)}" for x in list(live.lines)[-15:]]]
    lines += ["[b]config:[/b]", esc(json.dumps(dict(rec.config), indent=2, sort_keys=True))]
    return "\n".join(lines)


def detail_text(rec: Run, degenerate: str = "") -> str:
    """Everything the detail says of a run but its chart, from the whole event log (markup)."""
    live = read_full(rec)
    return detail_head(rec, live, degenerate) + "\n" + detail_tail(rec, live)


class RunDetailScreen(LiveCurvesScreen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="detail.back"),
                Binding("l", "toggle_curve", "Loss / LR", id="detail.curve")]

    def __init__(self, record: Run, degenerate: str = "") -> None:
        super().__init__([record], "detail")
        self.degenerate = degenerate  # what analysis/degenerate.py says of the run ("" when nothing)

    @property
    def record(self) -> Run:
        return self.records[0]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Static("", id="detail-head", markup=True)
            yield Static("", id="detail-chart", markup=False)
            yield Static("", id="detail-tail", markup=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-body").focus()
        super().on_mount()

    def _redraw(self) -> None:
        rec = self.record
        live = self.live(rec)
        self.query_one("#detail-head", Static).update(detail_head(rec, live, self.degenerate))
        width = max(40, min(self.size.width - 4, 120)) if self.size.width else 80
        title = (f"{'training loss' if self.curve == 'loss' else 'learning rate'} by step "
                 f"({len(live.steps)} points; l: {'learning rate' if self.curve == 'loss' else 'loss'})")
        chart = render_curves([run_curve(live, self.curve)], title, "loss" if self.curve == "loss" else "lr",
                              width=width, height=14, color=not self.app.no_color)
        self.query_one("#detail-chart", Static).update(Text.from_ansi(chart))
        self.query_one("#detail-tail", Static).update(detail_tail(rec, live))
