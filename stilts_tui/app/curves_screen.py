"""Several runs' training curves overlaid in one plotext chart (runs marked with space, then c),
each labelled by what differs between them; live while they train; l shows the learning rates."""

from __future__ import annotations

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static

from stilts_tui.analysis.curves import Curve, differing_labels, render_curves
from stilts_tui.app.data import CURVE_HISTORY, EventTails, Snapshot
from stilts_tui.app.detail_screen import run_curve


class CurvesScreen(Screen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="curves.back"),
                Binding("l", "toggle_curve", "Loss / LR", id="curves.curve")]

    def __init__(self, records: list[dict]) -> None:
        super().__init__(id="curves")
        self.records = records
        self.labels = differing_labels([r.get("config") or r for r in records], [r["run_id"] for r in records])
        self.tails = EventTails(CURVE_HISTORY)
        self.curve = "loss"
        self.ready = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="curves-body"):
            yield Static("", id="curves-chart", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.ready = True
        self.redraw()

    def show(self, snap: Snapshot) -> None:
        by_id = {r["run_id"]: r for r in snap.records}
        self.records = [by_id.get(r["run_id"], r) for r in self.records]
        self.redraw()

    def action_toggle_curve(self) -> None:
        self.curve = "lr" if self.curve == "loss" else "loss"
        self.redraw()

    def redraw(self) -> None:
        try:
            self._redraw()
        except NoMatches:  # a refresh landing while the screen closes: its widgets are gone
            return

    def _redraw(self) -> None:
        curves = []
        for rec, label in zip(self.records, self.labels, strict=True):
            live = self.tails.read(rec["run_id"], rec.get("events_path"), rec.get("attempts", 1) or 1)
            c = run_curve(rec, live, self.curve)
            curves.append(Curve(label, c.steps, c.values, c.marks))
        what = "training loss" if self.curve == "loss" else "learning rate"
        title = f"{what} of {len(curves)} run(s)  (l: {'learning rate' if self.curve == 'loss' else 'loss'})"
        width = max(40, self.size.width - 2) if self.size.width else 80
        height = max(10, self.size.height - 3) if self.size.height else 20
        chart = render_curves(curves, title, "loss" if self.curve == "loss" else "lr", width=width, height=height,
                              color="NO_COLOR" not in os.environ)
        self.query_one("#curves-chart", Static).update(Text.from_ansi(chart))
