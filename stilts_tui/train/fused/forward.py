"""One forward and one backward through every trial of a group at once.

Each trial's weights stay the leaves of its own module (what its optimizer steps, its resumable
state saves and its checkpoint writes, exactly as alone); for each micro-batch they are stacked
and run through one weightless copy of the model (`functional_call` under `vmap`), so the
gradient lands in each trial's own `.grad`. The micro-batches of the trials (each its own
examples) are padded to one shape: extra tokens are masked, extra rows repeat a real one and
count for nothing in the loss, which is the model's own (cross-entropy over the real rows, their
mean times the micro-batch's weight in its step)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap

from stilts_tui.train.fused import attention
from stilts_tui.train.fused.dropout import keyed, replace_dropout

IGNORE = -100
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PAD = {"attention_mask": 0, "token_type_ids": 0}


@dataclass
class Micro:
    """One trial's part of a fused micro-batch: its collated batch, its weight in its step, its dropout key."""

    batch: dict[str, torch.Tensor]
    weight: float
    key: int


class FusedForward:
    def __init__(self, template: nn.Module, attn: str, pad_token_id: int) -> None:
        attention.register()
        self.base = copy.deepcopy(template).to("meta")
        replace_dropout(self.base)
        self.base.config._attn_implementation = attention.NAMES[attn]  # type: ignore[union-attr]
        nn.Module.train(self.base, True)  # transformers' own train() would kernelize a weightless model
        self.buffers = {k: v for k, v in template.named_buffers()}
        self.names = [n for n, _ in template.named_parameters()]
        self.pad = {"input_ids": pad_token_id, **PAD}

    def _stack(self, micros: list[Micro], device: torch.device) -> dict[str, torch.Tensor]:
        """The trials' batches as one [trials, rows, ...] batch, padded to the longest of each dimension."""
        rows = max(len(m.batch["labels"]) for m in micros)
        length = max(m.batch["input_ids"].shape[-1] for m in micros)
        out: dict[str, list[torch.Tensor]] = {k: [] for k in (*INPUTS, "labels") if k in micros[0].batch}
        for m in micros:
            b = m.batch
            n = len(b["labels"])
            extra = rows - n
            for k in out:
                t = b[k]
                if k != "labels" and t.shape[-1] < length:
                    t = nn.functional.pad(t, (0, length - t.shape[-1]), value=self.pad[k])
                if extra:
                    # Rows that repeat the first: real tokens (no fully masked row), and no loss.
                    fill = torch.full((extra,), IGNORE, dtype=t.dtype) if k == "labels" else t[:1].expand(extra, *t.shape[1:])
                    t = torch.cat([t, fill])
                out[k].append(t)
        return {k: torch.stack(v).to(device) for k, v in out.items()}

    def losses(self, params: list[dict[str, torch.Tensor]], micros: list[Micro], device: torch.device) -> torch.Tensor:
        """Each trial's weighted loss for its micro-batch ([trials]), on the graph of its own weights."""
        stacked = {n: torch.stack([p[n] for p in params]) for n in self.names}
        batch = self._stack(micros, device)
        labels = batch.pop("labels")
        weights = torch.tensor([m.weight for m in micros], dtype=torch.float32, device=device)
        keys = torch.tensor([m.key for m in micros], dtype=torch.int64, device=device)

        def one(p, inputs, y, w, key):
            with keyed(key):
                logits = functional_call(self.base, {**p, **self.buffers}, (), inputs).logits
            per_row = nn.functional.cross_entropy(logits.float(), y, ignore_index=IGNORE, reduction="none")
            return per_row.sum() / (y != IGNORE).sum().clamp(min=1) * w

        return vmap(one, randomness="error")(stacked, batch, labels, weights, keys)
