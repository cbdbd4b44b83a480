"""Violin-like distributions in the terminal, one per intermediate for a target, side by side.

plotext draws lines, bars and boxes but no density shape, so the violins are drawn here: a
Gaussian kernel density estimate (Scott's bandwidth) cut at each distribution's min and best, as
a symmetric shape of full blocks; the mean is a ◆ on the shape, a dashed line marks the
random-guess level, and min / mean / best / degenerate runs are written under each violin.
Plain text, so it reads on any terminal, in a log and in a Markdown code block."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AXIS = 7  # "  72.3 ┤"


@dataclass
class Violin:
    label: str
    scores: list[float]        # ×100
    degenerate: int = 0


def kde(scores: np.ndarray, at: np.ndarray, bandwidth: float | None = None) -> np.ndarray:
    """Gaussian KDE with Scott's rule (1.06 σ n^-1/5); a floor keeps identical scores visible."""
    n = len(scores)
    sd = scores.std(ddof=1) if n > 1 else 0.0
    bw = bandwidth or max(1.06 * sd * n ** (-1 / 5), 1e-3 * max(1.0, abs(float(scores.mean()))), 0.25)
    z = (at[:, None] - scores[None, :]) / bw
    return np.exp(-0.5 * z**2).sum(axis=1) / (n * bw * np.sqrt(2 * np.pi))


def _fmt(v: float | None) -> str:
    return f"{v:5.1f}" if v is not None else "    ?"


def render_violins(title: str, violins: list[Violin], guess: float | None = None, width: int = 80,
                   height: int = 14) -> str:
    """Text of at most `width` columns: title, `height` plot rows, axis, labels and statistics."""
    shown = [v for v in violins if v.scores]
    if not shown:
        return f"{title}\n(no finished runs)\n"
    col = max(7, min(19, (width - AXIS) // len(shown)))
    if (width - AXIS) // col < len(shown):
        shown = shown[: (width - AXIS) // col]  # what fits; the caller splits long lists
    values = np.concatenate([np.asarray(v.scores, dtype=float) for v in shown])
    lo, hi = float(values.min()), float(values.max())
    if guess is not None:
        lo, hi = min(lo, guess), max(hi, guess)
    pad = max((hi - lo) * 0.04, 0.5)
    lo, hi = lo - pad, hi + pad
    rows = np.linspace(hi, lo, height)  # value at the centre of each row, top to bottom
    step = (hi - lo) / (height - 1)

    def row_of(value: float) -> int:
        return int(round((hi - value) / step))

    grid = [[" "] * (col * len(shown)) for _ in range(height)]
    half_max = (col - 3) // 2
    for i, v in enumerate(shown):
        s = np.asarray(v.scores, dtype=float)
        dens = kde(s, rows)
        top, bottom = row_of(float(s.max())), row_of(float(s.min()))
        inside = np.zeros(height, dtype=bool)
        inside[top : bottom + 1] = True
        peak = dens[inside].max() if inside.any() else 1.0
        centre = i * col + col // 2
        for r in range(height):
            if not inside[r]:
                continue
            half = int(round(dens[r] / peak * half_max)) if peak > 0 else 0
            for c in range(centre - half, centre + half + 1):
                grid[r][c] = "█"
        grid[row_of(float(s.mean()))][centre] = "◆"
    guess_row = row_of(guess) if guess is not None else None
    if guess_row is not None:
        grid[guess_row] = [ch if ch != " " else "╌" for ch in grid[guess_row]]

    label_rows = {0, height - 1} | ({guess_row} if guess_row is not None else set())
    lines = [title[:width]]
    for r in range(height):
        value = guess if r == guess_row else rows[r]  # the guess row is labelled with the guess itself
        axis = f"{_fmt(value)} ┤" if r in label_rows else " " * (AXIS - 1) + "│"
        lines.append((axis + "".join(grid[r])).rstrip())
    lines.append(" " * (AXIS - 1) + "└" + "─" * (col * len(shown)))

    def row(cells: list[str]) -> str:
        return (" " * AXIS + "".join(c[: col - 1].center(col) for c in cells)).rstrip()

    lines.append(row([v.label for v in shown]))
    lines.append(row([f"n {len(v.scores)}" for v in shown]))
    for name, fn in (("min", min), ("mean", lambda s: sum(s) / len(s)), ("best", max)):
        lines.append(row([f"{name} {fn(v.scores):.1f}" for v in shown]))
    lines.append(row([f"degen {v.degenerate}" for v in shown]))
    if guess is not None:
        lines.append(f"{' ' * AXIS}╌╌ random guess {guess:.1f}   ◆ mean")
    return "\n".join(lines) + "\n"
