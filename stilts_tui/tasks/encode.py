"""Turning examples into model inputs through the tokenizer's pair API (DESIGN §2).

Padding is left to the collator (dynamic padding); truncation shortens the longer segment of
each pair, and every choice of a multiple-choice example is encoded on its own, so no choice is
ever dropped."""

from __future__ import annotations

from collections.abc import Sequence

from stilts_tui.tasks.base import ClsExample, Example, MCExample, Task, Text


def join_parts(text: Text, sep_token: str) -> str:
    """Several parts of one segment joined by the tokenizer's own separator token (jiant).

    No space before the separator: byte-level BPE would turn it into a token of its own."""
    if isinstance(text, str):
        return text
    return f"{sep_token} ".join(p.strip() for p in text)


def _encode_pairs(tokenizer, pairs: Sequence[tuple[Text, str | None]], max_length: int) -> dict[str, list]:
    sep = tokenizer.sep_token or ""
    firsts = [join_parts(a, sep) for a, _ in pairs]
    seconds = [b for _, b in pairs]
    if all(b is None for b in seconds):
        return tokenizer(firsts, truncation=True, max_length=max_length)
    if any(b is None for b in seconds):
        raise ValueError("a task must give segment B for every example or for none")
    return tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length)


FEATURE_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def encode(task: Task, examples: Sequence[Example], tokenizer, max_length: int) -> dict[str, list]:
    """Features for a whole split: ``input_ids`` etc. per example (a list per choice for multiple
    choice) and ``labels``."""
    if task.head == "classification":
        enc = _encode_pairs(tokenizer, [(ex.a, ex.b) for ex in examples if isinstance(ex, ClsExample)], max_length)
        out = {k: enc[k] for k in FEATURE_KEYS if k in enc}
    else:
        flat = [pair for ex in examples if isinstance(ex, MCExample) for pair in ex.choices]
        enc = _encode_pairs(tokenizer, flat, max_length)
        k = task.num_choices
        out = {key: [enc[key][i * k : (i + 1) * k] for i in range(len(examples))] for key in FEATURE_KEYS if key in enc}
    out["labels"] = [ex.label for ex in examples]
    return out


def decode_example(tokenizer, features: dict[str, list], index: int) -> list[str]:
    """The text the model sees for one example (one line per choice), special tokens included."""
    ids = features["input_ids"][index]
    rows = ids if ids and isinstance(ids[0], list) else [ids]
    return [tokenizer.decode(r, skip_special_tokens=False) for r in rows]
