"""Rprop: resilient backpropagation, which follows only the sign of each gradient.

Every weight keeps its own step size. Per parameter p with gradient g (after maximize)
and the gradient it followed last time, g_prev:

    s = etaplus  where g * g_prev > 0     (same direction again: grow the step)
        etaminus where g * g_prev < 0     (overshot: shrink it, and skip this step)
        1        where g * g_prev = 0
    step_size <- clamp(step_size * s, step_size_min, step_size_max)
    g <- 0 where s = etaminus
    p <- p - sign(g) * step_size;  g_prev <- g

Full-batch by nature: gradient magnitudes are ignored. Same arguments, defaults, state
('step', 'prev', 'step_size') and arithmetic as PyTorch's Rprop (whose masks are written
here with torch.where, no host sync). The update runs one tensor at a time whatever
`foreach` says. Left out: complex parameters, tensor lr.
"""

from __future__ import annotations

import torch

from handgrad.optim.optimizer import Optimizer

__all__ = ["Rprop", "rprop"]


class Rprop(Optimizer):
    """Rprop (Riedmiller & Braun, 1993).

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: the first step size of every weight (default 1e-2).
        etas: (etaminus, etaplus), the factors a step size shrinks and grows by (default
            (0.5, 1.2)); 0 < etaminus < 1 < etaplus.
        step_sizes: the smallest and largest step sizes allowed (default (1e-6, 50)).
        foreach: accepted (the update runs one tensor at a time either way).
        maximize: ascend the objective instead of descending it.
        capturable, differentiable: torch's keywords (see handgrad.optim.optimizer).
    """

    def __init__(self, params, lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False):
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes),
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Rprop: Invalid learning rate: {group['lr']} (must be >= 0).")
        etaminus, etaplus = group["etas"]
        if not 0.0 < etaminus < 1.0 < etaplus:
            raise ValueError(f"Rprop: Invalid eta values: {etaminus}, {etaplus} (need "
                             "0 < etaminus < 1 < etaplus).")

    def _init_state(self, state, p, group):
        state["step"] = 0
        state["prev"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step_size"] = torch.full_like(p, group["lr"])

    def _update(self, group, params, grads, states):
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        rprop(params, grads, states, etaminus=etaminus, etaplus=etaplus,
              step_size_min=step_size_min, step_size_max=step_size_max,
              maximize=group["maximize"])


def rprop(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
          etaminus: float, etaplus: float, step_size_min: float, step_size_max: float,
          maximize: bool) -> None:
    """The Rprop update of raw tensors `params` in place (see the module docstring)."""
    for param, grad, state in zip(params, grads, states):
        grad = -grad if maximize else grad
        state["step"] += 1
        prev, step_size = state["prev"], state["step_size"]
        sign = grad.mul(prev).sign()
        factor = torch.where(sign > 0, etaplus, sign)  # scalars take sign's dtype
        factor = torch.where(factor < 0, etaminus, factor)
        factor = torch.where(factor == 0, 1.0, factor)
        step_size.mul_(factor).clamp_(step_size_min, step_size_max)
        grad = torch.where(factor == etaminus, 0.0, grad)
        param.addcmul_(grad.sign(), step_size, value=-1)
        prev.copy_(grad)
