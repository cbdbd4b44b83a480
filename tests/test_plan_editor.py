"""The Plan screen as a spec editor, headless (App.run_test + Pilot): every spec in experiments/
round-trips byte for byte, task files add their tasks, the TOML box takes every other key and
refuses unknown ones, "save as" follows the name and moves relative paths, an overwrite asks,
Escape leaves a field, and ticks read without colour."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
from conftest import screen_text, until
from textual.widgets import Input, TextArea

from stilts_tui.app.app import StiltsApp
from stilts_tui.app.dialogs import ConfirmScreen, PathPicker
from stilts_tui.app.plan_screen import PlanScreen
from stilts_tui.app.tick_list import TickList
from stilts_tui.sweep.spec import load_spec

EXPERIMENTS = sorted(Path("experiments").glob("*.toml"))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of experiments/ (task files and the relative ../data included) to save over."""
    shutil.copytree("experiments", tmp_path / "experiments")
    return tmp_path


async def _plan(pilot, app) -> PlanScreen:
    await pilot.press("1")
    await until(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan screen")
    return app.screen


async def _open_typed(pilot, plan: PlanScreen, path: str) -> None:
    box = plan.query_one("#plan-open", Input)
    box.focus()
    box.value = path
    await pilot.press("enter")
    await until(pilot, lambda: plan.query_one("#plan-path", Input).value == path, what=f"{path} opened")


async def test_every_experiment_spec_opened_and_saved_unchanged_is_the_same_file(workspace):
    assert len(EXPERIMENTS) >= 8
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        for original in EXPERIMENTS:
            rel = f"experiments/{original.name}"
            await _open_typed(pilot, plan, rel)
            await until(pilot, lambda: " runs" in screen_text(app) or "spec:" in screen_text(app), what="the count")
            await pilot.press("ctrl+s")
            await until(pilot, lambda rel=rel: any(f"saved {workspace / rel}" in n.message for n in app._notifications),
                        what=f"{rel} saved")
            assert (workspace / rel).read_bytes() == original.read_bytes(), rel
            assert not isinstance(app.screen, ConfirmScreen)  # saving the opened file never asks


async def test_the_study_spec_keeps_its_restarts_and_blank_grid(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        await _open_typed(pilot, plan, "experiments/pruksachatkun2020.toml")
        assert plan.query_one("#plan-grid-seed", Input).value == ""  # no grid: restarts set the seeds
        assert "[restarts]" in plan.query_one("#plan-toml", TextArea).text
        assert len(plan.query_one("#plan-probes", TickList).selected) == 25
        await until(pilot, lambda: "1293 runs" in screen_text(app), what="the study's count")


async def test_task_files_overrides_and_save_as_in_another_folder(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        targets = plan.query_one("#plan-targets", TickList)
        assert "demo_acceptability" not in [targets.get_option_at_index(i).value for i in range(targets.option_count)]
        # a task file from the picker, by typed path
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, PathPicker), what="the picker")
        app.screen.query_one("#picker-path", Input).value = "experiments/tasks/demo_acceptability.toml"
        await pilot.press("enter")
        await until(pilot, lambda: plan.query_one("#plan-task-files", Input).value == "tasks/demo_acceptability.toml",
                    what="the task file added")
        names = [targets.get_option_at_index(i).value for i in range(targets.option_count)]
        assert names[0] == "demo_acceptability"  # the file's tasks come first
        targets.deselect_all()
        targets.select("demo_acceptability")
        plan.query_one("#plan-model", Input).value = "minilm"
        box = plan.query_one("#plan-toml", TextArea)
        box.text = "[tasks.demo_acceptability]\nepochs = 1\nbogus = 2\n"
        await until(pilot, lambda: "unknown key 'bogus'" in screen_text(app), what="the unknown key refused")
        assert re.search(r"keys: [a-z_, ]*\bepochs\b", screen_text(app))  # the reason: the keys a task table takes
        box.text = "zero_shot = false\n\n[tasks.demo_acceptability]\nepochs = 1\n\n[train]\nprecision = \"fp32\"\n"
        await until(pilot, lambda: "runs" in screen_text(app) and "bogus" not in screen_text(app), what="a valid spec")
        # the TOML box may not set what a field sets
        box.text = "model = \"x\"\n"
        await until(pilot, lambda: "which has its own field" in screen_text(app), what="a field's key refused")
        box.text = "[tasks.demo_acceptability]\nepochs = 1\n\n[train]\nprecision = \"fp32\"\n"
        # "save as" follows the name; saved in another folder, relative paths still point home
        plan.query_one("#plan-name", Input).value = "acceptability study"
        await until(pilot, lambda: plan.query_one("#plan-path", Input).value == "experiments/acceptability-study.toml",
                    what="save as following the name")
        plan.query_one("#plan-path", Input).value = "elsewhere/acc.toml"
        await pilot.press("ctrl+s")
        saved = workspace / "elsewhere" / "acc.toml"
        await until(pilot, saved.is_file, what="the spec saved")
    raw = tomllib.loads(saved.read_text())
    assert raw["task_files"] == ["../experiments/tasks/demo_acceptability.toml"]
    assert raw["tasks"] == {"demo_acceptability": {"epochs": 1}} and raw["train"] == {"precision": "fp32"}
    spec = load_spec(saved)
    assert spec.name == "acceptability study" and spec.targets == ["demo_acceptability"] and spec.model == "minilm"


async def test_saving_over_another_file_asks_first(workspace):
    other = workspace / "experiments" / "table2.toml"
    before = other.read_bytes()
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        plan = await _plan(pilot, app)
        plan.query_one("#plan-path", Input).value = "experiments/table2.toml"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        assert "Overwrite" in screen_text(app)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is plan, what="back to the plan")
        assert other.read_bytes() == before
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation again")
        await pilot.press("y")
        await until(pilot, lambda: other.read_bytes() != before, what="the file overwritten")
    assert tomllib.loads(other.read_text())["name"] == "my-study"


async def test_escape_leaves_a_field_and_digits_type_into_it(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        plan = await _plan(pilot, app)
        data = plan.query_one("#plan-data", Input)
        data.focus()
        await pilot.press("3", "q")
        assert data.value == "3q" and app.screen is plan  # typed, not a screen switch or quit
        await pilot.press("escape")
        assert app.focused is None
        await pilot.press("3")
        await until(pilot, lambda: app.current_mode == "results", what="the results screen")
        await pilot.press("1")
        await until(pilot, lambda: app.current_mode == "plan", what="the plan again")
        box = plan.query_one("#plan-toml", TextArea)
        box.focus()
        await pilot.press("2", "escape", "2")
        await until(pilot, lambda: app.current_mode == "runs", what="runs, after escape in the TOML box")
        assert box.text == "2"


async def test_ticks_read_without_colour_and_the_first_space_ticks(workspace):
    app = StiltsApp(workspace / "results.json", refresh_s=60, root=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        plan = await _plan(pilot, app)
        targets = plan.query_one("#plan-targets", TickList)
        targets.deselect_all()
        targets.focus()
        await pilot.pause(0.2)
        first = targets.get_option_at_index(0).value
        assert targets.highlighted == 0 and first not in targets.selected
        assert targets.render_line(0).text.startswith("▐ ▌")  # blank box: not chosen
        await pilot.press("space")
        await until(pilot, lambda: first in targets.selected, what="the first space ticks")
        assert targets.render_line(0).text.startswith("▐x▌")
