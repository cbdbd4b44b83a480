"""Experiment specs: parsing, clear errors, expansion and run identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from released_settings import released_id

from stilts_tui.errors import SpecError, StiltsError
from stilts_tui.sweep.expand import expand
from stilts_tui.sweep.spec import load_spec, parse_spec


def test_the_paper_grid_is_the_default(tmp_path):
    spec = parse_spec({"model": "roberta-large", "intermediates": ["none", "hellaswag"], "targets": ["rte"]})
    runs = expand(spec, tmp_path)
    inter = [r for r in runs if r.kind == "intermediate"]
    targets = [r for r in runs if r.kind == "target"]
    assert len(inter) == 1 and len(targets) == 2 * 36
    hs = inter[0]
    # The study's intermediate: lr 1e-5, seed 42, HellaSwag's own batch 8, 3 epochs, 120 tokens.
    assert (hs.lr, hs.seed, hs.batch_size, hs.epochs, hs.max_length) == (1e-5, 42, 8, 3, 120)
    assert {(r.lr, r.batch_size, r.warmup_ratio, r.seed) for r in targets if r.intermediate == "none"} == {
        (lr, b, w, s) for lr in (5e-6, 1e-5, 2e-5) for b in (8, 16, 32) for w in (0.0, 0.2) for s in (12, 42)}
    rte = targets[0]
    assert (rte.epochs, rte.max_length) == (5, 100)
    from_hs = [r for r in targets if r.intermediate == "hellaswag"]
    assert all(r.init_from == hs.run_id and r.init_checkpoint.endswith(f"{hs.run_id}/checkpoint") for r in from_hs)
    assert all(r.init_from is None for r in targets if r.intermediate == "none")
    assert runs.index(hs) == 0  # intermediates first


def test_run_identity_is_stable_and_config_dependent(tmp_path):
    raw = {"model": "m", "targets": ["rte"], "grid": {"lr": [1e-5], "seed": [1]}}
    a = expand(parse_spec(raw), tmp_path)
    b = expand(parse_spec(raw), tmp_path / "elsewhere")
    assert [r.run_id for r in a] == [r.run_id for r in b]  # paths are not identity
    c = expand(parse_spec(raw | {"grid": {"lr": [2e-5], "seed": [1]}}), tmp_path)
    assert a[0].run_id != c[0].run_id
    d = expand(parse_spec(raw | {"train": {"max_device_batch": 4}}), tmp_path)
    assert a[0].run_id == d[0].run_id  # accumulation reaches the same effective batch


def test_overrides_sizes_and_zero_shot(tmp_path):
    spec = parse_spec({"model": "m", "intermediates": ["none", "hellaswag_p"], "targets": ["winogrande_m", "rte"],
                       "zero_shot": True, "grid": {"lr": [1e-5], "seed": [42]},
                       "tasks": {"hellaswag_p": {"train_size": [2000, 10000]}, "rte": {"epochs": 3, "max_length": 64}}})
    runs = expand(spec, tmp_path)
    inter = [r for r in runs if r.kind == "intermediate"]
    assert [(r.intermediate, r.train_size) for r in inter] == [("hellaswag_p@2000", 2000), ("hellaswag_p@10000", 10000)]
    rte = [r for r in runs if r.task == "rte"]
    assert {(r.epochs, r.max_length) for r in rte} == {(3, 64)}
    zs = [r for r in runs if r.kind == "zero_shot"]
    assert {r.intermediate for r in zs} == {"none", "hellaswag_p@2000", "hellaswag_p@10000"}
    assert all(r.task == "winogrande_m" for r in zs)  # zero-shot needs an MC target


@pytest.mark.parametrize("raw, fragments", [
    ({"model": "m", "targets": ["rte"], "gird": {}}, ["unknown key 'gird' (did you mean 'grid'?)", "allowed keys"]),
    ({"model": "m", "targts": ["rte"], "gird": {}}, ["unknown keys 'gird' (did you mean 'grid'?), 'targts' (did you "
                                                     "mean 'targets'"]),
    ({"model": "m", "targets": ["rte"], "grid": {"learning_rate": [1]}}, ["[grid]: unknown key 'learning_rate'", "lr"]),
    ({"model": "m", "targets": ["rtx"]}, ["unknown task 'rtx'", "did you mean rte"]),
    ({"model": "m", "targets": ["rte"], "grid": {"lr": ["fast"]}}, ["lr = 'fast' is not a number"]),
    ({"model": "m", "targets": ["rte"], "train": {"precision": "fp8"}}, ["precision = 'fp8'", "'auto', 'fp32', 'tf32', 'bf16', 'fp16'"]),
    ({"model": "m", "targets": ["rte"], "tasks": {"socialiqa": {"grad_clip": "always"}}},
     ["grad_clip = 'always'", "'per_step', 'per_micro_batch'"]),
    ({"model": "m", "targets": ["socialiqa"], "tasks": {"socialiqa": {"device_batch": 0}}}, ["device_batch = 0 is out of range", "1 ≤ device_batch"]),
    ({"model": "m", "targets": []}, ["targets must be a non-empty list"]),
    ({"targets": ["rte"]}, ["missing key 'model'"]),
    ({"model": "m", "targets": ["rte"], "tasks": {"rte": {"epoch": 3}}}, ["[tasks.rte]: unknown key 'epoch' (did you mean 'epochs'?)", "epochs"]),
    # ranges, from RunConfig's declared fields (settings.py)
    ({"model": "m", "targets": ["rte"], "grid": {"lr": [-1e-5]}}, ["[grid]: lr = -1e-05 is out of range", "0 < lr"]),
    ({"model": "m", "targets": ["rte"], "grid": {"lr": [0]}}, ["lr = 0 is out of range", "0 < lr"]),
    ({"model": "m", "targets": ["rte"], "grid": {"batch_size": [0]}}, ["batch_size = 0 is out of range", "1 ≤ batch_size"]),
    ({"model": "m", "targets": ["rte"], "grid": {"warmup_ratio": [1.0]}}, ["warmup_ratio = 1.0", "0 ≤ warmup_ratio < 1"]),
    ({"model": "m", "targets": ["rte"], "grid": {"warmup_ratio": [-0.1]}}, ["warmup_ratio = -0.1", "0 ≤ warmup_ratio < 1"]),
    ({"model": "m", "targets": ["rte"], "grid": {"seed": [1.5]}}, ["seed = 1.5 is not an integer", "give seed as an integer"]),
    ({"model": "m", "targets": ["rte"], "grid": {"epochs": [2.5]}}, ["epochs = 2.5 is not an integer"]),
    ({"model": "m", "targets": ["rte"], "grid": {"epochs": [True]}}, ["epochs = True is not an integer"]),
    ({"model": "m", "targets": ["rte"], "intermediate": {"lr": -1.0}}, ["[intermediate]: lr = -1.0 is out of range"]),
    ({"model": "m", "targets": ["rte"], "train": {"max_device_batch": 0}}, ["[train]: max_device_batch = 0", "1 ≤"]),
    ({"model": "m", "targets": ["rte"], "train": {"save_target_checkpoints": "yes"}},
     ["save_target_checkpoints = 'yes' is not true or false"]),
    ({"model": "m", "intermediates": ["hellaswag_p"], "targets": ["rte"], "tasks": {"hellaswag_p": {"train_size": [0]}}},
     ["train_size = 0 is out of range", "1 ≤ train_size"]),
])
def test_wrong_keys_and_values_name_the_key_and_the_fix(raw, fragments):
    with pytest.raises(SpecError) as err:
        parse_spec(raw)
    text = str(err.value)
    for f in fragments:
        assert f in text, text


def test_spec_file_errors(tmp_path):
    with pytest.raises(StiltsError, match="not found"):
        load_spec(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("model = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)


def test_paper_and_demo_specs_in_experiments_parse(tmp_path):
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "experiments"
    specs = sorted(folder.glob("*.toml"))
    assert specs
    for path in specs:
        spec = load_spec(path, data_dir=str(tmp_path) if path.stem == "demo" else None)
        assert expand(spec, tmp_path)


def test_a_spec_whose_task_has_no_data_says_how_to_get_it(tmp_path):
    """The demo's tasks live in no hub: without --data-dir the spec fails before any run starts,
    naming the two ways to build the data."""
    spec = load_spec(Path(__file__).resolve().parents[1] / "experiments" / "demo.toml")
    with pytest.raises(SpecError) as err:
        expand(spec, tmp_path)
    assert "demo_realfake has no data here" in err.value.problem
    assert all(w in err.value.fix for w in ("stilts demo", "stilts build-data demo --out DIR", "--data-dir"))


def test_paper_specs_expand_to_the_studys_run_counts():
    from collections import Counter
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "experiments"

    def kinds(name):
        return Counter(r.kind for r in expand(load_spec(folder / name), Path("/tmp/x")))

    assert kinds("figure2.toml") == {"target": 4 * 8 * 36, "intermediate": 3}
    assert kinds("table2.toml") == {"target": 2 * 2 * 36, "intermediate": 1}
    assert kinds("table3.toml") == {"target": 3 * 3 * 36, "intermediate": 2}
    assert kinds("figure3.toml") == {"target": 4 * 3 * 36, "intermediate": 3}
    assert kinds("table4.toml") == {"zero_shot": 4 * 4, "intermediate": 3}


def test_zero_shot_value_is_checked():
    with pytest.raises(SpecError, match='use true, false or "only"'):
        parse_spec({"model": "m", "targets": ["rte"], "zero_shot": "sometimes"})


# ------------------------------------------------------------------ grids of any size


def test_run_ids_are_those_earlier_releases_computed(tmp_path):
    """The id is computed without copying the whole config (that copy was most of the time of
    planning a large grid); every run of every shipped spec keeps the id it had, so results files
    written before still know their runs."""
    from dataclasses import asdict

    from released_settings import RELEASED_FIELDS

    from stilts_tui.domain.run_config import ADDED_LATER, RunConfig

    specs = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))
    assert len(specs) >= 5
    n = changed = 0
    for path in specs:
        spec = load_spec(path, data_dir=str(tmp_path))
        for cfg in expand(spec, tmp_path):
            # A run given a setting no earlier release had (the second study's jiant trainer and
            # inputs, issue 34) computes something else: it must not take an old run's id.
            newer = {k for k, v in asdict(cfg).items() if k not in RELEASED_FIELDS and k in ADDED_LATER
                     and v != ADDED_LATER[k]}
            assert cfg.run_id == cfg.compute_id(), (path.name, cfg)
            assert (cfg.run_id != released_id(cfg)) if newer else (cfg.run_id == released_id(cfg)), (path.name, cfg)
            n += 1
            changed += bool(newer)
    assert n > 1000 and 0 < changed < n

    odd = RunConfig(kind="target", model="m", task="rte", task_files=["a.toml"], grad_clip="per_micro_batch", dropout=0.2,
                    data_dir=str(tmp_path), train_size=100)
    assert odd.compute_id() == released_id(odd)


def test_a_grid_over_the_cap_is_refused_at_once_saying_its_size_and_the_cap(tmp_path, monkeypatch):
    """A million-run grid took minutes and 2 GB to plan: its runs are counted first (no run is
    made), and above the cap the spec is refused with the count, where it comes from, the cap
    and what to do."""
    from stilts_tui.sweep import expand as expand_module

    raw = {"name": "huge", "model": "m", "intermediates": ["none", "hellaswag"], "targets": ["rte", "wic"],
           "grid": {"lr": [1e-5 * (i + 1) for i in range(100)], "seed": list(range(100)), "batch_size": list(range(1, 11)),
                    "warmup_ratio": [i / 100 for i in range(10)]}}
    made = []
    monkeypatch.setattr(expand_module._Runs, "add", lambda self, cfg: made.append(cfg) or cfg)
    with pytest.raises(SpecError) as err:
        expand(parse_spec(raw), tmp_path)
    assert made == []  # refused before a single run was made
    assert err.value.problem == (f"spec: 4,000,001 runs, more than the {expand_module.MAX_RUNS:,} one sweep may hold: "
                                 "2 targets x 2 sources (none, hellaswag) x 1,000,000 grid points "
                                 "(lr 100 x seed 100 x batch_size 10 x warmup_ratio 10), and 1 intermediate run")
    assert err.value.fix and "[grid]" in err.value.fix and "several specs" in err.value.fix


def test_the_count_of_runs_is_the_expansion(tmp_path, monkeypatch):
    """The count the cap is checked against is the number of runs the expansion makes, for every
    shipped spec and for sizes, probes, restarts and zero-shot runs; at the cap a spec is accepted."""
    from stilts_tui.sweep import expand as expand_module

    for path in sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml")):
        spec = load_spec(path, data_dir=str(tmp_path))
        assert expand_module.count_runs(spec) == len(expand(spec, tmp_path)), path.name
    raw = {"model": "m", "intermediates": ["none", "hellaswag_p"], "targets": ["winogrande_m", "rte"], "probes": ["cola"],
           "zero_shot": True, "grid": {"lr": [1e-5, 2e-5], "seed": [42]}, "tasks": {"hellaswag_p": {"train_size": [2000, 10000]}}}
    spec = parse_spec(raw)
    n = len(expand(spec, tmp_path))
    assert expand_module.count_runs(spec) == n == 2 + 3 * 3 * 2 + 3
    monkeypatch.setattr(expand_module, "MAX_RUNS", n)
    assert len(expand(spec, tmp_path)) == n
    monkeypatch.setattr(expand_module, "MAX_RUNS", n - 1)
    with pytest.raises(SpecError, match=f"spec: {n} runs, more than the {n - 1} one sweep may hold"):
        expand(spec, tmp_path)
