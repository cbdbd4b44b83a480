"""Mean-pooled sequence features of an encoder on a task's sample, cached per (encoder, task,
sample) so that a second forecast reads them instead of running the model.

The pooling is TextEmb's (Vu et al. 2020): the last layer's token vectors averaged over the
attention mask, one vector per sequence (tuvuumass/task-transferability run_textemb_CR.py,
`compute_textemb`: `active_sequence_output.sum(1) / input_mask.sum(dim=1)`; Poth et al. 2021
adapter-hub/efficient-task-transfer task_selection/textemb.py does the same, a multiple-choice
example's choices each a sequence). LogME reads the same vectors (You et al. fix no pooling for
text encoders), so a target's pretrained features serve both methods."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stilts_tui.errors import StiltsError
from stilts_tui.forecast.jobs import PRETRAINED, FeatureJob, FeatureSet
from stilts_tui.forecast.rows import Rows, draw_sample, task_rows
from stilts_tui.models import resolve_model
from stilts_tui.tasks import get_task, load_examples

FEATURE_VERSION = 1
BATCH = 32


def encoder_identity(job: FeatureJob) -> str:
    """What the features depend on in the encoder: the model, and for a checkpoint its weights'
    file size and time (a retrained intermediate writes a new file)."""
    if job.checkpoint is None:
        return f"{PRETRAINED}:{resolve_model(job.model)}"
    folder = Path(job.checkpoint)
    weights = sorted(folder.glob("model*.safetensors"))
    stamp = [(w.name, w.stat().st_size, w.stat().st_mtime_ns) for w in weights]
    return f"checkpoint:{folder.resolve()}:{stamp}"


def cache_path(job: FeatureJob, examples_digest: str, cache_dir: Path) -> Path:
    blob = json.dumps([FEATURE_VERSION, encoder_identity(job), job.task, job.max_length, job.sample, job.seed,
                       examples_digest])
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    safe = "".join(ch if ch.isalnum() or ch in "_.@-" else "_" for ch in f"{job.encoder}-{job.task}")
    return cache_dir / f"{safe}-{key}.npz"


def digest(examples: list) -> str:
    return hashlib.sha256(repr(examples).encode()).hexdigest()[:16]


@dataclass
class Encoders:
    """Models and tokenizers loaded once per forecast, and the time that took."""

    models: dict[str, object] = field(default_factory=dict)
    tokenizers: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def tokenizer(self, job: FeatureJob):
        from transformers import AutoTokenizer

        _quiet_transformers()
        if job.model not in self.tokenizers:
            start = time.perf_counter()
            self.tokenizers[job.model] = AutoTokenizer.from_pretrained(resolve_model(job.model))
            self.seconds += time.perf_counter() - start
        return self.tokenizers[job.model]

    def model(self, job: FeatureJob):
        key = job.checkpoint or f"{PRETRAINED}:{job.model}"
        if key not in self.models:
            start = time.perf_counter()
            self.models[key] = _load(job)
            self.seconds += time.perf_counter() - start
        return self.models[key]


def _quiet_transformers() -> None:
    """Imported only when a model must run: a forecast read from the cache never imports it."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _load(job: FeatureJob):
    from transformers import AutoModel

    _quiet_transformers()

    if job.checkpoint is None:
        model = AutoModel.from_pretrained(resolve_model(job.model))
    else:
        folder = Path(job.checkpoint)
        if not (folder / "config.json").is_file():
            raise StiltsError(f"intermediate checkpoint {folder} is gone or incomplete (no config.json)",
                              f"re-run the intermediate: stilts retry --retrain, or stilts run the spec with "
                              f"intermediates = [\"{job.encoder}\"]")
        # The encoder of the task model the intermediate run saved; its head is not read.
        model, info = AutoModel.from_pretrained(str(folder), output_loading_info=True)
        lost = [k for k in info["missing_keys"] if "encoder" in k]
        if lost:
            raise StiltsError(f"checkpoint {folder} holds no encoder weights for {job.model} (missing {lost[:2]})",
                              "forecast with the model the intermediate was trained from (the spec's model)")
    import torch

    model.eval()
    return model.to("cuda" if torch.cuda.is_available() else "cpu")


def pooled(model, rows: Rows) -> np.ndarray:
    """One mean-pooled last-layer vector per sequence; sequences batched by length (the mean of
    each does not depend on its batch-mates: padding is masked out)."""
    import torch

    order = sorted(range(len(rows)), key=lambda i: len(rows.columns["input_ids"][i]))
    dim = int(model.config.hidden_size)
    out = np.zeros((len(rows), dim), dtype=np.float32)
    pad = int(model.config.pad_token_id or 0)
    with torch.no_grad():
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            width = max(len(rows.columns["input_ids"][i]) for i in idx)
            batch = {}
            for key, fill in (("input_ids", pad), ("attention_mask", 0), ("token_type_ids", 0)):
                if key in rows.columns:
                    t = torch.full((len(idx), width), fill, dtype=torch.long)
                    for j, i in enumerate(idx):
                        seq = rows.columns[key][i]
                        t[j, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                    batch[key] = t.to(model.device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            means = (hidden * mask).sum(1) / mask.sum(1)
            out[idx] = means.float().cpu().numpy()
    return out


def feature_set(job: FeatureJob, cache_dir: Path, encoders: Encoders) -> FeatureSet:
    task = get_task(job.task)
    sample = draw_sample(load_examples(task, "train", job.data_dir), job.sample, job.seed)
    path = cache_path(job, digest(sample), cache_dir)
    if path.is_file():
        with np.load(path) as z:
            features, labels = z["features"], z["labels"]
            return FeatureSet(job, str(path), int(features.shape[0]), int(z["examples"]), int(features.shape[1]),
                              bool(labels.size), task.head, 0, 0.0, True)
    rows = task_rows(task, sample, encoders.tokenizer(job), job.max_length)
    model = encoders.model(job)
    start = time.perf_counter()
    features = pooled(model, rows)
    seconds = time.perf_counter() - start
    labels = np.asarray(rows.labels if rows.labels is not None else [], dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, features=features, labels=labels, examples=np.int64(rows.examples))
    tmp.replace(path)  # a complete file or none: a killed forecast leaves no half cache
    return FeatureSet(job, str(path), len(rows), rows.examples, int(features.shape[1]), rows.labels is not None,
                      task.head, len(rows), seconds, False)
