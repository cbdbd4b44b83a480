"""The task registry: the study's tasks, tasks users describe in TOML, and loading their splits."""

from __future__ import annotations

import difflib
from pathlib import Path

from stilts_tui.errors import StiltsError
from stilts_tui.tasks.base import ClsExample, Example, MCExample, Task
from stilts_tui.tasks.builtin import BUILTIN_TASKS
from stilts_tui.tasks.edges import EDGE_TASKS
from stilts_tui.tasks.probing import PROBING_TASKS
from stilts_tui.tasks.reading import READING_TASKS
from stilts_tui.tasks.transfer import TRANSFER_TASKS

__all__ = ["BUILTIN_NAMES", "ClsExample", "Example", "MCExample", "Task", "all_tasks", "get_task", "load_examples",
           "normalise_name", "register_task", "register_task_file", "task_folder"]

_REGISTRY: dict[str, Task] = {t.name: t for t in (*BUILTIN_TASKS, *TRANSFER_TASKS, *READING_TASKS, *PROBING_TASKS,
                                                  *EDGE_TASKS)}
BUILTIN_NAMES: tuple[str, ...] = tuple(_REGISTRY)  # the package's own tasks, before any task file


def normalise_name(name: str) -> str:
    """`HellaSwag-p`, `hellaswag_p` and `Hellaswag P` all name the same task."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def register_task(task: Task) -> None:
    _REGISTRY[task.name] = task


def register_task_file(path: str | Path) -> Task:
    from stilts_tui.tasks.custom import load_task_file

    task = load_task_file(Path(path))
    register_task(task)
    return task


def all_tasks() -> list[Task]:
    return list(_REGISTRY.values())


def get_task(name: str) -> Task:
    key = normalise_name(name)
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise StiltsError(f"unknown task {name!r}", f"{hint}known tasks: {', '.join(_REGISTRY)} (or describe one in a task TOML file)")


def task_folder(task: Task, data_dir: Path) -> Path:
    """The folder of ``task`` under ``data_dir``: a sub-folder named like the task (any case, or a
    nested path of its release), or ``data_dir`` itself when it holds the files directly."""
    if not data_dir.is_dir():
        raise StiltsError(f"data directory {data_dir} does not exist", "pass --data-dir pointing at an existing folder")
    by_lower = {p.name.lower(): p for p in data_dir.iterdir() if p.is_dir()}
    for name in (*task.dir_names, task.name):
        if "/" in name and (data_dir / name).is_dir():  # a release's nested layout (SciTailV1.1/tsv_format)
            return data_dir / name
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    return data_dir


def with_label_set(task: Task, data_dir: str | Path | None) -> Task:
    """The task with its label set read from its folder, for tasks whose labels only the data
    names (edge probing's labels.txt); any other task as it is."""
    if task.labels or not task.labels_file or data_dir is None:
        return task
    from dataclasses import replace

    from stilts_tui.tasks.formats import read_label_set

    return replace(task, labels=read_label_set(task_folder(task, Path(data_dir)) / task.labels_file))


def load_examples(task: Task, split: str, data_dir: str | Path | None) -> list[Example]:
    """One split of a task, from ``data_dir`` when given, else from the Hugging Face hub."""
    if split not in task.splits:
        raise StiltsError(f"task {task.name} has no split {split!r}", f"use one of {', '.join(task.splits)}")
    if task.own_data and task.load_split is not None:  # its own folder, whatever --data-dir says
        return task.load_split(Path.cwd(), split)
    if data_dir is not None:
        if task.load_split is None:
            raise StiltsError(f"task {task.name} has no file loader")
        return task.load_split(task_folder(task, Path(data_dir)), split)
    if task.load_hub is None:
        raise no_data_error(task)
    return task.load_hub(split)


def needs_data_dir(task: Task) -> bool:
    """Whether runs of `task` can find no data unless a data folder is given."""
    return task.load_hub is None and not task.own_data


def no_data_error(task: Task) -> StiltsError:
    return StiltsError(f"task {task.name} has no data here: no data folder was given and it is not on the Hugging Face hub",
                       task.data_fix or "pass --data-dir DIR (the folder holding its files), or set data_dir in the spec")
