"""Scores of the second study's heads, as jiant taskmaster_v1 computes them.

Span strings: jiant/metrics/span_metrics.py l. 10-58 (the official ReCoRD / SQuAD normalisation);
MultiRC: jiant/tasks/qa.py l. 175-200; ReCoRD: qa.py l. 374-406; span QA (QA-SRL, QAMR):
qa.py l. 439-443 and 622-626; edge probing: binary F1 over every (target, label) decision,
edge_probing.py l. 100 and 233-242; CCG: accuracy over the words' first pieces (models.py
l. 1103-1136)."""

from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from collections.abc import Sequence

from stilts_tui.tasks.base import (
    CandidateExample,
    SpanExample,
    SpanQAExample,
    SpanVectorExample,
    TaggingExample,
    Task,
)

_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def f1_string(prediction: str, gold: str) -> float:
    pred, truth = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred) & Counter(truth)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def best_over_golds(metric, prediction: str, golds: Sequence[str]) -> float:
    return max((metric(prediction, g) for g in golds), default=0.0)


def squad_f1_em(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean F1 and exact match, each the best over an example's gold answers; ``score`` is their
    mean (jiant's ``avg``, the validation metric)."""
    if not predictions:
        return {"f1": 0.0, "em": 0.0, "score": 0.0}
    f1 = sum(best_over_golds(f1_string, p, g) for p, g in zip(predictions, golds, strict=True)) / len(predictions)
    em = sum(best_over_golds(exact_match, p, g) for p, g in zip(predictions, golds, strict=True)) / len(predictions)
    return {"f1": f1, "em": em, "score": (f1 + em) / 2}


def binary_f1(predictions: Sequence[int], labels: Sequence[int]) -> float:
    tp = sum(1 for p, y in zip(predictions, labels, strict=True) if p == 1 and y == 1)
    predicted, actual = sum(1 for p in predictions if p == 1), sum(1 for y in labels if y == 1)
    if not tp:
        return 0.0
    precision, recall = tp / predicted, tp / actual
    return 2 * precision * recall / (precision + recall)


def micro_f1(predicted: Sequence[Sequence[int]], gold: Sequence[Sequence[int]], num_labels: int) -> dict[str, float]:
    """Binary F1 over every (target, label) decision: a target's predicted and gold label sets."""
    tp = sum(len(set(p) & set(g)) for p, g in zip(predicted, gold, strict=True))
    n_pred = sum(len(set(p)) for p in predicted)
    n_gold = sum(len(set(g)) for g in gold)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    decisions = len(gold) * num_labels
    wrong = n_pred + n_gold - 2 * tp
    return {"score": f1, "precision": precision, "recall": recall,
            "accuracy": 1 - wrong / decisions if decisions else 0.0}


def token_accuracy(predicted: Sequence[Sequence[int]], gold: Sequence[Sequence[int]]) -> float:
    pairs = [(p, g) for ps, gs in zip(predicted, gold, strict=True) for p, g in zip(ps, gs, strict=True)]
    return sum(p == g for p, g in pairs) / len(pairs) if pairs else 0.0


def multirc(predictions: Sequence[int], labels: Sequence[int], groups: Sequence[str]) -> dict[str, float]:
    """F1 over all answer options (F1a), exact match per question (every option right), and
    their mean, jiant's validation metric."""
    by_question: dict[str, list[bool]] = defaultdict(list)
    for p, y, g in zip(predictions, labels, groups, strict=True):
        by_question[g].append(p == y)
    em = sum(all(v) for v in by_question.values()) / len(by_question) if by_question else 0.0
    f1a = binary_f1(predictions, labels)
    return {"f1a": f1a, "em": em, "score": (f1a + em) / 2}


def record(scores: Sequence[float], candidates: Sequence[str], groups: Sequence[str],
           golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Each question's prediction is its highest-scoring entity (ties: the first in string order,
    as jiant sorts a question's candidates by their text before its argmax); F1 and exact match are
    the best over the question's answers, then averaged over questions; ``score`` is their mean."""
    best: dict[str, tuple[float, str, Sequence[str]]] = {}
    for s, c, g, gl in zip(scores, candidates, groups, golds, strict=True):
        if g not in best or s > best[g][0] or (s == best[g][0] and c < best[g][1]):
            best[g] = (s, c, gl)
    if not best:
        return {"f1": 0.0, "em": 0.0, "score": 0.0}
    f1 = sum(best_over_golds(f1_string, c, gl) for _, c, gl in best.values()) / len(best)
    em = sum(best_over_golds(exact_match, c, gl) for _, c, gl in best.values()) / len(best)
    return {"f1": f1, "em": em, "score": (f1 + em) / 2}


def constant_head_score(task: Task, dev: Sequence) -> float:
    """The best score of a constant predictor on a span head's dev set: what a degenerate run
    reaches (an empty answer; the most frequent tag; one label set for every target; every
    candidate right, or every one wrong; a question's first entity)."""
    if task.head == "span_qa":
        qa = [e for e in dev if isinstance(e, SpanQAExample)]
        return squad_f1_em([""] * len(qa), [e.golds for e in qa])["score"]
    if task.head == "tagging":
        tags = [t for e in dev if isinstance(e, TaggingExample) for t in e.tags]
        return Counter(tags).most_common(1)[0][1] / len(tags) if tags else 0.0
    if task.head == "span_classification":
        gold = [list(t.labels) for e in dev if isinstance(e, SpanExample) for t in e.targets]
        if not gold:
            return 0.0
        if not task.multi_label:
            return Counter(g[0] for g in gold).most_common(1)[0][1] / len(gold)
        return max(micro_f1([[c]] * len(gold), gold, task.num_labels)["score"] for c in range(task.num_labels))
    if task.head == "candidates":
        cands = [e for e in dev if isinstance(e, CandidateExample)]
        if task.metric == "record":
            seen: set[str] = set()
            first = [float(not (c.group in seen or seen.add(c.group))) for c in cands]  # type: ignore[func-returns-value]
            return record(first, [c.candidate for c in cands], [c.group for c in cands], [c.golds for c in cands])["score"]
        labels, groups = [c.label for c in cands], [c.group for c in cands]
        return max(multirc([k] * len(cands), labels, groups)["score"] for k in (0, 1)) if cands else 0.0
    labels = [e.label for e in dev if isinstance(e, SpanVectorExample)]
    return Counter(labels).most_common(1)[0][1] / len(labels) if labels else 0.0
