"""Synthesis_GPT2 (Chang & Lu §4.2): real sentence halves against continuations sampled from a
causal LM. Sentences come from Wikipedia paragraphs (SQuAD v1.1 contexts in the paper), split on
sentence ends, truncated to 30 words and kept when at least 20 words long; the first half is the
premise and the second half the true ending; three negatives are sampled from GPT2-medium given
the premise (nucleus p = 0.9, top_k 0, temperature 1), each about as long as the true ending.

Generation is batched and resumable: each finished batch is appended (and fsync'd) to
``partial.jsonl`` with a per-batch seed, so an interrupted build continues where it stopped and
ends with exactly the file an uninterrupted build would have written."""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

from stilts_tui.data.jsonl import write_jsonl
from stilts_tui.errors import DataError, StiltsError

MAX_WORDS = 30
MIN_WORDS = 20
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def read_paragraphs(source: Path) -> Iterator[str]:
    """Paragraphs of a SQuAD-style json (data[].paragraphs[].context), a jsonl file (field
    ``context`` or ``text``) or a text file (one paragraph per line)."""
    if not source.is_file():
        raise DataError(source, "file not found", fix="pass a SQuAD json, a jsonl or a text file of paragraphs")
    if source.suffix == ".json":
        try:
            doc = json.loads(source.read_text(encoding="utf-8"))
            for article in doc["data"]:
                for para in article["paragraphs"]:
                    yield para["context"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(source, f"not a SQuAD-style json (data[].paragraphs[].context): {exc}") from None
        return
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if source.suffix == ".jsonl":
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(source, f"not valid JSON ({exc.msg})", line=number) from None
            text = obj.get("context", obj.get("text")) if isinstance(obj, dict) else None
            if not isinstance(text, str):
                raise DataError(source, "expected an object with a 'context' or 'text' string", line=number)
            yield text
        else:
            yield line


def premise_and_ending(sentence: str) -> tuple[str, str] | None:
    words = sentence.split()[:MAX_WORDS]
    if len(words) < MIN_WORDS:
        return None
    half = len(words) // 2
    return " ".join(words[:half]), " ".join(words[half:])


def split_sentences(paragraphs: Iterator[str]) -> list[tuple[str, str]]:
    """(premise, true ending) pairs, deduplicated, in source order."""
    seen: set[str] = set()
    out = []
    for para in paragraphs:
        for sentence in _SENTENCE_END.split(para.strip()):
            pair = premise_and_ending(sentence)
            if pair and sentence not in seen:
                seen.add(sentence)
                out.append(pair)
    return out


def _generate(model, tokenizer, premises: list[str], lengths: list[int], seed: int, device: str) -> list[list[str]]:
    import torch

    torch.manual_seed(seed)
    enc = tokenizer(premises, return_tensors="pt", padding=True).to(device)
    max_words = max(lengths)
    # GPT-2 BPE averages ~1.3 tokens per English word; generate a margin and cut to words.
    with torch.no_grad():
        out = model.generate(**enc, do_sample=True, top_p=0.9, top_k=0, temperature=1.0,
                             max_new_tokens=int(max_words * 1.6) + 4, num_return_sequences=3,
                             pad_token_id=tokenizer.pad_token_id)
    new = out[:, enc["input_ids"].shape[1]:]
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    negatives = []
    for i, n_words in enumerate(lengths):
        group = []
        for j in range(3):
            words = texts[i * 3 + j].replace("\n", " ").split()[:n_words]
            group.append(" ".join(words) if words else "...")
        negatives.append(group)
    return negatives


def build(source: Path, out: Path, model_name: str = "gpt2-medium", n: int = 30000, dev_size: int = 2000,
          batch_size: int = 16, seed: int = 42, device: str | None = None, progress: bool = True) -> dict[str, int]:
    """Write ``out``/train.jsonl and dev.jsonl in the Synthesis format {ctx, endings[4], label}."""
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    pairs = split_sentences(read_paragraphs(source))
    if not pairs:
        raise StiltsError(f"{source}: no sentence of at least {MIN_WORDS} words found", "use a source with full paragraphs")
    pairs = pairs[:n]
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "partial.jsonl"
    meta = {"source": str(source), "model": model_name, "n": len(pairs), "batch_size": batch_size, "seed": seed}
    meta_path = out / "partial.meta.json"
    done: list[dict] = []
    if partial.exists() and meta_path.exists() and json.loads(meta_path.read_text()) == meta:
        for line in partial.read_text(encoding="utf-8").splitlines():
            try:
                done.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a batch cut off mid-write: it is generated again
        done = done[: len(done) - len(done) % batch_size] if len(done) < len(pairs) else done
    meta_path.write_text(json.dumps(meta))
    # Rewrite what is kept, so a torn last line is gone before appending.
    write_jsonl(partial, done)

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name)
        model = AutoModelForCausalLM.from_pretrained(model_name)
    except OSError as exc:
        raise StiltsError(f"cannot load the generator {model_name!r}: {exc}".splitlines()[0],
                          "pass --model with a local folder holding a causal LM (offline there are no GPT-2 weights)") from None
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    tokenizer.padding_side = "left"  # decoder-only models continue from the right end
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    with partial.open("a", encoding="utf-8") as fh, tqdm(total=len(pairs), initial=len(done), disable=not progress,
                                                          desc="synthesis-gpt2", unit="ex") as bar:
        for start in range(len(done), len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            negatives = _generate(model, tokenizer, [p for p, _ in batch], [len(e.split()) for _, e in batch],
                                  seed=seed * 1_000_003 + start // batch_size, device=device)
            for (premise, ending), negs in zip(batch, negatives, strict=True):
                fh.write(json.dumps({"ctx": premise, "true": ending, "negatives": negs}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(batch))

    rows = [json.loads(line) for line in partial.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    examples = []
    for row in rows:
        label = rng.randrange(4)
        endings = list(row["negatives"])
        endings.insert(label, row["true"])
        examples.append({"ctx": row["ctx"], "endings": endings, "label": label})
    dev_n = min(dev_size, len(examples) // 5) if len(examples) > 1 else 0
    counts = {"train": write_jsonl(out / "train.jsonl", examples[dev_n:]), "dev": write_jsonl(out / "dev.jsonl", examples[:dev_n])}
    partial.unlink()
    meta_path.unlink()
    return counts
