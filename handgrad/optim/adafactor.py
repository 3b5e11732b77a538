"""Adafactor: Adam-like steps with a factored second moment, so a matrix keeps one
number per row and per column instead of one per entry.

Per parameter p with gradient g (after maximize), at step t, with
beta2_t = 1 - t^beta2_decay, rho_t = min(lr, 1 / sqrt(t)) and
alpha = max(eps2, RMS(p)) * rho_t (a step relative to the parameter's own size):

    p <- p * (1 - lr * weight_decay)
    matrices (dim > 1), over the last two dimensions:
        R <- lerp(R, mean of g^2 over each row, 1 - beta2_t)        ('row_var')
        C <- lerp(C, mean of g^2 over each column, 1 - beta2_t)     ('col_var')
        V = R C / max(mean(R), eps1)          the rank-1 estimate of E[g^2]
    vectors:  V <- lerp(V, g^2, 1 - beta2_t)                         ('variance')
    u = g / sqrt(max(V, eps1^2))
    p <- p - alpha / max(1, RMS(u) / d) * u    (update clipping at threshold d)

eps1 defaults to the dtype's machine epsilon. This is PyTorch's Adafactor (Shazeer &
Stern, 2018, without first moment, as torch has it): same arguments, defaults, state
('step', 'row_var', 'col_var', 'variance') and arithmetic order. The update reads
norms per parameter, so it runs one tensor at a time whatever `foreach` says. Left out:
complex and sparse parameters, tensor lr.
"""

from __future__ import annotations

import torch

from handgrad.optim.optimizer import Optimizer

__all__ = ["Adafactor", "adafactor"]


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern, 2018), as torch.optim.Adafactor.

    Args:
        params: Tensors or parameter-group dicts to optimize.
        lr: the largest relative step size (default 1e-2).
        beta2_decay: the exponent of the second-moment decay schedule (default -0.8).
        eps: (eps1, eps2): eps1 floors the second moment (None: the dtype's machine
            epsilon), eps2 the parameter RMS that sets the step (default (None, 1e-3)).
        d: the update clipping threshold (default 1.0).
        weight_decay: decoupled weight decay coefficient (default 0).
        foreach: accepted (the update runs one tensor at a time either way).
        maximize: ascend the objective instead of descending it.
    """

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, foreach: bool | None = None,
                 maximize: bool = False):
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d,
                        weight_decay=weight_decay, foreach=foreach, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        lr, beta2_decay, (eps1, eps2) = group["lr"], group["beta2_decay"], group["eps"]
        if not 0.0 <= lr:
            raise ValueError(f"Adafactor: Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"Adafactor: beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps1 is not None and not 0.0 <= eps1:
            raise ValueError(f"Adafactor: epsilon1 should be >= 0 but is: {eps1}")
        if not 0.0 <= eps2:
            raise ValueError(f"Adafactor: epsilon2 should be >= 0 but is: {eps2}")
        if not 1.0 <= group["d"]:
            raise ValueError(f"Adafactor: Clipping threshold d should be >= 1 but is: "
                             f"{group['d']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Adafactor: weight_decay should be >= 0 but is: "
                             f"{group['weight_decay']}")

    def _init_state(self, state, p, group):
        state["step"] = 0
        if p.dim() > 1:
            state["row_var"] = p.new_zeros((*p.shape[:-1], 1))
            state["col_var"] = p.new_zeros((*p.shape[:-2], 1, p.shape[-1]))
        else:
            state["variance"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        eps1, eps2 = group["eps"]
        adafactor(params, grads, states, lr=group["lr"], beta2_decay=group["beta2_decay"],
                  eps1=eps1, eps2=eps2, d=group["d"], weight_decay=group["weight_decay"],
                  maximize=group["maximize"])


def adafactor(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
              lr: float, beta2_decay: float, eps1: float | None, eps2: float, d: float,
              weight_decay: float, maximize: bool) -> None:
    """The Adafactor update of raw tensors `params` in place (see the module docstring)."""
    for param, grad, state in zip(params, grads, states):
        if maximize:
            grad = -grad
        # eps1 = None means the first parameter's machine epsilon, for all (as torch)
        eps1 = torch.finfo(param.dtype).eps if eps1 is None else eps1
        state["step"] += 1
        t = float(state["step"])
        mix = t ** beta2_decay  # 1 - beta2_t
        step_size = max(eps2, _rms(param)) * min(lr, 1 / (t ** 0.5))
        if weight_decay != 0:
            param.mul_(1 - lr * weight_decay)
        second_moment = (_factored_second_moment(grad, state, mix, eps1) if grad.dim() > 1
                         else _full_second_moment(grad, state, mix))
        scaled = second_moment.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)
        clip = max(1.0, scaled.norm(2).item() / ((scaled.numel() ** 0.5) * d))
        param.add_(scaled, alpha=-step_size / clip)


def _rms(tensor: torch.Tensor) -> float:
    """sqrt(mean(x^2)) as ||x||_2 / sqrt(n), on the host."""
    return tensor.norm(2).item() / (tensor.numel() ** 0.5)


def _mean_square(grad: torch.Tensor, dim: int) -> torch.Tensor:
    """mean(g^2) along `dim` (kept), as ||g||^2 / n: no g-sized temporary."""
    return torch.norm(grad, dim=dim, keepdim=True).square_().div_(grad.size(dim))


def _factored_second_moment(grad, state, mix, eps1) -> torch.Tensor:
    """R and C move towards the row / column means of g^2; V = R C / max(mean(R), eps1),
    a fresh (..., rows, cols) tensor from (..., rows, 1) @ (..., 1, cols)."""
    rows, cols = state["row_var"], state["col_var"]
    rows.lerp_(_mean_square(grad, -1), mix)
    cols.lerp_(_mean_square(grad, -2), mix)
    return (rows @ cols).div_(rows.mean(dim=-2, keepdim=True).clamp_(min=eps1))


def _full_second_moment(grad, state, mix) -> torch.Tensor:
    """V moves towards g^2 entry by entry; a copy is returned (the caller changes it)."""
    kept = state["variance"]
    kept.lerp_(grad * grad, mix)
    return kept.clone()
