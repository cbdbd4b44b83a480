"""The two ways stilts touches files that others read while it writes:

- `atomic_write`: the new content goes to a temporary file in the same folder, is fsync'd, then
  renamed over the old one; a crash or a full disk leaves the old file whole, never half a file
  (`fsync_dir` makes a rename durable).
- `EventLines`: the complete lines added since the last read (of a growing log file, or of bytes
  from a pipe), each parsed by the function it is given; a torn last line waits for the rest.

Nothing here knows what a line means: the caller hands the parser in (the event logs' is
`train.events.parse_event`), so this module sits below every layer that reads logs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Generic, TypeVar

T = TypeVar("T")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object], mode: int | None = None) -> None:
    """Replace `path` with what `write(fh)` writes, atomically; `mode` (e.g. 0o600) before any byte."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def fsync_dir(folder: str | Path) -> None:
    """Make the renames in `folder` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_orphan_temps(path: str | Path) -> int:
    """Delete the temporary files `atomic_write` left beside `path` when its writer was killed
    mid-write (SIGKILL runs no clean-up). Only for a file whose one writer is the caller."""
    path = Path(path)
    removed = 0
    with contextlib.suppress(OSError):
        for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


class EventLines(Generic[T]):
    """What `parse` makes of complete lines, read incrementally from a file (`read_file`) or fed
    as bytes (`feed`); a line it returns None for (blank, damaged, unknown) is skipped."""

    def __init__(self, parse: Callable[[bytes], T | None]) -> None:
        self.parse = parse
        self.offset = 0      # bytes of the file consumed so far
        self.buffer = b""    # a torn last line

    def feed(self, chunk: bytes | None) -> list[T]:
        if chunk:
            self.buffer += chunk
        if b"\n" not in self.buffer:
            return []
        *lines, self.buffer = self.buffer.split(b"\n")
        return [e for e in (self.parse(line) for line in lines) if e is not None]

    def read_file(self, path: str | Path | None) -> list[T]:
        """The events of lines completed in `path` since the last call (none if it cannot be read)."""
        if not path:
            return []
        try:
            with open(path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return []
        self.offset += len(chunk)
        return self.feed(chunk)
