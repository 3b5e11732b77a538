"""Adam and AdamW: momentum and RMSprop together, with the start-up bias corrected.

Per parameter p with gradient g (after maximize), at step t:

    p <- p * (1 - lr * weight_decay)          AdamW (decoupled weight decay), or
    g <- g + weight_decay * p                 Adam (L2 penalty in the gradient)
    m <- m + (1 - beta1) * (g - m)            first moment ('exp_avg')
    v <- beta2 * v + (1 - beta2) * g^2        second moment ('exp_avg_sq')
    v_max <- max(v_max, v); use v_max for v   if amsgrad ('max_exp_avg_sq')
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

m and v start at zero, so early averages are too small; dividing by (1 - beta^t)
undoes that. Same arguments, defaults, state ('step', 'exp_avg', 'exp_avg_sq',
'max_exp_avg_sq') and arithmetic order as PyTorch's Adam/AdamW. Left out:
tensor-valued lr and betas; fused/capturable/differentiable are accepted as the base
class says (handgrad.optim.optimizer).
"""

from __future__ import annotations

import torch

from handgrad.optim.optimizer import Optimizer, _signed_decayed

__all__ = ["Adam", "AdamW", "adam"]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014), with the AMSGrad variant and optional decoupled decay.

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-3).
        betas: decay rates of the first and second moment averages (default (0.9, 0.999)).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: weight decay coefficient (default 0): an L2 penalty added to the
            gradient, or with `decoupled_weight_decay=True` a shrink of the weights (AdamW).
        amsgrad: normalise by the largest second moment seen so far (Reddi et al., 2018).
        foreach: all tensors at once (None, True) or one at a time (False: less memory).
        maximize: ascend the objective instead of descending it.
        capturable, differentiable, fused: torch's keywords (see handgrad.optim.optimizer:
            fused runs the all-at-once update, capturable changes nothing,
            differentiable=True is refused).
        decoupled_weight_decay: decay the weights directly, as AdamW does.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group):
        name = type(self).__name__
        lr, eps, (beta1, beta2) = group["lr"], group["eps"], group["betas"]
        if not 0.0 <= lr:
            raise ValueError(f"{name}: Invalid learning rate: {lr} (must be >= 0).")
        if not 0.0 <= eps:
            raise ValueError(f"{name}: Invalid epsilon value: {eps} (must be >= 0).")
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"{name}: Invalid beta parameter at index 0: {beta1} "
                             "(must be in [0, 1)).")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"{name}: Invalid beta parameter at index 1: {beta2} "
                             "(must be in [0, 1)).")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"{name}: Invalid weight_decay value: {group['weight_decay']} "
                             "(must be >= 0).")

    def _init_state(self, state, p, group):
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        beta1, beta2 = group["betas"]
        adam(params, grads, states, lr=group["lr"], beta1=beta1, beta2=beta2,
             eps=group["eps"], weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
             maximize=group["maximize"],
             decoupled_weight_decay=group["decoupled_weight_decay"])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): the weights shrink
    by lr * weight_decay each step instead of an L2 term entering the moments.

    Same arguments as Adam, but weight_decay defaults to 1e-2 and decoupling is fixed."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def _after_load(self):
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


def adam(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
         lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
         amsgrad: bool, maximize: bool, decoupled_weight_decay: bool) -> None:
    """The Adam/AdamW update of raw tensors `params` in place (see the module docstring)."""
    for state in states:
        state["step"] += 1
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

    if amsgrad:
        max_exp_avg_sqs = [state["max_exp_avg_sq"] for state in states]
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        denominators = torch._foreach_sqrt(max_exp_avg_sqs)
    else:
        denominators = torch._foreach_sqrt(exp_avg_sqs)
    steps = [state["step"] for state in states]
    torch._foreach_div_(denominators, [(1 - beta2 ** t) ** 0.5 for t in steps])
    torch._foreach_add_(denominators, eps)
    torch._foreach_addcdiv_(params, exp_avgs, denominators,
                            [-(lr / (1 - beta1 ** t)) for t in steps])
