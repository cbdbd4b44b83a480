"""The worker's event stream: one versioned JSON object per line.

    {"v": 1, "event": "started", "run_id": "...", "attempt": 1, "t": 1700000000.0, ...}

Events: started, handoff, resumed (continuing from a saved step), step, eval, finished, failed; a
warm worker also says `ready` once its imports are done. Every run event carries the attempt it
belongs to (a retried run appends to the same log). Each kind is a TypedDict below, and
`parse_event` is the one decoder: it checks a line against its kind's declared fields and fills
what older logs lack, so readers index fields instead of guessing. Readers must survive anything:
a torn last line, a library printing to stdout, garbage, a field of the wrong type. `parse_event`
returns None for those.

No `from __future__ import annotations` here: on Python 3.11 it hides `NotRequired` from the
TypedDicts, and every field would count as required."""

import contextlib
import functools
import json
import math
import os
import sys
import time
import types
import typing
from pathlib import Path
from typing import IO, Any, Literal, NotRequired, TypedDict, Union

from stilts_tui.diskspace import DiskFullError, inject, is_disk_full

SCHEMA_VERSION = 1
FAILURE_REASONS = ("oom", "nan_loss", "data_error", "unavailable", "disk_full", "killed", "stalled", "timeout", "error")


class _Base(TypedDict):
    v: int
    run_id: str  # "" for a warm worker's `ready`
    attempt: int  # logs written before retries existed have none: 1
    t: float


class Ready(_Base):
    event: Literal["ready"]
    pid: NotRequired[int]
    import_s: NotRequired[float]


class Started(_Base):
    event: Literal["started"]
    config: NotRequired[dict]
    params: NotRequired[int]
    device: NotRequired[str]
    precision: NotRequired[str]
    torch_threads: NotRequired[int]
    train_examples: NotRequired[int]
    dev_examples: NotRequired[int]
    micro_batch: NotRequired[int]
    accumulation: NotRequired[int]
    total_steps: NotRequired[int]
    warmup_steps: NotRequired[int]
    grad_clip: NotRequired[str]
    optimizer: NotRequired[str]
    baselines: NotRequired[dict]


class Handoff(_Base):
    """What the run's model was built from (train/handoff.py's report)."""

    event: Literal["handoff"]
    rule: str
    source: NotRequired[str]
    model: NotRequired[str]
    checkpoint: NotRequired[str]
    intermediate_task: NotRequired[str | None]
    from_head: NotRequired[str]
    to_head: NotRequired[str]
    kept: NotRequired[list]
    reinitialised: NotRequired[list]
    from_pretrained: NotRequired[list]


class Resumed(_Base):
    event: Literal["resumed"]
    step: int
    epoch: int
    batch_in_epoch: int


class Step(_Base):
    event: Literal["step"]
    step: int
    total_steps: int
    epoch: float
    loss: float
    lr: float
    sequences_per_s: float
    tokens_per_s: float
    memory_mb: float | None


class Eval(_Base):
    event: Literal["eval"]
    epoch: int
    step: int
    metric: str
    score: float
    n: NotRequired[int]
    predicted_share: NotRequired[dict]
    parts: NotRequired[dict]            # a span head's score parts (F1, EM, ...)
    validation: NotRequired[bool]       # a periodic validation of the second study's recipe
    best: NotRequired[bool]             # that validation improved on every earlier one


class FinalMetrics(TypedDict):
    """A finished run's metrics (train/loop.run's result); the store keeps them whole."""

    metric: str
    score: float
    wall_s: NotRequired[float]
    steps: NotRequired[int]


class Finished(_Base):
    event: Literal["finished"]
    metrics: FinalMetrics
    wall_s: NotRequired[float | None]


class Failed(_Base):
    event: Literal["failed"]
    reason: str
    message: str
    stderr_tail: NotRequired[list]


Event = Union[Ready, Started, Handoff, Resumed, Step, Eval, Finished, Failed]  # noqa: UP007 - get_args needs a Union
KINDS: dict[str, Any] = {typing.get_type_hints(k)["event"].__args__[0]: k for k in typing.get_args(Event)}
EVENT_TYPES = tuple(KINDS)
_DEFAULTS = {"attempt": 1, "run_id": "", "message": ""}  # what early logs and minimal failures leave out


def _fits(value: Any, hint: Any) -> bool:
    """Does a decoded JSON value fit a field's declared type? (bool is not a number here.)"""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if typing.is_typeddict(hint):
        return isinstance(value, dict) and _conforms(value, hint)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


@functools.cache
def _fields(kind: Any) -> tuple[frozenset[str], dict[str, Any]]:
    return kind.__required_keys__, typing.get_type_hints(kind)


def _conforms(obj: dict, kind: Any) -> bool:
    required, hints = _fields(kind)
    return all(key in obj for key in required) and \
        all(_fits(obj[key], hint) for key, hint in hints.items() if key in obj)


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


def parse_event(line: str | bytes) -> Event | None:
    """The event on one line, or None when the line is not a (supported, well-formed) event."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("event") not in KINDS:
        return None
    if not isinstance(obj.get("v"), int) or obj["v"] > SCHEMA_VERSION:
        return None
    kind = KINDS[obj["event"]]
    for key, value in _DEFAULTS.items():
        if key in kind.__required_keys__:
            obj.setdefault(key, value)
    if not _conforms(obj, kind) or not math.isfinite(obj["t"]):
        return None  # a NaN time (json reads NaN; the worker never writes one) would poison ETAs and stall limits
    return typing.cast(Event, obj)


def read_events(path: str | Path) -> list[Event]:
    """Every well-formed event in an event log; anything else is skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    with p.open("rb") as fh:
        return [e for e in (parse_event(line) for line in fh) if e is not None]
