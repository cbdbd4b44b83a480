"""A runner for a sweep, set up one way whether it runs detached (`python -m stilts_tui.runner`)
or in the user's terminal (`stilts run --foreground`): the executor the options choose (Slurm, or
slots on this machine), and the runner over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.loop import Runner
from stilts_tui.runner.options import RunnerOptions, slots_from_options
from stilts_tui.runner.slurm.lane import slurm_lane


@dataclass
class SweepRunner:
    runner: Runner
    where: str      # where the runs execute, in words: "Slurm (partition gpu, …)" or "2 slot(s) (cpu, cpu)"


def sweep_runner(db: Path, name: str, runs: list[RunConfig], options: RunnerOptions, sweep_file: str,
                 resume: bool = False, on_event: Callable | None = None, on_run: Callable | None = None,
                 on_notice: Callable[[str], None] | None = None) -> SweepRunner:
    lane = slurm_lane(db, options)
    slots = [] if lane else slots_from_options(options, runs)
    where = f"Slurm ({lane.settings.describe()})" if lane else \
        f"{len(slots)} slot(s) ({', '.join(s.device for s in slots[:4])}{', …' if len(slots) > 4 else ''})"
    runner = Runner(db, runs, slots, max_retries=options.max_retries, resume=resume, name=name, sweep_file=sweep_file,
                    on_event=on_event, on_run=on_run, lane=lane, stall_limit_s=options.stall_limit_s,
                    on_notice=on_notice)
    return SweepRunner(runner, where)
