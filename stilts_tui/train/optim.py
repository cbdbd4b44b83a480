"""The optimizers a run can use.

``torch_adamw`` is ``torch.optim.AdamW`` (fused on a GPU). ``hf_adamw`` is the AdamW of
transformers 4.3.2 (``transformers/optimization.py``), the one Chang & Lu's run.py imports (run.py
l. 21, 78; requirements.txt pins transformers 4.3.2). The two differ in where epsilon enters:
transformers adds it to sqrt(v) *before* the bias correction is folded into the step size, so its
effective epsilon is eps / sqrt(1 - beta2^t) (3.2e-7 at step 1, still 1.4e-8 at step 1,000);
torch adds it after. With weight decay 0 (the study's) that is the only difference.

``bert_adam`` is the second study's: jiant taskmaster_v1 names it (base_roberta.conf l. 25) and AllenNLP
0.8.4 registers pytorch-pretrained-bert 0.6.2's ``BertAdam`` under that name (environment.yml pins
allennlp 0.8.4, which requires pytorch-pretrained-bert >= 0.6). Its step
(pytorch_pretrained_bert/optimization.py, ``BertAdam.step``): each tensor's gradient clipped to norm
1.0 on its own, Adam moments *without* bias correction, ``m / (sqrt(v) + e)`` plus weight decay times
the weight (every tensor: jiant passes no parameter groups), times the scheduled lr. Its schedule
(``WarmupLinearSchedule``) is ``bert_warmup_linear`` below, driven by the step count *before* the
step, so the first update has lr 0.

``amsgrad`` is the edge-probing runs' optimizer: base_edgeprobe.conf sets no optimizer, so
defaults.conf l. 141's ``adam`` applies, which jiant builds with ``amsgrad = True`` (trainer.py
l. 123-125): torch's Adam, AMSGrad variant, eps 1e-8, no weight decay, at a constant learning rate
(``lr_patience = 10000`` turns the plateau decay off, base_edgeprobe.conf l. 14)."""

from __future__ import annotations

import math

import torch


class _ForeachAdam(torch.optim.Optimizer):
    """The Adam family on foreach kernels: every tensor of a group updated at once."""

    MOMENTS = ("exp_avg", "exp_avg_sq")  # state names (kept: resume files of earlier runs hold them)

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(group, params, [p.grad for p in params])
        return loss

    def _step_group(self, group: dict, params: list, grads: list) -> None:
        raise NotImplementedError

    def _moments(self, group: dict, params: list, grads: list) -> tuple[list, list]:
        """Count the step and fold ``grads`` into both moving averages; returns (m, v)."""
        m_key, v_key = self.MOMENTS
        for p in params:
            if not self.state[p]:
                self.state[p].update({"step": 0, m_key: torch.zeros_like(p), v_key: torch.zeros_like(p)})
            self.state[p]["step"] += 1
        beta1, beta2 = group["betas"]
        ms = [self.state[p][m_key] for p in params]
        vs = [self.state[p][v_key] for p in params]
        torch._foreach_mul_(ms, beta1)
        torch._foreach_add_(ms, grads, alpha=1.0 - beta1)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, grads, grads, value=1.0 - beta2)
        return ms, vs


class HFAdamW(_ForeachAdam):
    """transformers 4.3.2 AdamW with correct_bias=True."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def _step_group(self, group: dict, params: list, grads: list) -> None:
        exp_avgs, exp_avg_sqs = self._moments(group, params, grads)
        beta1, beta2 = group["betas"]
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_add_(denom, group["eps"])
        sizes = []
        for p in params:
            t = self.state[p]["step"]
            sizes.append(-group["lr"] * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t))
        torch._foreach_addcdiv_(params, exp_avgs, denom, sizes)
        if group["weight_decay"] > 0.0:
            torch._foreach_add_(params, params, alpha=-group["lr"] * group["weight_decay"])


class BertAdam(_ForeachAdam):
    """pytorch-pretrained-bert 0.6.2's BertAdam; the learning rate arrives already scheduled (the
    loop's LambdaLR with ``bert_warmup_linear``), which is the same product BertAdam forms inside."""

    MOMENTS = ("next_m", "next_v")

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.01, tensor_max_norm: float = 1.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "tensor_max_norm": tensor_max_norm})

    def _step_group(self, group: dict, params: list, grads: list) -> None:
        if group["tensor_max_norm"] > 0:
            # clip_grad_norm_(p, max_grad_norm) on each tensor alone: coef = max / (norm + 1e-6) when < 1
            norms = torch._foreach_norm(grads)
            torch._foreach_mul_(grads, [torch.clamp(group["tensor_max_norm"] / (n + 1e-6), max=1.0) for n in norms])
        ms, vs = self._moments(group, params, grads)  # no bias correction
        update = torch._foreach_div(ms, torch._foreach_add(torch._foreach_sqrt(vs), group["eps"]))
        if group["weight_decay"] > 0.0:
            torch._foreach_add_(update, params, alpha=group["weight_decay"])
        torch._foreach_add_(params, update, alpha=-group["lr"])


def bert_warmup_linear(progress: float, warmup: float) -> float:
    """pytorch-pretrained-bert 0.6.2 ``WarmupLinearSchedule.get_lr_``: up to 1 over the warmup
    fraction, then down to 0 at ``progress`` 1 (and 0 after)."""
    if progress < warmup:
        return progress / warmup
    return max((progress - 1.0) / (warmup - 1.0), 0.0)


def build_optimizer(name: str, params, lr: float, eps: float, weight_decay: float, fused: bool) -> torch.optim.Optimizer:
    if name == "hf_adamw":
        return HFAdamW(params, lr=lr, eps=eps, weight_decay=weight_decay)
    if name == "bert_adam":
        return BertAdam(params, lr=lr, eps=eps, weight_decay=weight_decay)
    if name == "amsgrad":
        return torch.optim.Adam(params, lr=lr, eps=eps, weight_decay=weight_decay, amsgrad=True)
    return torch.optim.AdamW(params, lr=lr, eps=eps, weight_decay=weight_decay, fused=fused)


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, warmup_ratio: float, warmup_steps: int,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """transformers' linear warmup and decay (warmup steps floored, as run.py); for ``bert_adam``
    its own schedule over the fraction ``step / total_steps`` (no rounding of the warmup); for
    ``amsgrad`` jiant's constant rate."""
    if name == "amsgrad":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    if name == "bert_adam":
        total = max(total_steps, 1)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: bert_warmup_linear(s / total, warmup_ratio))
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
