"""`stilts bench worker`: one run's config trained by this worker and by Hugging Face `Trainer`
(run_glue's setup: inputs padded to max_seq_length), in one process, one after the other.

Reported: training throughput of each (sequences per second of the training loop, from the
first step to the last, as Trainer's own train_runtime counts it), their ratio, and both final
dev scores for the same seed and hyperparameters."""

from __future__ import annotations

import contextlib
import io
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stilts_tui.tasks import ClsExample, get_task, load_examples
from stilts_tui.tasks.base import example_labels


def bench_model(model: str, task_name: str, data_dir: str | None, out: Path) -> str:
    """The model a benchmark trains: ``tiny`` (2 layers) and ``roberta-large-random`` are built
    here, randomly initialised, with a tokenizer trained on the task's texts; anything else is a
    model path or hub id."""
    from stilts_tui.bench.shaped import SHAPED_MODELS
    from stilts_tui.models.tiny import build_tiny_model
    from stilts_tui.tasks.encode import join_parts

    if model != "tiny" and model not in SHAPED_MODELS:
        return model
    texts = []
    for ex in load_examples(get_task(task_name), "train", data_dir)[:2000]:
        assert isinstance(ex, ClsExample)  # bench tasks are classification (checked by the caller)
        texts.append(join_parts(ex.a, " "))
        if ex.b:
            texts.append(ex.b)
    # A vocabulary large enough that sequence lengths resemble a real tokenizer's.
    return str(build_tiny_model(out / model, "roberta", texts, vocab_size=8000, **SHAPED_MODELS.get(model, {})))


def bench_ours(cfg) -> dict:
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.loop import run

    metrics = run(cfg, EventWriter(cfg.run_id, None, io.StringIO()))
    return {"sequences_per_s": metrics["train_sequences_per_s"], "score": metrics["score"], "metric": metrics["metric"],
            "tokens_per_sequence": metrics["train_tokens"] / max(1, metrics["train_sequences"])}


def bench_trainer(cfg, pad_to: int | None) -> dict:
    """Hugging Face Trainer, set up as run_glue.py does by default (pad_to_max_length), or with
    dynamic padding (DataCollatorWithPadding) when `pad_to` is None."""
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from stilts_tui.data.subsample import subsample_indices
    from stilts_tui.models import resolve_model
    from stilts_tui.tasks.encode import encode
    from stilts_tui.tasks.metrics import score

    task = get_task(cfg.task)
    path = resolve_model(cfg.model)
    tok = AutoTokenizer.from_pretrained(path)
    train_ex = load_examples(task, "train", cfg.data_dir)
    if cfg.train_size:
        train_ex = [train_ex[i] for i in subsample_indices(len(train_ex), cfg.train_size, cfg.data_seed)]
    dev_ex = load_examples(task, "dev", cfg.data_dir)

    def as_dataset(examples):
        feats = encode(task, examples, tok, pad_to or cfg.max_length)
        if pad_to is None:
            return datasets.Dataset.from_dict(feats)
        padded = tok.pad({k: v for k, v in feats.items() if k != "labels"}, padding="max_length", max_length=pad_to)
        return datasets.Dataset.from_dict(dict(padded) | {"labels": feats["labels"]})

    train_ds, dev_ds = as_dataset(train_ex), as_dataset(dev_ex)
    set_seed(cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=task.num_labels)
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size * 2,
            learning_rate=cfg.lr, num_train_epochs=cfg.epochs, warmup_steps=cfg.warmup_ratio, weight_decay=0.0,
            adam_epsilon=1e-8, max_grad_norm=1.0, lr_scheduler_type="linear", seed=cfg.seed, save_strategy="no",
            eval_strategy="no", logging_strategy="no", report_to=[], use_cpu=not cuda, bf16=cuda,
            dataloader_num_workers=0, disable_tqdm=True)
        collator = DataCollatorWithPadding(tok, pad_to_multiple_of=8 if cuda else None) if pad_to is None else None
        trainer = Trainer(model=model, args=args, train_dataset=train_ds, data_collator=collator)
        ready_t = time.time()
        with contextlib.redirect_stdout(io.StringIO()):  # Trainer prints its final metrics dict
            result = trainer.train()
            preds = np.asarray(trainer.predict(dev_ds).predictions).argmax(-1).tolist()
    runtime = result.metrics["train_runtime"]
    return {"sequences_per_s": len(train_ds) * cfg.epochs / runtime, "score": score(task.metric, preds, example_labels(dev_ex)),
            "metric": task.metric, "ready_t": ready_t}


def run_bench(model: str, task: str, data_dir: str | None, train_size: int | None, epochs: int, batch_size: int,
              lr: float, seed: int, max_length: int, warmup_ratio: float = 0.1, repeat: int = 1) -> dict:
    """Alternates the two ``repeat`` times (so drift on a shared machine hits both alike) and
    reports the median throughput of each."""
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.errors import StiltsError

    if get_task(task).head != "classification":
        raise StiltsError(f"bench worker compares against run_glue-style Trainer, which needs a classification task; "
                          f"{task} is multiple choice", "use --task rte, cola, wic or demo_acceptability")
    with tempfile.TemporaryDirectory() as tmp:
        model_path = bench_model(model, task, data_dir, Path(tmp))
        cfg = RunConfig(kind="target", model=model_path, task=task, data_dir=data_dir, lr=lr, batch_size=batch_size,
                        epochs=epochs, seed=seed, max_length=max_length, warmup_ratio=warmup_ratio, train_size=train_size,
                        max_device_batch=batch_size, cache_dir=str(Path(tmp) / "cache"), output_dir=str(Path(tmp) / "out"))
        cfg.run_id = cfg.compute_id()
        ours_runs, hf_runs, wall = [], [], {"stilts": 0.0, "trainer": 0.0}
        for _ in range(repeat):
            t0 = time.time()
            ours_runs.append(bench_ours(cfg))
            t1 = time.time()
            hf_runs.append(bench_trainer(cfg, pad_to=max_length))
            wall["stilts"] += t1 - t0
            wall["trainer"] += time.time() - t1
    ours = _median(ours_runs)
    hf = _median(hf_runs)
    return {"repeat": repeat,"model": model, "task": task, "train_size": train_size, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "seed": seed, "max_length": max_length, "device": "cuda" if torch.cuda.is_available() else "cpu",
            "torch_threads": torch.get_num_threads(), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "stilts": ours, "trainer": hf, "ratio": ours["sequences_per_s"] / hf["sequences_per_s"], "wall_s": wall}


def _median(runs: list[dict]) -> dict:
    speeds = sorted(r["sequences_per_s"] for r in runs)
    return runs[0] | {"sequences_per_s": speeds[len(speeds) // 2], "all_sequences_per_s": [r["sequences_per_s"] for r in runs]}
