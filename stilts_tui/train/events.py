"""The worker's event stream: one versioned JSON object per line.

    {"v": 1, "event": "started", "run_id": "...", "t": 1700000000.0, ...}

Events: started, handoff, resumed (continuing from a saved step), step, eval, finished, failed; a warm worker also says `ready` once its
imports are done. Every run event carries the attempt it belongs to (a retried run appends to the
same log). Readers must survive anything: a torn
last line, a library printing to stdout, garbage. `parse_event` returns None for those."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO

SCHEMA_VERSION = 1
EVENT_TYPES = ("ready", "started", "handoff", "resumed", "step", "eval", "finished", "failed")
FAILURE_REASONS = ("oom", "nan_loss", "data_error", "killed", "timeout", "error")


class EventWriter:
    """Writes each event to the run's event log (durable) and to stdout (live)."""

    def __init__(self, run_id: str, path: str | Path | None, stream: IO[str] | None = None, attempt: int = 1) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.stream = stream if stream is not None else sys.stdout
        self.file = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run

    def emit(self, event: str, **data) -> dict:
        record = {"v": SCHEMA_VERSION, "event": event, "run_id": self.run_id, "attempt": self.attempt, "t": time.time(), **data}
        line = json.dumps(record, default=str) + "\n"
        if self.file:
            self.file.write(line)
            self.file.flush()
            if event in ("finished", "failed"):
                os.fsync(self.file.fileno())
        try:
            self.stream.write(line)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader went away; the event log still has everything
        return record

    def close(self) -> None:
        if self.file:
            self.file.close()


def parse_event(line: str | bytes) -> dict | None:
    """The event on one line, or None when the line is not a (supported) event."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("event") not in EVENT_TYPES:
        return None
    if not isinstance(obj.get("v"), int) or obj["v"] > SCHEMA_VERSION:
        return None
    return obj


def read_events(path: str | Path) -> list[dict]:
    """Every well-formed event in an event log; anything else is skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    with p.open("rb") as fh:
        return [e for e in (parse_event(line) for line in fh) if e is not None]
