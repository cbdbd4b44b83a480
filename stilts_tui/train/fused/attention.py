"""The attention a fused forward runs: transformers' own (sdpa or eager, as the run asks), with
two changes vmap needs. The padding mask is always built (transformers skips it when nothing is
padded, a test vmap cannot make per trial), and attention dropout draws from the trial's stream
(dropout.py). Registered under its own names, so unfused models never see it."""

from __future__ import annotations

from typing import Any

import torch

from stilts_tui.train.fused.dropout import trial_dropout

NAMES = {"sdpa": "stilts_fused_sdpa", "eager": "stilts_fused_eager"}


def _math_attention(query, key, value, mask, scaling: float, p: float, training: bool) -> torch.Tensor:
    w = torch.matmul(query, key.transpose(2, 3)) * scaling
    if mask is not None:
        w = w.masked_fill(~mask, torch.finfo(w.dtype).min) if mask.dtype == torch.bool else w + mask
    w = trial_dropout(torch.softmax(w, dim=-1, dtype=torch.float32).to(query.dtype), p, training)
    return torch.matmul(w, value).transpose(1, 2).contiguous()


def _attention(kind: str):
    def forward(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                **kwargs: Any):
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        if dropout > 0.0 and module.training:
            return _math_attention(query, key, value, attention_mask, scale, dropout, True), None
        if kind == "sdpa" and query.device.type != "cpu":
            # PyTorch has no vmap rule for the CPU's fused attention kernel: it would run once per
            # trial, so a CPU computes the same product as batched matrix products instead.
            from transformers.integrations.sdpa_attention import sdpa_attention_forward

            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=scale, **kwargs)
        return _math_attention(query, key, value, attention_mask, scale, 0.0, False), None

    return forward


def _mask(kind: str):
    from transformers.masking_utils import eager_mask, sdpa_mask

    build = sdpa_mask if kind == "sdpa" else eager_mask

    def mask(*args: Any, **kwargs: Any):
        kwargs["allow_is_bidirectional_skip"] = False
        return build(*args, **kwargs)

    return mask


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    for kind, name in NAMES.items():
        AttentionInterface.register(name, _attention(kind))
        AttentionMaskInterface.register(name, _mask(kind))
