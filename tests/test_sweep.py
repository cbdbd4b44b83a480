"""End to end: spec -> runs -> worker subprocesses -> TinyDB -> results, and the failure paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import one_class_spec
from runner_helpers import run_runs, stilts

from stilts_tui.store import Store
from stilts_tui.sweep.expand import expand
from stilts_tui.sweep.spec import parse_spec


def write_spec(path, model, data, **extra) -> None:
    lines = ['name = "e2e"', f'model = "{model}"', f'data_dir = "{data}"',
             'intermediates = ["none", "hellaswag"]', 'targets = ["rte"]',
             "[grid]", "lr = [1e-3]", "batch_size = [8]", "warmup_ratio = [0.0]", "seed = [1, 2]",
             "[intermediate]", "lr = 1e-3", "batch_size = 2",
             "[tasks.rte]", "epochs = 1", "max_length = 32", "[tasks.hellaswag]", "epochs = 1", "max_length = 32"]
    path.write_text("\n".join(lines) + "\n")


def test_spec_to_results_end_to_end_and_rerun_trains_nothing(tiny_models, train_data, tmp_path):
    spec = tmp_path / "e2e.toml"
    write_spec(spec, tiny_models["roberta"], train_data)
    db = tmp_path / "sweep" / "results.json"
    first = stilts("run", str(spec), "--db", str(db), "--foreground")
    assert "5 runs (1 intermediate), 0 already finished, 5 to run" in first.stderr
    pairs = json.loads(stilts("results", "--db", str(db), "--format", "json").stdout)
    assert {(p["intermediate"], p["target"], p["n"]) for p in pairs} == {("none", "rte", 2), ("hellaswag", "rte", 2)}
    for p in pairs:
        assert {"min", "mean", "best", "degenerate", "std"} <= set(p)
        assert p["min"] <= p["mean"] <= p["best"]
    runs = json.loads(stilts("results", "--db", str(db), "--runs", "--format", "json").stdout)
    assert len(runs) == 5 and all(r["status"] == "finished" for r in runs)
    for r in runs:
        assert {"run_id", "intermediate", "target", "lr", "batch_size", "warmup_ratio", "seed", "status", "score"} <= set(r)
    started = {r["run_id"]: r for r in Store(db).runs()}
    csv_out = stilts("results", "--db", str(db), "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("intermediate,target,metric,n,min,mean") and len(csv_out) == 3

    state = (db.parent / "results.runner.json").read_text()
    again = stilts("run", str(spec), "--db", str(db))  # detached this time: nothing left to do
    assert "5 already finished, 0 to run" in again.stdout and "nothing to run" in again.stdout
    assert (db.parent / "results.runner.json").read_text() == state  # no runner started to do nothing
    sweeps = sorted((db.parent / "results.sweeps").iterdir())
    fg = stilts("run", str(spec), "--db", str(db), "--foreground")  # nor in the foreground (issue 33's bug)
    assert "nothing to run" in fg.stdout and "hellaswag" in fg.stdout  # and the results table as before
    assert (db.parent / "results.runner.json").read_text() == state  # what `stilts resume` needs is kept
    assert sorted((db.parent / "results.sweeps").iterdir()) == sweeps
    after = {r["run_id"]: r for r in Store(db).runs()}
    assert all(after[k]["started_at"] == started[k]["started_at"] for k in after)  # nothing re-trained
    table = stilts("results", "--db", str(db)).stdout
    assert "hellaswag" in table and "none" in table


def _one_run(tiny_models, train_data, tmp_path, **grid):
    spec = parse_spec({"model": str(tiny_models["roberta"]), "data_dir": str(train_data), "targets": ["rte"],
                       "grid": {"lr": [1e-3], "seed": [1], "batch_size": [8], "epochs": [2], "max_length": [32]} | grid})
    return expand(spec, tmp_path)


@pytest.mark.parametrize("fault, reason, attempts", [("nan:2", "nan_loss", 1), ("kill:2", "killed", 3),
                                                     ("oom:1", "oom", 4), ("error:1", "error", 2)])
def test_worker_failures_are_recorded_with_their_reason(fault, reason, attempts, tiny_models, train_data, tmp_path):
    """nan: not retried (same seed, same failure); killed / error: retried up to --max-retries;
    oom: retried with half the device batch until it is 1 (batch 8: 8, 4, 2, 1)."""
    (cfg,) = _one_run(tiny_models, train_data, tmp_path)
    db = tmp_path / "results.json"
    counts = run_runs([cfg], db, fault=fault, max_retries=2 if reason != "error" else 1)
    assert counts["failed"] == 1 and counts["retried"] == attempts - 1
    record = Store(db).get(cfg.run_id)
    assert record["status"] == "failed" and record["reason"] == reason
    assert record["attempts"] == attempts and [f["reason"] for f in record["failures"]] == [reason] * attempts
    if reason == "killed":  # SIGKILL leaves no traceback: the runner says how the worker ended
        assert "signal 9" in record["message"] and "gave up after 2 retries" in record["message"]
    else:
        assert any("Error" in line for line in record["stderr_tail"])
    if reason == "oom":
        assert "device batch of 1" in record["message"] and record["config"]["max_device_batch"] == 1
    if reason == "nan_loss":
        assert "not retried" in record["message"]
    data = json.loads(db.read_text())  # still valid JSON
    assert len(data["runs"]) == 1
    events = [json.loads(x) for x in Path(cfg.events_path).read_text().splitlines()]
    if reason != "killed":
        assert events[-1]["event"] == "failed" and events[-1]["reason"] == reason
    assert {e["attempt"] for e in events} == set(range(1, attempts + 1))


def test_a_failing_run_does_not_stop_the_sweep(tiny_models, train_data, tmp_path):
    good = _one_run(tiny_models, train_data, tmp_path)
    # A target whose data folder lacks its files: a data error, recorded, and the sweep goes on.
    missing = parse_spec({"model": str(tiny_models["roberta"]), "data_dir": str(tmp_path / "empty"),
                          "targets": ["wic"], "grid": {"lr": [1e-3], "seed": [1]}})
    (tmp_path / "empty").mkdir()
    bad = expand(missing, tmp_path)
    db = tmp_path / "results.json"
    counts = run_runs(bad + good, db)
    records = {r["run_id"]: r for r in Store(db).runs()}
    assert (counts["finished"], counts["failed"], counts["retried"]) == (1, 1, 0)  # a data error is not retried
    failed = records[bad[0].run_id]
    assert failed["reason"] == "data_error" and "file not found" in failed["message"]
    assert records[good[0].run_id]["status"] == "finished"
    json.loads(db.read_text())


def test_a_failed_intermediate_blocks_its_targets_only(tiny_models, train_data, tmp_path):
    spec = parse_spec({"model": str(tiny_models["roberta"]), "data_dir": str(train_data),
                       "intermediates": ["none", "hella_sh"], "targets": ["rte"],  # hella_sh was never built
                       "grid": {"lr": [1e-3], "seed": [1], "batch_size": [8], "epochs": [1], "max_length": [32]}})
    runs = expand(spec, tmp_path)
    counts = run_runs(runs, tmp_path / "r.json", slots=2)
    status = {r["intermediate"] + ":" + r["kind"]: r for r in Store(tmp_path / "r.json").runs()}
    assert counts["blocked"] == 1 and counts["finished"] == 1 and counts["failed"] == 1
    assert status["hella_sh:intermediate"]["reason"] == "data_error"
    assert "stilts build-data hella-sh" in status["hella_sh:intermediate"]["message"]
    assert status["hella_sh:target"]["status"] == "blocked"
    assert status["none:target"]["status"] == "finished"


def test_bad_spec_and_paths_on_the_cli(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "m"\ntargets = ["rte"]\n[grid]\nlearning_rate = [1e-5]\n')
    proc = stilts("run", str(bad), "--db", str(tmp_path / "r.json"), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "[grid]: unknown key 'learning_rate'" in proc.stderr and "fix:" in proc.stderr
    demo = Path(__file__).resolve().parents[1] / "experiments" / "demo.toml"
    proc = stilts("run", str(demo), "--db", str(tmp_path / "demo.json"), check=False)  # no demo data: say how to build it
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "hub" in proc.stderr
    assert "stilts build-data demo --out DIR" in proc.stderr and "--data-dir" in proc.stderr
    assert not (tmp_path / "demo.json").exists()  # nothing was launched
    proc = stilts("run", str(tmp_path / "missing.toml"), check=False)
    assert proc.returncode == 2 and "not found" in proc.stderr
    proc = stilts("results", "--db", str(tmp_path / "nope.json"), check=False)
    assert proc.returncode == 2 and "results file" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ checks before launch


def test_a_launch_that_every_run_would_fail_is_refused_with_each_reason(tiny_models, train_data, tmp_path):
    """`stilts run` with the hub's roberta-large offline (not cached here) and a data folder that
    does not exist: one message names both problems and their fixes; no runner starts, and the
    results file gets no runs to fail three times each."""
    import shutil

    import tomli_w

    db = tmp_path / "results.json"
    spec = tmp_path / "s.toml"
    spec.write_bytes(tomli_w.dumps({"name": "doomed", "model": "roberta-large", "data_dir": str(tmp_path / "nowhere"),
                                    "targets": ["rte"], "grid": {"lr": [1e-5], "seed": [1, 2]}}).encode())
    proc = stilts("run", str(spec), "--db", str(db), check=False, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    err = proc.stderr
    assert "not started: 2 problems would fail the sweep" in err
    assert "model roberta-large is not in the local Hugging Face cache" in err and "HF_HUB_OFFLINE=1" in err
    assert 'model = "minilm"' in err
    assert f"task rte: data directory {tmp_path / 'nowhere'} does not exist" in err
    assert not db.exists() and not (tmp_path / "results.runner.json").exists()

    # The model is there, one task's dev file is not: that file is named, before launch.
    data = tmp_path / "data"
    shutil.copytree(train_data, data)
    (data / "RTE" / "dev.tsv").unlink()
    spec.write_bytes(tomli_w.dumps({"name": "doomed", "model": str(tiny_models["roberta"]), "data_dir": str(data),
                                    "targets": ["rte"], "grid": {"lr": [1e-5], "seed": [1]}}).encode())
    proc = stilts("run", str(spec), "--db", str(db), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not started: task rte: " in proc.stderr and "dev.tsv" in proc.stderr and "file not found" in proc.stderr
    assert not db.exists()


def test_a_dev_split_of_one_class_is_warned_about_not_refused(tmp_path, monkeypatch):
    """Every dev label the same class: every run's dev score is degenerate. The launch still goes
    (the checks refuse only what would fail every run), with one warning naming the task, the
    split, the class and how many examples carry it; a dev split of two classes says nothing."""
    from stilts_tui.runner.options import RunnerOptions
    from stilts_tui.runner.preflight import preflight
    from stilts_tui.sweep.spec import load_spec

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    db = tmp_path / "results.json"
    runs = expand(load_spec(one_class_spec(tmp_path, ["yes"] * 7)), tmp_path)
    assert preflight(runs, db, RunnerOptions(), ()) == [
        "task one_class, dev split: all 7 examples have the label 'yes' (one class): every run's dev score will be "
        "degenerate; check the task's dev file and its label field"]
    runs = expand(load_spec(one_class_spec(tmp_path, ["yes"] * 6 + ["no"])), tmp_path)
    assert preflight(runs, db, RunnerOptions(), ()) == []
    rte = tmp_path / "data" / "RTE"  # a built-in task read from files is checked the same way
    rte.mkdir(parents=True)
    for split in ("train", "dev"):
        (rte / f"{split}.tsv").write_text("index\tsentence1\tsentence2\tlabel\n" + "".join(
            f"{i}\ta\tb\tnot_entailment\n" for i in range(3)))
    runs = expand(parse_spec({"model": "minilm", "data_dir": str(tmp_path / "data"), "targets": ["rte"],
                              "grid": {"lr": [1e-5], "seed": [1]}}), tmp_path)
    assert preflight(runs, db, RunnerOptions(), ()) == [
        "task rte, dev split: all 3 examples have the label 'not_entailment' (one class): every run's dev score will "
        "be degenerate; check the task's dev file and its label field"]


def test_stilts_run_prints_the_checks_warnings_and_launches(tmp_path, monkeypatch, capsys):
    import stilts_tui.runner.control as control
    from stilts_tui.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    launched = []
    monkeypatch.setattr(control, "launch", lambda *a, **k: launched.append(a) or 4242)
    spec = one_class_spec(tmp_path, ["no"] * 4)
    assert main(["run", str(spec), "--db", str(tmp_path / "results.json")]) == 0
    out = capsys.readouterr()
    assert "warning: task one_class, dev split: all 4 examples have the label 'no' (one class)" in out.err
    assert len(launched) == 1 and "runner started in the background (pid 4242)" in out.out


def test_a_model_the_worker_cannot_fetch_fails_once_not_three_times(train_data, tmp_path):
    """Past the checks (the runner started directly): a hub model that is neither cached nor
    downloadable fails as `unavailable`, which another attempt cannot change, so it is not retried."""
    spec = parse_spec({"model": "roberta-large", "data_dir": str(train_data), "targets": ["rte"],
                       "grid": {"lr": [1e-5], "seed": [1]}})
    db = tmp_path / "results.json"
    counts = run_runs(expand(spec, tmp_path), db, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    [rec] = Store(db).runs()
    assert (counts["failed"], counts["retried"]) == (1, 0)
    assert rec["reason"] == "unavailable" and rec["attempts"] == 1 and "not retried" in rec["message"]
