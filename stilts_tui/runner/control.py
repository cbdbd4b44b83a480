"""What the CLI and the app do to a runner: start one detached, stop runs or the whole
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
from stilts_tui.runner.files import RunnerFiles
from stilts_tui.runner.identity import holds_lock, lock_holders, runner_process, worker_process
from stilts_tui.runner.options import RunnerOptions

START_TIMEOUT_S = 120.0


def ensure_no_runner(files: RunnerFiles) -> None:
    state = files.read_state()
    runner = files.runner(state)
    if runner is not None:
        raise StiltsError(f"a sweep ({(state or {}).get('name')}) is already running on {files.db} (runner pid {runner.pid})",
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
    """The sweep file of the last runner on `db`: what `resume` continues. A damaged state file
    falls back to the newest sweep file (they are named by their start time)."""
    files = RunnerFiles(db)
    ensure_no_runner(files)
    state = files.read_state() or {}
    if state.get("sweep_file"):
        return state["sweep_file"]
    newest = sorted(files.sweeps.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name)) \
        if files.sweeps.is_dir() else []
    if newest:
        return str(newest[-1])
    raise StiltsError(f"no sweep to resume on {db}", f"start one with stilts run SPEC --db {db}")


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def sweep_processes(db: Path, state: dict | None) -> list[psutil.Process]:
    """The runner and its workers (and anything they started), each proven to be this results
    file's (runner/identity.py): a pid in the state file is only a hint. With the state file
    damaged, the runner is found as the process holding the store's lock."""
    files = RunnerFiles(db)
    state = state or {}
    root = runner_process(db, state.get("pid"), state.get("create_time"))
    # A damaged state file cannot name the runner: the store's lock still does.
    roots = [root] if root is not None else (lock_holders(db) if state.get("damaged") or not state else [])
    procs: list[psutil.Process] = []
    for p in roots:
        with contextlib.suppress(psutil.Error):
            procs += [p, *p.children(recursive=True)]
    for slot in state.get("slots") or []:
        w = worker_process(files.db, slot.get("worker_pid"))
        if w is not None and all(p.pid != w.pid for p in procs):
            procs.append(w)
    return procs


def stop_all(db: Path, timeout: float = 30.0) -> dict:
    """End the sweep: the runner stops its workers and puts in-flight runs back in the queue;
    whatever is still alive after `timeout` is killed. Returns what was stopped. The request file
    is a courtesy (it also cancels Slurm jobs): a control folder that cannot be written does not
    keep a sweep from stopping, SIGTERM does the same."""
    files = RunnerFiles(db)
    state = files.read_state()
    procs = sweep_processes(db, state)
    if not procs:
        return {"runner": None, "killed": 0, "cancelled": _cancel_orphan_jobs(db)}
    note = None
    try:
        files.request_stop(None)
    except StiltsError as exc:
        note = f"{exc.problem}: stopped by signal"
    runner = files.runner(state) or next((p for p in procs if holds_lock(p, db)), None)
    if runner is not None:
        with contextlib.suppress(psutil.Error):
            runner.send_signal(signal.SIGTERM)
    gone, alive = _wait_gone(procs, timeout)
    for p in alive:  # a runner that did not listen, or orphans of one that was SIGKILLed
        with contextlib.suppress(psutil.Error):
            if p.is_running():  # is_running also checks the start time: never a reused pid
                _kill_group(p.pid, signal.SIGKILL)
                p.kill()
    _wait_gone(alive, 10)
    with contextlib.suppress(OSError):
        (files.control / "stop-all").unlink()
    return {"runner": runner.pid if runner is not None else None, "killed": len(alive), "stopped": len(gone),
            "note": note}


def _scancel(rec: dict) -> None:
    """Cancel a run's Slurm job, by id when it was given one, else by the name it was submitted under."""
    cmd = ["scancel", str(rec["slurm_job"])] if rec.get("slurm_job") else ["scancel", "--name", rec["slurm_name"]]
    subprocess.run(cmd, capture_output=True, timeout=30, check=False)


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
        _scancel(r)
    with Store(db, writer=True) as store:
        store.update_many({r["run_id"]: {"status": "queued", "reason": "stopped", "queue_state": "CANCELLED",
                                         "message": "the sweep was stopped and its Slurm job cancelled; stilts resume runs it"}
                           for r in mine})
    return len(mine)


def _wait_gone(procs: list[psutil.Process], timeout: float) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(ended, still running) after at most `timeout`. An ended process whose parent has not
    reaped it yet (a runner the app started) is a zombie: it counts as ended."""
    def ended(p: psutil.Process) -> bool:
        try:
            return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    deadline = time.time() + timeout
    alive = list(procs)
    while alive and time.time() < deadline:
        alive = [p for p in alive if not ended(p)]
        if alive:
            time.sleep(0.1)
    alive = [p for p in alive if not ended(p)]
    return [p for p in procs if p not in alive], alive


def stop_run(db: Path, run_id: str, timeout: float = 30.0) -> str:
    """Stop one run; the rest of the sweep goes on. Returns the run's status afterwards."""
    from stilts_tui.store import Store

    files = RunnerFiles(db)
    with Store(db) as store:
        rec = store.get(run_id)
    if rec is None:
        raise StiltsError(f"no run {run_id} in {db}", f"list them with stilts results --runs --db {db}")
    if rec.get("status") in ("finished", "failed", "stopped", "blocked"):
        return rec["status"]
    if files.runner(files.read_state()) is not None:
        status = _ask_runner(files, "stop", [run_id], timeout,
                             done=lambda: _status(db, run_id) not in ("running", "queued"))
        if status == "done":
            return _status(db, run_id) or "?"
        if status == "pending":
            raise StiltsError(f"run {run_id} did not stop within {timeout:.0f} s", f"see {files.log}")
    # No runner (or it ended before it read the request): end what is left of the run ourselves.
    worker = worker_process(db, rec.get("pid"))
    if worker is not None:
        _kill_group(worker.pid, signal.SIGKILL)
    if rec.get("slurm_job") or rec.get("slurm_name"):
        import shutil

        if shutil.which("scancel") is None:
            raise StiltsError(f"run {run_id} is Slurm job {rec.get('slurm_job')}, and scancel is not on PATH here",
                              "run stilts stop on a node of the cluster")
        _scancel(rec)
    with Store(db, writer=True, lock_timeout=10) as store:
        store.update(run_id, status="stopped", pid=None, slot=None, reason="stopped", message="stopped by the user")
    return "stopped"


def _status(db: Path, run_id: str) -> str | None:
    from stilts_tui.store import Store

    with Store(db) as store:
        return (store.get(run_id) or {}).get("status")


def _ask_runner(files: RunnerFiles, kind: str | list[str], run_ids: list[str], timeout: float, done=None) -> str:
    """Drop requests for the running runner and wait until it has taken them all (and `done()`
    holds, when given). "done"; "gone" when the runner ended without reading them (they are taken
    back, so no later runner acts on a stale request); "pending" when it is still working on them."""
    kinds = [kind] * len(run_ids) if isinstance(kind, str) else kind
    paths = [files.request(k, r) for k, r in zip(kinds, run_ids, strict=True)]
    deadline = time.time() + timeout
    while time.time() < deadline:
        taken = not any(p.exists() for p in paths)
        if taken and (done is None or done()):
            return "done"
        if files.runner(files.read_state()) is None:
            left = [p for p in paths if files.withdraw(p)]
            return "done" if not left and (done is None or done()) else "gone"
        time.sleep(0.1)
    return "pending"


RETRY_WAIT_S = 20.0


def retry_run(db: Path, run_id: str, retrain: bool = False) -> str:
    """Run a failed, stopped or blocked run again (with `retrain`, a finished intermediate too,
    and what waited for it): through the sweep's runner when one works on the file, else by
    queueing it in the store and resuming the last sweep with it (runner/requeue.py says which runs)."""
    from stilts_tui.runner.requeue import retry_plan
    from stilts_tui.store import Store

    files = RunnerFiles(db)
    with Store(db) as store:
        records = {r["run_id"]: r for r in store.runs()}
    plan = retry_plan(records, run_id, db, retrain)
    extra = f" (with {', '.join(f'{r}: {plan.why[r]}' for r in plan.run_ids if r != run_id)})" \
        if len(plan.run_ids) > 1 else ""
    if files.runner(files.read_state()) is not None:
        kinds = ["retrain" if plan.why[r] == "retrain" else "retry" for r in plan.run_ids]
        got = _ask_runner(files, kinds, plan.run_ids, RETRY_WAIT_S)
        if got == "done":
            return f"run {run_id} queued again in the running sweep{extra}"
        if got == "pending":
            return (f"run {run_id}: asked the running sweep to run it again{extra}; it has not taken the request "
                    f"after {RETRY_WAIT_S:.0f} s (see stilts status --db {db})")
    return _retry_without_runner(db, run_id, plan, extra)


def _retry_without_runner(db: Path, run_id: str, plan, extra: str) -> str:
    """Queue the runs in the store and resume the last sweep with them added: the sweep `stilts
    resume` would continue stays the one that continues, its queued runs included."""
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.sweepfile import read_sweep, sweep_spec_path, write_sweep
    from stilts_tui.store import Store

    files = RunnerFiles(db)
    with Store(db, writer=True, lock_timeout=10) as store:
        records = {r["run_id"]: r for r in store.runs()}
        store.update_many({r: {"status": "queued", "retries": 0, "pid": None, "slot": None,
                               "reason": "retrain" if plan.why[r] == "retrain" else "retry",
                               "message": "queued again by the user"} for r in plan.run_ids})
    wanted = [RunConfig.from_dict(records[r]["config"]) for r in plan.run_ids]
    name, options, sweep_file = f"retry-{run_id}", RunnerOptions(), None
    runs: list[RunConfig] = []
    with contextlib.suppress(StiltsError):
        sweep_file = last_sweep(db)
        name, runs, options = read_sweep(sweep_file)
    known = {r.run_id for r in runs}
    if sweep_file is None or any(c.run_id not in known for c in wanted):
        runs = runs + [c for c in wanted if c.run_id not in known]
        sweep_file = str(write_sweep(files, name, runs, options, sweep_spec_path(sweep_file)))
    pid = start_detached(db, Path(sweep_file), resume=True)
    others = sum(1 for r in runs if r.run_id not in plan.why and (records.get(r.run_id) or {}).get("status") == "queued")
    also = f", with the {others} other queued run(s) of sweep {name}" if others else ""
    return f"run {run_id} queued again{extra}: runner started (pid {pid}){also}; stop it with stilts stop --all --db {db}"
