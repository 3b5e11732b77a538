"""Adagrad: per-weight step sizes from the sum of all past squared gradients.

Like RMSprop, but the denominator is a sum over the whole run rather than a running
mean, so step sizes only shrink. Per parameter p with gradient g (after maximize and
weight decay, as in SGD), at step t:

    clr <- lr / (1 + (t - 1) * lr_decay)
    s <- s + g^2                             ('sum', starts at initial_accumulator_value)
    p <- p - clr * g / (sqrt(s) + eps)

Same arguments, defaults, state ('step', 'sum') and arithmetic order as PyTorch's
Adagrad. As there, state is created for every parameter when the optimizer is built.
One deliberate difference: a parameter group's own `initial_accumulator_value` is used
for its parameters (PyTorch uses the constructor's value for every group).
Left out: sparse gradients, fused kernels.
"""

from __future__ import annotations

import torch

from handgrad.optim.optimizer import Optimizer, _signed_decayed

__all__ = ["Adagrad", "adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer, 2011).

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-2).
        lr_decay: learning-rate decay per step (default 0).
        weight_decay: L2 penalty coefficient (default 0).
        initial_accumulator_value: starting value of the sum of squared gradients.
        eps: added to the denominator for numerical stability (default 1e-10).
        foreach: all tensors at once (None, True) or one at a time (False: less memory).
        maximize: ascend the objective instead of descending it.
        differentiable, fused: torch's keywords (see handgrad.optim.optimizer: fused runs
            the all-at-once update, differentiable=True is refused).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(self.state[p], p.data, group)

    def _check_group(self, group):
        for key, label in (("lr", "learning rate"), ("lr_decay", "lr_decay value"),
                           ("weight_decay", "weight_decay value"),
                           ("initial_accumulator_value", "initial_accumulator_value value"),
                           ("eps", "epsilon value")):
            if not 0.0 <= group[key]:
                raise ValueError(f"Adagrad: Invalid {label}: {group[key]} (must be >= 0).")

    def _init_state(self, state, p, group):
        state["step"] = 0
        state["sum"] = torch.full_like(p, group["initial_accumulator_value"],
                                       memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        adagrad(params, grads, states, lr=group["lr"], lr_decay=group["lr_decay"],
                weight_decay=group["weight_decay"], eps=group["eps"],
                maximize=group["maximize"])


def adagrad(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
            lr: float, lr_decay: float, weight_decay: float, eps: float,
            maximize: bool) -> None:
    """The Adagrad update of raw tensors `params` in place (see the module docstring)."""
    for state in states:
        state["step"] += 1
    grads = _signed_decayed(grads, params, maximize, weight_decay)
    sums = [state["sum"] for state in states]
    torch._foreach_addcmul_(sums, grads, grads, value=1)
    denominators = torch._foreach_sqrt(sums)
    torch._foreach_add_(denominators, eps)
    step_sizes = [-lr / (1 + (state["step"] - 1) * lr_decay) for state in states]
    torch._foreach_addcdiv_(params, grads, denominators, step_sizes)
