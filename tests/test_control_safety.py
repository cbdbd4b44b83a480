"""stop, retry and resume touch only processes that prove they are this results file's, and every
request is either done or answered with what to do (issue 40, items 1, 2 and 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import wait_for
from runner_helpers import run_runs, stilts

from stilts_tui.errors import StiltsError
from stilts_tui.runner import control
from stilts_tui.runner.files import RunnerFiles, runner_alive
from stilts_tui.runner.loop import run_record
from stilts_tui.runner.options import RunnerOptions
from stilts_tui.runner.status import render_status, sweep_status
from stilts_tui.runner.sweepfile import read_sweep, write_sweep
from stilts_tui.store import Store
from stilts_tui.sweep.placement import runs_for
from stilts_tui.sweep.spec import parse_spec


def _spawn(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True, **kw)


@pytest.fixture
def decoy():
    """A process stilts did not start: it must outlive every command below."""
    p = _spawn([sys.executable, "-c", "import time; time.sleep(300)", "stilts_tui.train"])
    wait_for(lambda: psutil.pid_exists(p.pid), what="decoy")
    yield p
    p.kill()
    p.wait()


def _fake_runner(db: Path, hold_s: float = 300) -> subprocess.Popen:
    """A process holding the store's writer lock, as a runner does for its whole life."""
    code = ("import sys, time; from stilts_tui.store import Store; s = Store(sys.argv[1], writer=True); "
            "print('ready', flush=True); time.sleep(float(sys.argv[2]))")
    p = subprocess.Popen([sys.executable, "-c", code, str(db), str(hold_s)], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def _state(db: Path, **fields) -> None:
    files = RunnerFiles(db)
    files.db.parent.mkdir(parents=True, exist_ok=True)
    files.state.write_text(json.dumps(fields))


def _alive(p: subprocess.Popen) -> bool:
    return p.poll() is None


# ------------------------------------------------------------------ item 1: never a stranger's process


@pytest.mark.parametrize("with_create_time", [False, True])
def test_stop_all_never_signals_a_process_the_state_file_names_but_stilts_did_not_start(decoy, tmp_path,
                                                                                       with_create_time):
    db = tmp_path / "r.json"
    Store(db, writer=True).close()
    ct = psutil.Process(decoy.pid).create_time() if with_create_time else None
    _state(db, status="running", pid=decoy.pid, create_time=ct,
           slots=[{"id": "cpu0", "device": "cpu", "threads": 1, "worker_pid": decoy.pid, "run_id": None}])
    out = stilts("stop", "--all", "--db", str(db))
    assert "no sweep is running" in out.stdout
    time.sleep(0.3)
    assert _alive(decoy)
    assert not runner_alive(RunnerFiles(db).read_state(), db)
    status = json.loads(stilts("status", "--db", str(db), "--json").stdout)
    assert status["runner"] == "died"
    control.ensure_no_runner(RunnerFiles(db))  # a decoy does not block a new sweep either


def test_pid_1_in_the_state_file_is_not_signalled(tmp_path, monkeypatch):
    db = tmp_path / "r.json"
    Store(db, writer=True).close()
    _state(db, status="running", pid=1, create_time=None)
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.setattr(os, "killpg", lambda pid, sig: sent.append((pid, sig)))
    assert control.stop_all(db, timeout=1)["runner"] is None
    assert sent == []


def test_stop_of_a_run_never_kills_the_pid_its_record_names_unless_it_is_our_worker(decoy, tmp_path):
    db, (_, *targets), _ = _sweep_store(tmp_path, {0: "running"})
    with Store(db, writer=True) as store:
        store.update(targets[0].run_id, pid=decoy.pid)
    assert control.stop_run(db, targets[0].run_id, timeout=1) == "stopped"
    time.sleep(0.3)
    assert _alive(decoy)


def test_a_real_worker_of_this_results_file_is_found_and_an_orphan_is_stopped(tmp_path):
    db = tmp_path / "r.json"
    Store(db, writer=True).close()
    files = RunnerFiles(db)
    files.make_dirs()
    with (files.workers / "cpu0.stderr.log").open("ab") as err:
        orphan = _spawn([sys.executable, "-c", "import time; time.sleep(300)", "-m", "stilts_tui.train"], stderr=err)
    try:
        wait_for(lambda: any(f.path.endswith("cpu0.stderr.log") for f in psutil.Process(orphan.pid).open_files()),
                 what="worker up")
        _state(db, status="running", pid=999_999_999, create_time=None,
               slots=[{"id": "cpu0", "device": "cpu", "threads": 1, "worker_pid": orphan.pid, "run_id": None}])
        assert [p.pid for p in control.sweep_processes(db, files.read_state())] == [orphan.pid]
        control.stop_all(db, timeout=2)
        wait_for(lambda: orphan.poll() is not None, timeout=10, what="orphan worker stopped")
    finally:
        orphan.kill()


def test_the_runner_is_proven_by_the_store_lock_it_holds(tmp_path):
    db = tmp_path / "r.json"
    runner = _fake_runner(db)
    try:
        ct = psutil.Process(runner.pid).create_time()
        _state(db, status="running", pid=runner.pid, create_time=ct)
        assert runner_alive(RunnerFiles(db).read_state(), db)
        _state(db, status="running", pid=runner.pid, create_time=ct - 50)  # a reused pid: another start time
        assert not runner_alive(RunnerFiles(db).read_state(), db)
        other = tmp_path / "other.json"
        Store(other, writer=True).close()
        _state(other, status="running", pid=runner.pid, create_time=ct)  # another results file's runner
        assert not runner_alive(RunnerFiles(other).read_state(), other)
        out = control.stop_all(other, timeout=1)
        assert out["runner"] is None and _alive(runner)
    finally:
        runner.kill()
        runner.wait()


@pytest.mark.parametrize("state", ['{"status": "running", "pid": "abc"}', "[]", '{"slots": "x"}',
                                   '{"status": "running", "heartbeat": "yesterday"}', "{", ""])
def test_a_damaged_state_file_is_one_message_and_the_sweep_can_still_be_stopped(tmp_path, state):
    db = tmp_path / "r.json"
    runner = _fake_runner(db)
    try:
        RunnerFiles(db).state.write_text(state)
        st = render_status(sweep_status(db))  # what `stilts status` prints
        assert "state file" in st and "is damaged" in st and "delete it" in st
        json.dumps(sweep_status(db))
        out = stilts("stop", "--all", "--db", str(db), "--timeout", "5")
        assert f"runner pid {runner.pid}" in out.stdout and "Traceback" not in out.stderr
        assert runner.wait(timeout=10) == -signal.SIGTERM
    finally:
        runner.kill()
        runner.wait()


def test_an_unwritable_control_folder_still_lets_the_sweep_stop_by_signal(tmp_path):
    db = tmp_path / "r.json"
    runner = _fake_runner(db)
    try:
        files = RunnerFiles(db)
        files.control.write_text("not a folder")  # what a folder we may not write looks like, even to root
        _state(db, status="running", pid=runner.pid, create_time=psutil.Process(runner.pid).create_time())
        out = stilts("stop", "--all", "--db", str(db), "--timeout", "5")
        assert f"runner pid {runner.pid}" in out.stdout and "stopped by signal" in out.stderr
        assert "Traceback" not in out.stderr
        assert runner.wait(timeout=10) == -signal.SIGTERM
        for cmd in (["stop", "abc123abc123"], ["resume"]):
            bad = stilts(*cmd, "--db", str(db), check=False)
            assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    finally:
        runner.kill()
        runner.wait()


def test_run_resume_on_an_unwritable_control_folder_is_one_message(tmp_path):
    files = RunnerFiles(tmp_path / "r.json")
    files.control.parent.mkdir(parents=True, exist_ok=True)
    files.control.write_text("")
    with pytest.raises(StiltsError, match=r"cannot write .*r\.control.*") as err:
        files.make_dirs()
    assert "chmod u+rwx" in (err.value.fix or "")
    with pytest.raises(StiltsError, match="control folder"):
        files.request("retry", "abc123abc123")


def test_a_request_never_names_a_path(tmp_path):
    files = RunnerFiles(tmp_path / "r.json")
    with pytest.raises(StiltsError, match="is not a run id"):
        files.request("retry", "../../escaped")
    assert not (tmp_path.parent / "escaped").exists()


# ------------------------------------------------------------------ item 2: no request lost


def _sweep_store(tmp_path: Path, targets_status: dict[int, str], parent_status: str = "finished",
                 checkpoint: bool = True) -> tuple[Path, list, RunnerFiles]:
    """A results file of one sweep (a HellaSwag intermediate and RTE targets over four seeds),
    its runs in the given statuses, and a stopped runner's state naming its sweep file."""
    raw = {"name": "ctl", "model": str(tmp_path / "model"), "data_dir": str(tmp_path / "data"),
           "intermediates": ["hellaswag"], "targets": ["rte"], "grid": {"lr": [1e-3], "batch_size": [8],
                                                                        "seed": [1, 2, 3, 4]}}
    db = tmp_path / "results.json"
    runs = runs_for(parse_spec(raw), db)
    parent = next(r for r in runs if r.kind == "intermediate")
    targets = [r for r in runs if r.kind != "intermediate"]
    if checkpoint:
        Path(targets[0].init_checkpoint).mkdir(parents=True, exist_ok=True)
    with Store(db, writer=True) as store:
        store.add_runs(run_record(r) for r in runs)
        store.update(parent.run_id, status=parent_status)
        for i, st in targets_status.items():
            store.update(targets[i].run_id, status=st)
    files = RunnerFiles(db)
    sweep = write_sweep(files, "ctl", runs, RunnerOptions(), None)
    _state(db, status="stopped", pid=999_999_999, create_time=1.0, sweep_file=str(sweep),
           run_ids=[r.run_id for r in runs])
    return db, [parent, *targets], files


@pytest.fixture
def started(monkeypatch):
    """start_detached, recorded instead of started."""
    calls: list[tuple[Path, Path, bool]] = []
    monkeypatch.setattr(control, "start_detached", lambda db, sweep, resume=False, env=None:
                        calls.append((db, Path(sweep), resume)) or 4242)
    return calls


def test_retry_without_a_runner_resumes_the_last_sweep_with_its_queued_runs(tmp_path, started):
    db, (parent, *targets), files = _sweep_store(tmp_path, {0: "failed", 1: "queued", 2: "queued", 3: "finished"})
    msg = control.retry_run(db, targets[0].run_id)
    assert "runner started (pid 4242)" in msg and "2 other queued run(s)" in msg
    [(_, sweep_file, resume)] = started
    assert resume  # what `stilts resume` continues: nothing dropped, nothing retried that was not asked
    assert {r.run_id for r in read_sweep(sweep_file)[1]} == {parent.run_id, *(t.run_id for t in targets)}
    assert Store(db).get(targets[0].run_id)["status"] == "queued"
    assert Store(db).get(targets[3].run_id)["status"] == "finished"


def test_retry_of_a_target_whose_intermediate_failed_queues_the_intermediate_first(tmp_path, started):
    db, (parent, *targets), _ = _sweep_store(tmp_path, {0: "blocked"}, parent_status="failed")
    msg = control.retry_run(db, targets[0].run_id)
    assert parent.run_id in msg and "needed by" in msg
    assert Store(db).get(parent.run_id)["status"] == "queued"
    assert Store(db).get(targets[0].run_id)["status"] == "queued"


def test_a_deleted_intermediate_checkpoint_is_not_a_dead_end(tmp_path, started):
    db, (parent, *targets), _ = _sweep_store(tmp_path, {0: "blocked", 1: "blocked"}, checkpoint=False)
    with pytest.raises(StiltsError, match="checkpoint is gone") as err:
        control.retry_run(db, targets[0].run_id)
    assert f"stilts retry --retrain {targets[0].run_id}" in (err.value.fix or "")
    with pytest.raises(StiltsError, match="stilts retry --retrain"):
        control.retry_run(db, parent.run_id)  # finished: retrying it needs --retrain
    msg = control.retry_run(db, parent.run_id, retrain=True)
    assert "runner started" in msg
    assert {Store(db).get(r.run_id)["status"] for r in (parent, targets[0], targets[1])} == {"queued"}


def test_a_retry_the_finishing_runner_never_read_is_taken_back_and_run(tmp_path, started):
    """The ~4 s where a runner on its way out still says `running`: the retry is not lost."""
    db, (parent, *targets), files = _sweep_store(tmp_path, {0: "failed"})
    Store(db).close()
    runner = _fake_runner(db, hold_s=1.5)  # "finishes" without reading its control folder
    try:
        _state(db, status="running", pid=runner.pid, create_time=psutil.Process(runner.pid).create_time(),
               sweep_file=json.loads(files.state.read_text()).get("sweep_file"))
        msg = control.retry_run(db, targets[0].run_id)
    finally:
        runner.kill()
        runner.wait()
    assert "runner started" in msg and started
    assert not list(files.control.glob("retry-*"))  # no stale request left for a later runner
    assert Store(db).get(targets[0].run_id)["status"] == "queued"


def test_a_stop_the_finishing_runner_never_read_is_still_done(tmp_path, started):
    db, (_, *targets), files = _sweep_store(tmp_path, {0: "running"})
    runner = _fake_runner(db, hold_s=1.5)
    try:
        _state(db, status="running", pid=runner.pid, create_time=psutil.Process(runner.pid).create_time())
        assert control.stop_run(db, targets[0].run_id, timeout=20) == "stopped"
    finally:
        runner.kill()
        runner.wait()
    assert not list(files.control.glob("stop-*"))


def _intermediate_without_checkpoint(tiny_models, train_data, db: Path):
    """A HellaSwag intermediate trained for real into `db`, then its checkpoint deleted; returns
    (the sweep's runs, the intermediate, its RTE target)."""
    import shutil

    raw = {"name": "retrain", "model": str(tiny_models["roberta"]), "data_dir": str(train_data),
           "intermediates": ["hellaswag"], "targets": ["rte"], "grid": {"lr": [1e-3], "batch_size": [8], "seed": [1]},
           "intermediate": {"lr": 1e-3, "batch_size": 2},
           "tasks": {"rte": {"epochs": 1, "max_length": 32}, "hellaswag": {"epochs": 1, "max_length": 32}}}
    runs = runs_for(parse_spec(raw), db)
    parent = next(r for r in runs if r.kind == "intermediate")
    target = next(r for r in runs if r.kind != "intermediate")
    run_runs([parent], db)
    shutil.rmtree(target.init_checkpoint)
    return runs, parent, target


def test_retrain_a_deleted_checkpoint_end_to_end(tiny_models, train_data, tmp_path):
    """A real sweep: the intermediate's checkpoint is deleted, its target is blocked, and
    `stilts retry --retrain` trains the intermediate again and then the target."""
    db = tmp_path / "results.json"
    runs, parent, target = _intermediate_without_checkpoint(tiny_models, train_data, db)
    run_runs(runs, db, resume=True)
    blocked = Store(db).get(target.run_id)
    assert blocked["status"] == "blocked" and f"stilts retry --retrain {target.run_id}" in blocked["message"]
    refused = stilts("retry", target.run_id, "--db", str(db), check=False)
    assert refused.returncode == 2 and "--retrain" in refused.stderr
    out = stilts("retry", "--retrain", target.run_id, "--db", str(db)).stdout
    assert "runner started" in out
    wait_for(lambda: Store(db).get(target.run_id)["status"] == "finished", timeout=240, what="target trained")
    assert Path(target.init_checkpoint).is_dir()
    wait_for(lambda: not runner_alive(RunnerFiles(db).read_state(), db), timeout=60, what="runner end")


def test_the_runner_takes_a_retrain_request(tiny_models, train_data, tmp_path):
    """A retrain request in the control folder makes the runner train a finished intermediate again."""
    db = tmp_path / "results.json"
    _, parent, target = _intermediate_without_checkpoint(tiny_models, train_data, db)
    RunnerFiles(db).request("retrain", parent.run_id)
    counts = run_runs([parent], db, resume=True)
    assert counts["finished"] == 1 and Path(target.init_checkpoint).is_dir()
    assert Store(db).get(parent.run_id)["status"] == "finished"


def test_temporary_files_a_killed_writer_left_are_removed_when_the_writer_opens(tmp_path):
    db = tmp_path / "r.json"
    Store(db, writer=True).close()
    files = RunnerFiles(db)
    left = [tmp_path / ".r.json.k1l2.tmp", tmp_path / ".r.runner.json.x9.tmp"]
    keep = tmp_path / ".other.json.a1.tmp"  # another file's: not ours to remove
    for p in (*left, keep):
        p.write_text("{")
    Store(db, writer=True).close()
    assert not left[0].exists() and left[1].exists()
    run_runs([], db)
    assert not left[1].exists() and keep.exists() and files.read_state()["status"] == "finished"
