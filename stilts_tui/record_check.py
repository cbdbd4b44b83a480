"""A results file read back is checked against `RunRecord` before any reader sees it. stilts
writes every record itself, but the file is plain JSON that people edit by hand: a record whose
score is "0.5" or whose runs are a list would otherwise surface as an AttributeError or a
TypeError deep in a table, a chart or a screen. Here it is one message that names the record and
the field instead. Only the shape is checked (types, the fields every record has had since the
first version); values are the analysis' business."""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, Union

from stilts_tui.domain.records import RunRecord, RunStatus
from stilts_tui.settings import fits

# Every record stilts ever wrote has these (run_record and add_runs, since the first version).
REQUIRED = ("run_id", "kind", "intermediate", "target", "status")
STATUSES = frozenset(RunStatus)
_WORDS = {str: "a string", int: "a whole number", float: "a number", dict: "an object", list: "a list",
          bool: "true or false", type(None): "null"}


@functools.cache
def _accepted() -> dict[str, tuple[Any, tuple[type, ...], bool]]:
    """Field -> (its declared type, the JSON kinds it names in a message, whether it is a list of
    objects). The check itself is the project's one checker (settings.fits); a list of objects is
    checked for objects only, so an older version's failure entries still read."""
    out = {}
    for key, hint in typing.get_type_hints(RunRecord).items():
        args = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
        kinds = tuple(typing.get_origin(a) or a for a in args)
        item = typing.get_args(hint)[0] if typing.get_origin(hint) is list else None
        objects = item is not None and typing.is_typeddict(item)
        out[key] = (list if objects else hint, kinds, objects)
    return out


_SIMPLE = (str, int, float, bool, type(None), dict)


@functools.cache
def _plain_kinds() -> dict[str, frozenset[type]]:
    """Field -> the exact JSON types `settings.fits` accepts for it without looking inside the
    value (a number where a float belongs, any object where a dict belongs): most fields of most
    records, checked by one set lookup, so a 100,000-run file is not checked a type hint at a
    time. Fields whose values need a look inside (lists) are left to the full check."""
    out = {}
    for key, (hint, kinds, objects) in _accepted().items():
        if objects or not all(k in _SIMPLE for k in kinds):
            continue
        if hint is dict or typing.get_origin(hint) is dict:
            args = typing.get_args(hint)
            if args and args[1] is not Any:
                continue
        accepted = set(kinds) | ({int} if float in kinds else set())
        out[key] = frozenset(accepted)
    return out


def json_kind(value: Any) -> str:
    """A parsed JSON value's kind, in the words of a message ("a string", "a list")."""
    return _WORDS.get(type(value), type(value).__name__)


def _expected(kinds: tuple[type, ...]) -> str:
    named = [_WORDS[k] for k in kinds if k is not int or float not in kinds]
    return " or ".join(dict.fromkeys(named))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def record_problem(doc: Any) -> str | None:
    """What is wrong with one record (field, value, what belongs there), or None when it reads."""
    if not isinstance(doc, dict):
        return f"is {_shown(doc)} ({json_kind(doc)}), not an object of run fields"
    accepted = _accepted()
    plain = _plain_kinds()
    for key, value in doc.items():
        simple = plain.get(key)
        if simple is not None and type(value) in simple:
            continue
        if key not in accepted:
            continue  # fields added later, or by hand: nothing reads them blindly
        hint, kinds, objects_only = accepted[key]
        if not fits(value, hint):
            return f"has {key} = {_shown(value)} ({json_kind(value)}) where {_expected(kinds)} belongs"
        if objects_only and not all(isinstance(v, dict) for v in value):
            return f"has {key} = {_shown(value)}: its items must be objects"
    for key in REQUIRED:
        if key not in doc:
            return f"has no {key!r}"
    if doc["status"] not in STATUSES:
        return (f"has status = {_shown(doc['status'])}, not one of {', '.join(RunStatus)} (a status a newer "
                "stilts writes? then upgrade stilts to read this file)")
    return None
