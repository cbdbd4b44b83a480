"""The second study trains as jiant taskmaster_v1's trainer did: patience counted as
``_check_history`` counts it, training on to the validation after the epoch limit, and AllenNLP
0.8.4's BucketIterator batches. The expected numbers come from jiant's and AllenNLP's rules written
out below, never from this project's code."""

from __future__ import annotations

import io
import math
import random
from collections import deque
from itertools import islice
from pathlib import Path

import pytest
import torch

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.train.bucket import batches_per_pass, bucket_pass
from stilts_tui.train.steps import epoch_plan, passes
from stilts_tui.train.validation import Validator, trained_steps

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- 1. patience

def jiant_check_history(metric_history: list[float], patience_setting: int) -> tuple[bool, bool]:
    """trainer.py l. 253-274 (taskmaster_v1), should_decrease=False, verbatim in substance."""
    patience = patience_setting + 1
    best_score = max(metric_history)
    cur_score = metric_history[-1]
    best_so_far = metric_history.index(best_score) == len(metric_history) - 1 if best_score == cur_score else False
    index_of_last_improvement = metric_history.index(max(metric_history))
    out_of_patience = index_of_last_improvement <= len(metric_history) - (patience + 1)
    return best_so_far, out_of_patience


def jiant_stop(curve: list[float], patience_setting: int) -> tuple[int, int]:
    """(validations run, index of the best checkpoint) as jiant's loop ends on ``curve``."""
    history: list[float] = []
    best = -1
    for i, score in enumerate(curve):
        history.append(score)
        best_so_far, out = jiant_check_history(history, patience_setting)
        if best_so_far:
            best = i
        if out:
            return i + 1, best
    return len(curve), best


class _Events:
    def emit(self, *args, **kwargs) -> None:
        pass


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


def ours_stop(curve: list[float], cfg: RunConfig) -> tuple[int, int]:
    validator = Validator(cfg, None, [], [], _Events())  # type: ignore[arg-type]
    model = _Model()
    for i, score in enumerate(curve):
        with torch.no_grad():
            model.w.fill_(i)  # the weights say which validation they were
        if validator.validate(model, lambda _d, _e, s=score: {"score": s}, step=i + 1, epoch=0):
            break
    assert validator.best_state is not None
    return validator.count, int(validator.best_state["w"].item())


# Best 0.70 at validation 3; a tie (0.70) at validation 11, 0.69s to validation 23, and validation
# 24 (the 21st after the best) improves. A count of 20 stops at validation 23 with the best at 3;
# jiant's sees 24 improve and stops 21 validations later, at 45, with the best at 24.
TIE_CURVE = [0.5, 0.6, 0.7] + [0.69] * 7 + [0.7] + [0.69] * 12 + [0.72] + [0.6] * 25
CURVES = {
    "improvement at the 21st validation after the best": TIE_CURVE,
    "never improves after the first": [0.9] + [0.1] * 30,
    "ties only": [0.3, 0.5] + [0.5] * 30,
    "late best": [0.1 * i for i in range(8)] + [0.0] * 30,
}


@pytest.mark.parametrize("name", list(CURVES))
def test_patience_counts_as_jiant_check_history(name):
    curve = CURVES[name]
    cfg = RunConfig(kind="target", model="m", task="rte", val_interval=1, patience=20, patience_count="jiant")
    assert ours_stop(curve, cfg) == jiant_stop(curve, 20)


def test_twenty_and_twenty_one_stop_apart_with_different_best():
    jiant = jiant_stop(TIE_CURVE, 20)
    assert jiant == (45, 23)  # validations run, index of the best
    plain = RunConfig(kind="target", model="m", task="rte", val_interval=1, patience=20)
    assert ours_stop(TIE_CURVE, plain) == (23, 2)  # counting 20 stops before the improvement
    jiant_cfg = RunConfig(kind="target", model="m", task="rte", val_interval=1, patience=20, patience_count="jiant")
    assert ours_stop(TIE_CURVE, jiant_cfg) == jiant


def test_the_study_counts_patience_as_jiant_does():
    from stilts_tui.sweep import pruksachatkun2020 as study

    for role, task in (("intermediate", "sst2"), ("target", "rte"), ("probe", "edges_pos"), ("baseline_probe", "cola")):
        s = study.settings(role, task)  # type: ignore[arg-type]
        assert (s["patience"], s["patience_count"], s["stop_at"], s["batching"]) == \
            (20, "jiant", "next_validation", "allennlp_bucket")


# ---------------------------------------------------------------- 2. the last stretch

def jiant_trained_steps(n_train: int, batch: int, max_epochs: int, val_interval: int, max_vals: int) -> int:
    """trainer.py: n_tr_batches = ceil(n / batch) (l. 342); the loop checks the epoch limit and
    max_vals only at a validation (l. 686-689, 1012-1040), so it stops at the first validation
    n_val * val_interval with n_val * val_interval / n_tr_batches >= max_epochs, or n_val >= max_vals."""
    n_tr_batches = math.ceil(n_train / batch)
    n_val = 0
    while True:
        n_val += 1
        step = n_val * val_interval
        if (max_epochs > 0 and step / n_tr_batches >= max_epochs) or n_val >= max_vals:
            return step


# (task, role, intermediate of the run, train rows of the release, batch, epochs, val_interval, max_vals)
# from transfer_analysis.sh and base_roberta.conf / defaults.conf
STEP_TABLE = [
    ("sst2", "intermediate", None, 67349, 64, 10, 5000, 10000),
    ("se_sentence_length", "probe", "sst2", 100000, 64, 10, 5000, 1000),
    ("se_bigram_shift", "probe", "sst2", 100000, 64, 10, 5000, 1000),
    ("wic_span", "target", "sst2", 5428, 32, 10, 1000, 1000),
    ("copa", "target", "sst2", 400, 32, 40, 100, 1000),
    ("cola", "probe", "sst2", 8551, 4, 10, 5000, 1000),
    ("rte", "target", "sst2", 2490, 4, 10, 625, 1000),
    ("cb", "target", "sst2", 250, 4, 40, 60, 1000),
    ("wsc", "target", "sst2", 554, 32, 40, 130, 1000),
]


@pytest.fixture(scope="module")
def study_rows(tmp_path_factory):
    from stilts_tui.sweep.expand import expand
    from stilts_tui.sweep.resolved import resolve
    from stilts_tui.sweep.spec import load_spec

    spec = load_spec(ROOT / "experiments" / "pruksachatkun2020.toml", data_dir=str(tmp_path_factory.mktemp("data")))
    runs = expand(spec, tmp_path_factory.mktemp("work"))
    return list(zip(runs, resolve(runs, set()), strict=True))


@pytest.mark.parametrize("row", STEP_TABLE, ids=[r[0] for r in STEP_TABLE])
def test_plan_shows_the_steps_jiant_trained(row, study_rows):
    task, role, intermediate, n, batch, epochs, interval, max_vals = row
    expected = jiant_trained_steps(n, batch, epochs, interval, max_vals)
    kind = "intermediate" if role == "intermediate" else "target"
    match = [(cfg, r) for cfg, r in study_rows if cfg.task == task and cfg.kind == kind
             and (intermediate is None or cfg.intermediate == intermediate)]
    assert match
    for cfg, r in match:
        assert (cfg.batch_size, cfg.epochs, cfg.val_interval, cfg.max_vals) == (batch, epochs, interval, max_vals)
        assert r["train_steps"] == expected == r["total_steps"]
        # the exact epoch limit trains fewer steps than jiant (SST-2: 10,530 of 15,000)
        assert math.ceil(n / batch) * epochs <= expected


def test_sst2_as_an_intermediate_trains_jiants_15000_steps():
    assert jiant_trained_steps(67349, 64, 10, 5000, 10000) == 15000
    cfg = RunConfig(kind="intermediate", model="m", task="sst2", batch_size=64, epochs=10, val_interval=5000,
                    max_vals=10000, stop_at="next_validation")
    assert trained_steps(cfg, 1053) == 15000
    cfg.stop_at = "epoch_limit"
    assert trained_steps(cfg, 1053) == 10530


def _run(cfg: RunConfig):
    from stilts_tui.domain.events import parse_event
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.loop import run

    cfg.run_id = cfg.compute_id()
    buf = io.StringIO()
    metrics = run(cfg, EventWriter(cfg.run_id, None, buf))
    return metrics, [e for e in map(parse_event, buf.getvalue().splitlines()) if e]


@pytest.mark.parametrize("batching", ["shuffle", "allennlp_bucket"])
def test_a_run_trains_on_to_the_validation_after_the_epoch_limit(batching, tiny_models, tmp_path):
    from tests.conftest import write_rte_like

    data = write_rte_like(tmp_path / "RTE", 22, seed=3)
    # 22 rows / batch 4 = 6 batches an epoch, 2 epochs = 12 steps; validations every 5: jiant trains 15
    cfg = RunConfig(kind="target", model=str(tiny_models["roberta"]), task="rte", data_dir=str(data), lr=1e-3,
                    batch_size=4, epochs=2, max_length=32, seed=5, val_interval=5, patience=50, head_style="jiant",
                    dropout=0.1, optimizer="bert_adam", warmup_ratio=0.1, stop_at="next_validation",
                    patience_count="jiant", batching=batching, output_dir=str(tmp_path / "out"), log_interval_s=0)
    metrics, events = _run(cfg)
    assert metrics["steps"] == jiant_trained_steps(22, 4, 2, 5, 10**9) == 15
    assert [e["step"] for e in events if e["event"] == "eval" and e.get("validation")] == [5, 10, 15]
    started = next(e for e in events if e["event"] == "started")
    assert started["total_steps"] == 15
    steps = [e for e in events if e["event"] == "step"]
    assert steps[-1]["step"] == 15 and steps[-1]["lr"] == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- 3. BucketIterator batches

def allennlp_bucket_epoch(lengths: list[tuple[int, ...]], batch_size: int, rng: random.Random,
                          max_instances_in_memory: int, padding_noise: float = 0.1) -> list[list[int]]:
    """AllenNLP v0.8.4 BucketIterator(biggest_batch_first=True)._create_batches over a lazy dataset,
    with its helpers (data_iterator.py _memory_sized_lists, util.py lazy_groups_of and
    add_noise_to_dict_values, bucket_iterator.py sort_by_padding), on instance indices."""
    def lazy_groups_of(iterator, group_size):
        return iter(lambda: list(islice(iterator, 0, group_size)), [])

    def add_noise_to_dict_values(dictionary, noise_param):
        new_dict = {}
        for key, value in dictionary.items():
            noise_value = value * noise_param
            noise = rng.uniform(-noise_value, noise_value)
            new_dict[key] = value + noise
        return new_dict

    def sort_by_padding(instances):
        instances_with_lengths = []
        for instance in instances:
            padding_lengths = {f"field{k}": {"num_tokens": v} for k, v in enumerate(lengths[instance])}
            if padding_noise > 0.0:
                padding_lengths = {name: add_noise_to_dict_values(fl, padding_noise) for name, fl in padding_lengths.items()}
            keys = [padding_lengths[f"field{k}"]["num_tokens"] for k in range(len(lengths[instance]))]
            instances_with_lengths.append((keys, instance))
        instances_with_lengths.sort(key=lambda x: x[0])
        return [x[-1] for x in instances_with_lengths]

    out = []
    for instance_list in lazy_groups_of(iter(range(len(lengths))), max_instances_in_memory):
        instance_list = sort_by_padding(instance_list)
        batches = []
        excess: deque = deque()
        for batch_instances in lazy_groups_of(iter(instance_list), batch_size):
            batches.append(list(batch_instances))
        if excess:
            batches.append(list(excess))
        move_to_front = len(batches) > 1
        if move_to_front:
            last_batch = batches.pop()
            penultimate_batch = batches.pop()
        rng.shuffle(batches)
        if move_to_front:
            batches.insert(0, penultimate_batch)
            batches.insert(0, last_batch)
        out.extend(batches)
    return out


BUCKET_CASES = {
    "one chunk": ([(n,) for n in [9, 3, 14, 7, 7, 2, 11, 5, 6, 13, 4, 8, 10]], 3, 100),
    "chunks in file order": ([(n,) for n in [9, 3, 14, 7, 7, 2, 11, 5, 6, 13, 4, 8, 10, 1, 12]], 2, 6),
    "multiple choice keys": ([(5, 9), (5, 2), (8, 8), (3, 4), (5, 7), (9, 1), (2, 2)], 2, 5),
}


@pytest.mark.parametrize("name", list(BUCKET_CASES))
@pytest.mark.parametrize("seed", [0, 7, 123])
def test_bucket_batches_are_allennlps(name, seed):
    lengths, batch, memory = BUCKET_CASES[name]
    expected = allennlp_bucket_epoch(lengths, batch, random.Random(seed), memory)
    assert bucket_pass(lengths, batch, random.Random(seed), max_in_memory=memory) == expected
    # never across chunks: every batch's examples come from one chunk of `memory` in file order
    assert all(len({i // memory for i in b}) == 1 for b in expected)
    assert batches_per_pass(len(lengths), batch, memory) == len(expected)


def test_without_noise_the_first_batch_is_the_longest_and_chunks_stay_in_order():
    lengths = [(n,) for n in [9, 3, 14, 7, 7, 2, 11, 5, 6, 13, 4, 8, 10, 1, 12]]
    batches = bucket_pass(lengths, 2, random.Random(1), max_in_memory=6, noise=0.0)
    # chunk 1 = rows 0-5 sorted 2,3,7,7,9,14 -> longest batch [0 (9), 2 (14)] first, then [3 or 4 ...]
    assert batches[0] == [0, 2]
    firsts = [min(b) // 6 for b in batches]
    assert firsts == sorted(firsts)


def test_epoch_plan_steps_over_bucket_batches():
    lengths = [(n,) for n in [9, 3, 14, 7, 7, 2, 11, 5, 6, 13, 4, 8, 10]]
    cfg = RunConfig(kind="target", model="m", task="rte", batch_size=3, max_device_batch=2, batching="allennlp_bucket",
                    stop_at="next_validation", val_interval=4, epochs=1)
    steps, leftover = epoch_plan(13, cfg, torch.Generator().manual_seed(3), None, None, lengths)
    assert leftover is None and len(steps) == 5
    assert sorted(i for s in steps for g in s.groups for i in g) == list(range(13))
    assert all(abs(sum(s.weights) - 1.0) < 1e-9 and max(len(g) for g in s.groups) <= 2 for s in steps)
    # resumable: the same generator state replays the same batches
    again, _ = epoch_plan(13, cfg, torch.Generator().manual_seed(3), None, None, lengths)
    assert again == steps
    # 5 per pass, the run trains 8 (the validation after 1 epoch of ceil(13/3) = 5): two passes
    assert trained_steps(cfg, 5) == 8 and passes(13, cfg, 8) == 2


def test_the_first_studys_batching_is_unchanged():
    cfg = RunConfig(kind="target", model="m", task="rte", batch_size=4, epochs=3)
    assert passes(10, cfg, 9) == 3
    steps, _ = epoch_plan(10, cfg, torch.Generator().manual_seed(0))
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0)).tolist()
    assert [i for s in steps for g in s.groups for i in g] == order
