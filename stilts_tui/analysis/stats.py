"""Per-(intermediate, target) statistics of dev scores: the distribution, not only the best."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass


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
    std: float | None          # sample standard deviation (n - 1)
    degenerate: int
    failed: int
    pending: int

    def as_dict(self) -> dict:
        return asdict(self)


def is_degenerate(run: dict) -> bool:
    """Final dev score at or below the task's degenerate threshold (DESIGN §2), which the worker
    computed from the dev labels and stored with the run's metrics."""
    threshold = ((run.get("metrics") or {}).get("baselines") or {}).get("degenerate_threshold")
    return threshold is not None and run.get("score") is not None and run["score"] <= threshold + 1e-12


def pair_stats(runs: Iterable[dict], kinds: tuple[str, ...] = ("target",)) -> list[PairStats]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in runs:
        if r.get("kind") in kinds:
            groups[(r["intermediate"], r["target"])].append(r)
    out = []
    for (inter, target), rs in groups.items():
        done = [r for r in rs if r.get("status") == "finished" and r.get("score") is not None]
        scores = sorted(r["score"] for r in done)
        n = len(scores)
        mean = sum(scores) / n if n else None
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1)) if n > 1 else (0.0 if n == 1 else None)
        median = (scores[n // 2] if n % 2 else (scores[n // 2 - 1] + scores[n // 2]) / 2) if n else None
        metric = next((r.get("metric") for r in done if r.get("metric")), "accuracy")
        out.append(PairStats(intermediate=inter, target=target, metric=metric, n=n, min=scores[0] if n else None,
                             mean=mean, median=median, best=scores[-1] if n else None, std=std,
                             degenerate=sum(is_degenerate(r) for r in done),
                             failed=sum(r.get("status") in ("failed", "blocked") for r in rs),
                             pending=sum(r.get("status") in ("queued", "running") for r in rs)))
    # `none` first within each target, as the paper's tables read.
    return sorted(out, key=lambda p: (p.target, p.intermediate != "none", p.intermediate))
