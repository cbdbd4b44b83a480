"""Dropout for fused trials: each trial's masks come from its own stream, so that what a trial
computes does not depend on which other trials share its group.

Under `vmap` the trials cannot each have their own `torch.Generator`, and `vmap(randomness=
"different")` draws every trial's mask from one generator, so a trial's masks would change with
its neighbours. Here a mask element is a counter-based hash (splitmix64's finaliser) of the
trial's key — its seed, its step, its micro-batch, which dropout call of the forward — and of the
element's coordinates, one dimension at a time: a trial's real rows and tokens get the same masks
however far the group pads the batch. The masks are Bernoulli(1 - p) as torch's are, but not
torch's draws: with dropout on, a fused trial is the same experiment as the run alone, not the
same numbers (README.md, "Fused trials")."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

_M1 = 0xBF58476D1CE4E5B9 - 2**64  # splitmix64's multipliers, as signed 64-bit integers
_M2 = 0x94D049BB133111EB - 2**64
_GOLDEN = 0x9E3779B97F4A7C15 - 2**64
_DIM = (0x632BE59BD9B4E019, 0x4CF5AD432745937F, 0x2545F4914F6CDD1D, 0x5851F42D4C957F2D, 0x14057B7EF767814F)
_BITS = 24


class _Stream:
    """The current forward's key (a per-trial scalar under vmap) and how many dropout calls it made."""

    key: torch.Tensor | None = None
    calls = 0


STREAM = _Stream()


def _c(value: int, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.int64, device=like.device)


def _mix(h: torch.Tensor) -> torch.Tensor:
    h = h ^ ((h >> 30) & ((1 << 34) - 1))  # logical shifts: int64 shifts are arithmetic
    h = h * _c(_M1, h)
    h = h ^ ((h >> 27) & ((1 << 37) - 1))
    h = h * _c(_M2, h)
    return h ^ ((h >> 31) & ((1 << 33) - 1))


def trial_key(seed: int, step: int, micro: int) -> int:
    """A trial's key for one micro-batch of one step (a Python int, mixed on the host)."""
    h = torch.tensor([seed, step, micro], dtype=torch.int64)
    h = _mix(h + _c(_GOLDEN, h))
    return int(_mix(h[0] + _mix(h[1] + _mix(h[2]))))


@contextlib.contextmanager
def keyed(key: torch.Tensor) -> Iterator[None]:
    STREAM.key, STREAM.calls = key, 0
    try:
        yield
    finally:
        STREAM.key = None


def keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    assert STREAM.key is not None, "a fused forward runs inside keyed()"
    STREAM.calls += 1
    h = _mix(STREAM.key + _c(STREAM.calls, STREAM.key) * _c(_GOLDEN, STREAM.key))
    for d, size in enumerate(x.shape):
        shape = [1] * x.dim()
        shape[d] = size
        coord = torch.arange(size, dtype=torch.int64, device=x.device).view(shape)
        h = _mix(h + coord * _c(_DIM[d % len(_DIM)], coord))
    u = (h & ((1 << _BITS) - 1)).to(torch.float32) / float(1 << _BITS)
    return u >= p


def trial_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    return x * keep_mask(x, p).to(x.dtype) / (1.0 - p)


class TrialDropout(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return trial_dropout(x, self.p, self.training)


def replace_dropout(module: nn.Module) -> None:
    """Every nn.Dropout of `module` (hidden, attention-module and classifier dropout) becomes a TrialDropout."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Dropout):
            setattr(module, name, TrialDropout(child.p))
        else:
            replace_dropout(child)
