"""Every key, per screen (from the bindings themselves, so it cannot drift)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from stilts_tui.app.format import esc


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
                out.append(f"  {esc(key_names(app, b)):<18} {esc(b.description or b.action)}")
        out.append("")
    out += ["[b]signs[/b]",
            "  ↻ after a status   the run is on its second (or later) attempt: it failed or was stopped",
            "                     before; its detail lists every attempt and whether it resumed",
            "  ● before a status  the run is marked (space marks it and moves down a row, as a file",
            "                     manager does); c compares the marked runs' curves",
            "  ⚠ before a pair    a degenerate intermediate (dev score at or below its task's degenerate",
            "                     threshold), or a run trained from one; enter: its detail says which",
            "  x in a box         chosen (plan lists); a blank box: not chosen",
            "",
            "ctrl+p opens the command palette: every action by name."]
    return "\n".join(out)


def key_names(app, binding: Binding) -> str:
    """The keys of a binding as a person reads them: `?  / f1`, not `question_mark,f1`."""
    keys = [k.strip() for k in binding.key.split(",")]
    return " / ".join(k if k.startswith("ctrl+") else app.get_key_display(Binding(k, "")) for k in keys)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark,f1", "app.pop_screen", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(keys_text(self.app), markup=True)
