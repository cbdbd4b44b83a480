"""Snapshot tests (pytest-textual-snapshot) of every screen at 80×24 and 120×40, on a fixed
synthetic results file. Update them after an intended change with `pytest --snapshot-update`."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import until

from stilts_tui.app.app import StiltsApp
from stilts_tui.bench.results import synthetic_records, write_store

# A fixed path under the working directory (a temporary one): the runs screen shows it, so it must not vary.
DB = Path("stilts-runs/snapshots/results.json")
REPO = Path(__file__).resolve().parents[1]
SIZES = [(80, 24), (120, 40)]


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    """A working directory of the test's own, with the repository's experiments (the Plan screen lists them)."""
    base = tmp_path_factory.mktemp("snapshots")
    (base / "experiments").symlink_to(REPO / "experiments")
    (base / DB).parent.mkdir(parents=True)
    # 2 intermediates x 3 targets x 6 grid points: small enough to read, every view non-empty
    records = [r for r in synthetic_records(1008) if r["intermediate"] in ("none", "hellaswag")
               and r["target"] in ("rte", "cola", "wic") and r["lr"] == 2e-5]
    write_store(base / DB, records)
    return base


@pytest.fixture(autouse=True)
def in_snapshot_dir(snapshot_dir, monkeypatch):
    monkeypatch.chdir(snapshot_dir)
    # The Plan screen says how much disk is free where results go: fixed here, as the machine's varies.
    monkeypatch.setattr("stilts_tui.runner.disk_need.free_bytes", lambda _path: 500 * 2**30)
    monkeypatch.setattr("stilts_tui.runner.disk_need.mount_point", lambda _path: Path("/data"))


def waiting_for(text: str, *keys: str, focus: str | None = None):
    async def run_before(pilot) -> None:
        app = pilot.app
        for key in keys:
            await pilot.press(key)
        await until(pilot, lambda: text in "\n".join(str(w.render()) for w in app.screen.query("Static")), 20, repr(text))
        if focus:
            app.screen.query_one(focus).focus()
        await pilot.pause(0.2)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen(snap_compare, size):
    assert snap_compare(StiltsApp(DB, refresh_s=60), terminal_size=size, run_before=waiting_for("finished 36"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_results_screen(snap_compare, size):
    assert snap_compare(StiltsApp(DB, refresh_s=60), terminal_size=size,
                        run_before=waiting_for("dev scores per (intermediate, target)", "3"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_violins_view(snap_compare, size):
    assert snap_compare(StiltsApp(DB, refresh_s=60), terminal_size=size,
                        run_before=waiting_for("random guess", "3", "v", "t"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_plan_screen(snap_compare, size):
    assert snap_compare(StiltsApp(DB, refresh_s=60), terminal_size=size,
                        run_before=waiting_for("runs", "1", focus="#plan-targets"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_detail_screen(snap_compare, size):
    assert snap_compare(StiltsApp(DB, refresh_s=60), terminal_size=size,
                        run_before=waiting_for("config:", "o", "o", "enter"))


def curve_run(snapshot_dir: Path, name: str, lr: float, scale: float) -> dict:
    """A finished run with a loss curve and two evaluations; its event log at a path relative to
    the snapshot folder, since the detail screen shows the run's config."""
    import json

    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.loop import run_record

    events = Path(f"stilts-runs/snapshots/{name}-events.jsonl")
    cfg = RunConfig(kind="target", model="roberta-large", task="rte", spec_name="t", seed=12, lr=lr,
                    events_path=str(events))
    cfg.run_id = cfg.compute_id()
    base = {"v": 1, "run_id": cfg.run_id, "attempt": 1, "t": 1.7e9}
    lines = [base | {"event": "step", "step": s, "total_steps": 120, "epoch": s / 40,
                     "loss": scale * 0.7 / (1 + 0.03 * s) + 0.02 * (s % 5),
                     "lr": lr * min(1.0, s / 12) * (1 - s / 120), "sequences_per_s": 30.0, "tokens_per_s": 900.0,
                     "memory_mb": None} for s in range(1, 121)]
    lines += [base | {"event": "eval", "epoch": e, "step": 40 * e, "metric": "accuracy", "score": 0.6 + 0.05 * e} for e in (1, 2)]
    (snapshot_dir / events).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run_record(cfg) | {"status": "finished", "attempts": 1, "score": 0.7, "metric": "accuracy"}


@pytest.fixture(scope="module")
def curve_db(snapshot_dir) -> Path:
    db = Path("stilts-runs/snapshots/curve.json")
    write_store(snapshot_dir / db, [curve_run(snapshot_dir, "curve", 1e-5, 1.0)])
    return db


@pytest.fixture(scope="module")
def compare_db(snapshot_dir) -> Path:
    db = Path("stilts-runs/snapshots/compare.json")
    write_store(snapshot_dir / db, [curve_run(snapshot_dir, "slow", 1e-5, 1.0), curve_run(snapshot_dir, "fast", 3e-5, 0.6)])
    return db


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_compared_curves(snap_compare, size, compare_db):
    """Two runs marked with space, then c: their loss curves in one chart, labelled by their lr."""
    async def run_before(pilot) -> None:
        await waiting_for("finished 2")(pilot)
        await waiting_for("lr 3e-05", "space", "down", "space", "c")(pilot)

    assert snap_compare(StiltsApp(compare_db, refresh_s=60), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_detail_curve(snap_compare, size, curve_db):
    async def run_before(pilot) -> None:
        await waiting_for("finished 1")(pilot)  # the run's row is there before it is opened
        await waiting_for("120 points", "enter")(pilot)

    assert snap_compare(StiltsApp(curve_db, refresh_s=60), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare, size):
    assert snap_compare(StiltsApp(DB, refresh_s=60), terminal_size=size, run_before=waiting_for("command palette", "f1"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_matrix_view(snap_compare, size):
    assert snap_compare(StiltsApp(DB, refresh_s=60), terminal_size=size,
                        run_before=waiting_for("Transfer matrix against none", "3", "v", "v", "right", "down"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_correlation_view(snap_compare, size):
    assert snap_compare(StiltsApp(DB, refresh_s=60), terminal_size=size,
                        run_before=waiting_for("Spearman", "3", "v", "v", "v"))
