"""What a task is: its head, its metric, its defaults, and the examples it yields."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

HeadType = Literal["classification", "multiple_choice", "span_qa", "tagging", "span_classification",
                   "candidates", "span_vector"]
MetricName = Literal["accuracy", "mcc", "f1", "macro_f1", "acc_f1", "squad_f1_em", "token_accuracy", "micro_f1",
                     "multirc", "record"]
# The heads of the second study (train/heads.py): each has its encoder (tasks/encode_heads.py)
# and its scorer (tasks/head_metrics.py).
SPAN_HEADS = ("span_qa", "tagging", "span_classification", "candidates", "span_vector")

# Segment A of some tasks is several texts joined by the tokenizer's own separator token
# (jiant's encoding of WiC and SocialIQA); a tuple of parts marks that.
Text = str | tuple[str, ...]


class Pieces(str):
    """A segment jiant builds from several texts, each tokenised on its own and the token lists
    joined (COPA's ``question + choice``, tasks.py l. 2987-2990; MultiRC's ``question + answer``,
    qa.py l. 126-127). As a string it is the texts joined by a space, what the reference
    encodings tokenise; ``inputs = "jiant"`` tokenises ``parts`` one by one (tasks/jiant_inputs.py)."""

    parts: tuple[str, ...]

    def __new__(cls, *parts: str) -> Pieces:
        obj = super().__new__(cls, " ".join(parts))
        obj.parts = tuple(parts)
        return obj

    def __reduce__(self):  # pickled (the cache key) with its parts
        return (Pieces, self.parts)


class FilledQuery(str):
    """A ReCoRD query with one entity in place of ``@placeholder``. As a string, the filled query
    (what the reference encodings tokenise); ``inputs = "jiant"`` rebuilds it from the tokens of the
    template and of the entity as jiant did (qa.py l. 235-247, 312-316, 357), which needs the longest
    entity of the passage in characters (``max_ent_length``, l. 258)."""

    template: str
    entity: str
    longest: int

    def __new__(cls, template: str, entity: str, longest: int) -> FilledQuery:
        obj = super().__new__(cls, template.replace("@placeholder", entity, 1))
        obj.template, obj.entity, obj.longest = template, entity, longest
        return obj

    def __reduce__(self):
        return (FilledQuery, (self.template, self.entity, self.longest))


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


@dataclass(frozen=True)
class SpanQAExample:
    """Span extraction: the answer is a stretch of the context, located by its first character."""

    context: str
    question: str
    answer_start: int                     # character offset of the answer trained on
    answer: str
    golds: tuple[str, ...]                # the answers a prediction is scored against (max over them)


@dataclass(frozen=True)
class TaggingExample:
    """One label index per word."""

    words: tuple[str, ...]
    tags: tuple[int, ...]


@dataclass(frozen=True)
class SpanTarget:
    """One or two word spans, [start, end) in words, and the indices of the labels they carry."""

    span1: tuple[int, int]
    span2: tuple[int, int] | None
    labels: tuple[int, ...]


@dataclass(frozen=True)
class SpanExample:
    """Span classification over a word-tokenised sentence: edge probing (several targets, each
    multi-label) and WSC (one target, one label)."""

    words: tuple[str, ...]
    targets: tuple[SpanTarget, ...]


@dataclass(frozen=True)
class CandidateExample:
    """One candidate answer scored on its own as right (1) or wrong (0); the candidates of one
    question share ``group`` (MultiRC answers, ReCoRD entities)."""

    a: Text
    b: str | None
    label: int
    group: str
    candidate: str = ""
    golds: tuple[str, ...] = ()           # ReCoRD: the question's answers (max-over-answers F1 / EM)


@dataclass(frozen=True)
class SpanVectorExample:
    """A sentence pair classified from the first token and the vectors of one marked word in each
    sentence (jiant's WiC head); spans are character offsets [start, end)."""

    a: str
    b: str
    span_a: tuple[int, int]
    span_b: tuple[int, int]
    label: int


Example = ClsExample | MCExample | SpanQAExample | TaggingExample | SpanExample | CandidateExample | SpanVectorExample
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
    # Span heads (jiant's SpanClassifierModule / EdgeClassifierModule): spans per target, the
    # projection size, an MLP (else a linear layer) and its dropout, multi-label (sigmoid) or not.
    num_spans: int = 0
    span_proj_dim: int = 0
    span_mlp: bool = False
    span_dropout: float = 0.0
    multi_label: bool = False
    licensed: str | None = None           # the licensed corpus the task's files derive from
    labels_file: str | None = None        # the label set is this file of the task's folder (edge probing)

    @property
    def num_labels(self) -> int:
        if self.head in ("multiple_choice", "span_qa"):
            return 1
        if self.head == "candidates":
            return 2
        return len(self.labels) or self.num_classes

    @property
    def random_baseline_k(self) -> int:
        return self.num_choices if self.head == "multiple_choice" else self.num_labels


def example_labels(examples: Sequence[Example]) -> list[int]:
    """The label index of every example that has one (tagging and span examples carry several)."""
    return [ex.label for ex in examples if isinstance(ex, ClsExample | MCExample | CandidateExample | SpanVectorExample)]


def label_counts(examples: Sequence[Example]) -> Counter[int]:
    return Counter(example_labels(examples))
