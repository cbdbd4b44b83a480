"""Model inputs of the second study's heads, through the tokenizer's own offsets.

Every row carries ``row_example`` (the index of the example it came from). Long inputs are never
cut silently: a span-QA context or a MultiRC / ReCoRD passage longer than the budget becomes
several overlapping windows (the tokenizer's overflow, as transformers' run_qa.py does) that are
scored together; a tagged sentence is split into word chunks that each fit; span targets that
fall past the budget are counted in ``truncated_targets`` and scored as missed."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from stilts_tui.tasks.base import (
    CandidateExample,
    Example,
    SpanExample,
    SpanQAExample,
    SpanVectorExample,
    TaggingExample,
    Task,
)
from stilts_tui.tasks.encode import join_parts

IGNORE = -100          # a position the loss and the score skip
NO_SPAN = [-1, -1]     # padding of span lists


def window_stride(max_length: int) -> int:
    """Tokens two neighbouring windows share: a quarter of the window (run_qa.py's 128 of 384)."""
    return max(max_length // 4, 1)


def _features(enc) -> dict[str, list]:
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return {k: list(enc[k]) for k in keys}


def encode_span_qa(examples: Sequence[SpanQAExample], tokenizer, max_length: int) -> dict[str, list]:
    """(question, context) windows; start/end positions of the answer's tokens in each window, or
    the first token when the answer is not in it; the context offsets for decoding."""
    enc = tokenizer([ex.question for ex in examples], [ex.context for ex in examples], truncation="only_second",
                    max_length=max_length, stride=window_stride(max_length), return_overflowing_tokens=True,
                    return_offsets_mapping=True)
    out = _features(enc) | {"start_positions": [], "end_positions": [], "context_offsets": [], "row_example": []}
    for i, offsets in enumerate(enc["offset_mapping"]):
        ex_index = enc["overflow_to_sample_mapping"][i]
        ex = examples[ex_index]
        seq = enc.sequence_ids(i)
        context = [list(o) if s == 1 else NO_SPAN for o, s in zip(offsets, seq, strict=True)]
        start_char, end_char = ex.answer_start, ex.answer_start + len(ex.answer)
        inside = [j for j, (a, b) in enumerate(context) if a >= 0 and a < end_char and b > start_char]
        in_context = [j for j, s in enumerate(seq) if s == 1]
        if not in_context:
            raise ValueError(f"a question of {len(seq)} tokens leaves no room for its context: raise max_length")
        covered = context[in_context[0]][0] <= start_char and context[in_context[-1]][1] >= end_char
        start, end = (inside[0], inside[-1]) if ex.answer_start >= 0 and inside and covered else (0, 0)
        out["start_positions"].append(start)
        out["end_positions"].append(end)
        out["context_offsets"].append(context)
        out["row_example"].append(ex_index)
    return out


def word_starts(words: Sequence[str]) -> tuple[str, list[int]]:
    """The sentence as one string (words joined by spaces) and each word's first character."""
    starts, at = [], 0
    for w in words:
        starts.append(at)
        at += len(w) + 1
    return " ".join(words), starts


def _token_words(offsets, seq_ids, starts: list[int]) -> list[int | None]:
    """The word of each token (None for special tokens)."""
    out: list[int | None] = []
    for (a, b), s in zip(offsets, seq_ids, strict=True):
        out.append(None if s is None or a == b else bisect_right(starts, a) - 1)
    return out


def _encode_words(tokenizer, words: Sequence[str], max_length: int | None):
    text, starts = word_starts(words)
    kwargs = {"truncation": True, "max_length": max_length} if max_length else {}
    enc = tokenizer(text, return_offsets_mapping=True, **kwargs)
    return enc, _token_words(enc["offset_mapping"], enc.sequence_ids(0), starts)


def word_chunks(token_words: Sequence[int | None], n_words: int, budget: int) -> list[tuple[int, int]]:
    """[start, end) word ranges whose pieces fit ``budget`` tokens, in order; a sentence that fits is one."""
    pieces = [0] * n_words
    for w in token_words:
        if w is not None:
            pieces[w] += 1
    chunks, start, used = [], 0, 0
    for w, n in enumerate(pieces):
        if used + n > budget and w > start:
            chunks.append((start, w))
            start, used = w, 0
        used += n
    chunks.append((start, n_words))
    return chunks


def encode_tagging(examples: Sequence[TaggingExample], tokenizer, max_length: int) -> dict[str, list]:
    """One tag per word on its first piece (``IGNORE`` elsewhere), a row per chunk that fits."""
    out: dict[str, list] = {"labels": [], "row_example": []}
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    for index, ex in enumerate(examples):
        enc, token_words = _encode_words(tokenizer, ex.words, None)
        chunks = word_chunks(token_words, len(ex.words), budget)
        for start, end in chunks:
            if len(chunks) > 1:  # a sentence that fits keeps its one encoding
                enc, token_words = _encode_words(tokenizer, ex.words[start:end], None)
            labels, seen = [], set()
            for w in token_words:
                first = w is not None and w not in seen
                labels.append(ex.tags[start + w] if first and w is not None else IGNORE)
                if w is not None:
                    seen.add(w)
            for key, value in _features(enc).items():
                out.setdefault(key, []).append(value)
            out["labels"].append(labels)
            out["row_example"].append(index)
    return out


def _token_span(token_words: list[int | None], start: int, end: int) -> list[int] | None:
    """Inclusive [first, last] tokens of words [start, end), or None when cut off."""
    hits = [j for j, w in enumerate(token_words) if w is not None and start <= w < end]
    words_seen = {token_words[j] for j in hits}
    if not hits or len(words_seen) < end - start:
        return None
    return [hits[0], hits[-1]]


def edge_length_cap(tokenizer, max_length: int, inputs: str, task: Task) -> int | None:
    """The tokens an edge-probing sentence is cut to. jiant applied no ``max_seq_len`` to
    edge-probing sentences (edge_probing.py l. 69: "max_seq_len ... (currently ignored)";
    ``make_instance``, l. 181-186, takes the retokenised text whole): with ``inputs = "jiant"``
    only the encoder's own position limit applies."""
    if inputs != "jiant" or not task.labels_file:  # labels_file: the edge-probing tasks (tasks/edges.py)
        return max_length
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 1_000_000 else None


def encode_spans(examples: Sequence[SpanExample], tokenizer, max_length: int | None, task: Task) -> dict[str, list]:
    """A row per sentence: its targets' token spans (inclusive, as AllenNLP's span extractors take
    them) and labels (a multi-hot row per target for multi-label tasks, else one index)."""
    out: dict[str, list] = {"spans1": [], "spans2": [], "span_labels": [], "target_ids": [], "row_example": [],
                            "truncated_targets": []}
    for index, ex in enumerate(examples):
        enc, token_words = _encode_words(tokenizer, ex.words, max_length)
        spans1, spans2, kept = [], [], []
        labels: list = []
        for t, target in enumerate(ex.targets):
            s1 = _token_span(token_words, *target.span1)
            s2 = _token_span(token_words, *target.span2) if target.span2 is not None else NO_SPAN
            if s1 is None or s2 is None:
                continue
            spans1.append(s1)
            spans2.append(s2)
            if task.multi_label:
                labels.append([int(i in target.labels) for i in range(task.num_labels)])
            else:
                labels.append(target.labels[0])
            kept.append(t)
        for key, value in _features(enc).items():
            out.setdefault(key, []).append(value)
        out["spans1"].append(spans1)
        out["spans2"].append(spans2)
        out["span_labels"].append(labels)
        out["target_ids"].append(kept)
        out["row_example"].append(index)
        out["truncated_targets"].append(len(ex.targets) - len(kept))
    return out


def encode_candidates(examples: Sequence[CandidateExample], tokenizer, max_length: int) -> dict[str, list]:
    """(passage, question + candidate) windows over the passage; each window carries its
    candidate's label, and a candidate's score is the mean over its windows."""
    sep = tokenizer.sep_token or ""
    firsts = [join_parts(ex.a, sep) for ex in examples]
    seconds = [ex.b or "" for ex in examples]
    enc = tokenizer(firsts, seconds, truncation="only_first", max_length=max_length, stride=window_stride(max_length),
                    return_overflowing_tokens=True)
    out = _features(enc)
    out["row_example"] = list(enc["overflow_to_sample_mapping"])
    out["labels"] = [examples[i].label for i in out["row_example"]]
    return out


def _char_tokens(offsets, seq_ids, sequence: int, start: int, end: int) -> list[int]:
    hits = [j for j, ((a, b), s) in enumerate(zip(offsets, seq_ids, strict=True))
            if s == sequence and a < b and a < end and b > start]
    return [hits[0], hits[-1]] if hits else NO_SPAN


def encode_span_vectors(examples: Sequence[SpanVectorExample], tokenizer, max_length: int) -> dict[str, list]:
    """The pair, and the inclusive token span of the marked word in each sentence."""
    enc = tokenizer([ex.a for ex in examples], [ex.b for ex in examples], truncation="longest_first",
                    max_length=max_length, return_offsets_mapping=True)
    out = _features(enc) | {"span_a": [], "span_b": [], "labels": [], "row_example": []}
    for i, ex in enumerate(examples):
        offsets, seq = enc["offset_mapping"][i], enc.sequence_ids(i)
        out["span_a"].append(_char_tokens(offsets, seq, 0, *ex.span_a))
        out["span_b"].append(_char_tokens(offsets, seq, 1, *ex.span_b))
        out["labels"].append(ex.label)
        out["row_example"].append(i)
    return out


def encode_head(task: Task, examples: Sequence[Example], tokenizer, max_length: int,
                inputs: str = "reference") -> dict[str, list]:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"the {task.head} head needs a fast tokenizer (character offsets)")
    if task.head == "span_qa":
        return encode_span_qa([e for e in examples if isinstance(e, SpanQAExample)], tokenizer, max_length)
    if task.head == "tagging":
        return encode_tagging([e for e in examples if isinstance(e, TaggingExample)], tokenizer, max_length)
    if task.head == "span_classification":
        return encode_spans([e for e in examples if isinstance(e, SpanExample)], tokenizer,
                            edge_length_cap(tokenizer, max_length, inputs, task), task)
    if task.head == "candidates":
        return encode_candidates([e for e in examples if isinstance(e, CandidateExample)], tokenizer, max_length)
    if task.head == "span_vector":
        return encode_span_vectors([e for e in examples if isinstance(e, SpanVectorExample)], tokenizer, max_length)
    raise ValueError(f"no head encoder for {task.head}")
