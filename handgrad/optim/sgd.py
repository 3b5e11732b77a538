"""SGD: stochastic gradient descent, optionally with momentum (heavy-ball or Nesterov).

The simplest optimizer, so the one to read first. Per parameter p with gradient g:

    g <- -g                                  if maximize
    g <- g + weight_decay * p                (L2 penalty folded into the gradient)
    b <- g                                   on the first step with momentum
    b <- momentum * b + (1 - dampening) * g  on later steps
    g <- g + momentum * b  if nesterov, else  g <- b
    p <- p - lr * g

Same arguments, defaults, state ('momentum_buffer') and arithmetic order as PyTorch's
SGD, so results agree to the last bit on CPU. Left out: sparse gradients, fused kernels.
"""

from __future__ import annotations

import torch

from handgrad.optim.optimizer import Optimizer, _signed_decayed

__all__ = ["SGD", "sgd"]


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum).

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening of the gradient added to the momentum (default 0).
        weight_decay: L2 penalty coefficient (default 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: ascend the objective instead of descending it.
        foreach: update all tensors of a group at once with multi-tensor ops (None, the
            default, or True), or one at a time (False: lower peak memory).
        differentiable, fused: torch's keywords (see handgrad.optim.optimizer: fused runs
            the all-at-once update, differentiable=True is refused).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _check_group(self, group):
        if group["lr"] < 0.0:
            raise ValueError(f"SGD: Invalid learning rate: {group['lr']} (must be >= 0).")
        if group["momentum"] < 0.0:
            raise ValueError(f"SGD: Invalid momentum value: {group['momentum']} "
                             "(must be >= 0).")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"SGD: Invalid weight_decay value: {group['weight_decay']} "
                             "(must be >= 0).")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: Nesterov momentum requires a momentum and zero dampening (got "
                f"momentum={group['momentum']}, dampening={group['dampening']}).")

    def _keeps_state(self, group):
        return group["momentum"] != 0

    def _update(self, group, params, grads, states):
        sgd(params, grads, states, lr=group["lr"], momentum=group["momentum"],
            dampening=group["dampening"], weight_decay=group["weight_decay"],
            nesterov=group["nesterov"], maximize=group["maximize"])


def sgd(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
        lr: float, momentum: float, dampening: float, weight_decay: float, nesterov: bool,
        maximize: bool) -> None:
    """The SGD update of raw tensors `params` in place (see the module docstring).

    `states` holds each parameter's state dict (its 'momentum_buffer'); unused when
    momentum is 0. The caller's gradients are never modified."""
    grads = _signed_decayed(grads, params, maximize, weight_decay)
    if momentum != 0:
        buffers = [state.get("momentum_buffer") for state in states]
        if all(b is not None for b in buffers):
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_add_(buffers, grads, alpha=1 - dampening)
        else:  # first step of some parameter: its buffer starts as the gradient
            for i, (state, b, g) in enumerate(zip(states, buffers, grads)):
                if b is None:
                    buffers[i] = state["momentum_buffer"] = g.clone()
                else:
                    b.mul_(momentum).add_(g, alpha=1 - dampening)
        grads = torch._foreach_add(grads, buffers, alpha=momentum) if nesterov else buffers
    torch._foreach_add_(params, grads, alpha=-lr)
