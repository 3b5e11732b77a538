"""Adadelta: step sizes from the ratio of two running RMS values, so no global rate to tune.

Per parameter p with gradient g (after maximize and weight decay, as in SGD):

    v <- rho * v + (1 - rho) * g^2                       ('square_avg')
    delta <- sqrt(u + eps) / sqrt(v + eps) * g           u is 'acc_delta'
    u <- rho * u + (1 - rho) * delta^2
    p <- p - lr * delta

The numerator carries the units of p, which is Zeiler's point: lr (default 1.0) only
scales the step. Same arguments, defaults, state ('step', 'square_avg', 'acc_delta')
and arithmetic order as PyTorch's Adadelta. Left out: complex parameters, tensor lr.
"""

from __future__ import annotations

import torch

from handgrad.optim.optimizer import Optimizer, _signed_decayed

__all__ = ["Adadelta", "adadelta"]


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012).

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: scale of each step (default 1.0).
        rho: smoothing constant of the running averages (default 0.9).
        eps: added inside both square roots (default 1e-6).
        weight_decay: L2 penalty coefficient (default 0).
        foreach: all tensors at once (None, True) or one at a time (False: less memory).
        maximize: ascend the objective instead of descending it.
        capturable, differentiable: torch's keywords (see handgrad.optim.optimizer).
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                        maximize=maximize, capturable=capturable, foreach=foreach,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Adadelta: Invalid learning rate: {group['lr']} (must be >= 0).")
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Adadelta: Invalid rho value: {group['rho']} "
                             "(must be in [0, 1]).")
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Adadelta: Invalid epsilon value: {group['eps']} "
                             "(must be >= 0).")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Adadelta: Invalid weight_decay value: "
                             f"{group['weight_decay']} (must be >= 0).")

    def _init_state(self, state, p, group):
        state["step"] = 0
        state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["acc_delta"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        adadelta(params, grads, states, lr=group["lr"], rho=group["rho"], eps=group["eps"],
                 weight_decay=group["weight_decay"], maximize=group["maximize"])


def adadelta(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
             lr: float, rho: float, eps: float, weight_decay: float, maximize: bool) -> None:
    """The Adadelta update of raw tensors `params` in place (see the module docstring)."""
    for state in states:
        state["step"] += 1
    grads = _signed_decayed(grads, params, maximize, weight_decay)
    square_avgs = [state["square_avg"] for state in states]
    acc_deltas = [state["acc_delta"] for state in states]
    _foreach_running_mean_square(square_avgs, grads, rho)
    # dx = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g, worked out in one buffer
    steps = torch._foreach_sqrt(torch._foreach_add(acc_deltas, eps))
    torch._foreach_div_(steps, torch._foreach_sqrt(torch._foreach_add(square_avgs, eps)))
    torch._foreach_mul_(steps, grads)
    _foreach_running_mean_square(acc_deltas, steps, rho)
    torch._foreach_add_(params, steps, alpha=-lr)


def _foreach_running_mean_square(averages, values, rho) -> None:
    """E[v^2] <- rho * E[v^2] + (1 - rho) * v^2 for every tensor, in place."""
    torch._foreach_mul_(averages, rho)
    torch._foreach_addcmul_(averages, values, values, value=1 - rho)
