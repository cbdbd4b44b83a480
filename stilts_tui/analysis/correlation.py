"""Which skills go with which gains: Spearman's ρ between every pair of target and probe columns,
computed over the intermediate-trained models (the second study's Figure 3). A model is one
intermediate's restart (the baseline excluded, as the study did); its value on a column is its dev
score there (the mean over its runs when a grid gives it several). Pairs are compared over the
models both columns have. Significance: Holm–Bonferroni at α = 0.05 over the family of distinct
column pairs the view shows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stilts_tui.analysis import paper_order
from stilts_tui.analysis.paper_order import in_order
from stilts_tui.analysis.significance import ALPHA, MIN_MODELS, Holm, Spearman, holm, spearman_pairs
from stilts_tui.domain.run import Run, runs_of

Model = tuple[str, int | None]        # (intermediate, restart)


@dataclass
class Correlations:
    columns: list[str]                 # targets, then probes
    probes: set[str]
    models: list[Model]
    values: np.ndarray                 # models × columns, NaN where a model has no score
    baseline: str
    pairs: dict[tuple[str, str], Spearman] = field(default_factory=dict)   # both orders
    holm_full: Holm | None = None
    holm_targets: Holm | None = None
    significant_full: set[tuple[str, str]] = field(default_factory=set)
    significant_targets: set[tuple[str, str]] = field(default_factory=set)
    variant: str = "jiant"

    @property
    def targets(self) -> list[str]:
        return [c for c in self.columns if c not in self.probes]

    def pair(self, a: str, b: str) -> Spearman:
        return self.pairs[(a, b)]

    def models_of(self, column: str) -> int:
        return int((~np.isnan(self.values[:, self.columns.index(column)])).sum())


def _family(pairs: list[tuple[str, str]], corr: Correlations, alpha: float, variant: str,
            symmetric: bool = True) -> tuple[Holm, set[tuple[str, str]]]:
    tested = [(a, b) for a, b in pairs if corr.pairs[(a, b)].p is not None]
    result = holm([corr.pairs[k].p or 0.0 for k in tested], alpha, variant)
    passed = {k for k, ok in zip(tested, result.rejected, strict=True) if ok}
    return result, passed | {(b, a) for a, b in passed} if symmetric else passed


def is_mixing(run: Run) -> bool:
    """A frozen-encoder probe: the study kept these out of its transfer and correlation figures
    (plot_results.py l. 149 drops the _MIX columns)."""
    return run.value("transfer") == "frozen_mix"


def correlations(records: Iterable[Run | Mapping[str, Any]], baseline: str = "none", alpha: float = ALPHA,
                 min_models: int = MIN_MODELS, variant: str = "jiant", paper: bool = False) -> Correlations:
    """Spearman between every pair of columns. The targets view's Holm family is, with the study's
    `jiant` variant, every cell of its target rows × all columns as plot_results.py l. 224-227 hands
    them to `holm_bonferoni` (the diagonal's p = 0 and both orders of a target pair included);
    with `standard`, each distinct pair that involves a target once. The full view's family is
    every distinct pair (the study marked nothing there)."""
    scores: dict[tuple[Model, str], list[float]] = defaultdict(list)
    probes: set[str] = set()
    tasks: set[str] = set()
    for r in runs_of(records):
        if r.kind != "target" or is_mixing(r):
            continue
        task = r.target
        tasks.add(task)
        if r.value("probe"):
            probes.add(task)
        if r.intermediate != baseline and r.finished and r.score is not None:
            scores[((r.intermediate, r.value("restart")), task)].append(r.score)
    if paper:   # the study's figure order (`--order paper`)
        columns = in_order(tasks - probes, paper_order.TARGETS) + in_order(tasks & probes, paper_order.PROBES)
    else:
        columns = sorted(tasks - probes) + sorted(tasks & probes)
    models = sorted({m for m, _ in scores}, key=lambda m: (m[0], m[1] is None, m[1] or 0))
    values = np.full((len(models), len(columns)), np.nan)
    row_of, col_of = {m: i for i, m in enumerate(models)}, {c: j for j, c in enumerate(columns)}
    for (model, task), v in scores.items():
        values[row_of[model], col_of[task]] = sum(v) / len(v)
    corr = Correlations(columns, probes, models, values, baseline, variant=variant)
    for (i, j), result in spearman_pairs(values, min_models).items():
        corr.pairs[(columns[i], columns[j])] = corr.pairs[(columns[j], columns[i])] = result
    distinct = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1:]]
    corr.holm_full, corr.significant_full = _family(distinct, corr, alpha, variant)
    targets = corr.targets
    if variant == "jiant":
        block = [(a, b) for a in targets for b in columns]
        corr.holm_targets, corr.significant_targets = _family(block, corr, alpha, variant, symmetric=False)
    else:
        shown = [(a, b) for a, b in distinct if a in targets or b in targets]
        corr.holm_targets, corr.significant_targets = _family(shown, corr, alpha, variant)
    return corr
