"""LogME (You et al., ICML 2021): the log marginal evidence, per example, of a task's labels
under a Bayesian linear model on frozen features, maximised over the prior and noise
precisions (alpha, beta) by a fixed-point iteration; higher means the features fit the labels
better. Ported from the reference, thuml/LogME LogME.py (commit 56551ca): `LogME._fit_fixed_point`
(l. 100-158, the method `fit` uses: `_fit = _fit_fixed_point`, l. 160) and `truncated_svd`
(l. 47-57), without numba. Classification: one one-vs-rest 0/1 target per class, the evidences
averaged (l. 118-121, 158)."""

from __future__ import annotations

import numpy as np

from stilts_tui.errors import StiltsError

MAX_STEPS = 11          # LogME.py l. 127
TOLERANCE = 1e-3        # l. 142: stop when alpha/beta changes by less than this, relatively
EPS = 1e-5              # l. 132-133


def truncated_svd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, s as a column, vh) of `x` through the SVD of xᵀx, cut to x's rank (l. 47-57): cheaper
    than a direct SVD when there are more rows than columns."""
    _, s, vh = np.linalg.svd(x.T @ x)
    s = np.sqrt(s)
    u_times_sigma = x @ vh.T
    k = int(np.sum(s > 1e-10))
    s = s.reshape(-1, 1)[:k]
    vh = vh[:k]
    u = u_times_sigma[:, :k] / s.reshape(1, -1)
    return u, s, vh


def _evidence(alpha: float, beta: float, sigma: np.ndarray, res2: float, m2: float, n: int, d: int) -> float:
    return float((d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
                  - beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * np.log(2 * np.pi)) / n)


def _one_target(u: np.ndarray, sigma: np.ndarray, y: np.ndarray, n: int, d: int) -> float:
    x = u.T @ y
    x2 = x ** 2
    res_x2 = (y ** 2).sum() - x2.sum()   # the part of y outside u's columns (l. 124)
    alpha, beta = 1.0, 1.0
    m2 = res2 = 0.0
    for _ in range(MAX_STEPS):
        t = alpha / beta
        gamma = (sigma / (sigma + t)).sum()
        m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
        res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + res_x2
        alpha = gamma / (m2 + EPS)
        beta = (n - gamma) / (res2 + EPS)
        if abs(alpha / beta - t) / t <= TOLERANCE:
            break
    return _evidence(alpha, beta, sigma, res2, m2, n, d)


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME of integer class labels (0..C-1) given features (rows = examples)."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if f.ndim != 2 or len(f) != len(y) or len(y) < 2:
        raise StiltsError(f"LogME needs one label per feature row and at least two rows (got {f.shape} and {y.shape})")
    n, d = f.shape
    if n > d:
        u, s, _ = truncated_svd(f)
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        s = s.reshape(-1, 1)
    sigma = s ** 2
    classes = int(y.max()) + 1
    return float(np.mean([_one_target(u, sigma, (y == c).astype(np.float64).reshape(-1, 1), n, d)
                          for c in range(classes)]))
