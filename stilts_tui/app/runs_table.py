"""A runs table that stays fast with thousands of rows: a Line-API scroll view that renders only
the visible rows (Textual's DataTable takes seconds to add 10k rows)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from stilts_tui.app.messages import OpenRun
from stilts_tui.domain.records import RunStatus


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int
    right: bool = False
    priority: int = 0  # dropped first when the terminal is narrow: higher numbers


# What tells two runs apart stays longest: the pair, then batch, seed and lr (two runs differing only
# by seed must not look identical), then the loss and ETA of runs in flight; the run id (enter
# opens a run), warmup and slot go first. The pair column starts at its narrowest and takes the
# room left over.
COLUMNS = (
    Column("status", "status", 9),
    Column("run_id", "run", 12, False, 4),
    Column("pair", "intermediate → target", 24),
    Column("lr", "lr", 7, True, 1),
    Column("batch_size", "bs", 3, True, 1),
    Column("warmup_ratio", "wu", 4, True, 3),
    Column("seed", "seed", 4, True, 1),
    Column("progress", "progress", 9, True),
    Column("loss", "loss", 6, True, 2),
    Column("score", "score", 6, True),
    Column("slot", "slot", 7, False, 5),
    Column("eta", "ETA", 6, True, 3),
)

STATUS_STYLE = {RunStatus.RUNNING: "bold", RunStatus.FINISHED: "", RunStatus.FAILED: "bold reverse",
                RunStatus.QUEUED: "dim", RunStatus.STOPPED: "italic", RunStatus.BLOCKED: "dim italic"}


def fit_columns(width: int) -> list[Column]:
    """The columns that fit, dropping the least important first; the pair column takes the rest."""
    cols = list(COLUMNS)
    while sum(c.width + 1 for c in cols) > width and any(c.priority for c in cols):
        worst = max(cols, key=lambda c: c.priority)
        cols.remove(worst)
    spare = width - sum(c.width + 1 for c in cols)
    return [Column(c.key, c.title, c.width + max(0, spare), c.right, c.priority) if c.key == "pair" else c for c in cols]


def hidden_columns(width: int) -> list[str]:
    """The titles of the columns `fit_columns` leaves out at `width`, in the table's order."""
    shown = {c.key for c in fit_columns(width)}
    return [c.title for c in COLUMNS if c.key not in shown]


class RunsTable(ScrollView, can_focus=True):
    """Rows are plain dicts with the COLUMNS keys (already formatted strings) and `run_id`."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="runs.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="runs.down"),
        Binding("pageup", "cursor(-20)", "Page up", show=False, id="runs.page_up"),
        Binding("pagedown", "cursor(20)", "Page down", show=False, id="runs.page_down"),
        Binding("home", "cursor_to(0)", "First", show=False, id="runs.first"),
        Binding("end", "cursor_to(-1)", "Last", show=False, id="runs.last"),
        Binding("enter", "open", "Open", id="runs.open"),
        Binding("space", "mark", "Mark", key_display="␣", id="runs.mark"),
    ]
    COMPONENT_CLASSES = {"runs-table--header", "runs-table--cursor"}
    DEFAULT_CSS = """
    RunsTable { height: 1fr; overflow-x: hidden; }
    RunsTable > .runs-table--header { text-style: bold reverse; }
    RunsTable > .runs-table--cursor { background: $accent; color: $text; }
    """

    cursor = reactive(0)

    class Opened(OpenRun):
        """Enter on a row: it bubbles up to the app, which opens the run's detail."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rows: list[dict] = []
        self.marked: list[str] = []  # run ids marked with space, in the order marked (compared together)

    def set_rows(self, rows: list[dict]) -> None:
        keep = self.rows[self.cursor]["run_id"] if self.rows and self.cursor < len(self.rows) else None
        self.rows = rows
        self.virtual_size = Size(self.scrollable_content_region.width, len(rows) + 1)
        if keep is not None:
            for i, r in enumerate(rows):
                if r["run_id"] == keep:
                    self.cursor = i
                    break
        self.cursor = min(self.cursor, max(0, len(rows) - 1))
        self.refresh()

    @property
    def current(self) -> dict | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def watch_cursor(self, old: int, new: int) -> None:
        top = self.scroll_offset.y
        visible = max(1, self.size.height - 1)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + visible:
            self.scroll_to(y=new - visible + 1, animate=False)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        if self.rows:
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))

    def action_cursor_to(self, index: int) -> None:
        if self.rows:
            self.cursor = index % len(self.rows)

    def action_mark(self) -> None:
        """Mark (or unmark) the run under the cursor and move on, as a file manager does."""
        if not self.current:
            return
        run_id = self.current["run_id"]
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked.append(run_id)
        self.action_cursor(1)
        self.refresh()

    def action_open(self) -> None:
        if self.current:
            self.post_message(self.Opened(self.current["run_id"]))

    def _cells(self, row: dict | None, cols: list[Column]) -> str:
        parts = []
        for c in cols:
            text = c.title if row is None else str(row.get(c.key, ""))
            if row is not None and c.key == "status" and row["run_id"] in self.marked:
                text = "●" + text
            text = text[: c.width]
            parts.append(text.rjust(c.width) if c.right else text.ljust(c.width))
        return " ".join(parts)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        cols = fit_columns(width)
        if y == 0:
            style = self.get_component_rich_style("runs-table--header")
            return Strip([Segment(self._cells(None, cols).ljust(width)[:width], style)])
        index = y - 1 + self.scroll_offset.y
        if index >= len(self.rows):
            return Strip.blank(width)
        row = self.rows[index]
        if index == self.cursor and self.has_focus:
            style = self.get_component_rich_style("runs-table--cursor")
        elif index == self.cursor:
            style = Style(reverse=True)
        else:
            style = Style.parse(STATUS_STYLE.get(row.get("status", ""), "") or "none")
        return Strip([Segment(self._cells(row, cols).ljust(width)[:width], style)])
