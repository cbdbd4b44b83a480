"""The second study's task heads on a shared encoder, as jiant taskmaster_v1 builds them.

The encoder's top layer goes through the sentence encoder's dropout (the grid's ``dropout`` axis:
models.py l. 199 and 219, ``SentenceEncoder(..., dropout=args.dropout)``) and then into the head:

- first token + linear layer: pooling "first" and ``classifier = log_reg`` for RoBERTa fine-tuning
  (utils.py l. 77-99, base_roberta.conf l. 20, models.py l. 819-822 ``project_before_pooling``
  off); MultiRC and ReCoRD score each candidate with it over two classes (models.py l. 784-805).
- WiC: the first token and the mean vector of the marked word in each sentence, concatenated
  (models.py l. 726-731, simple_modules.py ``SingleClassifier``).
- span QA: one linear projection each for start and end over every token, loss the mean of the
  two cross-entropies (models.py l. 536-540 and 963-981).
- tagging: a linear layer over the tokens, loss on each word's first piece (models.py l. 748-751,
  1103-1136).
- span classification: per span a width-1 projection and AllenNLP's self-attentive span pooling,
  concatenated into a classifier, sigmoid (edge probing) or softmax (WSC) loss
  (modules/edge_probing.py, modules/span_modules.py).

``transfer = "frozen_mix"`` is jiant's probing variant (``transfer_paradigm = frozen`` with
``pytorch_transformers_output_mode = mix``, transfer_analysis.sh l. 300-317): the encoder's weights
stay fixed, a learned scalar mix of every layer's output, embeddings included, replaces the top layer
(pytorch_transformers_interface/modules.py l. 69-86, 142-149: AllenNLP's ``ScalarMix(n_layers + 1,
do_layer_norm=False)``), and the first-token heads project to ``d_proj = 512`` before pooling
(models.py l. 819-822: ``project_before_pooling`` is on unless fine-tuning; defaults.conf l. 361).

The encoder sits under the architecture's own prefix (``roberta.``, ``bert.``), so hand-off and
checkpoints treat these models exactly like transformers' own heads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from stilts_tui.tasks import Task
from stilts_tui.tasks.encode_heads import IGNORE


@dataclass
class HeadOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor


def _loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    return F.cross_entropy(logits, labels) if labels is not None else None


def span_mask(spans: torch.Tensor, length: int) -> torch.Tensor:
    """Which of ``length`` positions lie in each [start, end] span (inclusive; start -1: padding)."""
    pos = torch.arange(length, device=spans.device)
    start, end = spans[..., :1], spans[..., 1:]
    return (pos >= start) & (pos <= end) & (start >= 0)


D_PROJ = 512  # defaults.conf l. 361: the projection before pooling of a frozen encoder


def _pool_first(d: int, project: bool) -> tuple[nn.Module, int]:
    """jiant's Pooler with pool_type "first": an optional linear projection, then the first token."""
    return (nn.Linear(d, D_PROJ), D_PROJ) if project else (nn.Identity(), d)


class FirstTokenHead(nn.Module):
    def __init__(self, d: int, n: int, project: bool = False) -> None:
        super().__init__()
        self.project, width = _pool_first(d, project)
        self.classifier = nn.Linear(width, n)

    def forward(self, hidden, mask, labels=None, **_):
        logits = self.classifier(self.project(hidden[:, 0]))
        return HeadOutput(_loss(logits, labels), logits)


def _span_mean(hidden: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """Mean vector of tokens [start, end] (inclusive) per row; the first token where none is marked."""
    inside = span_mask(spans, hidden.size(1)).to(hidden.dtype)
    inside[:, 0] += (inside.sum(1) == 0).to(hidden.dtype)  # jiant: the first element of the mask is never zero
    return (inside.unsqueeze(-1) * hidden).sum(1) / inside.sum(1, keepdim=True)


class ChoiceHead(nn.Module):
    """Multiple choice: each choice's first token scored by one linear unit (models.py l. 754-764)."""

    def __init__(self, d: int, project: bool = False) -> None:
        super().__init__()
        self.project, width = _pool_first(d, project)
        self.classifier = nn.Linear(width, 1)

    def forward(self, hidden, mask, labels=None, choices: int = 1, **_):
        logits = self.classifier(self.project(hidden[:, 0])).view(-1, choices)
        return HeadOutput(_loss(logits, labels), logits)


class SpanVectorHead(nn.Module):
    def __init__(self, d: int, n: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(3 * d, n)

    def forward(self, hidden, mask, span_a, span_b, labels=None, **_):
        features = torch.cat([hidden[:, 0], _span_mean(hidden, span_a), _span_mean(hidden, span_b)], dim=-1)
        logits = self.classifier(features)
        return HeadOutput(_loss(logits, labels), logits)


class SpanQAHead(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.span_start = nn.Linear(d, 1)
        self.span_end = nn.Linear(d, 1)

    def forward(self, hidden, mask, start_positions=None, end_positions=None, **_):
        logits = torch.cat([self.span_start(hidden), self.span_end(hidden)], dim=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(logits[..., 0], start_positions) + F.cross_entropy(logits[..., 1], end_positions)) / 2
        return HeadOutput(loss, logits)


class TaggingHead(nn.Module):
    def __init__(self, d: int, n: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(d, n)

    def forward(self, hidden, mask, labels=None, **_):
        logits = self.classifier(hidden)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels[:, : logits.size(1)].flatten(), ignore_index=IGNORE)
        return HeadOutput(loss, logits)


class SelfAttentiveSpan(nn.Module):
    """AllenNLP 0.8's SelfAttentiveSpanExtractor: one attention logit per token, softmax over the
    span's tokens, the weighted sum of their vectors."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.attention = nn.Linear(d, 1)

    def forward(self, seq: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        inside = span_mask(spans, seq.size(1))                               # (B, T, L)
        logits = self.attention(seq).squeeze(-1).unsqueeze(1)                # (B, 1, L)
        # The dtype's lowest value, not -inf: a padded target (no token inside) gets a uniform
        # softmax and no NaN in its gradient, then the mask zeroes it.
        weights = torch.softmax(logits.masked_fill(~inside, torch.finfo(logits.dtype).min), dim=-1) * inside
        return weights @ seq                                                 # (B, T, d)


class SpanClassificationHead(nn.Module):
    def __init__(self, d: int, task: Task) -> None:
        super().__init__()
        proj, n = task.span_proj_dim, task.num_labels
        self.num_spans = task.num_spans
        self.multi_label = task.multi_label
        self.projections = nn.ModuleList([nn.Linear(d, proj) for _ in range(task.num_spans)])
        self.extractors = nn.ModuleList([SelfAttentiveSpan(proj) for _ in range(task.num_spans)])
        width = proj * task.num_spans
        if task.span_mlp:  # simple_modules.py Classifier "mlp"
            self.classifier: nn.Module = nn.Sequential(nn.Linear(width, proj), nn.Tanh(), nn.LayerNorm(proj),
                                                       nn.Dropout(task.span_dropout), nn.Linear(proj, n))
        else:
            self.classifier = nn.Linear(width, n)

    def forward(self, hidden, mask, spans1, spans2=None, span_labels=None, **_):
        spans = [spans1, spans2][: self.num_spans]
        pooled = [ext(proj(hidden), s) for proj, ext, s in zip(self.projections, self.extractors, spans, strict=True)]
        logits = self.classifier(torch.cat(pooled, dim=-1))                 # (B, T, n)
        loss = None
        if span_labels is not None:
            valid = spans1[..., 0] >= 0
            if not bool(valid.any()):  # every target of the batch was past the budget
                loss = logits.sum() * 0
            elif self.multi_label:
                loss = F.binary_cross_entropy_with_logits(logits[valid], span_labels[valid].to(logits.dtype))
            else:
                loss = F.cross_entropy(logits[valid], span_labels[valid])
        return HeadOutput(loss, logits)


def build_head(task: Task, d: int, project: bool = False) -> nn.Module:
    if task.head == "multiple_choice":
        return ChoiceHead(d, project)
    if task.head in ("classification", "candidates"):
        return FirstTokenHead(d, task.num_labels, project)
    if task.head == "span_vector":
        return SpanVectorHead(d, task.num_labels)
    if task.head == "span_qa":
        return SpanQAHead(d)
    if task.head == "tagging":
        return TaggingHead(d, task.num_labels)
    if task.head == "span_classification":
        return SpanClassificationHead(d, task)
    raise ValueError(f"no head module for {task.head}")


class _Scalars(nn.ParameterList):
    """The mix's scalars, one parameter each, as AllenNLP keeps them."""

    def copy_(self, values: torch.Tensor) -> _Scalars:
        """Set every scalar from one tensor of them (under ``torch.no_grad``)."""
        for p, v in zip(self, values, strict=True):
            p.copy_(v.reshape(1))
        return self


class ScalarMix(nn.Module):
    """AllenNLP 0.8.4's ScalarMix without layer norm: ``gamma * sum_k softmax(s)_k * layer_k``, the
    scalars starting at 0 (an even mix) and gamma at 1. Each scalar is a parameter of its own
    (allennlp/modules/scalar_mix.py l. 32-36: a ``ParameterList`` of one-element tensors), so an
    optimizer that works per tensor, as BertAdam's clipping of each gradient to norm 1 does, acts on
    each scalar alone, not on the whole vector."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.scalar_parameters = _Scalars([nn.Parameter(torch.zeros(1)) for _ in range(n)])
        self.gamma = nn.Parameter(torch.ones(1))

    def forward(self, layers: tuple[torch.Tensor, ...]) -> torch.Tensor:
        # scalar_mix.py l. 61-69: softmax over the concatenated scalars, each layer weighed by its own
        weights = torch.softmax(torch.cat(list(self.scalar_parameters)), dim=0)
        return self.gamma * torch.stack(layers, dim=0).mul(weights.view(-1, *([1] * layers[0].dim()))).sum(0)


class EncoderWithHead(nn.Module):
    """An encoder (transformers' AutoModel) under its architecture's prefix, the sentence
    encoder's dropout, and a task head; with ``frozen_mix``, a fixed encoder read through a
    learned mix of its layers."""

    base_model_prefix: str
    config: Any

    def __init__(self, encoder: nn.Module, head: nn.Module, dropout: float, frozen_mix: bool = False) -> None:
        super().__init__()
        self.base_model_prefix = str(encoder.base_model_prefix)
        setattr(self, self.base_model_prefix, encoder)
        self.config = encoder.config
        self.dropout = nn.Dropout(dropout)
        self.head = head
        self.frozen_mix = frozen_mix
        if frozen_mix:
            encoder.requires_grad_(False)
            self.scalar_mix = ScalarMix(int(self.config.num_hidden_layers) + 1)

    @property
    def encoder_module(self) -> nn.Module:
        return getattr(self, self.base_model_prefix)

    def forward(self, input_ids, attention_mask, token_type_ids=None, **targets) -> HeadOutput:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if input_ids.dim() == 3:  # multiple choice: every choice through the encoder on its own
            targets["choices"] = input_ids.size(1)
            inputs = {k: v.flatten(0, 1) for k, v in inputs.items()}
        if self.frozen_mix:
            with torch.no_grad():  # no gradient ever reaches the frozen weights: keep no graph for them
                layers = self.encoder_module(**inputs, output_hidden_states=True).hidden_states
            hidden = self.scalar_mix(layers)
        else:
            hidden = self.encoder_module(**inputs).last_hidden_state
        return self.head(self.dropout(hidden), inputs["attention_mask"], **targets)

    def save_pretrained(self, folder: str | Path) -> None:
        """The encoder's config and every weight in one safetensors file (what hand-off reads)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(folder)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))
        (folder / "stilts_head.json").write_text(json.dumps({"head": type(self.head).__name__}))


def load_encoder(base: str, attn: str | None):
    from transformers import AutoModel

    kwargs: dict[str, Any] = {"attn_implementation": attn} if attn else {}
    try:  # the head pools for itself: no pooler weights that would never train
        return AutoModel.from_pretrained(base, add_pooling_layer=False, **kwargs)
    except TypeError:
        return AutoModel.from_pretrained(base, **kwargs)


def build_head_model(task: Task, base: str, dropout: float, attn: str | None, frozen_mix: bool = False) -> EncoderWithHead:
    encoder = load_encoder(base, attn)
    return EncoderWithHead(encoder, build_head(task, encoder.config.hidden_size, project=frozen_mix), dropout, frozen_mix)
