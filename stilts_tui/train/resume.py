"""Mid-run training state, so a run stopped part-way (a Slurm job preempted or out of time, a
killed worker) continues from its last saved step instead of from scratch.

The state is saved at optimizer-step boundaries only: weights, AdamW moments, the schedule, the
loss scaler, the step, where in the epoch's shuffled order the run was (the shuffling
generator's state at the start of that epoch and the number of batches done) and the RNG states
(dropout). Restored, the run takes exactly the steps it would have taken without the stop.

Saves are periodic (`RunConfig.resume_every_s`) and on request (`save_active`, what the Slurm
job's checkpoint hook calls when the job is told it will be stopped). A request that arrives in
the middle of a weight update is refused rather than saving a half-updated model; the last
periodic save then stands. The file is written atomically and removed when the run ends."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from stilts_tui.fileio import atomic_write

FILE_NAME = "resume.pt"
FORMAT = 1


@dataclass
class Position:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0                 # effective batches of `epoch` already done
    epoch_generator: torch.Tensor | None = None
    counters: dict = field(default_factory=dict)  # seqs, tokens, train_time, last_loss


class ResumeState:
    """One run's resumable state: what the training loop marks after each step and saves."""

    def __init__(self, path: Path, run_id: str, every_s: float, model, optimizer, scheduler, scaler) -> None:
        self.path = path
        self.run_id = run_id
        self.every_s = every_s
        self.model, self.optimizer, self.scheduler, self.scaler = model, optimizer, scheduler, scaler
        self.position = Position()
        self.rng: dict = _rng_state()
        self.updating = False       # True while weights and moments are being changed
        self.saving = False
        self.last_save = time.monotonic()
        self.saves = 0

    # -- the training loop's side ------------------------------------------------------------

    def mark(self, position: Position) -> None:
        """A step is complete: the model now matches `position`."""
        self.position = position
        self.rng = _rng_state()
        if self.every_s > 0 and time.monotonic() - self.last_save >= self.every_s:
            self.save()

    def save(self) -> bool:
        # `saving`: a stop's save request arriving during a periodic save leaves that one to finish
        if self.updating or self.saving or self.position.step == 0:
            return False
        self.saving = True
        try:
            return self._save()
        finally:
            self.saving = False

    def _save(self) -> bool:
        p = self.position
        state = {"format": FORMAT, "run_id": self.run_id, "step": p.step, "epoch": p.epoch,
                 "batch_in_epoch": p.batch_in_epoch, "epoch_generator": p.epoch_generator, "counters": p.counters,
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict() if self.scaler else None,
                 "rng": self.rng, "saved_at": time.time()}
        try:
            atomic_write(self.path, lambda fh: torch.save(state, fh))
        except OSError:
            return False  # a full disk costs the save, never the run
        self.last_save = time.monotonic()
        self.saves += 1
        return True

    # -- restoring -----------------------------------------------------------------------------

    def restore(self, device: torch.device) -> Position | None:
        """Load a saved state of this run into the model, optimizer and schedule; None if there
        is none (or it belongs to another run or format)."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location=device, weights_only=False)
        except Exception:  # noqa: BLE001 - a torn or foreign file is ignored, the run starts over
            return None
        if state.get("format") != FORMAT or state.get("run_id") != self.run_id:
            return None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.rng = state["rng"]
        self.position = Position(state["step"], state["epoch"], state["batch_in_epoch"], state["epoch_generator"],
                                 state["counters"])
        return self.position

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def _rng_state() -> dict:
    state: dict[str, torch.Tensor | list[torch.Tensor]] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# The run in progress in this process, for a signal-time save request.
ACTIVE: ResumeState | None = None


def save_active() -> bool:
    """Save the run in progress now, if there is one and it is between weight updates."""
    return ACTIVE.save() if ACTIVE is not None else False
