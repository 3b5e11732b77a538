"""Adamax: Adam with the second moment replaced by an exponentially weighted infinity norm.

Per parameter p with gradient g (after maximize and weight decay, as in SGD), at step t:

    m <- m + (1 - beta1) * (g - m)                  first moment ('exp_avg')
    u <- max(beta2 * u, |g| + eps)                  infinity norm ('exp_inf')
    p <- p - lr / (1 - beta1^t) * m / u

u needs no bias correction: a max does not start too small the way a mean of zeros
does. Same arguments, defaults, state ('step', 'exp_avg', 'exp_inf') and arithmetic
order as PyTorch's Adamax. Left out: complex parameters, tensor lr.
"""

from __future__ import annotations

import torch

from handgrad.optim.optimizer import Optimizer, _signed_decayed

__all__ = ["Adamax", "adamax"]


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2014, section 7).

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: learning rate (default 2e-3).
        betas: decay rates of the first moment and of the infinity norm (default
            (0.9, 0.999)).
        eps: added to |g| for numerical stability (default 1e-8).
        weight_decay: L2 penalty coefficient (default 0).
        foreach: all tensors at once (None, True) or one at a time (False: less memory).
        maximize: ascend the objective instead of descending it.
        differentiable, capturable: torch's keywords (see handgrad.optim.optimizer).
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_adam_like(type(self).__name__, group)

    def _init_state(self, state, p, group):
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_inf"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        beta1, beta2 = group["betas"]
        adamax(params, grads, states, lr=group["lr"], beta1=beta1, beta2=beta2,
               eps=group["eps"], weight_decay=group["weight_decay"],
               maximize=group["maximize"])


def _check_adam_like(name: str, group) -> None:
    """torch's checks of lr, eps, betas and weight_decay (Adamax, NAdam, RAdam)."""
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


def adamax(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
           lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
           maximize: bool) -> None:
    """The Adamax update of raw tensors `params` in place (see the module docstring)."""
    for state in states:
        state["step"] += 1
    grads = _signed_decayed(grads, params, maximize, weight_decay)
    exp_avgs = [state["exp_avg"] for state in states]
    exp_infs = [state["exp_inf"] for state in states]
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_infs, beta2)
    magnitudes = torch._foreach_abs(grads)
    torch._foreach_add_(magnitudes, eps)
    torch._foreach_maximum_(exp_infs, magnitudes)
    torch._foreach_addcdiv_(params, exp_avgs, exp_infs,
                            [-(lr / (1 - beta1 ** state["step"])) for state in states])
