"""The optimizers a run can use.

``torch_adamw`` is ``torch.optim.AdamW`` (fused on a GPU). ``hf_adamw`` is the AdamW of
transformers 4.3.2 (``transformers/optimization.py``), the one Chang & Lu's run.py imports (run.py
l. 21, 78; requirements.txt pins transformers 4.3.2). The two differ in where epsilon enters:
transformers adds it to sqrt(v) *before* the bias correction is folded into the step size, so its
effective epsilon is eps / sqrt(1 - beta2^t) (3.2e-7 at step 1, still 1.4e-8 at step 1,000);
torch adds it after. With weight decay 0 (the study's) that is the only difference."""

from __future__ import annotations

import math

import torch


class HFAdamW(torch.optim.Optimizer):
    """transformers 4.3.2 AdamW with correct_bias=True, on foreach kernels."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            beta1, beta2 = group["betas"]
            for p in params:
                if not self.state[p]:
                    self.state[p].update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                self.state[p]["step"] += 1
            grads = [p.grad for p in params]
            exp_avgs = [self.state[p]["exp_avg"] for p in params]
            exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
            torch._foreach_mul_(exp_avgs, beta1)
            torch._foreach_add_(exp_avgs, grads, alpha=1.0 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_add_(denom, group["eps"])
            sizes = []
            for p in params:
                t = self.state[p]["step"]
                sizes.append(-group["lr"] * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t))
            torch._foreach_addcdiv_(params, exp_avgs, denom, sizes)
            if group["weight_decay"] > 0.0:
                torch._foreach_add_(params, params, alpha=-group["lr"] * group["weight_decay"])
        return loss


def build_optimizer(name: str, params, lr: float, eps: float, weight_decay: float, fused: bool) -> torch.optim.Optimizer:
    if name == "hf_adamw":
        return HFAdamW(params, lr=lr, eps=eps, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, eps=eps, weight_decay=weight_decay, fused=fused)
