"""A spec's expansion into runs: intermediates first, then every target and probe of every source
(an intermediate run, or "none"), one run per grid point and restart.

Precedence, lowest first (a setting's spec default, where it declares one, below all of it).
  intermediates: the first study's intermediate settings (specs without a study), the spec's
                 [intermediate], the task's own settings, the study's settings for the task as an
                 intermediate, then [train]'s recipe keys and [tasks.X];
  targets/probes: the task's own settings, the study's settings for its role, the [grid] point,
                 then [train]'s recipe keys and [tasks.X];
  with [restarts], the restart's seed for the role last; above all, the [train] settings no
  [tasks.X] may set, which apply to every run (domain/setting.py).
A spec-wide [intermediate] default never replaces a task's own setting: only [tasks.X] does
(shadowed_settings names the defaults that did not apply, for `stilts plan`).

Restart i of a target or probe starts from restart i of its intermediate (jiant's
``load_target_train_checkpoint=.../$1_$7/model_*.best.th``, transfer_analysis.sh l. 343-346)."""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stilts_tui.domain.run_config import SPEC_DEFAULTS, RunConfig, every_run, settable_in
from stilts_tui.errors import SpecError
from stilts_tui.sweep import pruksachatkun2020 as study2
from stilts_tui.sweep.spec import PAPER_INTERMEDIATE, RECIPE_KEYS, Spec
from stilts_tui.tasks import get_task, needs_data_dir, no_data_error


@dataclass
class Source:
    """Where a target or probe run starts: an intermediate run, or the pretrained model (None)."""

    label: str
    run: RunConfig | None
    restart: int = 0


def _task_defaults(name: str) -> dict[str, Any]:
    task = get_task(name)
    return {"epochs": task.epochs, "max_length": task.max_length} | ({"batch_size": task.batch_size} if task.batch_size else {})


def _mixing(spec: Spec, name: str) -> bool:
    return _overrides(spec, name).get("transfer") == "frozen_mix"


def _study(spec: Spec, role: study2.Role, name: str) -> dict[str, Any]:
    return study2.settings(role, name, _mixing(spec, name)) if spec.study == study2.NAME else {}


def _seed(spec: Spec, role: str, restart: int) -> dict[str, Any]:
    return {"seed": spec.restarts[role][restart]} if spec.restarts else {}


def _overrides(spec: Spec, name: str) -> dict[str, Any]:
    train = spec.train.settings
    o = {k: train[k] for k in RECIPE_KEYS if k in train} | dict(spec.task_settings(name))
    o.setdefault("data_dir", spec.data_dir)
    return o


# The [train] settings that apply to every run, above everything else.
EVERY_RUN_KEYS = tuple(k for k in settable_in("train") if every_run(k))


def _common(spec: Spec) -> dict[str, Any]:
    train = spec.train.settings
    return ({k: train[k] for k in EVERY_RUN_KEYS if k in train}
            | {"model": spec.model, "task_files": spec.task_files, "spec_name": spec.name})


def intermediate_settings(spec: Spec, name: str, restart: int = 0) -> dict:
    base = {} if spec.study else PAPER_INTERMEDIATE
    return (SPEC_DEFAULTS | base | dict(spec.intermediate) | _task_defaults(name) | _study(spec, "intermediate", name)
            | _overrides(spec, name) | _seed(spec, "intermediate", restart))


def shadowed_settings(spec: Spec) -> list[str]:
    """[intermediate] values that a task's own (or its study's) setting kept from applying."""
    notes = []
    for name in spec.intermediates:
        if name == "none":
            continue
        own = _task_defaults(name) | _study(spec, "intermediate", name)
        for key, value in spec.intermediate.items():
            if key in own and own[key] != value and key not in spec.task_settings(name):
                notes.append(f"[intermediate] {key} = {value} does not apply to {name}: its study setting is {own[key]} "
                             f"(set [tasks.{name}] {key} to change it)")
    return notes


def study_notes(spec: Spec) -> list[str]:
    """Tasks the study's scripts give no setting for, in the roles this spec uses them."""
    if spec.study != study2.NAME:
        return []
    roles: list[tuple[study2.Role, list[str]]] = [("intermediate", [n for n in spec.intermediates if n != "none"])]
    roles += [("target", spec.targets), ("probe", spec.probes)] if any(n != "none" for n in spec.intermediates) else []
    roles += [("baseline_target", spec.targets), ("baseline_probe", spec.probes)] if "none" in spec.intermediates else []
    return [note for role, names in roles for name in names if (note := study2.unlisted(role, name, _mixing(spec, name)))]


def _full_set(name: str, size: int | None) -> bool:
    rows = get_task(name).train_rows
    return size is not None and rows is not None and size >= rows


def _check_device_batch(where: str, cfg: RunConfig) -> None:
    if cfg.device_batch and cfg.batch_size % cfg.device_batch:
        raise SpecError(f"{where}: {cfg.task}: batch_size {cfg.batch_size} is not a multiple of device_batch {cfg.device_batch}",
                        "use batch sizes that the device batch divides (the effective batch is device_batch x accumulation)")


def check_data_sources(spec: Spec) -> None:
    """Fail before any run starts when a task has nowhere to read its data from."""
    for name in [n for n in spec.intermediates if n != "none"] + spec.targets + spec.probes:
        task = get_task(name)
        if _overrides(spec, name).get("data_dir") is None and needs_data_dir(task):
            err = no_data_error(task)
            raise SpecError(f"{spec.path or 'spec'}: {err.problem}", err.fix or "")


class _Runs:
    """The runs collected so far, each identity once, with its paths under the work folder."""

    def __init__(self, spec: Spec, workdir: Path, runs_dir: Path) -> None:
        self.spec, self.workdir, self.runs_dir = spec, workdir, runs_dir
        self.by_id: dict[str, RunConfig] = {}
        # Joined as strings: pathlib's / per run was a fifth of the time of a large plan.
        self._runs, self._cache = str(runs_dir), str(workdir / "cache")

    def add(self, cfg: RunConfig) -> RunConfig:
        _check_device_batch(self.spec.path or "spec", cfg)
        cfg.run_id = cfg.compute_id()
        cfg.output_dir = os.path.join(self._runs, cfg.run_id)
        cfg.events_path = os.path.join(cfg.output_dir, "events.jsonl")
        cfg.cache_dir = self._cache
        return self.by_id.setdefault(cfg.run_id, cfg)


def _sources(spec: Spec, runs: _Runs, common: dict[str, Any]) -> list[Source]:
    restarts = range(spec.n_restarts())
    sources = [Source("none", None, i) for i in restarts] if "none" in spec.intermediates else []
    for name in spec.intermediates:
        if name == "none":
            continue
        for i in restarts:
            values = intermediate_settings(spec, name, i)
            sizes = values["train_size"] if isinstance(values.get("train_size"), list) else [values.get("train_size")]
            for size in sizes:
                label = name if len(sizes) == 1 else f"{name}@{size}"
                # A size that covers the whole set is the whole set: the same run as the task's
                # unsized intermediate (Figure 3's 40k point is Figure 2's HellaSwag-p run).
                full = _full_set(name, size)
                cfg = runs.add(RunConfig(kind="intermediate", task=name, intermediate=name if full else label,
                                         restart=i if spec.restarts else None,
                                         **((values | {"train_size": None if full else size}) | common)))
                sources.append(Source(label, cfg, i))
    return sources


def _trained(spec: Spec, runs: _Runs, common: dict[str, Any], sources: list[Source], names: list[str],
             role: str) -> None:
    """Every run of ``names`` (targets or probes) from every source and grid point."""
    axes = list(spec.grid)
    for name in names:
        for source in sources:
            run_role: Any = role if source.run else f"baseline_{role}"
            init: dict[str, Any] = ({"init_from": source.run.run_id, "init_checkpoint": str(Path(source.run.output_dir) / "checkpoint")}
                                    if source.run else {})
            grid_points = [] if spec.zero_shot == "only" else itertools.product(*(spec.grid[a] for a in axes))
            # What does not change from point to point, merged once (in the precedence order above).
            below = SPEC_DEFAULTS | _task_defaults(name) | _study(spec, run_role, name)
            above = _overrides(spec, name) | _seed(spec, run_role, source.restart) | common
            fixed: dict[str, Any] = {"kind": "target", "task": name, "intermediate": source.label, "probe": role == "probe",
                                     "restart": source.restart if spec.restarts else None,
                                     "save_checkpoint": spec.train.save_target_checkpoints} | init
            for point in grid_points:
                runs.add(RunConfig(**fixed, **(below | dict(zip(axes, point, strict=True)) | above)))
            if role == "target":
                _zero_shot(spec, runs, common, source, name, init)


def _zero_shot(spec: Spec, runs: _Runs, common: dict[str, Any], source: Source, target: str, init: dict) -> None:
    source_mc = source.run is None or get_task(source.run.task).head == "multiple_choice"
    if spec.zero_shot and get_task(target).head == "multiple_choice" and source_mc:
        # How a task trains (device batch, clipping) means nothing to a run that only evaluates.
        values = {k: v for k, v in (SPEC_DEFAULTS | _task_defaults(target) | _overrides(spec, target)).items()
                  if k not in ("device_batch", "grad_clip")}
        seed = spec.intermediate.get("seed", PAPER_INTERMEDIATE["seed"])
        runs.add(RunConfig(kind="zero_shot", task=target, intermediate=source.label, **init,
                           **(values | {"epochs": 0, "seed": seed} | common)))


# The most runs one spec may expand to. The study's largest specs have a few thousand; each run is
# minutes of a GPU at least, so a spec past this is a mistake (an axis of hundreds of values), and
# expanding it took minutes and gigabytes before anything was said (a million runs: 100 s, 2 GB).
MAX_RUNS = 100_000


def count_runs(spec: Spec) -> int:
    """The runs `expand` makes, counted without making them. Runs that turn out to be the same run
    (a repeated grid value) are counted each time: the count may be over, never under."""
    return sum(_size_parts(spec)[:3])


def _size_parts(spec: Spec) -> tuple[int, int, int, list[str | None], int]:
    """(intermediate runs, trained runs, zero-shot runs, the task of each source, grid points)."""
    restarts = range(spec.n_restarts())
    sources: list[str | None] = [None for _ in restarts] if "none" in spec.intermediates else []
    for name in [n for n in spec.intermediates if n != "none"]:
        for i in restarts:  # as _sources: one intermediate per restart and train size
            size = intermediate_settings(spec, name, i).get("train_size")
            sources += [name] * (len(size) if isinstance(size, list) else 1)
    points = 0 if spec.zero_shot == "only" else math.prod(len(v) for v in spec.grid.values())
    trained = (len(spec.targets) + len(spec.probes)) * len(sources) * points
    mc = {n: get_task(n).head == "multiple_choice" for n in {*spec.targets, *(s for s in sources if s)}}
    zero = sum(1 for t in spec.targets if spec.zero_shot and mc[t] for s in sources if s is None or mc[s])
    return len([s for s in sources if s]), trained, zero, sources, points


def check_size(spec: Spec) -> None:
    """Refuse a spec of more than MAX_RUNS runs, saying how many and where they come from."""
    inter, trained, zero, sources, points = _size_parts(spec)
    total = inter + trained + zero
    if total <= MAX_RUNS:
        return
    names = list(dict.fromkeys("none" if s is None else s for s in sources))
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    restarts = f"; {spec.n_restarts()} restarts each" if spec.n_restarts() > 1 else ""
    trained_names = (f"({_plural(len(spec.targets), 'target')} + {_plural(len(spec.probes), 'probe')})" if spec.probes
                     else _plural(len(spec.targets), "target"))
    axes = " x ".join(f"{k} {len(v)}" for k, v in spec.grid.items()) or "no axes"
    parts = [f"{trained_names} x {_plural(len(sources), 'source')} ({shown}{restarts}) x {_plural(points, 'grid point')} ({axes})"]
    parts += [_plural(inter, "intermediate run")] if inter else []
    parts += [_plural(zero, "zero-shot run")] if zero else []
    said = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]
    raise SpecError(f"{spec.path or 'spec'}: {total:,} runs, more than the {MAX_RUNS:,} one sweep may hold: {said}",
                    "shrink the [grid] (every axis multiplies the runs: fewer values, or fewer axes), or split the "
                    "tasks or the grid into several specs, each its own sweep")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def expand(spec: Spec, workdir: str | Path, runs_dir: str | Path | None = None) -> list[RunConfig]:
    """Every run of the spec, intermediates first; each target or probe run names the intermediate
    run whose checkpoint it starts from. Runs with the same identity appear once. Each run's files
    go in `runs_dir`/<run id> (default `workdir`/runs); the tokenised caches in `workdir`/cache."""
    check_data_sources(spec)
    check_size(spec)
    runs = _Runs(spec, Path(workdir), Path(runs_dir) if runs_dir is not None else Path(workdir) / "runs")
    common = _common(spec)
    sources = _sources(spec, runs, common)
    _trained(spec, runs, common, sources, spec.targets, "target")
    _trained(spec, runs, common, sources, spec.probes, "probe")
    return list(runs.by_id.values())


def describe(cfg: RunConfig) -> str:
    if cfg.kind == "intermediate":
        return f"[intermediate] {cfg.intermediate}"
    return f"{cfg.intermediate} → {cfg.task}" + (" (zero-shot)" if cfg.kind == "zero_shot" else "")
