"""Fused trials (train/fused/): each trial is the run it says it is. On CPU, dropout off and fp32,
every trial's loss curve and final weights equal the same run alone, for a classification and a
multiple-choice task and for each optimizer (each trial of one group has another optimizer, lr,
warmup, seed, clipping and effective batch); with dropout on, a trial's result does not change
when it is fused with other trials."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import CORPUS

from stilts_tui.domain.events import parse_event, read_events
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.train.events import EventWriter
from stilts_tui.train.fused.group import run_group
from stilts_tui.train.fused.rules import fuse_key, not_fusable
from stilts_tui.train.handoff import load_checkpoint_state
from stilts_tui.train.loop import run

RTOL = 1e-5
# One trial per optimizer, each with its own lr, warmup, seed, clipping and effective batch (the
# device batch, 2, is what they share: accumulation 1, 2 or 3).
TRIALS = [dict(optimizer="torch_adamw", lr=1e-3, warmup_ratio=0.1, seed=1, batch_size=4),
          dict(optimizer="hf_adamw", lr=5e-4, warmup_ratio=0.0, seed=2, batch_size=2, grad_clip="per_micro_batch"),
          dict(optimizer="bert_adam", lr=2e-3, warmup_ratio=0.2, seed=3, batch_size=6, weight_decay=0.01),
          dict(optimizer="amsgrad", lr=1e-3, warmup_ratio=0.0, seed=4, batch_size=4, max_grad_norm=0.5)]


def write_mc(folder: Path, n: int) -> Path:
    """A HellaSwag-format task of ``n`` rows per split built from CORPUS."""
    import random

    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("hellaswag_train.jsonl", "hellaswag_val.jsonl"):
        rows = [{"ind": i, "activity_label": "x", "ctx_a": rng.choice(CORPUS), "ctx_b": "", "ctx": rng.choice(CORPUS),
                 "split": "train", "split_type": "indomain", "source_id": str(i),
                 "endings": rng.sample(CORPUS, 4), "label": i % 4} for i in range(n)]
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder.parent


def config(model: Path, task: str, data: Path, out: Path, **kw) -> RunConfig:
    base = dict(kind="target", model=str(model), task=task, data_dir=str(data), epochs=2, max_length=32,
                max_device_batch=2, precision="fp32", cache_dir=str(out.parent / "cache"), log_interval_s=1e-9,
                save_checkpoint=True, fuse=4)
    cfg = RunConfig(**(base | kw))
    cfg.run_id = cfg.compute_id()
    return replace(cfg, output_dir=str(out / cfg.run_id), events_path=str(out / cfg.run_id / "events.jsonl"))


def alone(cfg: RunConfig) -> dict:
    buf = io.StringIO()
    metrics = run(cfg, EventWriter(cfg.run_id, cfg.events_path, buf))
    return {"metrics": metrics, "events": read_events(cfg.events_path)}


def fused(cfgs: list[RunConfig]) -> dict[str, dict]:
    ends: dict[str, object] = {}
    writers = [EventWriter(c.run_id, c.events_path, io.StringIO()) for c in cfgs]
    run_group(cfgs, writers, lambda c, what: ends.__setitem__(c.run_id, what))
    for w in writers:
        w.close()
    out = {}
    for c in cfgs:
        assert isinstance(ends[c.run_id], dict), f"{c.run_id} failed: {ends[c.run_id]!r}"
        out[c.run_id] = {"metrics": ends[c.run_id], "events": read_events(c.events_path)}
    return out


def losses(events: list[dict]) -> list[float]:
    return [e["loss"] for e in events if e["event"] == "step"]


def weights(cfg: RunConfig) -> dict[str, torch.Tensor]:
    return load_checkpoint_state(Path(cfg.output_dir) / "checkpoint")


def assert_same_run(a: dict, b: dict, cfg_a: RunConfig, cfg_b: RunConfig) -> None:
    mc = cfg_a.task == "hellaswag"
    la, lb = losses(a["events"]), losses(b["events"])
    assert len(la) == len(lb) > 0
    assert la == pytest.approx(lb, rel=RTOL)
    wa, wb = weights(cfg_a), weights(cfg_b)
    assert wa.keys() == wb.keys()
    # All the weights within 1e-5 of their norm, but for those whose gradient is exactly zero in
    # exact arithmetic: an attention key bias (it shifts every score of a query alike) and a
    # multiple-choice classifier's bias (shared by every choice). They move by round-off alone,
    # which Adam scales up to lr-sized steps: the run alone differs there from itself with another
    # device batch (max_device_batch, not part of a run's identity) just as much.
    keys = [k for k in wa if not k.endswith("attention.self.key.bias") and not (k == "classifier.bias" and mc)]
    diff = sum(float(torch.linalg.vector_norm(wa[k] - wb[k])) ** 2 for k in keys) ** 0.5
    norm = sum(float(torch.linalg.vector_norm(wb[k])) ** 2 for k in keys) ** 0.5
    assert diff <= RTOL * norm
    assert a["metrics"]["steps"] == b["metrics"]["steps"]
    assert a["metrics"]["score"] == pytest.approx(b["metrics"]["score"], abs=1e-9)


@pytest.fixture(scope="module")
def mc_data(tmp_path_factory) -> Path:
    return write_mc(tmp_path_factory.mktemp("mc") / "hellaswag", 12)


@pytest.mark.parametrize("task", ["rte", "hellaswag"])
def test_each_trial_of_a_fused_group_is_the_run_alone(task, tiny_nodrop, train_data, mc_data, tmp_path):
    data = train_data if task == "rte" else mc_data
    extra = {"train_size": 16} if task == "rte" else {"epochs": 1}
    solo = [config(tiny_nodrop, task, data, tmp_path / "solo", **t, **extra) for t in TRIALS]
    group = [config(tiny_nodrop, task, data, tmp_path / "fused", **t, **extra) for t in TRIALS]
    assert [c.run_id for c in solo] == [c.run_id for c in group]  # fused or not, the same run
    assert len({fuse_key(c) for c in group}) == 1 and not any(not_fusable(c) for c in group)
    results = fused(group)
    for s, g in zip(solo, group, strict=True):
        assert_same_run(results[g.run_id], alone(s), g, s)
        started = next(e for e in results[g.run_id]["events"] if e["event"] == "started")
        assert started["fused"] == {"group": [c.run_id for c in group], "size": 4}


def test_with_dropout_a_trials_result_does_not_depend_on_its_group(tiny_models, train_data, tmp_path):
    kw = dict(train_size=16, epochs=1)
    trial = TRIALS[0]
    one = [config(tiny_models["roberta"], "rte", train_data, tmp_path / "a", **t, **kw) for t in (trial, TRIALS[1], TRIALS[2])]
    two = [config(tiny_models["roberta"], "rte", train_data, tmp_path / "b", **t, **kw) for t in (TRIALS[3], trial)]
    ra, rb = fused(one), fused(two)
    assert_same_run(ra[one[0].run_id], rb[two[1].run_id], one[0], two[1])
    # and dropout is on: the same run trained without it is another run
    assert losses(ra[one[0].run_id]["events"]) != pytest.approx(losses(ra[one[1].run_id]["events"]), rel=1e-3)


def test_a_trial_that_fails_leaves_the_group_and_the_others_finish(tiny_nodrop, train_data, tmp_path, monkeypatch):
    monkeypatch.setenv("STILTS_FAULT_INJECT", "nan:2@seed=2")
    group = [config(tiny_nodrop, "rte", train_data, tmp_path, **t, train_size=16, epochs=1) for t in TRIALS[:3]]
    ends: dict[str, object] = {}
    writers = [EventWriter(c.run_id, c.events_path, io.StringIO()) for c in group]
    run_group(group, writers, lambda c, what: ends.__setitem__(c.run_id, what))
    assert "nan" in str(ends[group[1].run_id])
    assert isinstance(ends[group[0].run_id], dict) and isinstance(ends[group[2].run_id], dict)


def test_a_stopped_group_resumes_each_trial_at_its_own_step(tiny_nodrop, train_data, tmp_path, monkeypatch):
    """The group stops at step 3 of its first trial (the others at their own step: they have other
    accumulation counts), each trial having saved where it was; resumed, each continues from its
    own step and ends as the run alone."""
    import stilts_tui.train.fused.trial as trial_mod

    kw = dict(train_size=16, epochs=2)
    group = [config(tiny_nodrop, "rte", train_data, tmp_path / "fused", **t, **kw) for t in TRIALS[:2]]
    solo = [config(tiny_nodrop, "rte", train_data, tmp_path / "solo", **t, **kw) for t in TRIALS[:2]]
    real_end = trial_mod.Trial._end_step

    def end_and_save(self, *a):  # a save after every step, as a stop's request makes one; stopped at step 3
        if self.cfg.seed == 1 and self.step == 3:
            raise KeyboardInterrupt
        out = real_end(self, *a)
        self.state.save()
        return out

    monkeypatch.setattr(trial_mod.Trial, "_end_step", end_and_save)
    ends: dict[str, object] = {}
    with pytest.raises(KeyboardInterrupt):
        run_group(group, [EventWriter(c.run_id, c.events_path, io.StringIO()) for c in group],
                  lambda c, what: ends.__setitem__(c.run_id, what))
    assert all(isinstance(ends[c.run_id], KeyboardInterrupt) for c in group)  # each trial hears the stop
    saved = {c.run_id: torch.load(Path(c.output_dir, "resume.pt"), weights_only=False)["step"] for c in group}
    assert saved[group[0].run_id] == 2 and saved[group[1].run_id] > 2  # batch 2: a step a micro-batch
    monkeypatch.setattr(trial_mod.Trial, "_end_step", real_end)
    resumed = fused(group)
    for g, s in zip(group, solo, strict=True):
        ev = resumed[g.run_id]["events"]
        at = next(e for e in ev if e["event"] == "resumed")
        assert at["step"] == saved[g.run_id]
        ref = alone(s)
        assert losses(ev)[-1] == pytest.approx(losses(ref["events"])[-1], rel=RTOL)
        assert_same_run({"events": [e for e in ev if e["event"] == "step"][-1:], "metrics": resumed[g.run_id]["metrics"]},
                        {"events": [e for e in ref["events"] if e["event"] == "step"][-1:], "metrics": ref["metrics"]}, g, s)


def test_runs_that_differ_in_what_they_share_never_fuse(tiny_nodrop, train_data, tmp_path):
    a = config(tiny_nodrop, "rte", train_data, tmp_path, **TRIALS[0])
    assert fuse_key(a) != fuse_key(replace(a, max_length=64))
    assert fuse_key(a) != fuse_key(replace(a, max_device_batch=4))
    assert fuse_key(a) == fuse_key(replace(a, lr=3e-3, seed=9, batch_size=8, optimizer="amsgrad"))
    assert not_fusable(replace(a, precision="fp16")) == "fp16 loss scaling is not fused yet"
    assert not_fusable(replace(a, fuse=1)) == "fuse is off"
    assert parse_event  # the worker's lines decode as any run's


def test_a_trial_that_stops_early_leaves_and_the_group_goes_on(tiny_nodrop, train_data, tmp_path):
    """Validation and early stopping are each trial's own: the trial that validates every step with
    patience 1 stops (as alone), the other trains its epochs out; both are the runs alone."""
    kw = dict(train_size=16, epochs=2)
    stops = dict(TRIALS[1], val_interval=1, patience=1, val_data_limit=8)
    solo = [config(tiny_nodrop, "rte", train_data, tmp_path / "solo", **t, **kw) for t in (stops, TRIALS[0])]
    group = [config(tiny_nodrop, "rte", train_data, tmp_path / "fused", **t, **kw) for t in (stops, TRIALS[0])]
    results = fused(group)
    for s, g in zip(solo, group, strict=True):
        ref = alone(s)
        assert_same_run(results[g.run_id], ref, g, s)
        vals = [e["score"] for e in results[g.run_id]["events"] if e["event"] == "eval" and e.get("validation")]
        assert vals == [e["score"] for e in ref["events"] if e["event"] == "eval" and e.get("validation")]
    assert results[group[0].run_id]["metrics"]["stopped_early"] is True
    assert results[group[0].run_id]["metrics"]["steps"] < results[group[1].run_id]["metrics"]["steps"]
