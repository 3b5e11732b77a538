"""RAdam: Adam whose adaptive step is switched on only once the variance estimate is
trustworthy, and then scaled by a rectification term.

Per parameter p with gradient g (after maximize and weight decay, decoupled or not, as
in NAdam), at step t:

    m <- m + (1 - beta1) * (g - m);  v <- beta2 * v + (1 - beta2) * g^2
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)      length of the approximated SMA
    m_hat = m / (1 - beta1^t)
    if rho_t > 5:
        r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        p <- p - m_hat * lr * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r
    else:
        p <- p - m_hat * lr                           (SGD with momentum, early on)

Same arguments, defaults, state ('step', 'exp_avg', 'exp_avg_sq') and arithmetic order
as PyTorch's RAdam. The update branches per parameter on its own step count, so it runs
one tensor at a time whatever `foreach` says. Left out: complex parameters, tensor lr.
"""

from __future__ import annotations

import torch

from handgrad.optim.adamax import _check_adam_like
from handgrad.optim.optimizer import Optimizer

__all__ = ["RAdam", "radam"]


class RAdam(Optimizer):
    """RAdam (Liu et al., 2019), optionally with decoupled weight decay (RAdamW).

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-3).
        betas: decay rates of the first and second moment averages (default (0.9, 0.999)).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: weight decay coefficient (default 0).
        decoupled_weight_decay: shrink the weights directly, as AdamW does.
        foreach: accepted (the update runs one tensor at a time either way).
        maximize: ascend the objective instead of descending it.
        capturable, differentiable: torch's keywords (see handgrad.optim.optimizer).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_adam_like("RAdam", group)

    def _init_state(self, state, p, group):
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        beta1, beta2 = group["betas"]
        radam(params, grads, states, lr=group["lr"], beta1=beta1, beta2=beta2,
              eps=group["eps"], weight_decay=group["weight_decay"],
              decoupled_weight_decay=group["decoupled_weight_decay"],
              maximize=group["maximize"])


def radam(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
          lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
          decoupled_weight_decay: bool, maximize: bool) -> None:
    """The RAdam update of raw tensors `params` in place (see the module docstring)."""
    rho_inf = 2 / (1 - beta2) - 1
    for param, grad, state in zip(params, grads, states):
        grad = -grad if maximize else grad
        state["step"] += 1
        t = state["step"]
        if weight_decay != 0 and decoupled_weight_decay:  # RAdamW: shrink p itself
            param.mul_(1 - lr * weight_decay)
        elif weight_decay != 0:  # L2: the penalty's gradient joins g
            grad = grad.add(param, alpha=weight_decay)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        unbias_sq = 1 - beta2 ** t
        m_hat = exp_avg / (1 - beta1 ** t)
        rho = rho_inf - 2 * t * (beta2 ** t) / unbias_sq  # length of the approximated SMA
        if not rho > 5.0:  # variance not yet tractable: a momentum-SGD step
            param.add_(m_hat * lr, alpha=-1.0)
            continue
        r = ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)) ** 0.5
        inv_v_hat = (unbias_sq ** 0.5) / exp_avg_sq.sqrt().add_(eps)
        param.add_(m_hat * lr * inv_v_hat * r, alpha=-1.0)
