"""One run's fully resolved configuration, and its identity."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from stilts_tui.settings import ranged

RunKind = Literal["intermediate", "target", "zero_shot"]
Precision = Literal["auto", "fp32", "tf32", "bf16", "fp16"]
GradClip = Literal["per_step", "per_micro_batch"]
OptimizerName = Literal["torch_adamw", "hf_adamw", "bert_adam", "amsgrad"]
HeadStyle = Literal["transformers", "jiant"]
Transfer = Literal["finetune", "frozen_mix"]

# Fields that do not change what a run computes: paths, logging, and how the work is laid out
# on the machine (gradient accumulation reaches the same effective batch).
_NOT_IDENTITY = {"run_id", "output_dir", "events_path", "cache_dir", "threads",
                 "max_device_batch", "group_by_length", "log_interval_s", "save_checkpoint", "task_files", "spec_name",
                "resume_every_s", "probe", "restart"}

# Fields added after results files existed: at their default they are left out of the identity, so
# the runs an earlier version recorded keep their ids (and are not trained again).
_ADDED_LATER = {"grad_clip": "per_step", "device_batch": None, "optimizer": "torch_adamw", "head_style": "transformers",
                "dropout": None, "transfer": "finetune", "val_interval": None, "val_data_limit": None, "patience": None, "max_vals": None}


@dataclass
class RunConfig:
    kind: RunKind
    model: str
    task: str
    intermediate: str = "none"          # the label analysis groups by ("none", "hellaswag", "hellaswag_p@2000")
    init_from: str | None = None        # run id of the intermediate run whose checkpoint starts this run
    init_checkpoint: str | None = None  # that checkpoint's folder
    data_dir: str | None = None
    task_files: list[str] = field(default_factory=list)
    lr: float = ranged(1e-5, gt=0)
    batch_size: int = ranged(16, ge=1)
    warmup_ratio: float = ranged(0.0, ge=0, lt=1)
    seed: int = ranged(42, ge=0, lt=2**32)  # transformers.set_seed seeds numpy: 32 bits
    epochs: int = ranged(3, ge=1)           # zero-shot runs are made with 0 (they only evaluate)
    max_length: int = ranged(128, ge=8)
    train_size: int | None = ranged(None, ge=1)
    data_seed: int = ranged(42, ge=0)                # picks the train_size subset; fixed so all grid points share it
    weight_decay: float = ranged(0.0, ge=0)
    adam_eps: float = ranged(1e-8, gt=0)
    max_grad_norm: float = ranged(1.0, gt=0)
    # "per_micro_batch": the running gradient is clipped after every backward, inside the
    # accumulation loop, as Chang & Lu's run.py does (its SocialIQA runs accumulate; see docs/paper.md).
    grad_clip: GradClip = "per_step"
    # A device batch the study fixes (SocialIQA: 4 x accumulation 2/4/8 in train_iqa.sh). With it the
    # epoch is cut into device batches as a DataLoader would, a step every batch_size / device_batch
    # of them (see train/steps.py); None: the device batch is only a memory setting.
    device_batch: int | None = ranged(None, ge=1)
    optimizer: OptimizerName = "torch_adamw"   # "hf_adamw": transformers 4.3.2's AdamW; "bert_adam": jiant's (train/optim.py)
    eval_every_epoch: bool = False
    # "jiant": an encoder with jiant taskmaster_v1's heads (train/heads.py) for every task, as the
    # second study ran; the span heads always use them.
    head_style: HeadStyle = "transformers"
    # "frozen_mix": the encoder stays fixed and a learned scalar mix of its layers feeds jiant's heads
    # (the second study's "mixing" probes, train/heads.py); "finetune": every weight trains.
    transfer: Transfer = "finetune"
    # The second study's recipe (train/validation.py): validate every val_interval steps on the first
    # val_data_limit dev examples, stop after `patience` validations without improvement (or max_vals),
    # score the best weights on the whole dev set. None: the final weights, as the first study.
    val_interval: int | None = ranged(None, ge=1)
    val_data_limit: int | None = ranged(None, ge=1)
    patience: int | None = ranged(None, ge=1)
    max_vals: int | None = ranged(None, ge=1)
    dropout: float | None = ranged(None, ge=0, lt=1)  # the sentence encoder's output dropout (jiant heads); None: 0.1
    # "tf32": fp32 weights, gradients and optimizer with TF32 matrix products, what PyTorch 1.7.1 ran
    # on the reference's RTX 3090; "bf16" / "fp16": autocast; "auto": bf16 where supported.
    precision: Precision = "auto"
    sdpa: bool = True
    fused_adamw: bool = True
    max_device_batch: int = ranged(32, ge=1)
    group_by_length: bool = True        # micro-batches of similar length inside each step
    threads: int | None = ranged(None, ge=1)
    save_checkpoint: bool = False
    output_dir: str = ""
    events_path: str = ""
    cache_dir: str = ""
    log_interval_s: float = ranged(0.5, gt=0)
    resume_every_s: float = ranged(0.0, ge=0)        # save a resumable state this often (0: never; see train/resume.py)
    spec_name: str = ""
    # Labels for analysis, not identity: a spec's `probes` (rows below the targets in a transfer
    # matrix) and the [restarts] index (the unit the matrix and the correlations average over).
    probe: bool = False
    restart: int | None = None
    run_id: str = ""

    def micro_batch(self) -> tuple[int, int]:
        """(device batch, accumulation steps): the largest divisor of the batch that fits
        max_device_batch, so every optimizer step sees exactly `batch_size` examples."""
        if self.device_batch:
            return self.device_batch, self.batch_size // self.device_batch
        micro = min(self.batch_size, max(1, self.max_device_batch))
        while self.batch_size % micro:
            micro -= 1
        return micro, self.batch_size // micro

    def can_shrink_device_batch(self) -> bool:
        """Whether an out-of-memory retry may use a smaller device batch without changing results."""
        return self.device_batch is None and self.micro_batch()[0] > 1

    def identity(self) -> dict:
        # Read off the instance, not through asdict: its deep copy of every value was three
        # quarters of the time of planning a large grid, and the JSON below (so the id) is the same.
        out = {}
        for k in _IDENTITY_FIELDS:
            v = getattr(self, k)
            if not (k in _ADDED_LATER and v == _ADDED_LATER[k]):
                out[k] = v
        return out

    def compute_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown run config key(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# The fields a run's id is computed from, in declaration order.
_IDENTITY_FIELDS = tuple(f.name for f in fields(RunConfig) if f.name not in _NOT_IDENTITY and f.name != "init_checkpoint")
