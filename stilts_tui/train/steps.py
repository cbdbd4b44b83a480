"""How one epoch is cut into optimizer steps, and each step into micro-batches.

Two ways, chosen by the run's config:

* **By effective batch** (the default): each step is ``batch_size`` examples of the epoch's
  permutation; the device batch is only a memory setting, so the step's micro-batches (length
  groups on a CPU) are weighted by their share of the step and the gradient is the batch's mean.
* **By device batch** (``device_batch`` set, as Chang & Lu's SocialIQA runs): the permutation is cut
  into device batches as a ``DataLoader`` would, and a step is taken every ``accumulation`` of them,
  as ``run.py`` does (``(step + 1) % gradient_accumulation_steps == 0``, run.py l. 139). Each device
  batch's mean loss is divided by the accumulation (l. 132-133), the steps per epoch are
  ``len(loader) // accumulation`` (l. 67), and the last ``len(loader) % accumulation`` device
  batches of an epoch are ``leftover``: run.py zeroes gradients only after a step (l. 142), so
  their gradient joins the next epoch's first step, and after the last epoch it is never applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.train.data import length_groups


@dataclass(frozen=True)
class Step:
    groups: list[list[int]]   # the examples of each micro-batch
    weights: list[float]      # what each micro-batch's mean loss is multiplied by


def steps_per_epoch(n: int, cfg: RunConfig) -> int:
    if cfg.device_batch:
        micro, accumulation = cfg.micro_batch()
        return math.ceil(n / micro) // accumulation
    return math.ceil(n / cfg.batch_size)


def warmup_steps(cfg: RunConfig, total_steps: int) -> int:
    """``int(warmup_ratio * t_total)``: floored, as run.py l. 79 computes it."""
    return int(cfg.warmup_ratio * total_steps)


def epoch_plan(n: int, cfg: RunConfig, generator: torch.Generator, lengths: list[int] | None = None,
               waste: float | None = 0.25) -> tuple[list[Step], Step | None]:
    """(steps, leftover) of one epoch; draws the epoch's permutation from ``generator``."""
    order = torch.randperm(n, generator=generator).tolist()
    micro, accumulation = cfg.micro_batch()
    if cfg.device_batch:
        batches = [order[s : s + micro] for s in range(0, n, micro)]
        k = len(batches) // accumulation
        w = 1.0 / accumulation
        steps = [Step(batches[i * accumulation : (i + 1) * accumulation], [w] * accumulation) for i in range(k)]
        rest = batches[k * accumulation :]
        return steps, (Step(rest, [w] * len(rest)) if rest else None)
    steps = []
    for start in range(0, n, cfg.batch_size):
        indices = order[start : start + cfg.batch_size]
        if lengths is not None:
            groups = length_groups(indices, lengths, micro, waste)
        else:
            groups = [indices[s : s + micro] for s in range(0, len(indices), micro)]
        steps.append(Step(groups, [len(g) / len(indices) for g in groups]))
    return steps, None
