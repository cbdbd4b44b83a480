"""Rank correlation and multiple-comparison control, in numpy alone (scipy checks them in the
tests): Spearman's ρ with the p-value scipy.stats.spearmanr gives (Student's t on n − 2 degrees of
freedom), and Holm's step-down procedure (Holm 1979), the correction the second study applied."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

ALPHA = 0.05
# The second study computes a correlation from 3 shared models up (jiant taskmaster_v1,
# scripts/taskmaster_v1/calculate_correlations.py l. 93-94: "Require at least n = 3"); fewer
# show no number. Below RELIABLE_MODELS no exact two-sided test could reach p < 0.05 (the smallest
# exact p at n = 4 is 1/12) although the t approximation the study used can: views say so.
MIN_MODELS = 3
RELIABLE_MODELS = 5
HolmVariant = Literal["jiant", "standard"]
HOLM_VARIANTS = ("jiant", "standard")


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (scipy's rankdata, method="average")."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2
    return ranks


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function, by the modified Lentz method."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided(t: float, df: int) -> float:
    """P(|T| ≥ |t|) for Student's t with df degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


@dataclass(frozen=True)
class Spearman:
    rho: float | None
    p: float | None
    n: int
    reason: str | None = None     # why there is no number: too few models, a constant column


def spearman(x: np.ndarray, y: np.ndarray, min_n: int = MIN_MODELS) -> Spearman:
    """ρ over the observations both have (NaN marks a missing one)."""
    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    n = len(x)
    if n < min_n:
        return Spearman(None, None, n, f"{n} model{'s' if n != 1 else ''} (a test needs {min_n})")
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom == 0.0:
        return Spearman(None, None, n, "a constant column")
    rho = max(-1.0, min(1.0, float(rx @ ry) / denom))
    df = n - 2
    t = math.inf if abs(rho) >= 1.0 else rho * math.sqrt(df / ((1.0 + rho) * (1.0 - rho)))
    return Spearman(rho, t_two_sided(t, df), n)


@dataclass(frozen=True)
class Holm:
    """Holm's step-down procedure over a family of m p-values: the k-th smallest is compared with
    its threshold, and the first that fails stops it (every larger p fails too).

    standard (Holm 1979): α/(m − k + 1), from α/m up to α.
    jiant: the second study's own code, plot_results.py l. 139-143 (`holm_bonferoni`): the k-th
    smallest against α/(m − k + 2), from α/(m + 1) up to α/2 — one test more conservative."""

    alpha: float
    m: int
    rejected: tuple[bool, ...]          # in the order the p-values were given
    thresholds: tuple[float, ...]       # the k-th smallest p's threshold, k = 1 … m
    variant: str = "standard"

    @property
    def passed(self) -> int:
        return sum(self.rejected)

    def describe(self) -> str:
        if not self.m:
            return "Holm–Bonferroni: no test in the family"
        rule = "α/(m−k+2), as the study's plot_results.py" if self.variant == "jiant" else "α/(m−k+1)"
        last = self.thresholds[self.passed - 1] if self.passed else None
        return (f"Holm–Bonferroni at α = {self.alpha:g} over {self.m} tests: the k-th smallest p is compared with "
                f"{rule}, from {self.thresholds[0]:.3g} (k = 1) up, stopping at the first p above its threshold; "
                f"{self.passed} passed" + (f" (the last at threshold {last:.3g})" if last else ""))


def holm(pvalues: list[float], alpha: float = ALPHA, variant: str = "standard") -> Holm:
    m = len(pvalues)
    extra = 1 if variant == "jiant" else 0
    thresholds = tuple(alpha / (m - k + extra) for k in range(m))
    rejected = [False] * m
    for k, i in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        if pvalues[i] > thresholds[k]:
            break
        rejected[i] = True
    return Holm(alpha, m, tuple(rejected), thresholds, variant)
