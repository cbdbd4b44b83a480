"""How long runs take: the relative cost that orders the queue (longest first), and GPU-hours
from the throughput measured on runs already finished."""

from __future__ import annotations

from collections import defaultdict

from stilts_tui.tasks import get_task
from stilts_tui.train.config import RunConfig

UNKNOWN_ROWS = 2000


def train_rows(cfg: RunConfig) -> int:
    try:
        task = get_task(cfg.task)
    except Exception:  # noqa: BLE001 - a user task not registered in this process
        return cfg.train_size or UNKNOWN_ROWS
    rows = task.train_rows or UNKNOWN_ROWS
    return min(rows, cfg.train_size) if cfg.train_size else rows


def work_units(cfg: RunConfig) -> float:
    """Sequences processed: epochs × train rows × choices (dev evaluation counted as one pass).
    A run that validates every ``val_interval`` steps and stops after ``max_vals`` validations
    trains at most that many steps (early stopping can end it sooner: this is the most it can
    take)."""
    k = _choices(cfg)
    epochs = 0 if cfg.kind == "zero_shot" else cfg.epochs
    trained = epochs * train_rows(cfg)
    if cfg.val_interval and cfg.max_vals:
        trained = min(trained, cfg.val_interval * cfg.max_vals * cfg.batch_size)
    return float(k * (trained + max(1, train_rows(cfg) // 10)))


def done_units(cfg: RunConfig, metrics: dict) -> float:
    """The work a finished run did: its trained sequences when it recorded them (a run stopped
    early did less than its plan), else its planned work."""
    seqs = metrics.get("train_sequences")
    if not isinstance(seqs, (int, float)) or seqs <= 0:
        return work_units(cfg)
    return float(seqs + _choices(cfg) * max(1, train_rows(cfg) // 10))


def _choices(cfg: RunConfig) -> int:
    try:
        return get_task(cfg.task).num_choices or 1
    except Exception:  # noqa: BLE001 - a user task not registered in this process
        return 1


def cost(cfg: RunConfig) -> float:
    """Relative expected duration: sequences × tokens per sequence."""
    return work_units(cfg) * cfg.max_length


def measured_rates(records: list[dict]) -> dict[str, float]:
    """Seconds per work unit for each model, from finished runs with a wall time."""
    units: dict[str, float] = defaultdict(float)
    secs: dict[str, float] = defaultdict(float)
    for r in records:
        if r.get("status") != "finished" or not r.get("wall_s") or not r.get("config"):
            continue
        try:
            cfg = RunConfig.from_dict(r["config"])
        except (TypeError, ValueError):
            continue
        units[cfg.model] += done_units(cfg, r.get("metrics") or {}) * cfg.max_length
        secs[cfg.model] += float(r["wall_s"])
    return {m: secs[m] / units[m] for m in units if units[m] > 0}


def estimate_seconds(runs: list[RunConfig], records: list[dict]) -> tuple[float | None, int]:
    """(device-seconds for these runs, how many finished runs the rate comes from); None when
    no run of the same model has finished yet."""
    rates = measured_rates(records)
    basis = sum(1 for r in records if r.get("status") == "finished" and r.get("wall_s"))
    total = 0.0
    for cfg in runs:
        rate = rates.get(cfg.model)
        if rate is None:
            return None, 0
        total += rate * cost(cfg)
    return total, basis
