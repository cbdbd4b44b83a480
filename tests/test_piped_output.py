"""Piped or redirected, the CLI's tables are whole (issue 39, item 3): `stilts tasks | cat` cut names
to `epo…` and left a column of `┃┃`; `stilts results --view matrix | cat` wrapped intermediate names
inside their column (`demo_re` / `alfake`). At a terminal the tables still fit its width."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from stilts_tui.analysis.heatmap import to_text
from stilts_tui.analysis.matrix import build_matrix
from stilts_tui.analysis.matrix_views import matrix_heat
from stilts_tui.bench.results import write_store
from stilts_tui.cli.output import PIPED_WIDTH, output_console, output_width
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.loop import run_record
from stilts_tui.sweep.resolved import COLUMNS
from stilts_tui.tasks import all_tasks

TASK_HEADERS = ("name", "head", "metric", "epochs", "max tokens", "description")
# Longer than the matrix's 7-character cells, and the last longer than its 26-character row labels.
INTERMEDIATES = ("demo_realfake", "demo_acceptability", "synthesis_gpt2")
TARGETS = ("rte", "winogrande_xl", "a_target_named_at_length_32_char")


def piped(*args: str, columns: str | None = "80") -> str:
    """`stilts ARGS | cat`: stdout a pipe, COLUMNS 80 (what a narrow terminal exports) or unset."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    # capture_output: stdout is a pipe, as in `stilts ... | cat`
    proc = subprocess.run([sys.executable, "-m", "stilts_tui", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def cells(line: str) -> list[str]:
    """A rich table row's cells, whatever its box characters."""
    return [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]


@pytest.mark.parametrize("columns", ["80", None])
def test_tasks_piped_has_every_column_and_every_name_whole(columns):
    out = piped("tasks", columns=columns)
    lines = out.splitlines()
    assert "…" not in out and "┃┃" not in out
    header = next(line for line in lines if line.startswith("┃"))
    assert cells(header) == list(TASK_HEADERS)      # all six, each whole on one line
    rows = {cells(line)[0]: cells(line) for line in lines if line.startswith("│")}
    # The registry as a fresh `stilts tasks` sees it: this test process may hold tasks other tests
    # registered from their task files.
    listed = json.loads(subprocess.run(
        [sys.executable, "-c", "import json; from stilts_tui.tasks import all_tasks; "
         "print(json.dumps([[t.name, t.metric, t.description] for t in all_tasks()]))"],
        capture_output=True, text=True, check=True, timeout=120).stdout)
    for name, metric, description in listed:
        # One row per task (no wrapped continuation rows), its name and description whole.
        assert rows[name][2] == metric and rows[name][5] == description
    assert len(rows) == len(listed)
    assert "winogrande_xl" in rows


def rec(inter: str, task: str, score: float, restart: int) -> dict:
    cfg = RunConfig(kind="target", model="m", task=task, intermediate=inter, lr=1e-5, seed=restart, restart=restart,
                    spec_name="piped")
    cfg.run_id = cfg.compute_id()
    return run_record(cfg) | {"status": "finished", "attempts": 1, "score": score, "metric": "accuracy",
                              "metrics": {"score": score, "metric": "accuracy",
                                          "baselines": {"degenerate_threshold": 0.3}}}


def long_named_records() -> list[dict]:
    out = []
    for i in range(3):
        for k, inter in enumerate(("none", *INTERMEDIATES)):
            out += [rec(inter, target, 0.5 + 0.04 * k - 0.02 * j + 0.01 * i, i) for j, target in enumerate(TARGETS)]
    return out


def grid(out: str) -> list[str]:
    """A heat map's lines above its colour bar (the legend's own `…` says "runs still queued")."""
    lines = out.splitlines()
    return lines[: next(i for i, line in enumerate(lines) if line.startswith("scale"))]


@pytest.fixture()
def long_named_db(tmp_path: Path) -> Path:
    db = tmp_path / "results.json"
    write_store(db, long_named_records())
    return db


@pytest.mark.parametrize("stat", ["mean", "mean,best"])
def test_matrix_piped_keeps_intermediate_and_target_names_whole(long_named_db, stat):
    out = piped("results", "--db", str(long_named_db), "--view", "matrix", "--stat", stat, "--resamples", "20")
    words = [line.split() for line in grid(out)]
    header = next(w for w in words if "none" in w)  # the column labels' first line
    for inter in INTERMEDIATES:
        assert header.count(inter) == stat.count(",") + 1, out   # one column per statistic, name whole
    for target in TARGETS:
        assert any(w[:1] == [target] for w in words), out          # row labels not cut at 26
    assert "demo_re" not in [x for w in words for x in w] and not any("…" in line for line in grid(out))


def test_correlation_and_ranking_piped_are_whole(long_named_db):
    out = piped("results", "--db", str(long_named_db), "--view", "correlation", "--resamples", "20")
    header = next(line.split() for line in grid(out) if "rte" in line.split())
    assert [t for t in TARGETS if t in header] == list(TARGETS) and not any("…" in line for line in grid(out))
    out = piped("results", "--db", str(long_named_db), "--view", "ranking", "--target", TARGETS[-1], "--resamples", "20")
    assert all(any(line.split()[1:2] == [inter] for line in out.splitlines()) for inter in INTERMEDIATES), out


def test_pairs_piped_keeps_every_column(long_named_db):
    # At 120 columns (what piped output used to be laid out for) `failed` and `p` are dropped.
    out = piped("results", "--db", str(long_named_db), "--resamples", "20")
    header = next(line for line in out.splitlines() if line.startswith("target"))
    for column in ("metric", "min", "std", "win rate", "p", "failed"):
        assert re.search(rf"(^|  ){re.escape(column)}(  |$)", header), header
    assert "…" not in out


def test_a_terminal_keeps_todays_width():
    """The helper's terminal path is the Console rich gave before: a table fitted to 80 columns."""
    def table() -> Table:
        t = Table(title="tasks")
        for col in TASK_HEADERS:
            t.add_column(col, no_wrap=col != "description")
        for task in all_tasks():
            t.add_row(task.name, task.head, task.metric, str(task.epochs), str(task.max_length), task.description)
        return t

    ours, before = io.StringIO(), io.StringIO()
    output_console(ours, terminal=True, width=80).print(table())
    Console(file=before, width=80).print(table())
    assert ours.getvalue() == before.getvalue()
    assert max(map(len, ours.getvalue().splitlines())) <= 80 and "…" in ours.getvalue()  # fitted, as before
    assert output_console(io.StringIO(), terminal=True, width=80, min_width=400).width == 400  # `plan --runs`
    assert output_console(io.StringIO(), terminal=False).width == PIPED_WIDTH
    assert output_width(80, terminal=True) == 80 and output_width(80, terminal=False) == PIPED_WIDTH


def test_a_terminal_matrix_still_wraps_labels_to_its_cells():
    heat = matrix_heat(build_matrix(long_named_records(), resamples=0))
    plain = to_text(heat, 80, colour=False).plain
    assert max(map(len, plain.splitlines()[1:-4])) <= 80       # the grid fits 80 (legend lines may not)
    assert "demo_re" in plain.split() and "demo_realfake" not in plain.split()
    whole = to_text(heat, 80, colour=False, fit=True).plain.split()
    assert "demo_realfake" in whole and TARGETS[-1] in whole


def test_stilts_tasks_at_an_80_column_terminal_fits_it():
    """End to end through a pseudo-terminal: on a terminal `stilts tasks` is fitted as before."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "LINES"} | {"COLUMNS": "80", "TERM": "dumb"}
    proc = subprocess.Popen([sys.executable, "-m", "stilts_tui", "tasks"], stdout=follower, stderr=subprocess.PIPE,
                            env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # Linux: EIO once the child has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())  # colour codes, if any
    lines = [line for line in out.replace("\r", "").splitlines() if line.strip()]
    assert lines and max(map(len, lines)) <= 80
    assert any("winogrande_xl" in line for line in lines)


def test_tasks_show_and_plan_runs_piped_are_whole(tmp_path):
    """A task file's long name and description: `tasks show` keeps its lines whole (they wrapped at
    80), and `plan --runs`, now through the same helper, still shows every column and the name."""
    data = tmp_path / "data"
    data.mkdir()
    rows = "".join(json.dumps({"s": f"sentence {i}", "y": ["yes", "no"][i % 2]}) + "\n" for i in range(4))
    for split in ("train", "dev"):
        (data / f"{split}.jsonl").write_text(rows)
    name, description = "an_intermediate_task_with_a_long_name", "a description " * 12 + "that ends here"
    task = tmp_path / "long.toml"
    task.write_text(f'name = "{name}"\ndescription = "{description}"\nhead = "classification"\nlabels = ["yes", "no"]\n'
                    'data_dir = "data"\n[files]\ntrain = "train.jsonl"\ndev = "dev.jsonl"\n[fields]\na = "s"\nlabel = "y"\n')
    lines = piped("tasks", "show", name, "--task-file", str(task)).splitlines()
    assert lines[0] == f"{name} — {description}"
    assert any(line.startswith("dev majority class") and line.endswith("at or below 0.5000") for line in lines), lines
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "s"\nmodel = "tiny-bert"\ntask_files = ["{task}"]\nintermediates = ["{name}"]\n'
                    'targets = ["rte"]\n[grid]\nlr = [1e-5]\nseed = [1]\nbatch_size = [8]\nwarmup_ratio = [0.0]\n')
    out = piped("plan", str(spec), "--runs", "--db", str(tmp_path / "r.json"))
    assert "…" not in out
    lines = out.splitlines()
    assert lines[0].split("  ")[0] == COLUMNS[0].title
    assert all(re.search(rf"(^|  ){re.escape(c.title)}(  |$)", lines[0]) for c in COLUMNS), lines[0]
    assert any(name in line.split() for line in lines[1:]), out
