"""Results: the pair table with the statistics, the violins of a target, the paper tables, filters
and exports — all from the analysis library (nothing is computed here)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from stilts_tui.analysis.correlation import correlations
from stilts_tui.analysis.filters import apply_filters, parse_filters
from stilts_tui.analysis.matrix import MARKS, STATS, build_matrix
from stilts_tui.analysis.matrix_views import correlation_heat, matrix_heat
from stilts_tui.analysis.report import render_results
from stilts_tui.analysis.study_views import (
    FIGURE_SUFFIXES,
    STUDY_VIEWS,
    StudyOptions,
    render_study,
    write_study,
)
from stilts_tui.app.data import Snapshot
from stilts_tui.app.format import esc, violins
from stilts_tui.app.messages import ShowNewest
from stilts_tui.app.pair_screen import PairScreen
from stilts_tui.app.study_grid import GridData, StudyGrid
from stilts_tui.app.threads import deliver
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run import Run
from stilts_tui.errors import StiltsError
from stilts_tui.sweep.naming import slug

if TYPE_CHECKING:
    from stilts_tui.app.app import StiltsApp

VIEWS = ("pairs", "violins", "matrix", "correlation", "ranking", "table2", "table3", "table4", "figure3", "forecast")
GRID_VIEWS = ("matrix", "correlation")
# From this many columns the pair table and the selected target's violins share the screen (table
# above, violins below), so both are read without switching views; narrower, they are two views.
WIDE = 110


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    """Ask where to write the current view, and in which format."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel")]

    def __init__(self, default: str, figures: bool = False, what: str = "") -> None:
        super().__init__(id="export")
        self.default, self.figures, self.what = default, figures, what

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="export-box"):
            # markup=False: "[…]" in a name stays text; the box's CSS wraps it between words
            yield Label("Export the current view" + (f" ({self.what})" if self.what else "")
                        + ": the file name's ending (.csv, .md, .tex"
                        + (", or .png / .svg / .pdf for a figure" if self.figures else "") + ") decides the format",
                        markup=False, id="export-prompt")
            yield Input(value=self.default, id="export-path")
            yield Label("enter to write, escape to cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        formats = {".csv": "csv", ".md": "markdown", ".tex": "latex", ".json": "json"}
        if self.figures:
            formats |= {s: "figure" for s in FIGURE_SUFFIXES}
        fmt = formats.get(Path(path).suffix.lower())
        if not fmt:
            self.notify("the file name must end in " + ", ".join(formats), severity="error")
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
        # The matrix and correlation views name these keys on their summary line.
        Binding("s", "next_stat", "Stat", show=False, id="results.stat"),
        Binding("m", "next_mark", "Mark", show=False, id="results.mark"),
        Binding("o", "next_order", "Order", show=False, id="results.order"),
        Binding("c", "next_show", "Correlation rows", show=False, id="results.show"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="results.clear_filter"),
    ]

    def __init__(self) -> None:
        super().__init__(id="results")
        self.view = "pairs"
        self.target: str | None = None
        self.baseline = "none"
        self.records: list[Run] = []
        self.snapshot: Snapshot | None = None  # the newest shown: keys and resizes redraw from it
        self.last_key: tuple | None = None
        self.ready = False  # widgets composed: refreshes may fill them
        self.study = StudyOptions()
        self.none_match = ""  # what to say when the filter leaves no run

    def compose(self) -> ComposeResult:
        yield Static("", id="results-summary")
        yield Input(placeholder="filter key=value … (lr=1e-5 seed=42) — enter to apply", id="results-filter")
        with VerticalScroll(id="results-body"):
            yield Static("", id="results-view", markup=False)  # tables hold task names: literal text
        yield StudyGrid(id="results-grid")
        yield Static("", id="results-cell", markup=False)
        yield Static("", id="results-legend", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#results-filter", Input).display = False
        self._layout()
        self.query_one("#results-body").focus()
        self.ready = True
        self.post_message(ShowNewest())

    def on_screen_resume(self) -> None:  # back to this mode: the newest snapshot now, not at the next refresh
        self.post_message(ShowNewest())

    def on_resize(self) -> None:
        if self.ready and self.snapshot is not None:
            self.show(self.snapshot, force=True)  # the wide layout comes and goes with the width

    def targets(self) -> list[str]:
        return sorted({r.target for r in self.records if r.kind == "target"})

    def show(self, snap: Snapshot, force: bool = False) -> None:
        self.snapshot = snap
        text = self.query_one("#results-filter", Input).value.strip()
        # The records' version, not how many finished: a run that starts, fails or is stopped
        # changes the pair table's pending and failed counts with no run finishing.
        key = (snap.version, text, self.view, self.target, self.baseline)
        if key == self.last_key and not force:
            return  # the records are as shown: keep the screen (and its scroll) as it is
        self.last_key = key
        finished = sum(r.status == RunStatus.FINISHED for r in snap.records)
        try:
            self.records = apply_filters(snap.records, parse_filters(text.split()))
        except StiltsError as exc:
            self.notify(exc.problem, severity="warning", markup=False)
            self.records = snap.records
        # A filter that leaves nothing of a file that has runs: said as such, not as "no runs yet".
        self.none_match = f"no run matches the filter {text} (escape clears it)" if text and snap.records \
            and not self.records else ""
        if self.target not in self.targets():
            self.target = next(iter(self.targets()), None)
        self.query_one("#results-summary", Static).update(
            f"view {self.view} (v)  │ target {esc(self.target or '—')} (t)  │ baseline {esc(self.baseline)} (b)  │ "
            f"{finished} finished runs" + (f"  │ filter: {esc(text)}" if text else "") + self._study_summary())
        self.render_view()

    def _study_summary(self) -> str:
        if self.view == "matrix":
            return (f"\nstat {'/'.join(self.study.stats)} (s)  │ mark {self.study.mark} (m)  │ order {self.study.order} (o)  "
                    "│ enter: the pair's violins and runs")
        if self.view == "correlation":
            return f"\nrows {self.study.show} (c)"
        return ""

    def _layout(self) -> None:
        grid = self.view in GRID_VIEWS
        self.query_one("#results-body").display = not grid
        for name in ("#results-grid", "#results-cell", "#results-legend"):
            self.query_one(name).display = grid

    def render_view(self) -> None:
        self._layout()
        if self.view in GRID_VIEWS:
            self.study.baseline, self.study.target = self.baseline, self.target
            self._draw_grid(self.view, replace(self.study), list(self.records))
        else:
            self._draw_view(self.view, self.target, self.baseline, list(self.records))

    @work(thread=True, exclusive=True, group="results")
    def _draw_grid(self, view: str, opts: StudyOptions, records: list[Run]) -> None:
        if not any(r.kind == "target" and r.status == RunStatus.FINISHED for r in records):
            data = None
        elif view == "matrix":
            m = build_matrix(records, opts.stats, opts.baseline, opts.order, opts.mark, opts.resamples, opts.seed)
            data = GridData(matrix_heat(m, opts.scale), matrix=m)
        else:
            corr = correlations(records, opts.baseline)
            data = GridData(correlation_heat(corr, opts.show), correlations=corr, show=opts.show)
        deliver(self, self._fill_grid, data)

    def _fill_grid(self, data: GridData | None) -> None:
        grid = self.query_one("#results-grid", StudyGrid)
        legend = self.query_one("#results-legend", Static)
        if data is None:
            grid.clear(columns=True)
            grid.data = None
            self.query_one("#results-cell", Static).update(self.none_match or "no finished target runs yet")
            legend.update("")
            return
        grid.fill(data)
        legend.update(Text("\n".join([data.heat.title, *data.heat.legend]), style="dim"))
        self._describe_cell()
        if self.screen.focused is None or self.screen.focused.id == "results-body":
            grid.focus()

    @on(DataTable.CellHighlighted, "#results-grid")
    def _describe_cell(self) -> None:
        self.query_one("#results-cell", Static).update(self.query_one("#results-grid", StudyGrid).describe())

    @on(DataTable.CellSelected, "#results-grid")
    def _open_pair(self) -> None:
        pair = self.query_one("#results-grid", StudyGrid).pair()
        if pair and pair[1] != self.baseline:
            self.app.push_screen(PairScreen(self.records, pair[0], pair[1], self.baseline))

    @work(thread=True, exclusive=True, group="results")
    def _draw_view(self, view: str, target: str | None, baseline: str, records: list[Run]) -> None:
        text: str | Text
        if self.none_match:
            text = self.none_match
        elif view == "ranking":
            opts = StudyOptions(baseline=baseline, target=target)
            text = render_study(records, "ranking", "table", opts, width=max(40, self.size.width - 3)) if target \
                else "no target runs yet"
        elif view == "violins":
            text = self._violins(records, target, baseline) if target else "no target runs yet"
        elif view == "forecast":  # the forecasts `stilts forecast` saved beside the file, against the sweeps
            text = self._forecast(records, baseline, "table")
        elif not any(r.status == RunStatus.FINISHED for r in records):
            text = "no finished runs yet"
        else:
            text = render_results(records, "table", view=view, baseline=baseline, width=max(40, self.size.width - 3))
            if view == "pairs" and target and self.size.width >= WIDE:
                text = Text(text + "\n") + self._violins(records, target, baseline)
        deliver(self, lambda: self.query_one("#results-view", Static).update(text))

    def _forecast(self, records: list[Run], baseline: str, fmt: str) -> str:
        from stilts_tui.analysis.forecast_data import load_forecasts
        from stilts_tui.analysis.forecast_view import render_forecast_view

        db = self.snapshot.db if self.snapshot else None
        if db is None:
            return "no results file yet"
        return render_forecast_view(records, load_forecasts(db), fmt, baseline, width=max(40, self.size.width - 3))

    def _violins(self, records: list[Run], target: str, baseline: str) -> Text:
        """In colour, one per intermediate (ANSI from plotext, read as styles: names are never
        markup), as wide as the screen and, in the violins view, as high as it leaves room for
        (the plot rows, then six lines of statistics and the summary and footer)."""
        height = self.size.height - 16 if self.view == "violins" else 14
        # the body's padding and scroll bar take 4 columns
        return violins(records, target, baseline, self.size.width - 6, not self.app.no_color, height=height)

    def action_next_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self._refresh()
        if self.view not in GRID_VIEWS:
            self.query_one("#results-body").focus()

    def show_view(self, view: str) -> None:
        self.view = view
        if self.ready:  # else on_mount draws it
            self._refresh()

    def action_next_stat(self) -> None:
        stats = [(s,) for s in STATS] + [("mean", "best", "degenerate")]
        now = stats.index(self.study.stats) if self.study.stats in stats else -1
        self.study.stats = stats[(now + 1) % len(stats)]
        self._refresh_grid("matrix")

    def action_next_mark(self) -> None:
        self.study.mark = MARKS[(MARKS.index(self.study.mark) + 1) % len(MARKS)]
        self._refresh_grid("matrix")

    def action_next_order(self) -> None:
        self.study.order = "gain" if self.study.order == "name" else "name"
        self._refresh_grid("matrix")

    def action_next_show(self) -> None:
        self.study.show = "targets" if self.study.show == "full" else "full"
        self._refresh_grid("correlation")

    def _refresh_grid(self, view: str) -> None:
        if self.view != view:
            self.view = view
        self._refresh()

    def action_next_target(self) -> None:
        targets = self.targets()
        if targets:
            self.target = targets[(targets.index(self.target) + 1) % len(targets)] if self.target in targets else targets[0]
            if self.view == "pairs" and self.size.width < WIDE:  # wide: the pairs view shows the violins too
                self.view = "violins"
            self._refresh()

    def action_baseline(self) -> None:
        names = sorted({r.intermediate for r in self.records if r.kind == "target"})
        if names:
            self.baseline = names[(names.index(self.baseline) + 1) % len(names)] if self.baseline in names else names[0]
            self._refresh()

    def _refresh(self) -> None:
        if self.snapshot is not None:
            self.show(self.snapshot, force=True)

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
        if self.view == "violins":  # a figure of the target's violins, or the pair table as text
            name = f"stilts-violins-{slug(self.target or 'target')}.png"
            self.app.push_screen(ExportScreen(name, True, "the pair table; a figure: the violins"), self._export)
            return
        figures = self.view in GRID_VIEWS
        self.app.push_screen(ExportScreen(f"stilts-{self.view}.{'svg' if figures else 'md'}", figures), self._export)

    def _violin_figure(self, out: Path) -> str:
        """The target's violins as a figure file, as `stilts report` draws them."""
        from stilts_tui.analysis.report import target_violins
        from stilts_tui.analysis.violin_figure import matplotlib_available, violin_figure

        tv = target_violins(self.records, self.target, self.baseline) if self.target else None
        if tv is None:
            raise StiltsError("no finished target runs to draw", "export again once runs of the target finished")
        if not matplotlib_available():
            raise StiltsError("figures need matplotlib, which is not installed", "pip install matplotlib")
        out.parent.mkdir(parents=True, exist_ok=True)
        violin_figure(tv.title, tv.violins, tv.guess, out, tv.majority)
        return f"figure of {len(tv.violins)} violins"

    def _export(self, choice: tuple[str, str] | None) -> None:
        if not choice:
            return
        path, fmt = choice
        view = "pairs" if self.view == "violins" else self.view
        out = Path(path).expanduser().resolve()  # said in full: where it went, whatever the cwd was
        try:
            if self.view == "violins" and fmt == "figure":
                fmt = self._violin_figure(out)
            elif view in STUDY_VIEWS:
                self.study.baseline, self.study.target = self.baseline, self.target
                fmt = write_study(self.records, view, out, replace(self.study))
            elif view == "forecast":
                out.write_text(self._forecast(self.records, self.baseline, fmt), encoding="utf-8")
            else:
                out.write_text(render_results(self.records, fmt, view=view, baseline=self.baseline), encoding="utf-8")
        except OSError as exc:
            self.notify(f"could not write {out}: {exc.strerror}", severity="error", markup=False)
            return
        except StiltsError as exc:
            self.notify(exc.problem, severity="error", markup=False)
            return
        self.notify(f"wrote {out} ({fmt})", markup=False)

