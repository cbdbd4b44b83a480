"""Fused trials in the runner (runner/fusing.py, the local executor): the runs of a sweep with
`[train] fuse` train in one worker per group, and each is still its own run in the store, in its
events and in its checkpoint; groups never reorder what depends on an intermediate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from runner_helpers import run_runs

from stilts_tui.domain.events import read_events
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.fusing import form_groups
from stilts_tui.store import Store
from stilts_tui.sweep.placement import runs_for
from stilts_tui.sweep.spec import parse_spec


def cfg(run_id: str, **kw) -> RunConfig:
    base = dict(kind="target", model="m", task="rte", fuse=4, run_id=run_id)
    return RunConfig(**(base | kw))


def test_groups_keep_the_queue_order_and_fuse_only_what_may():
    inter = cfg("i", kind="intermediate", task="hellaswag")
    ready = [inter, cfg("a", lr=1e-3), cfg("b", max_length=64), cfg("c", lr=2e-3, seed=3, batch_size=32, max_device_batch=16),
             cfg("d", precision="fp16"), cfg("e", seed=9), cfg("f", seed=10), cfg("g", seed=11)]
    groups = form_groups(ready, free=10, auto=4)
    assert [[c.run_id for c in g] for g in groups] == [["i"], ["a", "c", "e", "f"], ["b"], ["d"], ["g"]]
    # one free worker: the head of the queue (the intermediate) is never passed over for a group
    assert [[c.run_id for c in g] for g in form_groups(ready, free=1, auto=4)] == [["i"]]
    # a cap learnt from a fused OOM halves the group its run may join
    assert [len(g) for g in form_groups(ready[1:], free=1, caps={"a": 2}, auto=4)] == [2]
    # fuse off: each alone
    assert all(len(g) == 1 for g in form_groups([replace(c, fuse=1) for c in ready], free=10))


def test_a_fused_sweep_records_each_trial_as_its_own_run(tiny_nodrop, train_data, tmp_path):
    spec = parse_spec({"name": "fused", "model": str(tiny_nodrop), "data_dir": str(train_data), "intermediates": ["none"],
                       "targets": ["rte"], "grid": {"lr": [1e-3, 5e-4], "batch_size": [4], "seed": [1, 2]},
                       "tasks": {"rte": {"epochs": 1, "max_length": 32, "train_size": 16}},
                       "train": {"fuse": 4, "precision": "fp32", "max_device_batch": 2}})
    db = tmp_path / "results.json"
    runs = runs_for(spec, db)
    assert len(runs) == 4 and all(r.fuse == 4 for r in runs)
    counts = run_runs(runs, db, slots=1)
    assert counts["finished"] == 4
    recs = {r["run_id"]: r for r in Store(db).runs()}
    ids = sorted(r.run_id for r in runs)
    for r in runs:
        rec = recs[r.run_id]
        assert rec["status"] == "finished" and sorted(rec["fused_group"]) == ids
        evs = read_events(r.events_path)
        assert [e["event"] for e in evs][0] == "started" and evs[-1]["event"] == "finished"
        assert {e["run_id"] for e in evs} == {r.run_id}
        assert next(e for e in evs if e["event"] == "started")["fused"]["size"] == 4
    # the app says which ran fused, each trial still its own run
    from stilts_tui.app.detail_screen import detail_text
    from stilts_tui.app.format import run_row
    from stilts_tui.domain.run import Run

    one = Run(recs[ids[0]])
    assert sorted(one.fused_with) == ids[1:] and run_row(one, None)["slot"].endswith("⊕4")
    assert "trained fused with 3 other run(s)" in detail_text(one)


def test_stopping_one_run_of_a_fused_group_requeues_the_others_without_a_retry(tiny_nodrop, train_data, tmp_path,
                                                                              monkeypatch):
    import threading

    from conftest import wait_for

    from stilts_tui.runner.files import RunnerFiles

    spec = parse_spec({"name": "fused", "model": str(tiny_nodrop), "data_dir": str(train_data), "intermediates": ["none"],
                       "targets": ["rte"], "grid": {"lr": [1e-3, 5e-4], "batch_size": [4], "seed": [1]},
                       "tasks": {"rte": {"epochs": 1, "max_length": 32, "train_size": 8}},
                       "train": {"fuse": 2, "precision": "fp32", "max_device_batch": 2}})
    db = tmp_path / "results.json"
    runs = runs_for(spec, db)
    gate = tmp_path / "gate"
    monkeypatch.setenv("STILTS_FAULT_GATE", str(gate))
    stopped, other = runs[0].run_id, runs[1].run_id

    def stop_one() -> None:  # both in flight in one worker: stop one, then let the rest train
        wait_for(lambda: all(Path(r.events_path).is_file() and "started" in Path(r.events_path).read_text() for r in runs),
                 what="both runs started")
        RunnerFiles(db).request_stop(stopped)
        wait_for(lambda: (Store(db).get(stopped) or {}).get("status") == "stopped", what="the stop")
        gate.touch()

    t = threading.Thread(target=stop_one, daemon=True)
    t.start()
    counts = run_runs(runs, db, slots=1, fault="gate:1")
    t.join(timeout=5)
    recs = {r["run_id"]: r for r in Store(db).runs()}
    assert recs[stopped]["status"] == "stopped" and counts["stopped"] == 1
    assert recs[other]["status"] == "finished" and recs[other].get("retries", 0) == 0
    assert recs[other]["attempts"] == 2 and recs[other]["fused_note"] == "no run it may fuse with was ready"
