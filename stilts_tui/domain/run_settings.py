"""Some of a run's settings, as one spec table gives them: `[intermediate]`, one `[tasks.X]`, the
run settings of `[train]`. A table sets only some keys, and the expansion merges tables in their
order of precedence (sweep/expand.py), so a table is kept as the keys it sets, each checked once,
when the spec is parsed, against the RunConfig setting it fills: that the table may set it
(its declaration's `tables`), its type, its range. A partial dataclass per table would declare
every setting a second time."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from stilts_tui.domain.run_config import DECLARED, RunConfig, settable_in
from stilts_tui.domain.setting import Table
from stilts_tui.errors import SpecError, unknown_keys
from stilts_tui.settings import check_value


def check_setting(table: Table, key: str, value: Any, where: str, allowed: Collection[str] | None = None) -> None:
    """One clear SpecError unless `table` may set `key` to `value`. `allowed` (default: the
    settings `table` may set) are the keys the message offers when `key` is not one of them."""
    keys = tuple(allowed) if allowed is not None else settable_in(table)
    if key not in DECLARED or table not in DECLARED[key].tables:
        raise SpecError(f"{where}: {unknown_keys([key], keys)}", f"keys: {', '.join(keys)}")
    check_value(RunConfig, key, value, where)


@dataclass(frozen=True)
class RunSettings(Mapping[str, Any]):
    """The run settings one table sets, read as a mapping of setting to value. Built by
    `parse_run_settings`; `get` of a name the table can never set is a KeyError, not a silent None."""

    table: Table
    given: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __getitem__(self, name: str) -> Any:
        return self.given[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.given)

    def __len__(self) -> int:
        return len(self.given)

    def get(self, name: str, default: Any = None) -> Any:
        if name not in DECLARED or self.table not in DECLARED[name].tables:
            raise KeyError(f"{name!r} is not a setting [{self.table}] may set")
        return self.given.get(name, default)


def parse_run_settings(table: Table, raw: Mapping[str, Any], where: str, lists: Collection[str] = (),
                       allowed: Collection[str] | None = None) -> RunSettings:
    """The run settings of a user table, each checked (`check_setting`). A key in `lists` may hold
    a list of values, each checked (an intermediate's train sizes)."""
    for key, value in raw.items():
        for v in value if key in lists and isinstance(value, list) else [value]:
            check_setting(table, key, v, where, allowed)
    return RunSettings(table, MappingProxyType(dict(raw)))
