"""Where the CLI's tables go: a terminal gets them fitted to its width, as before; a pipe or a file
gets them whole. Piped, rich assumes 80 columns (or $COLUMNS) and cut names to `epo…`, wrapped
headers inside words and dropped columns: output read by `grep`, `less -S` or a log must be
complete, and its reader has no width to fit."""

from __future__ import annotations

import shutil
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported only by the commands that print tables, to keep `stilts --help` fast
    from rich.console import Console

# Wider than any table the CLI prints: rich sizes a table (expand=False) to its content up to the
# console width, so at this width no column is squeezed, wrapped or cut. Lines are not padded to it.
PIPED_WIDTH = 10_000


def on_terminal(stream: IO[str] | None = None) -> bool:
    """Whether `stream` (default: stdout) is a terminal."""
    stream = sys.stdout if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-like stream without a terminal behind it
        return False


def output_width(terminal_width: int | None = None, *, terminal: bool | None = None) -> int:
    """The width plain-text tables are laid out for: `terminal_width` (default: the terminal's,
    120 when unknown) on a terminal, PIPED_WIDTH when stdout is piped or redirected."""
    if on_terminal() if terminal is None else terminal:
        return terminal_width or shutil.get_terminal_size((120, 24)).columns
    return PIPED_WIDTH


def output_console(file: IO[str] | None = None, *, terminal: bool | None = None, width: int | None = None,
                   min_width: int = 0, **kwargs: Any) -> Console:
    """A rich Console for stdout (or `file`). On a terminal (`terminal` None: detected) it is
    today's Console: `width` if given, else the terminal's, at least `min_width`. Piped or
    redirected it is PIPED_WIDTH wide, so tables and lines come out whole.
    Other keyword arguments go to Console."""
    from rich.console import Console

    if on_terminal(file) if terminal is None else terminal:
        console = Console(file=file, width=width, **kwargs)
        if min_width and console.width < min_width:
            # A Console's width is read once at construction (terminal size or $COLUMNS).
            console = Console(file=file, width=min_width, **kwargs)
        return console
    # No soft_wrap: it would also leave a table's title uncentred; at this width nothing wraps.
    return Console(file=file, width=PIPED_WIDTH, **kwargs)
