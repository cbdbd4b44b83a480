"""A task's seeded train sample as the sequences an encoder reads, through the project's own
encoding (tasks/encode.py: the tokenizer's special tokens, the reference truncation), and the
label of each sequence where the task's head gives one.

Multiple choice: every choice is a sequence of its own, labelled 1 for the right choice and 0
for the others (a per-choice binary problem, as the multiple-choice head scores each choice on its
own). Candidates (MultiRC, ReCoRD) and span-vector pairs (WiC) carry one label per sequence too.
Span QA, tagging and span classification label tokens or spans, not sequences: their sequences
have no label, so LogME does not apply to them, while TextEmb does."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from stilts_tui.tasks.base import Example, Task
from stilts_tui.tasks.encode import encode

SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class Rows:
    columns: dict[str, list[list[int]]]    # input_ids, attention_mask (token_type_ids): one list per sequence
    labels: list[int] | None               # one per sequence, or None where the head labels tokens / spans
    examples: int

    def __len__(self) -> int:
        return len(self.columns["input_ids"])


def draw_sample(examples: Sequence[Example], n: int, seed: int) -> list[Example]:
    """`n` examples drawn without replacement by a generator seeded with `seed` (all of them when
    the split is smaller), in file order: the same sample for every encoder, and on every call."""
    if n >= len(examples):
        return list(examples)
    picked = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in picked]


def task_rows(task: Task, examples: Sequence[Example], tokenizer, max_length: int) -> Rows:
    enc = encode(task, examples, tokenizer, max_length)
    if task.head == "multiple_choice":
        columns = {k: [c for ex in enc[k] for c in ex] for k in SEQUENCE_KEYS if k in enc}
        labels: list[int] | None = [int(c == y) for y in enc["labels"] for c in range(task.num_choices)]
        return Rows(columns, labels, len(examples))
    columns = {k: list(enc[k]) for k in SEQUENCE_KEYS if k in enc}
    raw = enc.get("labels")
    per_row = isinstance(raw, list) and len(raw) == len(columns["input_ids"]) and all(isinstance(y, int) for y in raw)
    labels = [int(y) for y in raw] if per_row and raw is not None else None
    return Rows(columns, labels, len(examples))
