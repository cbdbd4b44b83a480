"""The transfer matrix, the correlations and the ranking as what screens and files show: heat grids
(analysis/heatmap.py), a ranking table, and flat records at full precision for CSV and JSON."""

from __future__ import annotations

import math

from stilts_tui.analysis.correlation import Correlations
from stilts_tui.analysis.heatmap import Heat, HeatCell
from stilts_tui.analysis.matrix import STAT_LABEL, Cell, Ranked, TransferMatrix
from stilts_tui.analysis.significance import MIN_MODELS, RELIABLE_MODELS
from stilts_tui.analysis.stats import permutation_rule
from stilts_tui.analysis.tables import Table

SHORT = {"mean": "Δmean", "best": "Δbest", "median": "Δmed", "degenerate": "degen"}
BASE_SHORT = {"mean": "mean", "best": "best", "median": "median", "degenerate": "degen"}
CORRELATION_SHOWS = ("full", "targets")


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above x (the colour scale's end)."""
    if x <= 0:
        return 1.0
    k = math.floor(math.log10(x))
    return next(m * 10.0 ** k for m in (1, 2, 5, 10) if m * 10.0 ** k >= x - 1e-12)


# The smallest automatic colour scale (×100): a matrix whose largest |Δ| is a fraction of a point
# keeps it pale instead of painting −0.3 as the strongest red (--scale sets any other end).
MIN_SCALE = 1.0


def _scale(m: TransferMatrix) -> float:
    deltas = [abs(c.value) * 100 for c in m.cells.values()
              if c.value is not None and c.column != m.baseline and c.stat != "degenerate"]
    return nice_ceiling(max([*deltas, MIN_SCALE]))


def _cell(m: TransferMatrix, c: Cell | None, scale: float, max_degenerate: int) -> HeatCell:
    if c is None or c.value is None:
        return HeatCell("…" if c is not None and c.pending else "—")
    if c.stat == "degenerate":
        return HeatCell(f"{int(c.value)}", -c.value / max_degenerate if max_degenerate and c.column != m.baseline else None)
    if c.column == m.baseline:
        return HeatCell(f"{c.value * 100:.1f} ")
    return HeatCell(f"{c.value * 100:+.1f}" + ("*" if m.significant(c) else " "), c.value * 100 / scale)


def _average_cell(m: TransferMatrix, column: str, stat: str, probes: bool, scale: float) -> HeatCell:
    value, have, total = m.average(column, stat, probes)
    if value is None:
        return HeatCell("—")
    partial = "~" if have < total else " "
    if stat == "degenerate":
        return HeatCell(f"{value:.1f}{partial}")
    if column == m.baseline:
        return HeatCell(f"{value * 100:.1f}{partial}")
    return HeatCell(f"{value * 100:+.1f}{partial}", value * 100 / scale)


def matrix_columns(m: TransferMatrix) -> list[tuple[str, str]]:
    return [(col, stat) for col in [m.baseline, *m.columns] for stat in m.stats]


def matrix_heat(m: TransferMatrix, scale: float | None = None) -> Heat:
    stated = scale
    scale = scale or _scale(m)
    max_degenerate = int(max((c.value or 0 for c in m.cells.values() if c.stat == "degenerate"), default=0))
    cols = matrix_columns(m)
    labels = [col if len(m.stats) == 1 else f"{col}\n{SHORT[stat] if col != m.baseline else BASE_SHORT[stat]}"
              for col, stat in cols]
    rows = [[_cell(m, m.cell(r, col, stat), scale, max_degenerate) for col, stat in cols] for r in m.rows]
    row_labels = list(m.rows)
    breaks = {len(m.targets)} if m.probes and m.targets else set()
    extra: list[tuple[str, list[HeatCell]]] = []
    if m.targets:
        extra.append(("avg targets", [_average_cell(m, col, stat, False, scale) for col, stat in cols]))
    if m.probes:
        extra.append(("avg probes", [_average_cell(m, col, stat, True, scale) for col, stat in cols]))
        extra.append(("probes lost (sig.)", [HeatCell("") if col == m.baseline or stat == "degenerate" else
                                              HeatCell(str(n := m.losses(col, stat)), -n / len(m.probes) if n else None)
                                              for col, stat in cols]))
    if extra:
        breaks.add(len(row_labels))
    for label, cells in extra:
        row_labels.append(label)
        rows.append(cells)
    stats = ", ".join(STAT_LABEL[s] for s in m.stats)
    metrics = sorted(set(m.metrics.values()))
    return Heat(title=f"Transfer matrix against {m.baseline}: {stats} (scores and Δ ×100)",
                corner="target \\ intermediate", row_labels=row_labels, col_labels=labels, rows=rows, breaks=breaks,
                cell_width=7 if len(m.stats) == 1 else 8,
                scale_text=(f"{-scale:+g}", f"{scale:+g}"),
                legend=[*_legend(m, metrics), f"colour at full strength from |Δ| {scale:g} ×100 ("
                        + ("--scale" if stated else f"the largest |Δ|, at least {MIN_SCALE:g}; --scale sets it") + ")"])


def _legend(m: TransferMatrix, metrics: list[str]) -> list[str]:
    lines = [f"each cell: the intermediate's {'/'.join(STAT_LABEL[s] for s in m.stats)} minus {m.baseline}'s, ×100 "
             f"(metric: {', '.join(metrics) or '—'}); the {m.baseline} column: its own score ×100"]
    if any(s != "degenerate" for s in m.stats):
        if m.mark == "holm":
            families = "; ".join(f"{STAT_LABEL[s]}: {h.describe()}" for s, h in m.holm.items() if s != "degenerate")
            lines.append(f"* the p passes {families}; {permutation_rule()}")
        else:
            lines.append(f"* the 95% bootstrap interval of the difference excludes 0 ({m.resamples:,} resamples, seed "
                         f"{m.seed}; restarts are the units where runs have restarts, else runs); a cell's p: "
                         f"{permutation_rule().replace('permutation p,', 'permutation,')}")
    lines.append("— no finished runs or no baseline to compare with; … runs still queued or running; "
                 "~ an average over fewer rows than the matrix has")
    if m.probes:
        lines.append("rows below the first rule are probes: a negative cell is a skill the intermediate lost")
    if m.mixing_left_out:
        lines.append(f"{m.mixing_left_out} frozen-encoder (mixing) probe runs left out, as the study's figure")
    return lines


def matrix_records(m: TransferMatrix) -> list[dict]:
    out = []
    for (row, col, stat), c in sorted(m.cells.items()):
        out.append({"row": row, "role": "probe" if row in m.probes else "target", "metric": m.metrics.get(row),
                    "intermediate": col, "baseline": m.baseline, "stat": stat,
                    "value": c.value, "is_baseline": col == m.baseline,
                    "ci_low": c.ci[0] if c.ci else None, "ci_high": c.ci[1] if c.ci else None, "p": c.p,
                    "holm_pass": c.holm_pass, "significant": m.significant(c), "n": c.n, "units": c.units,
                    "pending": c.pending, "failed": c.failed})
    return out


def _rho(corr: Correlations, a: str, b: str, significant: set[tuple[str, str]], label_all: bool) -> HeatCell:
    if a == b:
        return HeatCell("·")
    s = corr.pair(a, b)
    if s.rho is None:
        return HeatCell("const" if s.reason == "a constant column" else "n/a")
    sig = (a, b) in significant
    text = f"{s.rho:+.2f}" + ("*" if sig else " ") if label_all or sig else ""
    return HeatCell(text, s.rho)


def correlation_heat(corr: Correlations, show: str = "full") -> Heat:
    full = show == "full"
    rows = corr.columns if full else corr.targets
    significant = corr.significant_full if full else corr.significant_targets
    family = corr.holm_full if full else corr.holm_targets
    grid = [[_rho(corr, a, b, significant, full) for b in corr.columns] for a in rows]
    few = [f"{c} ({corr.models_of(c)})" for c in corr.columns if corr.models_of(c) < RELIABLE_MODELS]
    legend = [f"Spearman's ρ over {len(corr.models)} intermediate-trained model{'' if len(corr.models) == 1 else 's'} (intermediate × restart; "
              f"{corr.baseline} excluded), each pair over the models both columns have",
              f"* {family.describe() if family else 'no tests'} (family: "
              + ("every distinct pair of columns)" if full else
                 "each target row × every column, the diagonal and both orders included, as the study's code)"
                 if corr.variant == "jiant" else "every distinct pair with a target)"),
              f"n/a: fewer than {MIN_MODELS} models share the pair (the study's minimum); const: a column with one value"]
    if not full:
        legend.append("only significant cells are labelled; the colour shows every ρ")
    if few:
        legend.append(f"fewer than {RELIABLE_MODELS} models, where the t approximation's p (the study's) can pass "
                      f"but no exact test could: {', '.join(few)}")
    title = "Correlations: Spearman's ρ between " + ("every target and probe column" if full else "targets and every column")
    return Heat(title=title, corner="" if full else "target", row_labels=list(rows), col_labels=list(corr.columns),
                rows=grid, legend=legend, breaks={len(corr.targets)} if full and corr.probes and corr.targets else set(),
                scale_text=("ρ −1", "ρ +1"))


def correlation_records(corr: Correlations) -> list[dict]:
    out = []
    for i, a in enumerate(corr.columns):
        for b in corr.columns[i + 1:]:
            s = corr.pair(a, b)
            out.append({"a": a, "b": b, "a_role": "probe" if a in corr.probes else "target",
                        "b_role": "probe" if b in corr.probes else "target", "rho": s.rho, "p": s.p, "n": s.n,
                        "reason": s.reason, "holm_pass_full": (a, b) in corr.significant_full,
                        "holm_pass_targets": (a, b) in corr.significant_targets})
    return out


def ranking_table(target: str, baseline: str, head: Ranked | None, ranked: list[Ranked], resamples: int) -> Table:
    def ci(r: Ranked, signed: bool) -> str | None:
        if not r.ci:
            return None
        fmt = "{:+.1f}" if signed else "{:.1f}"
        return "[" + fmt.format(r.ci[0] * 100) + ", " + fmt.format(r.ci[1] * 100) + "]"

    rows: list[list] = []
    if head:
        rows.append(["—", f"{baseline} (baseline)", None, ci(head, False), None, head.n, head.units, head.mean])
    for k, r in enumerate(ranked, 1):
        rows.append([k, r.intermediate, r.delta, ci(r, True), r.p, r.n, r.units, r.mean])
    note = (f"Δ mean ×100 against {baseline} with its 95% percentile-bootstrap interval ({resamples:,} resamples; "
            f"restarts as units where runs have restarts); {permutation_rule()}; units: restarts, or runs")
    return Table(f"{target}: intermediates ranked by Δ mean against {baseline}",
                 ["rank", "intermediate", "Δ mean", "95% CI", "p", "runs", "units", "mean"], rows, {2, 7}, note)
