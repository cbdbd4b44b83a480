"""Slot options shared by `stilts run`, `stilts resume` and `stilts bench sweep`."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields, replace

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.runner.slots import Slot, model_shape, plan_slots


def add_slot_arguments(p: argparse.ArgumentParser, executor: bool = True) -> None:
    g = p.add_argument_group("slots")
    g.add_argument("--gpus", help="GPU indices to use, e.g. 0,1 (default: every visible GPU)")
    g.add_argument("--per-gpu", type=int, help="runs at once on each GPU (default: as many as free memory holds)")
    g.add_argument("--slots", type=int, help="CPU only: runs at once (default: one per core)")
    g.add_argument("--threads", type=int, help="threads per run (default: 1 on CPU; cores shared out on GPUs)")
    g.add_argument("--max-retries", type=int, default=2, help="retries of a run failing for a transient reason (default 2)")
    g.add_argument("--stall-limit", type=float, metavar="MIN",
                   help="kill and retry a run that reports no progress for this many minutes "
                        "(default: the spec's stall_limit_min, else learnt from the model's step times, at least 10)")
    if executor:
        g.add_argument("--executor", choices=("local", "slurm"),
                       help="where runs execute (default: the spec's executor, else local); slurm reads the spec's [slurm] table")


@dataclass(frozen=True)
class RunnerOptions:
    """How a sweep executes (not what it computes): written into the sweep file, read by the runner."""

    executor: str | None = None        # "local" or "slurm"; None: the spec's
    gpus: list[int] | None = None
    per_gpu: int | None = None
    slots: int | None = None
    threads: int | None = None
    max_retries: int = 2
    slurm: dict = field(default_factory=dict)   # SlurmSettings.to_dict(), when executor is "slurm"
    stall_limit_s: float | None = None          # None: learnt (runner/stall.py)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> RunnerOptions:
        """From a sweep file; keys an other version wrote and this one does not know are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def options_from_args(args: argparse.Namespace) -> RunnerOptions:
    gpus = None
    if getattr(args, "gpus", None):
        try:
            gpus = [int(x) for x in args.gpus.split(",") if x.strip()]
        except ValueError:
            raise StiltsError(f"--gpus {args.gpus!r} is not a list of GPU indices", "e.g. --gpus 0,1") from None
    for name in ("per_gpu", "slots", "threads"):
        v = getattr(args, name, None)
        if v is not None and v < 1:
            raise StiltsError(f"--{name.replace('_', '-')} must be at least 1 (got {v})")
    if getattr(args, "max_retries", 2) < 0:
        raise StiltsError("--max-retries must be 0 or more")
    stall = getattr(args, "stall_limit", None)
    if stall is not None and not stall > 0:
        raise StiltsError(f"--stall-limit must be a positive number of minutes (got {stall})", "e.g. --stall-limit 30")
    return RunnerOptions(executor=getattr(args, "executor", None), gpus=gpus, per_gpu=getattr(args, "per_gpu", None),
                         slots=getattr(args, "slots", None), threads=getattr(args, "threads", None),
                         max_retries=getattr(args, "max_retries", 2),
                         stall_limit_s=None if stall is None else stall * 60)


def slots_from_options(options: RunnerOptions, runs: list[RunConfig]) -> list[Slot]:
    from stilts_tui.models import resolve_model

    shape, batch, seq = None, 32, 128
    if runs:
        try:
            shape = model_shape(resolve_model(runs[0].model))
        except StiltsError:
            shape = None
        from stilts_tui.tasks import get_task

        def sequences(r: RunConfig) -> int:  # a multiple-choice example is one sequence per choice
            try:
                k = get_task(r.task).num_choices or 1
            except StiltsError:
                k = 1
            return r.micro_batch()[0] * k

        batch = max(sequences(r) for r in runs)
        seq = max(r.max_length for r in runs)
    return plan_slots(gpu_ids=options.gpus, per_gpu=options.per_gpu, cpu_slots=options.slots,
                      threads=options.threads, shape=shape, batch=batch, seq=seq)


def with_executor(options: RunnerOptions, spec, check: bool = True) -> RunnerOptions:
    """The options with the executor resolved: --executor over the spec's, the spec's [slurm]
    settings checked, and Slurm itself checked when it is to be used (a clear error here,
    not in the detached runner's log)."""
    from stilts_tui.sweep.slurm_settings import executor_options

    chosen = executor_options(options.executor or getattr(spec, "executor", "local"), getattr(spec, "slurm", {}))
    stall_min = getattr(spec, "stall_limit_min", None)
    if options.stall_limit_s is None and stall_min is not None:
        options = replace(options, stall_limit_s=stall_min * 60)
    if chosen["executor"] == "slurm" and check:
        from stilts_tui.runner.slurm.check import check_slurm
        from stilts_tui.sweep.slurm_settings import SlurmSettings

        check_slurm(SlurmSettings(**chosen["slurm"]))
    return replace(options, executor=chosen["executor"], slurm=chosen.get("slurm", {}))
