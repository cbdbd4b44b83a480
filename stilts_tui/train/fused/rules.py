"""Which runs may train fused, and why a run may not. Pure Python (no torch): the runner forms its
groups with the same rules the worker checks (runner/fusing.py)."""

from __future__ import annotations

from stilts_tui.domain.run_config import RunConfig

# What every trial of a group must share: the one model the group's forward runs (its weights
# are each trial's own), the data every trial draws its own order from, and the device batch the
# stacked micro-batches have. What may differ: lr, warmup, the schedule, the seed, gradient
# clipping, the optimizer and its settings, the effective batch (its own accumulation), validation.
SHARED = ("kind", "model", "task", "init_from", "init_checkpoint", "data_dir", "task_files", "max_length", "epochs",
          "train_size", "data_seed", "precision", "sdpa", "head_style", "transfer", "dropout", "cache_dir", "threads",
          "group_by_length", "inputs")

# Heads whose loss the fused forward computes exactly as transformers' model does (cross-entropy
# over classes or choices). Others run unfused.
FUSED_HEADS = ("classification", "multiple_choice")


def fuse_width(cfg: RunConfig) -> int | None:
    """The most trials the run may train with (itself included); None: as many as fit ("auto")."""
    if cfg.fuse == "auto":
        return None
    return int(cfg.fuse)


def fuse_key(cfg: RunConfig) -> tuple:
    """Runs with equal keys may fuse."""
    return (*(repr(getattr(cfg, k)) for k in SHARED), cfg.micro_batch()[0])


def not_fusable(cfg: RunConfig, head: str | None = None, num_labels: int | None = None) -> str | None:
    """Why this run trains alone even with `fuse` set (None: it may fuse). `head` and
    `num_labels` are the task's, where the caller knows them."""
    if fuse_width(cfg) == 1:
        return "fuse is off"
    if cfg.kind == "zero_shot":
        return "a zero-shot run only evaluates"
    if cfg.precision == "fp16":
        return "fp16 loss scaling is not fused yet"
    if cfg.transfer != "finetune" or cfg.head_style != "transformers":
        return "jiant's heads are not fused yet"
    if head is not None and head not in FUSED_HEADS:
        return f"the {head} head is not fused yet"
    if head == "classification" and num_labels is not None and num_labels < 2:
        return "a regression head is not fused yet"
    return None
