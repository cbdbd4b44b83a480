"""The operations exist once (stilts_tui/ops): the CLI and the app both go through them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import screen_text, until

from stilts_tui.app.app import StiltsApp
from stilts_tui.errors import StiltsError
from stilts_tui.ops import launch as launch_ops
from stilts_tui.ops.finished import finished_ids
from stilts_tui.ops.launch import prepare_launch
from stilts_tui.ops.plan import plan_spec
from stilts_tui.ops.resume import prepare_resume
from stilts_tui.runner.files import RunnerFiles
from stilts_tui.runner.loop import run_record
from stilts_tui.runner.options import RunnerOptions
from stilts_tui.runner.sweepfile import read_sweep, write_sweep
from stilts_tui.store import Store
from stilts_tui.sweep.naming import slug
from stilts_tui.sweep.spec import parse_spec


def _spec(tmp_path: Path):
    data = tmp_path / "data"
    (data / "RTE").mkdir(parents=True)
    return parse_spec({"name": "ops", "model": "minilm", "data_dir": str(data), "targets": ["rte"],
                       "grid": {"lr": [1e-5, 2e-5], "seed": [1, 2]}})


def _finish(db: Path, runs, n: int) -> None:
    with Store(db, writer=True) as store:
        store.add_runs(run_record(r) for r in runs)
        for r in runs[:n]:
            store.update(r.run_id, status="finished", score=0.5, metric="accuracy")


def test_the_plan_counts_what_is_finished_once(tmp_path):
    spec, db = _spec(tmp_path), tmp_path / "r.json"
    plan = plan_spec(spec, db)
    assert len(plan.runs) == 4 and plan.done == 0 and not plan.nothing_to_run and plan.records == []
    _finish(db, plan.runs, 3)
    plan = plan_spec(spec, db)
    assert plan.done == 3 and [r.run_id for r in plan.todo] == [plan.runs[3].run_id]
    assert plan.finished == finished_ids(Store(db).runs())
    assert plan.summary() == "4 runs (0 intermediate), 3 already finished, 1 to run"
    assert "does not exist" in plan_spec(parse_spec({"model": "minilm", "data_dir": str(tmp_path / "nope"),
                                                     "targets": ["rte"]}), db).data_problem()


def test_a_finished_spec_is_nothing_to_run_and_starts_nothing(tmp_path, monkeypatch):
    spec, db = _spec(tmp_path), tmp_path / "r.json"
    _finish(db, plan_spec(spec, db).runs, 4)
    checked = []
    monkeypatch.setattr("stilts_tui.runner.preflight.preflight", lambda *a: checked.append(a) or [])
    launch = prepare_launch(spec, db, RunnerOptions(), None)
    assert launch.nothing_to_run() == "nothing to run: all 4 runs of ops are finished"
    assert checked == []  # nothing to check either
    with pytest.raises(ValueError):
        launch_ops.start(launch)


def test_resume_with_a_new_stall_limit_writes_a_new_sweep_file(tmp_path):
    spec, db = _spec(tmp_path), tmp_path / "r.json"
    runs = plan_spec(spec, db).runs
    files = RunnerFiles(db)
    first = write_sweep(files, "ops", runs, RunnerOptions(), "/x/spec.toml")
    files.write_state({"status": "stopped", "sweep_file": str(first)})
    same = prepare_resume(db)
    assert same.sweep_file == str(first) and len(same.runs) == 4
    faster = prepare_resume(db, stall_limit_min=5)
    assert faster.sweep_file != str(first) and read_sweep(faster.sweep_file)[2].stall_limit_s == 300
    assert json.loads(Path(faster.sweep_file).read_text())["spec"] == "/x/spec.toml"
    with pytest.raises(StiltsError, match="positive number of minutes"):
        prepare_resume(db, stall_limit_min=0)


def test_one_file_name_rule_for_specs_and_sweeps():
    assert slug("My study: RTE/CoLA") == "My-study-RTE-CoLA"
    assert slug("../..") == "spec" and slug("", fallback="sweep") == "sweep"
    assert len(slug("x" * 200)) == 60


async def test_the_cli_and_the_plan_screen_launch_through_the_same_operation(tmp_path, monkeypatch):
    from stilts_tui.cli import main

    spec_path = tmp_path / "ops.toml"
    (tmp_path / "data" / "RTE").mkdir(parents=True)
    spec_path.write_text(f'name = "ops"\nmodel = "minilm"\ndata_dir = "{tmp_path / "data"}"\ntargets = ["rte"]\n'
                         '[grid]\nlr = [1e-5]\nseed = [1]\n')
    db = tmp_path / "r.json"
    calls = []
    real = launch_ops.prepare_launch

    def spy(spec, db, options, path, check=True, records=None):
        calls.append(Path(path).name)
        return real(spec, db, options, path, check=False, records=records)

    monkeypatch.setattr(launch_ops, "prepare_launch", spy)
    monkeypatch.setattr(launch_ops, "start", lambda launch: 4242)
    assert main(["run", str(spec_path), "--db", str(db)]) == 0
    app = StiltsApp(db, refresh_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        app.screen.load(spec_path)
        await pilot.press("ctrl+l")
        await until(pilot, lambda: any("launched ops" in n.message for n in app._notifications), what="the launch")
        assert "runner pid 4242" in " ".join(n.message for n in app._notifications)
        assert screen_text(app)
    assert calls == ["ops.toml", "ops.toml"]
