"""A spec's plan: its runs as this results file places them, which are finished, what is left,
the time estimate and the disk the sweep needs. `stilts plan`, `stilts run` and the Plan
screen's live count all read this."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.ops.finished import finished_ids, read_records
from stilts_tui.runner.disk_need import DiskNeed, sweep_disk_need
from stilts_tui.runner.estimate import Estimate, plan_estimate
from stilts_tui.runner.options import RunnerOptions, with_executor
from stilts_tui.sweep.placement import runs_for
from stilts_tui.sweep.spec import Spec


@dataclass
class Plan:
    spec: Spec
    db: Path
    runs: list[RunConfig]
    records: list[dict]
    finished: set[str]
    options: RunnerOptions
    notes: list[str] = field(default_factory=list)

    @property
    def todo(self) -> list[RunConfig]:
        return [r for r in self.runs if r.run_id not in self.finished]

    @property
    def done(self) -> int:
        return len(self.runs) - len(self.todo)

    @property
    def nothing_to_run(self) -> bool:
        """Every run finished: a runner would only replace the last sweep's state with an empty one."""
        return bool(self.runs) and not self.todo

    @property
    def kinds(self) -> Counter:
        return Counter("probe" if r.probe else r.kind for r in self.runs)

    @property
    def intermediates(self) -> int:
        return sum(r.kind == "intermediate" for r in self.runs)

    def summary(self) -> str:
        return counts_line(self.runs, self.finished)

    def estimate(self) -> Estimate:
        return plan_estimate(self.todo, self.records, self.options)

    def disk(self) -> DiskNeed:
        return sweep_disk_need(self.runs, self.db, self.finished, self.options)

    def data_problem(self) -> str:
        """A data folder that does not exist: no run could start (an estimate would mislead)."""
        if self.spec.data_dir and not Path(self.spec.data_dir).is_dir():
            return f"data dir {self.spec.data_dir} does not exist: no estimate until it does"
        return ""


def counts_line(runs: list[RunConfig], finished: set[str]) -> str:
    """How many runs, intermediates, already finished and to run: the line `run`, `resume` and
    `demo` print first."""
    left = sum(r.run_id not in finished for r in runs)
    n_int = sum(r.kind == "intermediate" for r in runs)
    return f"{len(runs)} runs ({n_int} intermediate), {len(runs) - left} already finished, {left} to run"


def plan_spec(spec: Spec, db: Path, options: RunnerOptions | None = None, records: list[dict] | None = None,
              check_executor: bool = False) -> Plan:
    """The plan of `spec` on `db`. `records`: the results file's, when the caller has them already
    (the app's snapshot); else read. The executor is resolved without checking the cluster unless
    asked (planning needs no Slurm)."""
    from stilts_tui.sweep.expand import shadowed_settings, study_notes

    runs = runs_for(spec, db)
    records = read_records(db) if records is None else records
    options = with_executor(options or RunnerOptions(), spec, check=check_executor)
    return Plan(spec, db, runs, records, finished_ids(records), options, shadowed_settings(spec) + study_notes(spec))
