"""Resuming: the sweep the last runner on a results file ran, continued. The CLI's `stilts resume`
and the app's "resume the sweep" both come here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.runner.control import last_sweep, start_detached
from stilts_tui.runner.files import RunnerFiles
from stilts_tui.runner.options import RunnerOptions
from stilts_tui.runner.sweepfile import read_sweep, sweep_spec_path, write_sweep


@dataclass
class Resume:
    db: Path
    name: str
    runs: list[RunConfig]
    options: RunnerOptions
    sweep_file: str


def prepare_resume(db: Path, stall_limit_min: float | None = None) -> Resume:
    """The last sweep on `db` (refused while a runner works on it), with a new stall limit if
    given: a new sweep file then, so the runner and any later resume read the same options."""
    sweep_file = last_sweep(db)
    name, runs, options = read_sweep(sweep_file)
    if stall_limit_min is not None:
        if not stall_limit_min > 0:
            raise StiltsError(f"--stall-limit must be a positive number of minutes (got {stall_limit_min})")
        options = replace(options, stall_limit_s=stall_limit_min * 60)
        sweep_file = str(write_sweep(RunnerFiles(db), name, runs, options, sweep_spec_path(sweep_file)))
    return Resume(db, name, runs, options, sweep_file)


def start_resume(resume: Resume) -> int:
    """A detached runner continuing the sweep; its pid."""
    return start_detached(resume.db, Path(resume.sweep_file), resume=True)
