"""Runs (live): every run of the results file, the runs in flight with their progress, loss
sparkline, throughput and log tail, and the GPUs when there are NVIDIA GPUs. Attaches to
whatever runner works on the file; quitting leaves it running."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from stilts_tui.analysis.degenerate import MARK, DegenerateSources, degenerate_sources
from stilts_tui.analysis.filters import apply_filters, parse_filters
from stilts_tui.analysis.sorting import compare_runs, parse_comparison, sort_runs
from stilts_tui.app.data import Live, Snapshot, restart_note
from stilts_tui.app.format import esc, pair, run_row, sparkline
from stilts_tui.app.messages import ShowNewest
from stilts_tui.app.runs_table import RunsTable, hidden_columns
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run import Run
from stilts_tui.errors import StiltsError
from stilts_tui.runner.stall import nearing
from stilts_tui.runner.status import (
    SweepCosts,
    fmt_duration,
    run_progress,
    runner_words,
    sweep_costs,
    sweep_eta,
)

if TYPE_CHECKING:
    from stilts_tui.app.app import StiltsApp

SORTS = ("started", "status", "pair", "score", "lr", "seed")


def _short(path) -> str:
    from pathlib import Path

    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class RunsScreen(Screen):
    if TYPE_CHECKING:  # the app this screen belongs to, for the type checker
        app: StiltsApp

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="runs.filter"),
        Binding("o", "sort", "Sort", id="runs.sort"),
        Binding("x", "stop", "Stop run…", id="runs.stop"),
        Binding("R", "retry", "Retry", id="runs.retry"),
        Binding("c", "compare", "Curves", id="runs.compare"),
        Binding("p", "toggle_panel", "Side panel", id="runs.panel"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="runs.clear_filter"),
    ]

    def __init__(self) -> None:
        super().__init__(id="runs")
        self.sort_key = "started"
        self.snapshot: Snapshot | None = None
        self.row_cache: dict[str, tuple] = {}
        self.shown_key: tuple | None = None
        self.shown_rows = 0
        self.ready = False  # widgets composed: refreshes may fill them
        self.live_steps: dict[str, tuple] = {}
        self.costs: tuple[tuple, SweepCosts] = ((), SweepCosts())  # (records version, runner start) -> ETA costs
        self.degenerate: tuple[object, DegenerateSources] = (None, degenerate_sources([]))  # (records version, ...)

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-summary")
        yield Input(placeholder="filter: text, key=value (lr=1e-5), score>0.7, sort=score or sort=-lr — enter to apply",
                    id="runs-filter")
        with Horizontal(id="runs-body"):
            yield RunsTable(id="runs-table")
            with Vertical(id="runs-side"):
                yield Static("", id="runs-live")
                yield Static("", id="runs-gpus")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs-filter", Input).display = False
        self.query_one(RunsTable).focus()
        self.ready = True
        self.post_message(ShowNewest())

    def on_screen_resume(self) -> None:  # back to this mode: the newest snapshot now, not at the next refresh
        self.post_message(ShowNewest())

    # -------------------------------------------------------------- data

    def show(self, snap: Snapshot) -> None:
        """Rows are rebuilt only for runs whose record or live progress changed, and re-sorted
        only when something changed: a refresh with nothing new costs almost nothing."""
        self.snapshot = snap
        text = self.query_one("#runs-filter", Input).value.strip()
        key = (snap.version, text, self.sort_key)
        live_changed = [k for k, lv in snap.live.items() if self.live_steps.get(k) != (lv.step, len(lv.lines))]
        if key == self.shown_key and live_changed:
            # Only runs in flight moved on: update their rows in place (no rebuild, no re-sort).
            for run_id in live_changed:
                cached = self.row_cache.get(run_id)
                if cached is not None:
                    cached[1].update(run_row(cached[2], snap.live[run_id], snap.loaded_at))
            self.query_one(RunsTable).refresh()
            self.live_steps.update({k: (snap.live[k].step, len(snap.live[k].lines)) for k in live_changed})
        elif key != self.shown_key:
            records = self._filtered(snap.records, text) if text else snap.records
            sources = self._sources(snap)
            rows = []
            for r in records:
                live = snap.live.get(r.run_id)
                # flagged joins the signature: a target's row changes when its intermediate turns out degenerate
                sig = (id(r), live.step if live else None, len(live.lines) if live else None, sources.flagged(r))
                cached = self.row_cache.get(r.run_id)
                if cached is None or cached[0] != sig:
                    cached = self.row_cache[r.run_id] = (sig, run_row(r, live, snap.loaded_at, sources), r)
                rows.append(cached[1])
            if not _sort_token(text):  # sort=KEY in the filter: the rows as _filtered ordered them
                rows.sort(key=lambda row: row["_sort"][self.sort_key], reverse=self.sort_key in ("started", "score"))
            self.query_one(RunsTable).set_rows(rows)
            self.shown_key, self.shown_rows = key, len(rows)
            self.live_steps = {k: (lv.step, len(lv.lines)) for k, lv in snap.live.items()}
        rows_n = self.shown_rows
        c = snap.counts
        runner = "runner: " + runner_words(snap.state, snap.runner_running) + self._eta(snap)
        left = c.get("queued", 0) + c.get("running", 0)
        if not snap.runner_running and snap.state and left and snap.state.get("status") != "finished":
            runner += " (resume: ctrl+p, Resume the sweep)"
        self.query_one("#runs-summary", Static).update(
            f"{esc(_short(snap.db))}  {esc(runner)}  │ " + "  ".join(f"{k} {c.get(k, 0)}" for k in
                                                  ("queued", "running", "finished", "failed", "stopped", "blocked"))
            + f"  │ {rows_n} shown, sorted by {esc(_sort_token(text) or self.sort_key)}"
            + (f", filter: {esc(text)}" if text else "") + self._hidden_words()
            + self._degenerate_words(snap))
        self._live_panel(snap)
        self._gpus(snap)

    def _hidden_words(self) -> str:
        """The columns the table's width leaves out, named (they are not just gone)."""
        width = self.query_one(RunsTable).scrollable_content_region.width
        hidden = hidden_columns(width) if width else []
        return f"\ncolumns hidden at this width: {', '.join(hidden)} (p: more room)" if hidden else ""

    def on_resize(self) -> None:
        if self.ready and self.snapshot is not None:
            self.call_after_refresh(self.show, self.snapshot)  # the hidden columns change with the width

    def _sources(self, snap: Snapshot) -> DegenerateSources:
        """The degenerate intermediates of the snapshot, found again only when the records change."""
        if self.degenerate[0] != snap.version:
            self.degenerate = (snap.version, degenerate_sources(snap.records))
        return self.degenerate[1]

    def _degenerate_words(self, snap: Snapshot) -> str:
        sources = self._sources(snap)
        if not sources:
            return ""
        names = ", ".join(sorted({r.target for r in sources.by_id.values()}))
        after = sum(map(len, sources.targets.values()))
        return (f"\n[b]{MARK} degenerate intermediate: {esc(names)}[/b] ({after} run(s) start from it; "
                f"{MARK} marks them, enter says more)")

    def _eta(self, snap: Snapshot) -> str:
        """The sweep's ETA, as `stilts status` computes it; its costs are summed again only when
        the records or the runner change, not on every refresh."""
        if not snap.runner_running or not snap.state:
            return ""
        key = (snap.version, snap.state.get("started_at"), snap.state.get("pid"))
        if self.costs[0] != key:
            ids = set(snap.state.get("run_ids") or [])
            mine = [r for r in snap.records if r.run_id in ids] if ids else snap.records
            self.costs = (key, sweep_costs(mine, snap.state))
        progress = {rid: run_progress(live.step, live.total_steps) for rid, live in snap.live.items()}
        eta = sweep_eta(self.costs[1], snap.state, snap.loaded_at, progress)
        return f", ETA {fmt_duration(eta)}" if eta is not None else ", ETA after the first steps"

    def _filtered(self, records: list[Run], text: str) -> list[Run]:
        """Words match the id, status and pair; `key=value` a field; `score>0.7` compares a
        number; `sort=KEY` (`sort=-KEY`) orders by any field (the score best first)."""
        sort = _sort_token(text)
        tokens = [t for t in text.split() if not t.startswith("sort=")]
        try:
            comparisons = [c for t in tokens if (c := parse_comparison(t)) is not None]
            compared = {t for t in tokens if parse_comparison(t) is not None}
            pairs = [t for t in tokens if "=" in t and t not in compared]
            words = [t.lower() for t in tokens if "=" not in t and t not in compared]
            records = compare_runs(apply_filters(records, parse_filters(pairs)), comparisons)
            if words:
                records = [r for r in records
                           if all(w in f"{r.run_id} {r.status} {r.intermediate} {r.target}".lower() for w in words)]
            if sort:
                records = sort_runs(records, sort, option="sort=")
        except StiltsError as exc:
            self.notify(exc.problem + (f"\n{exc.fix}" if exc.fix else ""), severity="warning", markup=False)
        return records

    def _live_panel(self, snap: Snapshot) -> None:
        """Two lines per run in flight (three with its last log line when the panel is wide), so an
        80x24 terminal still shows several slots."""
        running = [r for r in snap.records if r.status == RunStatus.RUNNING]
        wide = self.app.size.width >= 110
        parts = [f"[b]in flight: {len(running)}[/b]"]
        for r in sorted(running, key=lambda r: r.slot)[:8]:
            live = snap.live.get(r.run_id)
            if live is None:
                continue
            entry = f"{esc(r.slot or '?')} {esc(pair(r))}\n  {_progress_line(live)}"
            note = restart_note(live)
            if note:
                entry += f"\n  [i]{esc(_clip(note, 32))}[/i]"
            if wide and live.lines:
                entry += f"\n  [dim]{esc(_clip(live.lines[-1], 32))}[/dim]"
            parts.append(entry + self._stall_line(snap, r.run_id, live))
        if not running:
            st = snap.state or {}
            parts.append("nothing running" + (f"\nlast sweep: {esc(st.get('name'))} ({esc(st.get('status'))})" if st else
                                              "\nplan a sweep (1) or start one with stilts run"))
        self.query_one("#runs-live", Static).update("\n".join(parts))

    @staticmethod
    def _stall_line(snap: Snapshot, run_id: str, live) -> str:
        """A run silent for over half its stall limit (runner/stall.py), before it is killed."""
        limit = ((snap.state or {}).get("stalls") or {}).get(run_id, {}).get("limit_s")
        quiet = snap.loaded_at - live.last_t if live.last_t else None
        if not snap.runner_running or not nearing(quiet, limit):
            return ""
        return f"\n  [yellow]⚠ silent {fmt_duration(quiet)} of its {fmt_duration(limit)} stall limit[/]"

    def _gpus(self, snap: Snapshot) -> None:
        gpus = snap.gpus
        panel = self.query_one("#runs-gpus", Static)
        panel.display = bool(gpus)  # hidden where there is no NVIDIA GPU
        if gpus:
            panel.update("\n".join(f"GPU{g.index} {g.util:3d}% {g.used_mb / 1024:.1f}/{g.total_mb / 1024:.0f} GB"
                                   for g in gpus))

    # -------------------------------------------------------------- actions

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#runs-filter")
    def _apply_filter(self) -> None:
        self.query_one(RunsTable).focus()
        if self.snapshot:
            self.show(self.snapshot)

    def action_clear_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.value = ""
        box.display = False
        self.query_one(RunsTable).focus()
        if self.snapshot:
            self.show(self.snapshot)

    def action_sort(self) -> None:
        self.sort_key = SORTS[(SORTS.index(self.sort_key) + 1) % len(SORTS)]
        if self.snapshot:
            self.show(self.snapshot)

    def action_compare(self) -> None:
        """The loss curves of the marked runs (space), or of the run under the cursor, overlaid."""
        from stilts_tui.app.curves_screen import CurvesScreen

        table = self.query_one(RunsTable)
        ids = list(table.marked) or ([table.current["run_id"]] if table.current else [])
        by_id = {r.run_id: r for r in (self.snapshot.records if self.snapshot else [])}
        records = [by_id[i] for i in ids if i in by_id]
        if not records:
            self.notify("mark runs with space first, then press c", severity="warning")
            return
        self.app.push_screen(CurvesScreen(records))

    def action_stop(self) -> None:
        """Stop the run under the cursor, after a confirmation that says what it costs."""
        from stilts_tui.app.dialogs import ConfirmScreen

        row = self.query_one(RunsTable).current
        if not row:
            return
        run_id = row["run_id"]
        live = self.snapshot.live.get(run_id) if self.snapshot else None
        where = f" at step {live.step}/{live.total_steps}" if live and live.total_steps else ""
        self.app.push_screen(
            ConfirmScreen(f"Stop run {run_id}{where}?",
                          "It saves its training state first when it can (between two steps); R retries it, "
                          "continuing from that state. Work since a state it could not save is lost.", "Stop"),
            lambda yes: self._stop_if(yes, run_id))

    def _stop_if(self, yes: bool | None, run_id: str) -> None:
        if yes:
            self._control("stop", run_id)

    def action_toggle_panel(self) -> None:
        """Hide the side panel to give the table the whole width (and show it again)."""
        side = self.query_one("#runs-side")
        side.display = not side.display
        if self.snapshot is not None:
            self.call_after_refresh(self.show, self.snapshot)  # the columns hidden change with it

    def action_retry(self) -> None:
        self._on_current("retry")

    def _on_current(self, what: str) -> None:
        row = self.query_one(RunsTable).current
        if row:
            self._control(what, row["run_id"])

    @work(thread=True, exclusive=True, group="control")
    def _control(self, what: str, run_id: str) -> None:
        """Stop or retry one run through runner.control (waits for the runner: off the UI thread)."""
        from stilts_tui.ops.control import retry_run, stop_run

        try:
            msg = f"run {run_id}: {stop_run(self.app.db, run_id)}" if what == "stop" else retry_run(self.app.db, run_id)
            self.app.call_from_thread(self.notify, msg, markup=False)
        except StiltsError as exc:
            self.app.call_from_thread(self.notify, exc.problem + (f"\nfix: {exc.fix}" if exc.fix else ""),
                                      severity="error", markup=False)


def _sort_token(text: str) -> str:
    """The field a `sort=KEY` token of the filter orders by ("" without one)."""
    return next((t.removeprefix("sort=") for t in reversed(text.split()) if t.startswith("sort=")), "")


def _progress_line(live: Live) -> str:
    """The bar, steps, loss and its sparkline; before the worker's first step, what it is doing
    (a bar at 0/0 with loss 0.000 would read as a broken run)."""
    if live.started is None:
        return "[dim]loading the model and data…[/dim]"
    if not live.total_steps:
        return "[dim]evaluating (no training steps)…[/dim]"
    filled = int(6 * min(live.step, live.total_steps) / live.total_steps)
    loss = f"{live.loss:.3f}" if live.loss is not None else "—"
    return f"{'█' * filled}{'░' * (6 - filled)} {live.step}/{live.total_steps} loss {loss} {sparkline(live.losses, 6)}"
