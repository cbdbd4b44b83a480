"""The worker's side of the event stream: `EventWriter` writes one versioned JSON object per line
to the run's event log and to stdout. What an event holds, and how a reader decodes a line, are the
domain's (domain/events.py)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from stilts_tui.diskspace import DiskFullError, inject, is_disk_full
from stilts_tui.domain.events import SCHEMA_VERSION


class EventWriter:
    """Writes each event to the run's event log (durable) and to stdout (live).

    A log that cannot be written (a full disk) is closed and the run told so by `DiskFullError`,
    raised after the line went to stdout: the runner still hears every event, including the
    `failed` that follows. A line cut short by the full disk is ended before the next attempt
    appends, so no later event is lost to it."""

    def __init__(self, run_id: str, path: str | Path | None, stream: IO[str] | None = None, attempt: int = 1) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.stream = stream if stream is not None else sys.stdout
        self.path = str(path) if path else None
        self.file = None
        self.failed_write: OSError | None = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "ab")  # noqa: SIM115 - lives as long as the run
            if self.file.tell() and not _ends_with_newline(path):
                self._write(b"\n")

    def emit(self, event: str, **data: Any) -> dict:
        record = {"v": SCHEMA_VERSION, "event": event, "run_id": self.run_id, "attempt": self.attempt, "t": time.time(), **data}
        line = json.dumps(record, default=str) + "\n"
        if self.file:
            self._write(line.encode(), durable=event in ("finished", "failed"))
        try:
            self.stream.write(line)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader went away; the event log still has everything
        if self.failed_write is not None and event not in ("finished", "failed"):
            exc, self.failed_write = self.failed_write, None
            if is_disk_full(exc):
                raise DiskFullError(self.path or "", "write the event log") from exc
            raise exc
        return record

    def _write(self, data: bytes, durable: bool = False) -> None:
        assert self.file is not None
        try:
            inject("events", self.path or "")
            self.file.write(data)
            self.file.flush()
            if durable:
                os.fsync(self.file.fileno())
        except OSError as exc:
            self.failed_write = exc
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None

    def close(self) -> None:
        if self.file:
            with contextlib.suppress(OSError):
                self.file.close()


def _ends_with_newline(path: str | Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"
