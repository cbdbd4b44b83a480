"""The study's metrics and the baselines that define a degenerate run (README.md, "The recipe and
the hand-off")."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from stilts_tui.tasks.base import SPAN_HEADS, Example, Task, example_labels
from stilts_tui.tasks.head_metrics import constant_head_score

# ε of the "at or below 1/k + ε" rule for multiple choice.
MC_DEGENERATE_EPSILON = 0.01
RANDOM_DRAWS = 20  # seeded uniform guesses averaged for a random baseline on an F1 scale


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


def f1(predictions: Sequence[int], labels: Sequence[int], positive: int = 1) -> float:
    """F1 of one class, as AllenNLP's F1Measure(positive) that jiant uses: 0 when the class is
    never predicted or never present."""
    tp = sum(p == positive and y == positive for p, y in zip(predictions, labels, strict=True))
    predicted = sum(p == positive for p in predictions)
    actual = sum(y == positive for y in labels)
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def macro_f1(predictions: Sequence[int], labels: Sequence[int], classes: int) -> float:
    """The mean of every class's F1: jiant's CommitmentBank score (tasks.py l. 2666-2677, one
    F1Measure per class, averaged)."""
    return sum(f1(predictions, labels, c) for c in range(classes)) / classes


def score(metric: str, predictions: Sequence[int], labels: Sequence[int], classes: int = 2) -> float:
    """A task's dev score. `acc_f1` is jiant's (accuracy + F1 of class 1) / 2 (QQP, BoolQ, the
    acceptability probes); `macro_f1` averages over the task's `classes`."""
    if metric == "accuracy":
        return accuracy(predictions, labels)
    if metric == "mcc":
        return matthews_corrcoef(predictions, labels)
    if metric == "f1":
        return f1(predictions, labels)
    if metric == "macro_f1":
        return macro_f1(predictions, labels, classes)
    if metric == "acc_f1":
        return (accuracy(predictions, labels) + f1(predictions, labels)) / 2
    raise ValueError(f"unknown metric {metric!r}")


def constant_score(task: Task, dev: Sequence[Example]) -> float:
    """The best score a constant predictor gets on dev: what a degenerate run reaches."""
    if task.head in SPAN_HEADS:
        return constant_head_score(task, dev)
    if task.metric == "accuracy":  # the majority class, counted once (word content has 1,000 classes)
        return majority_baseline(task, dev)
    labels = example_labels(dev)
    if not labels:
        return 0.0
    k = task.random_baseline_k
    return max(score(task.metric, [c] * len(labels), labels, k) for c in range(k))


def majority_baseline(task: Task, dev: Sequence[Example]) -> float:
    """The share of the most frequent dev label: the accuracy of always predicting it (for the span
    heads, the best constant predictor's score)."""
    if task.head in SPAN_HEADS:
        return constant_head_score(task, dev)
    counts = Counter(example_labels(dev))
    return max(counts.values()) / len(dev) if dev else 0.0


def random_baseline(task: Task) -> float:
    """The expected accuracy of a uniform random guess: 1/k (0 for span extraction)."""
    return 0.0 if task.head == "span_qa" else 1.0 / task.random_baseline_k


def baseline_score(task: Task, dev: Sequence[Example], kind: str) -> float:
    """A baseline on the task's own metric scale: a constant or random predictor has MCC 0; on
    the F1 scores, the majority baseline is the best constant predictor's score and the random
    one the mean over seeded uniform guesses."""
    if task.metric == "mcc":
        return 0.0
    if task.metric == "accuracy" or task.head in SPAN_HEADS:
        return majority_baseline(task, dev) if kind == "majority" else random_baseline(task)
    if kind == "majority":
        return constant_score(task, dev)
    labels = example_labels(dev)
    k = task.random_baseline_k
    rng = random.Random(0)
    draws = [score(task.metric, [rng.randrange(k) for _ in labels], labels, k) for _ in range(RANDOM_DRAWS)]
    return sum(draws) / len(draws) if labels else 0.0


def degenerate_threshold(task: Task, dev: Sequence[Example]) -> float:
    """A final dev score at or below this is a degenerate run (Dodge et al. 2020; Mosbach et al. 2021)."""
    if task.metric == "mcc":
        return 0.0
    if task.head == "multiple_choice":
        return 1.0 / task.num_choices + MC_DEGENERATE_EPSILON
    return constant_score(task, dev)
