"""The second study's training recipe: validation every N steps on the first dev examples, early
stopping with patience, the best weights scored on the full dev set, and the schedule's length."""

from __future__ import annotations

import io

import pytest

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.train.validation import schedule_steps


def test_schedule_ends_at_the_validation_after_the_epoch_limit():
    cfg = RunConfig(kind="target", model="m", task="rte", epochs=10, val_interval=625)
    # RTE: 2,490 examples / batch 4 = 623 batches; 6,230 steps over 10 epochs -> 10 validations of 625
    assert schedule_steps(cfg, 623) == 6250
    cfg.max_vals = 4
    assert schedule_steps(cfg, 623) == 2500
    assert schedule_steps(RunConfig(kind="target", model="m", task="rte", epochs=3), 100) == 300


def _run(cfg: RunConfig):
    from stilts_tui.domain.events import parse_event
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.loop import run

    cfg.run_id = cfg.compute_id()
    buf = io.StringIO()
    metrics = run(cfg, EventWriter(cfg.run_id, None, buf))
    return metrics, [e for e in map(parse_event, buf.getvalue().splitlines()) if e]


@pytest.mark.parametrize("head_style", ["jiant", "transformers"])
def test_early_stopping_keeps_and_scores_the_best_weights(head_style, tiny_models, tmp_path):
    from tests.conftest import write_rte_like

    data = write_rte_like(tmp_path / "RTE", 24, seed=3)
    cfg = RunConfig(kind="target", model=str(tiny_models["roberta"]), task="rte", data_dir=str(data), lr=3e-3,
                    batch_size=4, epochs=6, max_length=32, seed=5, val_interval=2, patience=3, head_style=head_style,
                    output_dir=str(tmp_path / "out"), log_interval_s=0, dropout=0.1 if head_style == "jiant" else None)
    metrics, events = _run(cfg)
    vals = [e for e in events if e["event"] == "eval" and e.get("validation")]
    final = [e for e in events if e["event"] == "eval" and not e.get("validation")]
    assert len(final) == 1 and vals
    best = max(v["score"] for v in vals)
    first_best = next(i for i, v in enumerate(vals) if v["score"] == best)
    # Nothing validated after patience ran out without improvement...
    assert len(vals) <= first_best + 1 + cfg.patience
    if metrics["stopped_early"]:
        assert len(vals) == first_best + 1 + cfg.patience
    # ...and the result is the best validated weights on the (here identical) full dev set.
    assert metrics["score"] == pytest.approx(best)
    assert metrics["best_step"] == vals[first_best]["step"] and metrics["validations"] == len(vals)


def test_validation_uses_only_the_first_dev_examples(tiny_models, tmp_path):
    from tests.conftest import write_rte_like

    data = write_rte_like(tmp_path / "RTE", 20, seed=4)
    cfg = RunConfig(kind="target", model=str(tiny_models["bert"]), task="rte", data_dir=str(data), lr=1e-3,
                    batch_size=4, epochs=1, max_length=32, seed=1, val_interval=5, val_data_limit=7,
                    output_dir=str(tmp_path / "out"), log_interval_s=0)
    metrics, events = _run(cfg)
    vals = [e for e in events if e["event"] == "eval" and e.get("validation")]
    assert [v["n"] for v in vals] == [7] and metrics["n"] == 20 and metrics["steps"] == 5


def test_spec_sets_the_recipe_for_every_run_and_a_task_keeps_its_own_interval(tmp_path):
    from stilts_tui.sweep.expand import expand
    from stilts_tui.sweep.spec import parse_spec

    raw = {"name": "t", "model": "m", "intermediates": ["none", "sst2"], "targets": ["cb", "rte"],
           "grid": {"lr": [1e-5], "dropout": [0.1, 0.2]},
           "train": {"val_interval": 5000, "patience": 20, "val_data_limit": 5000, "head_style": "jiant"},
           "tasks": {"cb": {"val_interval": 60}}, "data_dir": str(tmp_path)}
    runs = expand(parse_spec(raw), tmp_path / "w")
    targets = [r for r in runs if r.kind == "target"]
    assert len(targets) == 8 and {r.dropout for r in targets} == {0.1, 0.2}
    assert {r.task: r.val_interval for r in targets} == {"cb": 60, "rte": 5000}
    assert all(r.patience == 20 and r.val_data_limit == 5000 and r.head_style == "jiant" for r in runs)
    with pytest.raises(Exception, match="val_interval"):
        parse_spec(raw | {"train": {"val_interval": 0}})


def test_dropout_without_a_jiant_head_is_one_clear_error(tiny_models, tmp_path):
    from stilts_tui.errors import StiltsError
    from tests.conftest import write_rte_like

    data = write_rte_like(tmp_path / "RTE", 8)
    cfg = RunConfig(kind="target", model=str(tiny_models["bert"]), task="rte", data_dir=str(data), batch_size=4,
                    epochs=1, max_length=32, dropout=0.2, output_dir=str(tmp_path / "out"), log_interval_s=0)
    with pytest.raises(StiltsError, match='head_style = "jiant"'):
        _run(cfg)


def _reference_bert_adam_step(params, state, lr, b1=0.9, b2=0.999, e=1e-6, wd=0.01, max_norm=1.0):
    """pytorch-pretrained-bert 0.6.2 BertAdam.step written out tensor by tensor, as its source reads."""
    import torch

    for p in params:
        grad = p.grad
        st = state.setdefault(id(p), {"m": torch.zeros_like(p), "v": torch.zeros_like(p)})
        torch.nn.utils.clip_grad_norm_(p, max_norm)
        st["m"].mul_(b1).add_(grad, alpha=1 - b1)
        st["v"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        update = st["m"] / (st["v"].sqrt() + e) + wd * p.data
        p.data.add_(-lr * update)


def test_bert_adam_matches_the_reference_step_and_schedule():
    import torch

    from stilts_tui.train.optim import BertAdam, bert_warmup_linear, build_scheduler

    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(5))]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt = BertAdam(ours, lr=1e-2)
    sched = build_scheduler("bert_adam", opt, 0.1, 0, 20)
    state: dict = {}
    for step in range(20):
        grads = [torch.randn_like(p) * (5.0 if step % 2 else 0.1) for p in ours]  # some steps clip, some do not
        for p, q, g in zip(ours, ref, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        # BertAdam reads its schedule at the step count before the update: lr 0 on the first step
        _reference_bert_adam_step(ref, state, 1e-2 * bert_warmup_linear(step / 20, 0.1))
        opt.step()
        sched.step()
        for p, q in zip(ours, ref, strict=True):
            assert torch.allclose(p, q, atol=1e-6)
    assert bert_warmup_linear(0.0, 0.1) == 0.0 and bert_warmup_linear(0.05, 0.1) == 0.5
    assert bert_warmup_linear(0.1, 0.1) == 1.0 and bert_warmup_linear(0.55, 0.1) == pytest.approx(0.5)
    assert bert_warmup_linear(1.2, 0.1) == 0.0
