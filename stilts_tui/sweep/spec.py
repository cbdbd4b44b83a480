"""Experiment specs (TOML, parsed as data, never executed), parsed once into a typed `Spec`:
what every later step reads (sweep/expand.py expands it into runs).

    name = "figure2"
    model = "roberta-large"              # hub id, local folder, or the alias "minilm"
    data_dir = "/data/stilts"            # relative paths are relative to this file
    task_files = ["tasks/my_task.toml"]  # user-defined tasks
    intermediates = ["none", "hellaswag", "hellaswag_p", "synthesis_gpt2"]
    targets = ["rte", "wic"]
    zero_shot = false                    # also evaluate each MC intermediate on MC targets untrained
    executor = "local"                   # or "slurm", with a [slurm] table (sweep/slurm_settings.py)
    stall_limit_min = 30                 # a run silent this long is killed and retried (default: learnt)

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

The second study adds (experiments/pruksachatkun2020.toml):

    study = "pruksachatkun2020"          # per-task, per-role settings of jiant (sweep/pruksachatkun2020.py)
    probes = ["edges_pos", "cola"]       # trained like targets, with the study's probing settings

    [restarts]                           # restart i: intermediate i, and targets / probes that start from it
    intermediate = [1111001, 523821, 921]
    target = [1111002, 523822, 922]
    probe = [1111003, 523823, 923]
    baseline_target = [1111001, 523821, 921]   # "none": the runs without an intermediate
    baseline_probe = [1111003, 523823, 923]
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from stilts_tui.domain.run_config import RunConfig, every_run, settable_in
from stilts_tui.domain.run_settings import RunSettings, check_setting, parse_run_settings
from stilts_tui.errors import SpecError, StiltsError, unknown_keys
from stilts_tui.settings import check_value, ranged
from stilts_tui.sweep import pruksachatkun2020 as study2
from stilts_tui.sweep.slurm_settings import SlurmSettings, executor_options
from stilts_tui.tasks import get_task, register_task_file
from stilts_tui.tomlfile import read_toml

TOP_KEYS = {"name", "description", "model", "data_dir", "task_files", "intermediates", "targets", "probes", "zero_shot",
            "grid", "intermediate", "tasks", "train", "executor", "slurm", "study", "restarts", "stall_limit_min"}
STUDIES = (study2.NAME,)
RESTART_ROLES = ("intermediate", "target", "probe", "baseline_target", "baseline_probe")
# Which RunConfig settings each table may set: from the settings' declarations (domain/run_config.py),
# as their types and ranges are.
GRID_KEYS = settable_in("grid")
TASK_KEYS = settable_in("tasks")
# The [train] settings a task's own [tasks.X] value wins over (the second study's recipe, the head
# and the transfer); the other [train] settings apply to every run (sweep/expand.py).
RECIPE_KEYS = tuple(k for k in settable_in("train") if not every_run(k))


@dataclass(frozen=True)
class SweepTrain:
    """The [train] table: the settings that belong to the sweep, not to a run's config, and the run
    settings it gives the sweep's runs."""

    save_target_checkpoints: bool = False
    settings: RunSettings = field(default_factory=lambda: RunSettings("train"))


SWEEP_TRAIN_KEYS = tuple(f.name for f in fields(SweepTrain) if f.name != "settings")
TRAIN_KEYS = (*settable_in("train"), *SWEEP_TRAIN_KEYS)


PAPER_GRID: dict[str, list] = {"lr": [5e-6, 1e-5, 2e-5], "batch_size": [8, 16, 32], "warmup_ratio": [0.0, 0.2], "seed": [12, 42]}
# Chang & Lu's intermediate scripts (train_hella.sh, train_hella-p.sh, train_synth.sh) pass lr 1e-5,
# seed 42 and no --warmup_ratio, so run.py's default 0.1 applies (run.py l. 403); batch 16 except
# HellaSwag's 8, which the task itself carries.
PAPER_INTERMEDIATE: dict[str, Any] = {"lr": 1e-5, "batch_size": 16, "warmup_ratio": 0.1, "seed": 42}


@dataclass
class Spec:
    """A spec as `parse_spec` checked it: every table typed, every value checked."""

    name: str
    model: str
    intermediates: list[str]
    targets: list[str]
    grid: dict[str, list]               # axis -> its values, each checked
    intermediate: RunSettings
    tasks: dict[str, RunSettings] = field(default_factory=dict)   # by task name, as get_task names it
    train: SweepTrain = field(default_factory=SweepTrain)
    data_dir: str | None = None
    task_files: list[str] = field(default_factory=list)
    zero_shot: bool | str = False       # True: zero-shot runs too; "only": zero-shot runs alone (Table 4)
    path: str | None = None
    description: str = ""
    executor: str = "local"             # where runs execute: "local" or "slurm" (sweep/slurm_settings.py)
    slurm: SlurmSettings | None = None  # with executor = "slurm"
    probes: list[str] = field(default_factory=list)
    study: str | None = None            # "pruksachatkun2020": that study's settings as task defaults
    restarts: dict[str, list[int]] = field(default_factory=dict)  # role -> one seed per restart
    # A run silent this long is killed and retried (runner/stall.py); None: the limit is learnt.
    stall_limit_min: float | None = ranged(None, gt=0)

    def n_restarts(self) -> int:
        return len(self.restarts.get("target", [])) or 1

    def task_settings(self, name: str) -> RunSettings:
        """What [tasks.NAME] sets (nothing, for a task without a table)."""
        return self.tasks.get(name) or RunSettings("tasks")


def task_settings(raw: dict[str, Any], where: str) -> RunSettings:
    """A [tasks.X] table given by code rather than a spec file (`stilts demo` on real RTE), checked
    as a spec's is; data_dir as given (a spec's is made absolute against the spec's folder)."""
    return parse_run_settings("tasks", raw, where)


def _err(where: str, problem: str, fix: str) -> SpecError:
    return SpecError(f"{where}: {problem}", fix)


# The spec's tables, and how each is written: `grid = 5` is a table the spec only names.
TABLES = {"grid": "[grid] then lr = [1e-5, 2e-5]", "intermediate": "[intermediate] then lr = 1e-5",
          "tasks": "[tasks.rte] then epochs = 5", "train": '[train] then precision = "tf32"',
          "slurm": '[slurm] then partition = "gpu"'}
TASK_LISTS = ("intermediates", "targets", "probes")


def check_shapes(raw: dict, where: str = "spec") -> None:
    """Each key holds the kind of value it must (TOML `grid = 5` parses, then failed as
    `5.items()`): what the Plan screen's form and `parse_spec` read without looking."""
    for key, example in TABLES.items():
        if key in raw and not isinstance(raw[key], dict):
            raise _err(where, f"{key} = {raw[key]!r} is not a table", f"write it as a table: {example}")
    for key in TASK_LISTS:
        if key in raw and not isinstance(raw[key], list):
            raise _err(where, f"{key} must be a non-empty list of task names", f'e.g. {key} = ["rte"]')
    files = raw.get("task_files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise _err(where, f"task_files = {files!r} is not a list of paths", 'e.g. task_files = ["tasks/my_task.toml"]')
    if "data_dir" in raw and not isinstance(raw["data_dir"], str):
        raise _err(where, f"data_dir = {raw['data_dir']!r} is not a path", 'e.g. data_dir = "/data/stilts"')


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
        raise _err(where, unknown_keys(unknown, TOP_KEYS), f"allowed keys: {', '.join(sorted(TOP_KEYS))}")
    if "model" not in raw:
        raise _err(where, "missing key 'model'", "see the spec format in the README")
    if "targets" not in raw and "probes" not in raw:
        raise _err(where, "missing key 'targets'", "see the spec format in the README")
    check_shapes(raw, where)
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
    targets = task_list("targets", False) if "targets" in raw else []
    probes = task_list("probes", False) if "probes" in raw else []
    study = raw.get("study")
    if study is not None and study not in STUDIES:
        raise _err(where, f"unknown study {study!r}", f"studies with built-in settings: {', '.join(STUDIES)}")
    restarts = _restarts(where, raw.get("restarts"), intermediates, bool(targets), bool(probes))
    # The first study's grid is the default only for its own kind of spec.
    grid = dict(PAPER_GRID) if "grid" not in raw and study is None and not restarts else {}
    for key, values in raw.get("grid", {}).items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise _err(where, f"[grid] {key} is empty", "give at least one value")
        for v in values:
            check_setting("grid", key, v, f"{where} [grid]")
        grid[key] = values
    if restarts and "seed" in grid:
        raise _err(where, "[grid] seed and [restarts] both set seeds", "drop seed from [grid]: each restart has its seed")
    inter = parse_run_settings("intermediate", raw.get("intermediate", {}), f"{where} [intermediate]")
    tasks: dict[str, RunSettings] = {}
    for name, overrides in raw.get("tasks", {}).items():
        try:
            tname = get_task(name).name
        except StiltsError as exc:
            raise _err(where, f"[tasks.{name}]: {exc.problem}", exc.fix or "") from None
        if not isinstance(overrides, dict):
            raise _err(where, f"[tasks.{name}] must be a table", "e.g. [tasks.rte] then epochs = 5")
        settings = parse_run_settings("tasks", overrides, f"{where} [tasks.{name}]", lists=("train_size",))
        if isinstance(settings.get("train_size"), list) and tname not in intermediates:
            raise _err(where, f"[tasks.{name}] train_size is a list but {name} is not an intermediate",
                       "put a size list in [grid] train_size for targets")
        if "data_dir" in settings:  # relative to the spec's folder, as the spec's own data_dir
            settings = parse_run_settings("tasks", overrides | {"data_dir": str((base / overrides["data_dir"]).resolve())},
                                          f"{where} [tasks.{name}]", lists=("train_size",))
        tasks[tname] = settings
    train = _train(raw.get("train", {}), f"{where} [train]")
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
    slurm = SlurmSettings(**executor["slurm"]) if "slurm" in executor else None
    stall = raw.get("stall_limit_min")
    if stall is not None:
        check_value(Spec, "stall_limit_min", stall, where)
    return Spec(executor=executor["executor"], slurm=slurm, stall_limit_min=stall,
                name=str(raw.get("name", "experiment")), description=str(raw.get("description", "")), model=str(raw["model"]),
                intermediates=intermediates, targets=targets, grid=grid, intermediate=inter, tasks=tasks, train=train,
                data_dir=str((base / data_dir).resolve()) if data_dir else None, task_files=task_files,
                zero_shot=zero_shot, probes=probes, study=study, restarts=restarts)


def _train(raw: dict[str, Any], where: str) -> SweepTrain:
    """[train]: the sweep's own settings, and the run settings it gives its runs."""
    own = {k: v for k, v in raw.items() if k in SWEEP_TRAIN_KEYS}
    for key, value in own.items():
        check_value(SweepTrain, key, value, where)
    runs = parse_run_settings("train", {k: v for k, v in raw.items() if k not in own}, where, allowed=TRAIN_KEYS)
    return SweepTrain(**own, settings=runs)


def _restarts(where: str, table, intermediates: list[str], targets: bool, probes: bool) -> dict[str, list[int]]:
    """[restarts]: one seed per restart for each role; every list the same length."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise _err(where, "[restarts] must be a table", "e.g. [restarts] then target = [1111002, 523822, 922]")
    unknown = set(table) - set(RESTART_ROLES)
    if unknown:
        raise _err(where, f"[restarts]: {unknown_keys(unknown, RESTART_ROLES)}", f"keys: {', '.join(RESTART_ROLES)}")
    seeds: dict[str, list[int]] = {}
    for role, values in table.items():
        if not isinstance(values, list) or not values:
            raise _err(where, f"[restarts] {role} must be a non-empty list of seeds", f"e.g. {role} = [1, 2, 3]")
        for v in values:
            check_value(RunConfig, "seed", v, f"{where} [restarts] {role}")
        seeds[role] = list(values)
    needed = (["intermediate"] if any(n != "none" for n in intermediates) else []) + (["target"] if targets else [])
    needed += ["probe"] if probes and not targets else []
    for role in needed:
        if role not in seeds:
            raise _err(where, f"[restarts] has no {role} seeds", f"add {role} = [...] with one seed per restart")
    seeds.setdefault("target", seeds.get("probe", []))
    seeds.setdefault("probe", seeds["target"])
    seeds.setdefault("intermediate", seeds["target"])
    seeds.setdefault("baseline_target", seeds["target"])
    seeds.setdefault("baseline_probe", seeds["probe"])
    lengths = {role: len(v) for role, v in seeds.items()}
    if len(set(lengths.values())) > 1:
        raise _err(where, "[restarts] lists differ in length: " + ", ".join(f"{r} {n}" for r, n in lengths.items()),
                   "give every role one seed per restart")
    return seeds
