"""What the run detail and the compared-runs screen share: runs whose curves are read from their
event logs incrementally, redrawn on each refresh of the app (live while they train), with `l`
switching between the training loss and the learning rate."""

from __future__ import annotations

from textual.css.query import NoMatches
from textual.screen import Screen

from stilts_tui.analysis.curves import Curve
from stilts_tui.app.data import CURVE_HISTORY, EventTails, Live, Snapshot
from stilts_tui.domain.run import Run


def run_curve(live: Live, what: str) -> Curve:
    """The run's loss (with its evaluations' steps marked on the curve) or its learning rate."""
    steps = list(live.steps)
    if what == "lr":
        return Curve("learning rate", steps, list(live.lrs))
    losses = list(live.losses)
    marks = []
    for e in live.evals:  # an evaluation sits on the curve at the loss of its step
        if steps and e["step"] in steps:
            marks.append((float(e["step"]), float(losses[steps.index(e["step"])])))
    return Curve("loss", steps, losses, marks)


class LiveCurvesScreen(Screen):
    """A screen over some runs; subclasses compose their widgets and draw them in `_redraw`."""

    def __init__(self, records: list[Run], screen_id: str) -> None:
        super().__init__(id=screen_id)
        self.records = records
        self.tails = EventTails(CURVE_HISTORY)  # its own reader: whole curves, read incrementally
        self.curve = "loss"
        self.ready = False

    def live(self, rec: Run) -> Live:
        return self.tails.read(rec.run_id, rec.events_path or None, rec.attempts or 1)

    def on_mount(self) -> None:
        self.ready = True
        self.redraw()

    def show(self, snap: Snapshot) -> None:
        """A new snapshot: the runs' newest records, and the lines their logs gained."""
        by_id = {r.run_id: r for r in snap.records}
        self.records = [by_id.get(r.run_id, r) for r in self.records]
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
        raise NotImplementedError
