"""What a task is: its head, its metric, its defaults, and the examples it yields."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

HeadType = Literal["classification", "multiple_choice"]
MetricName = Literal["accuracy", "mcc", "f1", "macro_f1", "acc_f1"]

# Segment A of some tasks is several texts joined by the tokenizer's own separator token
# (jiant's encoding of WiC and SocialIQA); a tuple of parts marks that.
Text = str | tuple[str, ...]


@dataclass(frozen=True)
class ClsExample:
    """Sequence classification: one (A, B) pair and its label index."""

    a: Text
    b: str | None
    label: int


@dataclass(frozen=True)
class MCExample:
    """Multiple choice: one (A_i, B_i) pair per choice and the index of the right one."""

    choices: tuple[tuple[Text, str | None], ...]
    label: int


Example = ClsExample | MCExample
Loader = Callable[[Path, str], list[Example]]
HubLoader = Callable[[str], list[Example]]


@dataclass(frozen=True)
class Task:
    """A task of the study (or one the user describes in TOML)."""

    name: str
    description: str
    head: HeadType
    metric: MetricName
    epochs: int
    max_length: int
    labels: tuple[str, ...] = ()          # classification label names, in index order
    num_classes: int = 0                  # classes read from the training data (labels empty): the head's size
    num_choices: int = 0                  # multiple choice
    batch_size: int | None = None         # a task-specific default batch, where the study has one
    dir_names: tuple[str, ...] = ()       # folder names tried under a --data-dir
    load_split: Loader | None = field(default=None, repr=False, compare=False)
    load_hub: HubLoader | None = field(default=None, repr=False, compare=False)
    hub_name: str | None = None
    splits: tuple[str, ...] = ("train", "dev")
    train_rows: int | None = None         # the official train size: orders and estimates runs before data is read
    own_data: bool = False                # the task (file) names its own data folder: no --data-dir needed
    data_fix: str | None = None           # how to get the data, said when none is found

    @property
    def num_labels(self) -> int:
        if self.head != "classification":
            return 1
        return len(self.labels) or self.num_classes

    @property
    def random_baseline_k(self) -> int:
        return self.num_choices if self.head == "multiple_choice" else self.num_labels


def label_counts(examples: Sequence[Example]) -> Counter[int]:
    return Counter(ex.label for ex in examples)
