"""Forecasts beside what was measured: `stilts forecast`'s tables, and `stilts results --view
forecast` — for each target with measured pairs, each method's ranking of the intermediates next
to the measured ranking by Δ mean and by Δ best (with their 95 % bootstrap intervals, from
analysis/matrix.py), and the ranking scores of analysis/ranking.py per target and averaged.

Measured performance, for Regret@k and NDCG, is the candidate's own target score: the baseline's
mean (or best) plus its Δ. A candidate whose Δ interval overlaps the best measured candidate's is
marked ≈: the sweep cannot tell the two apart, so a forecast that picks either is not wrong."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stilts_tui.analysis import export
from stilts_tui.analysis.forecast_data import METHOD_LABEL, Forecast, MethodRanking
from stilts_tui.analysis.matrix import TransferMatrix, build_matrix
from stilts_tui.analysis.ranking import ndcg, regret_at, spearman
from stilts_tui.analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from stilts_tui.analysis.tables import Table
from stilts_tui.domain.run import Run
from stilts_tui.errors import StiltsError

MEASURES = {"mean": "Δ mean", "best": "Δ best"}
SCORE_NAMES = ("Regret@1 %", "Regret@3 %", "NDCG", "Spearman ρ")
FILE_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".tex": "latex", ".txt": "table"}


def _ci(ci: tuple[float, float] | None) -> str | None:
    return f"[{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]" if ci else None


# ------------------------------------------------------------------ `stilts forecast`


def forecast_tables(forecast: Forecast) -> tuple[Table, Table]:
    """(each target's ranking per method, each method's cost per target)."""
    rows = []
    for r in forecast.rankings:
        if r.reference is not None:
            rows.append([r.target, METHOD_LABEL[r.method], None, "none (the pretrained model)", r.reference, 0.0])
        for rank, c in enumerate(r.order(), 1):
            above = None if r.reference is None else r.scores[c] - r.reference
            rows.append([r.target, METHOD_LABEL[r.method], rank, c, r.scores[c], above])
    ranks = Table(f"forecast of {forecast.spec} ({forecast.model}, {forecast.sample} sampled train examples per task, "
                  f"seed {forecast.seed})", ["target", "method", "rank", "intermediate", "score", "LogME − none"], rows,
                  note="TextEmb: cosine similarity to the target; LogME: evidence per example of the target's labels "
                       "on the intermediate checkpoint's features (− none: against the pretrained model's)")
    cost_rows = []
    for r in forecast.rankings:
        what = r.not_applicable or (f"no checkpoint: {', '.join(r.missing)}" if r.missing else "")
        cost_rows.append([r.target, METHOD_LABEL[r.method], len(r.scores), r.forward_passes, r.cached_passes,
                          round(r.seconds, 2), what or None])
    cost = Table("cost (forward passes: sequences through an encoder now; cached: read from the feature cache)",
                 ["target", "method", "ranked", "forward passes", "cached", "seconds", "note"], cost_rows,
                 note=f"in all {forecast.forward_passes:,} forward passes in {forecast.seconds:.1f} s (each task's "
                      f"features made once and shared by the rows above; 0: all from the cache), models and "
                      f"tokenizers loaded in {forecast.load_seconds:.1f} s")
    return ranks, cost


def render_forecast(forecast: Forecast, fmt: str, width: int = 120) -> str:
    if fmt == "json":
        return forecast.to_json()
    ranks, cost = forecast_tables(forecast)
    if fmt == "csv":
        return export.to_csv(ranks)
    return export.render(ranks, fmt, width=width) + "\n" + export.render(cost, fmt, width=width)


# ------------------------------------------------------------------ forecast vs measured


@dataclass
class Measured:
    """One target's measured candidates: Δ and absolute score, and the Δ's interval, per measure."""

    delta: dict[str, dict[str, float]] = field(default_factory=dict)      # measure -> candidate -> Δ
    score: dict[str, dict[str, float]] = field(default_factory=dict)      # measure -> candidate -> baseline + Δ
    ci: dict[str, dict[str, tuple[float, float] | None]] = field(default_factory=dict)


def measured(matrix: TransferMatrix, target: str, candidates: Iterable[str]) -> Measured:
    out = Measured()
    for stat in MEASURES:
        base = matrix.cell(target, matrix.baseline, stat)
        out.delta[stat], out.score[stat], out.ci[stat] = {}, {}, {}
        for c in candidates:
            cell = matrix.cell(target, c, stat)
            if cell is None or cell.value is None or base is None or base.value is None:
                continue
            out.delta[stat][c] = cell.value
            out.score[stat][c] = base.value + cell.value
            out.ci[stat][c] = cell.ci
    return out


def _separable(m: Measured, stat: str, c: str) -> str:
    """best (every candidate tied at the top), ≈ (its interval overlaps the best's: the sweep
    cannot separate them) or < (clearly below the best)."""
    deltas = m.delta[stat]
    top = max(deltas.values())
    if deltas[c] >= top:
        return "best"
    best = min(k for k, v in deltas.items() if v >= top)
    a, b = m.ci[stat].get(c), m.ci[stat].get(best)
    if a is None or b is None:
        return "?"
    return "≈" if a[1] >= b[0] else "<"


def measured_ranks(values: dict[str, float]) -> dict[str, int]:
    """1 for the highest; tied values share the better rank (1, 1, 3)."""
    return {c: 1 + sum(v > values[c] for v in values.values()) for c in values}


@dataclass
class Scores:
    target: str
    method: str
    measure: str
    n: int
    regret1: float | None
    regret3: float | None
    ndcg: float | None
    rho: float | None

    def row(self) -> list:
        pct = [None if v is None else v * 100 for v in (self.regret1, self.regret3)]
        return [self.target, METHOD_LABEL[self.method], MEASURES[self.measure], self.n, *pct, self.ndcg, self.rho]


def scores_of(ranking: MethodRanking, m: Measured, stat: str) -> Scores:
    f = ranking.scores
    return Scores(ranking.target, ranking.method, stat, sum(c in m.score[stat] for c in f),
                  regret_at(f, m.score[stat], 1), regret_at(f, m.score[stat], 3), ndcg(f, m.score[stat]),
                  spearman(f, m.delta[stat]))


@dataclass
class ForecastView:
    rankings: Table
    scores: Table
    flat: Table            # one row per (target, method, intermediate) with its scores: CSV and JSON


def _latest(forecasts: list[Forecast]) -> dict[tuple[str, str], MethodRanking]:
    out: dict[tuple[str, str], MethodRanking] = {}
    for f in forecasts:
        for r in f.rankings:
            out[(r.target, r.method)] = r
    return out


def _average(scores: list[Scores], method: str, stat: str) -> list:
    chosen = [s for s in scores if s.method == method and s.measure == stat]

    def mean(values: list[float | None]) -> float | None:
        got = [v for v in values if v is not None]
        return sum(got) / len(got) if got else None

    avg = Scores("average", method, stat, sum(s.n for s in chosen), mean([s.regret1 for s in chosen]),
                 mean([s.regret3 for s in chosen]), mean([s.ndcg for s in chosen]), mean([s.rho for s in chosen]))
    return avg.row()


def forecast_view(records: Sequence[Run | Mapping[str, Any]], forecasts: list[Forecast], baseline: str = "none",
                  resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> ForecastView:
    matrix = build_matrix(records, ("mean", "best"), baseline, resamples=resamples, seed=seed)
    latest = _latest(forecasts)
    rank_rows: list[list] = []
    flat_rows: list[list] = []
    all_scores: list[Scores] = []
    for target in matrix.targets:
        for method in ("textemb", "logme"):
            ranking = latest.get((target, method))
            if ranking is None or not ranking.scores:
                continue
            m = measured(matrix, target, ranking.scores)
            if not m.delta["mean"]:
                continue
            by = {stat: measured_ranks(m.delta[stat]) for stat in MEASURES}
            sc = {stat: scores_of(ranking, m, stat) for stat in MEASURES}
            all_scores += sc.values()
            for rank, c in enumerate(ranking.order(), 1):
                cells = []
                for stat in MEASURES:
                    known = c in m.delta[stat]
                    cells += [by[stat].get(c), m.delta[stat].get(c),
                              _ci(m.ci[stat].get(c)), _separable(m, stat, c) if known else None]
                rank_rows.append([target, METHOD_LABEL[method], rank, c, ranking.scores[c], *cells])
                flat_rows.append([target, method, rank, c, ranking.scores[c], *cells,
                                  *[v for stat in MEASURES for v in sc[stat].row()[4:]]])
    measured_cols = [f"{label}{suffix}" for label in MEASURES.values()
                     for suffix in (" rank", "", " 95% CI", " vs best")]
    cols = ["target", "method", "rank", "intermediate", "forecast", *measured_cols]
    score_idx = {cols.index(label) for label in MEASURES.values()}
    note = (f"measured: Δ against {baseline}, 95% percentile-bootstrap intervals ({resamples:,} resamples, seed {seed}); "
            "vs best: ≈ where the interval overlaps the best measured intermediate's (the sweep cannot separate "
            "them), < where it lies below")
    rankings = Table("forecast vs measured: each method's ranking beside the measured one", cols, rank_rows, score_idx,
                     note)
    score_rows = [s.row() for s in all_scores]
    for method in ("textemb", "logme"):
        for stat in MEASURES:
            if any(s.method == method and s.measure == stat for s in all_scores):
                score_rows.append(_average(all_scores, method, stat))
    scores = Table("ranking scores (Poth et al. 2021): Regret@k of the target score, NDCG, Spearman ρ vs the Δ",
                   ["target", "method", "against", "candidates", *SCORE_NAMES], score_rows,
                   note="Regret@k: how far (%) the best of the forecast's top k falls below the best measured "
                        "intermediate; NDCG 1 and ρ 1: the measured order; — where undefined (a best score at or below 0, "
                        "a constant side), left out of the averages. With 3 candidates Regret@3 is 0 by "
                        "construction; with 2, ρ is ±1")
    flat_cols = [*cols, *[f"{label} {s}" for label in MEASURES.values() for s in SCORE_NAMES]]
    flat = Table("forecast vs measured", flat_cols, flat_rows, score_idx)
    return ForecastView(rankings, scores, flat)


def render_forecast_view(records: Sequence[Run | Mapping[str, Any]], forecasts: list[Forecast], fmt: str, baseline: str = "none",
                         resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, width: int = 120) -> str:
    if not forecasts:
        return ("no forecast saved beside this results file yet: stilts forecast SPEC --db DB makes one\n")
    view = forecast_view(records, forecasts, baseline, resamples, seed)
    if not view.rankings.rows:
        return "no target has both a forecast and measured pairs against the baseline yet\n"
    if fmt == "csv":
        return export.to_csv(view.flat)
    if fmt == "json":
        return export.to_json(view.flat)
    return export.render(view.rankings, fmt, width=width) + "\n" + export.render(view.scores, fmt, width=width)


def write_forecast_view(path: Path, records: Sequence[Run | Mapping[str, Any]], forecasts: list[Forecast], **kw) -> str:
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise StiltsError(f"{path}: the forecast view is a table: write it as .csv, .json, .md, .tex or .txt")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_forecast_view(records, forecasts, fmt, **kw), encoding="utf-8")
    except OSError as exc:
        raise StiltsError(f"could not write {path}: {exc.strerror or exc}",
                          "choose a folder you can write to (-o DIR/FILE)") from None
    return fmt
