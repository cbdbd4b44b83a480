"""Each run of a spec with its fully resolved settings: what `stilts plan SPEC --runs` shows before
anything is launched."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from stilts_tui.errors import StiltsError
from stilts_tui.tasks import get_task
from stilts_tui.train.config import RunConfig
from stilts_tui.train.steps import steps_per_epoch, warmup_steps
from stilts_tui.train.validation import schedule_steps


@dataclass(frozen=True)
class ResolvedRun:
    run_id: str
    kind: str
    task: str
    intermediate: str
    lr: float
    batch_size: int
    device_batch: int
    accumulation: int
    warmup_ratio: float
    warmup_steps: int | None      # from the official train size (or train_size); None where unknown
    total_steps: int | None
    epochs: int
    max_length: int
    precision: str
    optimizer: str
    grad_clip: str
    train_size: int | None
    seed: int
    dropout: float | None         # jiant heads' output dropout (None: 0.1, or transformers' head)
    head_style: str
    val_interval: int | None      # the second study's recipe: validation every N steps ...
    max_vals: int | None          # ... at most this many times
    patience: int | None
    done: bool

    def as_dict(self) -> dict:
        return asdict(self)


def _total_steps(cfg: RunConfig) -> int | None:
    if cfg.kind == "zero_shot":
        return 0
    try:
        rows = get_task(cfg.task).train_rows
    except StiltsError:
        rows = None
    sizes = [x for x in (rows, cfg.train_size) if x]  # a train_size above the set's size is the set
    return schedule_steps(cfg, steps_per_epoch(min(sizes), cfg)) if sizes else None


def resolve(runs: list[RunConfig], finished: set[str]) -> list[ResolvedRun]:
    out = []
    for r in runs:
        micro, accumulation = r.micro_batch()
        total = _total_steps(r)
        out.append(ResolvedRun(
            run_id=r.run_id, kind=r.kind, task=r.task, intermediate=r.intermediate, lr=r.lr, batch_size=r.batch_size,
            device_batch=micro, accumulation=accumulation, warmup_ratio=r.warmup_ratio,
            warmup_steps=None if total is None else warmup_steps(r, total), total_steps=total, epochs=r.epochs,
            max_length=r.max_length, precision=r.precision, optimizer=r.optimizer, grad_clip=r.grad_clip,
            train_size=r.train_size, seed=r.seed, dropout=r.dropout, head_style=r.head_style, val_interval=r.val_interval,
            max_vals=r.max_vals, patience=r.patience, done=r.run_id in finished))
    return out
