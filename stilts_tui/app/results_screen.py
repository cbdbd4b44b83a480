"""Results: the pair table with the statistics, the violins of a target, the paper tables, filters
and exports — all from the analysis library (nothing is computed here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, Static

from stilts_tui.analysis.filters import apply_filters, parse_filters
from stilts_tui.analysis.report import render_results, violins_for
from stilts_tui.app.format import esc
from stilts_tui.errors import StiltsError
from stilts_tui.records import RunStatus

if TYPE_CHECKING:
    from stilts_tui.app.app import StiltsApp

VIEWS = ("pairs", "violins", "table2", "table3", "table4", "figure3")
# From this many columns the pair table and the selected target's violins share the screen (table
# above, violins below), so both are read without switching views; narrower, they are two views.
WIDE = 110


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    """Ask where to write the current view, and in which format."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel")]

    def __init__(self, default: str) -> None:
        super().__init__(id="export")
        self.default = default

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="export-box"):
            yield Label("Export the current table: file name (.csv, .md or .tex decides the format)")
            yield Input(value=self.default, id="export-path")
            yield Label("enter to write, escape to cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        fmt = {".csv": "csv", ".md": "markdown", ".tex": "latex", ".json": "json"}.get(Path(path).suffix)
        if not fmt:
            self.notify("the file name must end in .csv, .md, .tex or .json", severity="error")
            return
        self.dismiss((path, fmt))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ResultsScreen(Screen):
    if TYPE_CHECKING:  # the app this screen belongs to, for the type checker
        app: StiltsApp

    BINDINGS = [
        Binding("v", "next_view", "View", id="results.view"),
        Binding("t", "next_target", "Target", id="results.target"),
        Binding("slash", "filter", "Filter", id="results.filter"),
        Binding("e", "export", "Export", id="results.export"),
        Binding("b", "baseline", "Baseline", id="results.baseline"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="results.clear_filter"),
    ]

    def __init__(self) -> None:
        super().__init__(id="results")
        self.view = "pairs"
        self.target: str | None = None
        self.baseline = "none"
        self.records: list[dict] = []
        self.last_key: tuple | None = None
        self.ready = False  # widgets composed: refreshes may fill them

    def compose(self) -> ComposeResult:
        yield Static("", id="results-summary")
        yield Input(placeholder="filter key=value … (lr=1e-5 seed=42) — enter to apply", id="results-filter")
        with VerticalScroll(id="results-body"):
            yield Static("", id="results-view", markup=False)  # tables hold task names: literal text
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#results-filter", Input).display = False
        self.query_one("#results-body").focus()
        self.ready = True
        if self.app.snapshot is not None:
            self.show(self.app.snapshot)

    def on_resize(self) -> None:
        if self.ready and self.app.snapshot is not None:
            self.show(self.app.snapshot, force=True)  # the wide layout comes and goes with the width

    def targets(self) -> list[str]:
        return sorted({r["target"] for r in self.records if r.get("kind") == "target"})

    def show(self, snap, force: bool = False) -> None:
        finished = sum(r.get("status") == RunStatus.FINISHED for r in snap.records)
        text = self.query_one("#results-filter", Input).value.strip()
        key = (len(snap.records), finished, text, self.view, self.target, self.baseline)
        if key == self.last_key and not force:
            return  # nothing new finished: keep the screen (and its scroll) as it is
        self.last_key = key
        try:
            self.records = apply_filters(snap.records, parse_filters(text.split()))
        except StiltsError as exc:
            self.notify(exc.problem, severity="warning", markup=False)
            self.records = snap.records
        if self.target not in self.targets():
            self.target = next(iter(self.targets()), None)
        self.query_one("#results-summary", Static).update(
            f"view {self.view} (v)  │ target {esc(self.target or '—')} (t)  │ baseline {esc(self.baseline)} (b)  │ "
            f"{finished} finished runs" + (f"  │ filter: {esc(text)}" if text else ""))
        self.render_view()

    def render_view(self) -> None:
        self._draw_view(self.view, self.target, self.baseline, list(self.records))

    @work(thread=True, exclusive=True, group="results")
    def _draw_view(self, view: str, target: str | None, baseline: str, records: list[dict]) -> None:
        if view == "violins":
            text = violins_for(records, target, baseline, width=max(60, self.size.width - 2)) if target else "no target runs yet"
        elif not any(r.get("status") == RunStatus.FINISHED for r in records):
            text = "no finished runs yet"
        else:
            text = render_results(records, "table", view=view, baseline=baseline, width=max(40, self.size.width - 3))
            if view == "pairs" and target and self.size.width >= WIDE:
                text += "\n" + violins_for(records, target, baseline, width=self.size.width - 2)
        self.app.call_from_thread(self.query_one("#results-view", Static).update, text)

    def action_next_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self._refresh()

    def action_next_target(self) -> None:
        targets = self.targets()
        if targets:
            self.target = targets[(targets.index(self.target) + 1) % len(targets)] if self.target in targets else targets[0]
            if self.view == "pairs" and self.size.width < WIDE:  # wide: the pairs view shows the violins too
                self.view = "violins"
            self._refresh()

    def action_baseline(self) -> None:
        names = sorted({r["intermediate"] for r in self.records if r.get("kind") == "target"})
        if names:
            self.baseline = names[(names.index(self.baseline) + 1) % len(names)] if self.baseline in names else names[0]
            self._refresh()

    def _refresh(self) -> None:
        if self.app.snapshot is not None:
            self.show(self.app.snapshot, force=True)

    def action_filter(self) -> None:
        box = self.query_one("#results-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#results-filter")
    def _apply(self) -> None:
        self.query_one("#results-body").focus()
        self._refresh()

    def action_clear_filter(self) -> None:
        box = self.query_one("#results-filter", Input)
        box.value, box.display = "", False
        self._refresh()

    def action_export(self) -> None:
        view = "pairs" if self.view == "violins" else self.view
        self.app.push_screen(ExportScreen(f"stilts-{view}.md"), self._export)

    def _export(self, choice: tuple[str, str] | None) -> None:
        if not choice:
            return
        path, fmt = choice
        view = "pairs" if self.view == "violins" else self.view
        text = render_results(self.records, fmt, view=view, baseline=self.baseline)
        try:
            Path(path).expanduser().write_text(text, encoding="utf-8")
        except OSError as exc:
            self.notify(f"could not write {path}: {exc.strerror}", severity="error", markup=False)
            return
        self.notify(f"wrote {path} ({fmt})", markup=False)

