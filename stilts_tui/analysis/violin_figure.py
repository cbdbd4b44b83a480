"""The violins as a figure file (PNG, SVG or PDF through matplotlib), for `stilts report` and
papers. The shapes are the terminal's (analysis/violin.py's `outline`: the same KDE, the same
bandwidth, cut at min and best), not matplotlib's `violinplot`, whose own KDE and bandwidth
would draw a different shape from the same scores."""

from __future__ import annotations

from pathlib import Path

from stilts_tui.analysis.canvas import PALETTE
from stilts_tui.analysis.violin import Violin, outline
from stilts_tui.errors import StiltsError

SUFFIXES = (".png", ".svg", ".pdf")


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def violin_figure(title: str, violins: list[Violin], guess: float | None, path: Path,
                  majority: float | None = None) -> None:
    """One filled violin per intermediate in its colour, ◆ at the mean, the random-guess level
    dotted and the majority-label level (at or below it: degenerate) dashed, n / mean / best /
    degenerate under each name."""
    if path.suffix.lower() not in SUFFIXES:
        raise StiltsError(f"{path}: a figure file must end in .png, .svg or .pdf")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = [v for v in violins if v.scores]
    fig, ax = plt.subplots(figsize=(1.6 + 1.25 * max(len(shown), 1), 4.2))
    for i, v in enumerate(shown):
        scores = np.asarray(v.scores, dtype=float)
        ys, half = outline(scores, 200)
        r, g, b = PALETTE[(v.colour if v.colour is not None else i) % len(PALETTE)]
        colour = (r / 255, g / 255, b / 255)
        if len(ys) > 1:
            ax.fill_betweenx(ys, i - half, i + half, color=colour, alpha=0.75, linewidth=0.8, edgecolor=colour)
        else:  # every score the same: a line at that score
            ax.hlines(ys[0], i - 0.42, i + 0.42, color=colour, linewidth=2)
        ax.plot([i], [scores.mean()], marker="D", color="black", markersize=4)
    if guess is not None:
        ax.axhline(guess, color="#555555", linestyle=":", linewidth=0.9, label=f"random guess {guess:.1f}")
    if majority is not None and (guess is None or abs(majority - guess) > 1e-9):
        ax.axhline(majority, color="#222222", linestyle="--", linewidth=0.8,
                   label=f"majority label {majority:.1f} (at or below: degenerate)")
    if guess is not None or majority is not None:
        ax.legend(loc="best", fontsize=7, frameon=False)
    ax.set_xticks(range(len(shown)), [f"{v.label}\nn {len(v.scores)} · mean {np.mean(v.scores):.1f}\n"
                                      f"best {max(v.scores):.1f} · degen {v.degenerate}" for v in shown],
                  fontsize=7)
    ax.set_xlim(-0.6, len(shown) - 0.4)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=200)
    plt.close(fig)
