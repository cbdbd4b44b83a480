"""`stilts recover`: a damaged results file rebuilt from its sweep files and run logs (issue 39),
for a finished sweep with a failed and a retried run, and for a sweep SIGKILLed mid-way that
`stilts resume` then continues from the rebuilt file."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest
from conftest import wait_for
from runner_helpers import stilts
from test_runner import runs_by_status, sweep_spec, write_toml

from stilts_tui.domain.events import read_events
from stilts_tui.errors import StiltsError
from stilts_tui.ops.recover import recover
from stilts_tui.runner.files import RunnerFiles
from stilts_tui.store import Store
from stilts_tui.sweep.placement import runs_for
from stilts_tui.sweep.spec import parse_spec

# What analysis, `stilts resume` and the screens read of a run; timings the runner takes from its
# own clock (queued_at, started_at) are not in any log, and are not compared.
FIELDS = ("run_id", "kind", "intermediate", "target", "model", "lr", "batch_size", "warmup_ratio", "seed", "epochs",
          "max_length", "train_size", "init_from", "spec", "config", "events_path", "output_dir", "status",
          "attempts", "retries", "score", "metric", "metrics", "wall_s", "reason", "message", "micro_batch",
          "accumulation", "total_steps", "train_examples")


def by_id(db: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in Store(db).runs()}


def test_a_sweep_with_a_failed_and_a_retried_run_is_rebuilt_field_for_field(tiny_models, train_data, tmp_path):
    raw = sweep_spec(tiny_models, train_data, seeds=(1, 2))  # an intermediate and four targets
    spec = write_toml(tmp_path / "s.toml", raw)
    db = tmp_path / "results.json"
    runs = runs_for(parse_spec(raw), db)
    shrunk, failing = sorted((r for r in runs if r.kind != "intermediate" and not r.init_from), key=lambda r: r.seed)
    # One run out of memory at its device batch of 8 (retried with 4, then finishes); one that
    # fails every attempt (retried once, then given up).
    env = os.environ | {"STILTS_FAULT_INJECT": f"oom_above:4@run_id={shrunk.run_id};error:1@run_id={failing.run_id}"}
    done = stilts("run", str(spec), "--db", str(db), "--foreground", "--slots", "2", "--max-retries", "1",
                  env=env, check=False)
    assert done.returncode == 1, done.stderr[-2000:]  # one run failed
    original = by_id(db)
    assert original[shrunk.run_id]["status"] == "finished" and original[shrunk.run_id]["attempts"] == 2
    assert original[failing.run_id]["status"] == "failed" and original[failing.run_id]["attempts"] == 2
    assert original[failing.run_id]["retries"] == 1
    table = stilts("results", "--db", str(db), "--format", "json").stdout

    damaged = db.read_bytes()[: len(db.read_bytes()) // 2]  # cut short, as by another program
    db.write_bytes(damaged)
    said = stilts("results", "--db", str(db), check=False)
    assert said.returncode == 2 and f"stilts recover --db {db}" in said.stderr

    out = stilts("recover", "--db", str(db)).stdout
    new = tmp_path / "results.recovered.json"
    assert f"recovered 5 runs of {db} into {new} (1 failed, 4 finished)" in out
    assert f"stilts resume --db {new}" in out and f"mv {db} {db}.damaged && mv {new} {db}" in out
    assert db.read_bytes() == damaged  # the damaged file is kept, untouched
    rebuilt = by_id(new)
    assert set(rebuilt) == set(original)
    for run_id, rec in original.items():
        assert {k: rebuilt[run_id].get(k) for k in FIELDS} == {k: rec.get(k) for k in FIELDS}, run_id
        assert [(f["attempt"], f["reason"], f["message"]) for f in rebuilt[run_id].get("failures", [])] == \
            [(f["attempt"], f["reason"], f["message"]) for f in rec.get("failures", [])]
        if rec["status"] == "finished":
            assert rebuilt[run_id]["finished_at"] == rec["finished_at"]  # the finished event's own time
    assert stilts("results", "--db", str(new), "--format", "json").stdout == table  # the analysis, unchanged

    with pytest.raises(StiltsError, match="already exists"):  # a second recover never replaces the first
        recover(db)
    with pytest.raises(StiltsError, match="never writes over it"):
        recover(db, db)


def test_a_sigkilled_sweep_recovered_then_resumed_runs_every_run_exactly_once(tiny_models, train_data, tmp_path):
    raw = sweep_spec(tiny_models, train_data, seeds=(1, 2, 3, 4), intermediates=("none",))
    spec = write_toml(tmp_path / "s.toml", raw)
    db = tmp_path / "results.json"
    runs = sorted(runs_for(parse_spec(raw), db), key=lambda r: r.run_id)
    ids = [r.run_id for r in runs]
    # Two slots take the runs in id order (they cost the same): the first hangs, the second
    # finishes, the third hangs, so the fourth never starts.
    hung = f"hang:2@run_id={ids[0]};hang:2@run_id={ids[2]}"
    stilts("run", str(spec), "--db", str(db), "--slots", "2", env=os.environ | {"STILTS_FAULT_INJECT": hung})
    wait_for(lambda: db.exists() and [runs_by_status(db).get(i) for i in ids[:3]] == ["running", "finished", "running"],
             timeout=300, what="one run finished and two hung")
    # The store says "running" the moment the runner launches a worker (a journal line, not a
    # file rewrite): wait until both hung workers have started, as the test means them to.
    wait_for(lambda: all(any(e["event"] == "started" for e in read_events(runs[i].events_path)) for i in (0, 2)),
             timeout=300, what="both hung runs started")
    state = RunnerFiles(db).read_state()
    root = psutil.Process(state["pid"])
    workers = root.children(recursive=True)
    os.kill(state["pid"], signal.SIGKILL)
    psutil.wait_procs(workers, timeout=10)  # workers die with their runner
    before = by_id(db)
    damaged = db.read_bytes()[:40]
    db.write_bytes(damaged)

    out = stilts("recover", "--db", str(db), "--out", str(tmp_path / "new.json")).stdout
    new = tmp_path / "new.json"
    assert "(1 finished, 3 queued)" in out
    rebuilt = by_id(new)
    assert {k: rebuilt[ids[1]].get(k) for k in FIELDS} == {k: before[ids[1]].get(k) for k in FIELDS}
    for i in (ids[0], ids[2]):  # cut mid-attempt: queued again, as a resumed runner queues them
        assert rebuilt[i]["status"] == "queued" and rebuilt[i]["attempts"] == 1 and rebuilt[i]["reason"] == "interrupted"
        assert rebuilt[i]["config"] == before[i]["config"]
    assert rebuilt[ids[3]]["status"] == "queued" and rebuilt[ids[3]]["attempts"] == 0  # from the sweep file alone
    assert rebuilt[ids[3]]["config"] == before[ids[3]]["config"]

    stilts("resume", "--db", str(new), "--foreground")  # no fault this time
    after = by_id(new)
    assert {r["status"] for r in after.values()} == {"finished"} and set(after) == set(ids)
    assert after[ids[1]]["finished_at"] == before[ids[1]]["finished_at"]  # kept, not trained again
    assert [after[i]["attempts"] for i in ids] == [2, 1, 2, 1]
    for cfg in runs:  # exactly one result per run, also in the event logs
        assert [e["event"] for e in read_events(cfg.events_path)].count("finished") == 1, cfg.run_id
    assert db.read_bytes() == damaged
    json.loads(new.read_text())  # a whole results file
