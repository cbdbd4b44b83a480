"""Every key, per screen (from the bindings themselves, so it cannot drift)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def keys_text(app) -> str:
    from stilts_tui.app.curves_screen import CurvesScreen
    from stilts_tui.app.detail_screen import RunDetailScreen
    from stilts_tui.app.pair_screen import PairScreen
    from stilts_tui.app.plan_screen import PlanScreen
    from stilts_tui.app.results_screen import ResultsScreen
    from stilts_tui.app.runs_screen import RunsScreen
    from stilts_tui.app.runs_table import RunsTable

    sections = [("everywhere", type(app).BINDINGS), ("runs", RunsScreen.BINDINGS + RunsTable.BINDINGS),
                ("a run opened", RunDetailScreen.BINDINGS), ("marked runs compared", CurvesScreen.BINDINGS),
                ("results", ResultsScreen.BINDINGS),
                ("a matrix cell opened", PairScreen.BINDINGS),
                ("plan", PlanScreen.BINDINGS)]
    out = ["[b]stilts tui[/b] — quitting never stops a sweep; the runner works on in the background.", ""]
    for name, bindings in sections:
        out.append(f"[b]{name}[/b]")
        for b in bindings:
            if isinstance(b, Binding):
                out.append(f"  {b.key:<18} {b.description or b.action}")
        out.append("")
    out.append("ctrl+p opens the command palette: every action by name.")
    return "\n".join(out)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark,f1", "app.pop_screen", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(keys_text(self.app), markup=True)
