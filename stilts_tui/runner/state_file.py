"""The runner's state file, checked field by field when read.

Only the runner writes it (atomically), but it is a plain JSON file beside the results: edited by
hand, restored from another machine or cut short by a full disk, it can hold anything. A field of
the wrong type is dropped and named under ``"damaged"``, so every reader (status, stop, resume,
the app) sees what it can trust and can say what is wrong instead of failing on it."""

from __future__ import annotations

import json
from pathlib import Path

NUMBER = (int, float)
STATUSES = ("starting", "running", "stopping", "stopped", "finished", "crashed")
LIVE = ("starting", "running", "stopping")

# field -> the types it may hold (None: may be null)
FIELDS: dict[str, tuple] = {
    "pid": (int,), "create_time": (*NUMBER, None), "status": (str,), "name": (str, None), "db": (str, None),
    "sweep_file": (str, None), "started_at": (*NUMBER, None), "heartbeat": (*NUMBER, None),
    "ended_at": (*NUMBER, None), "run_ids": (list,), "counts": (dict,), "pending": (int,), "executor": (str, None),
    "slots": (list,), "stalls": (dict,), "stall_limit_s": (*NUMBER, None), "stop_reason": (str, None),
    "disk_full": (dict, None), "error": (str, None),
}
SLOT_FIELDS: dict[str, tuple] = {"id": (str,), "device": (str,), "threads": (int,), "worker_pid": (int, None),
                                 "run_id": (str, None), "since": (*NUMBER, None)}


def _fits(value: object, types: tuple) -> bool:
    if value is None:
        return None in types
    if isinstance(value, bool):  # JSON true is not a pid or a count
        return bool in types
    return isinstance(value, tuple(t for t in types if t is not None))


def _show(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_state(raw: object) -> dict:
    """The fields of a parsed state file that have the right types; the others are named in
    ``state["damaged"]`` (absent when the file is sound)."""
    if not isinstance(raw, dict):
        return {"damaged": [f"it holds {type(raw).__name__} {_show(raw)}, not a runner state (a JSON object)"]}
    state: dict = {}
    damaged: list[str] = []
    for key, value in raw.items():
        types = FIELDS.get(key)
        if types is None:
            state[key] = value  # a field of a later version: kept, not relied on
        elif _fits(value, types):
            state[key] = value
        else:
            damaged.append(f"{key!r} is {_show(value)}")
    if "status" in state and state["status"] not in STATUSES:
        damaged.append(f"'status' is {_show(state.pop('status'))}")
    if "run_ids" in state and not all(isinstance(r, str) for r in state["run_ids"]):
        damaged.append("'run_ids' holds values that are not run ids")
        del state["run_ids"]
    if "slots" in state:
        state["slots"], bad = _check_slots(state["slots"])
        damaged += bad
    if damaged:
        state["damaged"] = damaged
    return state


def _check_slots(slots: list) -> tuple[list[dict], list[str]]:
    good, bad = [], []
    for i, slot in enumerate(slots):
        if not isinstance(slot, dict):
            bad.append(f"slot {i} is {_show(slot)}")
            continue
        wrong = [k for k, types in SLOT_FIELDS.items() if k in slot and not _fits(slot[k], types)]
        if wrong or "id" not in slot:
            bad.append(f"slot {i} has " + (", ".join(f"{k!r} = {_show(slot[k])}" for k in wrong) or "no 'id'"))
            continue
        good.append({"device": "?", "threads": 1} | slot)
    return good, bad


def read_state_file(path: Path) -> dict | None:
    """None when there is no state file (no runner ever worked on this results file)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"damaged": [f"it cannot be read ({exc.strerror})"]}
    if not text.strip():
        return {"damaged": ["it is empty"]}
    try:
        raw = json.loads(text)
    except ValueError as exc:
        return {"damaged": [f"it is not valid JSON ({exc})"]}
    return check_state(raw)


def damage_message(path: Path, state: dict | None) -> str | None:
    """One sentence for a damaged state file, with what to do; None when it is sound."""
    if not state or not state.get("damaged"):
        return None
    return (f"the runner state file {path} is damaged: " + "; ".join(state["damaged"])
            + ". Only the runner writes it: if no runner works on this results file, delete it"
              " (stilts resume still finds the last sweep in the sweeps folder)")
