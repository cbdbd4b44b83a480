"""Tasks described in a TOML file, so a new task needs no code (the request jiant users made most).

    name = "my_nli"                    # letters, digits, _ and -: it is part of file names
    head = "classification"            # or "multiple_choice"
    labels = ["entailment", "not_entailment"]   # classification only
    num_choices = 3                    # multiple_choice only
    metric = "accuracy"                # or "mcc", "f1", "macro_f1", "acc_f1"
    epochs = 3
    max_length = 128
    format = "tsv"                     # tsv | jsonl | csv
    header = true                      # tsv: first row names the columns
    columns = ["id", "s1", "s2", "y"]  # tsv without header: column names in order
    data_dir = "data/my_nli"           # optional, relative to this file; else --data-dir/<name>
    data_fix = "run make-my-nli first" # optional: how to get the data, said when none is found

    [files]
    train = "train.tsv"
    dev = "dev.tsv"

    [fields]
    a = "s1"                           # or a list, joined by the tokenizer's separator
    b = "s2"                           # optional
    label = "y"
    choices = ["ans1", "ans2", "ans3"] # multiple_choice: one field per choice ...
    choices_list = "endings"           # ... or one field holding a list
    label_base = 0                     # multiple_choice: 1 if labels count from 1
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stilts_tui.errors import DataError, SpecError
from stilts_tui.settings import parse_table, ranged
from stilts_tui.tasks.base import ClsExample, Example, MCExample, MetricName, Task
from stilts_tui.tasks.formats import label_index, read_csv, read_jsonl, read_tsv
from stilts_tui.tomlfile import read_toml


@dataclass
class TaskFields:
    """The [fields] table."""

    a: str | list[str]
    label: str
    b: str | None = None                 # one field (only segment A may join several)
    choices: list[str] = field(default_factory=list)
    choices_list: str | None = None
    label_base: int = ranged(0, ge=0)


@dataclass
class TaskFile:
    """A task file's keys, parsed once (settings.parse_table): types and ranges are checked from
    these fields, and [fields] is a TaskFields."""

    name: str
    head: Literal["classification", "multiple_choice"]
    files: dict[str, str]
    fields: TaskFields
    description: str | None = None      # None: "user task from <file>"
    labels: list[str | int] = field(default_factory=list)
    num_choices: int = ranged(0, ge=0)
    metric: MetricName = "accuracy"
    epochs: int = ranged(3, ge=1)
    max_length: int = ranged(128, ge=8)
    format: Literal["tsv", "jsonl", "csv"] = "jsonl"
    header: bool = True
    columns: list[str] | None = None     # tsv without header: None, the fields' columns in order
    data_dir: str | None = None
    batch_size: int | None = ranged(None, ge=1)
    data_fix: str | None = None


def _need(cond: bool, path: Path, problem: str, fix: str) -> None:
    if not cond:
        raise SpecError(f"{path}: {problem}", fix)


# A task's name is part of file names (its tokenised cache's folder, figure files), so it may
# hold no path: "../../x" put the cache outside the cache folder. After normalising (case, - and
# spaces to _) only these are left; every study task's name is one.
_NAME = re.compile(r"[a-z0-9_]+")


def task_name(raw: object, path: Path) -> str:
    """The task file's name, normalised as every task name is; a name that is not one (a path,
    an empty name, other characters) is refused."""
    from stilts_tui.tasks import normalise_name

    name = normalise_name(str(raw))
    if not _NAME.fullmatch(name):
        example = re.sub(r"[^a-z0-9_]+", "_", name).strip("_") or "my_task"
        raise SpecError(f"{path}: name = {raw!r} is not a task name: use letters, digits, _ and - only "
                        "(the name becomes part of file names)", f'e.g. name = "{example}"')
    return name


def load_task_file(path: Path) -> Task:
    raw = read_toml(path, "task file", "experiments/tasks/demo_acceptability.toml")
    spec = parse_table(TaskFile, raw, str(path), missing_fix="see the task file format in the README")
    name = task_name(spec.name, path)
    head, fields, files = spec.head, spec.fields, spec.files
    _need({"train", "dev"} <= set(files), path, "[files] needs train and dev", 'e.g. train = "train.tsv"')
    labels = tuple(str(x) for x in spec.labels)
    num_choices = spec.num_choices
    if head == "classification":
        _need(len(labels) >= 2, path, "classification needs labels = [...] with at least two names", 'e.g. labels = ["0", "1"]')
    else:
        has_choices = bool(fields.choices) or fields.choices_list is not None
        _need(has_choices, path, "multiple_choice needs fields.choices or fields.choices_list", "name the choice fields")
        if fields.choices:
            num_choices = num_choices or len(fields.choices)
        _need(num_choices >= 2, path, "multiple_choice needs num_choices >= 2", "set num_choices")
    base = Path(spec.data_dir) if spec.data_dir is not None else None
    if base is not None and not base.is_absolute():
        base = (path.parent / base).resolve()

    def read(file: Path) -> list[dict]:
        needed = [f for f in _as_list(fields.a) + _as_list(fields.b) + [fields.label] + list(fields.choices)
                  + _as_list(fields.choices_list) if f]
        if spec.format == "jsonl":
            return read_jsonl(file, needed)
        if spec.format == "csv":
            return read_csv(file, needed)
        return read_tsv(file, needed if spec.header or spec.columns is None else spec.columns, spec.header)

    def convert(row: dict, file: Path) -> Example:
        line = int(row.get("_line", 0))
        a = _text(row, fields.a)
        if head == "classification":
            b = str(row[fields.b]) if fields.b else None
            return ClsExample(a, b, label_index(file, line, row[fields.label], labels))
        if fields.choices_list is not None:
            options = row[fields.choices_list]
            if not isinstance(options, list) or len(options) != num_choices:
                raise DataError(file, f"field {fields.choices_list!r} must be a list of {num_choices}", line=line)
        else:
            options = [row[c] for c in fields.choices]
        allowed = [str(fields.label_base + i) for i in range(num_choices)]
        if fields.b:  # A, then B followed by the choice
            b = str(row[fields.b])
            choices = tuple((a, f"{b} {o}".strip()) for o in options)
        else:
            choices = tuple((a, str(o)) for o in options)
        return MCExample(choices, label_index(file, line, row[fields.label], allowed))

    def load(folder: Path, split: str) -> list[Example]:
        file = (base or folder) / files[split]
        return [convert(r, file) for r in read(file)]

    return Task(
        name=name, description=f"user task from {path.name}" if spec.description is None else spec.description,
        head=head, metric=spec.metric, labels=labels, num_choices=num_choices if head == "multiple_choice" else 0,
        epochs=spec.epochs, max_length=spec.max_length, batch_size=spec.batch_size, dir_names=(spec.name,),
        load_split=load, own_data=base is not None, data_fix=spec.data_fix,
    )


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _text(row: dict, spec: object) -> str | tuple[str, ...]:
    names = _as_list(spec)
    parts = tuple(str(row[n]) for n in names)
    return parts[0] if len(parts) == 1 else parts
