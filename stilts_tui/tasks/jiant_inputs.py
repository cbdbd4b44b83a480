"""Model inputs as jiant taskmaster_v1 built them (``inputs = "jiant"``, the second study).

jiant tokenises every text on its own with the model's tokenizer and cuts it to ``max_seq_len - 2``
tokens (``tokenize_and_truncate``, utils/data_loaders.py l. 302-311), joins the token *lists* of a
segment (``question + choice``), and adds the boundary tokens around one or two segments
(``apply_boundary_tokens``; RoBERTa: ``<s> A </s> </s> B </s>``,
pytorch_transformers_interface/modules.py l. 335-345). So:

- no cap on the total: each text is cut on its own (a pair may reach 2 x 254 + 4 tokens);
- a text that starts a later part of a segment (COPA's choice, SocialIQA's and MultiRC's answer)
  is tokenised as a text of its own, so in a byte-level BPE its first word has no leading-space
  marker (``The``, not ``ĠThe``);
- SocialIQA: A = context, B = question tokens + answer tokens (tasks.py l. 2838-2856, 2888);
  CosmosQA: B = ``question + " " + answer`` as one text, A = the context cut to
  ``max_seq_len - max(len(B)) - 2`` (qa.py l. 986-997);
- MultiRC and ReCoRD: the passage's first 254 tokens, one row per candidate (qa.py l. 84-86,
  126-127, 253-255, 349-351); ReCoRD's B is the query's tokens with the entity's tokens put in at
  the placeholder (qa.py l. 235-247, 312-316, 357), which leaves the tokens of ``@placeholder``
  itself after the entity (the query is tokenised whole, ``@placeholder`` included, and the
  entity goes in before the first of them), as jiant did.

Special tokens come from the tokenizer's own post-processor (its template is read off once), so
any encoder works; for RoBERTa it is jiant's layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stilts_tui.tasks.base import (
    CandidateExample,
    ClsExample,
    Example,
    FilledQuery,
    MCExample,
    Pieces,
    Task,
    Text,
    example_labels,
)

FEATURE_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# Segments: the token ids of A and of B (None: one segment).
Segments = tuple[list[int], list[int] | None]


def cut(tokens: list[int], limit: int) -> list[int]:
    """``tokens[:limit]``, Python's slice as jiant wrote it (a negative limit drops from the end)."""
    return tokens[:limit]


@dataclass(frozen=True)
class _Slot:
    """One position run of the post-processor's template: a special token, or a segment's tokens."""

    special: int | None
    segment: int
    type_id: int


class Builder:
    """Tokenises texts on their own and lays segments out as the tokenizer's post-processor does."""

    def __init__(self, tokenizer, max_length: int) -> None:
        self.backend = tokenizer.backend_tokenizer
        self.backend.no_truncation()
        self.backend.no_padding()
        self.limit = max_length - 2  # tokenize_and_truncate: max_seq_len -= 2
        self.with_types = "token_type_ids" in tokenizer.model_input_names
        self._cache: dict[str, list[int]] = {}
        self._templates = {pair: self._template(pair) for pair in (False, True)}

    def ids(self, text: str) -> list[int]:
        """A text's tokens, uncut."""
        if text not in self._cache:
            self._cache[text] = self.backend.encode(text, add_special_tokens=False).ids
        return self._cache[text]

    def part(self, text: str) -> list[int]:
        return cut(self.ids(text), self.limit)

    def segment(self, text: Text) -> list[int]:
        """A segment's tokens: each part tokenised and cut on its own, the lists joined (parts of a
        tuple, this tool's reference joining by the separator token, keep that token between them)."""
        if isinstance(text, Pieces):
            return [t for p in text.parts for t in self.part(p)]
        if isinstance(text, tuple):
            sep = self._templates[True]
            sep_ids = [s.special for s in sep if s.special is not None][-1:]
            out: list[int] = []
            for i, p in enumerate(text):
                out += (sep_ids if i else []) + self.part(p)
            return out
        return self.part(text)

    def _template(self, pair: bool) -> list[_Slot]:
        a = self.backend.encode("a", add_special_tokens=False)
        b = self.backend.encode("b", add_special_tokens=False) if pair else None
        both = self.backend.post_process(a, b, add_special_tokens=True)
        # The runs of non-special tokens are the segments, in order (the encoding's sequence ids are
        # not set for a segment encoded on its own, so they cannot say which is which).
        slots: list[_Slot] = []
        runs = 0
        for tok, special, type_id in zip(both.ids, both.special_tokens_mask, both.type_ids, strict=True):
            if special:
                slots.append(_Slot(tok, -1, type_id))
            elif not slots or slots[-1].special is not None:
                slots.append(_Slot(None, runs, type_id))
                runs += 1
        return slots

    def features(self, segments: Segments) -> dict[str, list[int]]:
        a, b = segments
        ids: list[int] = []
        types: list[int] = []
        for slot in self._templates[b is not None]:
            run = [slot.special] if slot.special is not None else (a if slot.segment == 0 else b or [])
            ids += run
            types += [slot.type_id] * len(run)
        out = {"input_ids": ids, "attention_mask": [1] * len(ids)}
        return out | ({"token_type_ids": types} if self.with_types else {})


def _socialiqa(build: Builder, a: Text, b: str | None) -> Segments:
    context, question = a if isinstance(a, tuple) else (a, "")
    return build.part(context), build.part(question) + build.part(b or "")


def _cosmosqa_choices(build: Builder, choices: Sequence[tuple[Text, str | None]]) -> list[Segments]:
    contexts_questions = [a if isinstance(a, tuple) else (a, "") for a, _ in choices]
    answers = [build.part(q + " " + (b or "")) for (_, q), (_, b) in zip(contexts_questions, choices, strict=True)]
    longest = max(len(x) for x in answers)
    # tokenize_and_truncate(context, max_seq_len - max_ans_len): cut to (256 - longest) - 2
    context = cut(build.ids(contexts_questions[0][0]), build.limit + 2 - longest - 2)
    return [(context, ans) for ans in answers]


def _record_query(build: Builder, query: FilledQuery) -> list[int]:
    """tokenize_preserve_placeholder (qa.py l. 235-247), then insert_ent (l. 312-316)."""
    limit = build.limit + 2 - query.longest - 2
    before = query.template.split("@placeholder")[0]
    loc = len(cut(build.ids(before), limit))
    tokens = cut(build.ids(query.template), limit)
    return tokens[:loc] + build.part(query.entity) + tokens[loc:]


def _pair(build: Builder, task: Task, a: Text, b: str | None) -> Segments:
    if task.name == "socialiqa":
        return _socialiqa(build, a, b)
    if isinstance(b, FilledQuery):
        return build.segment(a), _record_query(build, b)
    return build.segment(a), None if b is None else build.segment(b)


def _choices(build: Builder, task: Task, choices: Sequence[tuple[Text, str | None]]) -> list[Segments]:
    if task.name == "cosmosqa":
        return _cosmosqa_choices(build, choices)
    return [_pair(build, task, a, b) for a, b in choices]


def _columns(rows: list[dict[str, list[int]]]) -> dict[str, list]:
    return {k: [r[k] for r in rows] for k in FEATURE_KEYS if rows and k in rows[0]}


def encode_jiant(task: Task, examples: Sequence[Example], tokenizer, max_length: int) -> dict[str, list]:
    """Features of a classification, multiple-choice or candidates split as jiant built them."""
    build = Builder(tokenizer, max_length)
    if task.head == "multiple_choice":
        per = [[build.features(s) for s in _choices(build, task, ex.choices)] for ex in examples if isinstance(ex, MCExample)]
        keys = [k for k in FEATURE_KEYS if per and k in per[0][0]]
        out: dict[str, list] = {k: [[c[k] for c in choices] for choices in per] for k in keys}
    elif task.head == "candidates":
        cands = [ex for ex in examples if isinstance(ex, CandidateExample)]
        out = _columns([build.features(_pair(build, task, ex.a, ex.b)) for ex in cands])
        out["row_example"] = list(range(len(cands)))
    else:
        out = _columns([build.features(_pair(build, task, ex.a, ex.b)) for ex in examples if isinstance(ex, ClsExample)])
    out["labels"] = example_labels(examples)
    return out


def epoch_examples(task: Task, examples: Sequence[Example]) -> int:
    """The examples jiant counts an epoch in (``n_train_examples``, trainer.py l. 342). ReCoRD's
    ``count_examples`` sums each *passage's* entities (qa.py l. 360-366), though every query of the
    passage makes a row per entity: its epochs, and so ``t_total``, are shorter than the rows.
    Every other task counts its rows."""
    if task.metric != "record":
        return len(examples)
    first_query: dict[str, str] = {}
    count = 0
    for ex in examples:
        if not isinstance(ex, CandidateExample):
            continue
        passage = ex.group.rpartition("-")[0]
        if first_query.setdefault(passage, ex.group) == ex.group:
            count += 1
    return count
