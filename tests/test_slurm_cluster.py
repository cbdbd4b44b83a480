"""Against a real Slurm: a single-node cluster (munged, MariaDB, slurmdbd, slurmctld, slurmd)
started here by tests/slurm/cluster.sh, the Debian packages installed first where they are
missing. A small sweep goes through it end to end: one run is cancelled with `stilts stop`, the
runner is SIGKILLed with jobs still in Slurm's hands, `stilts resume` re-attaches to them, and
every run ends exactly once — in the store, in the event logs and in Slurm's own accounting. A
runner killed between sbatch and writing the job ids down has its jobs cancelled by name on
resume, and its runs submitted once more."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from conftest import wait_for
from runner_helpers import stilts
from test_runner import sweep_spec, write_toml

from stilts_tui.domain.events import read_events
from stilts_tui.runner.files import RunnerFiles, runner_alive
from stilts_tui.store import Store
from stilts_tui.sweep.placement import runs_for
from stilts_tui.sweep.spec import parse_spec

CLUSTER = Path(__file__).parent / "slurm" / "cluster.sh"
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sbatch", "sacct")


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the Slurm integration test starts munged, slurmctld and slurmd itself, which needs root "
                    "(CI runs as root); run it as root or in a container")
    if not all(shutil.which(d) or Path("/usr/sbin", d).exists() for d in DAEMONS):
        if shutil.which("apt-get") is None:
            pytest.skip("Slurm is not installed and this machine has no apt-get to install it "
                        "(Debian packages: slurm-wlm munge slurmdbd mariadb-server)")
        proc = subprocess.run([str(CLUSTER), "install"], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.skip(f"could not install the Slurm packages with apt-get: {proc.stderr.strip()[-300:]}")
    # Not under tmp_path: pytest makes its base folder 0700, and mysqld, running as its own user, must
    # reach its data folder. Removed again below.
    folder = Path(tempfile.mkdtemp(prefix="stilts-slurm-"))
    folder.chmod(0o755)  # mysqld runs as its own user and must reach its data folder
    up = subprocess.run([str(CLUSTER), "up", str(folder)], capture_output=True, text=True, timeout=300)
    if up.returncode != 0:
        subprocess.run([str(CLUSTER), "down", str(folder)], capture_output=True, timeout=120)
        logs = "\n".join(f"{p.name}: {p.read_text(errors='replace')[-400:]}" for p in (folder / "log").glob("*.log"))
        pytest.fail(f"the packages are installed but the cluster did not start:\n{up.stderr[-1000:]}\n{logs}")
    env = os.environ | {"SLURM_CONF": str(folder / "slurm.conf")}
    yield env
    subprocess.run([str(CLUSTER), "down", str(folder)], capture_output=True, timeout=120)
    shutil.rmtree(folder, ignore_errors=True)
    # Job steps of a test that failed mid-way outlive slurmd (no cgroups here): end them too.
    base = str(tmp_path_factory.getbasetemp())
    for proc in psutil.process_iter(["cmdline"]):
        if base in " ".join(proc.info["cmdline"] or []) and "results.slurm" in " ".join(proc.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                proc.kill()


def sacct_jobs(env: dict) -> dict[str, str]:
    out = subprocess.run(["sacct", "--allocations", "--noheader", "--parsable2", "--format=JobID,State",
                          "--starttime=now-1hour"], capture_output=True, text=True, env=env, check=True).stdout
    return {line.split("|")[0]: line.split("|")[1].split()[0] for line in out.splitlines() if line.strip()}


def test_a_wrong_partition_is_named_before_anything_is_submitted(slurm_env, tiny_models, train_data, tmp_path):
    raw = sweep_spec(tiny_models, train_data, intermediates=("none",)) | {
        "executor": "slurm", "slurm": {"partition": "gpu-a100", "gpus_per_run": 0, "cpus_per_run": 1}}
    spec = write_toml(tmp_path / "s.toml", raw)
    proc = stilts("run", str(spec), "--db", str(tmp_path / "r.json"), check=False, env=slurm_env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "partition 'gpu-a100' does not exist on this cluster (partitions: debug*)" in proc.stderr
    assert "fix:" in proc.stderr
    no_slurm = stilts("run", str(spec), "--db", str(tmp_path / "r.json"), check=False,
                      env=slurm_env | {"PATH": str(Path(os.sys.executable).parent)})
    assert no_slurm.returncode == 2 and "Slurm is not reachable from here: sbatch" in no_slurm.stderr


def job_state(accounting: dict[str, str], job: str | None) -> str | None:
    """A job's sacct state; sacct lists an array's tasks that have not started as one entry, "12_[1-3%2]"."""
    if not job or job in accounting:
        return accounting.get(job) if job else None
    array, _, _ = job.partition("_")
    return next((st for key, st in accounting.items() if key.startswith(f"{array}_[")), None)


def test_sweep_through_slurm_with_a_cancel_a_killed_runner_and_a_resume(slurm_env, tiny_models, train_data, tmp_path):
    raw = sweep_spec(tiny_models, train_data, seeds=(1, 2), intermediates=("none", "hellaswag"), epochs=2) | {
        "executor": "slurm",
        "slurm": {"gpus_per_run": 0, "cpus_per_run": 1, "mem_gb": 2, "time_min": 10, "poll_s": 1.0}}
    db = tmp_path / "results.json"
    runs = runs_for(parse_spec(raw), db)  # the runs as `stilts run` places them for this results file
    assert len(runs) == 5  # one intermediate, four targets
    doomed = next(r for r in runs if r.kind == "target" and r.intermediate == "none" and r.seed == 2)
    spec = write_toml(tmp_path / "s.toml", raw)
    # The job environment inherits the faults: the doomed run hangs; the runs from the intermediate wait at
    # step 2 until the gate file exists, so Slurm still holds them when the runner is killed.
    gate = tmp_path / "gate"
    env = slurm_env | {"STILTS_FAULT_INJECT": f"hang:2@run_id={doomed.run_id};gate:2@intermediate=hellaswag",
                       "STILTS_FAULT_GATE": str(gate)}
    stilts("run", str(spec), "--db", str(db), env=env)

    # Live: the runs' queue states and the hanging run's own events, read while its job runs.
    wait_for(lambda: any(e["event"] == "step" for e in read_events(doomed.events_path)), timeout=180,
             what="the doomed run training in its job")
    status = json.loads(stilts("status", "--db", str(db), "--json", env=slurm_env).stdout)
    assert status["runner"] == "running"
    mine = next(r for r in status["running"] if r["run_id"] == doomed.run_id)
    assert mine["queue_state"] == "RUNNING" and mine["slurm_job"]
    assert "Slurm jobs:" in stilts("status", "--db", str(db), env=slurm_env).stdout

    # Cancel one run: its job is scancelled and the run recorded as stopped.
    out = stilts("stop", doomed.run_id, "--db", str(db), "--timeout", "120", env=slurm_env).stdout
    assert "stopped" in out
    doomed_job = Store(db).get(doomed.run_id)["slurm_job"]
    wait_for(lambda: sacct_jobs(slurm_env).get(doomed_job) == "CANCELLED", timeout=60, what="sacct CANCELLED")

    # Kill the runner while Slurm still holds the gated jobs. (The hellaswag intermediate, whose label the
    # gate also matches, takes one step on the fixture's two rows, so it never reaches the gate.)
    files = RunnerFiles(db)
    state = files.read_state()
    gated = [r for r in runs if r.kind == "target" and r.intermediate == "hellaswag"]
    wait_for(lambda: all(any(e["event"] == "step" for e in read_events(r.events_path)) for r in gated), timeout=180,
             what="the gated runs training in their jobs")
    in_slurm = [r for r in Store(db).runs() if r["run_id"] in {g.run_id for g in gated}]
    wait_for(lambda: all(job_state(sacct_jobs(slurm_env), r.get("slurm_job")) == "RUNNING" for r in in_slurm),
             timeout=60, what="sacct RUNNING for the gated jobs")
    os.kill(state["pid"], signal.SIGKILL)
    time.sleep(0.5)
    json.loads(db.read_text())  # the store is intact
    live = sacct_jobs(slurm_env)
    assert all(job_state(live, r["slurm_job"]) == "RUNNING" for r in in_slurm), live  # the jobs outlive their runner
    gate.touch()

    stilts("resume", "--db", str(db), "--foreground", env=slurm_env, timeout=600)
    recs = {r["run_id"]: r for r in Store(db).runs()}
    for r in in_slurm:  # followed to their end in the jobs they had, not submitted again
        assert recs[r["run_id"]]["slurm_job"] == r["slurm_job"] and recs[r["run_id"]]["attempts"] == 1
    assert recs.pop(doomed.run_id)["status"] == "stopped"
    assert {r["status"] for r in recs.values()} == {"finished"}
    for cfg in runs:
        finished = [e for e in read_events(cfg.events_path) if e["event"] == "finished"]
        assert len(finished) == (0 if cfg is doomed else 1), cfg.run_id
    # Exactly once in Slurm too: one job per run, none submitted twice by the resume. (sacct
    # lags the jobs' ends by a few seconds.)
    job_ids = {r["slurm_job"] for r in Store(db).runs()}
    assert len(job_ids) == len(runs)

    def ours() -> dict[str, str]:
        arrays = {j.split("_")[0] for j in job_ids}
        return {j: s for j, s in sacct_jobs(slurm_env).items() if j in job_ids or j.split("_")[0] in arrays}

    wait_for(lambda: set(ours().values()) <= {"COMPLETED", "CANCELLED"}, timeout=90, what="sacct to see every job end")
    accounting = ours()
    assert len(accounting) == len(runs), accounting
    assert accounting.pop(doomed_job) == "CANCELLED" and set(accounting.values()) == {"COMPLETED"}


def test_a_hanging_run_on_slurm_is_cancelled_at_its_stall_limit_and_runs_again(slurm_env, tiny_models, train_data,
                                                                                tmp_path):
    raw = sweep_spec(tiny_models, train_data, seeds=(1,), intermediates=("none",)) | {
        "executor": "slurm", "stall_limit_min": 0.25,  # 15 s (45 s while the job starts and loads)
        "slurm": {"gpus_per_run": 0, "cpus_per_run": 1, "mem_gb": 2, "time_min": 10, "poll_s": 1.0}}
    spec = write_toml(tmp_path / "s.toml", raw)
    db = tmp_path / "results.json"
    env = slurm_env | {"STILTS_FAULT_INJECT": "hang_once:2"}  # the first attempt hangs at step 2
    stilts("run", str(spec), "--db", str(db), "--foreground", env=env, timeout=600)
    [rec] = Store(db).runs()
    assert rec["status"] == "finished" and rec["attempts"] == 2
    [stalled] = rec["failures"]
    assert stalled["reason"] == "stalled" and "stall limit 15s" in stalled["message"]
    first_job = stalled["slot"].removeprefix("job ")
    wait_for(lambda: job_state(sacct_jobs(slurm_env), first_job) == "CANCELLED", timeout=60, what="sacct CANCELLED")


def test_stop_all_cancels_every_job_of_the_sweep(slurm_env, tiny_models, train_data, tmp_path):
    raw = sweep_spec(tiny_models, train_data, seeds=(1, 2), intermediates=("none",)) | {
        "executor": "slurm", "slurm": {"gpus_per_run": 0, "cpus_per_run": 1, "mem_gb": 2, "time_min": 10, "poll_s": 1.0}}
    spec = write_toml(tmp_path / "s.toml", raw)
    db = tmp_path / "results.json"
    stilts("run", str(spec), "--db", str(db), env=slurm_env | {"STILTS_FAULT_INJECT": "hang:2"})
    wait_for(lambda: [r.get("queue_state") for r in Store(db).runs()] == ["RUNNING", "RUNNING"], timeout=180,
             what="both jobs running")
    jobs = {r["slurm_job"] for r in Store(db).runs()}
    stilts("stop", "--all", "--db", str(db), env=slurm_env)
    assert {r["status"] for r in Store(db).runs()} == {"queued"}  # `stilts resume` runs them again
    wait_for(lambda: {sacct_jobs(slurm_env).get(j) for j in jobs} == {"CANCELLED"}, timeout=60, what="jobs cancelled")


def test_a_runner_killed_inside_sbatch_leaves_no_second_copy_of_a_run(slurm_env, tiny_models, train_data, tmp_path):
    raw = sweep_spec(tiny_models, train_data, seeds=(1,), intermediates=("none",)) | {
        "executor": "slurm", "slurm": {"gpus_per_run": 0, "cpus_per_run": 1, "mem_gb": 2, "time_min": 10, "poll_s": 1.0}}
    db = tmp_path / "results.json"
    [cfg] = runs_for(parse_spec(raw), db)
    spec = write_toml(tmp_path / "s.toml", raw)
    # The job hangs at step 2, so it is still in Slurm when the runner comes back.
    env = slurm_env | {"STILTS_RUNNER_FAULT": "after_sbatch", "STILTS_FAULT_INJECT": "hang_once:2"}
    stilts("run", str(spec), "--db", str(db), env=env, check=False)  # it may see its runner die at start
    wait_for(lambda: not runner_alive(RunnerFiles(db).read_state(), db), timeout=120, what="the runner to die after sbatch")
    rec = Store(db).get(cfg.run_id)
    assert rec["status"] == "running" and rec["slurm_job"] is None and rec["slurm_name"]
    wait_for(lambda: named_jobs(slurm_env, rec["slurm_name"]), timeout=60, what="the orphan job")
    [orphan] = named_jobs(slurm_env, rec["slurm_name"])
    # it trains, unknown to the store, until it hangs (the next attempt will not)
    wait_for((Path(cfg.output_dir) / ".fault-hang-once").exists, timeout=180, what="the orphan job training")

    stilts("resume", "--db", str(db), "--foreground", env=slurm_env, timeout=600)
    rec = Store(db).get(cfg.run_id)
    assert rec["status"] == "finished" and rec["slurm_job"] != orphan
    wait_for(lambda: sacct_jobs(slurm_env).get(orphan) == "CANCELLED", timeout=60, what="the orphan cancelled")
    assert len([e for e in read_events(cfg.events_path) if e["event"] == "finished"]) == 1


def named_jobs(env: dict, name: str) -> list[str]:
    out = subprocess.run(["sacct", "--allocations", "--noheader", "--parsable2", "--format=JobID,JobName",
                          "--starttime=now-1hour"], capture_output=True, text=True, env=env, check=True).stdout
    return [line.split("|")[0] for line in out.splitlines() if line.strip() and line.split("|")[1] == name]
