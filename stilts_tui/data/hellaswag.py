"""`stilts build-data hellaswag-p | hella-sh`: HellaSwag with the premise removed, and HellaSwag
with the words of the three wrong endings shuffled (the transforms live in tasks/hellaswag.py)."""

from __future__ import annotations

from pathlib import Path

from stilts_tui.data.jsonl import write_jsonl
from stilts_tui.tasks.formats import find_file, read_jsonl
from stilts_tui.tasks.hellaswag import (
    DEFAULT_SEED,
    FIELDS,
    FILES,
    premise_removed,
    shuffle_wrong_endings,
)

__all__ = ["DEFAULT_SEED", "build", "premise_removed", "shuffle_wrong_endings"]


def build(kind: str, hellaswag_dir: Path, out: Path, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write train.jsonl and dev.jsonl (HellaSwag schema) for `hellaswag-p` or `hella-sh`."""
    counts = {}
    for split in ("train", "dev"):
        src = find_file(hellaswag_dir, FILES[split])
        rows = read_jsonl(src, FIELDS)
        if kind == "hellaswag-p":
            new = (premise_removed(r) for r in rows)
        elif kind == "hella-sh":
            new = (shuffle_wrong_endings(r, seed) for r in rows)
        else:
            raise ValueError(kind)
        counts[split] = write_jsonl(out / f"{split}.jsonl", new)
    return counts
