"""The retry policy, table-driven: (failure reason, attempt, limits) -> retry with which device
batch, or give up and why."""

from __future__ import annotations

import pytest

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.retry import NOT_RETRIED, Attempt, Decision, decide

BASE = {"retries": 0, "max_retries": 2, "device_batch": 16, "can_shrink": True}

CASES = [
    # the user stopped it: whatever it died of, it is stopped, never retried
    ({"reason": "killed", "stop_requested": True}, Decision("stopped")),
    ({"reason": "oom", "stop_requested": True}, Decision("stopped")),
    # out of memory: halve the device batch (accumulation keeps the effective batch), however many retries
    ({"reason": "oom"}, Decision("shrink", device_batch=8)),
    ({"reason": "oom", "retries": 5, "device_batch": 3}, Decision("shrink", device_batch=1)),
    ({"reason": "oom", "device_batch": 1, "can_shrink": False},
     Decision("give_up", "not retried: out of memory even with a device batch of 1")),
    ({"reason": "oom", "device_batch": 4, "can_shrink": False, "fixed_device_batch": 4},
     Decision("give_up", "not retried: the study fixes its device batch at 4 (device_batch), which a smaller one "
                         "would change; give it a device with more memory")),
    # failures the same run would meet again
    *[({"reason": r}, Decision("give_up", f"not retried: {why}")) for r, why in NOT_RETRIED.items()],
    # a full disk is not the run's fault: back to the queue, its retries untouched, however many were spent
    ({"reason": "disk_full"}, Decision("requeue")),
    ({"reason": "disk_full", "retries": 2}, Decision("requeue")),
    ({"reason": "disk_full", "stop_requested": True}, Decision("stopped")),
    # a run that stalled is killed and retried like any transient failure, within the budget
    ({"reason": "stalled"}, Decision("retry")),
    ({"reason": "stalled", "retries": 2}, Decision("give_up", "gave up after 2 retries")),
    # anything else: retried until the budget is spent
    ({"reason": "killed"}, Decision("retry")),
    ({"reason": "error", "retries": 1}, Decision("retry")),
    ({"reason": "error", "retries": 2}, Decision("give_up", "gave up after 2 retries")),
    ({"reason": "killed", "max_retries": 0}, Decision("give_up", "gave up after 0 retries")),
]


@pytest.mark.parametrize("attempt, expected", CASES, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_retry_policy(attempt, expected):
    assert decide(Attempt(**(BASE | attempt))) == expected


def test_the_policy_reads_the_run_config_the_same_way_the_runner_does():
    free = RunConfig(kind="target", model="m", task="rte", batch_size=32, max_device_batch=32)
    fixed = RunConfig(kind="target", model="m", task="socialiqa", batch_size=16, device_batch=4)
    d = decide(Attempt("oom", 0, 2, free.micro_batch()[0], free.can_shrink_device_batch(), free.device_batch))
    assert d == Decision("shrink", device_batch=16) and d.retried
    d = decide(Attempt("oom", 0, 2, fixed.micro_batch()[0], fixed.can_shrink_device_batch(), fixed.device_batch))
    assert d.action == "give_up" and "fixes its device batch at 4" in d.why and not d.retried
