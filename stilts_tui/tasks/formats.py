"""Readers for the official release formats (tsv, jsonl, label lists), with errors that name
the file and the line. Every loader goes through these, so bad input never becomes a traceback."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from stilts_tui.errors import DataError


def _open_lines(path: Path) -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise DataError(path, "file not found", fix="check --data-dir, or run `stilts tasks show NAME` to see the expected layout")
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            for number, line in enumerate(fh, start=1):
                yield number, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None


def read_tsv(path: Path, columns: Sequence[str], header: bool) -> list[dict[str, str]]:
    """Rows of a GLUE-style tsv (no quoting: GLUE files contain bare quotes) as dicts.

    With ``header`` the named columns are looked up in the first row; without, ``columns``
    names the columns in order."""
    rows: list[dict[str, str]] = []
    index: dict[str, int] | None = None if header else {c: i for i, c in enumerate(columns)}
    for number, line in _open_lines(path):
        if not line.strip():
            continue
        cells = line.split("\t")
        if index is None:
            missing = [c for c in columns if c not in cells]
            if missing:
                raise DataError(path, f"header lacks column(s) {', '.join(missing)}; found {', '.join(cells)}", line=number)
            index = {c: cells.index(c) for c in columns}
            continue
        width = max(index.values()) + 1
        if len(cells) < width:
            raise DataError(path, f"expected at least {width} tab-separated columns ({', '.join(columns)}), found {len(cells)}", line=number)
        rows.append({c: cells[i] for c, i in index.items()} | {"_line": str(number)})
    if not rows:
        raise DataError(path, "file has no data rows")
    return rows


def read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a quoted csv with a header (CosmosQA's release)."""
    lines = dict(_open_lines(path))
    if not lines:
        raise DataError(path, "file is empty")
    rows: list[dict[str, str]] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(path, f"header lacks column(s) {', '.join(missing)}", line=1)
        for row in reader:
            rows.append(dict(row) | {"_line": str(reader.line_num)})
    if not rows:
        raise DataError(path, "file has no data rows")
    return rows


def read_jsonl(path: Path, fields: Sequence[str]) -> list[dict]:
    """Objects of a jsonl file, each checked for the required fields."""
    rows: list[dict] = []
    for number, line in _open_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"not valid JSON ({exc.msg})", line=number) from None
        if not isinstance(obj, dict):
            raise DataError(path, "expected a JSON object per line", line=number)
        missing = [f for f in fields if f not in obj]
        if missing:
            raise DataError(path, f"missing field(s) {', '.join(missing)}", line=number)
        obj["_line"] = number
        rows.append(obj)
    if not rows:
        raise DataError(path, "file has no data rows")
    return rows


def read_label_lines(path: Path, count: int) -> list[str]:
    """A file of one label per line (WiC gold, SocialIQA/WinoGrande .lst), which must match
    the data file row for row."""
    labels = [line.strip() for _, line in _open_lines(path) if line.strip()]
    if len(labels) != count:
        raise DataError(path, f"has {len(labels)} labels but the data file has {count} rows",
                        fix="use the label file that belongs to this split")
    return labels


def read_label_set(path: Path) -> tuple[str, ...]:
    """A file of one label name per line (edge probing's labels.txt)."""
    labels = tuple(line.strip() for _, line in _open_lines(path) if line.strip())
    if not labels:
        raise DataError(path, "lists no labels")
    return labels


def label_index(path: Path, line: int | str, value: object, allowed: Sequence[str]) -> int:
    text = str(value).strip()
    if text not in allowed:
        raise DataError(path, f"unknown label {text!r}; expected one of {', '.join(map(repr, allowed))}", line=int(line))
    return list(allowed).index(text)


def find_file(folder: Path, candidates: Sequence[str]) -> Path:
    """The first of ``candidates`` that exists under ``folder`` (names may include sub-folders)."""
    for name in candidates:
        path = folder / name
        if path.is_file():
            return path
    shown = " or ".join(candidates)
    raise DataError(folder / candidates[0], f"file not found (looked for {shown} in {folder})",
                    fix="point --data-dir at the folder holding the official release files")
