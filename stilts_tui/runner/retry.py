"""The retry policy, as a pure function: what to do with a run whose attempt just failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Failures that the same run would meet again: never retried, with the reason said to the user.
NOT_RETRIED = {"nan_loss": "the same seed would fail the same way", "data_error": "the data must be fixed first",
               "unavailable": "the model cannot be fetched from here (offline, not in the cache): another try cannot "
                              "fetch it either",
               "timeout": "the same time limit would end it again; raise time_min in [slurm]",
               "host_oom": "the job's memory limit would end it again; raise mem_gb in [slurm]"}


@dataclass(frozen=True)
class Attempt:
    """What the policy needs to know of a failed attempt."""

    reason: str                      # oom, nan_loss, data_error, disk_full, killed, stalled, error, timeout, host_oom, ...
    retries: int                     # retries already spent on this run
    max_retries: int
    device_batch: int                # the device batch the attempt ran with
    can_shrink: bool                 # a smaller device batch computes the same (RunConfig.can_shrink_device_batch)
    fixed_device_batch: int | None = None   # the study's own device batch, when it fixes one
    stop_requested: bool = False     # the user stopped it


@dataclass(frozen=True)
class Decision:
    action: Literal["stopped", "retry", "shrink", "requeue", "give_up"]
    why: str = ""                    # for give_up: why, as shown after the failure's message
    device_batch: int | None = None  # for shrink: the next attempt's device batch

    @property
    def retried(self) -> bool:
        return self.action in ("retry", "shrink", "requeue")


def decide(a: Attempt) -> Decision:
    if a.stop_requested:
        return Decision("stopped")
    if a.reason == "disk_full":  # not the run's fault: it waits in the queue for space, its retries untouched
        return Decision("requeue")
    if a.reason == "oom":
        if a.can_shrink:
            return Decision("shrink", device_batch=a.device_batch // 2)
        if a.fixed_device_batch:
            return Decision("give_up", f"not retried: the study fixes its device batch at {a.fixed_device_batch} "
                                       "(device_batch), which a smaller one would change; give it a device with more memory")
        return Decision("give_up", "not retried: out of memory even with a device batch of 1")
    if a.reason in NOT_RETRIED:
        return Decision("give_up", f"not retried: {NOT_RETRIED[a.reason]}")
    if a.retries < a.max_retries:
        return Decision("retry")
    return Decision("give_up", f"gave up after {a.retries} retries")
