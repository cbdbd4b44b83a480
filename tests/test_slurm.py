"""The Slurm executor's plumbing, with submitit's LocalExecutor standing in for a cluster: spec
settings, the sbatch script submitit writes from them, clear errors without Slurm, the runner
submitting packs of runs and following them through their event logs, and a job told it is out
of time saving its run, being requeued and continuing from the saved step."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import psutil
import pytest
import submitit
from conftest import wait_for
from test_runner import sweep_spec

from stilts_tui.domain.events import read_events
from stilts_tui.errors import SpecError, StiltsError
from stilts_tui.runner.loop import Runner
from stilts_tui.runner.slurm.check import check_slurm
from stilts_tui.runner.slurm.lane import SlurmLane, normalise_state
from stilts_tui.store import Store
from stilts_tui.sweep.expand import expand
from stilts_tui.sweep.slurm_settings import SlurmSettings
from stilts_tui.sweep.spec import parse_spec


def slurm_spec(tiny_models, train_data, **slurm) -> dict:
    return sweep_spec(tiny_models, train_data, seeds=(1, 2, 3), intermediates=("none",)) | {
        "executor": "slurm", "slurm": {"gpus_per_run": 0, "cpus_per_run": 1, "time_min": 10} | slurm}


# ------------------------------------------------------------------ settings and sbatch


def test_spec_takes_the_slurm_settings_and_names_what_is_wrong(tiny_models, train_data):
    spec = parse_spec(slurm_spec(tiny_models, train_data, partition="gpu", runs_per_job=2))
    assert spec.executor == "slurm" and spec.slurm is not None and (spec.slurm.partition, spec.slurm.runs_per_job) == ("gpu", 2)
    base = sweep_spec(tiny_models, train_data)
    for bad, words in [({"executor": "kubernetes"}, "executor = 'kubernetes' is not known"),
                       ({"executor": "slurm", "slurm": {"partiton": "gpu"}}, "unknown key 'partiton' (did you mean 'partition'?)"),
                       ({"executor": "slurm", "slurm": {"time_min": "4h"}}, "time_min = '4h' is not an integer"),
                       ({"executor": "slurm", "slurm": {"runs_per_job": 0}}, "runs_per_job = 0 is out of range"),
                       ({"executor": "slurm", "slurm": {"gpus_per_run": -1}}, "gpus_per_run = -1 is out of range"),
                       ({"executor": "slurm", "slurm": {"mem_gb": 0}}, "mem_gb = 0 is out of range"),
                       ({"executor": "slurm", "slurm": {"setup": ["ok", 3]}}, "setup = ['ok', 3] is not a list of strings"),
                       ({"executor": "slurm", "slurm": {"sbatch": {"gres": ["gpu"]}}}, "sbatch = {'gres': ['gpu']} is not a table of strings or integers or numbers or true or false"),
                       ({"slurm": {"partition": "gpu"}}, 'executor is not "slurm"'),
                       # a value that would break out of its #SBATCH line into lines of its own
                       ({"executor": "slurm", "slurm": {"partition": "gpu\n#SBATCH --uid=0"}}, "holds a line break"),
                       ({"executor": "slurm", "slurm": {"sbatch": {"constraint": "a100\nrm -rf ~"}}},
                        "sbatch.constraint"),
                       ({"executor": "slurm", "slurm": {"setup": ["module load cuda\nexit"]}}, "setup[0]"),
                       ({"executor": "slurm", "slurm": {"sbatch": {"x y": "1"}}}, "is not an sbatch option name")]:
        with pytest.raises(SpecError) as err:
            parse_spec(base | bad)
        assert words in err.value.problem and err.value.fix


def test_the_sbatch_script_carries_every_setting(tmp_path):
    from submitit.slurm.slurm import _make_sbatch_string

    settings = SlurmSettings(partition="gpu", gpus_per_run=2, cpus_per_run=8, mem_gb=64, time_min=90, account="nlp",
                             qos="high", sbatch={"constraint": "a100", "exclude": "node7"}, setup=["module load cuda"])
    lane = SlurmLane(settings, tmp_path, executor=submitit.LocalExecutor(tmp_path))
    text = _make_sbatch_string(command="python -m x", folder=tmp_path, map_count=3, **lane.parameters())
    for line in ("--partition=gpu", "--gpus-per-node=2", "--cpus-per-task=8", "--mem=65536M", "--time=90",
                 "--account=nlp", "--qos=high", "--constraint=a100", "--exclude=node7", "--array=0-2%3",
                 "--signal=USR2@"):
        assert f"#SBATCH {line}" in text, line
    assert "module load cuda" in text


def test_without_slurm_the_error_names_the_problem_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, sinfo, sacct, scancel
    with pytest.raises(StiltsError) as err:
        check_slurm(SlurmSettings())
    assert "Slurm is not reachable" in err.value.problem and "sbatch" in err.value.problem
    assert "login node" in err.value.fix


def test_states_read_as_slurm_spells_them():
    assert normalise_state("CANCELLED by 0") == "CANCELLED"
    assert normalise_state("FINISHED") == "COMPLETED"  # the LocalExecutor's word
    assert normalise_state(None) == "UNKNOWN"


# ------------------------------------------------------------------ the runner with a stand-in cluster


def local_lane(tmp_path: Path, **kw) -> SlurmLane:
    settings = SlurmSettings(gpus_per_run=0, cpus_per_run=1, poll_s=0.5, **kw)
    executor = submitit.LocalExecutor(tmp_path / "jobs")
    executor.update_parameters(timeout_min=10)
    return SlurmLane(settings, tmp_path / "jobs", executor=executor)


def test_runs_go_out_as_jobs_packed_two_per_job_and_every_result_lands_once(tiny_models, train_data, tmp_path):
    raw = sweep_spec(tiny_models, train_data, seeds=(1, 2, 3), intermediates=("hellaswag",))
    runs = expand(parse_spec(raw), tmp_path)
    db = tmp_path / "results.json"
    lane = local_lane(tmp_path, runs_per_job=2, max_jobs=2)
    counts = Runner(db, runs, [], lane=lane, poll_s=0.1).run()
    assert counts["finished"] == len(runs) == 4
    recs = Store(db).runs()
    assert {r["status"] for r in recs} == {"finished"} and {r["executor"] for r in recs} == {"slurm"}
    assert {r["queue_state"] for r in recs} <= {"COMPLETED", "RUNNING"}
    jobs = {r["slurm_job"] for r in recs}
    inter = next(r for r in recs if r["kind"] == "intermediate")
    # The intermediate goes out alone (its targets wait for its checkpoint); the three targets
    # then go as two jobs (2 + 1 runs).
    assert len(jobs) == 3 and sum(r["slurm_job"] == inter["slurm_job"] for r in recs) == 1
    for cfg in runs:
        assert len([e for e in read_events(cfg.events_path) if e["event"] == "finished"]) == 1
        assert cfg.resume_every_s == 600  # the sweep default; the job saves at least as often as [slurm] asks
    assert all(r["config"]["resume_every_s"] == 600 for r in recs)


def test_a_job_out_of_time_saves_its_run_is_requeued_and_continues_from_the_saved_step(tiny_models, train_data,
                                                                                       tmp_path, monkeypatch):
    raw = sweep_spec(tiny_models, train_data, seeds=(1,), intermediates=("none",), epochs=4)
    [cfg] = expand(parse_spec(raw), tmp_path)
    db = tmp_path / "results.json"
    monkeypatch.setenv("STILTS_FAULT_INJECT", "hang_once:3")  # the job is still busy when its time runs out
    runner = Runner(db, [cfg], [], lane=local_lane(tmp_path), poll_s=0.1)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    # At step 3 it hangs (leaving its marker); steps 1 and 2 are done, nothing saved yet (every 10 min).
    wait_for(lambda: (Path(cfg.output_dir) / ".fault-hang-once").exists(), what="the hang at step 3")
    assert not (Path(cfg.output_dir) / "resume.pt").exists()
    # What Slurm does before the time limit (--signal=USR2@N): USR2 to the job's process. (The
    # LocalExecutor's own _interrupt signals its controller, which USR2 would simply end.)
    controller = psutil.Process(runner.executor.jobs[cfg.run_id].job._process.pid)
    [task] = [p for p in controller.children(recursive=True) if "submitit.core._submit" in " ".join(p.cmdline())]
    task.send_signal(signal.SIGUSR2)
    thread.join(timeout=240)
    assert not thread.is_alive()
    events = read_events(cfg.events_path)
    assert [e["step"] for e in events if e["event"] == "resumed"] == [2]
    assert len([e for e in events if e["event"] == "started"]) == 2
    assert len([e for e in events if e["event"] == "finished"]) == 1 and not [e for e in events if e["event"] == "failed"]
    [rec] = Store(db).runs()
    assert rec["status"] == "finished" and rec["attempts"] == 1


def test_the_app_shows_where_a_slurm_run_waits(tmp_path):
    from stilts_tui.app.detail_screen import detail_text
    from stilts_tui.app.format import run_row
    from stilts_tui.domain.run import Run

    rec = {"run_id": "abc123", "status": "running", "kind": "target", "intermediate": "none", "target": "rte",
           "lr": 1e-5, "batch_size": 16, "warmup_ratio": 0.0, "seed": 1, "attempts": 1, "executor": "slurm",
           "slurm_job": "812_3", "queue_state": "PENDING", "slot": "job 812_3", "device": "slurm",
           "events_path": str(tmp_path / "none.jsonl"), "config": {}}
    row = run_row(Run(rec), None)
    assert row["progress"] == "pending" and row["slot"] == "job 812_3"
    assert "Slurm job 812_3: PENDING" in detail_text(Run(rec))
    requeued = Run(rec | {"queue_state": "RUNNING", "device": "gpu-node-7", "requeues": 1})
    assert run_row(requeued, None)["progress"] == "loading"
    assert "Slurm job 812_3: RUNNING on gpu-node-7, requeued 1×" in detail_text(requeued)


def test_the_queue_tells_a_lost_job_from_a_controller_that_does_not_answer(tmp_path, monkeypatch):
    lane = SlurmLane(SlurmSettings(gpus_per_run=0), tmp_path, executor=submitit.LocalExecutor(tmp_path))
    lane.is_slurm = True  # ask squeue as on a cluster; squeue here is a script
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    squeue = bin_dir / "squeue"
    for script, expected in (("echo RUNNING", "RUNNING"), ("echo PENDING", "PENDING"), ("exit 0", "LOST"),
                             ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", "LOST"),
                             ("echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1", "UNKNOWN")):
        squeue.write_text(f"#!/bin/sh\n{script}\n")
        squeue.chmod(0o755)
        assert lane.queue_state("42") == expected, script


def test_a_job_slurm_lost_track_of_is_given_up_and_its_run_goes_again(tiny_models, train_data, tmp_path, monkeypatch):
    """sacct never learns of the job and squeue does not hold it: not waited on forever; the run
    fails as killed with the reason said, is retried, and its result lands once."""
    raw = sweep_spec(tiny_models, train_data, seeds=(1,), intermediates=("none",))
    [cfg] = expand(parse_spec(raw), tmp_path)
    db = tmp_path / "results.json"
    monkeypatch.setenv("STILTS_FAULT_INJECT", "hang_once:2")  # the lost job never finishes by itself
    lane = local_lane(tmp_path)
    lane.lost_after_s = 1.0
    lost: dict = {}
    real_state = lane.state

    hung = Path(cfg.output_dir) / ".fault-hang-once"

    def state(job) -> str:
        # The first job goes unknown once it hangs (not before: a retry must not reach the hang first).
        lost.setdefault("job", job)
        return "UNKNOWN" if job is lost["job"] and hung.exists() else real_state(job)

    monkeypatch.setattr(lane, "state", state)
    monkeypatch.setattr(lane, "queue_state", lambda job_id: "LOST" if job_id == lost["job"].job_id else "RUNNING")
    monkeypatch.setattr("stilts_tui.runner.slurm.lane.DEFAULT_GRACE_S", 0.5)
    runner = Runner(db, [cfg], [], lane=lane, poll_s=0.1)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    thread.join(timeout=240)
    lost["job"].cancel(check=False)  # the hung stand-in process; on a cluster it is gone already
    assert not thread.is_alive()
    [rec] = Store(db).runs()
    assert rec["status"] == "finished" and rec["attempts"] == 2, rec
    [failure] = rec["failures"]
    assert failure["reason"] == "killed" and "no record of the job" in failure["message"]
    assert len([e for e in read_events(cfg.events_path) if e["event"] == "finished"]) == 1
