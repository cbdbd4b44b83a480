"""Damaged and hand-edited input (issue 40): a results file cut short or edited by hand, NaN in
an event log, spec tables and numbers JSON cannot hold, markup in a task's text. Each is one
message naming the file, what is wrong and the fix (or is shown as written), never a traceback:
through the CLI's entry point, and in the app, which stays up."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import screen_text, until

from stilts_tui import cli
from stilts_tui.bench.results import study_records, synthetic_records, write_store
from stilts_tui.errors import SpecError, StiltsError
from stilts_tui.store import Store
from stilts_tui.sweep.spec import parse_spec


def good_records(n: int = 6) -> list[dict]:
    return synthetic_records(n)


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def edited(tmp_path: Path, change) -> tuple[Path, str]:
    """A valid results file with its first record changed by `change(record)`; that run's id."""
    db = tmp_path / "results.json"
    write_store(db, good_records())
    data = json.loads(db.read_text())
    first = data["runs"]["1"]
    run_id = first["run_id"]
    change(first)
    return write_json(db, data), run_id


# Every command that reads the results file, as a user types it.
READERS = (["results"], ["results", "--runs"], ["status"], ["plot", "rte"], ["results", "--view", "matrix"])


def cli_error(capsys, argv: list[str]) -> str:
    """The CLI's stderr for a command that must fail with one clear message (no exception)."""
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and "\n  fix: " in err and "Traceback" not in err, err
    return err


def every_reader_says(capsys, db: Path, *fragments: str) -> None:
    for argv in READERS:
        err = cli_error(capsys, [*argv, "--db", str(db)])
        for f in (str(db), *fragments):
            assert f in err, (argv, err)
    err = cli_error(capsys, ["report", str(db), "-o", str(db.parent / "report.md"), "--no-figures"])
    for f in (str(db), *fragments):
        assert f in err, ("report", err)


# ------------------------------------------------------------------ the results file


def test_a_truncated_results_file_keeps_the_truth_and_says_how_to_recover(tmp_path, capsys):
    db = tmp_path / "results.json"
    write_store(db, good_records())
    text = db.read_text()
    db.write_text(text[: len(text) // 2])
    every_reader_says(capsys, db, "is not valid JSON", "another program changed it", "restore", "backup",
                      str(tmp_path / "results.runs") + "/<run id>/events.jsonl", f"stilts recover --db {db}",
                      f"stilts resume --db {tmp_path / 'results.recovered.json'}")


@pytest.mark.parametrize("data, says", [
    ([1, 2, 3], "the file is a list, not an object"),
    ({"runs": []}, "its 'runs' is a list, not an object"),
    ({"runs": {"1": 7}}, "record '1' is 7 (a whole number), not an object of run fields"),
    ({"runs": {"1": {"run_id": 5}}}, "record '1' has run_id = 5 (a whole number) where a string belongs"),
])
def test_a_results_file_of_another_shape_is_one_message(tmp_path, capsys, data, says):
    db = write_json(tmp_path / "results.json", data)
    every_reader_says(capsys, db, says)
    with pytest.raises(StiltsError, match="results file"):
        Store(db).get("anything")  # TinyDB's own reads go through the same check


@pytest.mark.parametrize("change, says", [
    (lambda r: r.update(score="0.5"), "has score = '0.5' (a string) where a number or null belongs"),
    (lambda r: r.pop("target"), "has no 'target'"),
    (lambda r: r.update(config="x"), "has config = 'x' (a string) where an object belongs"),
    (lambda r: r.update(failures=[1]), "has failures = [1]: its items must be objects"),
    (lambda r: r.update(lr=None), "has lr = None (null) where a number belongs"),
    (lambda r: r.update(attempts=True), "has attempts = True (true or false) where a whole number belongs"),
    (lambda r: r.update(status="done"), "has status = 'done', not one of queued, running"),
])
def test_a_hand_edited_record_is_named_with_its_field_and_the_fix(tmp_path, capsys, change, says):
    db, run_id = edited(tmp_path, change)
    every_reader_says(capsys, db, f"the record of run {run_id!r} (key '1') {says}", "edit that record",
                      "or delete the record", f"stilts recover --db {db}")


def test_every_record_stilts_writes_passes_the_check(tmp_path):
    """No false alarm: the shapes stilts itself writes (and older files: a queued run's null
    score, fields added later, a learning rate written as 1) all read."""
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.loop import run_record

    cfg = RunConfig(kind="intermediate", model="m", task="hellaswag", spec_name="s")
    cfg.run_id = cfg.compute_id()
    odd = run_record(cfg) | {"status": "failed", "score": None, "lr": 1, "reason": None, "message": None, "pid": None,
                             "slot": None, "wall_s": None, "failures": [{"attempt": 1, "reason": "oom"}],
                             "stderr_tail": ["x"], "warm_start": True, "added_later": {"any": "thing"}}
    records = [*synthetic_records(30), *study_records(30), odd]
    db = tmp_path / "results.json"
    write_store(db, records)
    with Store(db) as store:
        assert len(store.runs()) == len(records)
    with Store(db, writer=True) as store:  # the runner's own reads, then its update
        store.update(cfg.run_id, status="queued", reason="retry")
        assert store.get(cfg.run_id)["status"] == "queued"


# ------------------------------------------------------------------ NaN in an event log


def _step(run_id: str, step: int, loss: float, lr: float = 1e-5, t: float | None = None) -> str:
    # json.dumps writes NaN / Infinity as Python's json reads them back (and as a hand edit would)
    return json.dumps({"v": 1, "event": "step", "run_id": run_id, "attempt": 1, "t": time.time() if t is None else t,
                       "step": step,
                       "total_steps": 10, "epoch": step / 10, "loss": loss, "lr": lr, "sequences_per_s": 9.0,
                       "tokens_per_s": 900.0, "memory_mb": None}) + "\n"


def nan_run(tmp_path: Path, status: str = "finished") -> tuple[Path, str]:
    """A results file of one run whose event log holds NaN and Infinity among its losses."""
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.loop import run_record

    cfg = RunConfig(kind="target", model="tiny-bert", task="rte", spec_name="t", events_path=str(tmp_path / "ev.jsonl"))
    cfg.run_id = cfg.compute_id()
    losses = [1.0, 0.9, math.nan, 0.7, math.inf, 0.5, 0.4, -math.inf]
    Path(cfg.events_path).write_text("".join(_step(cfg.run_id, i + 1, v, math.nan if i == 3 else 1e-5)
                                             for i, v in enumerate(losses))
                                     + _step(cfg.run_id, 9, 0.3, t=math.nan))  # no time: not an event (ETA, stalls)
    extra = {"score": 0.6, "metric": "accuracy"} if status == "finished" else {"slot": "cpu0"}
    db = tmp_path / "results.json"
    write_store(db, [run_record(cfg) | {"status": status, "attempts": 1, **extra}])
    return db, cfg.run_id


def test_stilts_status_on_a_run_whose_log_holds_nan(tmp_path, capsys):
    db, run_id = nan_run(tmp_path, status="running")
    assert cli.main(["status", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert run_id in out and "8/10" in out and "-inf" in out  # the line with a NaN time is not taken


@pytest.mark.parametrize("what", [[], ["--lr"]])
def test_stilts_plot_leaves_non_finite_points_out_of_a_curve(tmp_path, what):
    """plotext aborted the process on NaN (std::bad_alloc, rc 134): a subprocess, so that an abort
    fails this test instead of ending pytest."""
    db, run_id = nan_run(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "stilts_tui", "plot", "--runs", run_id, *what, "--db", str(db),
                           "--format", "text"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    left_out = 3 if not what else 1
    assert f"({left_out} point(s) not finite (NaN or infinite) in the event log: left out)" in proc.stdout
    assert "step" in proc.stdout  # the chart itself, drawn from the finite points


def test_the_app_shows_a_run_whose_log_holds_nan(tmp_path):
    """The runs screen (live panel, sparkline) and the run detail (curve, log lines) of a run in
    flight whose losses hold NaN and Infinity: drawn, with "nan" / "inf" as text."""
    code = f"""
import asyncio, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import screen_text, until
from stilts_tui.app.app import StiltsApp

async def main():
    app = StiltsApp({str(nan_run(tmp_path, status="running")[0])!r}, refresh_s=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "in flight: 1" in screen_text(app) and "8/10" in screen_text(app), what="live panel")
        assert "9/10" not in screen_text(app)  # the step with a NaN time is not an event
        run_id = app.snapshot.records[0].run_id
        app.open_run(run_id)
        await until(pilot, lambda: app.screen.id == "detail" and "config:" in screen_text(app), what="detail")
        text = screen_text(app)
        assert "loss nan" in text and "loss inf" in text and "not finite" in text, text
        await pilot.press("l")  # the learning-rate curve: one NaN
        await until(pilot, lambda: "(1 point(s) not finite" in screen_text(app), what="lr curve")
        assert app.is_running
    print("APP OK")

asyncio.run(main())
"""
    # A subprocess: on NaN plotext aborted the whole process (and left the terminal broken).
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "APP OK" in proc.stdout, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])


# ------------------------------------------------------------------ the app on a damaged results file


def notices(app) -> str:
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)


async def test_the_app_opened_on_a_truncated_results_file_says_so_and_stays_up(tmp_path):
    from stilts_tui.app.app import StiltsApp

    db = tmp_path / "results.json"
    write_store(db, good_records())
    good = db.read_text()
    db.write_text(good[: len(good) // 2])
    app = StiltsApp(db, refresh_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "cannot read the results file" in notices(app), what="the notice")
        await pilot.pause(1.0)  # several refreshes fail the same way: still one notice
        said = notices(app)
        assert len(app._notifications) == 1, said
        for f in (f"results file {db} is not valid JSON", "another program changed it", "fix: restore", "events.jsonl"):
            assert f in said, said
        await pilot.press("3")  # the app goes on: other modes open
        await until(pilot, lambda: app.screen.id == "results", what="results screen")
        await pilot.press("2")
        db.write_text(good)  # restored: the runs show, the notice goes
        await until(pilot, lambda: app.snapshot is not None and len(app.snapshot.records) == 6, what="records")
        await until(pilot, lambda: "reads again" in notices(app), what="the all-clear")
        assert "cannot read" not in notices(app)
        assert app.is_running


async def test_the_app_names_a_hand_edited_record(tmp_path):
    from stilts_tui.app.app import StiltsApp

    db, run_id = edited(tmp_path, lambda r: r.update(score="0.5"))
    app = StiltsApp(db, refresh_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "cannot read the results file" in notices(app), what="the notice")
        said = notices(app)
        assert f"the record of run {run_id!r} (key '1') has score = '0.5'" in said and "fix: edit that record" in said
        await pilot.press("3")
        await until(pilot, lambda: app.screen.id == "results", what="results screen")
        assert app.is_running and "Traceback" not in screen_text(app)


async def test_a_record_missing_optional_fields_opens_in_every_screen(tmp_path):
    """A minimal record (the fields every version wrote, nothing else) shows in the runs table,
    the run detail, the results and a pair's runs."""
    from stilts_tui.app.app import StiltsApp
    from stilts_tui.app.pair_screen import PairScreen

    records = [{"run_id": f"r{i}", "kind": "target", "intermediate": inter, "target": "rte", "status": "finished",
                "score": 0.5 + i / 100, "metric": "accuracy"} for i, inter in enumerate(["none", "none", "x", "x"])]
    db = tmp_path / "results.json"
    write_store(db, records)
    app = StiltsApp(db, refresh_s=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and len(app.snapshot.records) == 4, what="records")
        app.open_run("r2")
        await until(pilot, lambda: app.screen.id == "detail" and "config:" in screen_text(app), what="detail")
        await pilot.press("escape", "3")
        await until(pilot, lambda: app.screen.id == "results" and "rte" in screen_text(app), what="results")
        app.push_screen(PairScreen(app.snapshot.records, "rte", "x", "none"))
        await until(pilot, lambda: app.screen.id == "pair" and [t.row_count for t in app.screen.query("#pair-runs")] == [4],
                    what="the pair's runs")
        assert app.is_running


# ------------------------------------------------------------------ specs


BASE = {"model": "m", "targets": ["rte"]}


@pytest.mark.parametrize("extra, says, fix", [
    ({"grid": 5}, "grid = 5 is not a table", "[grid] then lr = [1e-5, 2e-5]"),
    ({"intermediate": 5}, "intermediate = 5 is not a table", "[intermediate] then lr = 1e-5"),
    ({"tasks": 5}, "tasks = 5 is not a table", "[tasks.rte] then epochs = 5"),
    ({"train": "fast"}, "train = 'fast' is not a table", '[train] then precision = "tf32"'),
    ({"task_files": "t.toml"}, "task_files = 't.toml' is not a list of paths", 'task_files = ["tasks/my_task.toml"]'),
    ({"data_dir": 5}, "data_dir = 5 is not a path", 'data_dir = "/data/stilts"'),
    ({"grid": {"seed": [99999999999999999999999]}}, "[grid]: seed = 99999999999999999999999 is out of range",
     "allowed: 0 ≤ seed < 4294967296"),
    ({"grid": {"seed": [2**32]}}, "[grid]: seed = 4294967296 is out of range", "allowed: 0 ≤ seed < 4294967296"),
    ({"intermediate": {"seed": 2**70}}, f"[intermediate]: seed = {2**70} is out of range", "0 ≤ seed < 4294967296"),
    ({"restarts": {"target": [2**64]}}, f"[restarts] target: seed = {2**64} is out of range", "0 ≤ seed < 4294967296"),
    ({"tasks": {"rte": {"max_length": 2**64}}}, f"[tasks.rte]: max_length = {2**64} is too large: whole numbers "
     "must fit in 64 bits", "give max_length at most 9223372036854775807"),
    ({"grid": {"weight_decay": [math.inf]}}, "[grid]: weight_decay = inf is not a finite number",
     "give weight_decay as a finite number"),
    ({"grid": {"lr": [math.nan]}}, "[grid]: lr = nan is not a finite number", "give lr as a finite number"),
])
def test_spec_values_the_store_cannot_hold_are_refused_at_validation(extra, says, fix):
    with pytest.raises(SpecError) as err:
        parse_spec(BASE | extra, where="s.toml")
    assert says in err.value.problem and fix in (err.value.fix or ""), (err.value.problem, err.value.fix)


def test_the_largest_seed_numpy_takes_is_accepted():
    assert parse_spec(BASE | {"grid": {"seed": [2**32 - 1]}}).grid["seed"] == [2**32 - 1]


def test_stilts_plan_on_a_spec_with_grid_5_is_one_message(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "s"\nmodel = "tiny-bert"\ntargets = ["rte"]\ngrid = 5\n')
    err = cli_error(capsys, ["plan", str(spec), "--db", str(tmp_path / "r.json")])
    assert "grid = 5 is not a table" in err and str(spec) in err
    spec.write_text('name = "s"\nmodel = "tiny-bert"\ntargets = ["rte"]\n[grid]\nseed = [99999999999999999999999]\n')
    err = cli_error(capsys, ["plan", str(spec), "--db", str(tmp_path / "r.json")])
    assert "seed = 99999999999999999999999 is out of range" in err and "0 ≤ seed < 4294967296" in err


async def test_the_plan_screen_refuses_a_spec_with_grid_5_and_keeps_its_own(tmp_path):
    """Opening `grid = 5` in the Plan screen: a notice naming the file, the key and the fix; the
    form keeps the spec it had, and the app stays up."""
    from textual.widgets import Input

    from stilts_tui.app.app import StiltsApp
    from stilts_tui.app.plan_screen import PlanScreen

    spec = tmp_path / "bad.toml"
    spec.write_text('name = "bad"\nmodel = "tiny-bert"\ntargets = ["rte"]\ngrid = 5\n')
    app = StiltsApp(tmp_path / "results.json", refresh_s=60, root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan screen")
        plan = app.screen
        before = plan.query_one("#plan-name", Input).value
        box = plan.query_one("#plan-open", Input)
        box.focus()
        box.value = str(spec)
        await pilot.press("enter")
        await until(pilot, lambda: "grid = 5 is not a table" in notices(app), what="the notice")
        assert f"{spec}: grid = 5 is not a table" in notices(app) and "fix: write it as a table: [grid]" in notices(app)
        assert plan.query_one("#plan-name", Input).value == before and app.is_running


# ------------------------------------------------------------------ markup in a task's text


def test_a_tasks_markup_like_text_is_printed_as_written(tmp_path):
    """`[red]` and `[/x]` in a task file's description and label names are text: `stilts tasks`,
    `stilts tasks show` and `stilts plan --runs` print them (rich read them as markup and raised
    MarkupError)."""
    data = tmp_path / "data"
    data.mkdir()
    rows = "".join(json.dumps({"s": f"sentence {i}", "y": ["[/x]", "[red]"][i % 2]}) + "\n" for i in range(4))
    for split in ("train", "dev"):
        (data / f"{split}.jsonl").write_text(rows)
    task = tmp_path / "odd.toml"
    task.write_text('name = "odd_task"\ndescription = "a [red]bold[/] claim [/x] here"\nhead = "classification"\n'
                    'labels = ["[/x]", "[red]"]\ndata_dir = "data"\n[files]\ntrain = "train.jsonl"\ndev = "dev.jsonl"\n'
                    '[fields]\na = "s"\nlabel = "y"\n')
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "s"\nmodel = "tiny-bert"\ntask_files = ["{task}"]\nintermediates = ["none", "odd_task"]\n'
                    'targets = ["rte"]\n[grid]\nlr = [1e-5]\nseed = [1]\nbatch_size = [8]\nwarmup_ratio = [0.0]\n')

    def stilts(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "stilts_tui", *args], capture_output=True, text=True, timeout=300,
                              env={**__import__("os").environ, "COLUMNS": "300"})
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        return proc.stdout

    assert "a [red]bold[/] claim [/x] here" in stilts("tasks", "--task-file", str(task))
    shown = stilts("tasks", "show", "odd_task", "--task-file", str(task))
    assert "odd_task — a [red]bold[/] claim [/x] here" in shown and "{'[/x]': 2, '[red]': 2}" in shown
    assert "odd_task" in stilts("plan", str(spec), "--runs", "--db", str(tmp_path / "r.json"))


def test_a_foreground_sweeps_run_lines_print_a_failure_reason_as_written():
    """`stilts run`'s one line per run: a reason or message holding markup is printed as text."""
    import io

    from rich.console import Console

    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.sweep.progress import SweepProgress

    out = io.StringIO()
    cfg = RunConfig(kind="target", model="m", task="rte", spec_name="s", run_id="abc")
    progress = SweepProgress(1, console=Console(file=out, width=200))
    progress.on_run(cfg, {"status": "failed", "reason": "error[/x]", "message": "bad [/b] value"})
    assert "failed: error[/x] bad [/b] value" in out.getvalue()
