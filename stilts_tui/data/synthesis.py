"""Synthesis_GPT2 (Chang & Lu §4.2), built as the reference's ``run_gpt2_synth_dataset.py`` builds it.

Sentences (``get_data``, l. 35-56): every SQuAD v1.1 paragraph is split with
``context.split(". ")``; each piece keeps its first 30 words (``split()[:30]``) and is skipped
under 20 words; the premise is the first ``len // 2`` words and the true ending the rest *without
its last word* (``sent[half:-1]``). All pairs, in source order and without de-duplication, are
shuffled with ``random.seed(42)`` and the first 30,000 kept (l. 93-97).

Endings (l. 104-146): the stored premise and true ending are the generator tokenizer's round trip
of the text (``decode(encode(x))``, which cleans up tokenization spaces); each of the three fake
endings is sampled from the causal LM (GPT2-medium in the paper: nucleus p 0.9, top_k 0,
temperature 1) given the premise, for as many tokens as the true ending has, stopping early only
at the end-of-text token, and is the decoded text after the premise, stripped.

Two deliberate differences, neither of which changes what a model learns (docs/paper.md):

* The reference stores the true ending at label 0. Here its position is drawn per example
  (seeded): a multiple-choice model scores each choice on its own, so the position carries no
  signal, and a uniform label keeps the majority baseline and a constant predictor honest.
* Generation is batched (left padding; a batch samples up to its longest ending and each example
  keeps its own number of tokens). Sampling token t depends only on the tokens before it, so the
  endings follow the same distribution as one-at-a-time generation; the random streams differ.

The dev set: the reference reads ``SynGPT2_dev.jsonl`` but ships no code for it. It is built here
by the same procedure over the SQuAD v1.1 *dev* paragraphs (``--dev-source``).

Generation is resumable: each finished batch is appended (and fsync'd) to a partial file with a
per-batch seed, so an interrupted build continues where it stopped and ends with exactly the file
an uninterrupted build would have written."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

from stilts_tui.data.jsonl import write_jsonl
from stilts_tui.errors import DataError, StiltsError
from stilts_tui.tasks.formats import bounded_lines, check_regular_file

MAX_WORDS = 30
MIN_WORDS = 20
SHUFFLE_SEED = 42
TRAIN_SIZE = 30000


def read_paragraphs(source: Path) -> Iterator[str]:
    """Paragraphs of a SQuAD-style json (data[].paragraphs[].context), a jsonl file (field
    ``context`` or ``text``) or a text file (one paragraph per line)."""
    check_regular_file(source, fix="pass a SQuAD json, a jsonl or a text file of paragraphs")
    if source.suffix == ".json":
        try:
            doc = json.loads(source.read_text(encoding="utf-8"))
            for article in doc["data"]:
                for para in article["paragraphs"]:
                    yield para["context"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(source, f"not a SQuAD-style json (data[].paragraphs[].context): {exc}") from None
        return
    with source.open(encoding="utf-8") as fh:
        yield from _paragraph_lines(source, bounded_lines(fh, source))


def _paragraph_lines(source: Path, lines: Iterator[tuple[int, str]]) -> Iterator[str]:
    for number, line in lines:
        line = line.rstrip("\r\n")
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


def premise_and_ending(piece: str) -> tuple[str, str] | None:
    """run_gpt2_synth_dataset.py l. 43-48."""
    sent = piece.split()[:MAX_WORDS]
    if len(sent) < MIN_WORDS:
        return None
    half = len(sent) // 2
    return " ".join(sent[:half]).strip(), " ".join(sent[half:-1]).strip()


def sentence_pairs(paragraphs: Iterator[str]) -> list[tuple[str, str]]:
    """(premise, true ending) of every qualifying piece, in source order (l. 40-49)."""
    out = []
    for para in paragraphs:
        for piece in para.split(". "):
            pair = premise_and_ending(piece)
            if pair:
                out.append(pair)
    return out


def shuffled_pairs(source: Path, n: int = TRAIN_SIZE, seed: int = SHUFFLE_SEED) -> list[tuple[str, str]]:
    """``random.seed(42); random.shuffle(data); data[:30000]`` (l. 93-97)."""
    pairs = sentence_pairs(read_paragraphs(source))
    random.Random(seed).shuffle(pairs)
    return pairs[:n]


def clean_up_tokenization(text: str) -> str:
    """transformers 4.3.2 ``PreTrainedTokenizerBase.clean_up_tokenization``, which its ``decode``
    applied by default (and the reference asks for, l. 108 and 138). transformers 5 no longer
    applies it to BPE tokenizers, so it is applied here."""
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                 (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text


def _decode(tokenizer, ids: list[int]) -> str:
    return clean_up_tokenization(tokenizer.decode(ids, clean_up_tokenization_spaces=False))


def _generate(model, tokenizer, prompt_ids: list[list[int]], ctxs: list[str], lengths: list[int], seed: int,
              device: str) -> list[list[str]]:
    """Three endings per premise (its token ids and their decoded text ``ctx``), each of at most its
    true ending's number of tokens."""
    import torch

    torch.manual_seed(seed)
    enc = tokenizer.pad({"input_ids": prompt_ids}, return_tensors="pt").to(device)  # left padding
    with torch.no_grad():
        out = model.generate(**enc, do_sample=True, top_p=0.9, top_k=0, temperature=1.0,
                             max_new_tokens=max(lengths), num_return_sequences=3,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    new = out[:, enc["input_ids"].shape[1] :].tolist()
    endings = []
    for i, (ctx, length) in enumerate(zip(ctxs, lengths, strict=True)):
        group = []
        for j in range(3):
            text = _decode(tokenizer, prompt_ids[i] + new[i * 3 + j][:length])
            cut = text.find(tokenizer.eos_token)  # l. 140-142: all text after the stop token goes
            if cut != -1:
                text = text[:cut]
            group.append(text[len(ctx) :].strip())  # l. 144
        endings.append(group)
    return endings


def _generate_split(pairs: list[tuple[str, str]], out: Path, split: str, model, tokenizer, meta: dict,
                    batch_size: int, seed: int, device: str, progress: bool) -> list[dict]:
    """Rows {ctx, true, fakes} for ``pairs``, resumable through ``out``/partial-SPLIT.jsonl."""
    from tqdm import tqdm

    partial = out / f"partial-{split}.jsonl"
    meta_path = out / f"partial-{split}.meta.json"
    done: list[dict] = []
    if partial.exists() and meta_path.exists() and json.loads(meta_path.read_text()) == meta:
        for line in partial.read_text(encoding="utf-8").splitlines():
            try:
                done.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a batch cut off mid-write: it is generated again
        done = done[: len(done) - len(done) % batch_size] if len(done) < len(pairs) else done
    meta_path.write_text(json.dumps(meta))
    write_jsonl(partial, done)  # rewrite what is kept, so a torn last line is gone before appending
    with partial.open("a", encoding="utf-8") as fh, tqdm(total=len(pairs), initial=len(done), disable=not progress,
                                                          desc=f"synthesis-gpt2 {split}", unit="ex") as bar:
        for start in range(len(done), len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            prompt_ids = tokenizer([p for p, _ in batch], add_special_tokens=False)["input_ids"]
            ending_ids = tokenizer([e for _, e in batch], add_special_tokens=False)["input_ids"]
            # l. 107-114: the reference stores decode(encode(x)) of premise and true ending, and
            # generates as many tokens as the true ending has.
            ctxs = [_decode(tokenizer, ids) for ids in prompt_ids]
            fakes = _generate(model, tokenizer, prompt_ids, ctxs, [len(ids) for ids in ending_ids],
                              seed=seed * 1_000_003 + start // batch_size, device=device)
            for ctx, ids, f in zip(ctxs, ending_ids, fakes, strict=True):
                fh.write(json.dumps({"ctx": ctx, "true": _decode(tokenizer, ids), "fakes": f}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(batch))
    return [json.loads(line) for line in partial.read_text(encoding="utf-8").splitlines()]


def _examples(rows: list[dict], seed: int) -> list[dict]:
    rng = random.Random(seed)
    examples = []
    for row in rows:
        label = rng.randrange(4)
        endings = list(row["fakes"])
        endings.insert(label, row["true"])
        examples.append({"ctx": row["ctx"], "endings": endings, "label": label})
    return examples


def build(source: Path, out: Path, dev_source: Path | None = None, model_name: str = "gpt2-medium",
          n: int = TRAIN_SIZE, dev_n: int = TRAIN_SIZE, batch_size: int = 16, seed: int = 42,
          device: str | None = None, progress: bool = True) -> dict[str, int]:
    """Write ``out``/train.jsonl (from ``source``, SQuAD v1.1 train) and dev.jsonl (from
    ``dev_source``, SQuAD v1.1 dev) in the Synthesis format {ctx, endings[4], label}."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dev_source is None:
        raise StiltsError("Synthesis_GPT2 needs a dev source", "pass --dev-source with SQuAD v1.1's dev-v1.1.json")
    sources = {"train": source, "dev": dev_source}
    splits = {"train": shuffled_pairs(source, n), "dev": shuffled_pairs(dev_source, dev_n)}
    for split, pairs in splits.items():
        if not pairs:
            where = sources[split]
            raise StiltsError(f"{where}: no sentence of at least {MIN_WORDS} words found", "use a source with full paragraphs")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name)
        model = AutoModelForCausalLM.from_pretrained(model_name)
    except OSError as exc:
        raise StiltsError(f"cannot load the generator {model_name!r}: {exc}".splitlines()[0],
                          "pass --model with a local folder holding a causal LM (offline there are no GPT-2 weights)") from None
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()  # type: ignore[arg-type]  # transformers' stub types .to oddly
    tokenizer.padding_side = "left"  # decoder-only models continue from the right end
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, pairs in splits.items():
        meta = {"source": str(sources[split]), "model": model_name, "n": len(pairs), "batch_size": batch_size, "seed": seed}
        rows = _generate_split(pairs, out, split, model, tokenizer, meta, batch_size, seed + (split == "dev"), device,
                               progress)
        counts[split] = write_jsonl(out / f"{split}.jsonl", _examples(rows, seed + (split == "dev")))
    for split in splits:  # kept until both splits are written, so an interrupted dev split resumes
        (out / f"partial-{split}.jsonl").unlink()
        (out / f"partial-{split}.meta.json").unlink()
    return counts
