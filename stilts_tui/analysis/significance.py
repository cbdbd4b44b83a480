"""Rank correlation and multiple-comparison control: Spearman's ρ and its p-value as
scipy.stats.spearmanr computes them (Student's t on n − 2 degrees of freedom, from scipy.special),
with what the views need when there is no number (too few models, a constant column), and Holm's step-down procedure (Holm
1979), the correction the second study applied, in the standard form and the study's own."""

from __future__ import annotations

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


@dataclass(frozen=True)
class Spearman:
    rho: float | None
    p: float | None
    n: int
    reason: str | None = None     # why there is no number: too few models, a constant column


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the first axis, ties sharing their average rank: scipy.stats.rankdata's
    method="average", written as scipy writes it. scipy.stats itself is not imported: it costs
    about a second per CLI call (its distributions), several times what a correlation view takes."""
    if x.ndim > 1:
        return np.column_stack([average_ranks(col) for col in x.T]) if x.shape[1] else x.astype(float)
    sorter = np.argsort(x, kind="mergesort")
    inverse = np.empty(len(x), dtype=np.intp)
    inverse[sorter] = np.arange(len(x))
    ordered = x[sorter]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    dense = np.cumsum(first)[inverse]
    bounds = np.r_[np.flatnonzero(first), len(x)]
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def _t_pvalue(rho: np.ndarray, df: int) -> np.ndarray:
    """Two-sided p of ρ under Student's t on df degrees of freedom, as scipy.stats.spearmanr gives
    it, from scipy.special's t distribution (stdtr)."""
    from scipy.special import stdtr

    with np.errstate(divide="ignore", invalid="ignore"):
        t = rho * np.sqrt(df / ((1.0 + rho) * (1.0 - rho)))
    return np.where(np.abs(rho) >= 1.0, 0.0, 2.0 * stdtr(df, -np.abs(t)))


def spearman(x: np.ndarray, y: np.ndarray, min_n: int = MIN_MODELS) -> Spearman:
    """ρ over the observations both have (NaN marks a missing one)."""
    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    n = len(x)
    if n < min_n:
        return Spearman(None, None, n, f"{n} model{'s' if n != 1 else ''} (a test needs {min_n})")
    if n < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return Spearman(None, None, n, "a constant column")
    if np.array_equal(x, y):  # the diagonal of a correlation block: exactly 1, not a hair under
        return Spearman(1.0, 0.0, n)
    rx, ry = average_ranks(x), average_ranks(y)
    rho = float(np.clip(np.corrcoef(rx, ry)[0, 1], -1.0, 1.0))
    if n == 2:  # two points always rank alike or opposite: no degrees of freedom left, ρ = ±1
        return Spearman(1.0 if rho > 0 else -1.0, 0.0, n)
    return Spearman(rho, float(_t_pvalue(np.array(rho), n - 2)), n)


def spearman_pairs(values: np.ndarray, min_n: int = MIN_MODELS) -> dict[tuple[int, int], Spearman]:
    """`spearman` of every pair of columns i ≤ j of an observations × columns array. The columns
    with every observation and more than one value are correlated together (a 35-column study's
    630 pairs in one matrix product); a pair with another column is correlated on its own."""
    n, k = values.shape
    whole = [j for j in range(k) if not np.isnan(values[:, j]).any() and np.ptp(values[:, j]) > 0] \
        if n > 2 and n >= min_n else []
    out: dict[tuple[int, int], Spearman] = {}
    if len(whole) > 1:
        rho = np.clip(np.corrcoef(average_ranks(values[:, whole]), rowvar=False), -1.0, 1.0)
        p = _t_pvalue(rho, n - 2)
        for a, i in enumerate(whole):
            for b in range(a + 1, len(whole)):
                out[(i, whole[b])] = Spearman(float(rho[a, b]), float(p[a, b]), n)
    for i in range(k):
        for j in range(i, k):
            if (i, j) not in out:
                out[(i, j)] = spearman(values[:, i], values[:, j], min_n)
    return out


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
