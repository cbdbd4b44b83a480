"""HellaSwag-p and Hella-sh (Chang & Lu §4): HellaSwag with the premise removed, and HellaSwag
with the words of the three wrong endings shuffled."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

from stilts_tui.data.jsonl import write_jsonl
from stilts_tui.tasks.builtin import _HS_FIELDS, _HS_FILES
from stilts_tui.tasks.formats import find_file, read_jsonl

DEFAULT_SEED = 42


def premise_removed(row: dict) -> dict:
    return row | {"ctx_a": "", "ctx_b": "", "ctx": ""}


def shuffle_wrong_endings(row: dict, seed: int = DEFAULT_SEED) -> dict:
    """Shuffle the words of each wrong ending; the true ending is untouched. The RNG is seeded
    by the seed and the row's content, so the result does not depend on file order."""
    key = json.dumps([seed, row.get("ctx_a"), row.get("ctx_b"), row.get("endings")], sort_keys=True)
    rng = random.Random(hashlib.sha256(key.encode()).hexdigest())
    label = int(row["label"])
    endings = []
    for i, ending in enumerate(row["endings"]):
        if i == label:
            endings.append(ending)
            continue
        words = ending.split()
        rng.shuffle(words)
        endings.append(" ".join(words))
    return row | {"endings": endings}


ROW_TRANSFORMS: dict[str, Callable[[dict], dict]] = {"p": premise_removed, "sh": shuffle_wrong_endings}


def build(kind: str, hellaswag_dir: Path, out: Path, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write train.jsonl and dev.jsonl (HellaSwag schema) for `hellaswag-p` or `hella-sh`."""
    counts = {}
    for split in ("train", "dev"):
        src = find_file(hellaswag_dir, _HS_FILES[split])
        rows = read_jsonl(src, _HS_FIELDS)
        if kind == "hellaswag-p":
            new = (premise_removed(r) for r in rows)
        elif kind == "hella-sh":
            new = (shuffle_wrong_endings(r, seed) for r in rows)
        else:
            raise ValueError(kind)
        counts[split] = write_jsonl(out / f"{split}.jsonl", new)
    return counts
