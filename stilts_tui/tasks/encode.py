"""Turning examples into model inputs through the tokenizer, token for token as Chang & Lu's
reference encodes them (utils.py ``convert_examples_to_features``).

Each segment is tokenised on its own and the special tokens are added by the tokenizer's own
post-processor, so any encoder works. Truncation is the slow tokenizer's
``longest_first`` of transformers 4.3.2, which the reference ran (``encode_plus`` with a
``max_length`` and no ``truncation`` argument falls back to it): one token at a time off the longer
segment, off B when they are equal. The fast tokenizers' own ``longest_first`` splits the budget
in one go and breaks ties the other way, so it is not used. Padding is left to the collator
(dynamic padding); every choice of a multiple-choice example is encoded on its own, so no choice
is ever dropped."""

from __future__ import annotations

from collections.abc import Sequence

from stilts_tui.tasks.base import (
    SPAN_HEADS,
    ClsExample,
    Example,
    MCExample,
    Task,
    Text,
    example_labels,
)


def join_parts(text: Text, sep_token: str) -> str:
    """Several parts of one segment joined by the tokenizer's own separator token, with no space
    around it: ``word + sep_token + sentence1`` (WiC) and ``context + sep_token + question``
    (SocialIQA, CosmosQA), utils.py l. 477 and 493."""
    if isinstance(text, str):
        return text
    return sep_token.join(text)


def truncate_lengths(la: int, lb: int | None, budget: int) -> tuple[int, int | None]:
    """Segment lengths after transformers 4.3.2 ``truncate_sequences(..., "longest_first")``:
    while too long, drop the last token of A if A is longer than B, else of B."""
    if lb is None:
        return min(la, max(budget, 0)), None
    for _ in range(max(la + lb - budget, 0)):
        if la > lb:
            la -= 1
        else:
            lb -= 1
    return la, lb


def _encode_pairs(tokenizer, pairs: Sequence[tuple[Text, str | None]], max_length: int) -> dict[str, list]:
    sep = tokenizer.sep_token or ""
    firsts = [join_parts(a, sep) for a, _ in pairs]
    seconds = [b for _, b in pairs]
    single = all(b is None for b in seconds)
    if not single and any(b is None for b in seconds):
        raise ValueError("a task must give segment B for every example or for none")
    backend = tokenizer.backend_tokenizer
    # The backend keeps the truncation and padding of the wrapper's last call: none here.
    backend.no_truncation()
    backend.no_padding()
    enc_a = backend.encode_batch(firsts, add_special_tokens=False)
    enc_b = [None] * len(firsts) if single else backend.encode_batch(seconds, add_special_tokens=False)
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=not single)
    with_types = "token_type_ids" in tokenizer.model_input_names
    out: dict[str, list] = {"input_ids": [], "attention_mask": []} | ({"token_type_ids": []} if with_types else {})
    for a, b in zip(enc_a, enc_b, strict=True):
        la, lb = truncate_lengths(len(a.ids), None if b is None else len(b.ids), budget)
        if la < len(a.ids):
            a.truncate(la)
        if b is not None and lb is not None and lb < len(b.ids):
            b.truncate(lb)
        both = backend.post_process(a, b, add_special_tokens=True)  # the tokenizer's own special tokens
        out["input_ids"].append(both.ids)
        out["attention_mask"].append(both.attention_mask)
        if with_types:
            out["token_type_ids"].append(both.type_ids)
    return out


FEATURE_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def encode(task: Task, examples: Sequence[Example], tokenizer, max_length: int, inputs: str = "reference") -> dict[str, list]:
    """Features for a whole split: ``input_ids`` etc. per example (a list per choice for multiple
    choice) and ``labels``; the second study's heads add their own columns (tasks/encode_heads.py).
    ``inputs = "jiant"``: as jiant built them (tasks/jiant_inputs.py)."""
    if inputs == "jiant" and task.head in ("classification", "multiple_choice", "candidates"):
        from stilts_tui.tasks.jiant_inputs import encode_jiant

        return encode_jiant(task, examples, tokenizer, max_length)
    if task.head in SPAN_HEADS:
        from stilts_tui.tasks.encode_heads import encode_head

        return encode_head(task, examples, tokenizer, max_length, inputs)
    if task.head == "classification":
        enc = _encode_pairs(tokenizer, [(ex.a, ex.b) for ex in examples if isinstance(ex, ClsExample)], max_length)
        out = {k: enc[k] for k in FEATURE_KEYS if k in enc}
    else:
        flat = [pair for ex in examples if isinstance(ex, MCExample) for pair in ex.choices]
        enc = _encode_pairs(tokenizer, flat, max_length)
        k = task.num_choices
        out = {key: [enc[key][i * k : (i + 1) * k] for i in range(len(examples))] for key in FEATURE_KEYS if key in enc}
    out["labels"] = example_labels(examples)
    return out


def decode_example(tokenizer, features: dict[str, list], index: int) -> list[str]:
    """The text the model sees for one example (one line per choice), special tokens included."""
    ids = features["input_ids"][index]
    rows = ids if ids and isinstance(ids[0], list) else [ids]
    return [tokenizer.decode(r, skip_special_tokens=False) for r in rows]
