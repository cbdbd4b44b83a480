"""From the span heads' per-row outputs to predictions per example, and their score
(tasks/head_metrics.py). A row is one window, chunk or candidate of an example (tasks/encode_heads.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch

from stilts_tui.tasks import Task
from stilts_tui.tasks.base import (
    CandidateExample,
    Example,
    SpanExample,
    SpanQAExample,
    SpanVectorExample,
    TaggingExample,
)
from stilts_tui.tasks.encode_heads import IGNORE
from stilts_tui.tasks.head_metrics import micro_f1, multirc, record, squad_f1_em, token_accuracy
from stilts_tui.tasks.metrics import score

MAX_ANSWER_TOKENS = 30  # run_qa.py's max_answer_length


def row_logits(logits: torch.Tensor, batch: dict[str, torch.Tensor], task: Task) -> list[torch.Tensor]:
    """Each row's outputs, trimmed of padding, on the CPU."""
    out = logits.float().cpu()
    if task.head in ("span_qa", "tagging"):
        lengths = batch["attention_mask"].sum(-1).tolist()
        return [out[i, : int(n)] for i, n in enumerate(lengths)]
    if task.head == "span_classification":
        kept = (batch["spans1"][..., 0] >= 0).sum(-1).tolist()
        return [out[i, : int(n)] for i, n in enumerate(kept)]
    return list(out)


def best_span(logits: torch.Tensor, offsets: Sequence[Sequence[int]]) -> tuple[float, int, int]:
    """(score, first char, end char) of the best answer in one window: start and end in the
    context, end not before start, at most MAX_ANSWER_TOKENS tokens."""
    in_context = torch.tensor([o[0] >= 0 for o in offsets])
    start = logits[:, 0].masked_fill(~in_context, float("-inf"))
    end = logits[:, 1].masked_fill(~in_context, float("-inf"))
    pair = start[:, None] + end[None, :]
    n = len(offsets)
    allowed = torch.ones(n, n, dtype=torch.bool).triu() & ~torch.ones(n, n, dtype=torch.bool).triu(MAX_ANSWER_TOKENS)
    pair = pair.masked_fill(~allowed, float("-inf"))
    flat = int(pair.argmax())
    s, e = divmod(flat, n)
    if not torch.isfinite(pair[s, e]):
        return float("-inf"), 0, 0
    return float(pair[s, e]), offsets[s][0], offsets[e][1]


def _span_qa(rows: list[torch.Tensor], cols: dict[str, list], examples: Sequence[Example]) -> tuple[dict, list[str]]:
    best: dict[int, tuple[float, int, int]] = {}
    for i, logits in enumerate(rows):
        ex_index = cols["row_example"][i]
        candidate = best_span(logits, cols["context_offsets"][i])
        if ex_index not in best or candidate[0] > best[ex_index][0]:
            best[ex_index] = candidate
    qa = [e for e in examples if isinstance(e, SpanQAExample)]
    answers = [qa[j].context[best[j][1] : best[j][2]] if j in best else "" for j in range(len(qa))]
    return squad_f1_em(answers, [e.golds for e in qa]), answers


def _tagging(rows: list[torch.Tensor], cols: dict[str, list], examples: Sequence[Example]) -> dict:
    predicted: dict[int, list[int]] = defaultdict(list)
    for i, logits in enumerate(rows):
        labels = cols["labels"][i]
        firsts = [j for j, y in enumerate(labels[: len(logits)]) if y != IGNORE]
        predicted[cols["row_example"][i]].extend(logits[firsts].argmax(-1).tolist())
    tagged = [e for e in examples if isinstance(e, TaggingExample)]
    return {"score": token_accuracy([predicted[j] for j in range(len(tagged))], [list(e.tags) for e in tagged])}


def _spans(rows: list[torch.Tensor], cols: dict[str, list], examples: Sequence[Example], task: Task) -> dict:
    spans = [e for e in examples if isinstance(e, SpanExample)]
    pred_by_target: dict[tuple[int, int], list[int]] = {}
    for i, logits in enumerate(rows):
        ex_index = cols["row_example"][i]
        for t, row in zip(cols["target_ids"][i], logits, strict=True):
            pred_by_target[(ex_index, t)] = (row > 0).nonzero().flatten().tolist() if task.multi_label else [int(row.argmax())]
    gold, pred = [], []
    for j, ex in enumerate(spans):
        for t, target in enumerate(ex.targets):
            gold.append(list(target.labels))
            pred.append(pred_by_target.get((j, t), []))  # a target past the budget: nothing predicted
    truncated = sum(cols["truncated_targets"])
    if task.multi_label:
        return micro_f1(pred, gold, task.num_labels) | {"truncated_targets": truncated}
    flat_pred = [p[0] if p else -1 for p in pred]
    return {"score": score(task.metric, flat_pred, [g[0] for g in gold], task.num_labels), "truncated_targets": truncated}


def _candidates(rows: list[torch.Tensor], cols: dict[str, list], examples: Sequence[Example], task: Task) -> dict:
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = defaultdict(int)
    for i, logits in enumerate(rows):
        j = cols["row_example"][i]
        sums[j] = sums[j] + logits if j in sums else logits.clone()
        counts[j] += 1
    cands = [e for e in examples if isinstance(e, CandidateExample)]
    means = [sums[j] / counts[j] for j in range(len(cands))]
    if task.metric == "record":
        return record([float(torch.softmax(m, -1)[1]) for m in means], [c.candidate for c in cands],
                      [c.group for c in cands], [c.golds for c in cands])
    preds = [int(m.argmax()) for m in means]
    return multirc(preds, [c.label for c in cands], [c.group for c in cands])


def head_scores(task: Task, rows: list[torch.Tensor], dataset, examples: Sequence[Example]) -> dict:
    """The task's score and its parts, from every row's outputs in dataset order."""
    wanted = ("row_example", "context_offsets", "target_ids", "truncated_targets", "labels")
    cols = {k: dataset[k] for k in wanted if k in dataset.column_names}  # one read per column, not per row
    if task.head == "span_qa":
        return _span_qa(rows, cols, examples)[0]
    if task.head == "tagging":
        return _tagging(rows, cols, examples)
    if task.head == "span_classification":
        return _spans(rows, cols, examples, task)
    if task.head == "candidates":
        return _candidates(rows, cols, examples, task)
    if task.head == "span_vector":
        preds = [int(r.argmax()) for r in rows]
        labels = [e.label for e in examples if isinstance(e, SpanVectorExample)]
        return {"score": score(task.metric, preds, labels, task.num_labels)}
    raise ValueError(f"no scorer for the {task.head} head")
