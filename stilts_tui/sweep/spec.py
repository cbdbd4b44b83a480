"""Experiment specs (TOML, parsed as data, never executed) and their expansion into runs.

    name = "figure2"
    model = "roberta-large"              # hub id, local folder, or the alias "minilm"
    data_dir = "/data/stilts"            # relative paths are relative to this file
    task_files = ["tasks/my_task.toml"]  # user-defined tasks
    intermediates = ["none", "hellaswag", "hellaswag_p", "synthesis_gpt2"]
    targets = ["rte", "wic"]
    zero_shot = false                    # also evaluate each MC intermediate on MC targets untrained
    executor = "local"                   # or "slurm", with a [slurm] table (sweep/executors.py)

    [grid]                               # the target grid: every combination is one run
    lr = [5e-6, 1e-5, 2e-5]
    batch_size = [8, 16, 32]
    warmup_ratio = [0.0, 0.2]
    seed = [12, 42]

    [intermediate]                       # intermediates run once; defaults for what a task's
    lr = 1e-5                            # own study settings leave open (HellaSwag keeps batch 8)
    batch_size = 16
    seed = 42

    [tasks.hellaswag_p]                  # per-task overrides: the only way past a study setting
    epochs = 3
    max_length = 50
    train_size = [2000, 10000, 40000]    # a list on an intermediate: one intermediate per size

    [tasks.socialiqa]                    # how the reference's SocialIQA runs accumulate
    device_batch = 4
    grad_clip = "per_micro_batch"

    [train]                              # how runs execute; precision and optimizer change results
    max_device_batch = 16                # (memory only: accumulation keeps the effective batch)
    precision = "tf32"
    optimizer = "hf_adamw"
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stilts_tui.errors import SpecError, StiltsError
from stilts_tui.settings import check_value
from stilts_tui.sweep.executors import executor_options
from stilts_tui.tasks import get_task, needs_data_dir, no_data_error, register_task_file
from stilts_tui.tomlfile import read_toml
from stilts_tui.train.config import RunConfig

TOP_KEYS = {"name", "description", "model", "data_dir", "task_files", "intermediates", "targets", "zero_shot",
            "grid", "intermediate", "tasks", "train", "executor", "slurm"}
# Which RunConfig fields each table may set; types and ranges come from RunConfig itself (settings.py).
GRID_KEYS = ("lr", "batch_size", "warmup_ratio", "seed", "epochs", "max_length", "train_size", "weight_decay",
             "adam_eps", "max_grad_norm", "dropout")
# The second study's recipe (train/validation.py): for every run in [train], per task in [tasks.X]
# (a task's own validation interval wins); dropout per task or as a grid axis.
RECIPE_KEYS = ("val_interval", "val_data_limit", "patience", "max_vals", "head_style")
TASK_KEYS = ("epochs", "max_length", "train_size", "batch_size", "data_dir", "device_batch", "grad_clip", "dropout",
             *RECIPE_KEYS)
TRAIN_KEYS = ("max_device_batch", "group_by_length", "precision", "optimizer", "sdpa", "fused_adamw", "eval_every_epoch",
              "threads", "save_target_checkpoints", "log_interval_s", "resume_every_s", *RECIPE_KEYS)


@dataclass
class SweepTrain:
    """[train] settings that belong to the sweep, not to a run's config."""

    save_target_checkpoints: bool = False


PAPER_GRID: dict[str, list] = {"lr": [5e-6, 1e-5, 2e-5], "batch_size": [8, 16, 32], "warmup_ratio": [0.0, 0.2], "seed": [12, 42]}
# Chang & Lu's intermediate scripts (train_hella.sh, train_hella-p.sh, train_synth.sh) pass lr 1e-5,
# seed 42 and no --warmup_ratio, so run.py's default 0.1 applies (run.py l. 403); batch 16 except
# HellaSwag's 8, which the task itself carries.
PAPER_INTERMEDIATE: dict[str, Any] = {"lr": 1e-5, "batch_size": 16, "warmup_ratio": 0.1, "seed": 42}


@dataclass
class Spec:
    name: str
    model: str
    intermediates: list[str]
    targets: list[str]
    grid: dict[str, list]
    intermediate: dict
    tasks: dict[str, dict] = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    data_dir: str | None = None
    task_files: list[str] = field(default_factory=list)
    zero_shot: bool | str = False       # True: zero-shot runs too; "only": zero-shot runs alone (Table 4)
    path: str | None = None
    description: str = ""
    executor: str = "local"             # where runs execute: "local" or "slurm" (sweep/executors.py)
    slurm: dict = field(default_factory=dict)


def _err(where: str, problem: str, fix: str) -> SpecError:
    return SpecError(f"{where}: {problem}", fix)


def _check(where: str, key: str, value, allowed: tuple[str, ...]) -> None:
    if key not in allowed:
        raise _err(where, f"unknown key {key!r}", f"keys: {', '.join(allowed)}")
    check_value(SweepTrain if key in ("save_target_checkpoints",) else RunConfig, key, value, where)


def load_spec(path: str | Path, data_dir: str | None = None) -> Spec:
    p = Path(path)
    raw = read_toml(p, "spec file", "experiments/demo.toml")
    spec = parse_spec(raw, where=str(p), base=p.parent)
    spec.path = str(p.resolve())
    if data_dir:
        spec.data_dir = str(Path(data_dir).resolve())
    return spec


def parse_spec(raw: dict, where: str = "spec", base: Path | None = None) -> Spec:
    base = base or Path.cwd()
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise _err(where, f"unknown key(s) {', '.join(sorted(unknown))}", f"allowed keys: {', '.join(sorted(TOP_KEYS))}")
    for key in ("model", "targets"):
        if key not in raw:
            raise _err(where, f"missing key {key!r}", "see the spec format in the README")
    task_files = [str((base / f).resolve()) for f in raw.get("task_files", [])]
    for f in task_files:
        register_task_file(f)

    def task_list(key: str, allow_none: bool) -> list[str]:
        value = raw.get(key, ["none"] if allow_none else [])
        if not isinstance(value, list) or not value:
            raise _err(where, f"{key} must be a non-empty list of task names", f'e.g. {key} = ["rte"]')
        names = []
        for name in value:
            if allow_none and str(name).lower() == "none":
                names.append("none")
                continue
            try:
                names.append(get_task(str(name)).name)
            except StiltsError as exc:
                raise _err(where, f"{key}: {exc.problem}", exc.fix or "") from None
        return names

    intermediates = task_list("intermediates", True)
    targets = task_list("targets", False)
    grid = dict(PAPER_GRID) if "grid" not in raw else {}
    for key, values in raw.get("grid", {}).items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise _err(where, f"[grid] {key} is empty", "give at least one value")
        for v in values:
            _check(f"{where} [grid]", key, v, GRID_KEYS)
        grid[key] = values
    inter: dict = {}
    for key, value in raw.get("intermediate", {}).items():
        _check(f"{where} [intermediate]", key, value, GRID_KEYS)
        inter[key] = value
    tasks: dict[str, dict] = {}
    for name, overrides in raw.get("tasks", {}).items():
        try:
            tname = get_task(name).name
        except StiltsError as exc:
            raise _err(where, f"[tasks.{name}]: {exc.problem}", exc.fix or "") from None
        if not isinstance(overrides, dict):
            raise _err(where, f"[tasks.{name}] must be a table", "e.g. [tasks.rte] then epochs = 5")
        for key, value in overrides.items():
            for v in value if (key == "train_size" and isinstance(value, list)) else [value]:
                _check(f"{where} [tasks.{name}]", key, v, TASK_KEYS)
            if key == "train_size" and isinstance(value, list) and tname not in intermediates:
                raise _err(where, f"[tasks.{name}] train_size is a list but {name} is not an intermediate",
                           "put a size list in [grid] train_size for targets")
        if "data_dir" in overrides:
            overrides = overrides | {"data_dir": str((base / overrides["data_dir"]).resolve())}
        tasks[tname] = overrides
    train = {}
    for key, value in raw.get("train", {}).items():
        _check(f"{where} [train]", key, value, TRAIN_KEYS)
        train[key] = value
    zero_shot = raw.get("zero_shot", False)
    if zero_shot not in (True, False, "only"):
        raise _err(where, f"zero_shot = {zero_shot!r}", 'use true, false or "only"')
    data_dir = raw.get("data_dir")
    try:
        executor = executor_options(raw.get("executor"), raw.get("slurm"))
    except SpecError as exc:
        raise _err(where, exc.problem, exc.fix or "") from None
    if "slurm" in raw and executor["executor"] != "slurm":
        raise _err(where, "a [slurm] table but executor is not \"slurm\"", 'add executor = "slurm" (or drop [slurm])')
    return Spec(executor=executor["executor"], slurm=executor.get("slurm", {}),
                name=str(raw.get("name", "experiment")), description=str(raw.get("description", "")), model=str(raw["model"]),
                intermediates=intermediates, targets=targets, grid=grid, intermediate=inter, tasks=tasks, train=train,
                data_dir=str((base / data_dir).resolve()) if data_dir else None, task_files=task_files,
                zero_shot=zero_shot)


# --------------------------------------------------------------------------- expansion
# Precedence, lowest first.
#   intermediates: the paper's intermediate settings, the spec's [intermediate], the task's own
#                  study settings (epochs, max tokens, HellaSwag's batch 8), then [tasks.X];
#   targets:       the task's study settings, the [grid] point, then [tasks.X].
# A spec-wide [intermediate] default never replaces a task's study setting: only [tasks.X] does
# (shadowed_settings names the defaults that did not apply, for `stilts plan`).


def _task_defaults(name: str) -> dict[str, Any]:
    task = get_task(name)
    return {"epochs": task.epochs, "max_length": task.max_length} | ({"batch_size": task.batch_size} if task.batch_size else {})


def _overrides(spec: Spec, name: str) -> dict[str, Any]:
    o = {k: spec.train[k] for k in RECIPE_KEYS if k in spec.train} | spec.tasks.get(name, {})
    o.setdefault("data_dir", spec.data_dir)
    return o


def _common(spec: Spec) -> dict[str, Any]:
    t = spec.train
    keys = ("max_device_batch", "group_by_length", "precision", "optimizer", "sdpa", "fused_adamw", "eval_every_epoch",
            "threads", "log_interval_s", "resume_every_s")
    return {k: t[k] for k in keys if k in t} | {"model": spec.model, "task_files": spec.task_files, "spec_name": spec.name}


def intermediate_settings(spec: Spec, name: str) -> dict:
    return PAPER_INTERMEDIATE | spec.intermediate | _task_defaults(name) | _overrides(spec, name)


def shadowed_settings(spec: Spec) -> list[str]:
    """[intermediate] values that a task's own study setting kept from applying."""
    notes = []
    for name in spec.intermediates:
        if name == "none":
            continue
        study = _task_defaults(name)
        for key, value in spec.intermediate.items():
            if key in study and study[key] != value and key not in spec.tasks.get(name, {}):
                notes.append(f"[intermediate] {key} = {value} does not apply to {name}: its study setting is {study[key]} "
                             f"(set [tasks.{name}] {key} to change it)")
    return notes


def _full_set(name: str, size: int | None) -> bool:
    rows = get_task(name).train_rows
    return size is not None and rows is not None and size >= rows


def _check_device_batch(where: str, cfg: RunConfig) -> None:
    if cfg.device_batch and cfg.batch_size % cfg.device_batch:
        raise _err(where, f"{cfg.task}: batch_size {cfg.batch_size} is not a multiple of device_batch {cfg.device_batch}",
                   "use batch sizes that the device batch divides (the effective batch is device_batch x accumulation)")


def check_data_sources(spec: Spec) -> None:
    """Fail before any run starts when a task has nowhere to read its data from."""
    for name in [n for n in spec.intermediates if n != "none"] + spec.targets:
        task = get_task(name)
        if _overrides(spec, name).get("data_dir") is None and needs_data_dir(task):
            err = no_data_error(task)
            raise _err(spec.path or "spec", err.problem, err.fix or "")


def expand(spec: Spec, workdir: str | Path) -> list[RunConfig]:
    """Every run of the spec, intermediates first; each target run names the intermediate run
    whose checkpoint it starts from. Runs with the same identity appear once."""
    check_data_sources(spec)
    workdir = Path(workdir)
    common = _common(spec)
    runs: dict[str, RunConfig] = {}

    def add(cfg: RunConfig) -> RunConfig:
        _check_device_batch(spec.path or "spec", cfg)
        cfg.run_id = cfg.compute_id()
        cfg.output_dir = str(workdir / "runs" / cfg.run_id)
        cfg.events_path = str(workdir / "runs" / cfg.run_id / "events.jsonl")
        cfg.cache_dir = str(workdir / "cache")
        return runs.setdefault(cfg.run_id, cfg)

    sources: list[tuple[str, RunConfig | None]] = [("none", None)] if "none" in spec.intermediates else []
    for name in spec.intermediates:
        if name == "none":
            continue
        values = intermediate_settings(spec, name)
        sizes = values["train_size"] if isinstance(values.get("train_size"), list) else [values.get("train_size")]
        for size in sizes:
            label = name if len(sizes) == 1 else f"{name}@{size}"
            # A size that covers the whole set is the whole set: the same run as the task's
            # unsized intermediate (Figure 3's 40k point is Figure 2's HellaSwag-p run).
            full = _full_set(name, size)
            cfg = add(RunConfig(kind="intermediate", task=name, intermediate=name if full else label,
                                **(values | {"train_size": None if full else size}), **common))
            sources.append((label, cfg))

    axes = list(spec.grid)
    for target in spec.targets:
        for label, source in sources:
            init: dict[str, Any] = {"init_from": source.run_id, "init_checkpoint": str(Path(source.output_dir) / "checkpoint")} if source else {}
            grid_points = [] if spec.zero_shot == "only" else itertools.product(*(spec.grid[a] for a in axes))
            for point in grid_points:
                values = _task_defaults(target) | dict(zip(axes, point, strict=True)) | _overrides(spec, target)
                add(RunConfig(kind="target", task=target, intermediate=label,
                              save_checkpoint=bool(spec.train.get("save_target_checkpoints", False)),
                              **init, **values, **common))
            source_mc = source is None or get_task(source.task).head == "multiple_choice"
            if spec.zero_shot and get_task(target).head == "multiple_choice" and source_mc:
                # How a task trains (device batch, clipping) means nothing to a run that only evaluates.
                values = {k: v for k, v in (_task_defaults(target) | _overrides(spec, target)).items()
                          if k not in ("device_batch", "grad_clip")}
                add(RunConfig(kind="zero_shot", task=target, intermediate=label, **init,
                              **(values | {"epochs": 0, "seed": (PAPER_INTERMEDIATE | spec.intermediate)["seed"]}), **common))
    return list(runs.values())


def describe(cfg: RunConfig) -> str:
    if cfg.kind == "intermediate":
        return f"[intermediate] {cfg.intermediate}"
    return f"{cfg.intermediate} → {cfg.task}" + (" (zero-shot)" if cfg.kind == "zero_shot" else "")
