"""What the CLI (and later the TUI) does to a runner: start one detached, stop runs or the whole
sweep, and read where a sweep stands. Nothing here trains; everything goes through the runner's
files and process groups."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from stilts_tui.errors import StiltsError
from stilts_tui.runner.files import RunnerFiles, process_alive, runner_alive
from stilts_tui.runner.options import RunnerOptions

START_TIMEOUT_S = 120.0


def ensure_no_runner(files: RunnerFiles) -> None:
    state = files.read_state()
    if runner_alive(state):
        raise StiltsError(f"a sweep ({state.get('name')}) is already running on {files.db} (runner pid {state['pid']})",
                          f"watch it with `stilts status --db {files.db}`, stop it with `stilts stop --all --db {files.db}`, "
                          "or use another --db")


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def start_detached(db: Path, sweep_file: Path, resume: bool = False, env: dict | None = None) -> int:
    """Start the runner in its own session (no terminal: closing it, or losing SSH, does not
    reach the runner) and wait until it holds the store; returns its pid."""
    files = RunnerFiles(db)
    files.make_dirs()
    before = files.read_state()
    cmd = [sys.executable, "-m", "stilts_tui.runner", "--db", str(db), "--sweep", str(sweep_file)]
    if resume:
        cmd.append("--resume")
    log_start = files.log.stat().st_size if files.log.is_file() else 0
    with files.log.open("ab") as log:
        os.chmod(files.log, 0o600)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        state = files.read_state()
        if state and state.get("pid") == proc.pid and state != before and state.get("status") != "starting":
            return proc.pid
        if proc.poll() is not None:
            try:
                with files.log.open("rb") as fh:
                    fh.seek(log_start)
                    out = fh.read().decode("utf-8", errors="replace").strip()
            except OSError:
                out = ""
            errors = [ln.split(" error: ", 1)[1] if " error: " in ln else ln for ln in out.splitlines()]
            if proc.returncode == 0:  # finished at once: nothing left to run
                return proc.pid
            raise StiltsError("the runner stopped at start: " + (" ".join(errors[-2:]) or f"exit code {proc.returncode}"),
                              f"see {files.log}")
        time.sleep(0.1)
    raise StiltsError(f"the runner did not start within {START_TIMEOUT_S:.0f} s", f"see {files.log}")


def launch(db: Path, name: str, runs: list, options: RunnerOptions, spec_path: str | None) -> int:
    """Start a detached runner for these runs (refused while another runner works on `db`);
    returns its pid."""
    from stilts_tui.runner.sweepfile import write_sweep

    files = RunnerFiles(db)
    ensure_no_runner(files)
    return start_detached(db, write_sweep(files, name, runs, options, spec_path))


def last_sweep(db: Path) -> str:
    """The sweep file of the last runner on `db`: what `resume` continues."""
    files = RunnerFiles(db)
    ensure_no_runner(files)
    state = files.read_state()
    if not state or not state.get("sweep_file"):
        raise StiltsError(f"no sweep to resume on {db}", f"start one with stilts run SPEC --db {db}")
    return state["sweep_file"]


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def sweep_processes(state: dict | None) -> list[psutil.Process]:
    """The runner and its workers (and anything they started), while they exist."""
    procs: list[psutil.Process] = []
    if not state:
        return procs
    if process_alive(state.get("pid"), state.get("create_time")):
        root = psutil.Process(state["pid"])
        procs = [root, *root.children(recursive=True)]
    for slot in state.get("slots", []):
        pid = slot.get("worker_pid")
        if pid and process_alive(pid) and all(p.pid != pid for p in procs):
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if "stilts_tui.train" in " ".join(p.cmdline()):
                    procs.append(p)
    return procs


def stop_all(db: Path, timeout: float = 30.0) -> dict:
    """End the sweep: the runner stops its workers and puts in-flight runs back in the queue;
    whatever is still alive after `timeout` is killed. Returns what was stopped."""
    files = RunnerFiles(db)
    state = files.read_state()
    procs = sweep_processes(state)
    if not procs:
        return {"runner": None, "killed": 0, "cancelled": _cancel_orphan_jobs(db)}
    files.request_stop(None)
    if runner_alive(state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state["pid"], signal.SIGTERM)
    gone, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:  # a runner that did not listen, or orphans of one that was SIGKILLed
        with contextlib.suppress(psutil.Error):
            _kill_group(p.pid, signal.SIGKILL)
            p.kill()
    psutil.wait_procs(alive, timeout=10)
    with contextlib.suppress(OSError):
        (files.control / "stop-all").unlink()
    return {"runner": state.get("pid") if state else None, "killed": len(alive), "stopped": len(gone)}


def _cancel_orphan_jobs(db: Path) -> int:
    """Slurm jobs of a sweep whose runner is gone: cancelled, their runs queued for `resume`."""
    import shutil

    from stilts_tui.store import Store

    if not db.is_file():
        return 0
    with Store(db) as store:
        mine = [r for r in store.runs() if r.get("status") == "running" and (r.get("slurm_job") or r.get("slurm_name"))]
    if not mine:
        return 0
    if shutil.which("scancel") is None:
        raise StiltsError(f"{len(mine)} run(s) of this sweep are Slurm jobs, and scancel is not on PATH here",
                          "run stilts stop --all on a node of the cluster")
    for r in mine:
        cmd = ["scancel", str(r["slurm_job"])] if r.get("slurm_job") else ["scancel", "--name", r["slurm_name"]]
        subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    with Store(db, writer=True) as store:
        store.update_many({r["run_id"]: {"status": "queued", "reason": "stopped", "queue_state": "CANCELLED",
                                         "message": "the sweep was stopped and its Slurm job cancelled; stilts resume runs it"}
                           for r in mine})
    return len(mine)


def stop_run(db: Path, run_id: str, timeout: float = 30.0) -> str:
    """Stop one run; the rest of the sweep goes on. Returns the run's status afterwards."""
    from stilts_tui.store import Store

    files = RunnerFiles(db)
    state = files.read_state()
    with Store(db) as store:
        rec = store.get(run_id)
    if rec is None:
        raise StiltsError(f"no run {run_id} in {db}", f"list them with stilts results --runs --db {db}")
    if rec.get("status") in ("finished", "failed", "stopped", "blocked"):
        return rec["status"]
    if runner_alive(state):
        files.request_stop(run_id)
        deadline = time.time() + timeout
        while time.time() < deadline:
            with Store(db) as store:
                status = (store.get(run_id) or {}).get("status")
            if status not in ("running", "queued"):
                return status or "?"
            time.sleep(0.2)
        raise StiltsError(f"run {run_id} did not stop within {timeout:.0f} s", f"see {files.log}")
    # No runner: kill what may be left of the run and record it ourselves.
    if rec.get("pid"):
        _kill_group(rec["pid"], signal.SIGKILL)
    if rec.get("slurm_job") or rec.get("slurm_name"):
        import shutil

        if shutil.which("scancel") is None:
            raise StiltsError(f"run {run_id} is Slurm job {rec.get('slurm_job')}, and scancel is not on PATH here",
                              "run stilts stop on a node of the cluster")
        cmd = ["scancel", str(rec["slurm_job"])] if rec.get("slurm_job") else ["scancel", "--name", rec["slurm_name"]]
        subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    with Store(db, writer=True) as store:
        store.update(run_id, status="stopped", pid=None, slot=None, reason="stopped", message="stopped by the user")
    return "stopped"


def retry_run(db: Path, run_id: str) -> str:
    """Run a failed, stopped or blocked run again: through the sweep's runner when one works on
    the file, else with a new detached runner for that run alone."""
    from stilts_tui.store import Store
    from stilts_tui.train.config import RunConfig

    files = RunnerFiles(db)
    with Store(db) as store:
        rec = store.get(run_id)
    if rec is None:
        raise StiltsError(f"no run {run_id} in {db}", f"list them with stilts results --runs --db {db}")
    if rec.get("status") in ("running", "queued", "finished"):
        return f"run {run_id} is {rec['status']}: nothing to retry"
    if runner_alive(files.read_state()):
        files.request("retry", run_id)
        return f"run {run_id} queued again in the running sweep"
    options = RunnerOptions()  # the last sweep's executor and slots: a Slurm sweep's run is retried on Slurm
    state = files.read_state()
    if state and state.get("sweep_file"):
        from stilts_tui.runner.sweepfile import read_sweep

        with contextlib.suppress(StiltsError):
            options = read_sweep(state["sweep_file"])[2]
    pid = launch(db, f"retry-{run_id}", [RunConfig.from_dict(rec["config"])], options, None)
    return f"run {run_id}: runner started (pid {pid})"
