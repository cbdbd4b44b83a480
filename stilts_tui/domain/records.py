"""The domain's typed records: a run's status, and the store's record of a run. The store keeps
plain JSON (an older file still reads); these types say what its fields are."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict


class RunStatus(StrEnum):
    """Where a run stands. A StrEnum: stored as its plain string, equal to it when compared."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    BLOCKED = "blocked"


class Failure(TypedDict, total=False):
    attempt: int
    reason: str
    message: str
    t: float
    slot: str


class RunRecord(TypedDict, total=False):
    """One run in the results file: the grouping fields at the top level, the full config inside.
    Fields appear as the run goes on; none is required of a record an older version wrote."""

    run_id: str
    kind: str
    intermediate: str
    target: str
    model: str
    lr: float
    batch_size: int
    warmup_ratio: float
    seed: int
    epochs: int
    max_length: int
    train_size: int | None
    init_from: str | None
    spec: str
    config: dict[str, Any]
    events_path: str
    output_dir: str
    status: str
    attempts: int
    retries: int
    reason: str | None
    message: str | None
    failures: list[Failure]
    stderr_tail: list[str]
    started_at: float
    finished_at: float
    pid: int | None
    slot: str | None
    device: str | None
    device_name: str | None    # the GPU's name, or "cpu" (estimates match throughput by it)
    score: float | None         # null in a record of a run not (yet) finished
    metric: str
    metrics: dict[str, Any]
    wall_s: float | None
    executor: str
    slurm_job: str | None
    slurm_name: str
    queue_state: str | None
    requeues: int
    fused_group: list[str] | None   # the run ids it trained with as one fused model (itself among them)
    fused_note: str | None          # why it trained alone although its sweep asked for fusion
