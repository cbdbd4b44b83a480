"""How well a forecast ranks candidates, against what was measured (Poth et al. 2021, "What to
Pre-Train on? Efficient Intermediate Task Selection", Section 5):

- Regret@k = (O − M_k) / O: O the best measured target score over all candidates, M_k the best
  measured score among the forecast's top k; 0 when the top k hold the best candidate. Shown in %.
- NDCG (Järvelin & Kekäläinen 2002) of the forecast order with the measured target scores as the
  relevances: sum of rel_i / log2(i + 1) over forecast ranks i = 1.., divided by the same sum in
  the measured order. 1 is the measured order.
- Spearman's ρ between forecast scores and the measured values (ties get average ranks).

Forecast and measured values are dicts candidate -> value, higher better; only candidates in
both count. Ties in the forecast are broken by name, so an order is always defined."""

from __future__ import annotations

import math

import numpy as np


def forecast_order(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda c: (-scores[c], c))


def _common(forecast: dict[str, float], measured: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    keys = [c for c in forecast if c in measured]
    return {c: forecast[c] for c in keys}, {c: measured[c] for c in keys}


def regret_at(forecast: dict[str, float], measured: dict[str, float], k: int) -> float | None:
    """Relative regret (a fraction; ×100 for %) of the forecast's top k. None without candidates,
    or when the best measured score is not above 0 (the ratio has no meaning there)."""
    f, m = _common(forecast, measured)
    if not f:
        return None
    best = max(m.values())
    if best <= 0:
        return None
    top = forecast_order(f)[:k]
    return (best - max(m[c] for c in top)) / best


def ndcg(forecast: dict[str, float], measured: dict[str, float]) -> float | None:
    """None without candidates, or when a relevance is negative (an MCC below 0) or all are 0."""
    f, m = _common(forecast, measured)
    if not f or min(m.values()) < 0:
        return None

    def dcg(order: list[str]) -> float:
        return sum(m[c] / math.log2(i + 2) for i, c in enumerate(order))

    ideal = dcg(sorted(m, key=lambda c: -m[c]))
    return dcg(forecast_order(f)) / ideal if ideal > 0 else None


def average_ranks(values: list[float]) -> np.ndarray:
    """Ranks 1..n (smallest first), tied values sharing the mean of their ranks."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(forecast: dict[str, float], measured: dict[str, float]) -> float | None:
    """None with fewer than two candidates, or when either side is constant."""
    f, m = _common(forecast, measured)
    if len(f) < 2:
        return None
    a, b = average_ranks(list(f.values())), average_ranks([m[c] for c in f])
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])
