"""How a run setting is declared: once, on its RunConfig field, with everything the rest of stilts
derives from it. The type is the field's annotation, the default its default, and `setting(...)`
adds the rest:

    lr: float = setting(1e-5, gt=0, tables=GRID, plan=Column("lr", 40))

- the range a user's value must lie in (settings.py checks it);
- `tables`: the spec tables that may set it. `[grid]` (an axis of targets' runs), `[intermediate]`
  (the intermediates' default), `[tasks.X]` (one task's runs), `[train]` (every run). A setting
  both `[train]` and `[tasks.X]` may set is a default a task's own value wins over; one only
  `[train]` sets applies to every run of the sweep, above everything else (sweep/expand.py);
- `identity`: whether it changes what the run computes, so is part of the run's id (paths,
  logging and how the work is laid out on the machine are not);
- `grid_point`: whether analysis compares runs on it when it pairs a run with its baseline's
  (where a run starts from is not: it is what the pair differs in);
- `added_later`: it came after results files existed, so at its default it is left out of the
  identity and the runs an earlier version recorded keep their ids. Such a default never changes;
- `spec_default`: what a spec's runs get when the spec says nothing, where that differs from a
  run config's own default (a worker run by hand saves no resumable state; a sweep's runs do);
- `plan`: its column in `stilts plan --runs`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from stilts_tui.settings import Range

Table = Literal["grid", "intermediate", "tasks", "train"]
# The grid's settings are also the intermediates' defaults: an intermediate runs once, at one point.
GRID: tuple[Table, ...] = ("grid", "intermediate")
_NOT_GIVEN: Any = object()


@dataclass(frozen=True)
class Column:
    """A setting's column in `stilts plan --runs`: its header and its place, in tens so that a new
    column fits between two (sweep/resolved.py places the columns that are not settings)."""

    title: str
    at: int


@dataclass(frozen=True)
class Declared:
    """What `setting(...)` declares beyond the type, default and range (see the module's docstring).
    A setting that is no part of the identity is no part of the grid point either."""

    tables: frozenset[Table] = frozenset()
    identity: bool = True
    grid_point: bool = True
    added_later: bool = False
    spec_default: Any = _NOT_GIVEN
    plan: Column | None = None

    @property
    def has_spec_default(self) -> bool:
        return self.spec_default is not _NOT_GIVEN


def setting(default: Any = dataclasses.MISSING, *, gt: float | None = None, ge: float | None = None,
            lt: float | None = None, le: float | None = None, tables: tuple[Table, ...] = (), identity: bool = True,
            grid_point: bool = True, added_later: bool = False, spec_default: Any = _NOT_GIVEN,
            plan: Column | None = None, factory: Any = dataclasses.MISSING) -> Any:
    """A RunConfig field with its declaration (see the module's docstring)."""
    if added_later and not identity:
        raise TypeError("added_later says how a setting of the identity keeps old ids; this one is not in it")
    declared = Declared(frozenset(tables), identity, grid_point and identity, added_later, spec_default, plan)
    metadata: dict[str, Any] = {"setting": declared}
    if any(bound is not None for bound in (gt, ge, lt, le)):
        metadata["range"] = Range(gt, ge, lt, le)
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declaration(f: dataclasses.Field) -> Declared:
    """A field's declaration; a field declared without `setting(...)` is a plain one: identity,
    compared, set by no spec table."""
    return f.metadata.get("setting", Declared())
