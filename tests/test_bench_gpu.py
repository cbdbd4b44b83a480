"""`stilts bench gpu`, the GPU session's one prepared call, run end to end on CPU with the tiny
model (`--device cpu --quick`): every step it takes on the GPU runs here first, so the device call
cannot fail on a typo, and its report is complete and readable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from stilts_tui.bench.gpu import JSON_NAME, MARKDOWN_NAME, run_gpu_bench, smoke_paths


def test_bench_gpu_runs_every_step_on_cpu(tmp_path):
    out = tmp_path / "out"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "stilts_tui", "bench", "gpu", "--out", str(out), "--device", "cpu",
                           "--quick", "--budget-s", "900"], capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / JSON_NAME).read_text())
    names = [s["path"] for s in report["smoke"]]
    assert names == [p.name for p in smoke_paths()] + ["resume from a saved state",
                                                        "hand-off from an intermediate checkpoint"]
    assert all(s["ok"] and s["steps"] >= 1 and s["step_s"] > 0 for s in report["smoke"]), report["smoke"]
    assert next(s for s in report["smoke"] if s["path"].startswith("resume"))["resumed_at_step"] >= 1
    assert report["profile"]["top"] and report["profile"]["steps"] >= 1
    grid = report["grid"]
    assert set(grid["ways"]) == {"trainer", "runner", "fused"} and grid["grid"] == "paper" and grid["runs"] == 2
    assert all(w["makespan_s"] > 0 for w in grid["ways"].values())
    science = report["science"]
    assert len(science["one_by_one"]) == len(science["fused"]) == 4 and 0 < science["p"] <= 1
    assert "permutation p" in (out / MARKDOWN_NAME).read_text()
    assert not report["skipped"]
    text = (out / MARKDOWN_NAME).read_text()
    assert "| precision bf16 | yes |" in text and "ratio trainer/runner" in text


def test_bench_gpu_keeps_to_its_budget_and_says_what_it_skipped(tmp_path):
    report = run_gpu_bench(tmp_path, budget_s=0.001, device="cpu", quick=True)
    assert report.smoke == [] and report.profile is None
    assert len(report.skipped) == len(smoke_paths()) + 3 and report.skipped[-1] == "profile: budget spent"
    assert "no grid" in report.grid["skipped"] and "no same-science check" in report.science["skipped"]
    written = json.loads((tmp_path / JSON_NAME).read_text())
    assert written["skipped"] == report.skipped and "Skipped: smoke precision tf32" in (tmp_path / MARKDOWN_NAME).read_text()
