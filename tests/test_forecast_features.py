"""Forecasting transfer, the model side (issue 35): features of a tiny random encoder through
`python -m stilts_tui.forecast`, cached so a second forecast runs no model; multiple choice read
per choice; LogME on an intermediate checkpoint from the results file and the missing ones
named; a tagging task's labels are not per sequence; `stilts forecast` and `stilts results
--view forecast` end to end."""

from __future__ import annotations

import json
import time

import pytest

from stilts_tui.analysis.forecast_data import load_forecasts
from stilts_tui.forecast.jobs import PRETRAINED
from stilts_tui.ops.forecast import ForecastAsk, extract, forecast, plan_features


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_models, official_data) -> dict:
    """A spec on the tiny RoBERTa: intermediates none, cola, hellaswag (multiple choice), rte;
    targets rte and hellaswag; a results file holding cola's finished intermediate checkpoint."""
    import tomli_w
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from stilts_tui.bench.results import write_store
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.loop import run_record

    root = tmp_path_factory.mktemp("forecast")
    model = str(tiny_models["roberta"])
    spec = root / "spec.toml"
    spec.write_text(tomli_w.dumps({"name": "fc", "model": model, "data_dir": str(official_data),
                                   "intermediates": ["none", "cola", "hellaswag", "rte"], "targets": ["rte", "hellaswag"],
                                   "grid": {"lr": [1e-5], "seed": [1]}}), encoding="utf-8")
    out = root / "runs" / "cola-int"
    AutoModelForSequenceClassification.from_pretrained(model, num_labels=2).save_pretrained(out / "checkpoint")
    AutoTokenizer.from_pretrained(model).save_pretrained(out / "checkpoint")
    cfg = RunConfig(kind="intermediate", model=model, task="cola", intermediate="cola", spec_name="fc",
                    output_dir=str(out))
    cfg.run_id = cfg.compute_id()
    db = root / "results.json"
    write_store(db, [run_record(cfg) | {"status": "finished", "attempts": 1, "score": 0.1, "metric": "mcc",
                                        "finished_at": time.time()}])
    return {"spec": spec, "db": db, "root": root}


def test_features_are_made_once_then_read_from_the_cache(study):
    ask = ForecastAsk(study["spec"], study["db"], sample=8)
    plan = plan_features(ask)
    first = extract(plan.request, quiet=True)
    by = {s.job.key: s for s in first.sets}
    assert not any(s.cached for s in first.sets) and all(s.forward_passes == s.rows for s in first.sets)
    mc = by[(PRETRAINED, "hellaswag")]
    assert mc.head == "multiple_choice" and mc.rows == mc.examples * 4 and mc.labelled   # one row per choice
    assert by[("cola", "rte")].job.checkpoint.endswith("checkpoint")
    assert plan.missing == {"rte": ["hellaswag"], "hellaswag": ["rte"]}
    again = extract(plan.request, quiet=True)
    assert all(s.cached and s.forward_passes == 0 and s.seconds == 0.0 for s in again.sets)
    assert [s.path for s in again.sets] == [s.path for s in first.sets]
    # another sample is another cache entry
    other = extract(plan_features(ForecastAsk(study["spec"], study["db"], sample=8, seed=1)).request, quiet=True)
    assert {s.path for s in other.sets if s.examples > 1}.isdisjoint({s.path for s in first.sets})


def test_a_forecast_ranks_every_target_and_names_the_missing_checkpoints(study):
    result, saved, _ = forecast(ForecastAsk(study["spec"], study["db"], sample=8), quiet=True)
    assert saved.is_file() and load_forecasts(study["db"])[0] == result
    rte_te, rte_lm = result.ranking("rte", "textemb"), result.ranking("rte", "logme")
    assert set(rte_te.scores) == {"cola", "hellaswag"}         # neither none nor rte itself
    assert all(-1.0 <= v <= 1.0 for v in rte_te.scores.values())
    assert set(rte_lm.scores) == {"cola"} and rte_lm.missing == ["hellaswag"] and rte_lm.reference is not None
    hs_lm = result.ranking("hellaswag", "logme")
    assert hs_lm.reference is not None and set(hs_lm.scores) == {"cola"} and hs_lm.missing == ["rte"]


def test_a_checkpoint_that_is_gone_is_one_clear_message(study, tmp_path):
    from dataclasses import replace

    from stilts_tui.errors import StiltsError

    plan = plan_features(ForecastAsk(study["spec"], study["db"], sample=8, targets=("rte",), methods=("logme",)))
    gone = tuple(replace(j, checkpoint=str(tmp_path / "nowhere"), sample=7) if j.checkpoint else j for j in plan.request.jobs)
    with pytest.raises(StiltsError, match="gone or incomplete") as err:
        extract(replace(plan.request, jobs=gone), quiet=True)
    assert "intermediates" in (err.value.fix or "")


def test_tagging_sequences_carry_no_label(tokenizers):
    from stilts_tui.forecast.rows import task_rows
    from stilts_tui.tasks import get_task
    from stilts_tui.tasks.base import TaggingExample

    rows = task_rows(get_task("ccg"), [TaggingExample(("the", "cat", "sat"), (1, 2, 3))], tokenizers["roberta"], 32)
    assert len(rows) == 1 and rows.labels is None


def test_the_cli_forecast_and_the_results_view(study, capsys):
    from stilts_tui.cli import main

    assert main(["forecast", str(study["spec"]), "--db", str(study["db"]), "--sample", "8", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["spec"] == "fc"
    assert "no finished checkpoint of hellaswag, rte" in out.err and "stilts run" in out.err
    assert main(["forecast", str(study["spec"]), "--db", str(study["db"]), "--method", "taskemb"]) == 2
    assert "unknown method 'taskemb'" in capsys.readouterr().err
    assert main(["forecast", str(study["spec"]), "--db", str(study["db"]), "--target", "cola"]) == 2
    assert "not a target of fc" in capsys.readouterr().err
    # no target runs measured yet: the view says so rather than showing empty tables
    assert main(["results", "--view", "forecast", "--db", str(study["db"])]) == 0
    assert "no target has both a forecast and measured pairs" in capsys.readouterr().out
