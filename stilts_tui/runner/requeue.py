"""Which runs a user's retry queues again: the run, and what it needs to start (retry.py holds the
policy for a failed attempt; this is the request of a person).

One rule for the runner (a request dropped while it works) and for `stilts retry` with no runner,
so a retried target is never blocked at once by the intermediate it starts from:

- a target whose intermediate failed, was stopped or was blocked: the intermediate runs again first;
- a target whose intermediate finished but whose checkpoint is gone: only with ``retrain``, which
  trains the intermediate again (same run id, same settings);
- ``retrain`` on an intermediate: it trains again even if it finished, and the targets blocked
  waiting for it are queued behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stilts_tui.domain.records import RunStatus
from stilts_tui.errors import StiltsError

AGAIN = (RunStatus.FAILED, RunStatus.STOPPED, RunStatus.BLOCKED)


@dataclass
class RetryPlan:
    run_ids: list[str] = field(default_factory=list)   # in the order they should be queued
    why: dict[str, str] = field(default_factory=dict)  # run id -> "retry" | "retrain" | "needed by ..."


def checkpoint_gone(parent: dict, child: dict) -> bool:
    ckpt = (child.get("config") or {}).get("init_checkpoint")
    return parent.get("status") == RunStatus.FINISHED and bool(ckpt) and not Path(str(ckpt)).is_dir()


def retry_plan(records: dict[str, dict], run_id: str, db: Path, retrain: bool = False) -> RetryPlan:
    """The runs to queue again for `stilts retry [--retrain] run_id`; a StiltsError says why none."""
    rec = records.get(run_id)
    if rec is None:
        raise StiltsError(f"no run {run_id} in {db}", f"list them with stilts results --runs --db {db}")
    status = rec.get("status")
    plan = RetryPlan()
    if status in (RunStatus.RUNNING, RunStatus.QUEUED):
        raise StiltsError(f"run {run_id} is {status}: nothing to retry", f"watch it with stilts status --db {db}")
    parent_id = (rec.get("config") or {}).get("init_from")
    parent = records.get(parent_id or "")
    if parent is not None and checkpoint_gone(parent, rec) and not retrain:
        raise StiltsError(f"run {run_id} starts from intermediate {parent_id}, which finished but whose checkpoint is gone",
                          f"train the intermediate again, then this run: stilts retry --retrain {run_id} --db {db}")
    if parent is not None and (parent.get("status") in AGAIN or checkpoint_gone(parent, rec)):
        plan.run_ids.append(str(parent_id))
        plan.why[str(parent_id)] = "retrain" if parent.get("status") == RunStatus.FINISHED else f"needed by {run_id}"
    if status == RunStatus.FINISHED:
        if not (retrain and rec.get("kind") == "intermediate"):
            hint = f"; to train this intermediate again: stilts retry --retrain {run_id} --db {db}" \
                if rec.get("kind") == "intermediate" else ""
            raise StiltsError(f"run {run_id} is finished: nothing to retry{hint}")
        plan.why[run_id] = "retrain"
    else:
        plan.why[run_id] = "retry"
    plan.run_ids.append(run_id)
    if retrain and rec.get("kind") == "intermediate":
        for other in records.values():
            if other.get("status") == RunStatus.BLOCKED and (other.get("config") or {}).get("init_from") == run_id:
                plan.run_ids.append(other["run_id"])
                plan.why[other["run_id"]] = f"waited for {run_id}"
    return plan
