"""The views a paper needs, as plain tables (scores on the metric's 0-1 scale; renderers show
×100): the pair table, Table 2 (best per intermediate and target), Table 3 (Δ mean / Δ best
against the baseline), Table 4 (zero-shot accuracy), and Figure 3 (improvement against the
intermediate's training size)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stilts_tui.analysis.degenerate import MARK as DEGENERATE_MARK
from stilts_tui.analysis.stats import PairStats, permutation_rule
from stilts_tui.domain.run import Run, runs_of


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list]                 # cells: str, int, float (score scale 0-1 unless `raw`), None
    scores: set[int] = field(default_factory=set)   # column indices holding scores (×100 when shown)
    note: str = ""
    # score columns that are differences, shown with their sign (+0.4); None: those named with a Δ
    signed: set[int] | None = None

    def is_signed(self, i: int) -> bool:
        return i in self.signed if self.signed is not None else "Δ" in self.columns[i]


def _order(names: set[str], baseline: str) -> list[str]:
    return sorted(names, key=lambda n: (n != baseline, n))


def _ci(ci: tuple[float, float] | None) -> str | None:
    return f"[{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]" if ci else None


def pair_table(stats: list[PairStats], resamples: int, seed: int,
               from_degenerate: Mapping[tuple[str, str], int] | None = None) -> Table:
    """`from_degenerate` ((intermediate, target) -> runs that start from a degenerate intermediate
    run, analysis/degenerate.py) marks those pairs: their Δ measures a transfer from nothing."""
    flagged = from_degenerate or {}
    group_keys = sorted({k for s in stats for k in s.group})
    cols = ["target", "intermediate", *group_keys, "metric", "n", "min", "mean", "median", "best", "std", "degenerate",
            "mean w/o degenerate", "Δ mean", "Δ best", "win rate", "paired Δ", "p", "mean 95% CI", "best 95% CI",
            "failed"]
    rows = []
    for s in stats:
        bad = flagged.get((s.intermediate, s.target), 0)
        rows.append([s.target, s.intermediate + (f" {DEGENERATE_MARK}" if bad else ""), *[s.group.get(k) for k in group_keys], s.metric,
                     s.n if not s.pending else f"{s.n} (+{s.pending})", s.min, s.mean, s.median, s.best, s.std,
                     s.degenerate, s.mean_nondegenerate, s.delta_mean, s.delta_best, s.win_rate, s.paired_mean_diff,
                     s.p_value, _ci(s.ci_mean), _ci(s.ci_best), s.failed])
    score_cols = {cols.index(c) for c in ("min", "mean", "median", "best", "std", "mean w/o degenerate", "Δ mean",
                                         "Δ best", "paired Δ")}
    baseline = next((s.baseline for s in stats if s.baseline), None)
    note = (f"95% percentile-bootstrap intervals from {resamples:,} resamples; {permutation_rule()} (of the runs' "
            f"means); seed {seed}"
            + (f"; Δ, win rate and paired Δ against {baseline} (paired: identical grid points)" if baseline else "")
            + "".join(f"; {DEGENERATE_MARK} {n} run(s) of {i} → {t} start from a degenerate {i} run (its dev score at "
                      f"or below the degenerate threshold: it learned nothing)" for (i, t), n in sorted(flagged.items())
                      if any(s.intermediate == i and s.target == t for s in stats)))
    return Table("dev scores per (intermediate, target)" + models_note(stats), cols, rows, score_cols, note)


def models_note(stats: list[PairStats]) -> str:
    """Which model the numbers are of: named in the title when it is one (else a column says)."""
    models = {s.model for s in stats if s.model}
    return f" of {models.pop()}" if len(models) == 1 else ""


def pair_records(stats: list[PairStats]) -> list[dict]:
    """Flat records with snake_case keys and full precision (0-1 scale): CSV and JSON."""
    out = []
    for s in stats:
        d = s.as_dict()
        for name in ("ci_mean", "ci_best"):
            ci = d.pop(name)
            d[f"{name}_low"], d[f"{name}_high"] = ci if ci else (None, None)
        out.append(d)
    return out


def table2(stats: list[PairStats], baseline: str = "none") -> Table:
    targets = sorted({s.target for s in stats})
    best = {(s.intermediate, s.target): s.best for s in stats}
    inters = _order({s.intermediate for s in stats}, baseline)
    rows = [[i, *[best.get((i, t)) for t in targets]] for i in inters]
    return Table("Table 2: best dev score per intermediate and target", ["intermediate", *targets], rows,
                 set(range(1, len(targets) + 1)))


def table3(stats: list[PairStats], baseline: str = "none") -> Table:
    targets = sorted({s.target for s in stats})
    by = {(s.intermediate, s.target): s for s in stats}
    inters = [i for i in _order({s.intermediate for s in stats}, baseline) if i != baseline]
    cols = ["intermediate"] + [f"{t} {m}" for t in targets for m in ("Δ mean", "Δ best")]
    rows = []
    for i in inters:
        cells: list = [i]
        for t in targets:
            s = by.get((i, t))
            cells += [s.delta_mean if s else None, s.delta_best if s else None]
        rows.append(cells)
    return Table(f"Table 3: Δ mean and Δ best against {baseline}", cols, rows, set(range(1, len(cols))))


def table4(records: Iterable[Run | Mapping[str, Any]]) -> Table:
    """Zero-shot: the intermediate checkpoint evaluated on the target's dev set, no target training."""
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs_of(records):
        if r.kind == "zero_shot" and r.finished and r.score is not None:
            scores[(r.intermediate, r.target)].append(r.score)
    targets = sorted({t for _, t in scores})
    inters = sorted({i for i, _ in scores})
    rows = [[i, *[(sum(v) / len(v)) if (v := scores.get((i, t))) else None for t in targets]] for i in inters]
    return Table("Table 4: zero-shot dev accuracy", ["intermediate", *targets], rows, set(range(1, len(targets) + 1)))


def size_points(stats: list[PairStats], baseline: str = "none") -> dict[tuple[str, str], list[tuple[int, float, float]]]:
    """(intermediate family, target) -> [(size, Δ best, Δ mean)] for intermediates named `name@size`."""
    out: dict[tuple[str, str], list[tuple[int, float, float]]] = defaultdict(list)
    for s in stats:
        name, at, size = s.intermediate.partition("@")
        if at and size.isdigit() and s.delta_best is not None and s.delta_mean is not None:
            out[(name, s.target)].append((int(size), s.delta_best, s.delta_mean))
    return {k: sorted(v) for k, v in out.items()}


def figure3_table(stats: list[PairStats], baseline: str = "none") -> Table:
    rows = [[f"{name}@{size}", target, size, db, dm]
            for (name, target), pts in sorted(size_points(stats, baseline).items()) for size, db, dm in pts]
    return Table(f"Figure 3: improvement over {baseline} against intermediate size",
                 ["intermediate", "target", "size", "Δ best", "Δ mean"], rows, {3, 4})


def figure3_plot(stats: list[PairStats], baseline: str = "none", width: int = 78, height: int = 18) -> str:
    """Δ best (o) and Δ mean (x) ×100 against the intermediate's size, one pair of lines per target."""
    from stilts_tui.analysis import canvas

    points = size_points(stats, baseline)
    if not points:
        return "Figure 3: no intermediate named NAME@SIZE with a baseline to compare\n"
    chunks = []
    for (name, target), pts in sorted(points.items()):
        with canvas.chart(width, height, color=False) as fig:
            xs = [p[0] for p in pts]
            for label, idx, mark in (("Δ best", 1, "o"), ("Δ mean", 2, "x")):
                sig = fig.signal(xs, [p[idx] * 100 for p in pts], marker=mark)
                sig.lines()
                sig.label(label)
                fig.draw(sig)
            fig.title(f"{name} → {target}: improvement over {baseline} (×100) vs training size")
            chunks.append(canvas.text(fig, color=False).rstrip())
    return "\n\n".join(chunks) + "\n"
