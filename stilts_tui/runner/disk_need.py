"""How much disk a sweep will write, told before it starts (`stilts plan`, `stilts run`, the
app's Plan screen), against what is free where its results go.

What a sweep writes, and how it is counted here:

- a checkpoint per intermediate run (and per run with `save_checkpoint`) not finished yet:
  every parameter in fp32 (what `save_pretrained` writes of a trained model) plus its tokenizer
  files; kept for the sweep's life, since targets start from them;
- a resumable state per run in flight, when runs save one (`resume_every_s`, Slurm's
  `checkpoint_every_min`): weights and two AdamW moments in fp32, removed when the run ends;
- the tokenised caches of splits not cached yet: rows x max_length x 8 bytes (input ids and the
  attention mask as int64, at half of max_length on average), an estimate that errs high.

Event logs (a few hundred bytes per step event) are left out: small beside the rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stilts_tui.diskspace import fmt_bytes, free_bytes, mount_point
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.estimate import train_rows

TOKENIZER_BYTES = 4 * 2**20     # tokenizer.json, vocab and config of a large model's checkpoint
ADAM_COPIES = 3                 # weights + exp_avg + exp_avg_sq
CACHE_BYTES_PER_TOKEN = 8       # two int64 columns at half of max_length


@dataclass(frozen=True)
class DiskNeed:
    folder: Path
    free: int | None
    checkpoints: int
    checkpoint_bytes: int
    resume_states: int
    resume_bytes: int
    cache_bytes: int

    @property
    def total(self) -> int:
        return self.checkpoints * self.checkpoint_bytes + self.resume_states * self.resume_bytes + self.cache_bytes

    @property
    def short(self) -> bool:
        return self.free is not None and self.free < self.total

    def describe(self) -> str:
        parts = []
        if self.checkpoints:
            parts.append(f"{self.checkpoints} checkpoint(s) x {fmt_bytes(self.checkpoint_bytes)}")
        if self.resume_states:
            parts.append(f"resumable states of {self.resume_states} run(s) in flight x {fmt_bytes(self.resume_bytes)}")
        if self.cache_bytes:
            parts.append(f"tokenised caches ≈ {fmt_bytes(self.cache_bytes)}")
        what = ", ".join(parts) or "nothing large"
        return f"≈ {fmt_bytes(self.total)} to write ({what}); {fmt_bytes(self.free)} free on {mount_point(self.folder)}"

    def warning(self) -> str | None:
        if not self.short:
            return None
        return (f"not enough disk: the sweep needs {self.describe()}. Free space, or put the results on a larger disk "
                "(--db); a sweep that fills the disk pauses, and `stilts resume` continues it")


def model_params(model: str) -> int:
    from stilts_tui.errors import StiltsError
    from stilts_tui.models import resolve_model
    from stilts_tui.runner.slots import model_shape

    try:
        return int(model_shape(resolve_model(model))["params"])
    except StiltsError:
        return int(model_shape("")["params"])  # unreadable: a RoBERTa-large shape, to err high


def disk_need(runs: list[RunConfig], folder: Path, finished: set[str], concurrent: int,
              saves_state: bool = False) -> DiskNeed:
    """What the runs not finished yet will write under `folder`, with `concurrent` in flight
    (`saves_state`: every run saves a resumable state, as Slurm runs do)."""
    todo = [r for r in runs if r.run_id not in finished]
    params = {m: model_params(m) for m in {r.model for r in todo}}
    biggest = max(params.values(), default=0)
    saving = [r for r in todo if r.kind == "intermediate" or r.save_checkpoint]
    resumable = [r for r in todo if saves_state or r.resume_every_s > 0]
    caches: dict[tuple, int] = {}
    for r in todo:
        key = (r.task, r.max_length, r.model, r.cache_dir)
        if key not in caches and not _cached(r):
            caches[key] = (train_rows(r) + max(1, train_rows(r) // 10)) * r.max_length * CACHE_BYTES_PER_TOKEN
    return DiskNeed(folder=folder, free=free_bytes(folder), checkpoints=len(saving),
                    checkpoint_bytes=(max((params[r.model] for r in saving), default=0) * 4 + TOKENIZER_BYTES
                                      if saving else 0),
                    resume_states=min(concurrent, len(resumable)), resume_bytes=biggest * 4 * ADAM_COPIES,
                    cache_bytes=sum(caches.values()))


def _cached(cfg: RunConfig) -> bool:
    """A split of this task already tokenised for this length (train/data.py's folder names)."""
    if not cfg.cache_dir:
        return True  # tokenised in memory: nothing written
    folder = Path(cfg.cache_dir)
    return folder.is_dir() and any(p.name.startswith(f"{cfg.task}-train-") and p.name.endswith(f"-{cfg.max_length}")
                                   for p in folder.iterdir())


def sweep_disk_need(runs: list[RunConfig], db: Path, finished: set[str], options) -> DiskNeed:
    """The sweep's need, with its concurrency from the runner options (slots here, or Slurm's
    jobs in the queue)."""
    from stilts_tui.runner.options import slots_from_options

    if options.executor == "slurm":
        settings = options.slurm or {}
        concurrent = int(settings.get("max_jobs", 64)) * int(settings.get("runs_per_job", 1))
        saves = float(settings.get("checkpoint_every_min", 10.0)) > 0
    else:
        from stilts_tui.runner.fusing import runs_per_worker

        # a worker training a fused group holds each of its runs' resumable state
        concurrent, saves = len(slots_from_options(options, runs)) * runs_per_worker(runs), False
    return disk_need(runs, db.parent, finished, concurrent, saves)
