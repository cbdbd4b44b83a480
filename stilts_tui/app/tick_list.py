"""A SelectionList whose ticks read without colour ("x" in the box when chosen, blank when not)
and whose first Space works at once (focus highlights the first row)."""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import SelectionList
from textual.widgets._toggle_button import ToggleButton

TICK, BLANK = "x", " "


class TickList(SelectionList[str]):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        index = self.scroll_offset.y + y
        if len(segments) < 2 or segments[1].text != ToggleButton.BUTTON_INNER or index >= self.option_count:
            return strip
        chosen = self.get_option_at_index(index).value in self._selected
        segments[1] = Segment(TICK if chosen else BLANK, segments[1].style, segments[1].control)
        return Strip(segments, strip.cell_length)

    def on_focus(self) -> None:
        if self.highlighted is None and self.option_count:
            self.highlighted = 0
