"""The training loop: the study's recipe, small enough to read in one sitting.

AdamW (eps 1e-8, weight decay 0, bias correction), gradient clipping 1.0 (per step, or after
every micro-batch as Chang & Lu's run.py does), linear decay after a linear warmup of
``int(ratio x total)`` steps, the effective batch reached by gradient accumulation, the final
checkpoint evaluated on dev (no early stopping). How an epoch becomes steps: train/steps.py."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import torch

from stilts_tui.data.subsample import subsample_indices
from stilts_tui.diskspace import DiskFullError, is_disk_full
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.models import resolve_model
from stilts_tui.tasks import Example, Task, get_task, register_task_file, with_label_set
from stilts_tui.tasks.base import SPAN_HEADS
from stilts_tui.tasks.metrics import (
    baseline_score,
    degenerate_threshold,
    majority_baseline,
    random_baseline,
    score,
)
from stilts_tui.train import resume
from stilts_tui.train.bucket import sorting_keys
from stilts_tui.train.data import (
    Collator,
    length_groups,
    sequence_lengths,
    tokenised_split,
)
from stilts_tui.train.events import EventWriter
from stilts_tui.train.handoff import build_model, save_checkpoint
from stilts_tui.train.optim import build_optimizer, build_scheduler
from stilts_tui.train.predict import head_scores, row_logits
from stilts_tui.train.steps import (
    Step,
    epoch_plan,
    epoch_rows,
    passes,
    steps_per_epoch,
    warmup_steps,
)
from stilts_tui.train.validation import Validator, schedule_steps, trained_steps
from stilts_tui.train.warm import WarmCache

# What a batch holds for the loss: left out when only predicting.
TARGETS = frozenset({"labels", "start_positions", "end_positions", "span_labels"})


class NanLossError(RuntimeError):
    pass


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(requested: str, device: torch.device) -> str:
    if device.type != "cuda":
        return "fp32"  # TF32 is a CUDA setting; a CPU computes fp32 as asked
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return requested


def set_matmul_precision(precision: str, device: torch.device) -> None:
    """TF32 matrix products for "tf32" (PyTorch 1.7.1's default on Ampere, what the reference ran),
    full fp32 otherwise. Set on every run: a warm worker runs many."""
    if device.type != "cuda":
        return
    tf32 = precision == "tf32"
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = tf32


def _autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    return nullcontext()


def padding_waste(device: torch.device) -> float | None:
    """How much padding a micro-batch may carry before its step is split into more micro-batches.
    A CPU's time follows the tokens it computes, so shorter groups pay; a GPU's time for a model's
    step is mostly the host launching its kernels, the same for 3 sequences as for 32, so a GPU
    keeps each micro-batch as large as memory allows (still sorted by length)."""
    return 0.25 if device.type == "cpu" else None


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Copy a batch to the device without waiting: a copy from pageable memory first waits for
    everything queued on the GPU, one from pinned memory does not."""
    if device.type != "cuda":
        return batch
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


def _memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return psutil.Process().memory_info().rss / 2**20


def _fault(step: int, cfg: RunConfig, micro: int) -> None:
    """Fault injection for the failure-path tests, from STILTS_FAULT_INJECT=KIND:STEP[@FIELD=VALUE], several
    separated by ";": oom / nan / kill / hang / hang_once / error at that step, gate (wait at that step until
    the file named by STILTS_FAULT_GATE exists, at most 10 min), or oom_above:N (out of memory while the
    device batch is larger than N). `@seed=13` limits a fault to runs whose config has that value."""
    for spec in filter(None, os.environ.get("STILTS_FAULT_INJECT", "").split(";")):
        _one_fault(spec, step, cfg, micro)


def _one_fault(spec: str, step: int, cfg: RunConfig, micro: int) -> None:
    spec, _, where = spec.partition("@")
    if where:
        key, _, value = where.partition("=")
        if str(getattr(cfg, key, None)) != value:
            return
    kind, _, at = spec.partition(":")
    if kind == "oom_above":
        if micro > int(at):
            raise torch.OutOfMemoryError(f"CUDA out of memory with a device batch of {micro} (injected)")
        return
    if step != int(at or 1):
        return
    if kind == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")
    if kind == "nan":
        raise NanLossError(f"loss is nan at step {step} (injected)")
    if kind == "error":
        raise RuntimeError(f"injected error at step {step}")
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "hang":
        time.sleep(3600)
    if kind == "gate":  # a run kept alive until the test lets it go: for "while a job still runs" tests
        deadline = time.time() + 600
        while not Path(os.environ["STILTS_FAULT_GATE"]).exists() and time.time() < deadline:
            time.sleep(0.2)
    if kind == "hang_once":  # hangs the first time only (a marker in the run's folder): for requeue tests
        marker = Path(cfg.output_dir) / ".fault-hang-once"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            time.sleep(3600)


def evaluate(model, dataset, task: Task, micro: int, collate: Collator, device, precision: str,
             group_by_length: bool = True, examples: Sequence[Example] = ()) -> dict:
    """Dev predictions of the current weights. Grouping by length changes only the padding, so the
    predictions are those of any other batching. The span heads are scored per example from all
    of its rows (train/predict.py), so they need the examples."""
    model.eval()
    everything = list(range(len(dataset)))
    if group_by_length:
        batches = length_groups(everything, sequence_lengths(dataset), micro * 2, padding_waste(device))
    else:
        batches = [everything[s : s + micro * 2] for s in range(0, len(dataset), micro * 2)]
    span_head = task.head in SPAN_HEADS
    by_index: dict[int, Any] = {}
    with torch.no_grad():
        for group in batches:
            batch = to_device(collate(dataset[group]), device)
            with _autocast(precision, device):
                logits = model(**{k: v for k, v in batch.items() if k not in TARGETS}).logits
            outputs = row_logits(logits, batch, task) if span_head else logits.argmax(-1).tolist()
            by_index.update(zip(group, outputs, strict=True))
    model.train()
    if span_head:
        parts = head_scores(task, [by_index[i] for i in everything], dataset, examples)
        return {"metric": task.metric, "score": parts.pop("score"), "n": len(examples), "parts": parts}
    preds = [by_index[i] for i in everything]
    labels = list(dataset["labels"])
    return {"metric": task.metric, "score": score(task.metric, preds, labels, task.random_baseline_k), "n": len(labels),
            "predicted_share": {str(c): preds.count(c) / len(preds) for c in sorted(set(preds))}}


class Prepared(NamedTuple):
    """What a run starts from before its model: the task, where it runs, its tokenizer, and how
    to read one of its splits tokenised (from the warm cache when there is one)."""

    task: Task
    device: torch.device
    precision: str
    tokenizer: Any
    split: Callable[[str], tuple[Any, Sequence[Example]]]


def prepare(cfg: RunConfig, cache: WarmCache | None = None) -> Prepared:
    """The set-up every run shares, solo or fused (train/fused/group.py): one place, so both read
    the same tokenised data under the same cache key."""
    from transformers import AutoTokenizer

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    for f in cfg.task_files:
        register_task_file(f)
    task = with_label_set(get_task(cfg.task), cfg.data_dir)
    device = pick_device()
    precision = resolve_precision(cfg.precision, device)
    set_matmul_precision(precision, device)
    model_path = resolve_model(cfg.model)
    tokenizer = cache.tokenizer(model_path) if cache else AutoTokenizer.from_pretrained(model_path)

    def split(name: str):
        def build():
            return tokenised_split(task, name, cfg.data_dir, tokenizer, cfg.max_length, cfg.cache_dir, cfg.inputs)

        if cache is None:
            return build()
        return cache.split((task.name, name, cfg.data_dir, tuple(cfg.task_files), model_path, cfg.max_length, cfg.cache_dir,
                            cfg.inputs), build)

    return Prepared(task, device, precision, tokenizer, split)


def run(cfg: RunConfig, events: EventWriter, cache: WarmCache | None = None) -> dict:
    """Train (or, for zero-shot, only evaluate) one run; returns its final metrics. A warm
    worker passes its cache; the result is the same either way."""
    start_time = time.time()
    from transformers import set_seed

    task, device, precision, tokenizer, split = prepare(cfg, cache)
    dev_ds, dev_examples = split("dev")
    train_ds: Any = None
    train_examples: Sequence[Example] = ()
    if cfg.kind != "zero_shot":
        train_ds, train_examples = split("train")
        if cfg.train_size:
            train_ds = train_ds.select(subsample_indices(len(train_ds), cfg.train_size, cfg.data_seed))
    elif task.head != "multiple_choice":
        raise StiltsError(f"zero-shot needs a multiple-choice target; {task.name} is {task.head}")

    set_seed(cfg.seed)
    model, report = build_model(cfg.model, task, cfg.init_checkpoint, attn="sdpa" if cfg.sdpa else "eager", cache=cache,
                                head_style=cfg.head_style, dropout=cfg.dropout, transfer=cfg.transfer)
    if cfg.kind == "zero_shot" and report.get("to_head") != report.get("from_head", "multiple_choice"):
        raise StiltsError("zero-shot needs a multiple-choice intermediate checkpoint", "use an MC intermediate")
    model.to(device)
    baselines = {"majority": majority_baseline(task, dev_examples), "random": random_baseline(task),
                 "majority_score": baseline_score(task, dev_examples, "majority"),
                 "degenerate_threshold": degenerate_threshold(task, dev_examples)}
    micro, accum = cfg.micro_batch()
    n_params = sum(p.numel() for p in model.parameters())
    per_epoch = steps_per_epoch(epoch_rows(cfg, task, len(train_ds), train_examples), cfg) if train_ds is not None else 0
    total_steps = schedule_steps(cfg, per_epoch)
    events.emit("started", config=asdict(cfg), params=n_params, device=str(device), precision=precision,
                torch_threads=torch.get_num_threads(), train_examples=len(train_ds) if train_ds is not None else 0,
                dev_examples=len(dev_ds), micro_batch=micro, accumulation=accum, total_steps=total_steps,
                warmup_steps=warmup_steps(cfg, total_steps), grad_clip=cfg.grad_clip, optimizer=cfg.optimizer,
                baselines=baselines)
    events.emit("handoff", **report)

    collate = Collator(tokenizer.pad_token_id, pad_to_multiple_of=8 if device.type == "cuda" else None)
    if cfg.kind == "zero_shot":
        scores = evaluate(model, dev_ds, task, micro, collate, device, precision, cfg.group_by_length, dev_examples)
        events.emit("eval", epoch=0, step=0, **scores)
        return {**scores, "baselines": baselines, "steps": 0, "wall_s": time.time() - start_time, "train_sequences_per_s": None}

    if precision == "fp16" and cfg.grad_clip == "per_micro_batch":
        raise StiltsError("grad_clip = \"per_micro_batch\" cannot run with fp16 loss scaling",
                          'use precision = "tf32", "fp32" or "bf16" for this run')
    trainable = [p for p in model.parameters() if p.requires_grad]  # a frozen encoder's weights never step
    optimizer = build_optimizer(cfg.optimizer, trainable, lr=cfg.lr, eps=cfg.adam_eps,
                                weight_decay=cfg.weight_decay, fused=bool(cfg.fused_adamw and device.type == "cuda"))
    scheduler = build_scheduler(cfg.optimizer, optimizer, cfg.warmup_ratio, warmup_steps(cfg, total_steps), total_steps)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    generator = torch.Generator().manual_seed(cfg.seed)
    k = task.num_choices or 1
    lengths = sequence_lengths(train_ds) if cfg.group_by_length else None
    keys = sorting_keys(train_ds["input_ids"]) if cfg.batching == "allennlp_bucket" else None
    limit = trained_steps(cfg, per_epoch)  # past the epoch limit with epoch_limit = "next_validation"
    waste = padding_waste(device)
    state = resume.ResumeState(Path(cfg.output_dir) / resume.FILE_NAME, cfg.run_id, cfg.resume_every_s,
                               model, optimizer, scheduler, scaler)
    at = state.restore(device) if cfg.output_dir else None
    if at is not None and at.epoch_generator is not None:
        generator.set_state(at.epoch_generator)
        events.emit("resumed", step=at.step, epoch=at.epoch, batch_in_epoch=at.batch_in_epoch)
    at = at or resume.Position()
    model.train()
    step = at.step
    seqs, tokens = at.counters.get("seqs", 0), at.counters.get("tokens", 0)
    train_time = at.counters.get("train_time", 0.0)
    # The last step's loss; a state saved before the name said so calls it "loss_sum".
    last_loss = at.counters.get("last_loss", at.counters.get("loss_sum", 0.0))
    last_emit = 0.0
    result: dict = {}

    def backward(planned: Step) -> torch.Tensor:
        """Accumulate one step's gradient; returns its loss (on the device, not waited for)."""
        nonlocal seqs, tokens
        step_loss = torch.zeros((), device=device)
        for group, weight in zip(planned.groups, planned.weights, strict=True):
            batch = collate(train_ds[group])
            tokens += int(batch["attention_mask"].sum())  # on the host: no wait for the GPU
            batch = to_device(batch, device)
            with _autocast(precision, device):
                loss = model(**batch).loss * weight
            (scaler.scale(loss) if scaler else loss).backward()
            if cfg.grad_clip == "per_micro_batch":  # run.py l. 135-136: clip after every backward
                torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            step_loss += loss.detach()
            seqs += len(group) * k
        return step_loss

    def score_dev(dataset, examples):
        return evaluate(model, dataset, task, micro, collate, device, precision, cfg.group_by_length, examples)

    validator = Validator(cfg, task, dev_ds, dev_examples, events) if cfg.val_interval else None
    stopped = False
    resume.ACTIVE = state
    try:
        for epoch in range(at.epoch, passes(len(train_ds), cfg, limit)):
            if stopped or step >= limit:
                break
            epoch_generator = generator.get_state()
            steps, leftover = epoch_plan(len(train_ds), cfg, generator, lengths, waste, keys)
            for i, planned in enumerate(steps):
                if epoch == at.epoch and i < at.batch_in_epoch:
                    continue  # done before the run was stopped
                t0 = time.perf_counter()
                step += 1
                _fault(step, cfg, micro)
                step_loss = backward(planned)
                # The step's one wait for the GPU: reading a loss after every micro-batch kept the
                # host from queueing the next one while the GPU worked.
                last_loss = step_loss.item()
                if not math.isfinite(last_loss):
                    raise NanLossError(f"loss is {last_loss} at step {step}")
                state.updating = True
                if scaler:
                    scaler.unscale_(optimizer)
                if cfg.grad_clip == "per_step":
                    torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.updating = False
                train_time += time.perf_counter() - t0
                state.mark(resume.Position(step, epoch, i + 1, epoch_generator,
                                           {"seqs": seqs, "tokens": tokens, "train_time": train_time, "last_loss": last_loss}))
                now = time.time()
                if now - last_emit >= cfg.log_interval_s or step == total_steps:
                    last_emit = now
                    events.emit("step", step=step, total_steps=total_steps, epoch=step / per_epoch,
                                loss=last_loss, lr=scheduler.get_last_lr()[0], sequences_per_s=seqs / train_time,
                                tokens_per_s=tokens / train_time, memory_mb=_memory_mb(device))
                if validator is not None and validator.due(step) and validator.validate(model, score_dev, step, epoch):
                    stopped = True
                    break
                if step >= limit:
                    break
            if leftover is not None and epoch + 1 < cfg.epochs and not stopped:
                backward(leftover)  # run.py carries this gradient into the next epoch's first step
            if cfg.eval_every_epoch and epoch + 1 < cfg.epochs:
                result = evaluate(model, dev_ds, task, micro, collate, device, precision, cfg.group_by_length, dev_examples)
                events.emit("eval", epoch=epoch + 1, step=step, **result)
    finally:
        resume.ACTIVE = None
    recipe: dict = {}
    if validator is not None:
        if validator.last_step != step and not stopped:  # the epoch limit fell between validations
            validator.validate(model, score_dev, step, cfg.epochs)
        validator.restore_best(model)  # the best validated weights are the run's result
        recipe = validator.summary() | {"stopped_early": stopped}
    result = score_dev(dev_ds, dev_examples)
    events.emit("eval", epoch=cfg.epochs, step=step, **result)
    if cfg.kind == "intermediate" or cfg.save_checkpoint:
        folder = Path(cfg.output_dir) / "checkpoint"
        try:
            save_checkpoint(model, tokenizer, task, folder, cfg.run_id)
        except Exception as exc:  # a library's own error (safetensors) names no file: say which
            if is_disk_full(exc):
                raise DiskFullError(folder, "write the checkpoint") from exc
            raise
    state.remove()
    return {**result, **recipe, "baselines": baselines, "steps": step, "wall_s": time.time() - start_time,
            "train_sequences_per_s": seqs / train_time if train_time else None,
            "train_tokens_per_s": tokens / train_time if train_time else None, "final_loss": last_loss,
            "train_tokens": tokens, "train_sequences": seqs, "train_s": train_time, "params": n_params}
