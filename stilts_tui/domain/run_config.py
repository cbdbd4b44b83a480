"""One run's fully resolved configuration, and its identity. Each field is a setting declared once
(setting.py): what every table of keys elsewhere (which spec table may set what, what the id is
computed from, what analysis compares runs on, the plan's columns) is derived from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from stilts_tui.domain.setting import GRID, Column, Table, declaration, setting

RunKind = Literal["intermediate", "target", "zero_shot"]
Precision = Literal["auto", "fp32", "tf32", "bf16", "fp16"]
GradClip = Literal["per_step", "per_micro_batch"]
OptimizerName = Literal["torch_adamw", "hf_adamw", "bert_adam", "amsgrad"]
HeadStyle = Literal["transformers", "jiant"]
Transfer = Literal["finetune", "frozen_mix"]
PatienceCount = Literal["exact", "jiant"]
StopAt = Literal["epoch_limit", "next_validation"]
Batching = Literal["shuffle", "allennlp_bucket"]
Inputs = Literal["reference", "jiant"]

# The second study's recipe (train/validation.py) and the kind of head and transfer: for every run
# in [train], per task in [tasks.X] (a task's own value wins).
_RECIPE: tuple[Table, ...] = ("tasks", "train")


@dataclass
class RunConfig:
    kind: RunKind = setting(grid_point=False, plan=Column("kind", 10))
    model: str = setting()
    task: str = setting(plan=Column("task", 20))
    # The label analysis groups by ("none", "hellaswag", "hellaswag_p@2000").
    intermediate: str = setting("none", grid_point=False, plan=Column("from", 30))
    init_from: str | None = setting(None, grid_point=False)  # run id of the intermediate run whose checkpoint starts this run
    init_checkpoint: str | None = setting(None, identity=False)  # that checkpoint's folder: init_from says which run
    data_dir: str | None = setting(None, tables=("tasks",), grid_point=False)
    task_files: list[str] = setting(factory=list, identity=False)
    lr: float = setting(1e-5, gt=0, tables=GRID, plan=Column("lr", 40))
    batch_size: int = setting(16, ge=1, tables=(*GRID, "tasks"), plan=Column("batch", 50))
    warmup_ratio: float = setting(0.0, ge=0, lt=1, tables=GRID, plan=Column("wu", 80))
    # transformers.set_seed seeds numpy: 32 bits
    seed: int = setting(42, ge=0, lt=2**32, tables=GRID, plan=Column("seed", 170))
    # zero-shot runs are made with 0 (they only evaluate)
    epochs: int = setting(3, ge=1, tables=(*GRID, "tasks"), plan=Column("ep", 110))
    max_length: int = setting(128, ge=8, tables=(*GRID, "tasks"), plan=Column("len", 120))
    # A list in [tasks.X] of an intermediate: one intermediate per size (sweep/spec.py).
    train_size: int | None = setting(None, ge=1, tables=(*GRID, "tasks"), plan=Column("size", 160))
    data_seed: int = setting(42, ge=0)  # picks the train_size subset; fixed so all grid points share it
    weight_decay: float = setting(0.0, ge=0, tables=GRID)
    adam_eps: float = setting(1e-8, gt=0, tables=GRID)
    max_grad_norm: float = setting(1.0, gt=0, tables=GRID)
    # "per_micro_batch": the running gradient is clipped after every backward, inside the
    # accumulation loop, as Chang & Lu's run.py does (its SocialIQA runs accumulate; see docs/paper.md).
    grad_clip: GradClip = setting("per_step", tables=("tasks",), added_later=True, plan=Column("clip", 150))
    # A device batch the study fixes (SocialIQA: 4 x accumulation 2/4/8 in train_iqa.sh). With it the
    # epoch is cut into device batches as a DataLoader would, a step every batch_size / device_batch
    # of them (see train/steps.py); None: the device batch is only a memory setting.
    device_batch: int | None = setting(None, ge=1, tables=("tasks",), added_later=True)
    # "hf_adamw": transformers 4.3.2's AdamW; "bert_adam": jiant's (train/optim.py)
    optimizer: OptimizerName = setting("torch_adamw", tables=("train",), added_later=True, plan=Column("optimizer", 140))
    eval_every_epoch: bool = setting(False, tables=("train",))
    # "jiant": an encoder with jiant taskmaster_v1's heads (train/heads.py) for every task, as the
    # second study ran; the span heads always use them.
    head_style: HeadStyle = setting("transformers", tables=_RECIPE, added_later=True, plan=Column("head", 190))
    # "frozen_mix": the encoder stays fixed and a learned scalar mix of its layers feeds jiant's heads
    # (the second study's "mixing" probes, train/heads.py); "finetune": every weight trains.
    transfer: Transfer = setting("finetune", tables=_RECIPE, added_later=True)
    # The second study's recipe (train/validation.py): validate every val_interval steps on the first
    # val_data_limit dev examples, stop after `patience` validations without improvement (or max_vals),
    # score the best weights on the whole dev set. None: the final weights, as the first study.
    val_interval: int | None = setting(None, ge=1, tables=_RECIPE, added_later=True, plan=Column("val every", 200))
    val_data_limit: int | None = setting(None, ge=1, tables=_RECIPE, added_later=True)
    patience: int | None = setting(None, ge=1, tables=_RECIPE, added_later=True, plan=Column("patience", 220))
    max_vals: int | None = setting(None, ge=1, tables=_RECIPE, added_later=True, plan=Column("max vals", 210))
    # "jiant": a run stops after patience + 1 validations without improvement, as jiant's
    # _check_history counts them (trainer.py l. 253-274); "exact": after `patience`.
    patience_count: PatienceCount = setting("exact", tables=_RECIPE, added_later=True)
    # "next_validation": train on past the epoch limit to the validation after it, where the schedule
    # ends (jiant checks the limit only at validations, trainer.py l. 686-689, 1012-1024);
    # "epoch_limit": stop at the limit.
    stop_at: StopAt = setting("epoch_limit", tables=_RECIPE, added_later=True)
    # "allennlp_bucket": the batches of AllenNLP 0.8.4's BucketIterator as jiant built it (train/bucket.py);
    # "shuffle": a fresh permutation every epoch.
    batching: Batching = setting("shuffle", tables=_RECIPE, added_later=True, plan=Column("batching", 230))
    # "jiant": the inputs jiant built (tasks/jiant_inputs.py): segments tokenised and cut on their own,
    # its SocialIQA / CosmosQA segments, MultiRC / ReCoRD passages cut, edge probing uncut;
    # "reference": Chang & Lu's encodings and this tool's windows.
    inputs: Inputs = setting("reference", tables=_RECIPE, added_later=True, plan=Column("inputs", 240))
    # the sentence encoder's output dropout (jiant heads); None: 0.1
    dropout: float | None = setting(None, ge=0, lt=1, tables=(*GRID, "tasks"), added_later=True,
                                    plan=Column("drop", 180))
    # "tf32": fp32 weights, gradients and optimizer with TF32 matrix products, what PyTorch 1.7.1 ran
    # on the reference's RTX 3090; "bf16" / "fp16": autocast; "auto": bf16 where supported.
    precision: Precision = setting("auto", tables=("train",), plan=Column("precision", 130))
    sdpa: bool = setting(True, tables=("train",))
    fused_adamw: bool = setting(True, tables=("train",))
    # How the work is laid out, not what it computes: accumulation reaches the same effective batch.
    max_device_batch: int = setting(32, ge=1, tables=("train",), identity=False)
    group_by_length: bool = setting(True, tables=("train",), identity=False)  # micro-batches of similar length inside each step
    threads: int | None = setting(None, ge=1, tables=("train",), identity=False)
    # Train up to this many runs that share model, data and device batch as one fused model in one
    # worker (train/fused/; README.md, "Fused trials"); "auto": as many as the memory planner fits.
    # 1: each run alone. How the work is laid out, not what a run computes: not in its id.
    fuse: int | Literal["auto"] = setting(1, ge=1, tables=("train",), identity=False)
    save_checkpoint: bool = setting(False, identity=False)  # targets: [train] save_target_checkpoints (sweep/spec.py)
    output_dir: str = setting("", identity=False)
    events_path: str = setting("", identity=False)
    cache_dir: str = setting("", identity=False)
    log_interval_s: float = setting(0.5, gt=0, tables=("train",), identity=False)
    # Save a resumable state this often (0: never; see train/resume.py). A sweep's runs save one every
    # 10 minutes unless [train] says otherwise: a run longer than that loses at most 10 minutes to a
    # crash, a stop or a preemption, and a shorter run never pays for a save.
    resume_every_s: float = setting(0.0, ge=0, tables=("train",), identity=False, spec_default=600.0)
    spec_name: str = setting("", identity=False)
    # Labels for analysis, not identity: a spec's `probes` (rows below the targets in a transfer
    # matrix) and the [restarts] index (the unit the matrix and the correlations average over).
    probe: bool = setting(False, identity=False)
    restart: int | None = setting(None, identity=False)
    run_id: str = setting("", identity=False, plan=Column("run", 0))

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
        for k in IDENTITY_FIELDS:
            v = getattr(self, k)
            if not (k in ADDED_LATER and v == ADDED_LATER[k]):
                out[k] = v
        return out

    def compute_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        unknown = set(data) - set(DECLARED)
        if unknown:
            raise ValueError(f"unknown run config key(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# ------------------------------------------------------------------ derived from the declarations

DECLARED = {f.name: declaration(f) for f in fields(RunConfig)}
# The fields a run's id is computed from, in declaration order.
IDENTITY_FIELDS = tuple(name for name, d in DECLARED.items() if d.identity)
NOT_IDENTITY = frozenset(name for name, d in DECLARED.items() if not d.identity)
# Settings added after results files existed, with the default at which they are left out of the id.
ADDED_LATER: dict[str, Any] = {f.name: f.default for f in fields(RunConfig) if DECLARED[f.name].added_later}
# What a run's grid point is made of for analysis: its config without where it comes from, and
# without what is not its identity.
NOT_GRID = frozenset(name for name, d in DECLARED.items() if not d.grid_point)
# What a spec's runs get where the spec says nothing and that differs from a config's own default.
SPEC_DEFAULTS: dict[str, Any] = {name: d.spec_default for name, d in DECLARED.items() if d.has_spec_default}


def settable_in(table: Table) -> tuple[str, ...]:
    """The settings a spec table may set, in declaration order."""
    return tuple(name for name, d in DECLARED.items() if table in d.tables)


def every_run(name: str) -> bool:
    """Whether a [train] setting applies to every run of a sweep, above everything else: no
    [tasks.X] may set it (one that may is a default a task's own value wins over)."""
    return "train" in DECLARED[name].tables and "tasks" not in DECLARED[name].tables
