"""The worker's loop in-process: hand-off rules, zero-shot, determinism, accumulation."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import pytest
import torch
from conftest import wait_for

from stilts_tui.domain.events import parse_event, read_events
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.tasks import get_task
from stilts_tui.train.events import EventWriter
from stilts_tui.train.handoff import build_model, load_checkpoint_state
from stilts_tui.train.loop import run


def cfg_for(model, task, data, tmp_path, **kw) -> RunConfig:
    base = dict(kind="target", model=str(model), task=task, data_dir=str(data), lr=1e-3, batch_size=4, epochs=1,
                max_length=32, seed=1, cache_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "out"), log_interval_s=0)
    cfg = RunConfig(**(base | kw))
    cfg.run_id = cfg.compute_id()
    return cfg


def train(cfg: RunConfig) -> tuple[dict, list[dict]]:
    buf = io.StringIO()
    metrics = run(cfg, EventWriter(cfg.run_id, None, buf))
    return metrics, [e for e in map(parse_event, buf.getvalue().splitlines()) if e]


@pytest.fixture(scope="module")
def mc_checkpoints(tiny_models, train_data, tmp_path_factory):
    """A HellaSwag (MC) intermediate checkpoint and a CoLA (classification) one, per architecture."""
    out = {}
    for kind, model in tiny_models.items():
        for task in ("hellaswag", "cola"):
            tmp = tmp_path_factory.mktemp(f"{kind}-{task}")
            cfg = cfg_for(model, task, train_data, tmp, kind="intermediate", epochs=2, batch_size=2)
            metrics, _ = train(cfg)
            out[(kind, task)] = tmp / "out" / "checkpoint"
            out[(kind, task, "score")] = metrics["score"]
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a, b)


@pytest.mark.parametrize("arch", ["roberta", "bert"])
def test_mc_to_mc_keeps_pooler_and_classifier(arch, tiny_models, mc_checkpoints):
    ckpt = mc_checkpoints[(arch, "hellaswag")]
    state = load_checkpoint_state(ckpt)
    model, report = build_model(str(tiny_models[arch]), get_task("winogrande_m"), str(ckpt))
    own = model.state_dict()
    assert report["rule"].startswith("MC -> MC") and {"encoder", "pooler", "classifier"} <= set(report["kept"])
    assert report["reinitialised"] == []
    for key, value in state.items():
        assert _same(own[key], value), key  # everything carried over, head included


@pytest.mark.parametrize("arch", ["roberta", "bert"])
def test_mc_to_classification_starts_a_fresh_head(arch, tiny_models, mc_checkpoints):
    from transformers import set_seed

    ckpt = mc_checkpoints[(arch, "hellaswag")]
    state = load_checkpoint_state(ckpt)
    rte = get_task("rte")
    set_seed(5)
    model, report = build_model(str(tiny_models[arch]), rte, str(ckpt))
    set_seed(5)
    baseline, _ = build_model(str(tiny_models[arch]), rte, None)
    prefix = model.base_model_prefix + "."
    own, base = model.state_dict(), baseline.state_dict()
    assert report["kept"] == ["encoder"] and report["reinitialised"] == ["classifier"]
    encoder = [k for k in state if k.startswith(prefix) and ".pooler." not in k]
    assert encoder and all(_same(own[k], state[k]) for k in encoder)
    head = [k for k in own if not k.startswith(prefix)]
    assert head and all(_same(own[k], base[k]) for k in head)  # the same fresh head as `none` for the seed
    if arch == "bert":  # the pooler comes from the pretrained model, not the intermediate
        assert report["from_pretrained"] == ["pooler"]
        pooler = [k for k in own if ".pooler." in k]
        assert all(_same(own[k], base[k]) and not _same(own[k], state[k]) for k in pooler)


def test_classification_to_mc_starts_a_fresh_head(tiny_models, mc_checkpoints):
    ckpt = mc_checkpoints[("bert", "cola")]
    model, report = build_model(str(tiny_models["bert"]), get_task("hellaswag"), str(ckpt))
    assert report["rule"] == "classification -> multiple_choice: encoder carried over, new head"
    assert "classifier" in report["reinitialised"]


def test_handoff_is_logged_as_an_event(tiny_models, train_data, mc_checkpoints, tmp_path):
    cfg = cfg_for(tiny_models["roberta"], "winogrande_xs", train_data, tmp_path,
                  init_checkpoint=str(mc_checkpoints[("roberta", "hellaswag")]), init_from="x")
    _, events = train(cfg)
    handoff = next(e for e in events if e["event"] == "handoff")
    assert handoff["from_head"] == "multiple_choice" and "classifier" in handoff["kept"]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "eval" and "step" in kinds


def test_zero_shot_evaluates_the_checkpoint_untrained(tiny_models, train_data, mc_checkpoints, tmp_path):
    ckpt = mc_checkpoints[("roberta", "hellaswag")]
    cfg = cfg_for(tiny_models["roberta"], "hellaswag", train_data, tmp_path, kind="zero_shot", init_checkpoint=str(ckpt),
                  epochs=0)
    metrics, events = train(cfg)
    assert metrics["steps"] == 0 and not any(e["event"] == "step" for e in events)
    # Same weights, same dev data: exactly the intermediate run's own final dev score.
    assert metrics["score"] == mc_checkpoints[("roberta", "hellaswag", "score")]
    with pytest.raises(StiltsError, match="multiple-choice target"):
        train(cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path, kind="zero_shot", init_checkpoint=str(ckpt)))


def test_intermediate_saves_a_checkpoint_targets_do_not(tiny_models, train_data, tmp_path):
    cfg = cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path)
    train(cfg)
    assert not (tmp_path / "out" / "checkpoint").exists()
    cfg = cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path, save_checkpoint=True)
    train(cfg)
    assert (tmp_path / "out" / "checkpoint" / "stilts_checkpoint.json").is_file()


def test_same_seed_same_result_and_another_seed_differs(tiny_models, train_data, tmp_path):
    a, _ = train(cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path, epochs=2))
    b, _ = train(cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path, epochs=2))
    c, _ = train(cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path, epochs=2, seed=2))
    assert a["final_loss"] == b["final_loss"] and a["score"] == b["score"]
    assert a["final_loss"] != c["final_loss"]


def test_gradient_accumulation_matches_the_full_batch(tiny_nodrop, train_data, tmp_path):
    full, fe = train(cfg_for(tiny_nodrop, "rte", train_data, tmp_path, batch_size=16, max_device_batch=16, epochs=2))
    accum, ae = train(cfg_for(tiny_nodrop, "rte", train_data, tmp_path, batch_size=16, max_device_batch=8, epochs=2))
    started = next(e for e in ae if e["event"] == "started")
    assert (started["micro_batch"], started["accumulation"]) == (8, 2)
    losses_full = [e["loss"] for e in fe if e["event"] == "step"]
    losses_acc = [e["loss"] for e in ae if e["event"] == "step"]
    assert len(losses_full) == len(losses_acc) == 6
    assert losses_acc == pytest.approx(losses_full, rel=1e-4, abs=1e-5)
    assert accum["score"] == full["score"]


def test_warmup_and_linear_decay(tiny_models, train_data, tmp_path):
    _, events = train(cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path, batch_size=8, epochs=2,
                              warmup_ratio=0.5, lr=1e-3))
    lrs = [e["lr"] for e in events if e["event"] == "step"]
    # 12 steps, 6 of warmup: lr climbs to the peak, then decays linearly to 0.
    assert lrs[5] == pytest.approx(1e-3) and lrs[0] == pytest.approx(1e-3 / 6)
    assert lrs[-1] == pytest.approx(0.0) and lrs[8] == pytest.approx(1e-3 * 3 / 6)


def test_tokenisation_is_cached_once_per_tokenizer_and_length(tiny_models, train_data, tmp_path):
    train(cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path))
    train(cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path, lr=5e-4))
    caches = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert len(caches) == 2  # train and dev, shared by both runs
    train(cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path, max_length=24))
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 4


def test_worker_subprocess_writes_versioned_events(tiny_models, train_data, tmp_path):
    cfg = cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path, events_path=str(tmp_path / "ev.jsonl"))
    run_file = tmp_path / "run.json"
    run_file.write_text(cfg.to_json())
    proc = subprocess.run([sys.executable, "-m", "stilts_tui.train", str(run_file)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    events = read_events(tmp_path / "ev.jsonl")
    assert [e["event"] for e in events][-1] == "finished"
    assert all(e["v"] == 1 and e["run_id"] == cfg.run_id for e in events)
    started = events[0]
    assert started["params"] > 0 and started["device"] == "cpu" and started["config"]["lr"] == cfg.lr
    step = next(e for e in events if e["event"] == "step")
    assert {"step", "epoch", "loss", "lr", "sequences_per_s", "tokens_per_s", "memory_mb"} <= set(step)
    finished = events[-1]
    assert finished["metrics"]["metric"] == "accuracy" and "wall_s" in finished


def test_unreadable_run_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "run.json"
    bad.write_text(json.dumps({"kind": "target", "nonsense": 1}))
    proc = subprocess.run([sys.executable, "-m", "stilts_tui.train", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot read run file" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("line", ["", "garbage", "{", '{"v": 1}', '{"v": 1, "event": "nope"}', '{"v": 99, "event": "step"}',
                                  "[1, 2]", '{"v": "1", "event": "step"}', b"\xff\xfe{", '{"v": 1, "event": "step"'])
def test_malformed_event_lines_never_break_the_reader(line):
    assert parse_event(line) is None


STEP = {"step": 1, "total_steps": 10, "epoch": 0.1, "loss": 0.5, "lr": 1e-5, "sequences_per_s": 30.0,
        "tokens_per_s": 900.0, "memory_mb": None}


def test_each_event_kind_is_decoded_against_its_declared_fields():
    """parse_event is the one decoder: a line must fit its kind's TypedDict (required fields
    present, every field of its declared type) or it is not an event."""
    from stilts_tui.domain.events import KINDS

    assert set(KINDS) == {"ready", "started", "handoff", "resumed", "step", "eval", "finished", "failed"}
    base = '{"v": 1, "run_id": "r", "attempt": 2, "t": 5.0, '
    good = base + '"event": "step", ' + json.dumps(STEP)[1:]
    assert parse_event(good)["loss"] == 0.5 and parse_event(good)["attempt"] == 2
    for key in ("step", "loss", "sequences_per_s"):  # each required field of a step
        assert parse_event(base + '"event": "step", ' + json.dumps({k: v for k, v in STEP.items() if k != key})[1:]) is None
    for key, bad in (("step", "1"), ("loss", "nan"), ("step", True), ("memory_mb", "9 GB"), ("epoch", None)):
        assert parse_event(base + '"event": "step", ' + json.dumps(STEP | {key: bad})[1:]) is None, key
    assert parse_event(base + '"event": "step", ' + json.dumps(STEP | {"loss": 3})[1:])["loss"] == 3  # an int is a number
    finished = base + '"event": "finished", "metrics": {"metric": "accuracy", "score": 0.75, "steps": 9}}'
    assert parse_event(finished)["metrics"]["score"] == 0.75
    assert parse_event(finished.replace('"score": 0.75', '"score": "high"')) is None  # nested records are checked too
    assert parse_event(base + '"event": "eval", "epoch": 1, "step": 3, "metric": "mcc"}') is None  # no score
    assert parse_event(base + '"event": "handoff", "source": "pretrained"}') is None  # no rule


def test_event_logs_written_before_retries_and_minimal_failures_still_read():
    """A log from before attempts existed has no `attempt`: it is attempt 1. A failure that says
    only its reason has an empty message. Nothing else is made up: a line without `t` is not an event."""
    old = parse_event('{"v": 1, "event": "eval", "run_id": "r", "t": 1.0, "epoch": 1, "step": 3, "metric": "accuracy", "score": 0.5}')
    assert old["attempt"] == 1 and old["score"] == 0.5
    failed = parse_event('{"v": 1, "event": "failed", "run_id": "r", "t": 1.0, "reason": "oom"}')
    assert failed["message"] == "" and failed["attempt"] == 1
    assert parse_event('{"v": 1, "event": "failed", "run_id": "r", "reason": "oom"}') is None


def test_event_log_with_a_torn_last_line(tmp_path):
    log = tmp_path / "e.jsonl"
    w = EventWriter("r", log, io.StringIO())
    w.emit("started", params=1)
    w.emit("step", **STEP)
    w.close()
    with log.open("a") as fh:
        fh.write('{"v": 1, "event": "fini')
    assert [e["event"] for e in read_events(log)] == ["started", "step"]


def test_length_groups_partition_each_step():
    from stilts_tui.train.data import length_groups

    lengths = [5, 120, 7, 64, 128, 9, 66, 30, 31, 127, 6, 60]
    idx = list(range(len(lengths)))
    groups = length_groups(idx, lengths, cap=4)
    assert sorted(i for g in groups for i in g) == idx
    assert all(1 <= len(g) <= 4 for g in groups)
    padded = sum(len(g) * max(lengths[i] for i in g) for g in groups)
    assert padded < len(idx) * max(lengths) * 0.7  # far less padding than one batch padded to 128
    assert length_groups(idx, lengths, cap=4) == groups  # deterministic
    # On a GPU a step is never split for padding: as few micro-batches as the cap allows, sorted
    once = length_groups(idx, lengths, cap=4, waste=None)
    assert [len(g) for g in once] == [4, 4, 4] and sorted(i for g in once for i in g) == idx
    assert [lengths[i] for g in once for i in g] == sorted(lengths)


def test_padding_is_traded_for_micro_batches_only_on_a_cpu():
    import torch

    from stilts_tui.train.loop import padding_waste

    assert padding_waste(torch.device("cpu")) == 0.25
    assert padding_waste(torch.device("cuda", 0)) is None


def test_grouped_evaluation_predicts_exactly_as_plain_batches(tiny_models, train_data, tmp_path):
    from transformers import AutoTokenizer

    from stilts_tui.train.data import Collator, tokenised_split
    from stilts_tui.train.loop import evaluate

    task = get_task("rte")
    tok = AutoTokenizer.from_pretrained(tiny_models["roberta"])
    dev, _ = tokenised_split(task, "dev", str(train_data), tok, 64, None)
    model, _ = build_model(str(tiny_models["roberta"]), task, None)
    collate = Collator(tok.pad_token_id)
    grouped = evaluate(model, dev, task, 4, collate, torch.device("cpu"), "fp32", group_by_length=True)
    plain = evaluate(model, dev, task, 4, collate, torch.device("cpu"), "fp32", group_by_length=False)
    assert grouped == plain


def test_a_killed_run_resumes_from_its_last_saved_step_to_the_same_result(tiny_models, train_data, tmp_path):
    """Saved every step, killed (SIGKILL) at step 5, run again: it continues from step 4 and
    ends with exactly the weights, loss and score of a run never stopped."""
    import os

    whole = cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path / "whole", epochs=3, batch_size=2, lr=5e-4)
    expected, _ = train(whole)
    cfg = cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path / "stopped", epochs=3, batch_size=2, lr=5e-4,
                  resume_every_s=1e-9, events_path=str(tmp_path / "stopped" / "events.jsonl"))
    run_file = tmp_path / "run.json"
    run_file.write_text(cfg.to_json(), encoding="utf-8")
    env = os.environ | {"STILTS_FAULT_INJECT": "kill:5"}
    proc = subprocess.run([sys.executable, "-m", "stilts_tui.train", str(run_file)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9
    assert (tmp_path / "stopped" / "out" / "resume.pt").is_file()
    proc = subprocess.run([sys.executable, "-m", "stilts_tui.train", str(run_file)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    events = read_events(cfg.events_path)
    resumed = [e for e in events if e["event"] == "resumed"]
    assert len(resumed) == 1 and resumed[0]["step"] == 4
    got = [e for e in events if e["event"] == "finished"][0]["metrics"]
    assert got["steps"] == expected["steps"] > 5
    assert got["score"] == expected["score"]
    assert got["final_loss"] == pytest.approx(expected["final_loss"], abs=1e-6)
    assert got["train_sequences"] == expected["train_sequences"]
    assert not (tmp_path / "stopped" / "out" / "resume.pt").exists()  # removed once the run ended


def test_a_save_requested_during_a_weight_update_is_refused(tmp_path):
    from stilts_tui.train.resume import Position, ResumeState

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    state = ResumeState(tmp_path / "resume.pt", "r1", 0, model, opt, sched, None)
    assert not state.save()                      # nothing done yet
    state.mark(Position(1, 0, 1, torch.Generator().get_state(), {}))
    state.updating = True
    assert not state.save() and not state.path.exists()
    state.updating = False
    assert state.save() and state.path.is_file()
    other = ResumeState(tmp_path / "resume.pt", "another-run", 0, model, opt, sched, None)
    assert other.restore(torch.device("cpu")) is None  # never another run's state


def test_a_stopped_run_saves_where_it_is_and_resumes_from_there(tiny_models, train_data, tmp_path):
    """No periodic save (resume_every_s 0): a stop (SIGTERM, what `x` and `stilts stop` send) makes
    the run save its state between two steps before it ends, and the next attempt resumes at that
    step and ends as a run never stopped."""
    import os
    import signal

    whole = cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path / "whole", epochs=3, batch_size=2, lr=5e-4)
    expected, _ = train(whole)
    cfg = cfg_for(tiny_models["roberta"], "rte", train_data, tmp_path / "stopped", epochs=3, batch_size=2, lr=5e-4,
                  resume_every_s=0.0, log_interval_s=0.0, events_path=str(tmp_path / "stopped" / "events.jsonl"))
    run_file = tmp_path / "run.json"
    run_file.write_text(cfg.to_json(), encoding="utf-8")
    env = os.environ | {"STILTS_FAULT_INJECT": "gate:5", "STILTS_FAULT_GATE": str(tmp_path / "never")}
    proc = subprocess.Popen([sys.executable, "-m", "stilts_tui.train", str(run_file)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(e["event"] == "step" and e["step"] == 4 for e in read_events(cfg.events_path)),
                 timeout=120, what="step 4")
        time.sleep(0.5)  # at the gate of step 5: between two weight updates
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert (tmp_path / "stopped" / "out" / "resume.pt").is_file()
    done = subprocess.run([sys.executable, "-m", "stilts_tui.train", str(run_file)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    events = read_events(cfg.events_path)
    assert [e["step"] for e in events if e["event"] == "resumed"] == [4]
    got = [e for e in events if e["event"] == "finished"][0]["metrics"]
    assert got["score"] == expected["score"] and got["steps"] == expected["steps"]
