"""Per-group statistics of dev scores — the distribution, not only the best — and how an
intermediate compares with a baseline intermediate (default `none`) on the same target:
Δ mean / Δ best, a paired comparison over identical grid points, bootstrap confidence intervals
and a permutation test. Scores stay on the metric's 0-1 scale here; views multiply by 100."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from stilts_tui.analysis.filters import field as run_field
from stilts_tui.domain.records import RunStatus
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


def is_degenerate(run: dict) -> bool:
    """Final dev score at or below the task's degenerate threshold (README.md, "The recipe and the
    hand-off"), which the worker computed from the dev labels and stored with the run's metrics."""
    threshold = ((run.get("metrics") or {}).get("baselines") or {}).get("degenerate_threshold")
    return threshold is not None and run.get("score") is not None and run["score"] <= threshold + 1e-12


def guess_level(run: dict) -> float | None:
    """Random guessing on the run's metric scale: 1/k accuracy, 0 MCC."""
    if run.get("metric") == "mcc":
        return 0.0
    return ((run.get("metrics") or {}).get("baselines") or {}).get("random")


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


def permutation_p(a: np.ndarray, b: np.ndarray, resamples: int, rng: np.random.Generator,
                  exceedances: int = 20, batch: int = 50, reduce: Reduce = _mean) -> float:
    """Two-sided permutation test of the difference of means (or of another statistic: `reduce`
    maps a (draws, units) array to one value per draw), as a sequential Monte Carlo p-value
    (Besag & Clifford 1991): draw permutations in batches and stop once `exceedances` of them are
    at least as extreme as the observed difference (p = h / L); if that never happens within
    `resamples` draws, p = (h + 1) / (resamples + 1). Clearly null comparisons stop after a few
    dozen draws; small p-values get the full count."""
    observed = abs(float(reduce(a[None])[0] - reduce(b[None])[0])) - 1e-12
    pooled = np.concatenate([a, b])
    h = drawn = 0
    while drawn < resamples:
        k = min(batch, resamples - drawn)
        perms = np.tile(pooled, (k, 1))
        rng.permuted(perms, axis=1, out=perms)
        extreme = np.abs(reduce(perms[:, : len(a)]) - reduce(perms[:, len(a):])) >= observed
        hits = np.flatnonzero(extreme)
        if h + len(hits) >= exceedances:
            return float(exceedances / (drawn + hits[exceedances - h - 1] + 1))
        h += len(hits)
        drawn += k
    return float((h + 1) / (resamples + 1))


def grid_point(run: dict, keys: tuple[str, ...] | None = None) -> tuple:
    """The run's point of the grid: its config without where it starts from and without what is
    not its identity (NOT_GRID, as the settings declare it), so a run pairs with its baseline's."""
    cfg = run.get("config") or run
    keys = keys or tuple(sorted(k for k in cfg if k not in NOT_GRID))
    point = tuple(map(cfg.get, keys))
    try:
        hash(point)
    except TypeError:  # a list-valued knob
        point = tuple(map(repr, point))
    return point


def grid_scores(runs: list[dict]) -> tuple[tuple[str, ...], dict[tuple, float]]:
    sample = runs[0].get("config") or runs[0]
    keys = tuple(sorted(k for k in sample if k not in NOT_GRID))
    return keys, {grid_point(r, keys): r["score"] for r in runs}


def paired(runs: list[dict], base: list[dict] | tuple) -> tuple[int, float | None, float | None]:
    """(pairs, win rate with ties as half, mean paired difference) over identical grid points."""
    keys, by_point = base if isinstance(base, tuple) else grid_scores(base)
    diffs = [r["score"] - by_point[p] for r in runs if (p := grid_point(r, keys)) in by_point]
    if not diffs:
        return 0, None, None
    wins = sum(1.0 if d > 1e-12 else 0.5 if abs(d) <= 1e-12 else 0.0 for d in diffs)
    return len(diffs), wins / len(diffs), sum(diffs) / len(diffs)


def pair_stats(runs: Iterable[dict], kinds: tuple[str, ...] = ("target",), by: tuple[str, ...] = ("intermediate", "target"),
               baseline: str | None = "none", resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
               intervals: bool = True, pool_models: bool = False) -> list[PairStats]:
    """One PairStats per group (by default per (intermediate, target)). Runs of different models
    are never pooled into one group (nor compared with each other's baseline) unless
    `pool_models`: `model` joins the grouping when the runs hold several. Bootstrap and
    permutation use `resamples` draws from a generator seeded with `seed`, so the numbers are
    reproducible."""
    chosen = [r for r in runs if r.get("kind") in kinds]
    if not pool_models and "model" not in by and len({run_field(r, "model") for r in chosen}) > 1:
        by = (*by, "model")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in chosen:
        groups[tuple(run_field(r, k) for k in by)].append(r)
    done_of = {key: [r for r in rs if r.get("status") == RunStatus.FINISHED and r.get("score") is not None]
               for key, rs in groups.items()}
    base_points: dict[tuple, tuple] = {}
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        values = dict(zip(by, key, strict=True))
        done = done_of[key]
        scores = np.array(sorted(r["score"] for r in done), dtype=float)
        n = len(scores)
        nondeg = [r["score"] for r in done if not is_degenerate(r)]
        metric = next((r.get("metric") for r in done if r.get("metric")), "accuracy")
        s = PairStats(intermediate=str(values.get("intermediate", "*")), target=str(values.get("target", "*")),
                      metric=str(metric), n=n, min=float(scores[0]) if n else None, mean=float(scores.mean()) if n else None,
                      median=float(np.median(scores)) if n else None, best=float(scores[-1]) if n else None,
                      std=float(scores.std(ddof=1)) if n > 1 else (0.0 if n == 1 else None),
                      degenerate=sum(is_degenerate(r) for r in done),
                      mean_nondegenerate=sum(nondeg) / len(nondeg) if nondeg else None,
                      failed=sum(r.get("status") in (RunStatus.FAILED, RunStatus.BLOCKED) for r in rs),
                      pending=sum(r.get("status") in (RunStatus.QUEUED, RunStatus.RUNNING) for r in rs),
                      guess=next((g for r in done if (g := guess_level(r)) is not None), None),
                      group={k: v for k, v in values.items() if k not in ("intermediate", "target")},
                      model=", ".join(sorted({str(m) for r in rs if (m := run_field(r, "model"))})))
        # One generator per group, seeded from the seed and the group: a group's intervals do not
        # change when other groups are filtered in or out.
        rng = np.random.default_rng([seed, zlib.crc32(repr(key).encode())])
        if n and intervals and resamples > 0:
            s.ci_mean, s.ci_best = bootstrap_ci(scores, resamples, rng)
        if baseline and "intermediate" in by and values.get("intermediate") != baseline:
            base_key = tuple(baseline if k == "intermediate" else values[k] for k in by)
            base = done_of.get(base_key, [])
            if base and n:
                b = np.array([r["score"] for r in base], dtype=float)
                s.baseline = baseline
                s.delta_mean = float(scores.mean() - b.mean())
                s.delta_best = float(scores.max() - b.max())
                if base_key not in base_points:
                    base_points[base_key] = grid_scores(base)
                s.paired_n, s.win_rate, s.paired_mean_diff = paired(done, base_points[base_key])
                if intervals and resamples > 0 and n > 1 and len(b) > 1:
                    s.p_value = permutation_p(scores, b, resamples, rng)
        out.append(s)
    # The baseline first within each target, as the paper's tables read.
    return sorted(out, key=lambda p: (p.target, tuple(str(v) for v in p.group.values()),
                                      p.intermediate != (baseline or "none"), p.intermediate))
