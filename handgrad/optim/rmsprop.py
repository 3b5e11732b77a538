"""RMSprop: divide each gradient by a running root-mean-square of recent gradients.

After SGD, the next idea: give every weight its own step size. Per parameter p with
gradient g (after maximize and weight decay, as in SGD):

    v <- alpha * v + (1 - alpha) * g^2              running mean of g^2 ('square_avg')
    m <- m + (1 - alpha) * (g - m)                  if centered: running mean of g
    s <- sqrt(v - m^2) + eps   if centered, else    s <- sqrt(v) + eps
    b <- momentum * b + g / s;  p <- p - lr * b     if momentum > 0 ('momentum_buffer')
    p <- p - lr * g / s                             otherwise

Same arguments, defaults, state ('step', 'square_avg', 'momentum_buffer', 'grad_avg') and
arithmetic order as PyTorch's RMSprop. Left out: capturable/differentiable variants.
"""

from __future__ import annotations

import torch

from handgrad.optim.optimizer import Optimizer, _signed_decayed

__all__ = ["RMSprop", "rmsprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), optionally centered and with momentum.

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant of the running averages (default 0.99).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: L2 penalty coefficient (default 0).
        momentum: momentum factor (default 0).
        centered: normalise by an estimate of the gradient's variance instead of its
            second moment.
        foreach: all tensors at once (None, True) or one at a time (False: less memory).
        maximize: ascend the objective instead of descending it.
        capturable, differentiable: torch's keywords (see handgrad.optim.optimizer:
            capturable changes nothing, differentiable=True is refused).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key, label in (("lr", "learning rate"), ("eps", "epsilon value"),
                           ("momentum", "momentum value"),
                           ("weight_decay", "weight_decay value"), ("alpha", "alpha value")):
            if not 0.0 <= group[key]:
                raise ValueError(f"RMSprop: Invalid {label}: {group[key]} (must be >= 0).")

    def _init_state(self, state, p, group):
        state["step"] = 0
        state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if group["centered"]:
            state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        rmsprop(params, grads, states, lr=group["lr"], alpha=group["alpha"],
                eps=group["eps"], weight_decay=group["weight_decay"],
                momentum=group["momentum"], centered=group["centered"],
                maximize=group["maximize"])


def rmsprop(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
            lr: float, alpha: float, eps: float, weight_decay: float, momentum: float,
            centered: bool, maximize: bool) -> None:
    """The RMSprop update of raw tensors `params` in place (see the module docstring)."""
    for state in states:
        state["step"] += 1
    grads = _signed_decayed(grads, params, maximize, weight_decay)
    square_avgs = [state["square_avg"] for state in states]
    torch._foreach_mul_(square_avgs, alpha)
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
    if centered:
        grad_avgs = [state["grad_avg"] for state in states]
        torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)
        denominators = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)
        torch._foreach_sqrt_(denominators)
    else:
        denominators = torch._foreach_sqrt(square_avgs)
    torch._foreach_add_(denominators, eps)
    if momentum > 0:
        buffers = [state["momentum_buffer"] for state in states]
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_addcdiv_(buffers, grads, denominators)
        torch._foreach_add_(params, buffers, alpha=-lr)
    else:
        torch._foreach_addcdiv_(params, grads, denominators, value=-lr)
