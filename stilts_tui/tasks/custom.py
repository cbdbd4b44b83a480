"""Tasks described in a TOML file, so a new task needs no code (the request jiant users made most).

    name = "my_nli"
    head = "classification"            # or "multiple_choice"
    labels = ["entailment", "not_entailment"]   # classification only
    num_choices = 3                    # multiple_choice only
    metric = "accuracy"                # or "mcc"
    epochs = 3
    max_length = 128
    format = "tsv"                     # tsv | jsonl | csv
    header = true                      # tsv: first row names the columns
    columns = ["id", "s1", "s2", "y"]  # tsv without header: column names in order
    data_dir = "data/my_nli"           # optional, relative to this file; else --data-dir/<name>

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

from pathlib import Path

from stilts_tui.errors import DataError, SpecError
from stilts_tui.tasks.base import ClsExample, Example, MCExample, Task
from stilts_tui.tasks.formats import label_index, read_csv, read_jsonl, read_tsv
from stilts_tui.tomlfile import read_toml

_KEYS = {"name", "description", "head", "labels", "num_choices", "metric", "epochs", "max_length", "format",
         "header", "columns", "data_dir", "files", "fields", "batch_size"}
_FIELD_KEYS = {"a", "b", "label", "choices", "choices_list", "label_base"}


def _need(cond: bool, path: Path, problem: str, fix: str) -> None:
    if not cond:
        raise SpecError(f"{path}: {problem}", fix)


def load_task_file(path: Path) -> Task:
    spec = read_toml(path, "task file", "experiments/tasks/demo_acceptability.toml")
    unknown = set(spec) - _KEYS
    _need(not unknown, path, f"unknown key(s) {', '.join(sorted(unknown))}", f"allowed keys: {', '.join(sorted(_KEYS))}")
    for key in ("name", "head", "files", "fields"):
        _need(key in spec, path, f"missing key {key!r}", "see the task file format in the README")
    head = spec["head"]
    _need(head in ("classification", "multiple_choice"), path, f"head = {head!r}", 'use "classification" or "multiple_choice"')
    metric = spec.get("metric", "accuracy")
    _need(metric in ("accuracy", "mcc"), path, f"metric = {metric!r}", 'use "accuracy" or "mcc"')
    fmt = spec.get("format", "jsonl")
    _need(fmt in ("tsv", "jsonl", "csv"), path, f"format = {fmt!r}", 'use "tsv", "jsonl" or "csv"')
    fields = spec["fields"]
    unknown = set(fields) - _FIELD_KEYS
    _need(not unknown, path, f"unknown [fields] key(s) {', '.join(sorted(unknown))}", f"allowed: {', '.join(sorted(_FIELD_KEYS))}")
    _need("a" in fields and "label" in fields, path, "[fields] needs a and label", "name the columns holding segment A and the label")
    files = spec["files"]
    _need({"train", "dev"} <= set(files), path, "[files] needs train and dev", 'e.g. train = "train.tsv"')
    labels = tuple(str(x) for x in spec.get("labels", ()))
    num_choices = int(spec.get("num_choices", 0))
    if head == "classification":
        _need(len(labels) >= 2, path, "classification needs labels = [...] with at least two names", 'e.g. labels = ["0", "1"]')
    else:
        has_choices = "choices" in fields or "choices_list" in fields
        _need(has_choices, path, "multiple_choice needs fields.choices or fields.choices_list", "name the choice fields")
        if "choices" in fields:
            num_choices = num_choices or len(fields["choices"])
        _need(num_choices >= 2, path, "multiple_choice needs num_choices >= 2", "set num_choices")
    base = Path(spec["data_dir"]) if "data_dir" in spec else None
    if base is not None and not base.is_absolute():
        base = (path.parent / base).resolve()

    def read(file: Path) -> list[dict]:
        needed = [f for f in _as_list(fields["a"]) + _as_list(fields.get("b")) + [fields["label"]]
                  + list(fields.get("choices", [])) + _as_list(fields.get("choices_list")) if f]
        if fmt == "jsonl":
            return read_jsonl(file, needed)
        if fmt == "csv":
            return read_csv(file, needed)
        header = bool(spec.get("header", True))
        return read_tsv(file, needed if header else spec.get("columns", needed), header)

    def convert(row: dict, file: Path) -> Example:
        line = int(row.get("_line", 0))
        a = _text(row, fields["a"])
        if head == "classification":
            b = _text(row, fields["b"]) if fields.get("b") else None
            return ClsExample(a, b, label_index(file, line, row[fields["label"]], labels))
        if "choices_list" in fields:
            options = row[fields["choices_list"]]
            if not isinstance(options, list) or len(options) != num_choices:
                raise DataError(file, f"field {fields['choices_list']!r} must be a list of {num_choices}", line=line)
        else:
            options = [row[c] for c in fields["choices"]]
        first = int(fields.get("label_base", 0))
        allowed = [str(first + i) for i in range(num_choices)]
        if fields.get("b"):  # A, then B followed by the choice
            b = _text(row, fields["b"])
            choices = tuple((a, f"{b} {o}".strip()) for o in options)
        else:
            choices = tuple((a, str(o)) for o in options)
        return MCExample(choices, label_index(file, line, row[fields["label"]], allowed))

    def load(folder: Path, split: str) -> list[Example]:
        file = (base or folder) / files[split]
        return [convert(r, file) for r in read(file)]

    return Task(
        name=str(spec["name"]).strip().lower().replace("-", "_"), description=spec.get("description", f"user task from {path.name}"),
        head=head, metric=metric, labels=labels, num_choices=num_choices if head == "multiple_choice" else 0,
        epochs=int(spec.get("epochs", 3)), max_length=int(spec.get("max_length", 128)),
        batch_size=spec.get("batch_size"), dir_names=(str(spec["name"]),), load_split=load,
    )


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _text(row: dict, spec: object) -> str | tuple[str, ...]:
    names = _as_list(spec)
    parts = tuple(str(row[n]) for n in names)
    return parts[0] if len(parts) == 1 else parts
