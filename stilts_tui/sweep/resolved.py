"""Each run of a spec with its fully resolved settings: what `stilts plan SPEC --runs` shows before
anything is launched. The columns are the settings that declare one (domain/run_config.py) and
those below, which are not settings but what the settings come to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stilts_tui.domain.run_config import DECLARED, RunConfig
from stilts_tui.domain.setting import Column
from stilts_tui.errors import StiltsError
from stilts_tui.tasks import get_task
from stilts_tui.train.steps import steps_per_epoch, warmup_steps
from stilts_tui.train.validation import schedule_steps


@dataclass(frozen=True)
class PlanColumn:
    key: str        # the row's field (a setting's name, or one of _DERIVED's)
    title: str
    at: int


def _total_steps(cfg: RunConfig) -> int | None:
    if cfg.kind == "zero_shot":
        return 0
    try:
        rows = get_task(cfg.task).train_rows
    except StiltsError:
        rows = None
    sizes = [x for x in (rows, cfg.train_size) if x]  # a train_size above the set's size is the set
    return schedule_steps(cfg, steps_per_epoch(min(sizes), cfg)) if sizes else None


@dataclass(frozen=True)
class _Facts:
    """What a run's settings come to, computed once per run."""

    cfg: RunConfig
    micro: int
    accumulation: int
    total: int | None
    done: bool


def _facts(cfg: RunConfig, finished: set[str]) -> _Facts:
    micro, accumulation = cfg.micro_batch()
    return _Facts(cfg, micro, accumulation, _total_steps(cfg), cfg.run_id in finished)


# Columns that are no setting: the device batch and accumulation the batch is split into, the
# schedule's warm-up and total steps (None where the train size is unknown), whether it is done.
_DERIVED: dict[str, tuple[Column, Callable[[_Facts], Any]]] = {
    "device_batch": (Column("dev", 60), lambda f: f.micro),
    "accumulation": (Column("acc", 70), lambda f: f.accumulation),
    "warmup_steps": (Column("wu steps", 90), lambda f: None if f.total is None else warmup_steps(f.cfg, f.total)),
    "total_steps": (Column("steps", 100), lambda f: f.total),
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
