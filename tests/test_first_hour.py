"""A researcher's first hour in the app (issue 41), headless (App.run_test + Pilot): screen keys
never type into the Plan screen's fields, unsaved Plan edits are asked about before they are
lost, the Open dialog takes a typed absolute path, the palette holds one help entry."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
from conftest import as_runner, screen_text, until
from textual.widgets import Input

from stilts_tui.app.app import StiltsApp
from stilts_tui.app.dialogs import ConfirmScreen, PathPicker
from stilts_tui.app.plan_screen import PlanScreen
from stilts_tui.app.tick_list import TickList
from stilts_tui.bench.results import write_store


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copytree("experiments", tmp_path / "experiments")
    return tmp_path


def _footer(app) -> list[str]:
    """The key descriptions the footer shows now."""
    return [k.description for k in app.screen.query("FooterKey")]


async def _plan(pilot, app) -> PlanScreen:
    await pilot.press("1")
    await until(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan screen")
    return app.screen


async def test_plan_opens_on_a_list_so_screen_keys_switch_screens(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        plan = await _plan(pilot, app)
        assert isinstance(app.focused, TickList)
        assert "Leave field" not in _footer(app)  # no field entered: nothing to leave
        await pilot.press("2")
        await until(pilot, lambda: app.current_mode == "runs", what="the runs screen")
        await pilot.press("1", "3")
        await until(pilot, lambda: app.current_mode == "results", what="the results screen")
        assert plan.query_one("#plan-name", Input).value == "my-study"
        await pilot.press("1")
        await until(pilot, lambda: app.current_mode == "plan", what="the plan again")
        plan.query_one("#plan-name", Input).focus()
        await until(pilot, lambda: "Leave field" in _footer(app), what="the footer's way out")  # inside a field


async def test_after_the_open_dialog_keys_go_to_the_screen_not_the_field(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        plan.query_one("#plan-name", Input).focus()
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, PathPicker), what="the picker")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is plan, what="back on the plan")
        await pilot.press("2")
        await until(pilot, lambda: app.current_mode == "runs", what="2 switched screens")
        assert plan.query_one("#plan-name", Input).value == "my-study"


async def test_unsaved_edits_ask_before_open_and_quit(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        assert not plan.dirty
        await pilot.press("ctrl+o")  # nothing edited: straight to the picker
        await until(pilot, lambda: isinstance(app.screen, PathPicker), what="the picker")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is plan, what="back on the plan")
        plan.query_one("#plan-name", Input).value = "edited"
        await pilot.pause()
        assert plan.dirty
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard changes?")
        assert "Discard changes?" in screen_text(app)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is plan, what="kept")
        assert plan.query_one("#plan-name", Input).value == "edited"
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard changes? on quit")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is plan, what="not quit")
        assert app.is_running
        await pilot.press("2", "q")  # from another screen too: the Plan's edits are still unsaved
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asked from the runs screen")
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, what="quit after discarding")


async def test_saved_edits_quit_without_asking(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        plan.query_one("#plan-name", Input).value = "kept study"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: (workspace / "experiments" / "kept-study.toml").exists(), what="saved")
        assert not plan.dirty
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="quit at once")


async def test_the_open_dialog_takes_an_absolute_path_typed_after_its_folder(workspace, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "s.toml"
    shutil.copy(workspace / "experiments" / "demo.toml", elsewhere)
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, PathPicker), what="the picker")
        box = app.screen.query_one("#picker-path", Input)
        assert box.value.endswith("experiments/")
        box.value += str(elsewhere)  # typed after the pre-filled folder
        await pilot.press("enter")
        await until(pilot, lambda: plan.opened == elsewhere.resolve(), what="the typed absolute path opened")


async def test_the_palette_has_one_help_and_no_textual_noise(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Keys" not in titles and "Maximize" not in titles
        assert sum("key" in t.lower() or "help" in t.lower() for t in titles) == 1


def _degenerate_study(tmp_path: Path) -> tuple[Path, str, list[str]]:
    """A CoLA intermediate that finished at MCC 0 (its degenerate threshold), two RTE targets
    trained from it, and the `none` baseline's RTE runs."""
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.loop import run_record

    def finished(cfg: RunConfig, score: float, metric: str, threshold: float) -> dict:
        cfg.run_id = cfg.compute_id()
        return run_record(cfg) | {"status": "finished", "score": score, "metric": metric, "attempts": 1,
                                  "started_at": 0.0, "finished_at": 1.0, "wall_s": 5.0,
                                  "metrics": {"score": score, "metric": metric, "baselines": {
                                      "random": 0.5, "majority": threshold, "degenerate_threshold": threshold}}}

    inter = finished(RunConfig(kind="intermediate", model="m", task="cola", intermediate="cola", lr=1e-5, seed=1,
                               spec_name="t", output_dir=str(tmp_path / "cola")), 0.0, "mcc", 0.0)
    records = [inter]
    targets = []
    for seed, score in ((1, 0.55), (2, 0.57)):
        rec = finished(RunConfig(kind="target", model="m", task="rte", intermediate="cola", lr=1e-5, seed=seed,
                                 spec_name="t", init_from=inter["run_id"], output_dir=str(tmp_path / f"t{seed}")),
                       score, "accuracy", 0.527)
        records.append(rec)
        targets.append(rec["run_id"])
    for seed, score in ((1, 0.60), (2, 0.62)):
        records.append(finished(RunConfig(kind="target", model="m", task="rte", intermediate="none", lr=1e-5, seed=seed,
                                          spec_name="t", output_dir=str(tmp_path / f"n{seed}")),
                                score, "accuracy", 0.527))
    db = tmp_path / "results.json"
    write_store(db, records)
    return db, inter["run_id"], targets


async def test_a_degenerate_intermediate_is_flagged_with_the_targets_that_start_from_it(tmp_path):
    from stilts_tui.app.detail_screen import RunDetailScreen
    from stilts_tui.app.runs_table import RunsTable
    from stilts_tui.runner.status import render_status, sweep_status

    db, inter, targets = _degenerate_study(tmp_path)
    app = StiltsApp(db, refresh_s=60, root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and "degenerate intermediate: cola" in screen_text(app),
                    what="the runs screen's warning")
        table = app.screen.query_one(RunsTable)
        flagged = {row["run_id"] for row in table.rows if row["pair"].startswith("⚠")}
        assert flagged == {inter, *targets}  # the baseline's runs are not flagged
        app.open_run(targets[0])
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen), what="the detail")
        await until(pilot, lambda: "starts from a degenerate intermediate" in screen_text(app), what="the detail's flag")
        assert f"run {inter} (cola), mcc 0.0 ≤ 0.0, the degenerate threshold" in screen_text(app)
        await pilot.press("escape")
        app.open_run(inter)
        await until(pilot, lambda: "degenerate intermediate: mcc 0.0" in screen_text(app) and
                    "2 target run(s) start from it" in screen_text(app), what="the intermediate's own flag")
        await pilot.press("escape", "3")
        await until(pilot, lambda: "cola ⚠" in screen_text(app), what="the pair table's mark")
        assert "2 run(s) of cola → rte start from a degenerate cola run" in screen_text(app)
        from stilts_tui.app.pair_screen import PairScreen

        app.push_screen(PairScreen(app.records(), "rte", "cola", "none"))
        await until(pilot, lambda: isinstance(app.screen, PairScreen), what="the pair opened")
        await pilot.pause()
        assert "2 run(s) here start from a degenerate intermediate" in screen_text(app)
    status = render_status(sweep_status(db))
    assert f"⚠ run {inter}: degenerate intermediate" in status and targets[0] in status


# ------------------------------------------------------------------ the CLI says the same (item 7)


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    from stilts_tui.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plan_warns_once_of_a_missing_data_folder_saying_what_to_fetch(workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    code, out, _ = _cli(capsys, "plan", "experiments/table2.toml", "--db", str(workspace / "r.json"))
    assert code == 0
    warnings = [ln for ln in out.splitlines() if "warning:" in ln and "data dir" in ln]
    assert len(warnings) == 1, out
    assert f"data dir {workspace / 'data'} does not exist" in warnings[0]
    assert "RTE/" in warnings[0] and "hellaswag/" in warnings[0] and '"Tasks and data"' in warnings[0]
    (workspace / "data").mkdir()
    _, out, _ = _cli(capsys, "plan", "experiments/table2.toml", "--db", str(workspace / "r.json"))
    assert "data dir" not in out


def test_results_names_a_filter_that_matches_nothing_and_a_file_that_is_not_results(tmp_path, capsys):
    from stilts_tui.bench.results import synthetic_records
    from stilts_tui.runner.files import RunnerFiles

    db = tmp_path / "results.json"
    write_store(db, synthetic_records(8))
    files = RunnerFiles(db)
    files.write_state({"status": "finished", "pid": 1, "name": "x"})
    code, _, err = _cli(capsys, "results", "--db", str(db), "--filter", "lr=abc")
    assert code == 2 and "no run matches --filter lr=abc (8 runs in" in err and "lr: 1e-05" in err
    assert "no target runs" not in err
    code, _, err = _cli(capsys, "results", "--db", str(files.state))
    assert code == 2 and "is not a results file: it is the runner's state file" in err and f"--db {db}" in err
    sweep_file = files.sweeps / "x.json"
    sweep_file.parent.mkdir()
    sweep_file.write_text('{"name": "x", "runs": []}')
    code, _, err = _cli(capsys, "results", "--db", str(sweep_file))
    assert code == 2 and "is not a results file: it is a sweep file" in err
    code, out, _ = _cli(capsys, "results", "--db", str(db), "--filter", "lr=1e-5")
    assert code == 0 and "rte" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        _cli(capsys, "--version")
    assert done.value.code == 0 and re.match(r"stilts \d+\.\d+", capsys.readouterr().out)


def test_table3_keeps_the_sign_and_markdown_left_aligns_text():
    from stilts_tui.analysis.export import to_markdown, to_terminal
    from stilts_tui.analysis.stats import pair_stats
    from stilts_tui.analysis.tables import pair_table, table3

    def rec(inter: str, seed: int, score: float) -> dict:
        cfg = {"kind": "target", "task": "rte", "intermediate": inter, "lr": 1e-5, "seed": seed}
        return {"run_id": f"{inter}{seed}", "kind": "target", "intermediate": inter, "target": "rte", "status": "finished",
                "score": score, "metric": "accuracy", "lr": 1e-5, "seed": seed, "config": cfg}

    runs = [rec("none", s, 0.60 + 0.01 * s) for s in range(3)] + [rec("cola", s, 0.604 + 0.01 * s) for s in range(3)]
    stats = pair_stats(runs, resamples=0)
    t3 = table3(stats)
    assert "+0.4" in to_markdown(t3) and "+0.4" in to_terminal(t3, width=120) and "+0.4" in to_terminal(t3, width=20)
    md = to_markdown(pair_table(stats, 0, 0)).splitlines()
    header = [c.strip() for c in md[2].strip("|").split("|")]
    align = [c.strip() for c in md[3].strip("|").split("|")]
    for name in ("target", "intermediate", "metric", "mean 95% CI"):
        assert align[header.index(name)] == "---", name  # text: left
    for name in ("n", "mean", "Δ best"):
        assert align[header.index(name)] == "---:", name  # numbers: right


# ------------------------------------------------------------------ the Plan screen (item 6)


async def test_task_fields_write_the_toml_box_and_read_an_opened_spec(workspace):
    from textual.widgets import Select, TextArea

    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        assert plan.query_one("#plan-task-pick", Select).value == "rte"
        box = plan.query_one("#plan-task-train_size", Input)
        box.focus()
        await pilot.press(*"500")
        await until(pilot, lambda: "[tasks.rte]" in plan.query_one("#plan-toml", TextArea).text, what="the TOML box")
        assert "train_size = 500" in plan.query_one("#plan-toml", TextArea).text
        assert plan.raw_spec()["tasks"]["rte"]["train_size"] == 500
        await pilot.press("backspace", "backspace", "backspace")
        await until(pilot, lambda: "tasks" not in plan.query_one("#plan-toml", TextArea).text, what="removed again")
        # an opened spec's [tasks.X] values show in the fields
        await pilot.press("escape")
        plan.query_one("#plan-open", Input).value = "experiments/figure3.toml"
        plan.query_one("#plan-open", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: plan.opened is not None, what="figure3 opened")
        tasks = tomllib.loads((workspace / "experiments" / "figure3.toml").read_text())["tasks"]
        name, table = next((n, t) for n, t in tasks.items() if "train_size" in t or "epochs" in t)
        plan.query_one("#plan-task-pick", Select).value = name
        await pilot.pause()
        key = "train_size" if "train_size" in table else "epochs"
        await until(pilot, lambda: plan.query_one(f"#plan-task-{key}", Input).value != "", what="the field filled")
        assert plan.query_one(f"#plan-task-{key}", Input).value.replace(" ", "") == \
            ",".join(map(str, table[key] if isinstance(table[key], list) else [table[key]]))
        assert not plan.dirty  # filling the fields from the spec is no edit


async def test_opening_says_counting_while_the_runs_are_counted(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        await until(pilot, lambda: " runs" in screen_text(app), what="the first count")
        plan.load(workspace / "experiments" / "pruksachatkun2020.toml")
        assert "counting the runs of" in str(plan.query_one("#plan-status").render())
        await until(pilot, lambda: "1293 runs" in screen_text(app), what="the study's count")


async def test_plan_opens_on_the_spec_last_launched_on_the_results_file(workspace):
    from stilts_tui.runner.files import RunnerFiles
    from stilts_tui.runner.options import RunnerOptions
    from stilts_tui.runner.sweepfile import write_sweep

    db = workspace / "results.json"
    spec = workspace / "experiments" / "table3.toml"
    files = RunnerFiles(db)
    sweep = write_sweep(files, "table3", [], RunnerOptions(), str(spec))
    files.write_state({"status": "finished", "pid": 1, "name": "table3", "sweep_file": str(sweep)})
    app = StiltsApp(db, refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        assert plan.opened == spec.resolve() and plan.query_one("#plan-path", Input).value == "experiments/table3.toml"
        assert not plan.dirty and isinstance(app.focused, TickList)
        assert any("last launched" in n.message for n in app._notifications)
    spec.unlink()  # gone since: the defaults
    app = StiltsApp(db, refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        assert plan.opened is None and plan.query_one("#plan-name", Input).value == "my-study"


async def test_a_refused_launch_speaks_of_the_form_not_the_cli(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        plan.query_one("#plan-model", Input).value = "minilm"
        plan.query_one("#plan-data", Input).value = "no/such/folder"
        plan.query_one("#plan-path", Input).value = str(workspace / "refused.toml")
        await pilot.press("ctrl+l")
        await until(pilot, lambda: any(n.severity == "error" for n in app._notifications), timeout=60,
                    what="the refusal")
        said = "\n".join(n.message for n in app._notifications if n.severity == "error")
        assert "data dir field" in said and "--data-dir" not in said and "--no-preflight" not in said, said


# ------------------------------------------------------------------ what researchers look for (item 8)


def test_results_runs_sorted_by_score_or_any_setting_and_cut_to_the_top(tmp_path, capsys):
    import csv
    import io

    from stilts_tui.bench.results import synthetic_records

    records = synthetic_records(30)
    db = tmp_path / "results.json"
    write_store(db, records)
    code, out, _ = _cli(capsys, "results", "--db", str(db), "--runs", "--sort", "score", "--top", "10", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    best = sorted((r["score"] for r in records), reverse=True)[:10]
    assert code == 0 and [float(r["score"]) for r in rows] == pytest.approx(best)
    _, out, _ = _cli(capsys, "results", "--db", str(db), "--runs", "--sort=-lr", "--format", "csv")
    lrs = [float(r["lr"]) for r in csv.DictReader(io.StringIO(out))]
    assert lrs == sorted(lrs, reverse=True) and len(lrs) == 30
    _, out, _ = _cli(capsys, "results", "--db", str(db), "--runs", "--sort", "warmup_ratio")
    assert "30 runs" in out
    code, _, err = _cli(capsys, "results", "--db", str(db), "--runs", "--sort", "scor")
    assert code == 2 and "did you mean 'score'" in err
    code, _, err = _cli(capsys, "results", "--db", str(db), "--sort", "score")
    assert code == 2 and "add --runs" in err


async def test_the_runs_table_sorts_and_filters_by_score_or_any_setting_and_names_hidden_columns(tmp_path):
    from stilts_tui.app.runs_table import RunsTable
    from stilts_tui.bench.results import synthetic_records

    records = synthetic_records(30)
    db = tmp_path / "results.json"
    write_store(db, records)
    app = StiltsApp(db, refresh_s=60, root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and "30 shown" in screen_text(app), what="the runs")
        assert "hidden at this width: run" in screen_text(app)
        await pilot.press("slash", *"score>0.7 sort=-lr", "enter")
        table = app.screen.query_one(RunsTable)
        want = sorted((r for r in records if r["score"] > 0.7), key=lambda r: -r["lr"])
        await until(pilot, lambda: len(table.rows) == len(want), what="the filtered rows")
        assert [float(row["lr"]) for row in table.rows] == [r["lr"] for r in want]
        assert "sorted by -lr" in screen_text(app)
    app = StiltsApp(db, refresh_s=60, root=tmp_path)
    async with app.run_test(size=(200, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and "30 shown" in screen_text(app), what="the runs, wide")
        assert "hidden at this width" not in screen_text(app)  # every column fits


async def test_space_marks_and_the_help_says_it_moves(tmp_path):
    from stilts_tui.app.help_screen import keys_text
    from stilts_tui.app.runs_table import RunsTable
    from stilts_tui.bench.results import synthetic_records

    db = tmp_path / "results.json"
    write_store(db, synthetic_records(5))
    app = StiltsApp(db, refresh_s=60, root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(app.screen.query_one(RunsTable).rows) == 5, what="the runs")
        table = app.screen.query_one(RunsTable)
        first = table.current["run_id"]
        await pilot.press("space")
        assert table.marked == [first] and table.cursor == 1
        assert "space marks it and moves down a row" in keys_text(app)


async def test_the_app_says_what_a_sweep_did_when_its_runner_ends(tmp_path):
    import os
    import time

    from stilts_tui.bench.results import synthetic_records
    from stilts_tui.runner.files import RunnerFiles

    records = synthetic_records(6)
    records[0].update(status="failed", score=None, reason="crash")
    db = tmp_path / "results.json"
    write_store(db, records)
    files = RunnerFiles(db)
    now = time.time()
    state = {"status": "running", "pid": os.getpid(), "started_at": now - 3725, "name": "t",
             "run_ids": [r["run_id"] for r in records]}
    files.write_state(state)
    app = StiltsApp(db, refresh_s=0.2, root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        with as_runner(db):  # this process stands in for the runner, then ends as one
            await until(pilot, lambda: app.snapshot is not None and app.snapshot.runner_running, what="the runner seen")
            files.write_state(state | {"status": "finished", "ended_at": now})
        await until(pilot, lambda: any("sweep t ended after 1h02m" in n.message for n in app._notifications),
                    what="the summary")
        said = next(n.message for n in app._notifications if "ended after" in n.message)
        assert "5 finished, 1 failed" in said and f"stilts results --db {db}" in said and "status=failed" in said


def test_plan_gives_a_rough_time_from_the_benchmark_before_any_run_finished(workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    (workspace / "data").mkdir()
    _, out, _ = _cli(capsys, "plan", "experiments/table2.toml", "--db", str(workspace / "r.json"))
    line = next(ln for ln in out.splitlines() if "rough" in ln)
    assert "not measured here" in line and "H100" in line and "BENCHMARKS.md" in line
    _, out, _ = _cli(capsys, "plan", "experiments/table2.toml", "--db", str(workspace / "r.json"), "--json")
    import json

    assert json.loads(out)["rough_wall_hours"] > 0


# ------------------------------------------------------------------ figures (item 5)


def _one_by_two(delta: float) -> list[dict]:
    """One target (rte), the baseline and one intermediate whose runs are `delta` (0-1) apart."""
    def rec(inter: str, seed: int, score: float) -> dict:
        cfg = {"kind": "target", "task": "rte", "intermediate": inter, "lr": 1e-5, "seed": seed}
        return {"run_id": f"{inter}{seed}", "kind": "target", "intermediate": inter, "target": "rte", "status": "finished",
                "score": score, "metric": "accuracy", "lr": 1e-5, "seed": seed, "config": cfg,
                "metrics": {"baselines": {"random": 0.5, "majority": 0.527, "degenerate_threshold": 0.527}}}

    return [rec("none", s, 0.60 + 0.01 * s) for s in range(4)] + [rec("cola", s, 0.60 + delta + 0.01 * s) for s in range(4)]


def test_the_png_of_a_1x2_matrix_keeps_its_title_and_its_legend_off_the_cells(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from stilts_tui.analysis.heatmap import figure_of, to_figure
    from stilts_tui.analysis.matrix import build_matrix
    from stilts_tui.analysis.matrix_views import matrix_heat

    heat = matrix_heat(build_matrix(_one_by_two(-0.003), ("mean",)))
    assert len(heat.rows) == 2 and len(heat.col_labels) == 2  # rte and its average; none and cola
    fig = figure_of(heat)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    title = next(t for t in fig.texts if t.get_gid() == "title")
    legend = next(t for t in fig.texts if t.get_gid() == "legend")
    grid = fig.axes[0].get_tightbbox(renderer)  # the cells and their labels
    for text in (title, legend):
        box = text.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, text.get_text()
        assert not box.overlaps(grid), text.get_text()
    assert "Transfer matrix against none" in title.get_text()
    plt.close(fig)
    to_figure(heat, tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_colour_scale_follows_the_data_with_a_floor_or_the_stated_scale():
    from stilts_tui.analysis.matrix import build_matrix
    from stilts_tui.analysis.matrix_views import matrix_heat

    m = build_matrix(_one_by_two(-0.003), ("mean",))
    cell = matrix_heat(m).rows[0][1]
    assert cell.text.startswith("-0.3") and cell.value == pytest.approx(-0.3)  # pale: the 1-point floor
    assert matrix_heat(m, 0.2).rows[0][1].value == pytest.approx(-1.5)  # --scale 0.2: beyond the end, full red
    big = build_matrix(_one_by_two(-0.04), ("mean",))
    assert matrix_heat(big).rows[0][1].value == pytest.approx(-0.8)  # the largest |Δ| 4.0 → scale 5
    assert any("at full strength from |Δ| 5" in line for line in matrix_heat(big).legend)


def test_violins_draw_the_majority_line_and_use_the_room_given():
    from stilts_tui.analysis.report import violins_for

    runs = _one_by_two(0.02)
    text = violins_for(runs, "rte", width=118, height=24, max_column=39)
    assert "══ majority label 52.7 (at or below: degenerate)" in text and "┈┈ random guess 50.0" in text
    assert any("═" in ln for ln in text.splitlines() if "│" in ln or "┤" in ln)  # drawn across the plot
    assert max(map(len, text.splitlines())) >= 78 and len(text.splitlines()) >= 26  # was 56 × 20
    narrow = violins_for(runs, "rte")
    assert max(map(len, narrow.splitlines())) <= 80


async def test_violins_fill_a_120x40_screen_and_export_as_a_figure(tmp_path):
    pytest.importorskip("matplotlib")
    db = tmp_path / "results.json"
    write_store(db, _one_by_two(0.02))
    app = StiltsApp(db, refresh_s=60, root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "dev scores" in screen_text(app), what="the results")
        app.screen.show_view("violins")
        await until(pilot, lambda: "majority label" in screen_text(app), what="the violins")
        chart = str(app.screen.query_one("#results-view").render())
        assert max(map(len, chart.splitlines())) >= 78 and len(chart.splitlines()) >= 28
        await pilot.press("e")
        await until(pilot, lambda: app.screen.id == "export", what="the export prompt")
        box = app.screen.query_one("#export-path", Input)
        assert box.value.endswith(".png")
        box.value = str(tmp_path / "violins.png")
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / "violins.png").exists(), what="the figure written")
        assert any("figure of 2 violins" in n.message for n in app._notifications)


async def test_the_export_prompt_wraps_between_words_inside_its_box(tmp_path):
    from textual.widgets import Label

    db = tmp_path / "results.json"
    write_store(db, _one_by_two(0.02))
    app = StiltsApp(db, refresh_s=60, root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "dev scores" in screen_text(app), what="the results")
        app.screen.show_view("violins")
        await pilot.press("e")
        await until(pilot, lambda: app.screen.id == "export", what="the export prompt")
        await pilot.pause()
        prompt = app.screen.query_one("#export-prompt", Label)
        box = app.screen.query_one("#export-box")
        # inside the box and over several lines (Textual wraps a sized Label between words), not one cut line
        assert prompt.region.right <= box.content_region.right and prompt.size.height >= 2


async def test_a_results_filter_that_matches_nothing_says_so(tmp_path):
    db = tmp_path / "results.json"
    write_store(db, _one_by_two(0.02))
    app = StiltsApp(db, refresh_s=60, root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "dev scores" in screen_text(app), what="the results")
        await pilot.press("slash", *"seed=99", "enter")
        await until(pilot, lambda: "no run matches the filter seed=99" in screen_text(app), what="the empty filter")
        assert "yet" not in str(app.screen.query_one("#results-view").render())
