"""The layer contracts (pyproject.toml [tool.importlinter]) hold, and they catch a violation:
spec → runs → worker events → store → analysis → screens, one direction."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def lint(root: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(root)}  # the package under `root`, not the installed one
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def lint_with_import(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """The contracts over a copy of the package in which `module` gains the import `line`."""
    shutil.copytree(REPO / "stilts_tui", tmp_path / "stilts_tui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "stilts_tui" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa: E402\n")
    return lint(tmp_path)


def test_the_layer_contracts_hold():
    proc = lint(REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.count("KEPT") == 5


def test_a_worker_that_imports_the_ui_breaks_a_contract(tmp_path):
    proc = lint_with_import(tmp_path, "train/loop.py", "from stilts_tui.app.format import esc")
    assert proc.returncode != 0
    assert "The worker (train) never imports" in proc.stdout and "BROKEN" in proc.stdout
    assert "stilts_tui.train.loop -> stilts_tui.app.format" in proc.stdout


def test_a_task_module_that_imports_the_runner_breaks_the_layers(tmp_path):
    """The whole order, not only the forbidden pairs: tasks sit below the runner."""
    proc = lint_with_import(tmp_path, "tasks/formats.py", "from stilts_tui.runner import control")
    assert proc.returncode != 0 and "One direction, top to bottom" in proc.stdout and "BROKEN" in proc.stdout
    assert "stilts_tui.tasks is not allowed to import stilts_tui.runner" in proc.stdout
