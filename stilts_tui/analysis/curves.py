"""Training curves in the terminal through plotext: one run's loss (or learning rate) against its
steps, with its evaluations, or several runs overlaid, each labelled by what differs between
them (`lr 1e-05 seed 12`). plotext's braille marker puts 2×4 points in a character cell, so a
curve keeps its shape in a small panel. Output is plain text, or text with ANSI colours
(`color=True`) that the app turns into styled text (never markup: labels come from runs).

The curves are handed in as numbers: reading event logs is the caller's job (analysis reads
records, not the worker's files)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stilts_tui.analysis import canvas

# What tells runs of one sweep apart, in the order a label names them.
LABEL_FIELDS = (("intermediate", "from"), ("target", ""), ("lr", "lr"), ("batch_size", "bs"),
                ("warmup_ratio", "wu"), ("seed", "seed"), ("train_size", "size"), ("dropout", "drop"),
                ("restart", "restart"))


@dataclass
class Curve:
    label: str
    steps: list[float]
    values: list[float]
    marks: list[tuple[float, float]] = field(default_factory=list)   # (step, value): evaluations


def differing_labels(configs: Sequence[Mapping], ids: Sequence[str]) -> list[str]:
    """A label per run from the fields whose values differ between the runs (the run id when
    none do, or for a single run its pair)."""
    keys = [(k, name) for k, name in LABEL_FIELDS if len({repr(c.get(k)) for c in configs}) > 1]
    if not keys:
        return [f"{c.get('intermediate') or 'none'} → {c.get('target', '?')}" if len(configs) == 1 else run_id
                for c, run_id in zip(configs, ids, strict=True)]
    return [" ".join(f"{name} {_fmt(c.get(k))}".strip() for k, name in keys) for c in configs]


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def finite_points(curve: Curve) -> tuple[Curve, int]:
    """The curve without its NaN and infinite points, and how many those were. The worker never
    reports one (a non-finite loss ends the run), but an event log is a text file: a hand-edited
    `"loss": NaN` reads (Python's json takes it), and plotext aborts the process on it."""
    keep = [(s, v) for s, v in zip(curve.steps, curve.values, strict=True) if math.isfinite(s) and math.isfinite(v)]
    marks = [(s, v) for s, v in curve.marks if math.isfinite(s) and math.isfinite(v)]
    dropped = len(curve.steps) - len(keep) + len(curve.marks) - len(marks)
    return Curve(curve.label, [s for s, _ in keep], [v for _, v in keep], marks), dropped


def render_curves(curves: Sequence[Curve], title: str, ylabel: str = "loss", width: int = 80, height: int = 16,
                  color: bool = False) -> str:
    """The curves in one chart of `width` × `height` characters; an empty note when none has points."""
    cleaned = [finite_points(c) for c in curves]
    dropped = sum(n for _, n in cleaned)
    note = f"({dropped} point(s) not finite (NaN or infinite) in the event log: left out)\n" if dropped else ""
    shown = [c for c, _ in cleaned if c.steps]
    if not shown:
        return f"{title}\n(no {ylabel} reported yet)\n{note}"
    with canvas.chart(max(width, 30), max(height, 8), color) as fig:
        for c in shown:
            line = fig.signal(c.steps, c.values, marker="braille")
            line.lines()
            if len(shown) > 1:
                line.label(c.label)
            fig.draw(line)
            if c.marks:
                fig.draw(fig.signal([m[0] for m in c.marks], [m[1] for m in c.marks], marker="◆"))
        fig.title(title)
        fig.label("step", axis="x")
        fig.label(ylabel, axis="y")
        return canvas.text(fig, color) + note
