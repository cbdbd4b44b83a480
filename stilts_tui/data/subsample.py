"""Reproducible subsets of a training set (the intermediate-size ablation: 2k / 10k / 40k)."""

from __future__ import annotations

import random
from pathlib import Path

from stilts_tui.errors import DataError, StiltsError


def subsample_indices(total: int, n: int, seed: int) -> list[int]:
    """``n`` of ``range(total)`` chosen for ``seed``, kept in their original order. The same
    (total, n, seed) always gives the same subset, and a smaller n is not a prefix of a larger."""
    if n >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), n))


def subsample_file(src: Path, dst: Path, n: int, seed: int, header: bool = False,
                   labels: tuple[Path, Path] | None = None) -> int:
    """Write ``n`` rows of a line-oriented file (jsonl, tsv) to ``dst``; with ``labels`` the
    matching lines of a separate label file too (SocialIQA, WinoGrande .lst)."""
    if n <= 0:
        raise StiltsError(f"--n must be positive, got {n}", "pass the number of examples to keep, e.g. --n 2000")
    if not src.is_file():
        raise DataError(src, "file not found")
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    body = [b for b in body if b.strip()]
    if not body:
        raise DataError(src, "file has no data rows")
    keep = subsample_indices(len(body), n, seed)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(head + [body[i] for i in keep]), encoding="utf-8")
    if labels:
        label_lines = [x for x in labels[0].read_text(encoding="utf-8").splitlines(keepends=True) if x.strip()]
        if len(label_lines) != len(body):
            raise DataError(labels[0], f"has {len(label_lines)} labels but {src.name} has {len(body)} rows")
        labels[1].write_text("".join(label_lines[i] for i in keep), encoding="utf-8")
    return len(keep)
