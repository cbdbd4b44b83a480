"""Launching a spec: the plan, "nothing to run", the checks before launch, then a detached runner.
The CLI's `stilts run` (detached or `--foreground`) and the Plan screen's ctrl+l go through
`prepare_launch`, so a finished spec starts no runner whichever way it is launched."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stilts_tui.ops.plan import Plan, plan_spec
from stilts_tui.runner.options import RunnerOptions
from stilts_tui.sweep.spec import Spec


@dataclass
class Launch:
    plan: Plan
    spec_path: str | None
    warnings: list[str] = field(default_factory=list)   # what would make runs degenerate: launched all the same

    def nothing_to_run(self) -> str | None:
        """Why no runner starts, when every run of the spec is finished; None otherwise."""
        p = self.plan
        if not p.nothing_to_run:
            return None
        return f"nothing to run: all {len(p.runs)} runs of {p.spec.name} are finished"


def prepare_launch(spec: Spec, db: Path, options: RunnerOptions, spec_path: str | Path | None,
                   check: bool = True, records: list[dict] | None = None) -> Launch:
    """The launch of `spec` on `db`, checked: a StiltsError names every problem that would fail the
    sweep (runner/preflight.py) unless `check` is off. A spec with nothing to run is not checked."""
    plan = plan_spec(spec, db, options, records=records, check_executor=True)
    launch = Launch(plan, str(Path(spec_path).resolve()) if spec_path else None)
    if check and not plan.nothing_to_run:
        from stilts_tui.runner.preflight import preflight

        launch.warnings = preflight(plan.runs, db, plan.options, plan.finished) or []
    return launch


def start(launch: Launch) -> int:
    """Start a detached runner for the launch (refused while another runner works on the file);
    returns its pid. Never called for a launch with nothing to run."""
    from stilts_tui.runner.control import launch as start_runner

    p = launch.plan
    if p.nothing_to_run:
        raise ValueError("a launch with nothing to run starts no runner")
    return start_runner(p.db, p.spec.name, p.runs, p.options, launch.spec_path)
