"""The app in a real terminal: tmux runs `stilts tui`, send-keys drives it, capture-pane reads the
screen; then the tmux session is killed while a sweep runs, and the sweep goes on to the end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
from conftest import wait_for
from runner_helpers import stilts

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (.ci/run installs it; apt-get install tmux)")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def capture(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_screen(session: str, text: str, timeout: float = 60) -> str:
    try:
        return wait_for(lambda: text in (screen := capture(session)) and screen, timeout, repr(text), 0.3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the screen:\n{capture(session)}") from None


def test_tui_in_tmux_and_the_sweep_outlives_the_terminal(tiny_models, train_data, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_bytes(tomli_w.dumps({
        "name": "tmux", "model": str(tiny_models["roberta"]), "data_dir": str(train_data), "targets": ["rte"],
        "grid": {"lr": [1e-3], "batch_size": [8], "seed": [1, 2, 3, 4]},
        "tasks": {"rte": {"epochs": 2, "max_length": 32}}}).encode())
    db = tmp_path / "results.json"
    # The last seed's run waits at step 2 until the terminal is gone: the sweep is certainly still
    # running when the session is killed, however fast this machine is.
    gate = tmp_path / "gate"
    stilts("run", str(spec), "--db", str(db), "--slots", "1",
           env=os.environ | {"STILTS_FAULT_INJECT": "gate:2@seed=4", "STILTS_FAULT_GATE": str(gate)})
    session = f"stilts-test-{os.getpid()}"
    env = "HF_HUB_OFFLINE=1 TERM=xterm-256color"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40",
         f"cd {Path.cwd()} && {env} {sys.executable} -m stilts_tui tui --db {db} --refresh 0.5")
    try:
        screen = wait_screen(session, "runner: running")
        assert "status" in screen and "intermediate → target" in screen
        wait_screen(session, "in flight: 1")
        tmux("send-keys", "-t", session, "3")
        wait_screen(session, "view pairs (v)")
        tmux("send-keys", "-t", session, "2")
        wait_screen(session, "intermediate → target")
        tmux("send-keys", "-t", session, "f1")
        wait_screen(session, "quitting never stops a sweep")
        tmux("send-keys", "-t", session, "Escape")
        state = json.loads((tmp_path / "results.runner.json").read_text())
        assert state["status"] == "running"
    finally:
        tmux("kill-session", "-t", session)  # the terminal goes away mid-sweep
    runner_pid = state["pid"]
    wait_for(lambda: subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode != 0,
             30, "the tmux session to be gone")
    os.kill(runner_pid, 0)  # the runner outlived its terminal
    gate.touch()
    wait_for(lambda: json.loads((tmp_path / "results.runner.json").read_text())["status"] == "finished", 240,
             "the sweep to finish after the terminal closed", 0.5)
    runs = json.loads(stilts("results", "--db", str(db), "--runs", "--format", "json").stdout)
    assert len(runs) == 4 and {r["status"] for r in runs} == {"finished"}


def test_a_foreground_sweep_cut_by_a_closed_terminal_is_resumed(tiny_models, train_data, tmp_path):
    """`stilts run --foreground` in a real terminal, which then goes away (tmux kill-session: the
    SIGHUP of a dropped SSH session): the runner stops cleanly, `stilts status` says why and
    what continues it, and `stilts resume` (no spec needed) finishes every run exactly once."""
    from stilts_tui.domain.events import read_events
    from stilts_tui.store import Store

    spec = tmp_path / "s.toml"
    spec.write_bytes(tomli_w.dumps({
        "name": "hangup", "model": str(tiny_models["roberta"]), "data_dir": str(train_data), "targets": ["rte"],
        "grid": {"lr": [1e-3], "batch_size": [8], "seed": [1, 2, 3]},
        "tasks": {"rte": {"epochs": 2, "max_length": 32}}}).encode())
    db = tmp_path / "results.json"
    # Seed 3's run waits at step 2 on one slot while the other slot finishes the rest: the sweep is
    # mid-way when the terminal goes, whichever run the queue takes first.
    gate = tmp_path / "gate"
    session = f"stilts-hup-{os.getpid()}"
    env = f"HF_HUB_OFFLINE=1 TERM=xterm-256color STILTS_FAULT_INJECT=gate:2@seed=3 STILTS_FAULT_GATE={gate}"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30",
         f"cd {Path.cwd()} && {env} exec {sys.executable} -m stilts_tui run {spec} --db {db} --foreground --slots 2")
    state_file = tmp_path / "results.runner.json"
    try:
        wait_screen(session, "✓", 180)  # a run finished, in this terminal's progress display

        def held() -> bool:
            with Store(db) as store:
                return any(r["config"]["seed"] == 3 and r["status"] == "running" for r in store.runs())

        wait_for(held, 120, "the last run to be in flight")
    finally:
        tmux("kill-session", "-t", session)
    wait_for(lambda: json.loads(state_file.read_text())["status"] == "stopped", 60, "the runner to record its stop")
    state = json.loads(state_file.read_text())
    assert state["stop_reason"] == "hangup" and state["sweep_file"]
    status = stilts("status", "--db", str(db)).stdout
    assert "its terminal closed (SIGHUP" in status and f"continue it with: stilts resume --db {db}" in status, status
    gate.touch()
    stilts("resume", "--db", str(db), "--foreground")
    runs = json.loads(stilts("results", "--db", str(db), "--runs", "--format", "json").stdout)
    assert len(runs) == 3 and {r["status"] for r in runs} == {"finished"}
    for r in Store(db).runs():
        assert len([e for e in read_events(r["events_path"]) if e["event"] == "finished"]) == 1


def test_plan_editor_keys_and_picker_in_tmux(tmp_path):
    """At 80x24 over a real terminal: a digit on the Plan screen switches screens (its focus starts
    on a list), a digit typed in a field stays in the field, Escape gives
    the keys back to the screen, ctrl+o opens the picker, a typed name opens the demo spec (its own
    task files' tasks included), and ctrl+s saves it unchanged, byte for byte."""
    shutil.copytree("experiments", tmp_path / "experiments")
    original = (tmp_path / "experiments" / "demo.toml").read_bytes()
    session = f"stilts-plan-{os.getpid()}"
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24",
         f"cd {tmp_path} && HF_HUB_OFFLINE=1 TERM=xterm-256color {sys.executable} -m stilts_tui tui "
         f"--db {tmp_path / 'results.json'}")
    try:
        wait_screen(session, "intermediate → target")
        tmux("send-keys", "-t", session, "1")
        wait_screen(session, "search tasks")  # the Plan screen, scrolled to its task lists
        tmux("send-keys", "-t", session, "3")  # its focus starts on a list: a digit is a screen key
        wait_screen(session, "view pairs (v)")
        tmux("send-keys", "-t", session, "1")
        wait_screen(session, "search tasks")
        for _ in range(8):  # back from the targets list to the name field
            tmux("send-keys", "-t", session, "BTab")
            time.sleep(0.2)
        tmux("send-keys", "-t", session, "3")  # inside a field a digit is typed (over the selected name)
        screen = wait_screen(session, "name         3")
        assert "task files" in screen
        tmux("send-keys", "-t", session, "Escape")
        time.sleep(0.5)
        tmux("send-keys", "-t", session, "3")
        wait_screen(session, "view pairs (v)")
        tmux("send-keys", "-t", session, "1")
        wait_screen(session, "search tasks")
        tmux("send-keys", "-t", session, "C-o")
        wait_screen(session, "Discard changes?")  # the name typed above is an unsaved edit
        tmux("send-keys", "-t", session, "y")
        wait_screen(session, "Open a spec")
        tmux("send-keys", "-t", session, "demo.toml", "Enter")
        # opened, its own task files' tasks listed; the keys back on the lists (the form is above)
        wait_screen(session, "demo.toml")
        wait_screen(session, "demo_realfake")
        tmux("send-keys", "-t", session, "C-s")
        wait_screen(session, "saved")
    finally:
        tmux("kill-session", "-t", session)
    assert (tmp_path / "experiments" / "demo.toml").read_bytes() == original
