"""Readers for the official release formats (tsv, jsonl, label lists), with errors that name
the file and the line. Every loader goes through these, so bad input never becomes a traceback."""

from __future__ import annotations

import csv
import itertools
import json
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from stilts_tui.errors import DataError

# The longest line a data file may have, in characters. The longest records of the study's
# releases (a MultiRC passage with its questions) are well under 1 MB; a file without line breaks
# (a 2 GB blob) was read as one line of twice its size in memory. 32 Mi characters leaves room
# for any real record and bounds the memory one line takes.
MAX_LINE_CHARS = 32 * 2**20

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def not_regular(path: Path) -> str | None:
    """What `path` is when it exists but is not a regular file ("a FIFO", "a directory"), else None.
    Checked by stat, never by opening: a FIFO would block the read forever, /dev/zero never end."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "another kind of file")


def _not_regular_error(path: Path, what: str, fix: str | None = None) -> DataError:
    return DataError(path, f"is not a regular file ({what})",
                     fix=fix or "point the task at its data file (a file of text), not at a device, pipe or folder")


def check_regular_file(path: Path, fix: str | None = None) -> None:
    """Raise a DataError unless `path` is a regular file: "file not found", or what it is instead
    (`fix`: what to do, for a file that is not a task's)."""
    what = not_regular(path)
    if what is not None:
        raise _not_regular_error(path, what, fix)
    if not path.is_file():
        raise DataError(path, "file not found",
                        fix=fix or "check --data-dir, or run `stilts tasks show NAME` to see the expected layout")


def bounded_lines(fh: TextIO, path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line with its line break) of an open text file, each at most MAX_LINE_CHARS
    long without its break: a longer one stops the read, naming the file, the line and the limit."""
    limit = MAX_LINE_CHARS
    for number in itertools.count(1):
        line = fh.readline(limit + 2)  # room for the limit and a "\r\n"
        if not line:
            return
        if len(line.rstrip("\r\n")) > limit:
            raise DataError(path, f"line longer than the limit of {limit:,} characters", line=number,
                            fix="a data file holds one record per line: check that this is the task's file and that "
                                "it has its line breaks")
        yield number, line


def _open_lines(path: Path) -> Iterator[tuple[int, str]]:
    check_regular_file(path)
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            for number, line in bounded_lines(fh, path):
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
    check_regular_file(path)
    rows: list[dict[str, str]] = []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(_line_texts(bounded_lines(fh, path)))
            if reader.fieldnames is None:
                raise DataError(path, "file is empty")
            missing = [c for c in columns if c not in reader.fieldnames]
            if missing:
                raise DataError(path, f"header lacks column(s) {', '.join(missing)}", line=1)
            for row in reader:
                rows.append(dict(row) | {"_line": str(reader.line_num)})
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:  # a field past csv's own size limit, a stray quote
        raise DataError(path, f"not valid CSV ({exc})", line=reader.line_num) from None
    if not rows:
        raise DataError(path, "file has no data rows")
    return rows


def _line_texts(lines: Iterable[tuple[int, str]]) -> Iterator[str]:
    return (line for _, line in lines)


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
    odd: tuple[Path, str] | None = None
    for name in candidates:
        path = folder / name
        if path.is_file():
            return path
        what = not_regular(path)
        odd = odd or ((path, what) if what else None)
    if odd is not None:  # something is where the file should be: say what, not "not found"
        raise _not_regular_error(*odd)
    shown = " or ".join(candidates)
    raise DataError(folder / candidates[0], f"file not found (looked for {shown} in {folder})",
                    fix="point --data-dir at the folder holding the official release files")
