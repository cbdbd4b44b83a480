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
* **As AllenNLP's BucketIterator** (``batching = "allennlp_bucket"``, the second study): one step
  per bucket batch (train/bucket.py); an epoch is then one pass over the data, which may hold a
  few more batches than the ``ceil(n / batch)`` jiant counts its epochs in (``passes`` says how
  many passes reach the run's steps).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.tasks import Example, Task
from stilts_tui.tasks.jiant_inputs import epoch_examples
from stilts_tui.train.bucket import batches_per_pass, bucket_pass
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


def epoch_rows(cfg: RunConfig, task: Task, rows: int, examples: Sequence[Example]) -> int:
    """The rows an epoch is counted in: the training rows, or with ``inputs = "jiant"`` the
    examples jiant counted (ReCoRD: per passage, tasks/jiant_inputs.py); a train_size subset is
    its rows."""
    if cfg.inputs != "jiant" or cfg.train_size:
        return rows
    return epoch_examples(task, examples)


def warmup_steps(cfg: RunConfig, total_steps: int) -> int:
    """``int(warmup_ratio * t_total)``: floored, as run.py l. 79 computes it."""
    return int(cfg.warmup_ratio * total_steps)


def passes(n: int, cfg: RunConfig, limit: int) -> int:
    """Passes over the data the loop plans: the epochs, or as many as ``limit`` steps take (a run
    that trains past its epoch limit, or whose passes hold more batches than its epochs count)."""
    if cfg.batching != "allennlp_bucket" and cfg.stop_at == "epoch_limit":
        return cfg.epochs
    per_pass = batches_per_pass(n, cfg.batch_size) if cfg.batching == "allennlp_bucket" else steps_per_epoch(n, cfg)
    return max(1, math.ceil(limit / max(per_pass, 1)))


def _micro_groups(indices: list[int], micro: int, lengths: list[int] | None, waste: float | None) -> Step:
    if lengths is not None:
        groups = length_groups(indices, lengths, micro, waste)
    else:
        groups = [indices[s : s + micro] for s in range(0, len(indices), micro)]
    return Step(groups, [len(g) / len(indices) for g in groups])


def bucket_plan(cfg: RunConfig, generator: torch.Generator, keys: Sequence[Sequence[int]],
                lengths: list[int] | None, waste: float | None) -> list[Step]:
    """One pass of AllenNLP's bucket batches, a step each; the pass's random draws are seeded from
    ``generator`` so that a resumed run replays them."""
    rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
    micro = cfg.micro_batch()[0]
    return [_micro_groups(batch, micro, lengths, waste) for batch in bucket_pass(keys, cfg.batch_size, rng)]


def epoch_plan(n: int, cfg: RunConfig, generator: torch.Generator, lengths: list[int] | None = None,
               waste: float | None = 0.25, keys: Sequence[Sequence[int]] | None = None) -> tuple[list[Step], Step | None]:
    """(steps, leftover) of one epoch; draws the epoch's permutation (or bucket draws: ``keys``,
    with ``batching = "allennlp_bucket"``) from ``generator``."""
    if cfg.batching == "allennlp_bucket":
        if keys is None:
            raise ValueError("allennlp_bucket batching needs each example's sorting keys")
        return bucket_plan(cfg, generator, keys, lengths, waste), None
    order = torch.randperm(n, generator=generator).tolist()
    micro, accumulation = cfg.micro_batch()
    if cfg.device_batch:
        batches = [order[s : s + micro] for s in range(0, n, micro)]
        k = len(batches) // accumulation
        w = 1.0 / accumulation
        steps = [Step(batches[i * accumulation : (i + 1) * accumulation], [w] * accumulation) for i in range(k)]
        rest = batches[k * accumulation :]
        return steps, (Step(rest, [w] * len(rest)) if rest else None)
    steps = [_micro_groups(order[start : start + cfg.batch_size], micro, lengths, waste)
             for start in range(0, n, cfg.batch_size)]
    return steps, None
