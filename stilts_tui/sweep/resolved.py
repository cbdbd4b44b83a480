"""Each run of a spec with its fully resolved settings: what `stilts plan SPEC --runs` shows before
anything is launched. The columns are the settings that declare one (domain/run_config.py) and
those below, which are not settings but what the settings come to."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stilts_tui.domain.run_config import DECLARED, RunConfig
from stilts_tui.domain.setting import Column
from stilts_tui.errors import StiltsError
from stilts_tui.tasks import get_task, load_examples
from stilts_tui.tasks.jiant_inputs import epoch_examples
from stilts_tui.train.steps import steps_per_epoch, warmup_steps
from stilts_tui.train.validation import schedule_steps, trained_steps


@dataclass(frozen=True)
class PlanColumn:
    key: str        # the row's field (a setting's name, or one of _DERIVED's)
    title: str
    at: int


@functools.lru_cache(maxsize=64)
def _counted_rows(task_name: str, data_dir: str) -> int | None:
    """The examples jiant counted an epoch in, read off the local training file (ReCoRD: per
    passage, tasks/jiant_inputs.py); None when the file is not there."""
    from pathlib import Path

    if not Path(data_dir).is_dir():
        return None
    try:
        task = get_task(task_name)
        return epoch_examples(task, load_examples(task, "train", data_dir))
    except (StiltsError, OSError):
        return None


def _train_rows(cfg: RunConfig) -> int | None:
    """The rows an epoch of the run counts. With ``inputs = "jiant"`` a candidates task trains one
    row per candidate (no windows), and ReCoRD counts its epoch per passage: read off the data
    when it is here; otherwise the task's official size."""
    try:
        task = get_task(cfg.task)
    except StiltsError:
        return None
    if cfg.inputs == "jiant" and task.metric == "record" and cfg.data_dir:
        counted = _counted_rows(task.name, cfg.data_dir)
        if counted:
            return counted
    return task.train_rows


def _per_epoch(cfg: RunConfig) -> int | None:
    sizes = [x for x in (_train_rows(cfg), cfg.train_size) if x]  # a train_size above the set's size is the set
    return steps_per_epoch(min(sizes), cfg) if sizes else None


def _total_steps(cfg: RunConfig) -> int | None:
    if cfg.kind == "zero_shot":
        return 0
    per_epoch = _per_epoch(cfg)
    return None if per_epoch is None else schedule_steps(cfg, per_epoch)


def _trained_steps(cfg: RunConfig) -> int | None:
    """The most steps the run trains (patience may end it sooner): the epochs', or on to the
    validation after the epoch limit (stop_at = "next_validation")."""
    if cfg.kind == "zero_shot":
        return 0
    per_epoch = _per_epoch(cfg)
    return None if per_epoch is None else trained_steps(cfg, per_epoch)


@dataclass(frozen=True)
class _Facts:
    """What a run's settings come to, computed once per run."""

    cfg: RunConfig
    micro: int
    accumulation: int
    total: int | None
    trained: int | None
    done: bool


def _facts(cfg: RunConfig, finished: set[str]) -> _Facts:
    micro, accumulation = cfg.micro_batch()
    return _Facts(cfg, micro, accumulation, _total_steps(cfg), _trained_steps(cfg), cfg.run_id in finished)


# Columns that are no setting: the device batch and accumulation the batch is split into, the
# schedule's warm-up and total steps and the most steps the run trains (None where the train size
# is unknown), whether it is done.
_DERIVED: dict[str, tuple[Column, Callable[[_Facts], Any]]] = {
    "device_batch": (Column("dev", 60), lambda f: f.micro),
    "accumulation": (Column("acc", 70), lambda f: f.accumulation),
    "warmup_steps": (Column("wu steps", 90), lambda f: None if f.total is None else warmup_steps(f.cfg, f.total)),
    "total_steps": (Column("steps", 100), lambda f: f.total),
    "train_steps": (Column("trains", 105), lambda f: f.trained),
    "done": (Column("done", 10_000), lambda f: f.done),
}
COLUMNS = tuple(sorted([PlanColumn(name, d.plan.title, d.plan.at) for name, d in DECLARED.items() if d.plan]
                       + [PlanColumn(name, c.title, c.at) for name, (c, _) in _DERIVED.items()], key=lambda c: c.at))


def resolve(runs: list[RunConfig], finished: set[str]) -> list[dict[str, Any]]:
    """One row per run: each of COLUMNS' keys, in their order, with the run's value."""
    out = []
    for r in runs:
        facts = _facts(r, finished)
        out.append({c.key: _DERIVED[c.key][1](facts) if c.key in _DERIVED else getattr(r, c.key) for c in COLUMNS})
    return out
