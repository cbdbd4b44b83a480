"""Several runs' training curves overlaid in one plotext chart (runs marked with space, then c),
each labelled by what differs between them; live while they train; l shows the learning rates."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from stilts_tui.analysis.curves import Curve, differing_labels, render_curves
from stilts_tui.app.live_curves import LiveCurvesScreen, run_curve
from stilts_tui.domain.run import Run


class CurvesScreen(LiveCurvesScreen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="curves.back"),
                Binding("l", "toggle_curve", "Loss / LR", id="curves.curve")]

    def __init__(self, records: list[Run]) -> None:
        super().__init__(records, "curves")
        self.labels = differing_labels([r.settings for r in records], [r.run_id for r in records])

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="curves-body"):
            yield Static("", id="curves-chart", markup=False)
        yield Footer()

    def _redraw(self) -> None:
        curves = []
        for rec, label in zip(self.records, self.labels, strict=True):
            c = run_curve(self.live(rec), self.curve)
            curves.append(Curve(label, c.steps, c.values, c.marks))
        what = "training loss" if self.curve == "loss" else "learning rate"
        title = f"{what} of {len(curves)} run(s)  (l: {'learning rate' if self.curve == 'loss' else 'loss'})"
        width = max(40, self.size.width - 2) if self.size.width else 80
        height = max(10, self.size.height - 3) if self.size.height else 20
        chart = render_curves(curves, title, "loss" if self.curve == "loss" else "lr", width=width, height=height,
                              color=not self.app.no_color)
        self.query_one("#curves-chart", Static).update(Text.from_ansi(chart))
