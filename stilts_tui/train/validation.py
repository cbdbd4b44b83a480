"""The second study's validation recipe (jiant taskmaster_v1 trainer.py): validate every
``val_interval`` steps on at most the first ``val_data_limit`` dev examples, keep the best weights,
stop after ``patience`` validations without improvement (``patience + 1`` with ``patience_count =
"jiant"``, as jiant counts them); the best weights are then scored on the whole dev set (the loop
does that). A tie is no improvement: the best weights are the first to reach the best score."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.tasks import Example, Task
from stilts_tui.train.events import EventWriter

Evaluate = Callable[[Any, Sequence[Example]], dict]


def schedule_steps(cfg: RunConfig, per_epoch: int) -> int:
    """Steps the learning-rate schedule spans. With periodic validation it ends at the validation
    after the epoch limit, ``min(ceil(batches x epochs / val_interval), max_vals) x val_interval``
    (trainer.py l. 351-360); otherwise the epochs' steps."""
    if not cfg.val_interval:
        return per_epoch * cfg.epochs
    vals = math.ceil(per_epoch * cfg.epochs / cfg.val_interval)
    if cfg.max_vals:
        vals = min(vals, cfg.max_vals)
    return vals * cfg.val_interval


def trained_steps(cfg: RunConfig, per_epoch: int) -> int:
    """The most steps a run trains. ``stop_at = "next_validation"``: on past the epoch limit to
    the validation after it, which is where the schedule ends. jiant checks the epoch limit only at
    a validation (``_check_stop`` after ``_validate``, trainer.py l. 686-689), stopping at the first
    one with ``total_batches_trained / n_tr_batches >= max_epochs`` (l. 1012-1024), or at
    ``max_vals`` (l. 1037-1040): that is ``schedule_steps``. Otherwise the epochs' steps."""
    if cfg.val_interval and cfg.stop_at == "next_validation":
        return schedule_steps(cfg, per_epoch)
    return per_epoch * cfg.epochs


def patience_limit(cfg: RunConfig) -> int | None:
    """Validations without improvement a run stops after. jiant's ``_check_history`` (trainer.py
    l. 253-274) sets ``patience = self._patience + 1`` and then stops when the first best index is
    ``<= len(history) - (patience + 1)``: 21 validations after the best for ``patience = 20``."""
    if cfg.patience is None:
        return None
    return cfg.patience + 1 if cfg.patience_count == "jiant" else cfg.patience


def validation_subset(task: Task, dataset, examples: Sequence[Example], limit: int | None):
    """The first ``limit`` dev examples and their rows (a span head's example spans several rows)."""
    if not limit or limit >= len(examples):
        return dataset, examples
    if "row_example" in dataset.column_names:
        rows = [i for i, e in enumerate(dataset["row_example"]) if e < limit]
    else:
        rows = list(range(limit))
    return dataset.select(rows), examples[:limit]


class Validator:
    def __init__(self, cfg: RunConfig, task: Task, dataset, examples: Sequence[Example], events: EventWriter) -> None:
        self.cfg = cfg
        self.dataset, self.examples = validation_subset(task, dataset, examples, cfg.val_data_limit)
        self.events = events
        self.best: float | None = None
        self.best_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.since_best = 0
        self.count = 0
        self.last_step = -1

    def due(self, step: int) -> bool:
        interval = self.cfg.val_interval
        return interval is not None and step % interval == 0

    def validate(self, model, evaluate: Evaluate, step: int, epoch: int) -> bool:
        """Score the current weights; True when training should stop (patience spent or max_vals reached)."""
        result = evaluate(self.dataset, self.examples)
        self.count += 1
        self.last_step = step
        improved = self.best is None or result["score"] > self.best
        if improved:
            self.best, self.best_step, self.since_best = result["score"], step, 0
            # On the host: the device keeps only the weights being trained.
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.since_best += 1
        self.events.emit("eval", epoch=epoch, step=step, validation=True, best=improved, **result)
        limit = patience_limit(self.cfg)
        patience_spent = limit is not None and self.since_best >= limit
        return patience_spent or bool(self.cfg.max_vals and self.count >= self.cfg.max_vals)

    def restore_best(self, model) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def summary(self) -> dict:
        return {"best_step": self.best_step, "best_validation_score": self.best, "validations": self.count}
