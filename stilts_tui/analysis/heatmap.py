"""A labelled grid of coloured cells on a diverging scale (blue above zero, red below, white at
zero: RdBu, readable by the common colour-blindnesses), drawn four ways: a terminal text (rich
styles, or plain when piped), Markdown, LaTeX (colortbl cell colours) and a figure file for papers
(matplotlib, PNG or SVG by the file's suffix). Transfer matrices and correlations both end here."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text

from stilts_tui.analysis.export import latex_escape
from stilts_tui.errors import StiltsError

# RdBu's ends and middle (ColorBrewer): strongly negative, neutral, strongly positive.
NEGATIVE, NEUTRAL, POSITIVE = (178, 24, 43), (247, 247, 247), (33, 102, 172)
LABEL_MAX = 26          # row labels are cut here (the full name stays in CSV and the app's status line)
HEADER_LINES = 3        # a column label wraps over at most this many lines


@dataclass
class HeatCell:
    text: str
    value: float | None = None      # position on the colour scale, -1 … 1 (clipped); None: not coloured


@dataclass
class Heat:
    title: str
    corner: str
    row_labels: list[str]
    col_labels: list[str]
    rows: list[list[HeatCell]]
    legend: list[str] = field(default_factory=list)
    breaks: set[int] = field(default_factory=set)      # a rule above these row indices
    scale_text: tuple[str, str] = ("−", "+")           # what the colour bar's two ends stand for
    cell_width: int = 7


def rgb(value: float | None) -> tuple[int, int, int] | None:
    if value is None or math.isnan(value):
        return None
    t = max(-1.0, min(1.0, value))
    end = POSITIVE if t > 0 else NEGATIVE
    return tuple(round(n + (e - n) * abs(t)) for n, e in zip(NEUTRAL, end, strict=True))  # type: ignore[return-value]


def style_of(value: float | None) -> str:
    colour = rgb(value)
    if colour is None:
        return ""
    ink = "white" if abs(value or 0.0) > 0.55 else "black"
    return f"{ink} on #{colour[0]:02x}{colour[1]:02x}{colour[2]:02x}"


def cell_text(cell: HeatCell, width: int | None = None) -> Text:
    """One cell as rich text (the app's table cells use this too)."""
    body = cell.text.rjust(width) if width else cell.text
    return Text(body, style=style_of(cell.value))


def _wrap(label: str, width: int) -> list[str]:
    """A column label over at most HEADER_LINES lines: its first part wrapped, each later part
    (after a newline: the statistic of a several-statistic matrix) on a line of its own."""
    parts = label.split("\n")
    room = HEADER_LINES - (len(parts) - 1)
    first = [parts[0][i:i + width] for i in range(0, len(parts[0]), width)] or [""]
    if len(first) > room:
        first = first[:room]
        first[-1] = first[-1][:width - 1] + "…"
    return first + [p[:width] for p in parts[1:]]


def flat_label(label: str) -> str:
    return label.replace("\n", " ")


def colour_bar(heat: Heat, colour: bool) -> Text:
    steps = [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0]
    bar = Text(f"scale {heat.scale_text[0]} ")
    for v in steps:
        bar.append("   " if colour else "", style=style_of(v) if colour else "")
    if not colour:
        bar.append("(red) … 0 … (blue)")
    bar.append(f" {heat.scale_text[1]}")
    return bar


def to_text(heat: Heat, width: int = 120, colour: bool = True, fit: bool = False) -> Text:
    """The grid in blocks of columns that fit `width`, each block with the row labels. With `fit`
    (output piped or redirected: no width to fit) each column is as wide as its label's longest
    line and row labels are never cut, so no name is wrapped inside a word or shortened."""
    longest = max([len(heat.corner), *map(len, heat.row_labels)], default=4)
    label_w = longest if fit else min(LABEL_MAX, longest)
    widths = [max(heat.cell_width, *map(len, label.split("\n"))) if fit else heat.cell_width
              for label in heat.col_labels]
    out = Text(heat.title + "\n", style="bold")
    for cols in _blocks(widths, width - label_w - 1):
        wrapped = [_wrap(heat.col_labels[j], widths[j]) for j in cols]
        depth = max((len(w) for w in wrapped), default=1)
        for line in range(depth):
            head = (heat.corner if line == depth - 1 else "").ljust(label_w)[:label_w]
            out.append(head + "".join(" " + (w[line] if line < len(w) else "").rjust(widths[j])
                                      for j, w in zip(cols, wrapped, strict=True)) + "\n", style="bold")
        rule = "─" * (label_w + sum(widths[j] + 1 for j in cols))
        out.append(rule + "\n")
        for i, (label, row) in enumerate(zip(heat.row_labels, heat.rows, strict=True)):
            if i in heat.breaks:
                out.append(rule + "\n")
            shown = label if len(label) <= label_w else label[:label_w - 1] + "…"
            out.append(shown.ljust(label_w))
            for j in cols:
                out.append(" ")
                out.append(cell_text(row[j], widths[j]) if colour else row[j].text.rjust(widths[j]))
            out.append("\n")
        out.append(rule + "\n")
    out.append(colour_bar(heat, colour))
    out.append("\n")
    for note in heat.legend:
        out.append(note + "\n", style="dim" if colour else "")
    return out


def _blocks(widths: list[int], room: int) -> list[range]:
    """The columns in consecutive blocks, each as many as fit in `room` (each column takes its
    width and a space), at least one per block; one empty block for a grid with no columns."""
    blocks, start, used = [], 0, 0
    for j, w in enumerate(widths):
        if j > start and used + w + 1 > room:
            blocks.append(range(start, j))
            start, used = j, 0
        used += w + 1
    blocks.append(range(start, len(widths)))
    return blocks


def to_markdown(heat: Heat) -> str:
    lines = [f"**{heat.title}**", "", "| " + " | ".join([heat.corner, *map(flat_label, heat.col_labels)]) + " |",
             "| " + " | ".join(["---"] + ["---:"] * len(heat.col_labels)) + " |"]
    for label, row in zip(heat.row_labels, heat.rows, strict=True):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in [label, *[x.text for x in row]]) + " |")
    lines += [""] + [f"*{line}*" for line in heat.legend]
    return "\n".join(lines) + "\n"


def to_latex(heat: Heat) -> str:
    """A tabular whose cells carry their colour (needs \\usepackage[table]{xcolor})."""
    spec = "l" + "r" * len(heat.col_labels)
    lines = [f"% {latex_escape(heat.title)}", "% needs \\usepackage[table]{xcolor}",
             *[f"% {latex_escape(line)}" for line in heat.legend],
             f"\\begin{{tabular}}{{{spec}}}", "\\hline",
             " & ".join(latex_escape(c) for c in [heat.corner, *map(flat_label, heat.col_labels)]) + " \\\\", "\\hline"]
    for i, (label, row) in enumerate(zip(heat.row_labels, heat.rows, strict=True)):
        if i in heat.breaks:
            lines.append("\\hline")
        cells = [latex_escape(label)]
        for c in row:
            colour = rgb(c.value)
            tint = f"\\cellcolor[RGB]{{{colour[0]},{colour[1]},{colour[2]}}}" if colour else ""
            cells.append(tint + latex_escape(c.text))
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


# The figure's layout, in inches (matplotlib's points are 1/72 in): a character of a text at
# size f is about 0.55 f points wide, a line 1.3 f points high.
CELL_W, CELL_H, MIN_WIDTH, MARGIN = 0.62, 0.34, 4.0, 0.12
TITLE_PT, LABEL_PT, CELL_PT, LEGEND_PT = 9, 8, 7, 6


def _chars(inches: float, points: float) -> int:
    return max(20, int(inches * 72 / (0.55 * points)))


def _lines_high(lines: int, points: float) -> float:
    return lines * 1.3 * points / 72


def figure_of(heat: Heat):  # -> matplotlib.figure.Figure (matplotlib is imported only here)
    """The figure of `heat`, laid out so that nothing is cut or overlaps: the title and the legend
    wrapped to the figure's width (at least MIN_WIDTH, so a 1×2 matrix keeps its title), the
    legend below the grid and the column labels above it, each given its own height."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    n_rows, n_cols = len(heat.rows), len(heat.col_labels)
    cols = [flat_label(c) for c in heat.col_labels]
    label_w = 0.2 + 0.55 * LABEL_PT / 72 * max(map(len, heat.row_labels or [""]))
    col_h = 0.15 + 0.55 * LABEL_PT / 72 * max(map(len, cols or [""]))
    grid_w, grid_h = CELL_W * max(1, n_cols), CELL_H * max(1, n_rows)
    width = max(MIN_WIDTH, label_w + grid_w + 2 * MARGIN)
    title = textwrap.wrap(heat.title, _chars(width - 2 * MARGIN, TITLE_PT)) or [""]
    scale = f"colour: red {heat.scale_text[0]} (and below), white 0, blue {heat.scale_text[1]} (and above)"
    notes = heat.legend if any(n.startswith("colour") for n in heat.legend) else [*heat.legend, scale]
    legend = [ln for note in notes for ln in textwrap.wrap(note, _chars(width - 2 * MARGIN, LEGEND_PT))]
    title_h, legend_h = _lines_high(len(title), TITLE_PT) + MARGIN, _lines_high(len(legend), LEGEND_PT) + MARGIN
    height = MARGIN + title_h + col_h + grid_h + legend_h + MARGIN
    fig = plt.figure(figsize=(width, height))
    left = MARGIN + label_w + max(0.0, (width - 2 * MARGIN - label_w - grid_w) / 2)  # the grid centred in what is left
    ax = fig.add_axes((left / width, (MARGIN + legend_h) / height, grid_w / width, grid_h / height))
    for i, row in enumerate(heat.rows):
        for j, c in enumerate(row):
            colour = rgb(c.value)
            face = to_hex((colour[0] / 255, colour[1] / 255, colour[2] / 255)) if colour else "#ffffff"
            ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=face, edgecolor="#d0d0d0", linewidth=0.5))
            ink = "white" if c.value is not None and abs(c.value) > 0.55 else "black"
            ax.text(j + 0.5, i + 0.5, c.text.strip(), ha="center", va="center", fontsize=CELL_PT, color=ink)
    for i in heat.breaks:
        ax.axhline(i, color="black", linewidth=1.0)
    ax.set_xlim(0, n_cols)
    ax.set_ylim(n_rows, 0)
    ax.set_xticks([j + 0.5 for j in range(n_cols)], cols, rotation=90, fontsize=LABEL_PT)
    ax.set_yticks([i + 0.5 for i in range(n_rows)], heat.row_labels, fontsize=LABEL_PT)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.text(0.5, 1 - MARGIN / height, "\n".join(title), ha="center", va="top", fontsize=TITLE_PT, gid="title")
    fig.text(MARGIN / width, MARGIN / height, "\n".join(legend), ha="left", va="bottom", fontsize=LEGEND_PT,
             gid="legend")
    return fig


def to_figure(heat: Heat, path: Path) -> None:
    """A figure file for a paper: the cells coloured on the scale, each labelled with its text."""
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise StiltsError(f"{path}: a figure file must end in .png, .svg or .pdf")
    import matplotlib.pyplot as plt

    fig = figure_of(heat)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=200)
    plt.close(fig)
