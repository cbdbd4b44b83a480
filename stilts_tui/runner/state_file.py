"""The runner's state file, checked field by field when read.

Only the runner writes it (atomically), but it is a plain JSON file beside the results: edited by
hand, restored from another machine or cut short by a full disk, it can hold anything. A field of
the wrong type is dropped and named under ``"damaged"``, so every reader (status, stop, resume,
the app) sees what it can trust and can say what is wrong instead of failing on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stilts_tui.settings import fits

STATUSES = ("starting", "running", "stopping", "stopped", "finished", "crashed")
LIVE = ("starting", "running", "stopping")

# field -> the type it holds, checked by the project's one checker (settings.fits)
FIELDS: dict[str, Any] = {
    "pid": int, "create_time": float | None, "status": str, "name": str | None, "db": str | None,
    "sweep_file": str | None, "started_at": float | None, "heartbeat": float | None,
    "ended_at": float | None, "run_ids": list[str], "counts": dict, "pending": int, "executor": str | None,
    "slots": list, "stalls": dict, "stall_limit_s": float | None, "stop_reason": str | None,
    "disk_full": dict | None, "error": str | None,
}
SLOT_FIELDS: dict[str, Any] = {"id": str, "device": str, "threads": int, "worker_pid": int | None,
                               "run_id": str | None, "since": float | None}


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
        hint = FIELDS.get(key)
        if hint is None:
            state[key] = value  # a field of a later version: kept, not relied on
        elif fits(value, hint):
            state[key] = value
        else:
            damaged.append(f"{key!r} is {_show(value)}")
    if "status" in state and state["status"] not in STATUSES:
        damaged.append(f"'status' is {_show(state.pop('status'))}")
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
        wrong = [k for k, hint in SLOT_FIELDS.items() if k in slot and not fits(slot[k], hint)]
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
