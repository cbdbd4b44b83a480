"""The run settings as the last release before their declarations (domain/run_config.py) spelled
them out by hand, each table in its own file: what the declarations must still come to for the
settings that existed then, and what the ids of the runs recorded then were computed from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

# RunConfig's fields then. A setting declared since may join any table; one of these may not move.
RELEASED_FIELDS = {"kind", "model", "task", "intermediate", "init_from", "init_checkpoint", "data_dir", "task_files", "lr",
                   "batch_size", "warmup_ratio", "seed", "epochs", "max_length", "train_size", "data_seed", "weight_decay",
                   "adam_eps", "max_grad_norm", "grad_clip", "device_batch", "optimizer", "eval_every_epoch", "head_style",
                   "transfer", "val_interval", "val_data_limit", "patience", "max_vals", "dropout", "precision", "sdpa",
                   "fused_adamw", "max_device_batch", "group_by_length", "threads", "save_checkpoint", "output_dir",
                   "events_path", "cache_dir", "log_interval_s", "resume_every_s", "spec_name", "probe", "restart", "run_id"}
RELEASED_GRID = {"lr", "batch_size", "warmup_ratio", "seed", "epochs", "max_length", "train_size", "weight_decay",
                 "adam_eps", "max_grad_norm", "dropout"}
RELEASED_RECIPE = {"val_interval", "val_data_limit", "patience", "max_vals", "head_style", "transfer"}
RELEASED_TASK = {"epochs", "max_length", "train_size", "batch_size", "data_dir", "device_batch", "grad_clip", "dropout",
                 *RELEASED_RECIPE}
RELEASED_TRAIN = {"max_device_batch", "group_by_length", "precision", "optimizer", "sdpa", "fused_adamw", "eval_every_epoch",
                  "threads", "save_target_checkpoints", "log_interval_s", "resume_every_s", *RELEASED_RECIPE}
RELEASED_COMMON = {"max_device_batch", "group_by_length", "precision", "optimizer", "sdpa", "fused_adamw", "eval_every_epoch",
                   "threads", "log_interval_s", "resume_every_s"}
RELEASED_NOT_IDENTITY = {"run_id", "output_dir", "events_path", "cache_dir", "threads", "max_device_batch", "group_by_length",
                         "log_interval_s", "save_checkpoint", "task_files", "spec_name", "resume_every_s", "probe", "restart",
                         "init_checkpoint"}
RELEASED_ADDED_LATER = {"grad_clip": "per_step", "device_batch": None, "optimizer": "torch_adamw", "head_style": "transformers",
                        "dropout": None, "transfer": "finetune", "val_interval": None, "val_data_limit": None, "patience": None,
                        "max_vals": None}
RELEASED_NOT_GRID = {"intermediate", "init_from", "init_checkpoint", "kind", "spec_name", "run_id", "output_dir", "events_path",
                     "cache_dir", "threads", "max_device_batch", "group_by_length", "log_interval_s", "save_checkpoint",
                     "task_files", "data_dir", "resume_every_s", "probe", "restart"}
# `stilts plan --runs --format json`'s keys, in the order earlier releases wrote them.
RELEASED_PLAN_KEYS = ["run_id", "kind", "task", "intermediate", "lr", "batch_size", "device_batch", "accumulation", "warmup_ratio",
                      "warmup_steps", "total_steps", "epochs", "max_length", "precision", "optimizer", "grad_clip", "train_size",
                      "seed", "dropout", "head_style", "val_interval", "max_vals", "patience", "done"]


def released_id(cfg) -> str:
    """A run's id as every earlier release computed it: dataclasses.asdict of the config, less what
    was not its identity, less the settings added later at their default. A setting declared since
    did not exist for those releases; at its default (the only value their runs had) it is left out."""
    ident = {k: v for k, v in asdict(cfg).items() if k in RELEASED_FIELDS and k not in RELEASED_NOT_IDENTITY
             and not (k in RELEASED_ADDED_LATER and v == RELEASED_ADDED_LATER[k])}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]
