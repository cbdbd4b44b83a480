"""The study's metrics and the baselines that define a degenerate run (DESIGN §2)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from stilts_tui.tasks.base import Example, Task

# ε of the "at or below 1/k + ε" rule for multiple choice.
MC_DEGENERATE_EPSILON = 0.01


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    if not labels:
        return 0.0
    return sum(int(p == y) for p, y in zip(predictions, labels, strict=True)) / len(labels)


def matthews_corrcoef(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Multi-class MCC (Gorodkin 2004), equal to sklearn's; 0 when a predictor is constant."""
    classes = sorted(set(labels) | set(predictions))
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    confusion = [[0] * k for _ in range(k)]
    for p, y in zip(predictions, labels, strict=True):
        confusion[index[y]][index[p]] += 1
    t = [sum(row) for row in confusion]                      # true counts per class
    predicted = [sum(confusion[i][j] for i in range(k)) for j in range(k)]
    c = sum(confusion[i][i] for i in range(k))
    s = len(labels)
    cov_yp = c * s - sum(pk * tk for pk, tk in zip(predicted, t, strict=True))
    cov_pp = s * s - sum(pk * pk for pk in predicted)
    cov_yy = s * s - sum(tk * tk for tk in t)
    if cov_pp == 0 or cov_yy == 0:
        return 0.0
    return cov_yp / math.sqrt(cov_pp * cov_yy)


def score(metric: str, predictions: Sequence[int], labels: Sequence[int]) -> float:
    if metric == "accuracy":
        return accuracy(predictions, labels)
    if metric == "mcc":
        return matthews_corrcoef(predictions, labels)
    raise ValueError(f"unknown metric {metric!r}")


def majority_baseline(task: Task, dev: Sequence[Example]) -> float:
    """The share of the most frequent dev label: the accuracy of always predicting it."""
    counts = Counter(ex.label for ex in dev)
    return max(counts.values()) / len(dev) if dev else 0.0


def random_baseline(task: Task) -> float:
    """The expected accuracy of a uniform random guess: 1/k."""
    return 1.0 / task.random_baseline_k


def baseline_score(task: Task, dev: Sequence[Example], kind: str) -> float:
    """A baseline on the task's own metric scale: a constant or random predictor has MCC 0."""
    if task.metric == "mcc":
        return 0.0
    return majority_baseline(task, dev) if kind == "majority" else random_baseline(task)


def degenerate_threshold(task: Task, dev: Sequence[Example]) -> float:
    """A final dev score at or below this is a degenerate run (Dodge et al. 2020; Mosbach et al. 2021)."""
    if task.metric == "mcc":
        return 0.0
    if task.head == "multiple_choice":
        return 1.0 / task.num_choices + MC_DEGENERATE_EPSILON
    return majority_baseline(task, dev)
