"""A spec as the Plan screen edits it: the keys the form has fields for, every other key as TOML
text (comments kept), and saving that rewrites only what changed, so a spec opened and saved
unchanged is the same file byte for byte and a user's comments survive an edit.

Relative paths in a spec (data_dir, task_files, [tasks.X] data_dir) are relative to the spec's
own folder (load_spec); saving into another folder rewrites them so they still point at the same
place."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import Table

from stilts_tui.errors import SpecError

FORM_AXES = ("lr", "batch_size", "warmup_ratio", "seed")  # the grid / [intermediate] keys with fields
INT_AXES = ("batch_size", "seed")
FORM_KEYS = ("name", "description", "model", "data_dir", "task_files", "executor", "intermediates", "targets",
             "probes")
# A key the form always shows but a spec may leave out: written only when it says something.
DEFAULTS: dict[str, Any] = {"description": "", "data_dir": "", "task_files": [], "executor": "local",
                            "intermediates": ["none"], "probes": [], "targets": []}
FIRST_ORDER = ("name", "description", "model", "data_dir", "task_files", "study", "intermediates", "targets", "probes",
               "zero_shot", "executor", "stall_limit_min", "grid", "intermediate", "restarts", "tasks", "train", "slurm")


@dataclass
class SpecForm:
    """What the form's fields hold; ``rest`` is the TOML box (every other key)."""

    name: str = "my-study"
    description: str = ""
    model: str = "roberta-large"
    data_dir: str = ""
    task_files: list[str] = field(default_factory=list)
    executor: str = "local"
    partition: str = ""
    intermediates: list[str] = field(default_factory=lambda: ["none"])
    targets: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    grid: dict[str, list] = field(default_factory=dict)          # FORM_AXES only
    intermediate: dict[str, Any] = field(default_factory=dict)   # FORM_AXES only
    rest: str = ""


def form_of(doc: tomlkit.TOMLDocument) -> SpecForm:
    """Split an opened spec into the form's fields and the TOML box, which keeps the comments of
    the tables it shows."""
    # spec.py loads the task registry: imported when a spec is opened, as the Plan screen does
    from stilts_tui.sweep.spec import check_shapes

    raw = doc.unwrap()
    check_shapes(raw)  # `grid = 5` is refused with a message, not met as `5.items()` below
    form = SpecForm(name=str(raw.get("name", "")), description=str(raw.get("description", "")),
                    model=str(raw.get("model", "")), data_dir=str(raw.get("data_dir", "")),
                    task_files=[str(f) for f in raw.get("task_files", [])],
                    executor=str(raw.get("executor", "local")),
                    partition=str(raw.get("slurm", {}).get("partition", "")),
                    intermediates=list(raw.get("intermediates", ["none"])), targets=list(raw.get("targets", [])),
                    probes=list(raw.get("probes", [])),
                    grid={k: v if isinstance(v, list) else [v] for k, v in raw.get("grid", {}).items() if k in FORM_AXES},
                    intermediate={k: v for k, v in raw.get("intermediate", {}).items() if k in FORM_AXES})
    rest = tomlkit.document()
    # Items moved into the box's document change their layout: they come from a copy.
    for key, item in tomlkit.parse(doc.as_string()).items():
        if key in FORM_KEYS:
            continue
        held = {"grid": FORM_AXES, "intermediate": FORM_AXES, "slurm": ("partition",)}.get(key, ())
        if held and isinstance(item, Table):
            left = tomlkit.table()
            for sub, value in item.items():
                if sub not in held:
                    left[sub] = value
            if len(left):
                rest[key] = left
        else:
            rest[key] = item
    form.rest = rest.as_string().strip()
    return form


def raw_of(form: SpecForm, original: dict | None = None) -> dict:
    """The spec the form says, as plain TOML data. A key the opened spec left out stays out while
    the form holds its default; a key both in a field and in the TOML box is refused."""
    original = original or {}
    try:
        rest = tomllib.loads(form.rest) if form.rest.strip() else {}
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"the TOML box: {exc}", "write TOML, e.g. [tasks.rte] then epochs = 10") from None
    fields: dict[str, Any] = {"name": form.name.strip() or "my-study", "description": form.description,
                              "model": form.model.strip(), "data_dir": form.data_dir.strip(),
                              "task_files": list(form.task_files), "executor": form.executor,
                              "intermediates": list(form.intermediates), "targets": list(form.targets),
                              "probes": list(form.probes)}
    raw: dict[str, Any] = {}
    for key, value in fields.items():
        if key in DEFAULTS and value == DEFAULTS[key] and key not in original:
            continue
        raw[key] = value
    for key, values in (("grid", form.grid), ("intermediate", form.intermediate)):
        if values:
            raw[key] = dict(values)
    if form.executor == "slurm" and form.partition.strip():
        raw["slurm"] = {"partition": form.partition.strip()}
    for key, value in rest.items():
        if key in FORM_KEYS:
            raise SpecError(f"the TOML box sets {key!r}, which has its own field", f"set {key} in its field above")
        if key in raw and isinstance(value, dict) and isinstance(raw[key], dict):
            both = sorted(set(value) & set(raw[key]))
            if both:
                raise SpecError(f"the TOML box sets [{key}] {', '.join(both)}, which the fields above set too",
                                "keep one: clear the field or the line in the box")
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    if "slurm" in raw and raw.get("executor", "local") != "slurm" and "slurm" not in original:
        raw.pop("slurm")  # a partition typed for slurm, then local chosen: nothing to keep
    return {k: raw[k] for k in sorted(raw, key=lambda k: FIRST_ORDER.index(k) if k in FIRST_ORDER else len(FIRST_ORDER))}


def rebase(raw: dict, old: Path, new: Path) -> dict:
    """Relative paths of a spec moved from folder ``old`` to folder ``new``, pointing at the same
    places."""
    if old.resolve() == new.resolve():
        return raw

    def move(p: str) -> str:
        return p if Path(p).is_absolute() else os.path.relpath((old / p).resolve(), new.resolve())

    out = dict(raw)
    if out.get("data_dir"):
        out["data_dir"] = move(out["data_dir"])
    if out.get("task_files"):
        out["task_files"] = [move(f) for f in out["task_files"]]
    if out.get("tasks"):
        out["tasks"] = {name: ({**o, "data_dir": move(o["data_dir"])} if isinstance(o, dict) and o.get("data_dir") else o)
                        for name, o in out["tasks"].items()}
    return out


def spec_text(raw: dict, original: tomlkit.TOMLDocument | None) -> str:
    """The TOML of ``raw``: the opened document with only what changed rewritten (its comments and
    layout kept), or a new document."""
    if original is None:
        return tomlkit.dumps(raw)
    doc = tomlkit.parse(original.as_string())  # a copy: the opened document stays what was opened
    _update(doc, raw)
    return doc.as_string()


def _update(container: Container | Table, new: dict) -> None:
    for key in [k for k in container if k not in new]:
        del container[key]
    for key, value in new.items():
        if key in container:
            old = container[key]
            plain = old.unwrap() if hasattr(old, "unwrap") else old
            if plain == value:
                continue
            if isinstance(old, Table) and isinstance(value, dict):
                _update(old, value)
                continue
        container[key] = value


def numbers(text: str, key: str) -> list:
    """A comma-separated field as numbers (ints for batch size and seed); blank: no values."""
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part) if key in INT_AXES else float(part))
        except ValueError:
            raise SpecError(f"{key}: {part!r} is not a number", "numbers separated by commas, e.g. 1e-5, 2e-5") from None
    return out


def shown(values: list | Any) -> str:
    """Numbers as a field shows them (the inverse of numbers())."""
    items = values if isinstance(values, list) else [values]
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in items)
