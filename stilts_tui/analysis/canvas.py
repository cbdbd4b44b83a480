"""The one plotext figure, lent to a chart at a time.

plotext 6 draws through a single module-level figure (`plotext.figure`): two charts built at once
(the run detail refreshing in a worker thread while the results screen draws its violins) would
write into each other. `chart()` holds a lock, hands the figure over clean, with the theme that
suits the output, and clears it afterwards. `text()` builds it: ANSI colours kept for a terminal
(the app turns them into styled text with `Text.from_ansi`, never markup), or plain characters.

Themes: plotext's "simple" colours the signals only (no canvas background, so the chart sits on
the terminal's own background); "colorless" has no colour at all (NO_COLOR, pipes, files)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.RLock()

# Distinct on dark and light backgrounds (matplotlib's tab10): one per intermediate, the same
# intermediate in the same colour on every target's chart.
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


@contextmanager
def chart(width: int, height: int, color: bool) -> Iterator[Any]:
    """The plotext figure, cleared, sized `width` × `height` cells, themed for `color`."""
    import plotext as plt

    with _LOCK:
        fig = plt.figure
        fig.clear()
        # The size asked for, not the terminal's: the app draws into a widget, and a chart asked to
        # be 118 × 30 must not come out at the terminal's (or a test's 80 × 22) size.
        plt.terminal.limit(False, False)
        try:
            fig.plot_size(width, height)
            fig.theme("simple" if color else "colorless")
            yield fig
        finally:
            fig.clear()


def text(fig: Any, color: bool) -> str:
    """The built figure as lines without trailing blanks (plain), or with its colours."""
    import plotext as plt

    out = str(fig.build())
    if color:
        return out.rstrip("\n") + "\n"
    return "\n".join(line.rstrip() for line in plt.uncolorize(out).rstrip("\n").splitlines()) + "\n"


def marker(symbol: str, rgb: tuple[int, int, int] | str | None = None) -> Any:
    """A plotext marker, coloured when `rgb` is given (`text(..., color=False)` drops the colour)."""
    import plotext as plt

    return plt.marker(symbol, plt.pixel(foreground=rgb)) if rgb is not None else symbol
