"""The worker's event stream, as its readers (the runner, the store, the app) see it: one
versioned JSON object per line (train/events.py's EventWriter writes them).

    {"v": 1, "event": "started", "run_id": "...", "attempt": 1, "t": 1700000000.0, ...}

Events: started, handoff, resumed (continuing from a saved step), step, eval, finished, failed; a
warm worker also says `ready` once its imports are done. Every run event carries the attempt it
belongs to (a retried run appends to the same log). Each kind is a TypedDict below, and
`parse_event` is the one decoder: it checks a line against its kind's declared fields (with the
checker specs use, settings.py) and fills what older logs lack, so readers index fields instead of
guessing. Readers must survive anything: a torn last line, a library printing to stdout, garbage,
a field of the wrong type. `parse_event` returns None for those.

No `from __future__ import annotations` here: on Python 3.11 it hides `NotRequired` from the
TypedDicts, and every field would count as required."""

import json
import math
import typing
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, Union

from stilts_tui.settings import conforms

SCHEMA_VERSION = 1


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
_DEFAULTS = {"attempt": 1, "run_id": "", "message": ""}  # what early logs and minimal failures leave out


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
    if not conforms(obj, kind) or not math.isfinite(obj["t"]):
        return None  # a NaN time (json reads NaN; the worker never writes one) would poison ETAs and stall limits
    return typing.cast(Event, obj)


def read_events(path: str | Path) -> list[Event]:
    """Every well-formed event in an event log; anything else is skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    with p.open("rb") as fh:
        return [e for e in (parse_event(line) for line in fh) if e is not None]
