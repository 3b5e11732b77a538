"""NAdam: Adam with Nesterov momentum, the step taken from where momentum is heading.

Per parameter p with gradient g (after maximize), at step t:

    p <- p * (1 - lr * weight_decay)                if decoupled_weight_decay, else
    g <- g + weight_decay * p                       (L2 penalty in the gradient)
    mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))      momentum schedule
    P <- P * mu_t                                   product of the mu's ('mu_product')
    m <- m + (1 - beta1) * (g - m)                  ('exp_avg')
    v <- beta2 * v + (1 - beta2) * g^2              ('exp_avg_sq')
    d = sqrt(v / (1 - beta2^t)) + eps
    p <- p - lr * (1 - mu_t) / (1 - P) * g / d
    p <- p - lr * mu_{t+1} / (1 - P * mu_{t+1}) * m / d

As in PyTorch, 'mu_product' is a 0-d tensor of the default scalar dtype (float32), so
the product rounds as torch's does; loading a state dict casts it to the parameter's
dtype, as torch does. Same arguments, defaults, state ('step', 'mu_product', 'exp_avg',
'exp_avg_sq') and arithmetic order as PyTorch's NAdam. Left out: complex parameters,
tensor lr.
"""

from __future__ import annotations

import torch

from handgrad.optim.adamax import _check_adam_like
from handgrad.optim.optimizer import Optimizer, _scalar_dtype, _signed_decayed

__all__ = ["NAdam", "nadam"]


class NAdam(Optimizer):
    """NAdam (Dozat, 2016), optionally with decoupled weight decay (NAdamW).

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: learning rate (default 2e-3).
        betas: decay rates of the first and second moment averages (default (0.9, 0.999)).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: weight decay coefficient (default 0).
        momentum_decay: how fast the momentum schedule mu_t rises (default 4e-3).
        decoupled_weight_decay: shrink the weights directly, as AdamW does.
        foreach: all tensors at once (None, True) or one at a time (False: less memory).
        maximize: ascend the objective instead of descending it.
        capturable, differentiable: torch's keywords (see handgrad.optim.optimizer).
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_adam_like("NAdam", group)
        if not 0.0 <= group["momentum_decay"]:
            raise ValueError(f"NAdam: Invalid momentum_decay value: "
                             f"{group['momentum_decay']} (must be >= 0).")

    def _init_state(self, state, p, group):
        state["step"] = 0
        state["mu_product"] = torch.tensor(1.0, dtype=_scalar_dtype())
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        beta1, beta2 = group["betas"]
        nadam(params, grads, states, lr=group["lr"], beta1=beta1, beta2=beta2,
              eps=group["eps"], weight_decay=group["weight_decay"],
              momentum_decay=group["momentum_decay"],
              decoupled_weight_decay=group["decoupled_weight_decay"],
              maximize=group["maximize"])


def nadam(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
          lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
          momentum_decay: float, decoupled_weight_decay: bool, maximize: bool) -> None:
    """The NAdam update of raw tensors `params` in place (see the module docstring)."""
    grad_factors, avg_factors, bias_corrections2 = [], [], []
    for state in states:
        state["step"] += 1
        t = state["step"]
        bias_corrections2.append(1 - beta2 ** t)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * momentum_decay)))
        state["mu_product"].mul_(mu)
        mu_product = state["mu_product"].item()
        grad_factors.append(-lr * (1.0 - mu) / (1.0 - mu_product))
        avg_factors.append((-lr * mu_next) / (1.0 - mu_product * mu_next))
    if decoupled_weight_decay:
        grads = _signed_decayed(grads, params, maximize, 0)
        if weight_decay != 0:
            torch._foreach_mul_(params, 1 - lr * weight_decay)
    else:
        grads = _signed_decayed(grads, params, maximize, weight_decay)

    exp_avgs = [state["exp_avg"] for state in states]
    exp_avg_sqs = [state["exp_avg_sq"] for state in states]
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    denominators = torch._foreach_div(exp_avg_sqs, bias_corrections2)
    torch._foreach_sqrt_(denominators)
    torch._foreach_add_(denominators, eps)
    torch._foreach_addcdiv_(params, grads, denominators, grad_factors)
    torch._foreach_addcdiv_(params, exp_avgs, denominators, avg_factors)
