"""Per-group statistics of dev scores — the distribution, not only the best — and how an
intermediate compares with a baseline intermediate (default `none`) on the same target:
Δ mean / Δ best, a paired comparison over identical grid points, bootstrap confidence intervals
and a permutation test. Scores stay on the metric's 0-1 scale here; views multiply by 100."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import combinations
from math import comb
from typing import Any

import numpy as np

from stilts_tui.domain.run import Run, runs_of
from stilts_tui.domain.run_config import NOT_GRID

DEFAULT_RESAMPLES = 1_000
DEFAULT_SEED = 0
CI_LEVEL = 0.95
Reduce = Callable[[np.ndarray], np.ndarray]   # (draws, units) -> one statistic per draw


@dataclass
class PairStats:
    intermediate: str
    target: str
    metric: str
    n: int
    min: float | None
    mean: float | None
    median: float | None
    best: float | None
    std: float | None                   # sample standard deviation (n - 1)
    degenerate: int
    mean_nondegenerate: float | None
    failed: int
    pending: int
    guess: float | None = None          # the random-guess score on the metric's scale
    group: dict = field(default_factory=dict)   # extra --by fields
    ci_mean: tuple[float, float] | None = None
    ci_best: tuple[float, float] | None = None
    baseline: str | None = None
    delta_mean: float | None = None
    delta_best: float | None = None
    paired_n: int = 0
    win_rate: float | None = None
    paired_mean_diff: float | None = None
    p_value: float | None = None
    model: str = ""                     # the model of the group's runs ("a, b" only when pooled on request)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(d.pop("group"))
        return d


def bootstrap_ci(scores: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[tuple, tuple]:
    """Percentile intervals for the mean and for the best (max) score."""
    idx = rng.integers(0, len(scores), size=(resamples, len(scores)))
    sample = scores[idx]
    lo, hi = (1 - CI_LEVEL) / 2 * 100, (1 + CI_LEVEL) / 2 * 100
    means, bests = sample.mean(axis=1), sample.max(axis=1)
    return ((float(np.percentile(means, lo)), float(np.percentile(means, hi))),
            (float(np.percentile(bests, lo)), float(np.percentile(bests, hi))))


def _mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1)


# The one permutation test (pairs table, matrix, ranking, `stilts report`): exact over every
# split of the pooled units when there are at most EXACT_SPLITS of them; else random permutations
# from a generator seeded by the data (so one comparison has one p wherever it is computed,
# whatever was drawn before it), drawn in batches until EXCEEDANCES of them are at least as
# extreme as the observation or PERMUTATIONS were drawn: the sequential Monte Carlo p of Besag &
# Clifford (1991), p = h / L when it stops early, else (h + 1) / (PERMUTATIONS + 1). A clearly
# null comparison stops after a few dozen draws; a small p gets the full count.
EXACT_SPLITS = 100_000
PERMUTATIONS = 10_000
EXCEEDANCES = 20
BATCH = 100


@dataclass(frozen=True)
class PermutationTest:
    """A two-sided permutation p and how it was computed."""

    p: float
    exact: bool          # every split enumerated (else random permutations)
    draws: int           # splits enumerated, or permutations drawn

    @property
    def method(self) -> str:
        return f"exact over all {self.draws:,} splits" if self.exact else f"{self.draws:,} random permutations"


def permutation_rule() -> str:
    """The rule in words, for every legend that shows a permutation p."""
    return (f"two-sided permutation p, exact over every split when there are at most {EXACT_SPLITS:,}, else "
            f"from random permutations (sequential: stop at {EXCEEDANCES} as extreme, at most {PERMUTATIONS:,})")


@lru_cache(maxsize=64)
def _splits(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every split of n units into sides of k and n - k: the indices of each side, one row a split
    (cached: a matrix tests many cells of the same sizes)."""
    first = np.array(list(combinations(range(n), k)), dtype=np.intp).reshape(-1, k)
    mask = np.ones((len(first), n), dtype=bool)
    np.put_along_axis(mask, first, False, axis=1)
    return first, np.nonzero(mask)[1].reshape(len(first), n - k)


def permutation_test(a: np.ndarray, b: np.ndarray, reduce: Reduce = _mean, seed: int = DEFAULT_SEED) -> PermutationTest:
    """Two-sided permutation test of the difference of a statistic (`reduce` maps a (draws,
    units) array to one value per draw; the mean by default) between the units `a` and `b`:
    p is the share of splits of the pooled units into sides of the same sizes whose difference is
    at least the observed one: over every split when there are at most EXACT_SPLITS, else over
    random ones drawn by the sequential rule above (never 0). The generator is seeded from `seed`
    and the data, so the same comparison gets the same p."""
    # Sorted: each statistic ignores the order within a side, and the draws then depend on the data only.
    a, b = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    observed = abs(float(reduce(a[None])[0] - reduce(b[None])[0])) - 1e-12
    pooled = np.concatenate([a, b])
    n, k = len(pooled), len(a)
    total = comb(n, k)
    if total <= EXACT_SPLITS:
        first, second = _splits(n, k)
        extreme = np.abs(reduce(pooled[first]) - reduce(pooled[second])) >= observed
        return PermutationTest(float(extreme.sum() / total), True, total)
    rng = np.random.default_rng([seed, zlib.crc32(a.tobytes()), zlib.crc32(b.tobytes())])
    h = drawn = 0
    while drawn < PERMUTATIONS:
        perms = np.tile(pooled, (min(BATCH, PERMUTATIONS - drawn), 1))
        rng.permuted(perms, axis=1, out=perms)
        hits = np.flatnonzero(np.abs(reduce(perms[:, :k]) - reduce(perms[:, k:])) >= observed)
        if h + len(hits) >= EXCEEDANCES:  # stop at the EXCEEDANCES-th extreme draw
            stop = drawn + int(hits[EXCEEDANCES - h - 1]) + 1
            return PermutationTest(EXCEEDANCES / stop, False, stop)
        h += len(hits)
        drawn += len(perms)
    return PermutationTest(float((h + 1) / (PERMUTATIONS + 1)), False, PERMUTATIONS)


def permutation_p(a: np.ndarray, b: np.ndarray, reduce: Reduce = _mean, seed: int = DEFAULT_SEED) -> float:
    """The p of `permutation_test`."""
    return permutation_test(a, b, reduce, seed).p


def grid_point(run: Run, keys: tuple[str, ...] | None = None) -> tuple:
    """The run's point of the grid: its config without where it starts from and without what is
    not its identity (NOT_GRID, as the settings declare it), so a run pairs with its baseline's."""
    cfg = run.settings
    keys = keys or tuple(sorted(k for k in cfg if k not in NOT_GRID))
    point = tuple(map(cfg.get, keys))
    try:
        hash(point)
    except TypeError:  # a list-valued knob
        point = tuple(map(repr, point))
    return point


def grid_scores(runs: list[Run]) -> tuple[tuple[str, ...], dict[tuple, float]]:
    keys = tuple(sorted(k for k in runs[0].settings if k not in NOT_GRID))
    return keys, {grid_point(r, keys): _score(r) for r in runs}


def paired(runs: list[Run], base: list[Run] | tuple) -> tuple[int, float | None, float | None]:
    """(pairs, win rate with ties as half, mean paired difference) over identical grid points."""
    keys, by_point = base if isinstance(base, tuple) else grid_scores(base)
    diffs = [_score(r) - by_point[p] for r in runs if (p := grid_point(r, keys)) in by_point]
    if not diffs:
        return 0, None, None
    wins = sum(1.0 if d > 1e-12 else 0.5 if abs(d) <= 1e-12 else 0.0 for d in diffs)
    return len(diffs), wins / len(diffs), sum(diffs) / len(diffs)


def pair_stats(runs: Iterable[Run | Mapping[str, Any]], kinds: tuple[str, ...] = ("target",), by: tuple[str, ...] = ("intermediate", "target"),
               baseline: str | None = "none", resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
               intervals: bool = True, pool_models: bool = False) -> list[PairStats]:
    """One PairStats per group (by default per (intermediate, target)). Runs of different models
    are never pooled into one group (nor compared with each other's baseline) unless
    `pool_models`: `model` joins the grouping when the runs hold several. Bootstrap and
    permutation use `resamples` draws from a generator seeded with `seed`, so the numbers are
    reproducible."""
    chosen = [r for r in runs_of(runs) if r.kind in kinds]
    if not pool_models and "model" not in by and len({r.value("model") for r in chosen}) > 1:
        by = (*by, "model")
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for r in chosen:
        groups[tuple(r.value(k) for k in by)].append(r)
    done_of = {key: [r for r in rs if r.finished] for key, rs in groups.items()}
    base_points: dict[tuple, tuple] = {}
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        values = dict(zip(by, key, strict=True))
        done = done_of[key]
        scores = np.array(sorted(_score(r) for r in done), dtype=float)
        n = len(scores)
        nondeg = [_score(r) for r in done if not r.degenerate]
        metric = next((r.metric for r in done if r.metric), "accuracy")
        s = PairStats(intermediate=str(values.get("intermediate", "*")), target=str(values.get("target", "*")),
                      metric=str(metric), n=n, min=float(scores[0]) if n else None, mean=float(scores.mean()) if n else None,
                      median=float(np.median(scores)) if n else None, best=float(scores[-1]) if n else None,
                      std=float(scores.std(ddof=1)) if n > 1 else (0.0 if n == 1 else None),
                      degenerate=sum(r.degenerate for r in done),
                      mean_nondegenerate=sum(nondeg) / len(nondeg) if nondeg else None,
                      failed=sum(r.failed for r in rs), pending=sum(r.pending for r in rs),
                      guess=next((r.guess for r in done if r.guess is not None), None),
                      group={k: v for k, v in values.items() if k not in ("intermediate", "target")},
                      model=", ".join(sorted({str(m) for r in rs if (m := r.value("model"))})))
        # One generator per group, seeded from the seed and the group: a group's intervals do not
        # change when other groups are filtered in or out.
        rng = np.random.default_rng([seed, zlib.crc32(repr(key).encode())])
        if n and intervals and resamples > 0:
            s.ci_mean, s.ci_best = bootstrap_ci(scores, resamples, rng)
        if baseline and "intermediate" in by and values.get("intermediate") != baseline:
            base_key = tuple(baseline if k == "intermediate" else values[k] for k in by)
            base = done_of.get(base_key, [])
            if base and n:
                b = np.array([_score(r) for r in base], dtype=float)
                s.baseline = baseline
                s.delta_mean = float(scores.mean() - b.mean())
                s.delta_best = float(scores.max() - b.max())
                if base_key not in base_points:
                    base_points[base_key] = grid_scores(base)
                s.paired_n, s.win_rate, s.paired_mean_diff = paired(done, base_points[base_key])
                if intervals and resamples > 0 and n > 1 and len(b) > 1:
                    s.p_value = permutation_p(scores, b, seed=seed)
        out.append(s)
    # The baseline first within each target, as the paper's tables read.
    return sorted(out, key=lambda p: (p.target, tuple(str(v) for v in p.group.values()),
                                      p.intermediate != (baseline or "none"), p.intermediate))


def _score(run: Run) -> float:
    """The score of a run the caller knows finished (`Run.finished`)."""
    assert run.score is not None
    return run.score
