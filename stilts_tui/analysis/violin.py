"""Violin-like distributions in the terminal, one per intermediate for a target, side by side.

Drawn through plotext (analysis/canvas.py): each violin is the Gaussian kernel density estimate
(Scott's bandwidth, `kde` below) of its scores, cut at the distribution's min and best and
mirrored about its centre: two plotext signals (the right and the left outline) with the space
between them filled (`signal.fill`), in braille markers, so every character cell holds 2×4
points and the outline is smooth at any size. Axes, y ticks and the intermediates' names come
from plotext; the mean is a ◆ on the shape; the random-guess level is a dotted plotext line
across the canvas and the majority-label level (at or below it a run is degenerate) a double one;
each intermediate has its own colour where colour is on.

Drawn here by hand, below the chart: the n / min / mean / best / degenerate rows under each
violin (plotext's tick labels are one line each) and the one-line key (plotext's legend is a
box inside the canvas, over the violins). They are aligned on the tick marks plotext drew, read
from its bottom frame line, so they sit under their violins at any width."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stilts_tui.analysis import canvas

HALF = 0.42         # a violin's widest point, in units of the gap between violins
MIN_COLUMN = 12     # characters per violin: room for "best 100.0" under it
MAX_COLUMN = 24     # a lone violin stays a violin, not a band across the screen
SUBROWS = 4         # braille: 4 points per character row


@dataclass
class Violin:
    label: str
    scores: list[float]        # ×100
    degenerate: int = 0
    colour: int | None = None  # index into canvas.PALETTE (the same intermediate, the same colour)


def kde(scores: np.ndarray, at: np.ndarray, bandwidth: float | None = None) -> np.ndarray:
    """Gaussian KDE with Scott's rule (1.06 σ n^-1/5); a floor keeps identical scores visible."""
    n = len(scores)
    sd = scores.std(ddof=1) if n > 1 else 0.0
    bw = bandwidth or max(1.06 * sd * n ** (-1 / 5), 1e-3 * max(1.0, abs(float(scores.mean()))), 0.25)
    z = (at[:, None] - scores[None, :]) / bw
    return np.exp(-0.5 * z**2).sum(axis=1) / (n * bw * np.sqrt(2 * np.pi))


def outline(scores: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(heights, half-widths): the density between min and best, scaled so the widest point is HALF."""
    lo, hi = float(scores.min()), float(scores.max())
    ys = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    dens = kde(scores, ys)
    peak = float(dens.max())
    return ys, (dens / peak * HALF if peak > 0 else np.zeros_like(ys))


def fits(width: int) -> int:
    """How many violins fit side by side in `width` columns."""
    return max(1, (width - 8) // MIN_COLUMN)


def render_violins(title: str, violins: list[Violin], guess: float | None = None, width: int = 80,
                   height: int = 14, color: bool = False, majority: float | None = None,
                   max_column: int = MAX_COLUMN) -> str:
    """Title, `height` plot rows, the names, statistics and key, at most `width` columns (the
    first `fits(width)` violins: the caller splits longer lists). `majority`: the majority-label
    level, drawn when it is not the guess's; `max_column`: the widest a violin's column grows."""
    shown = [v for v in violins if v.scores][: fits(width)]
    if not shown:
        return f"{title}\n(no finished runs)\n"
    if majority is not None and guess is not None and abs(majority - guess) < 1e-9:
        majority = None  # the same level (MCC 0): one line says both, as the key does
    arrays = [np.asarray(v.scores, dtype=float) for v in shown]
    lo, hi = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
    for level in (guess, majority):
        if level is not None:
            lo, hi = min(lo, level), max(hi, level)
    pad = max((hi - lo) * 0.04, 0.5)
    col = max(MIN_COLUMN, min(max(MAX_COLUMN, max_column), (width - 8) // len(shown)))
    with canvas.chart(min(width, 8 + col * len(shown)), height + 4, color) as fig:
        for i, (v, s) in enumerate(zip(shown, arrays, strict=True)):
            rgb = canvas.PALETTE[(v.colour if v.colour is not None else i) % len(canvas.PALETTE)]
            ys, half = outline(s, height * SUBROWS + 1)
            right = fig.signal(list(i + half), list(ys), marker=canvas.marker("braille", rgb))
            left = fig.signal(list(i - half), list(ys), marker=canvas.marker("braille", rgb))
            right.density("full", scope="fill").fill(left).lines()
            fig.draw(right)
            fig.draw(fig.signal([i], [float(s.mean())], marker=canvas.marker("◆")))
        if guess is not None:
            fig.line(guess, orientation=0, relative=True, style="dotted")
        if majority is not None:
            fig.line(majority, orientation=0, relative=True, style="double")
        fig.ruler(axis=0).ticks(list(range(len(shown))), [v.label[: col - 1] for v in shown])
        fig.ruler(axis=0).lim(-0.5, len(shown) - 0.5)
        # The guess, when it bounds the scores, is a limit itself: plotext labels the limits, so
        # the dotted line is then labelled with its own value.
        fig.ruler(axis=1).lim(lo if lo in (guess, majority) else lo - pad, hi if hi in (guess, majority) else hi + pad)
        fig.title(title)
        chart = canvas.text(fig, color)
    return chart + _statistics(shown, _tick_columns(chart), col, guess, majority)


def _tick_columns(chart: str) -> list[int]:
    """Where plotext put the x ticks: the ┬ of its bottom frame line."""
    import plotext as plt

    bottom = next(ln for ln in plt.uncolorize(chart).splitlines() if "└" in ln)
    return [i for i, ch in enumerate(bottom) if ch == "┬"]


def _statistics(shown: list[Violin], ticks: list[int], col: int, guess: float | None,
                majority: float | None = None) -> str:
    def row(cells: list[str]) -> str:
        line = ""
        for at, cell in zip(ticks, cells, strict=False):
            cell = cell[: col - 1]
            start = max(len(line) + 1 if line else 0, at - len(cell) // 2)
            line += " " * (start - len(line)) + cell
        return line.rstrip()

    rows = [row([f"n {len(v.scores)}" for v in shown])]
    for name, fn in (("min", min), ("mean", lambda s: sum(s) / len(s)), ("best", max)):
        rows.append(row([f"{name} {fn(v.scores):.1f}" for v in shown]))
    rows.append(row([f"degen {v.degenerate}" for v in shown]))
    key = "◆ mean" + (f"   ┈┈ random guess {guess:.1f}" if guess is not None else "")
    indent = " " * max(0, (ticks[0] if ticks else 0) - 3)
    rows.append(indent + key)
    if majority is not None:  # a line of its own: the key stays within the chart's width
        rows.append(indent + f"══ majority label {majority:.1f} (at or below: degenerate)")
    return "\n".join(rows) + "\n"
