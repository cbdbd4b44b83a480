"""One run: its full config, the hand-off report, loss and eval curves, the log, and why it failed."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from stilts_tui.app.data import read_full
from stilts_tui.app.format import esc, pair, sparkline
from stilts_tui.records import RunStatus


def detail_text(rec: dict) -> str:
    """Markup: every value that came from a user or a run goes through `esc`."""
    live = read_full(rec)
    lines = [f"[b]run {esc(rec['run_id'])}[/b]  {esc(pair(rec))}  status {esc(rec.get('status'))}  "
             f"attempts {esc(rec.get('attempts', 0))}"]
    if rec.get("score") is not None:
        lines.append(f"score: {esc(rec.get('metric'))} {rec['score'] * 100:.2f}  wall {rec.get('wall_s') or 0:.1f} s")
    if rec.get("executor") == "slurm":
        lines.append(esc(f"Slurm job {rec.get('slurm_job') or '(submitting)'}: {rec.get('queue_state') or '?'}"
                         + (f" on {rec['device']}" if rec.get("device") not in (None, "slurm") else "")
                         + (f", requeued {rec['requeues']}×" if rec.get("requeues") else "")))
    if rec.get("status") in (RunStatus.FAILED, RunStatus.STOPPED, RunStatus.BLOCKED, RunStatus.QUEUED) and rec.get("reason"):
        lines.append(f"[b]reason:[/b] {esc(rec.get('reason'))}: {esc(rec.get('message') or '')}")
    for f in rec.get("failures", []):
        lines.append(esc(f"  attempt {f.get('attempt')}: {f.get('reason')} — {f.get('message')} ({f.get('slot')})"))
    if rec.get("stderr_tail"):
        lines += ["[b]stderr tail:[/b]", *[f"  {esc(x)}" for x in rec["stderr_tail"][-8:]]]
    if live.handoff:
        h = live.handoff
        lines += ["[b]hand-off:[/b] " + esc(h["rule"]),
                  esc(f"  kept {', '.join(h.get('kept', []))}; re-initialised {', '.join(h.get('reinitialised', [])) or '—'}")]
    if live.losses:
        lines += [f"[b]loss[/b] ({len(live.losses)} points, last {live.losses[-1]:.4f})", "  " + sparkline(live.losses, 60)]
    if live.evals:
        lines.append("[b]evals:[/b] " + ", ".join(f"epoch {esc(e['epoch'])}: {e['score'] * 100:.1f}"
                                                  for e in live.evals))
    lines += ["[b]log:[/b]", *[f"  {esc(x)}" for x in list(live.lines)[-15:]]]
    lines += ["[b]config:[/b]", esc(json.dumps(rec.get("config", {}), indent=2, sort_keys=True))]
    return "\n".join(lines)


class RunDetailScreen(Screen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="detail.back")]

    def __init__(self, record: dict) -> None:
        super().__init__(id="detail")
        self.record = record

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Static(detail_text(self.record), id="detail-text", markup=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-body").focus()
