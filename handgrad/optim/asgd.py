"""ASGD: SGD with a decaying step size, plus a running average of the iterates.

Per parameter p with gradient g (after maximize and weight decay, as in SGD), at step t,
with eta and mu from the step before (eta starts at lr, mu at 1):

    p <- p * (1 - lambd * eta);  p <- p - eta * g       decayed SGD step
    ax <- ax + mu * (p - ax)    (ax <- p while mu = 1)  averaged iterate ('ax')
    eta <- lr / (1 + lambd * lr * t)^alpha
    mu <- 1 / max(1, t - t0)                            averaging starts after t0 steps

The optimizer moves p; the average `ax` is what Polyak-Ruppert averaging would report
(copy it into the model to evaluate it). As in PyTorch, eta and mu are 0-d tensors of
the default scalar dtype (float32), so they round as torch's do. Same arguments,
defaults, state ('step', 'eta', 'mu', 'ax') and arithmetic order as PyTorch's ASGD; the
update runs one tensor at a time whatever `foreach` says. Left out: complex parameters,
tensor lr.
"""

from __future__ import annotations

import torch

from handgrad.optim.optimizer import Optimizer, _scalar_dtype

__all__ = ["ASGD", "asgd"]


class ASGD(Optimizer):
    """Averaged stochastic gradient descent (Polyak & Juditsky, 1992).

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-2).
        lambd: decay term (default 1e-4).
        alpha: power of the eta decay (default 0.75).
        t0: the step after which averaging starts (default 1e6).
        weight_decay: L2 penalty coefficient (default 0).
        foreach: accepted (the update runs one tensor at a time either way).
        maximize: ascend the objective instead of descending it.
        differentiable, capturable: torch's keywords (see handgrad.optim.optimizer).
    """

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"ASGD: Invalid learning rate: {group['lr']} (must be >= 0).")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"ASGD: Invalid weight_decay value: {group['weight_decay']} "
                             "(must be >= 0).")

    def _init_state(self, state, p, group):
        state["step"] = 0
        state["eta"] = torch.tensor(float(group["lr"]), dtype=_scalar_dtype(), device=p.device)
        state["mu"] = torch.ones((), dtype=_scalar_dtype(), device=p.device)
        state["ax"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        asgd(params, grads, states, lr=group["lr"], lambd=group["lambd"],
             alpha=group["alpha"], t0=group["t0"], weight_decay=group["weight_decay"],
             maximize=group["maximize"])


def asgd(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
         lr: float, lambd: float, alpha: float, t0: float, weight_decay: float,
         maximize: bool) -> None:
    """The ASGD update of raw tensors `params` in place (see the module docstring)."""
    for param, grad, state in zip(params, grads, states):
        grad = -grad if maximize else grad
        state["step"] += 1
        t = state["step"]
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        eta, mu, ax = state["eta"], state["mu"], state["ax"]
        eta_value = eta.item()
        param.mul_(1 - lambd * eta_value)
        param.add_(grad, alpha=-eta_value)
        if mu.item() != 1:
            ax.add_(param.sub(ax).mul_(mu))
        else:
            ax.copy_(param)
        eta.copy_(torch.as_tensor(lr / ((1 + lambd * lr * t) ** alpha)))
        mu.copy_(torch.as_tensor(1 / max(1, t - t0)))
