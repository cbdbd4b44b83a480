"""HellaSwag's file layout and the row transforms of its two derived intermediates (Chang & Lu
§4): HellaSwag-p (premise removed) and Hella-sh (the words of the three wrong endings shuffled).
The task registry reads with them; `stilts build-data` writes with them."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable

# The release's file names (and the names the builders write), and the fields every row has.
FILES = {"train": ["hellaswag_train.jsonl", "train.jsonl"], "dev": ["hellaswag_val.jsonl", "val.jsonl", "dev.jsonl"]}
FIELDS = ["ctx_a", "ctx_b", "endings", "label"]
BUILT = {"train": ["train.jsonl"], "dev": ["dev.jsonl"]}

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
