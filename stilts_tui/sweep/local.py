"""Running a sweep's runs on this machine, one at a time: each run is a worker subprocess
whose events stream back line by line; the store records exactly one outcome per attempt."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from stilts_tui.store import Store
from stilts_tui.sweep.spec import describe
from stilts_tui.train.config import RunConfig
from stilts_tui.train.events import EventWriter, parse_event

OnEvent = Callable[[RunConfig, dict], None]


def run_record(cfg: RunConfig) -> dict:
    """The store's view of a run: the grouping fields at the top level, the full config inside."""
    return {"run_id": cfg.run_id, "kind": cfg.kind, "intermediate": cfg.intermediate, "target": cfg.task,
            "model": cfg.model, "lr": cfg.lr, "batch_size": cfg.batch_size, "warmup_ratio": cfg.warmup_ratio,
            "seed": cfg.seed, "epochs": cfg.epochs, "max_length": cfg.max_length, "train_size": cfg.train_size,
            "init_from": cfg.init_from, "spec": cfg.spec_name, "config": asdict(cfg),
            "events_path": cfg.events_path, "output_dir": cfg.output_dir}


def _stderr_tail(path: Path, lines: int = 12) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return []


def worker_command(run_file: Path) -> list[str]:
    return [sys.executable, "-m", "stilts_tui.train", str(run_file)]


def execute(cfg: RunConfig, store: Store, on_event: OnEvent | None = None, env: dict | None = None) -> dict:
    """Run one worker to its end and record the outcome; returns the store's updated record."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / "run.json"
    run_file.write_text(cfg.to_json(), encoding="utf-8")
    stderr_path = out / "stderr.log"
    attempts = (store.get(cfg.run_id) or {}).get("attempts", 0) + 1
    store.update(cfg.run_id, status="running", started_at=time.time(), attempts=attempts, reason=None, message=None)
    final: dict | None = None
    with stderr_path.open("ab") as err:
        proc = subprocess.Popen(worker_command(run_file), stdout=subprocess.PIPE, stderr=err,
                                start_new_session=True, env=env)  # own process group: stop kills all of it
        store.update(cfg.run_id, pid=proc.pid)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                event = parse_event(line)
                if event is None:
                    continue
                if event["event"] in ("finished", "failed"):
                    final = event
                if on_event:
                    on_event(cfg, event)
            rc = proc.wait()
        except BaseException:
            # The runner itself is being stopped: take the worker down with it and put the run
            # back in the queue, so the next `stilts run` of the spec does it again.
            _kill_group(proc)
            store.update(cfg.run_id, status="queued", pid=None, reason="interrupted")
            raise
    now = time.time()
    if final and final["event"] == "finished":
        m = final["metrics"]
        store.update(cfg.run_id, status="finished", finished_at=now, pid=None, score=m["score"], metric=m["metric"],
                     metrics=m, wall_s=final.get("wall_s"))
    else:
        if final is None:  # the worker died without saying why (signal, segfault, os._exit)
            reason = "killed" if rc < 0 or rc in (137, 143) else "error"
            message = f"worker exited with {'signal ' + str(-rc) if rc < 0 else 'code ' + str(rc)} and no result"
            final = EventWriter(cfg.run_id, cfg.events_path, stream=open(os.devnull, "w")).emit(  # noqa: SIM115
                "failed", reason=reason, message=message, stderr_tail=_stderr_tail(stderr_path))
            if on_event:
                on_event(cfg, final)
        store.update(cfg.run_id, status="failed", finished_at=now, pid=None, reason=final.get("reason"),
                     message=final.get("message"), stderr_tail=final.get("stderr_tail") or _stderr_tail(stderr_path))
    return store.get(cfg.run_id) or {}


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_sweep(runs: list[RunConfig], store: Store, on_event: OnEvent | None = None,
              on_run: Callable[[RunConfig, dict], None] | None = None) -> dict[str, int]:
    """Run every run not finished yet, intermediates first; a failed intermediate blocks its
    targets (they stay in the store as `blocked`, and run once the intermediate succeeds)."""
    store.add_runs(run_record(r) for r in runs)
    counts = {"finished": 0, "failed": 0, "skipped": 0, "blocked": 0}
    ordered = sorted(runs, key=lambda r: r.kind != "intermediate")
    for cfg in ordered:
        current = store.get(cfg.run_id) or {}
        if current.get("status") == "finished":
            counts["skipped"] += 1
            continue
        if cfg.init_from:
            parent = store.get(cfg.init_from) or {}
            if parent.get("status") != "finished" or not Path(cfg.init_checkpoint or "").is_dir():
                store.update(cfg.run_id, status="blocked", reason="intermediate_failed",
                             message=f"intermediate run {cfg.init_from} did not finish")
                counts["blocked"] += 1
                continue
        result = execute(cfg, store, on_event)
        counts["finished" if result.get("status") == "finished" else "failed"] += 1
        if on_run:
            on_run(cfg, result)
    return counts


__all__ = ["describe", "execute", "run_record", "run_sweep"]
