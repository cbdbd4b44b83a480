"""What the runner asks of wherever runs execute. Two implementations: `LocalExecutor` (a warm
worker process per slot of this machine, runner/local.py) and `SlurmExecutor` (one Slurm job per
run or per pack of runs, runner/slurm_executor.py). The runner keeps the queue, the store and the
retry policy; an executor only starts runs, reports what their workers say, and stops them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from stilts_tui.runner.slots import Slot
from stilts_tui.train.config import RunConfig

if TYPE_CHECKING:
    from stilts_tui.store import Store
    from stilts_tui.train.events import Event


class Handle(Protocol):
    """One attempt of one run, in flight (a local Worker, or a run inside a Slurm job)."""

    run: RunConfig | None
    attempt: int
    slot: Slot
    stop_requested: bool
    assigned_at: float | None
    ready_at: float | None


class Host(Protocol):
    """The runner, as an executor sees it."""

    store: Store
    pending: dict[str, RunConfig]
    dirty: bool
    env: dict[str, str] | None
    counts: dict[str, int]

    def ready(self) -> list[RunConfig]: ...
    def handle(self, h: Handle, ev: Event) -> None: ...
    def record_failure(self, h: Handle, reason: str, message: str, tail: list[str]) -> None: ...
    def keep_finished(self, h: Handle, events: list[Event]) -> bool: ...


class Executor(Protocol):
    kind: str  # "local" or "slurm": written to the runner's state file

    def reattach(self, cfg: RunConfig, rec: dict) -> bool:
        """A run an earlier runner left running: follow it again (True) or let it be re-queued."""
        ...

    def assign(self) -> None:
        """Hand ready runs (host.ready()) to free capacity."""
        ...

    def wait(self, timeout: float) -> None:
        """Up to `timeout` seconds: pass the workers' events to host.handle, and report attempts
        that ended without saying so through host.record_failure."""
        ...

    def busy(self) -> set[str]:
        """Run ids in flight."""
        ...

    def in_flight(self) -> bool: ...

    def stop_run(self, run_id: str) -> None: ...

    def running(self) -> list[tuple[RunConfig, int, float]]:
        """Runs executing now (not waiting in a queue): (config, attempt, since when), for the
        stall watch (runner/stall.py)."""
        ...

    def kill_stalled(self, run_id: str) -> None:
        """End a run that stopped making progress; its failure is then recorded as `stalled`."""
        ...

    def reap(self) -> None:
        """Escalate stops that were asked for a while ago (terminate, then kill)."""
        ...

    def slots_state(self) -> list[dict]:
        """What runs where, for the state file (`stilts status`)."""
        ...

    def shutdown(self, cancel: bool) -> None:
        """Stop everything; runs in flight go back to the queue. `cancel`: the user stopped the
        sweep (Slurm jobs are cancelled then; otherwise they are left to run, and re-attached)."""
        ...

