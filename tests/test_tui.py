"""The Textual app, headless (App.run_test + Pilot): every screen, and plan → launch → watch →
results against a real runner and tiny models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import as_runner, one_class_spec, screen_text, until, wait_for

from stilts_tui.app.app import StiltsApp
from stilts_tui.app.plan_screen import PlanScreen
from stilts_tui.app.runs_table import RunsTable
from stilts_tui.bench.results import synthetic_records, write_store
from stilts_tui.store import Store


@pytest.fixture(scope="module")
def store_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("tui") / "results.json"
    write_store(db, synthetic_records(1008))
    return db


async def test_runs_screen_lists_sorts_filters_and_opens_a_run(store_db):
    app = StiltsApp(store_db, refresh_s=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(RunsTable)
        await until(pilot, lambda: len(table.rows) == 1008, what="rows")
        assert "finished 1008" in screen_text(app)
        await pilot.press("o")  # sort by status
        assert app.screen.sort_key == "status"
        await pilot.press("slash")
        await pilot.press(*"lr=1e-05 rte")
        await pilot.press("enter")
        await until(pilot, lambda: len(table.rows) == 1008 // 3 // 8, what="filtered rows")
        assert all(r["pair"].endswith("rte") and r["lr"] == "1e-05" for r in table.rows)
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert app.screen.id == "detail" and '"lr": 1e-05' in screen_text(app)
        await pilot.press("escape")
        assert app.screen.id == "runs"


async def test_results_screen_views_and_export(store_db, tmp_path):
    app = StiltsApp(store_db, refresh_s=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "dev scores per (intermediate, target)" in screen_text(app), what="pair table")
        await pilot.press("v")
        await until(pilot, lambda: "random guess" in screen_text(app), what="violins")
        await pilot.press("v", "v", "v", "v", "v")  # violins -> matrix -> correlation -> ranking -> table2 -> table3
        await until(pilot, lambda: "Table 3" in screen_text(app), what="table 3")
        out = tmp_path / "t3.md"
        await pilot.press("e")
        await pilot.pause()
        box = app.screen.query_one("#export-path")
        box.value = os.path.relpath(out)  # typed relative: said in full
        await pilot.press("enter")
        await until(pilot, out.is_file, what="export")
        assert "**Table 3" in out.read_text() and "| hellaswag |" in out.read_text()
        assert any(f"wrote {out} (markdown)" in n.message for n in app._notifications)
        await pilot.press("f1")
        assert type(app.screen).__name__ == "HelpScreen"
        assert "runs.stop" not in screen_text(app) and "Stop run" in screen_text(app)


@pytest.mark.parametrize("width, together", [(120, True), (110, True), (109, False), (80, False)])
async def test_results_pairs_view_shows_the_targets_violins_on_a_wide_terminal(store_db, width, together):
    """At 110 columns or more the pair table and the selected target's violins are one view;
    narrower, the violins are a view of their own (t switches to it)."""
    app = StiltsApp(store_db, refresh_s=60)
    async with app.run_test(size=(width, 40)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "dev scores per (intermediate, target)" in screen_text(app), what="pair table")
        assert app.screen.view == "pairs"
        if together:
            first = app.screen.target
            await until(pilot, lambda: f"{first}: dev" in screen_text(app), what="the target's violins below the table")
            await pilot.press("t")  # another target: still both, the violins of the new target
            target = app.screen.target
            assert target != first
            await until(pilot, lambda: f"{target}: dev" in screen_text(app), what="the next target's violins")
            assert app.screen.view == "pairs" and "dev scores per" in screen_text(app)
        else:
            await pilot.pause(0.5)
            assert "random guess" not in screen_text(app)
            await pilot.press("t")
            await until(pilot, lambda: "random guess" in screen_text(app), what="violins view")
            assert app.screen.view == "violins"


async def test_plan_screen_counts_runs_live(store_db, tmp_path):
    app = StiltsApp(store_db, refresh_s=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        plan.load(Path("experiments/figure2.toml").resolve())
        await until(pilot, lambda: "1155 runs" in screen_text(app), what="figure 2 count")
        plan.query_one("#plan-grid-seed").value = "12"
        await until(pilot, lambda: "579 runs" in screen_text(app), what="one seed")
        plan.query_one("#plan-grid-lr").value = "1e-5, x"
        await until(pilot, lambda: "'x' is not a number" in screen_text(app), what="error")
        plan.query_one("#plan-grid-lr").value = "1e-5"
        plan.query_one("#plan-path").value = str(tmp_path / "mine.toml")
        await pilot.press("ctrl+s")
        await until(pilot, (tmp_path / "mine.toml").is_file, what="saved spec")
        from stilts_tui.sweep.expand import expand
        from stilts_tui.sweep.spec import load_spec

        assert len(expand(load_spec(tmp_path / "mine.toml"), tmp_path)) == 3 + 32 * 6  # 1 lr x 3 bs x 2 warmup x 1 seed


async def test_plan_screen_warns_before_launch_when_the_disk_is_too_small(store_db, monkeypatch):
    monkeypatch.setattr("stilts_tui.runner.disk_need.free_bytes", lambda _path: 2 * 2**30)  # 2 GB free
    app = StiltsApp(store_db, refresh_s=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        app.screen.load(Path("experiments/figure2.toml").resolve())
        # three RoBERTa-large intermediate checkpoints do not fit in 2 GB
        await until(pilot, lambda: "3 checkpoint(s) x 1.3 GB" in screen_text(app), what="figure 2's disk need")
        assert "not enough disk" in screen_text(app) and "2.0 GB free" in screen_text(app)


async def test_plan_screen_sends_the_study_to_slurm_or_says_why_it_cannot(store_db, tmp_path, monkeypatch):
    import tomllib

    from textual.widgets import Input, Select

    app = StiltsApp(store_db, refresh_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        plan = app.screen
        partition = plan.query_one("#plan-partition", Input)
        assert plan.query_one("#plan-executor", Select).value == "local" and partition.disabled
        plan.query_one("#plan-executor", Select).value = "slurm"
        await until(pilot, lambda: not partition.disabled, what="partition enabled")
        partition.value = "gpu"
        plan.query_one("#plan-path", Input).value = str(tmp_path / "cluster.toml")
        await pilot.press("ctrl+s")
        await until(pilot, (tmp_path / "cluster.toml").is_file, what="saved spec")
        raw = tomllib.loads((tmp_path / "cluster.toml").read_text())
        assert raw["executor"] == "slurm" and raw["slurm"] == {"partition": "gpu"}
        plan.load(tmp_path / "cluster.toml")  # opened again, the form says the same
        assert plan.query_one("#plan-executor", Select).value == "slurm" and partition.value == "gpu"
        monkeypatch.setenv("PATH", str(tmp_path))  # no Slurm here: launching must say so, not start a runner
        await pilot.press("ctrl+l")
        await until(pilot, lambda: any("Slurm is not reachable" in n.message for n in app._notifications),
                    what="the error")
        assert not (store_db.parent / "results.runner.json").exists()
        plan.query_one("#plan-executor", Select).value = "local"
        await pilot.press("ctrl+s")
        # the opened spec named its executor: it still does, now local
        await until(pilot, lambda: tomllib.loads((tmp_path / "cluster.toml").read_text())["executor"] == "local",
                    what="a local spec again")
        assert "slurm" not in tomllib.loads((tmp_path / "cluster.toml").read_text())


async def test_plan_launch_watch_results_with_a_real_runner(tiny_models, train_data, tmp_path):
    db = tmp_path / "sweep" / "results.json"
    app = StiltsApp(db, refresh_s=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        plan = app.screen
        plan.query_one("#plan-name").value = "tui-flow"
        plan.query_one("#plan-model").value = str(tiny_models["roberta"])
        plan.query_one("#plan-data").value = str(train_data)
        for key, value in (("lr", "1e-3"), ("batch_size", "8"), ("warmup_ratio", "0.0"), ("seed", "1, 2")):
            plan.query_one(f"#plan-grid-{key}").value = value
        plan.query_one("#plan-toml").text = "[tasks.rte]\nepochs = 1\nmax_length = 32\n"
        plan.query_one("#plan-path").value = str(tmp_path / "flow.toml")
        await until(pilot, lambda: "2 runs" in screen_text(app), what="count")
        await pilot.press("ctrl+l")
        await until(pilot, lambda: app.screen.id == "runs", timeout=60, what="launch")
        table = app.screen.query_one(RunsTable)
        await until(pilot, lambda: len(table.rows) == 2, what="runs listed")
        assert any("launched tui-flow: 2 of 2 runs to run" in n.message for n in app._notifications)
        await until(pilot, lambda: (app.snapshot.counts.get("finished") == 2), timeout=120, what="runs finished")
        await pilot.press("3")
        await until(pilot, lambda: "rte" in screen_text(app) and "dev scores" in screen_text(app), what="results")
        # launched again with every run finished: said, and no runner starts to do nothing
        await until(pilot, lambda: json.loads((db.parent / "results.runner.json").read_text())["status"] == "finished",
                    timeout=60, what="the runner to finish")
        state = (db.parent / "results.runner.json").read_text()
        await pilot.press("1")
        await pilot.press("ctrl+l")
        await until(pilot, lambda: any("nothing to run: all 2 runs of tui-flow are finished" in n.message
                                       for n in app._notifications), what="nothing to run")
        assert (db.parent / "results.runner.json").read_text() == state and app.screen.id == "plan"
    # The app has quit; the runner it launched ends on its own.
    wait_for(lambda: json.loads((db.parent / "results.runner.json").read_text())["status"] == "finished", 60,
             "the runner to finish")


async def test_a_refresh_landing_while_a_screen_is_composed_waits_for_it(store_db):
    """The data thread's snapshot can arrive between switching mode and the new screen's
    widgets existing; it must not crash the app, and the screen must still show it."""
    app = StiltsApp(store_db, refresh_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None, what="first snapshot")
        switching = app.switch_mode("results")  # not awaited: the screen is not composed yet
        app._apply(app.snapshot, [])
        await switching
        await until(pilot, lambda: "random guess" in screen_text(app) or "rte" in screen_text(app), what="results")
        assert app.screen.id == "results" and app.screen.ready


async def test_run_and_task_text_is_shown_literally_not_read_as_markup(tmp_path):
    """An intermediate's pair is shown as `[demo_realfake]` and a failure message or stderr line
    holding `[/something]` is shown as written: neither vanishes nor raises a markup error."""
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.loop import run_record

    inter = RunConfig(kind="intermediate", model="tiny-bert", task="demo_realfake", spec_name="t")
    inter.run_id = inter.compute_id()
    failed = RunConfig(kind="target", model="tiny-bert", task="[/b]rte", intermediate="[red]x", spec_name="t")
    failed.run_id = failed.compute_id()
    records = [run_record(inter) | {"status": "finished", "score": 0.9, "metric": "accuracy", "attempts": 1},
               run_record(failed) | {"status": "failed", "reason": "crash", "attempts": 1,
                                     "message": "bad value [/something] in [b]x",
                                     "stderr_tail": ["[/bold] oops", "ValueError: [/]"]}]
    db = tmp_path / "results.json"
    write_store(db, records)
    app = StiltsApp(db, refresh_s=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(RunsTable)
        await until(pilot, lambda: len(table.rows) == 2, what="rows")
        assert any(r["pair"] == "[demo_realfake]" for r in table.rows)
        for run_id, expected in ((inter.run_id, ["[demo_realfake]"]),
                                 (failed.run_id, ["[red]x → [/b]rte", "bad value [/something] in [b]x",
                                                  "[/bold] oops", "ValueError: [/]"])):
            app.open_run(run_id)
            await until(pilot, lambda: app.screen.id == "detail" and "config:" in screen_text(app), what="detail")
            text = screen_text(app)
            for piece in expected:
                assert piece in text, piece
            await pilot.press("escape")
            await until(pilot, lambda: app.screen.id == "runs", what="runs screen")
        await pilot.press("3")  # results: tables hold task names as literal text
        await until(pilot, lambda: app.screen.id == "results" and "[red]x" in screen_text(app), what="results")


async def test_matrix_view_walks_cells_opens_a_pair_and_exports_a_figure(tmp_path):
    from stilts_tui.app.study_grid import StudyGrid
    from stilts_tui.bench.results import study_records

    db = tmp_path / "study.json"
    records = study_records(12 * 35 * 3)
    write_store(db, records)
    app = StiltsApp(db, refresh_s=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "dev scores per" in screen_text(app), what="pair table")
        await pilot.press("v", "v")
        grid = app.screen.query_one(StudyGrid)
        await until(pilot, lambda: grid.row_count == 35 + 3, what="matrix rows (35 + averages + losses)")
        assert len(grid.columns) == 1 + 12 and app.screen.focused is grid
        # the cursor starts on the baseline's column; right moves onto the first intermediate
        await pilot.press("right", "down")
        await until(pilot, lambda: "cb × ccg — Δ mean" in screen_text(app), what="cell description")
        assert "enter: violins and runs" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.id == "pair", what="pair screen")
        runs = app.screen.query_one("#pair-runs")
        await until(pilot, lambda: runs.row_count == 6, what="the pair's runs (3 restarts each side)")
        assert "ccg → cb, against none" in screen_text(app)
        await pilot.press("enter")                     # a run of the pair opens its detail
        await until(pilot, lambda: app.screen.id == "detail", what="run detail")
        await pilot.press("escape", "escape")
        await until(pilot, lambda: app.screen.id == "results", what="back")
        await pilot.press("s")                          # Δ best
        await until(pilot, lambda: "Δ best" in screen_text(app), what="stat switched")
        await pilot.press("m")
        await until(pilot, lambda: "passes Δ best: Holm" in screen_text(app), what="Holm marks")
        out = tmp_path / "matrix.svg"
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#export-path").value = str(out)
        await pilot.press("enter")
        await until(pilot, out.is_file, what="figure export")
        assert b"<svg" in out.read_bytes()[:500]
        await pilot.press("v")
        await until(pilot, lambda: grid.row_count == 35 and len(grid.columns) == 36, what="correlations")
        await pilot.press("c")
        await until(pilot, lambda: grid.row_count == 10, what="targets x all columns")
        await pilot.press("right")
        await until(pilot, lambda: " × " in screen_text(app) and "ρ" in screen_text(app), what="a correlation cell")
        await pilot.press("v")
        await until(pilot, lambda: "ranked by Δ mean" in screen_text(app), what="ranking")


async def test_the_app_shows_a_run_nearing_its_stall_limit_and_why_the_runner_stopped(tmp_path):
    import os
    import time

    import psutil

    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.files import RunnerFiles
    from stilts_tui.runner.loop import run_record

    cfg = RunConfig(kind="target", model="tiny-bert", task="rte", spec_name="t", events_path=str(tmp_path / "ev.jsonl"))
    cfg.run_id = cfg.compute_id()
    db = tmp_path / "results.json"
    write_store(db, [run_record(cfg) | {"status": "running", "attempts": 1, "slot": "cpu0"}])
    quiet_since = time.time() - 400  # silent for 6m40s
    base = {"v": 1, "run_id": cfg.run_id, "attempt": 1}
    Path(cfg.events_path).write_text("\n".join(json.dumps(base | e) for e in (
        {"event": "started", "t": quiet_since - 5, "total_steps": 10},
        {"event": "step", "t": quiet_since, "step": 3, "total_steps": 10, "epoch": 0.3, "loss": 0.7, "lr": 1e-3,
         "sequences_per_s": 10.0, "tokens_per_s": 100.0, "memory_mb": None})) + "\n")
    files = RunnerFiles(db)
    state = {"pid": os.getpid(), "create_time": psutil.Process().create_time(), "status": "running", "name": "t",
             "heartbeat": time.time(), "sweep_file": str(tmp_path / "sweep.json"),
             "stalls": {cfg.run_id: {"quiet_s": 400, "limit_s": 600}}}
    files.write_state(state)
    app = StiltsApp(db, refresh_s=0.3)
    with as_runner(db):
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: "stall limit" in screen_text(app), what="the stall warning")
            assert "⚠ silent 6m4" in screen_text(app) and "of its 10m00s stall limit" in screen_text(app)
            files.write_state(state | {"status": "stopped", "stop_reason": "disk_full", "ended_at": time.time()})
            await until(pilot, lambda: "runner: stopped: the disk is full" in screen_text(app), what="the stop reason")
            assert "Resume the sweep" in screen_text(app) and "stall limit" not in screen_text(app)


def test_bench_tui_measures_the_table_keys_and_the_violins():
    """`stilts bench tui` end to end on a small file: every figure BENCHMARKS.md reports is measured."""
    from runner_helpers import stilts

    out = json.loads(stilts("bench", "tui", "--runs", "300", "--streams", "2", "--presses", "5", "--json").stdout)
    assert out["runs"] == 300 and out["live_runs"] == 2 and out["baseline"]["runs"] == 100
    assert 0 < out["key_median_s"] <= out["key_max_s"] and out["results_s"] > 0 and out["violins_s"] > 0


async def test_plan_launch_is_refused_when_every_run_would_fail(store_db, tmp_path, monkeypatch):
    """ctrl+l with the hub's roberta-large offline and a data folder that does not exist: one
    notification names both problems; no runner starts and no run is added to the results file."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(Store(store_db).runs())
    app = StiltsApp(store_db, refresh_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        plan = app.screen
        plan.query_one("#plan-model").value = "roberta-large"
        plan.query_one("#plan-data").value = str(tmp_path / "nowhere")
        plan.query_one("#plan-path").value = str(tmp_path / "doomed.toml")
        await pilot.press("ctrl+l")
        await until(pilot, lambda: any("not started" in n.message for n in app._notifications), what="the refusal")
        [note] = [n.message for n in app._notifications if "not started" in n.message]
        assert "roberta-large is not in the local Hugging Face cache" in note and "does not exist" in note
        assert app.screen is plan
    assert not (store_db.parent / "results.runner.json").exists() and len(Store(store_db).runs()) == before


async def test_plan_launch_warns_of_a_dev_split_of_one_class_and_launches(store_db, tmp_path, monkeypatch):
    """ctrl+l on a spec whose task's dev labels are all one class: launched (a degenerate sweep is
    not a failing one), and a warning notification names the task, the split, the class and its count."""
    import stilts_tui.runner.control as control

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(control, "launch", lambda *a, **k: 4242)
    spec = one_class_spec(tmp_path, ["yes"] * 5, seeds=(1,))
    app = StiltsApp(store_db, refresh_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        plan = app.screen
        plan.load(spec)
        await pilot.press("ctrl+l")
        await until(pilot, lambda: any("launched one" in n.message for n in app._notifications), what="the launch")
        await until(pilot, lambda: any("one class" in n.message for n in app._notifications), what="the warning")
        [note] = [n for n in app._notifications if "one class" in n.message]
        assert note.severity == "warning" and note.message.startswith(
            "task one_class, dev split: all 5 examples have the label 'yes' (one class)")


async def test_results_pair_table_shows_runs_starting_and_failing_before_any_finishes(tmp_path):
    """The pair table's pending (`n (+k)`) and failed counts follow the results file although no
    run finishes: a stopped run retried (running again) and a running run that fails each change
    the table, as the records' version moved and neither their number nor the finished count did."""
    records = synthetic_records(6)  # none → rte at six grid points
    assert {(r["intermediate"], r["target"]) for r in records} == {("none", "rte")}
    for r, status in zip(records[4:], ("stopped", "running"), strict=True):
        r.update(status=status, score=None)
    db = tmp_path / "results.json"
    write_store(db, records)

    def pair_row() -> tuple[str, str] | None:
        """The pair's n (with its pending runs) and failed columns."""
        row = next((ln.split() for ln in screen_text(app).splitlines() if ln.startswith("rte ")), None)
        return (" ".join(row[3:5]), row[-1]) if row else None

    app = StiltsApp(db, refresh_s=0.2)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: pair_row() == ("4 (+1)", "0"), what="4 finished, 1 running, none failed")
        version = app.snapshot.version
        for run_id, status, shown in ((records[4]["run_id"], "running", ("4 (+2)", "0")),
                                      (records[5]["run_id"], "failed", ("4 (+1)", "1"))):
            with Store(db, writer=True) as store:
                store.update(run_id, status=status)
            await until(pilot, lambda shown=shown: pair_row() == shown, what=f"the pair table after a run went {status}")
        assert app.snapshot.version == version + 2 and app.snapshot.counts.get("finished") == 4
