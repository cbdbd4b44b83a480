"""The group's driver: every trial in lockstep, one fused forward and backward per micro-batch;
each trial runs its own step, validation and epoch ends in between, and leaves the group when it
is done (finished, stopped early, or failed: a trial's own error ends that trial only)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.train.data import Collator
from stilts_tui.train.events import EventWriter
from stilts_tui.train.fused.forward import FusedForward
from stilts_tui.train.fused.rules import fuse_key, not_fusable
from stilts_tui.train.fused.trial import Shared, Trial
from stilts_tui.train.loop import prepare
from stilts_tui.train.warm import WarmCache

OnEnd = Callable[[RunConfig, "dict | BaseException"], None]
ACTIVE: list[Trial] = []  # the trials in progress, for a stop's save (save_active)


def save_active() -> None:
    """Each trial in progress saves where it is (a stop's request: train/__main__.py)."""
    for t in ACTIVE:
        with contextlib.suppress(Exception):
            t.state.save()


def check_group(cfgs: list[RunConfig], head: str, num_labels: int) -> None:
    keys = {fuse_key(c) for c in cfgs}
    if len(keys) > 1:
        raise StiltsError("the runs of a fused group differ in what they must share (model, data, max length, epochs, "
                          "device batch)", "the runner forms groups by runner/fusing.py: fuse only runs it grouped")
    for c in cfgs:
        why = not_fusable(c, head, num_labels)
        if why and len(cfgs) > 1:
            raise StiltsError(f"run {c.run_id} cannot train fused: {why}", "run it alone")


def _shared(cfg: RunConfig, cache: WarmCache | None) -> Shared:
    from stilts_tui.data.subsample import subsample_indices

    task, device, precision, tokenizer, split = prepare(cfg, cache)
    dev_ds, dev_examples = split("dev")
    train_ds, train_examples = split("train")
    if cfg.train_size:
        train_ds = train_ds.select(subsample_indices(len(train_ds), cfg.train_size, cfg.data_seed))
    collate = Collator(tokenizer.pad_token_id, pad_to_multiple_of=8 if device.type == "cuda" else None)
    return Shared(task, tokenizer, train_ds, list(train_examples), dev_ds, list(dev_examples), device, precision, collate,
                  cache)


def run_group(cfgs: list[RunConfig], writers: list[EventWriter], on_end: OnEnd, cache: WarmCache | None = None) -> None:
    """Train the runs of one group; `on_end` hears each run's metrics, or what ended it, as soon as it ends."""
    shared = _shared(cfgs[0], cache)
    check_group(cfgs, shared.task.head, shared.task.num_labels if shared.task.head == "classification" else 2)
    ids = [c.run_id for c in cfgs]
    trials: list[Trial] = []
    for cfg, events in zip(cfgs, writers, strict=True):
        try:
            trials.append(Trial(cfg, events, shared, ids))
        except Exception as exc:  # noqa: BLE001 - this run fails; the group goes on without it
            on_end(cfg, exc)
    if not trials:
        return
    forward = FusedForward(trials[0].model, "sdpa" if cfgs[0].sdpa else "eager", shared.tokenizer.pad_token_id)
    ACTIVE[:] = trials
    try:
        active = [t for t in trials if _advance(t, on_end)]
        while active:
            losses = forward.losses([t.params for t in active], [t.pending for t in active], shared.device)  # type: ignore[misc]
            losses.sum().backward()
            for t, loss in zip(active, losses, strict=True):
                t.took(loss)
            active = [t for t in active if _advance(t, on_end)]
            ACTIVE[:] = active
    except BaseException as exc:  # the shared forward failed (out of memory, a stop): every trial still in it ends
        for t in ACTIVE:
            on_end(t.cfg, exc)
        if not isinstance(exc, Exception):
            raise
    finally:
        ACTIVE.clear()


def _advance(t: Trial, on_end: OnEnd) -> bool:
    try:
        if t.advance():
            return True
    except Exception as exc:  # noqa: BLE001 - a trial's own failure (nan loss, a full disk) ends it alone
        _leave(t)
        on_end(t.cfg, exc)
        return False
    _leave(t)
    metrics: Any = t.metrics
    on_end(t.cfg, metrics)
    return False


def _leave(t: Trial) -> None:
    if t in ACTIVE:
        ACTIVE.remove(t)
