"""Checks before any runner starts (`stilts run`, the Plan screen's launch): what would make every
run fail, said once, before a single worker spends a minute on it.

- the model resolves: a local folder with a config.json, the `minilm` alias, or a hub id that is
  in the local Hugging Face cache or can be downloaded (the hub reachable);
- every task has its files under its data folder (each split the runs read), or, read from the
  hub, the hub is reachable;
- the disk holds what the sweep will write (runner/disk_need.py).

Each failure is one `Problem` (what, and the fix); `check_sweep` returns them all, so a spec with
a typo in the data folder and an uncached model says both at once.

What makes every run useless but not failed is a warning, not a refusal (the data may be meant
so): a dev split, read from files, whose labels are all one class."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError


@dataclass(frozen=True)
class Problem:
    problem: str
    fix: str = ""

    def line(self) -> str:
        return self.problem + (f" — {self.fix}" if self.fix else "")


class PreflightError(StiltsError):
    """Launch refused: every problem found, one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        head = problems[0] if len(problems) == 1 else Problem(
            f"{len(problems)} problems would fail the sweep:\n" + "\n".join(f"  - {p.line()}" for p in problems))
        super().__init__(f"not started: {head.problem}", head.fix if len(problems) == 1 else
                         "fix them and launch again (--no-preflight starts it anyway)")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"


def check_model(name: str, reachable: bool) -> Problem | None:
    """The model as the worker will load it."""
    from stilts_tui.models import resolve_model

    try:
        where = resolve_model(name)
    except StiltsError as exc:
        return Problem(exc.problem, exc.fix or "")
    if Path(where).is_dir():
        return None
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(where, "config.json"), str):
        return None  # cached: loads offline
    if reachable:
        return None
    why = "HF_HUB_OFFLINE=1" if offline() else "huggingface.co is not reachable from here"
    return Problem(f"model {name} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and cannot be "
                   f"downloaded ({why})",
                   f"download it where there is network (huggingface-cli download {name}) into that cache, set model "
                   "to a local folder written by save_pretrained, or use the offline encoder: model = \"minilm\"")


def check_task_data(cfg: RunConfig, reachable: bool) -> Problem | None:
    """The files of the splits one run reads (dev, and train unless it is zero-shot)."""
    from stilts_tui.tasks import get_task, register_task_file, task_folder

    try:
        for f in cfg.task_files:
            register_task_file(f)
        task = get_task(cfg.task)
    except StiltsError as exc:
        return Problem(exc.problem, exc.fix or "")
    if task.own_data:
        return None
    splits = ("dev",) if cfg.kind == "zero_shot" else ("train", "dev")
    if cfg.data_dir is None:
        if task.load_hub is not None and not reachable:
            return Problem(f"task {task.name} is read from the Hugging Face hub, which is not reachable from here",
                           "pass --data-dir DIR (or data_dir in the spec) with the task's official files")
        return None
    try:
        folder = task_folder(task, Path(cfg.data_dir))
        for split in splits:
            _split_present(task, folder, split)
    except StiltsError as exc:
        return Problem(f"task {task.name}: {exc.problem}", exc.fix or "")
    return None


def _split_present(task, folder: Path, split: str) -> None:
    """The split's files exist (the file loaders name them); other loaders read the split."""
    from stilts_tui.tasks.formats import find_file

    groups = getattr(task.load_split, "files", None)
    if groups is None:
        if task.load_split is None:
            raise StiltsError(f"task {task.name} has no file loader")
        task.load_split(folder, split)
        return
    for candidates in groups(split):
        find_file(folder, candidates)


def check_sweep(runs: list[RunConfig], db: Path, options, finished: Iterable[str] = ()) -> list[Problem]:
    """Every problem that would fail the runs still to do, before any of them starts."""
    from stilts_tui.runner.disk_need import sweep_disk_need
    from stilts_tui.tasks.hub import hub_reachable

    done = set(finished)
    todo = [r for r in runs if r.run_id not in done]
    if not todo:
        return []
    reachable = hub_reachable()
    problems: list[Problem] = []
    for model in sorted({r.model for r in todo}):
        if (p := check_model(model, reachable)) is not None:
            problems.append(p)
    seen: set[tuple] = set()
    for r in todo:
        key = (r.task, r.data_dir, tuple(r.task_files), r.kind == "zero_shot")
        if key in seen:
            continue
        seen.add(key)
        if (p := check_task_data(r, reachable)) is not None and p not in problems:
            problems.append(p)
    need = sweep_disk_need(runs, db, done, options)
    if need.short:
        problems.append(Problem(f"not enough disk: the sweep needs {need.describe()}",
                                "free space there, or give --db a results file on a larger disk"))
    return problems


def one_class_warning(cfg: RunConfig, split: str = "dev") -> str | None:
    """A warning when every labelled example of the run's `split` has the same label: every run
    scored on it is degenerate. Only splits read from files (the hub's splits are the releases')
    are read; a split that cannot be read is left to the run, which says why."""
    from stilts_tui.tasks import get_task, load_examples, register_task_file
    from stilts_tui.tasks.base import label_counts

    try:
        for f in cfg.task_files:
            register_task_file(f)
        task = get_task(cfg.task)
        if cfg.data_dir is None and not task.own_data:
            return None
        counts = label_counts(load_examples(task, split, cfg.data_dir))
    except StiltsError:
        return None
    if len(counts) != 1:
        return None
    [(label, n)] = counts.items()
    name = (task.labels[label] if label < len(task.labels) else
            f"choice {label + 1} of {task.num_choices}" if task.head == "multiple_choice" else str(label))
    return (f"task {task.name}, {split} split: all {n} examples have the label {name!r} (one class): every run's "
            f"{split} score will be degenerate; check the task's {split} file and its label field")


def sweep_warnings(runs: list[RunConfig], finished: Iterable[str] = ()) -> list[str]:
    """What would make every run of a task degenerate, once per task and data folder."""
    done = set(finished)
    seen: set[tuple] = set()
    warnings: list[str] = []
    for r in runs:
        key = (r.task, r.data_dir, tuple(r.task_files))
        if r.run_id in done or key in seen:
            continue
        seen.add(key)
        if (w := one_class_warning(r)) is not None and w not in warnings:
            warnings.append(w)
    return warnings


def preflight(runs: list[RunConfig], db: Path, options, finished: Iterable[str] = ()) -> list[str]:
    """Raise PreflightError with every problem found; when the sweep can start, its warnings
    (the caller shows them: a line on stderr, a notification in the app)."""
    problems = check_sweep(runs, db, options, finished)
    if problems:
        raise PreflightError(problems)
    return sweep_warnings(runs, finished)
