"""Shared by the sweep and runner tests: run a list of runs through the real runner."""

from __future__ import annotations

import os
import subprocess
import sys

from stilts_tui.runner.loop import Runner
from stilts_tui.runner.slots import plan_slots


def run_runs(runs, db, slots: int = 1, fault: str | None = None, **kw) -> dict:
    env = kw.pop("env", os.environ) | ({"STILTS_FAULT_INJECT": fault} if fault else {})
    return Runner(db, runs, plan_slots(gpus=[], cpu_slots=slots, threads=1), env=env, **kw).run()


def stilts(*args: str, check: bool = True, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "stilts_tui", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    return proc
