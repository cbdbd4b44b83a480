"""Reproducible subsets of a training set (the intermediate-size ablation: 2k / 10k / 40k)."""

from __future__ import annotations

import random
from pathlib import Path

from stilts_tui.errors import DataError, StiltsError
from stilts_tui.tasks.formats import bounded_lines, check_regular_file


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
    lines = _lines(src)
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    body = [b for b in body if b.strip()]
    if not body:
        raise DataError(src, "file has no data rows")
    keep = subsample_indices(len(body), n, seed)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(head + [body[i] for i in keep]), encoding="utf-8")
    if labels:
        label_lines = [x for x in _lines(labels[0]) if x.strip()]
        if len(label_lines) != len(body):
            raise DataError(labels[0], f"has {len(label_lines)} labels but {src.name} has {len(body)} rows")
        labels[1].write_text("".join(label_lines[i] for i in keep), encoding="utf-8")
    return len(keep)


def _lines(path: Path) -> list[str]:
    """The file's lines with their line breaks ("\\r\\n" read as "\\n"), each bounded in length
    (tasks/formats.py); a path that is not a regular file is said as such, and never read."""
    check_regular_file(path, fix="pass the path of a jsonl, tsv or label file")
    try:
        with path.open(encoding="utf-8") as fh:
            return [line for _, line in bounded_lines(fh, path)]
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None
