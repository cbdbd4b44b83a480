"""The runner's scheduling, driven by a fake executor (tests/fake_executor.py) instead of worker
processes: queue order, slots, the retry policy as the runner applies it, targets blocked by their
intermediate, stop and retry requests through the control folder, stop and resume. The store, the
control folder and the state file are the real ones; only the runs are scripted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_executor import FakeExecutor, Script, fails, finishes, hangs, oom_above

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.executor import last_word
from stilts_tui.runner.files import RunnerFiles
from stilts_tui.runner.loop import Runner
from stilts_tui.runner.outcomes import Failed, Finished, Lost
from stilts_tui.store import Store


def run(root: Path, run_id: str, kind: str = "target", task: str = "rte", parent: str | None = None,
        **kw) -> RunConfig:
    out = root / "runs" / run_id
    return RunConfig(run_id=run_id, kind=kind, model="m", task=task, intermediate=parent or "none",  # type: ignore[arg-type]
                     init_from=parent, init_checkpoint=str(root / "runs" / parent / "checkpoint") if parent else None,
                     output_dir=str(out), events_path=str(out / "events.jsonl"), **kw)


def sweep(db: Path, runs: list[RunConfig], fake: FakeExecutor, **kw) -> dict[str, int]:
    return Runner(db, runs, [], executor=fake, poll_s=0.01, **kw).run()


def records(db: Path) -> dict[str, dict]:
    with Store(db) as store:
        return {r["run_id"]: r for r in store.runs()}


def statuses(db: Path) -> dict[str, str]:
    return {k: r["status"] for k, r in records(db).items()}


# ------------------------------------------------------------------ the queue and the slots


def test_intermediates_first_then_longest_first(tmp_path):
    """One slot: the intermediates go first, the longer first (each unblocks its targets); then
    the longest target first, a target starting only once its intermediate's checkpoint is there."""
    runs = [run(tmp_path, "short", epochs=1), run(tmp_path, "long", task="winogrande_xs", epochs=10),
            run(tmp_path, "mid", epochs=3),
            run(tmp_path, "inter_a", kind="intermediate", task="cola", epochs=1),
            run(tmp_path, "inter_b", kind="intermediate", task="hellaswag", epochs=1),
            run(tmp_path, "from_a", parent="inter_a", epochs=5), run(tmp_path, "from_b", parent="inter_b", epochs=2)]
    fake = FakeExecutor(slots=1)
    counts = sweep(tmp_path / "r.json", runs, fake)
    # hellaswag (40k rows x 4 choices) outweighs cola; then rte (2,490 rows) by epochs, and
    # winogrande_xs (160 rows x 2 choices x 10 epochs) before one epoch of rte
    assert [r for r, _ in fake.starts] == ["inter_b", "inter_a", "from_a", "mid", "from_b", "long", "short"]
    assert counts["finished"] == 7 and set(statuses(tmp_path / "r.json").values()) == {"finished"}


def test_a_target_waits_for_its_intermediate_while_a_free_slot_takes_other_work(tmp_path):
    runs = [run(tmp_path, "inter", kind="intermediate", task="hellaswag"), run(tmp_path, "child", parent="inter", epochs=9),
            run(tmp_path, "plain")]
    fake = FakeExecutor(slots=2, scripts={"inter": finishes(steps=20)})
    sweep(tmp_path / "r.json", runs, fake)
    recs = records(tmp_path / "r.json")
    assert [r for r, _ in fake.starts] == ["inter", "plain", "child"]  # the longest target is not ready before
    assert recs["child"]["started_at"] >= recs["inter"]["finished_at"]


def test_no_more_runs_at_once_than_slots_and_every_slot_used(tmp_path):
    runs = [run(tmp_path, f"r{i}", seed=i) for i in range(9)]
    fake = FakeExecutor(slots=3, default=finishes(steps=3))
    counts = sweep(tmp_path / "r.json", runs, fake)
    assert counts["finished"] == 9 and fake.most_at_once == 3
    recs = records(tmp_path / "r.json")
    assert {r["slot"] for r in recs.values()} == {"fake0", "fake1", "fake2"}
    assert all(r["attempts"] == 1 and r["score"] == 0.5 and r["total_steps"] == 3 for r in recs.values())
    assert sorted(r for r, _ in fake.starts) == sorted(r.run_id for r in runs)  # each started once


# ------------------------------------------------------------------ retries


def test_transient_failures_are_retried_within_the_budget(tmp_path):
    runs = [run(tmp_path, "flaky"), run(tmp_path, "broken"), run(tmp_path, "nan")]
    fake = FakeExecutor(slots=2, scripts={"flaky": fails("killed", times=2, score=0.75), "broken": fails("error"),
                                          "nan": fails("nan_loss")})
    counts = sweep(tmp_path / "r.json", runs, fake, max_retries=2)
    recs = records(tmp_path / "r.json")
    flaky, broken, nan = recs["flaky"], recs["broken"], recs["nan"]
    assert flaky["status"] == "finished" and flaky["score"] == 0.75 and flaky["attempts"] == 3 and flaky["retries"] == 2
    assert [f["reason"] for f in flaky["failures"]] == ["killed", "killed"]
    assert [f["attempt"] for f in flaky["failures"]] == [1, 2]
    assert broken["status"] == "failed" and broken["attempts"] == 3 and "gave up after 2 retries" in broken["message"]
    assert nan["status"] == "failed" and nan["attempts"] == 1 and "not retried" in nan["message"]
    assert counts["finished"] == 1 and counts["failed"] == 2 and counts["retried"] == 4


def test_out_of_memory_halves_the_device_batch_until_it_fits(tmp_path):
    cfg = run(tmp_path, "big", batch_size=16, max_device_batch=32)
    fake = FakeExecutor(scripts={"big": oom_above(4)})
    counts = sweep(tmp_path / "r.json", [cfg], fake, max_retries=0)  # shrinking spends no retry
    rec = records(tmp_path / "r.json")["big"]
    assert rec["status"] == "finished" and rec["attempts"] == 3 and counts["retried"] == 2
    assert rec["config"]["max_device_batch"] == 4 and rec["config"]["batch_size"] == 16
    assert rec["micro_batch"] == 4 and rec["accumulation"] == 4
    assert [f["reason"] for f in rec["failures"]] == ["oom", "oom"] and rec["retries"] == 0
    assert [r.micro_batch()[0] for r in [o.run for o in fake.ended("big")]] == [16, 8, 4]


def test_fused_runs_share_a_slot_and_a_fused_oom_halves_the_group_first(tmp_path):
    """Runs with [train] fuse share one worker per group, each its own record saying so; a group
    that runs out of memory is retried with half as many trials, its device batch untouched, and
    an intermediate is never passed over for a group."""
    inter = run(tmp_path, "inter", kind="intermediate", task="hellaswag", fuse=4)
    targets = [run(tmp_path, f"t{i}", seed=i, lr=1e-3 * (1 + i % 2), fuse=4) for i in range(4)]
    fake = FakeExecutor(slots=1, default=Script(oom_fused_above=2))
    counts = sweep(tmp_path / "r.json", [*targets, inter], fake, max_retries=0)
    assert counts["finished"] == 5
    assert fake.groups[0] == ["inter"] and fake.groups[1] == ["t0", "t1", "t2", "t3"]
    assert sorted(map(len, fake.groups[2:])) == [2, 2]
    recs = records(tmp_path / "r.json")
    for t in targets:
        rec = recs[t.run_id]
        assert rec["failures"][0]["reason"] == "oom" and rec["retries"] == 0
        assert len(rec["fused_group"]) == 2 and t.run_id in rec["fused_group"]
        assert rec["config"]["max_device_batch"] == t.max_device_batch  # fewer trials first, not a smaller batch
    assert recs["inter"]["fused_group"] is None and recs["inter"]["fused_note"] == "no run it may fuse with was ready"


def test_a_study_that_fixes_its_device_batch_is_not_shrunk(tmp_path):
    cfg = run(tmp_path, "fixed", batch_size=16, device_batch=8)
    sweep(tmp_path / "r.json", [cfg], FakeExecutor(scripts={"fixed": oom_above(4)}))
    rec = records(tmp_path / "r.json")["fixed"]
    assert rec["status"] == "failed" and rec["attempts"] == 1 and "fixes its device batch at 8" in rec["message"]


def test_a_stalled_run_is_killed_and_retried(tmp_path):
    notices: list[str] = []
    fake = FakeExecutor(scripts={"slow": hangs(times=1)})
    counts = sweep(tmp_path / "r.json", [run(tmp_path, "slow")], fake, stall_limit_s=0.05, on_notice=notices.append)
    rec = records(tmp_path / "r.json")["slow"]
    assert rec["status"] == "finished" and rec["attempts"] == 2 and counts["stalled"] == 1
    [stall] = rec["failures"]
    assert stall["reason"] == "stalled" and "no progress for" in stall["message"]
    assert rec["stderr_tail"][0].startswith("Thread")  # the stacks dumped before the kill, not the worker's last words
    assert notices and "it is retried" in notices[0]


# ------------------------------------------------------------------ targets of an intermediate


def test_targets_of_a_failed_intermediate_are_blocked_and_the_others_run(tmp_path):
    runs = [run(tmp_path, "inter", kind="intermediate", task="hellaswag"),
            run(tmp_path, "t1", parent="inter"), run(tmp_path, "t2", parent="inter", seed=2), run(tmp_path, "plain")]
    db = tmp_path / "r.json"
    counts = sweep(db, runs, FakeExecutor(slots=2, scripts={"inter": fails("data_error")}))
    recs = records(db)
    assert recs["inter"]["status"] == "failed" and recs["plain"]["status"] == "finished"
    for t in ("t1", "t2"):
        assert recs[t]["status"] == "blocked" and recs[t]["reason"] == "intermediate_failed"
        assert "intermediate run inter is failed" in recs[t]["message"] and f"stilts retry {t}" in recs[t]["message"]
        assert recs[t]["attempts"] == 0
    assert counts["blocked"] == 2


def test_a_target_whose_intermediate_checkpoint_is_gone_is_blocked_with_the_retrain_hint(tmp_path):
    db = tmp_path / "r.json"
    inter, target = run(tmp_path, "inter", kind="intermediate", task="hellaswag"), run(tmp_path, "t", parent="inter")
    sweep(db, [inter], FakeExecutor())
    (Path(inter.output_dir) / "checkpoint").rmdir()
    sweep(db, [inter, target], FakeExecutor())
    rec = records(db)["t"]
    assert rec["status"] == "blocked" and "checkpoint is gone; stilts retry --retrain t" in rec["message"]


# ------------------------------------------------------------------ requests through the control folder


def test_stop_one_run_in_flight_and_one_queued_and_the_sweep_goes_on(tmp_path):
    db = tmp_path / "r.json"
    files = RunnerFiles(db)
    runs = [run(tmp_path, "hung", epochs=9), run(tmp_path, "queued"), run(tmp_path, "other", epochs=5)]
    fake = FakeExecutor(slots=1, scripts={"hung": hangs()})
    # one slot, longest first: the hanging run takes it; the two others wait their turn
    fake.when(lambda f: "hung" in f.running_now and f.running_now["hung"].step == 0,
              lambda: (files.request_stop("hung"), files.request_stop("queued")))
    counts = sweep(db, runs, fake)
    recs = records(db)
    assert recs["hung"]["status"] == "stopped" and recs["hung"]["message"] == "stopped by the user"
    assert recs["queued"]["status"] == "stopped" and recs["queued"]["message"] == "stopped by the user before it started"
    assert recs["other"]["status"] == "finished" and counts["stopped"] == 2
    [ended] = fake.ended("hung")
    assert isinstance(ended, Failed) and ended.stop_requested
    assert [r for r, _ in fake.starts] == ["hung", "other"]


def test_a_retry_request_queues_a_failed_run_again_in_the_running_sweep(tmp_path):
    db = tmp_path / "r.json"
    files = RunnerFiles(db)
    # "long" keeps the sweep running while "once" fails (not retried by the policy), then is retried by the user
    runs = [run(tmp_path, "once"), run(tmp_path, "long", seed=2)]
    fake = FakeExecutor(slots=2, scripts={"once": fails("data_error", times=1), "long": finishes(steps=400)})
    fake.when(lambda f: bool(f.ended("once")), lambda: files.request("retry", "once"))
    counts = sweep(db, runs, fake)
    rec = records(db)["once"]
    assert rec["status"] == "finished" and rec["attempts"] == 2 and rec["retries"] == 0
    assert [f["reason"] for f in rec["failures"]] == ["data_error"]
    assert counts["failed"] == 1 and counts["finished"] == 2


def test_a_target_is_retried_with_its_failed_intermediate(tmp_path):
    """`stilts retry` of a blocked target drops its intermediate's request first: both run again,
    the target after the intermediate's new checkpoint."""
    db = tmp_path / "r.json"
    files = RunnerFiles(db)
    runs = [run(tmp_path, "inter", kind="intermediate", task="hellaswag"), run(tmp_path, "t", parent="inter"),
            run(tmp_path, "long", seed=2)]
    fake = FakeExecutor(slots=2, scripts={"inter": fails("data_error", times=1), "long": finishes(steps=400)})
    fake.when(lambda f: bool(f.ended("inter")),
              lambda: (files.request("retry", "inter"), files.request("retry", "t")))
    sweep(db, runs, fake)
    recs = records(db)
    assert recs["inter"]["status"] == "finished" and recs["t"]["status"] == "finished"
    assert [r for r, _ in fake.starts].index("t") > [r for r, _ in fake.starts].index("inter", 1)


def test_retrain_trains_a_finished_intermediate_again_then_its_blocked_target(tmp_path):
    db = tmp_path / "r.json"
    files = RunnerFiles(db)
    inter, target = run(tmp_path, "inter", kind="intermediate", task="hellaswag"), run(tmp_path, "t", parent="inter")
    sweep(db, [inter], FakeExecutor())
    (Path(inter.output_dir) / "checkpoint").rmdir()
    fake = FakeExecutor(slots=2, scripts={"long": finishes(steps=400)})
    fake.when(lambda f: records(db)["t"]["status"] == "blocked",
              lambda: (files.request("retrain", "inter"), files.request("retry", "t")))
    sweep(db, [inter, target, run(tmp_path, "long", seed=2)], fake)
    recs = records(db)
    assert recs["inter"]["status"] == "finished" and recs["inter"]["attempts"] == 2
    assert recs["t"]["status"] == "finished"


# ------------------------------------------------------------------ stop and resume


def test_stop_all_then_resume_runs_the_rest_once_and_skips_the_finished(tmp_path):
    db = tmp_path / "r.json"
    files = RunnerFiles(db)
    runs = [run(tmp_path, f"r{i}", seed=i) for i in range(6)]
    first = FakeExecutor(slots=2, default=finishes(steps=4))
    first.when(lambda f: sum(isinstance(o, Finished) for o in f.reported) >= 2 and len(f.running_now) == 2,
               lambda: files.request_stop(None))
    counts = sweep(db, runs, first)
    before = statuses(db)
    done = {k for k, v in before.items() if v == "finished"}
    assert counts["finished"] == len(done) >= 2 and RunnerFiles(db).read_state()["status"] == "stopped"
    in_flight = {r.run.run_id for r in first.reported if isinstance(r, Lost)}
    assert len(in_flight) == 2 and all(records(db)[k]["reason"] == "stopped" for k in in_flight)
    assert {v for k, v in before.items() if k not in done} == {"queued"}
    assert first.shutdown_cancel  # stop --all cancels (Slurm jobs), though its request file is gone once read

    second = FakeExecutor(slots=2)
    counts = sweep(db, runs, second, resume=True)
    assert set(statuses(db).values()) == {"finished"} and counts["skipped"] == len(done)
    assert {r for r, _ in second.starts} == {r.run_id for r in runs} - done
    assert all(records(db)[k]["attempts"] == 2 for k in in_flight)  # the stopped attempt, then the one that finished
    assert RunnerFiles(db).read_state()["status"] == "finished"


def test_a_resumed_sweep_does_not_retry_what_failed_and_a_new_run_gives_it_a_fresh_budget(tmp_path):
    db = tmp_path / "r.json"
    runs = [run(tmp_path, "bad"), run(tmp_path, "good")]
    sweep(db, runs, FakeExecutor(scripts={"bad": fails("error")}), max_retries=1)
    assert records(db)["bad"]["retries"] == 1 and statuses(db)["bad"] == "failed"
    resumed = FakeExecutor()
    sweep(db, runs, resumed, resume=True)
    assert resumed.starts == [] and statuses(db)["bad"] == "failed"
    again = FakeExecutor(scripts={"bad": fails("error", times=0)})
    counts = sweep(db, runs, again)
    assert again.starts == [("bad", 3)] and statuses(db)["bad"] == "finished" and counts["skipped"] == 1


def test_a_killed_runners_sweep_resumes_from_its_store_and_event_logs(tmp_path):
    """What a SIGKILLed runner leaves: runs still marked running. On resume, one whose event log
    holds its attempt's `finished` keeps that result; one that did not get that far runs again
    (an intermediate before its waiting target); finished runs are skipped; queued ones run."""
    from stilts_tui.runner.loop import run_record

    db = tmp_path / "r.json"
    runs = [run(tmp_path, "done"), run(tmp_path, "said_done", seed=2), run(tmp_path, "todo", seed=3),
            run(tmp_path, "inter", kind="intermediate", task="hellaswag"), run(tmp_path, "child", parent="inter")]
    sweep(db, runs[:1], FakeExecutor())
    with Store(db, writer=True) as store:
        store.add_runs(run_record(r) for r in runs[1:])
        store.update_many({"said_done": {"status": "running", "attempts": 1, "pid": 4242},
                           "inter": {"status": "running", "attempts": 1, "pid": 4243}})
    base = {"v": 1, "attempt": 1, "t": 5.0}
    for cfg, events in ((runs[1], ["started", "finished"]), (runs[3], ["started"])):
        Path(cfg.events_path).parent.mkdir(parents=True)
        Path(cfg.events_path).write_text("".join(json.dumps(base | {"run_id": cfg.run_id, "event": e}
                                                            | ({"metrics": {"score": 0.9, "metric": "accuracy"},
                                                                "wall_s": 3.0} if e == "finished" else {})) + "\n"
                                                 for e in events))
    fake = FakeExecutor(slots=2)
    counts = sweep(db, runs, fake, resume=True)
    recs = records(db)
    assert set(statuses(db).values()) == {"finished"}
    assert counts["skipped"] == 1 and counts["recovered"] == 1 and counts["finished"] == 3
    assert recs["said_done"]["score"] == 0.9 and recs["said_done"]["attempts"] == 1 and "recovered" in recs["said_done"]["message"]
    assert fake.starts[:2] == [("inter", 2), ("todo", 1)] and fake.starts[2] == ("child", 1)


@pytest.mark.parametrize("where", ["stdout", "log", "neither"])
def test_a_run_that_finished_as_the_sweep_stopped_keeps_its_result(where, tmp_path):
    """The stop lands after a worker wrote `finished` but before the runner read it: the result is
    kept (from the unread lines, or from the event log) instead of training again; a run stopped
    mid-way goes back to the queue."""
    db = tmp_path / "r.json"
    files = RunnerFiles(db)
    at_stop = None if where == "neither" else where
    fake = FakeExecutor(scripts={"r": hangs(score=0.625, at_stop=at_stop)})
    fake.when(lambda f: "r" in f.running_now and f.running_now["r"].step == 0, lambda: files.request_stop(None))
    counts = sweep(db, [run(tmp_path, "r")], fake)
    rec = records(db)["r"]
    if where == "neither":
        assert rec["status"] == "queued" and rec["reason"] == "stopped" and counts["finished"] == 0
    else:
        assert rec["status"] == "finished" and rec["score"] == 0.625 and counts["finished"] == 1


def test_the_last_word_of_a_stopped_worker_is_its_attempts_own():
    cfg = RunConfig(run_id="r", kind="target", model="m", task="rte")
    base = {"v": 1, "run_id": "r", "t": 1.0, "event": "finished", "metrics": {"score": 0.5}}
    earlier, other = base | {"attempt": 1}, base | {"attempt": 2, "run_id": "s"}
    assert last_word(cfg, 2, [earlier, other]) is None  # an earlier attempt's line, another run's line
    mine = base | {"attempt": 2}
    assert last_word(cfg, 2, [earlier, mine]) == Finished(cfg, 2, mine)  # type: ignore[arg-type]


def test_the_state_file_names_the_executor_and_its_slots(tmp_path):
    db = tmp_path / "r.json"
    files = RunnerFiles(db)
    seen: list[dict] = []

    def running(_fake: FakeExecutor) -> bool:
        state = files.read_state() or {}
        return state.get("status") == "running" and len(state["slots"]) == 2 and bool(seen.append(state) or True)

    fake = FakeExecutor(slots=2, default=hangs())
    fake.when(running, lambda: files.request_stop(None))  # the state file is rewritten at most once a second
    sweep(db, [run(tmp_path, "a"), run(tmp_path, "b", seed=2)], fake)
    state = seen[-1]
    assert state["executor"] == "fake" and state["pending"] == 2
    assert {s["run_id"] for s in state["slots"]} == {"a", "b"} and set(state["stalls"]) == {"a", "b"}
