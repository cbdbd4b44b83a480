"""One trial of a fused group: the solo loop's bookkeeping (train/loop.py `run`), driven one
micro-batch at a time by the group (group.py). Its model, optimizer, schedule, data order,
clipping, validation, events, resumable state and checkpoint are built by the same functions as
the run alone, so what it writes is what the run alone writes; only its forward and backward are
shared with the other trials."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from stilts_tui.diskspace import DiskFullError, is_disk_full
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.tasks import Example, Task
from stilts_tui.tasks.metrics import (
    baseline_score,
    degenerate_threshold,
    majority_baseline,
    random_baseline,
)
from stilts_tui.train import resume
from stilts_tui.train.bucket import sorting_keys
from stilts_tui.train.data import Collator, sequence_lengths
from stilts_tui.train.events import EventWriter
from stilts_tui.train.fused.dropout import trial_key
from stilts_tui.train.fused.forward import Micro
from stilts_tui.train.handoff import build_model, save_checkpoint
from stilts_tui.train.loop import NanLossError, _fault, _memory_mb, evaluate, padding_waste
from stilts_tui.train.optim import build_optimizer, build_scheduler
from stilts_tui.train.steps import epoch_plan, epoch_rows, passes, steps_per_epoch, warmup_steps
from stilts_tui.train.validation import Validator, schedule_steps, trained_steps
from stilts_tui.train.warm import WarmCache


@dataclass
class Shared:
    """What every trial of a group reads and no trial changes."""

    task: Task
    tokenizer: Any
    train_ds: Any
    train_examples: list[Example]
    dev_ds: Any
    dev_examples: list[Example]
    device: torch.device
    precision: str
    collate: Collator
    cache: WarmCache | None


class Trial:
    def __init__(self, cfg: RunConfig, events: EventWriter, shared: Shared, group: list[str]) -> None:
        from transformers import set_seed

        self.cfg, self.events, self.s = cfg, events, shared
        self.start_time = time.time()
        set_seed(cfg.seed)  # the head is initialised as the run alone initialises it
        self.model, report = build_model(cfg.model, shared.task, cfg.init_checkpoint, attn="sdpa" if cfg.sdpa else "eager",
                                         cache=shared.cache, head_style=cfg.head_style, dropout=cfg.dropout,
                                         transfer=cfg.transfer)
        self.model.to(shared.device)
        dev_examples = shared.dev_examples
        self.baselines = {"majority": majority_baseline(shared.task, dev_examples), "random": random_baseline(shared.task),
                          "majority_score": baseline_score(shared.task, dev_examples, "majority"),
                          "degenerate_threshold": degenerate_threshold(shared.task, dev_examples)}
        self.micro, self.accum = cfg.micro_batch()
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.per_epoch = steps_per_epoch(epoch_rows(cfg, shared.task, len(shared.train_ds), shared.train_examples), cfg)
        self.total_steps = schedule_steps(cfg, self.per_epoch)
        events.emit("started", config=asdict(cfg), params=self.n_params, device=str(shared.device),
                    precision=shared.precision, torch_threads=torch.get_num_threads(),
                    train_examples=len(shared.train_ds), dev_examples=len(shared.dev_ds), micro_batch=self.micro,
                    accumulation=self.accum, total_steps=self.total_steps, warmup_steps=warmup_steps(cfg, self.total_steps),
                    grad_clip=cfg.grad_clip, optimizer=cfg.optimizer, baselines=self.baselines,
                    fused={"group": group, "size": len(group)})
        events.emit("handoff", **report)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.params = dict(self.model.named_parameters())
        self.optimizer = build_optimizer(cfg.optimizer, self.trainable, lr=cfg.lr, eps=cfg.adam_eps,
                                         weight_decay=cfg.weight_decay,
                                         fused=bool(cfg.fused_adamw and shared.device.type == "cuda"))
        self.scheduler = build_scheduler(cfg.optimizer, self.optimizer, cfg.warmup_ratio,
                                         warmup_steps(cfg, self.total_steps), self.total_steps)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.k = shared.task.num_choices or 1
        self.lengths = sequence_lengths(shared.train_ds) if cfg.group_by_length else None
        self.keys = sorting_keys(shared.train_ds["input_ids"]) if cfg.batching == "allennlp_bucket" else None
        self.limit = trained_steps(cfg, self.per_epoch)  # past the epoch limit with epoch_limit = "next_validation"
        self.state = resume.ResumeState(Path(cfg.output_dir) / resume.FILE_NAME, cfg.run_id, cfg.resume_every_s,
                                        self.model, self.optimizer, self.scheduler, None)
        at = self.state.restore(shared.device) if cfg.output_dir else None
        if at is not None and at.epoch_generator is not None:
            self.generator.set_state(at.epoch_generator)
            events.emit("resumed", step=at.step, epoch=at.epoch, batch_in_epoch=at.batch_in_epoch)
        self.at = at or resume.Position()
        self.model.train()
        self.step = self.at.step
        c = self.at.counters
        self.seqs, self.tokens, self.train_time = c.get("seqs", 0), c.get("tokens", 0), c.get("train_time", 0.0)
        self.last_loss = c.get("last_loss", c.get("loss_sum", 0.0))
        self.last_emit = 0.0
        self.step_loss = torch.zeros((), device=shared.device)
        self.micro_in_step = 0
        self.validator = Validator(cfg, shared.task, shared.dev_ds, shared.dev_examples, events) if cfg.val_interval else None
        self.stopped = False
        self.metrics: dict | None = None
        self.pending: Micro | None = None   # what the group computes next for this trial
        self.step_started = 0.0
        self._plan = self._micro_batches()

    # -- the group's side -------------------------------------------------------------------------

    def advance(self) -> bool:
        """Run the trial's own code up to its next micro-batch (its step ends, validation, epoch
        ends on the way); False when the trial is done (its result in `metrics`)."""
        try:
            self.pending = next(self._plan)
            return True
        except StopIteration:
            self.pending = None
            return False

    def took(self, loss: torch.Tensor) -> None:
        """The group ran this trial's pending micro-batch: its loss, the gradient in its `.grad`."""
        self.step_loss += loss.detach()
        if self.cfg.grad_clip == "per_micro_batch":  # run.py l. 135-136: clip after every backward
            torch.nn.utils.clip_grad_norm_(self.trainable, self.cfg.max_grad_norm)

    # -- the trial's own loop -----------------------------------------------------------------------

    def _micro(self, group: list[int], weight: float) -> Micro:
        batch = self.s.collate(self.s.train_ds[group])
        self.tokens += int(batch["attention_mask"].sum())
        self.seqs += len(group) * self.k
        self.micro_in_step += 1
        return Micro(batch, weight, trial_key(self.cfg.seed, self.step, self.micro_in_step))

    def _score_dev(self, dataset, examples) -> dict:
        s, cfg = self.s, self.cfg
        return evaluate(self.model, dataset, s.task, self.micro, s.collate, s.device, s.precision, cfg.group_by_length,
                        examples)

    def _micro_batches(self) -> Iterator[Micro]:
        cfg, at = self.cfg, self.at
        waste = padding_waste(self.s.device)
        for epoch in range(at.epoch, passes(len(self.s.train_ds), cfg, self.limit)):
            if self.stopped or self.step >= self.limit:
                break
            epoch_generator = self.generator.get_state()
            steps, leftover = epoch_plan(len(self.s.train_ds), cfg, self.generator, self.lengths, waste, self.keys)
            for i, planned in enumerate(steps):
                if epoch == at.epoch and i < at.batch_in_epoch:
                    continue  # done before the run was stopped
                self.step_started = time.perf_counter()
                self.step += 1
                _fault(self.step, cfg, self.micro)
                for group, weight in zip(planned.groups, planned.weights, strict=True):
                    yield self._micro(group, weight)
                if self._end_step(epoch, i, epoch_generator):
                    self.stopped = True
                    break
                if self.step >= self.limit:
                    break
            if leftover is not None and epoch + 1 < cfg.epochs and not self.stopped:
                for group, weight in zip(leftover.groups, leftover.weights, strict=True):
                    yield self._micro(group, weight)  # run.py carries this gradient into the next epoch's first step
            if cfg.eval_every_epoch and epoch + 1 < cfg.epochs:
                result = self._score_dev(self.s.dev_ds, self.s.dev_examples)
                self.events.emit("eval", epoch=epoch + 1, step=self.step, **result)
        self._finish()

    def _end_step(self, epoch: int, i: int, epoch_generator: torch.Tensor) -> bool:
        """The solo loop's optimizer step and what follows it; True when validation stops the run."""
        cfg = self.cfg
        self.last_loss = self.step_loss.item()
        self.step_loss = torch.zeros((), device=self.s.device)
        self.micro_in_step = 0
        if not math.isfinite(self.last_loss):
            raise NanLossError(f"loss is {self.last_loss} at step {self.step}")
        self.state.updating = True
        if cfg.grad_clip == "per_step":
            torch.nn.utils.clip_grad_norm_(self.trainable, cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.updating = False
        self.train_time += time.perf_counter() - self.step_started
        self.state.mark(resume.Position(self.step, epoch, i + 1, epoch_generator,
                                        {"seqs": self.seqs, "tokens": self.tokens, "train_time": self.train_time,
                                         "last_loss": self.last_loss}))
        now = time.time()
        if now - self.last_emit >= cfg.log_interval_s or self.step == self.total_steps:
            self.last_emit = now
            t = max(self.train_time, 1e-9)
            self.events.emit("step", step=self.step, total_steps=self.total_steps, epoch=self.step / self.per_epoch,
                             loss=self.last_loss, lr=self.scheduler.get_last_lr()[0], sequences_per_s=self.seqs / t,
                             tokens_per_s=self.tokens / t, memory_mb=_memory_mb(self.s.device))
        v = self.validator
        return v is not None and v.due(self.step) and v.validate(self.model, self._score_dev, self.step, epoch)

    def _finish(self) -> None:
        cfg, v = self.cfg, self.validator
        recipe: dict = {}
        if v is not None:
            if v.last_step != self.step and not self.stopped:  # the epoch limit fell between validations
                v.validate(self.model, self._score_dev, self.step, cfg.epochs)
            v.restore_best(self.model)  # the best validated weights are the run's result
            recipe = v.summary() | {"stopped_early": self.stopped}
        result = self._score_dev(self.s.dev_ds, self.s.dev_examples)
        self.events.emit("eval", epoch=cfg.epochs, step=self.step, **result)
        if cfg.kind == "intermediate" or cfg.save_checkpoint:
            folder = Path(cfg.output_dir) / "checkpoint"
            try:
                save_checkpoint(self.model, self.s.tokenizer, self.s.task, folder, cfg.run_id)
            except Exception as exc:  # a library's own error (safetensors) names no file: say which
                if is_disk_full(exc):
                    raise DiskFullError(folder, "write the checkpoint") from exc
                raise
        self.state.remove()
        t = self.train_time
        self.metrics = {**result, **recipe, "baselines": self.baselines, "steps": self.step,
                        "wall_s": time.time() - self.start_time,
                        "train_sequences_per_s": self.seqs / t if t else None,
                        "train_tokens_per_s": self.tokens / t if t else None, "final_loss": self.last_loss,
                        "train_tokens": self.tokens, "train_sequences": self.seqs, "train_s": t, "params": self.n_params}
