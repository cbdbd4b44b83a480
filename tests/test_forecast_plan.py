"""The Plan screen's forecast key (issue 35): ctrl+r saves the spec, ranks each target's
intermediates in a process of its own and shows the ranking and the run-hours beside the lists."""

from __future__ import annotations

from pathlib import Path

import tomli_w
from conftest import until
from textual.widgets import Input, Static

from stilts_tui.app.app import StiltsApp
from stilts_tui.app.plan_screen import PlanScreen


async def test_ctrl_r_shows_the_forecast_beside_the_lists(tmp_path: Path, tiny_models, official_data):
    (tmp_path / "experiments").mkdir()
    spec = tmp_path / "experiments" / "fc.toml"
    spec.write_text(tomli_w.dumps({"name": "fc", "model": str(tiny_models["bert"]), "data_dir": str(official_data),
                                   "intermediates": ["none", "cola", "wic"], "targets": ["rte"],
                                   "grid": {"lr": [1e-5], "seed": [1]}}), encoding="utf-8")
    app = StiltsApp(tmp_path / "results.json", refresh_s=60, root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        plan = await until(pilot, lambda: app.screen if isinstance(app.screen, PlanScreen) else None, what="plan")
        panel = plan.query_one("#plan-forecast", Static)
        assert not panel.display
        box = plan.query_one("#plan-open", Input)
        box.focus()
        box.value = "experiments/fc.toml"
        await pilot.press("enter")
        await until(pilot, lambda: plan.query_one("#plan-path", Input).value == "experiments/fc.toml", what="opened")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: panel.display, timeout=150, what="the forecast")
        text = str(panel.render())
        assert "rte" in text and "TextEmb" in text and "cola" in text and "wic" in text
        assert "no checkpoint yet: cola, wic" in text          # LogME: no intermediate trained
        assert "dropping an intermediate saves its target runs: cola ? h, wic ? h" in text
    assert (tmp_path / "results.forecast" / "fc.json").is_file()
