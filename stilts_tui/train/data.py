"""Tokenised splits, cached on disk once per (examples, tokenizer, max length) and shared by every
run that needs them, and the batching that makes gradient accumulation exact."""

from __future__ import annotations

import hashlib
import pickle
import re
import shutil
from pathlib import Path

import torch
from filelock import FileLock

from stilts_tui.diskspace import DiskFullError, inject, is_disk_full
from stilts_tui.tasks import Task, load_examples
from stilts_tui.tasks.encode import encode
from stilts_tui.tasks.encode_heads import IGNORE

CACHE_VERSION = 2  # 2: reference truncation and segment strings (tasks/encode.py)


def _tokenizer_fingerprint(tokenizer) -> str:
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Truncation and padding settings are call state that to_str() also records: drop them.
        blob = json.dumps({k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}, sort_keys=True)
    else:
        blob = repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(f"{type(tokenizer).__name__}|{blob}".encode()).hexdigest()[:16]


def _file_name_part(name: str) -> str:
    """A task name as part of a file name. Task files' names are checked (tasks/custom.py), but a
    task registered from code is not: a separator or anything odd becomes `_`, so the cache can
    only ever land inside the cache folder. Every name the project knows maps to itself, so no
    cache written before changes folder."""
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", name)


def tokenised_split(task: Task, split: str, data_dir: str | None, tokenizer, max_length: int,
                    cache_dir: str | Path | None, inputs: str = "reference"):
    """A `datasets.Dataset` of features for one split (memory-mapped Arrow when cached); ``inputs``:
    the encoding (tasks/encode.py, tasks/jiant_inputs.py)."""
    import datasets

    examples = load_examples(task, split, data_dir)
    if not cache_dir:
        return datasets.Dataset.from_dict(encode(task, examples, tokenizer, max_length, inputs)), examples
    # the reference encodings keep the key (and the caches) they always had
    parts = (CACHE_VERSION, task.name, split, examples, max_length) + ((inputs,) if inputs != "reference" else ())
    key = hashlib.sha256(pickle.dumps(parts)).hexdigest()[:16]
    folder = Path(cache_dir) / f"{_file_name_part(task.name)}-{split}-{key}-{_tokenizer_fingerprint(tokenizer)}-{max_length}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock", timeout=600):
        if not (folder / "dataset_info.json").is_file():
            tmp = folder.with_name(folder.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)  # half a cache left by a worker that died
            try:
                inject("cache", tmp)
                datasets.Dataset.from_dict(encode(task, examples, tokenizer, max_length, inputs)).save_to_disk(str(tmp))
            except BaseException as exc:
                shutil.rmtree(tmp, ignore_errors=True)  # a full disk gets back what the cache took
                if is_disk_full(exc):
                    raise DiskFullError(folder, "write the tokenised cache") from exc
                raise
            tmp.rename(folder)
    return datasets.load_from_disk(str(folder)), examples


def _pad(rows: list[list], width: int, fill) -> torch.Tensor:
    t = torch.full((len(rows), width), fill, dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            t[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return t


def _pad_targets(rows: list[list], fill) -> torch.Tensor:
    """Per-row lists of targets (spans, label rows) padded along the target axis."""
    width = max(1, max(len(r) for r in rows))
    inner = next((len(x) for r in rows for x in r if isinstance(x, list)), None)
    shape = (len(rows), width) if inner is None else (len(rows), width, inner)
    t = torch.full(shape, fill, dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            t[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return t


class Collator:
    """Pads a columnar batch (what `dataset[indices]` returns) to its longest sequence; the span
    heads' columns are padded with values their losses skip."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.multiple = pad_to_multiple_of

    def __call__(self, columns: dict[str, list]) -> dict[str, torch.Tensor]:
        ids = columns["input_ids"]
        n = len(ids)
        multiple_choice = bool(ids) and isinstance(ids[0][0], list)
        seqs = [c for r in ids for c in r] if multiple_choice else ids
        length = max(len(s) for s in seqs)
        if self.multiple:
            length = -(-length // self.multiple) * self.multiple
        batch: dict[str, torch.Tensor] = {}
        for key, pad in (("input_ids", self.pad_token_id), ("attention_mask", 0), ("token_type_ids", 0)):
            if key not in columns:
                continue
            flat = [c for r in columns[key] for c in r] if multiple_choice else columns[key]
            t = _pad(flat, length, pad)
            batch[key] = t.view(n, -1, length) if multiple_choice else t
        labels = columns.get("labels")
        if labels is not None:
            per_token = bool(labels) and isinstance(labels[0], list)
            batch["labels"] = _pad(labels, length, IGNORE) if per_token else torch.tensor(labels, dtype=torch.long)
        for key in ("start_positions", "end_positions", "span_a", "span_b"):
            if key in columns:
                batch[key] = torch.tensor(columns[key], dtype=torch.long)
        for key, fill in (("spans1", -1), ("spans2", -1), ("span_labels", 0)):
            if key in columns:
                batch[key] = _pad_targets(columns[key], fill)
        return batch


def sequence_lengths(dataset) -> list[int]:
    """Tokens of each example (its longest choice for multiple choice)."""
    ids = dataset["input_ids"]
    return [max(len(c) for c in x) if x and isinstance(x[0], list) else len(x) for x in ids]


def length_groups(indices: list[int], lengths: list[int], cap: int, waste: float | None = 0.25) -> list[list[int]]:
    """Split one step's examples into micro-batches of similar length: sorted by length, a new
    group starts when padding would exceed ``waste`` of the real tokens (never, with None) or the
    group is full.

    The step's gradient is the same (the same examples, each weighted by 1/batch); only the
    padding, and so the work, shrinks. A few long examples no longer pad a whole batch."""
    order = sorted(indices, key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        n = lengths[i]
        if current and (len(current) >= cap or (waste is not None and (len(current) + 1) * n > (1 + waste) * (real + n))):
            groups.append(current)
            current, real = [], 0
        current.append(i)
        real += n
    if current:
        groups.append(current)
    return groups
