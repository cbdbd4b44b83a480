"""A run as the readers see it: one typed, read-only `Run` built from a results-file record. The
store keeps plain JSON records (`RunRecord`, which the store checks on every read, so the types
here hold); analysis and the screens read these instead of the record's dict, so a field's
default ("no score yet", "no reason") is decided here once and not in every `.get` chain.

`value(key)` is the one generic lookup, for the fields a user names (`--filter`, `--by`): a
top-level record field first, then the run's config."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from stilts_tui.domain.records import RunStatus

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Baselines:
    """The levels the worker computed from the task's dev labels (train/predict.py): random
    guessing and always-the-majority-label on the metric's scale, and the degenerate threshold."""

    random: float | None = None
    majority: float | None = None
    degenerate_threshold: float | None = None

    @classmethod
    def of(cls, metrics: Mapping[str, Any]) -> Baselines:
        raw = metrics.get("baselines")
        if not isinstance(raw, Mapping):
            return _NO_BASELINES
        return cls(_number(raw.get("random")), _number(raw.get("majority")), _number(raw.get("degenerate_threshold")))


_NO_BASELINES = Baselines()


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """One failed attempt of a run, as the runner recorded it."""

    attempt: int | None = None
    reason: str = ""
    message: str = ""
    slot: str = ""
    t: float | None = None


class Run:
    """One run of the results file (see `RunRecord` for what each field holds): a read-only, typed
    view over the checked record, not a copy, so typing 100,000 runs costs next to nothing and a
    field nobody reads is never converted. Absent fields read as their "not yet" value: no score
    (None), no reason (""), no attempts (0)."""

    __slots__ = ("record",)

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Run:
        """The typed view of one checked record (record_check.py ran on it when the store read it;
        a record built by hand in a test reads the same way)."""
        return cls(record)

    def __repr__(self) -> str:
        return f"Run({self.run_id!r}, {self.status.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.record == self.record

    __hash__ = None  # type: ignore[assignment]   # a view over a mutable record

    # The fields every record has had since the first version (record_check.REQUIRED).
    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])

    @property
    def kind(self) -> str:
        return str(self.record["kind"])

    @property
    def intermediate(self) -> str:
        return str(self.record["intermediate"])

    @property
    def target(self) -> str:
        return str(self.record["target"])

    @property
    def status(self) -> RunStatus:
        return RunStatus(self.record["status"])

    # The rest, as the run goes on.
    @property
    def model(self) -> str:
        return _text(self.record.get("model"))

    @property
    def lr(self) -> float | None:
        return _number(self.record.get("lr"))

    @property
    def batch_size(self) -> int | None:
        return _whole(self.record.get("batch_size"))

    @property
    def warmup_ratio(self) -> float | None:
        return _number(self.record.get("warmup_ratio"))

    @property
    def seed(self) -> int | None:
        return _whole(self.record.get("seed"))

    @property
    def epochs(self) -> int | None:
        return _whole(self.record.get("epochs"))

    @property
    def max_length(self) -> int | None:
        return _whole(self.record.get("max_length"))

    @property
    def train_size(self) -> int | None:
        return _whole(self.record.get("train_size"))

    @property
    def score(self) -> float | None:
        return _number(self.record.get("score"))

    @property
    def metric(self) -> str:
        return _text(self.record.get("metric"))

    @property
    def reason(self) -> str:
        return _text(self.record.get("reason"))

    @property
    def message(self) -> str:
        return _text(self.record.get("message"))

    @property
    def attempts(self) -> int:
        return _whole(self.record.get("attempts")) or 0

    @property
    def started_at(self) -> float | None:
        return _number(self.record.get("started_at"))

    @property
    def finished_at(self) -> float | None:
        return _number(self.record.get("finished_at"))

    @property
    def wall_s(self) -> float | None:
        return _number(self.record.get("wall_s"))

    @property
    def slot(self) -> str:
        return _text(self.record.get("slot"))

    @property
    def device(self) -> str:
        return _text(self.record.get("device"))

    @property
    def executor(self) -> str:
        return _text(self.record.get("executor"))

    @property
    def slurm_job(self) -> str:
        return _text(self.record.get("slurm_job"))

    @property
    def queue_state(self) -> str:
        return _text(self.record.get("queue_state"))

    @property
    def requeues(self) -> int:
        return _whole(self.record.get("requeues")) or 0

    @property
    def events_path(self) -> str:
        return _text(self.record.get("events_path"))

    @property
    def output_dir(self) -> str:
        return _text(self.record.get("output_dir"))

    @property
    def fused_with(self) -> tuple[str, ...]:
        """The other runs it trained with as one fused model (none: it trained alone)."""
        group = self.record.get("fused_group") or ()
        return tuple(str(x) for x in group if x != self.record["run_id"])

    @property
    def fused_note(self) -> str:
        return _text(self.record.get("fused_note"))

    @property
    def config(self) -> Mapping[str, Any]:
        return self.record.get("config") or _EMPTY

    @property
    def metrics(self) -> Mapping[str, Any]:
        return self.record.get("metrics") or _EMPTY

    @property
    def baselines(self) -> Baselines:
        return Baselines.of(self.metrics)

    @property
    def failures(self) -> tuple[FailedAttempt, ...]:
        return tuple(_failed(f) for f in self.record.get("failures") or ())

    @property
    def stderr_tail(self) -> tuple[str, ...]:
        return tuple(str(x) for x in self.record.get("stderr_tail") or ())

    # What readers ask of a run, decided once.
    @property
    def finished(self) -> bool:
        """Finished with a score: the runs every statistic counts."""
        return self.record["status"] == RunStatus.FINISHED and self.record.get("score") is not None

    @property
    def pending(self) -> bool:
        return self.record["status"] in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def failed(self) -> bool:
        """Failed, or blocked because its intermediate failed: counted as a failure of its pair."""
        return self.record["status"] in (RunStatus.FAILED, RunStatus.BLOCKED)

    @property
    def metric_name(self) -> str:
        return self.metric or "accuracy"

    @property
    def degenerate(self) -> bool:
        """Final dev score at or below the task's degenerate threshold (README.md, "The recipe and
        the hand-off"), which the worker computed from the dev labels."""
        t = self.baselines.degenerate_threshold
        score = self.score
        return t is not None and score is not None and score <= t + 1e-12

    @property
    def guess(self) -> float | None:
        """Random guessing on the run's metric scale: 1/k accuracy, 0 MCC."""
        return 0.0 if self.metric == "mcc" else self.baselines.random

    @property
    def restart(self) -> Any:
        return self.config.get("restart")

    @property
    def settings(self) -> Mapping[str, Any]:
        """What the run was given: its config, or (a record of the first version) its top level."""
        return self.config or self.record

    def value(self, key: str) -> Any:
        """A field a user names: the record's own field, else its config's (None when neither has it)."""
        if key in self.record:
            return self.record[key]
        return self.config.get(key)

    def field_names(self) -> set[str]:
        """Every field a user may name of this run (`value` reads them)."""
        return (set(self.record) | set(self.config)) - {"config"}


def runs_of(items: Iterable[Run | Mapping[str, Any]]) -> list[Run]:
    """Typed runs from store records (runs already typed pass through): the one place readers
    turn records into runs."""
    return [x if type(x) is Run else Run(x) for x in items]  # type: ignore[arg-type]


def _number(v: Any) -> float | None:
    return None if v is None or isinstance(v, bool) else float(v)


def _whole(v: Any) -> int | None:
    return None if v is None or isinstance(v, bool) else int(v)


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _failed(f: Any) -> FailedAttempt:
    if not isinstance(f, Mapping):
        return FailedAttempt(message=str(f))
    return FailedAttempt(_whole(f.get("attempt")), _text(f.get("reason")), _text(f.get("message")),
                         _text(f.get("slot")), _number(f.get("t")))
