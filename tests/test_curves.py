"""Training curves through plotext: one run's loss growing live in the run detail, several runs
overlaid in `stilts plot --runs`, each labelled by what differs between them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import until
from runner_helpers import stilts

from stilts_tui.analysis.curves import Curve, differing_labels, render_curves
from stilts_tui.app.app import StiltsApp
from stilts_tui.bench.results import write_store
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.loop import run_record

BRAILLE = {chr(c) for c in range(0x2801, 0x2900)}


def test_curves_are_drawn_in_braille_with_their_labels_axes_and_evaluations():
    falling = Curve("lr 1e-05 seed 1", list(range(1, 61)), [1 / (1 + 0.1 * i) for i in range(60)], marks=[(30.0, 0.25)])
    flat = Curve("lr 2e-05 seed 1", list(range(1, 61)), [0.7] * 60)
    text = render_curves([falling, flat], "loss of 2 runs", width=70, height=14)
    lines = text.splitlines()
    assert lines[0].strip() == "loss of 2 runs" and all(len(line) <= 70 for line in lines)
    assert "lr 1e-05 seed 1" in text and "lr 2e-05 seed 1" in text and "step" in lines[-1]
    assert sum(ch in BRAILLE for ch in text) > 60 and "◆" in text  # sub-cell points; the evaluation marked
    assert "\x1b[" not in text and "\x1b[" in render_curves([falling], "t", color=True)
    # the falling curve starts high on the left and ends low on the right
    plot = [line for line in lines if "┤" in line or "│" in line][1:-1]
    first_row = next(i for i, line in enumerate(plot) if any(ch in BRAILLE for ch in line.split("┤")[-1][:8]))
    assert first_row <= 2
    assert render_curves([Curve("x", [], [])], "empty") == "empty\n(no loss reported yet)\n"


def test_labels_name_only_what_differs():
    configs = [{"target": "rte", "intermediate": "none", "lr": 1e-5, "seed": 1, "batch_size": 8},
               {"target": "rte", "intermediate": "none", "lr": 2e-5, "seed": 1, "batch_size": 8},
               {"target": "rte", "intermediate": "none", "lr": 2e-5, "seed": 2, "batch_size": 8}]
    assert differing_labels(configs, ["a", "b", "c"]) == ["lr 1e-05 seed 1", "lr 2e-05 seed 1", "lr 2e-05 seed 2"]
    assert differing_labels(configs[:1], ["a"]) == ["none → rte"]
    assert differing_labels([configs[0], configs[0]], ["a", "b"]) == ["a", "b"]


def _run(tmp_path: Path, seed: int, lr: float, status: str = "finished") -> tuple[RunConfig, dict]:
    cfg = RunConfig(kind="target", model="tiny-bert", task="rte", spec_name="t", seed=seed, lr=lr,
                    events_path=str(tmp_path / f"ev{seed}-{lr}.jsonl"))
    cfg.run_id = cfg.compute_id()
    return cfg, run_record(cfg) | {"status": status, "attempts": 1, "score": 0.6, "metric": "accuracy"}


def _steps(cfg: RunConfig, first: int, last: int, total: int = 40) -> str:
    base = {"v": 1, "run_id": cfg.run_id, "attempt": 1}
    return "".join(json.dumps(base | {"event": "step", "t": time.time(), "step": s, "total_steps": total,
                                      "epoch": s / total, "loss": 1 / (1 + 0.1 * s), "lr": cfg.lr * (1 - s / total),
                                      "sequences_per_s": 10.0, "tokens_per_s": 100.0, "memory_mb": None}) + "\n"
                   for s in range(first, last + 1))


def test_stilts_plot_overlays_runs_curves(tmp_path):
    a, rec_a = _run(tmp_path, 1, 1e-5)
    b, rec_b = _run(tmp_path, 1, 2e-5)
    for cfg in (a, b):
        Path(cfg.events_path).write_text(_steps(cfg, 1, 40) + json.dumps(
            {"v": 1, "run_id": cfg.run_id, "attempt": 1, "event": "eval", "t": time.time(), "epoch": 1, "step": 40,
             "metric": "accuracy", "score": 0.6}) + "\n")
    db = tmp_path / "results.json"
    write_store(db, [rec_a, rec_b])
    out = stilts("plot", "--db", str(db), "--runs", a.run_id, b.run_id, "--width", "72").stdout
    assert "training loss of 2 run(s)" in out and "lr 1e-05" in out and "lr 2e-05" in out and "◆" in out
    lr = stilts("plot", "--db", str(db), "--runs", a.run_id, b.run_id, "--lr").stdout
    assert "learning rate of 2 run(s)" in lr and "lr 2e-05" in lr and "◆" not in lr
    bad = stilts("plot", "--db", str(db), "--runs", "nope", check=False)
    assert bad.returncode == 2 and "no run nope" in bad.stderr and "Traceback" not in bad.stderr


async def test_the_run_detail_curve_grows_while_the_run_trains(tmp_path):
    cfg, rec = _run(tmp_path, 3, 1e-5, status="running")
    Path(cfg.events_path).write_text(_steps(cfg, 1, 3))
    db = tmp_path / "results.json"
    write_store(db, [rec])
    app = StiltsApp(db, refresh_s=0.3)

    def text() -> str:
        return "\n".join(str(w.render()) for w in app.screen.query("Static"))

    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None, what="the first snapshot")
        app.open_run(cfg.run_id)
        await until(pilot, lambda: app.screen.id == "detail" and "(3 points" in text(), what="the first points")
        with open(cfg.events_path, "a") as fh:  # the run goes on training
            fh.write(_steps(cfg, 4, 25))
        await until(pilot, lambda: "(25 points" in text(), what="the curve to grow")
        assert sum(ch in BRAILLE for ch in text()) > 20
        await pilot.press("l")
        assert "learning rate by step" in text()
        await pilot.press("l")
        assert "training loss by step" in text()


async def test_marked_runs_are_compared_in_one_chart(tmp_path):
    from stilts_tui.app.runs_table import RunsTable

    a, rec_a = _run(tmp_path, 1, 1e-5)
    b, rec_b = _run(tmp_path, 1, 2e-5)
    for cfg in (a, b):
        Path(cfg.events_path).write_text(_steps(cfg, 1, 30))
    db = tmp_path / "results.json"
    write_store(db, [rec_a, rec_b])
    app = StiltsApp(db, refresh_s=0.5)

    def text() -> str:
        return "\n".join(str(w.render()) for w in app.screen.query("Static"))

    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(RunsTable)
        await until(pilot, lambda: len(table.rows) == 2, what="rows")
        await pilot.press("space", "space")
        assert sorted(table.marked) == sorted([a.run_id, b.run_id])
        await pilot.press("c")
        await until(pilot, lambda: app.screen.id == "curves" and "training loss of 2 run(s)" in text(), what="chart")
        assert "lr 1e-05" in text() and "lr 2e-05" in text() and sum(ch in BRAILLE for ch in text()) > 20
        await pilot.press("l")
        assert "learning rate of 2 run(s)" in text()
        await pilot.press("escape")
        assert app.screen.id == "runs"
