"""Writing jsonl atomically, so an interrupted build never leaves a half-written file behind."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from stilts_tui.fileio import atomic_write


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    n = 0

    def write(fh: IO[bytes]) -> None:
        nonlocal n
        for row in rows:
            line = json.dumps({k: v for k, v in row.items() if not k.startswith("_")}, ensure_ascii=False) + "\n"
            fh.write(line.encode("utf-8"))
            n += 1

    atomic_write(path, write)
    return n
