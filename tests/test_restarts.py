"""The second study's spec: its run count, its per-role settings from transfer_analysis.sh, and the
restart chain (restart i of a target or probe starts from intermediate i), expanded and trained."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import SpecError
from stilts_tui.sweep.expand import expand, study_notes
from stilts_tui.sweep.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
SEEDS = {"intermediate": [1111001, 523821, 921], "target": [1111002, 523822, 922], "probe": [1111003, 523823, 923]}


@pytest.fixture(scope="module")
def study_runs(tmp_path_factory) -> list[RunConfig]:
    spec = load_spec(ROOT / "experiments" / "pruksachatkun2020.toml", data_dir=str(tmp_path_factory.mktemp("data")))
    return expand(spec, tmp_path_factory.mktemp("work"))


def _one(runs: list[RunConfig], **match) -> list[RunConfig]:
    return [r for r in runs if all(getattr(r, k) == v for k, v in match.items())]


def test_the_study_spec_has_every_pair_and_restart(study_runs):
    probes = 25
    assert len(_one(study_runs, kind="intermediate")) == 11 * 3
    trained = _one(study_runs, kind="target")
    assert len(trained) == 12 * (10 + probes) * 3
    assert {r.intermediate for r in trained} == {"none", "qamr", "commonsenseqa", "scitail", "cosmosqa", "socialiqa", "ccg",
                                                 "hellaswag", "qasrl", "sst2", "qqp", "mnli"}


def test_restart_i_starts_from_intermediate_i(study_runs):
    by_id = {r.run_id: r for r in study_runs}
    for r in _one(study_runs, kind="target"):
        if r.intermediate == "none":
            assert r.init_from is None
            continue
        source = by_id[r.init_from]
        restart = SEEDS["intermediate"].index(source.seed)
        role = "probe" if r.task.startswith(("edges_", "se_", "acceptability_")) or r.task == "cola" else "target"
        assert r.seed == SEEDS[role][restart], r
        assert source.task == r.intermediate and r.init_checkpoint == str(Path(source.output_dir) / "checkpoint")


def test_settings_follow_transfer_analysis_by_role(study_runs):
    # Cosmos QA: configuration 6 (3e-6, dropout 0.2) as intermediate and baseline, 7 (3e-6, 0.1) as target
    inter = _one(study_runs, kind="intermediate", task="cosmosqa")
    assert {(r.lr, r.dropout, r.batch_size) for r in inter} == {(3e-6, 0.2, 4)}
    assert {r.seed for r in inter} == set(SEEDS["intermediate"])
    baseline = _one(study_runs, task="cosmosqa", intermediate="none")
    assert {(r.lr, r.dropout, r.seed) for r in baseline} == {(3e-6, 0.2, s) for s in SEEDS["intermediate"]}
    target = _one(study_runs, task="cosmosqa", intermediate="mnli")
    assert {(r.lr, r.dropout) for r in target} == {(3e-6, 0.1)}
    # Pretrain phase: a task's own interval is ignored (CommonsenseQA validates every 5,000, not 2,500)
    [csqa] = _one(study_runs, kind="intermediate", task="commonsenseqa", seed=921)
    assert (csqa.val_interval, csqa.max_vals, csqa.epochs, csqa.optimizer) == (5000, 10000, 10, "bert_adam")
    [csqa_t] = _one(study_runs, task="commonsenseqa", intermediate="sst2", seed=922)
    assert (csqa_t.val_interval, csqa_t.max_vals, csqa_t.lr, csqa_t.batch_size) == (2500, 1000, 3e-6, 4)
    [copa] = _one(study_runs, task="copa", intermediate="qqp", seed=1111002)
    assert (copa.val_interval, copa.epochs, copa.batch_size, copa.lr, copa.dropout) == (100, 40, 32, 5e-6, 0.1)
    [pos] = _one(study_runs, task="edges_pos", intermediate="mnli", seed=923)
    assert (pos.optimizer, pos.val_interval, pos.max_vals, pos.lr, pos.batch_size) == ("amsgrad", 1000, 250, 2e-5, 8)
    [spr1] = _one(study_runs, task="edges_spr1", intermediate="mnli", seed=923)
    assert (spr1.val_interval, spr1.max_vals) == (100, 100)
    [sst] = _one(study_runs, kind="intermediate", task="sst2", seed=1111001)
    assert (sst.lr, sst.dropout, sst.batch_size) == (3e-6, 0.1, 64)
    for r in study_runs:
        assert (r.max_length, r.patience, r.val_data_limit, r.max_grad_norm, r.head_style) == (256, 20, 5000, 5.0, "jiant")
        assert r.optimizer == ("amsgrad" if r.task.startswith("edges_") else "bert_adam")
        if r.optimizer == "bert_adam":
            assert (r.warmup_ratio, r.adam_eps, r.weight_decay) == (0.1, 1e-6, 0.01)


def test_a_task_the_scripts_leave_out_is_named(tmp_path):
    spec = load_spec(ROOT / "experiments" / "pruksachatkun2020.toml", data_dir=str(tmp_path))
    assert study_notes(spec) == ["ccg has no INTERM_HPARAM entry in transfer_analysis.sh: as an intermediate it takes "
                                 "base_roberta.conf's lr 1e-05, dropout 0.1, batch 4"]


@pytest.mark.parametrize("change, problem", [
    ({"grid": {"seed": [1, 2]}}, "[grid] seed and [restarts] both set seeds"),
    ({"restarts": {"intermediate": [1, 2], "target": [3]}}, "lists differ in length"),
    ({"restarts": {"target": [3]}}, "[restarts] has no intermediate seeds"),
    ({"restarts": {"target": [-3]}}, "seed"),
    ({"restarts": {"targets": [3]}}, "unknown key 'targets' (did you mean 'target'?)"),
    ({"study": "pruksachatkun"}, "unknown study 'pruksachatkun'"),
])
def test_bad_restarts_and_studies_are_one_clear_error(change, problem):
    raw = {"model": "m", "intermediates": ["none", "mnli"], "targets": ["rte"], "study": "pruksachatkun2020",
           "restarts": {"intermediate": [1, 2], "target": [3, 4]}} | change
    with pytest.raises(SpecError) as err:
        parse_spec(raw)
    assert problem in str(err.value)


def test_a_spec_without_restarts_keeps_its_run_ids(tmp_path):
    """Restarts and studies change nothing for the first study's specs."""
    import hashlib

    spec = load_spec(ROOT / "experiments" / "figure2.toml", data_dir="/data/stilts")
    ids = [r.run_id for r in expand(spec, tmp_path / "w")]
    # the ids and their order before restarts existed (commit 63d4acd)
    assert (len(ids), ids[0], hashlib.sha256(" ".join(ids).encode()).hexdigest()[:16]) == (1155, "a79a134ccba5", "485aad6cab690718")


def test_the_chain_trains_each_target_restart_from_its_own_intermediate(tiny_models, tmp_path):
    """Two restarts of an intermediate and of a target, trained in order: restart i's target loads
    intermediate i's checkpoint, and each target's head starts fresh (same task on both sides)."""
    import torch

    from stilts_tui.domain.events import parse_event
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.handoff import load_checkpoint_state
    from stilts_tui.train.loop import run
    from tests.conftest import write_rte_like

    data = write_rte_like(tmp_path / "RTE", 16, seed=2)
    raw = {"model": str(tiny_models["roberta"]), "intermediates": ["none", "rte"], "targets": ["rte"],
           "study": "pruksachatkun2020", "data_dir": str(data),
           "restarts": {"intermediate": [11, 12], "target": [21, 22], "baseline_target": [31, 32]},
           "tasks": {"rte": {"epochs": 1, "max_length": 32, "val_interval": 2, "batch_size": 4}},
           "train": {"precision": "fp32"}}
    runs = expand(parse_spec(raw), tmp_path / "work")
    inter = {r.seed: r for r in runs if r.kind == "intermediate"}
    targets = {r.seed: r for r in runs if r.kind == "target" and r.init_from}
    assert sorted(inter) == [11, 12] and sorted(targets) == [21, 22]
    assert {r.seed for r in runs if r.kind == "target" and not r.init_from} == {31, 32}
    for cfg in list(inter.values()) + list(targets.values()):
        buf = io.StringIO()
        run(cfg, EventWriter(cfg.run_id, None, buf))
        events = [e for e in map(parse_event, buf.getvalue().splitlines()) if e]
        [handoff] = [e for e in events if e["event"] == "handoff"]
        if cfg.kind == "target":
            source = inter[{21: 11, 22: 12}[cfg.seed]]
            assert handoff["checkpoint"] == str(Path(source.output_dir) / "checkpoint")
            assert handoff["kept"] == ["encoder"] and handoff["reinitialised"] == ["classifier"]
    a = load_checkpoint_state(Path(inter[11].output_dir) / "checkpoint")
    b = load_checkpoint_state(Path(inter[12].output_dir) / "checkpoint")
    key = next(k for k in a if "encoder.layer.0" in k and k.endswith("weight"))
    assert not torch.equal(a[key], b[key])  # two seeds, two different intermediates


def test_frozen_mix_probes_take_the_mixing_sweeps_choices(tmp_path):
    raw = {"model": "m", "intermediates": ["none", "mnli"], "probes": ["cola", "edges_pos"], "study": "pruksachatkun2020",
           "data_dir": str(tmp_path), "restarts": {"intermediate": [1], "probe": [2], "baseline_probe": [3]},
           "train": {"transfer": "frozen_mix"}}
    runs = expand(parse_spec(raw), tmp_path / "w")
    # MIXING_HPARAM / MIXING_BSIZE: CoLA configuration 9 (1e-3, 0.1) batch 16; POS 8 (1e-3, 0.2) batch 128
    assert {(r.lr, r.dropout, r.batch_size, r.transfer) for r in runs if r.task == "cola"} == {(1e-3, 0.1, 16, "frozen_mix")}
    assert {(r.lr, r.dropout, r.batch_size) for r in runs if r.task == "edges_pos"} == {(1e-3, 0.2, 128)}
