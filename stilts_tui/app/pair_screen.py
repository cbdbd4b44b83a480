"""One cell of the transfer matrix opened: the target's violins for the intermediate and its
baseline side by side, and every run of the pair (enter opens a run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from stilts_tui.analysis.degenerate import MARK, degenerate_sources
from stilts_tui.app.format import violins
from stilts_tui.app.messages import OpenRun
from stilts_tui.domain.run import Run

if TYPE_CHECKING:
    from stilts_tui.app.app import StiltsApp

RUN_COLUMNS = ("run", "intermediate", "restart", "seed", "lr", "bs", "status", "score")


def pair_runs(records: list[Run], target: str, names: tuple[str, ...]) -> list[Run]:
    runs = [r for r in records if r.kind == "target" and r.target == target and r.intermediate in names]
    return sorted(runs, key=lambda r: (names.index(r.intermediate), r.restart or 0, r.seed or 0, r.lr or 0))


class PairScreen(Screen):
    if TYPE_CHECKING:
        app: StiltsApp

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="pair.back")]

    def __init__(self, records: list[Run], target: str, intermediate: str, baseline: str) -> None:
        super().__init__(id="pair")
        self.records, self.target, self.intermediate, self.baseline = records, target, intermediate, baseline

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="pair-body"):
            yield Static(Text(f"{self.intermediate} → {self.target}, against {self.baseline}", style="bold"),
                         id="pair-title")
            yield Static("", id="pair-violins", markup=False)
            yield DataTable(id="pair-runs", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        names = (self.baseline, self.intermediate)
        sources = degenerate_sources(self.records)
        flagged = [r for r in pair_runs(self.records, self.target, names) if sources.flagged(r)]
        if flagged:  # the pair's Δ measures a transfer from an intermediate that learned nothing
            self.query_one("#pair-title", Static).update(Text.assemble(
                (f"{self.intermediate} → {self.target}, against {self.baseline}", "bold"),
                (f"\n{MARK} {len(flagged)} run(s) here start{sources.note(flagged[0]).removeprefix('starts')}", "bold reverse")))
        self.query_one("#pair-violins", Static).update(
            violins(self.records, self.target, self.baseline, self.size.width - 4, not self.app.no_color, only=names))
        table = self.query_one("#pair-runs", DataTable)
        table.add_columns(*RUN_COLUMNS)
        for r in pair_runs(self.records, self.target, names):
            score = f"{r.score * 100:.1f}" if r.finished and r.score is not None else "—"
            # Text, not str: a DataTable reads a str cell as markup, and records can be edited by hand.
            table.add_row(Text(r.run_id), Text(r.intermediate), "—" if r.restart is None else str(r.restart),
                          str(r.seed), "—" if r.lr is None else f"{r.lr:g}", str(r.batch_size),
                          str(r.status) + (f" {MARK}" if sources.flagged(r) else ""), score, key=r.run_id)
        table.focus()

    @on(DataTable.RowSelected, "#pair-runs")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.post_message(OpenRun(event.row_key.value))
