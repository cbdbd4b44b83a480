"""The domain at the bottom: each run setting declared once (domain/run_config.py), and every table
of keys elsewhere derived from the declarations; specs and task files parsed once into typed
objects by the one checker (settings.py), which the worker's events use too."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import typing
from dataclasses import fields

import pytest
from released_settings import (
    RELEASED_ADDED_LATER,
    RELEASED_COMMON,
    RELEASED_FIELDS,
    RELEASED_GRID,
    RELEASED_NOT_GRID,
    RELEASED_NOT_IDENTITY,
    RELEASED_PLAN_KEYS,
    RELEASED_RECIPE,
    RELEASED_TASK,
    RELEASED_TRAIN,
)

from stilts_tui.domain.run_config import (
    ADDED_LATER,
    NOT_GRID,
    NOT_IDENTITY,
    SPEC_DEFAULTS,
    RunConfig,
    settable_in,
)
from stilts_tui.domain.run_settings import RunSettings
from stilts_tui.errors import SpecError
from stilts_tui.sweep.expand import EVERY_RUN_KEYS, expand
from stilts_tui.sweep.spec import (
    GRID_KEYS,
    RECIPE_KEYS,
    TASK_KEYS,
    TRAIN_KEYS,
    SweepTrain,
    parse_spec,
)

_OLD = RELEASED_FIELDS | {"save_target_checkpoints"}


def test_the_tables_of_keys_derived_from_the_declarations_are_those_spelled_out_before():
    assert set(GRID_KEYS) & _OLD == set(settable_in("intermediate")) & _OLD == RELEASED_GRID
    assert set(TASK_KEYS) & _OLD == RELEASED_TASK
    assert set(TRAIN_KEYS) & _OLD == RELEASED_TRAIN and len(TRAIN_KEYS) == len(set(TRAIN_KEYS))
    assert set(RECIPE_KEYS) & _OLD == RELEASED_RECIPE
    assert set(EVERY_RUN_KEYS) & _OLD == RELEASED_COMMON
    assert NOT_IDENTITY & _OLD == RELEASED_NOT_IDENTITY
    assert {k: v for k, v in ADDED_LATER.items() if k in _OLD} == RELEASED_ADDED_LATER
    assert NOT_GRID & _OLD == RELEASED_NOT_GRID
    from stilts_tui.analysis import stats

    assert stats.NOT_GRID is NOT_GRID  # analysis pairs runs on what the declarations say, not a copy


def test_a_setting_declared_since_leaves_the_ids_of_earlier_runs_alone():
    """A setting the earlier releases did not have is either no part of the identity or left out
    of it at its default: otherwise every run recorded before would get a new id (and run again)."""
    for f in fields(RunConfig):
        if f.name not in RELEASED_FIELDS:
            assert f.name in NOT_IDENTITY or f.name in ADDED_LATER, f.name


def test_a_setting_added_later_keeps_its_default_and_is_part_of_the_identity():
    """At its default an added-later setting is left out of the id (old ids hold); off it, it counts."""
    base = RunConfig(kind="target", model="m", task="rte")
    for name, default in ADDED_LATER.items():
        assert name not in base.identity() and getattr(base, name) == default
    assert RunConfig(kind="target", model="m", task="rte", grad_clip="per_micro_batch").compute_id() != base.compute_id()


def test_resume_every_s_is_never_saved_by_a_run_config_but_every_10_minutes_by_a_sweep(tmp_path):
    """The declaration carries both defaults: a worker run by hand saves no resumable state; a
    spec's runs save one every 10 minutes unless [train] says otherwise."""
    assert RunConfig(kind="target", model="m", task="rte").resume_every_s == 0
    assert SPEC_DEFAULTS == {"resume_every_s": 600.0}
    raw = {"model": "m", "intermediates": ["none", "hellaswag"], "targets": ["winogrande_m"], "zero_shot": True,
           "grid": {"lr": [1e-5], "seed": [1]}}
    runs = expand(parse_spec(raw), tmp_path)
    assert {r.kind for r in runs} == {"intermediate", "target", "zero_shot"}
    assert {r.resume_every_s for r in runs} == {600.0}
    assert {r.resume_every_s for r in expand(parse_spec(raw | {"train": {"resume_every_s": 0}}), tmp_path)} == {0}


def _other_value(name: str, tmp_path) -> object:
    """A value of a setting other than its default that its declaration accepts."""
    from stilts_tui.settings import check_value

    hints = typing.get_type_hints(RunConfig)
    default = next(f.default for f in fields(RunConfig) if f.name == name)
    tp = hints[name]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is typing.Literal:
        return next(a for a in typing.get_args(tp) if a != default)
    if tp is bool:
        return not default
    if tp is str:
        return str(tmp_path)  # data_dir, the only path a spec table sets
    if tp is int:  # 2 divides every batch size a test spec has (device_batch)
        candidates: list = [2, 4] if default is None else [default + 2, default * 2]
    else:
        candidates = [0.25, 0.5] if default is None else [default * 2, default / 2, 0.25, 0.5]
    for value in candidates:
        try:
            check_value(RunConfig, name, value, "test")
        except SpecError:
            continue
        if value != default:
            return value
    raise AssertionError(f"no value of {name} but its default passes its declaration")


@pytest.mark.parametrize("name", settable_in("train"))
def test_every_train_setting_reaches_every_run(name, tmp_path):
    """A key [train] accepts is one the expansion applies: a hand-kept second list of keys once
    let a setting validate and do nothing."""
    value = _other_value(name, tmp_path)
    raw = {"model": "m", "intermediates": ["none", "hellaswag"], "targets": ["rte"], "grid": {"lr": [1e-5], "seed": [1]},
           "train": {name: value}}
    runs = expand(parse_spec(raw), tmp_path)
    assert runs and all(getattr(r, name) == value for r in runs), name


@pytest.mark.parametrize("name", settable_in("tasks"))
def test_every_task_setting_reaches_the_tasks_runs(name, tmp_path):
    value = _other_value(name, tmp_path)
    raw = {"model": "m", "intermediates": ["none", "hellaswag"], "targets": ["rte"], "grid": {"lr": [1e-5], "seed": [1]},
           "tasks": {"rte": {name: value}, "hellaswag": {name: value}}}
    runs = expand(parse_spec(raw), tmp_path)
    assert runs and all(getattr(r, name) == value for r in runs), name


@pytest.mark.parametrize("name", settable_in("grid"))
def test_every_grid_setting_is_an_axis_of_the_targets_runs(name, tmp_path):
    value = _other_value(name, tmp_path)
    raw = {"model": "m", "targets": ["rte"], "grid": {"lr": [1e-5], "seed": [1]} | {name: [value]}}
    runs = expand(parse_spec(raw), tmp_path)
    assert runs and all(getattr(r, name) == value for r in runs), name


@pytest.mark.parametrize("name", [k for k in settable_in("intermediate") if k not in ("epochs", "max_length")])
def test_every_intermediate_setting_reaches_the_intermediate_runs(name, tmp_path):
    """(HellaSwag-p's own epochs and length win over [intermediate]'s, as shadowed_settings says.)"""
    value = _other_value(name, tmp_path)
    raw = {"model": "m", "intermediates": ["hellaswag_p"], "targets": ["rte"], "grid": {"lr": [1e-5], "seed": [1]},
           "intermediate": {name: value}}
    inter = [r for r in expand(parse_spec(raw), tmp_path) if r.kind == "intermediate"]
    assert inter and all(getattr(r, name) == value for r in inter), name


def test_the_plan_columns_are_those_earlier_releases_printed():
    from stilts_tui.sweep.resolved import COLUMNS, resolve

    assert [c.key for c in COLUMNS if c.key in RELEASED_PLAN_KEYS] == RELEASED_PLAN_KEYS  # a new setting's column may join
    assert len({c.at for c in COLUMNS}) == len(COLUMNS)  # no two columns claim one place
    cfg = RunConfig(kind="target", model="m", task="rte", batch_size=32, max_device_batch=8)
    cfg.run_id = cfg.compute_id()
    (row,) = resolve([cfg], {cfg.run_id})
    assert list(row) == [c.key for c in COLUMNS]
    assert (row["device_batch"], row["accumulation"], row["done"], row["task"]) == (8, 4, True, "rte")
    json.dumps(row)  # what `stilts plan --runs --format json` prints


def test_a_parsed_spec_is_typed_and_a_table_never_read_for_a_key_it_cannot_hold():
    spec = parse_spec({"model": "m", "intermediates": ["none", "hellaswag"], "targets": ["rte"],
                       "intermediate": {"lr": 2e-5}, "tasks": {"RTE": {"epochs": 2}},
                       "train": {"precision": "fp32", "save_target_checkpoints": True}})
    assert isinstance(spec.intermediate, RunSettings) and dict(spec.intermediate) == {"lr": 2e-5}
    assert spec.task_settings("rte")["epochs"] == 2 and dict(spec.task_settings("hellaswag")) == {}
    assert isinstance(spec.train, SweepTrain) and spec.train.save_target_checkpoints is True
    assert dict(spec.train.settings) == {"precision": "fp32"} and spec.slurm is None
    with pytest.raises(KeyError, match="precision"):
        spec.task_settings("rte").get("precision")  # [tasks.X] never sets it: a typo'd read is loud
    with pytest.raises(KeyError, match="save_target_checkpoints"):
        spec.train.settings.get("save_target_checkpoints")  # the sweep's own, on SweepTrain


@pytest.mark.parametrize("value, says", [(0, "stall_limit_min = 0 is out of range"), (-1, "0 < stall_limit_min"),
                                         (True, "stall_limit_min = True is not a number"),
                                         ("30", "stall_limit_min = '30' is not a number")])
def test_stall_limit_min_is_checked_by_its_declaration(value, says):
    with pytest.raises(SpecError, match="stall_limit_min") as err:
        parse_spec({"model": "m", "targets": ["rte"], "stall_limit_min": value})
    assert says in str(err.value)
    assert parse_spec({"model": "m", "targets": ["rte"], "stall_limit_min": 30}).stall_limit_min == 30


def test_a_task_file_is_parsed_once_into_a_task_file_with_its_fields(tmp_path):
    from stilts_tui.settings import parse_table
    from stilts_tui.tasks.custom import TaskFields, TaskFile

    raw = {"name": "t", "head": "classification", "labels": ["a", "b"], "files": {"train": "x", "dev": "y"},
           "fields": {"a": ["s1", "s2"], "label": "y", "label_base": 1}}
    parsed = parse_table(TaskFile, raw, "t.toml")
    assert isinstance(parsed, TaskFile) and isinstance(parsed.fields, TaskFields)
    assert (parsed.fields.a, parsed.fields.label_base, parsed.epochs, parsed.format) == (["s1", "s2"], 1, 3, "jsonl")
    with pytest.raises(SpecError, match=r"t.toml \[fields\]: missing key 'label'"):
        parse_table(TaskFile, raw | {"fields": {"a": "s1"}}, "t.toml")
    with pytest.raises(SpecError, match=r"t.toml: missing key 'head'"):
        parse_table(TaskFile, {k: v for k, v in raw.items() if k != "head"}, "t.toml")
    with pytest.raises(SpecError, match=r"t.toml: fields = 5 is not a table"):
        parse_table(TaskFile, raw | {"fields": 5}, "t.toml")


@pytest.mark.parametrize("step, ok", [
    ({}, True),
    ({"memory_mb": None}, True),          # `float | None`: null is a value
    ({"loss": True}, False),              # true is not a number, for events as for specs
    ({"step": 2.5}, False),               # nor is 2.5 a whole number
    ({"loss": 1}, True),                  # a whole number is a fine float
    ({"memory_mb": "big"}, False),
])
def test_events_are_checked_by_the_checker_specs_use(step, ok):
    from stilts_tui.domain.events import parse_event

    line = {"v": 1, "event": "step", "run_id": "r", "attempt": 1, "t": 1.0, "step": 1, "total_steps": 2, "epoch": 0.5,
            "loss": 0.7, "lr": 1e-5, "sequences_per_s": 1.0, "tokens_per_s": 1.0, "memory_mb": 3.0} | step
    assert (parse_event(json.dumps(line)) is not None) == ok


def test_a_spec_value_gets_the_answer_an_event_field_does():
    from stilts_tui.settings import check_value

    with pytest.raises(SpecError, match="lr = True is not a number"):
        check_value(RunConfig, "lr", True, "spec")
    with pytest.raises(SpecError, match="epochs = 2.5 is not an integer"):
        check_value(RunConfig, "epochs", 2.5, "spec")
    check_value(RunConfig, "lr", 1, "spec")
    check_value(RunConfig, "train_size", None, "spec")  # `int | None`, as memory_mb's `float | None`


def test_the_domain_imports_nothing_of_stilts_but_the_checker_and_the_errors():
    code = ("import sys, stilts_tui.domain.run_config, stilts_tui.domain.run_settings, stilts_tui.domain.records, "
            "stilts_tui.domain.events; "
            "print(sorted(m for m in sys.modules if m.startswith('stilts_tui')))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                       timeout=60).stdout.replace("'", '"'))
    others = [m for m in loaded if not m.startswith("stilts_tui.domain")
              and m not in ("stilts_tui", "stilts_tui.settings", "stilts_tui.errors")]
    assert others == []


def test_a_run_is_a_typed_view_of_its_record_with_one_default_per_field():
    from stilts_tui.domain.records import RunStatus
    from stilts_tui.domain.run import Run, runs_of

    first_version = {"run_id": "a1", "kind": "target", "intermediate": "none", "target": "rte", "status": "queued",
                     "lr": 1e-5, "seed": 1}   # no config, no score, no attempts: what the first release wrote
    run = Run(first_version)
    assert run.record is first_version  # a view, not a copy
    assert (run.status, run.score, run.reason, run.attempts, run.slot) == (RunStatus.QUEUED, None, "", 0, "")
    assert run.pending and not run.finished and not run.failed and not run.degenerate
    assert run.settings is first_version and run.value("lr") == 1e-5 and run.value("dropout") is None
    done = first_version | {"status": "finished", "score": 0.0, "metric": "mcc", "config": {"lr": 2e-5, "restart": 2},
                            "metrics": {"baselines": {"random": 0.5, "majority": 0.69, "degenerate_threshold": 0.0}}}
    run = Run(done)
    assert run.finished and run.degenerate and run.guess == 0.0 and run.baselines.majority == 0.69
    assert run.value("lr") == 1e-5 and run.config["lr"] == 2e-5  # the record's own field comes first
    assert run.restart == 2 and run.field_names() >= {"lr", "restart", "metrics", "run_id"} and "config" not in run.field_names()
    assert run.metric_name == "mcc" and Run(first_version).metric_name == "accuracy"
    typed = runs_of([run, first_version])
    assert typed[0] is run and typed[1] == Run(first_version)
