"""Muon: momentum SGD for weight matrices whose update is orthogonalised first.

Per 2-d parameter P (A x B) with gradient G:

    M <- M + (1 - momentum) * (G - M)                       ('momentum_buffer')
    U = G + momentum * (M - G)  if nesterov, else  U = M
    O = NewtonSchulz(U)                                      ~ the nearest orthogonal
                                                               matrix, in bfloat16
    P <- P * (1 - lr * weight_decay)
    P <- P - lr * ratio * O,  ratio = sqrt(max(1, A / B)) ("original", default),
                                      0.2 * sqrt(max(A, B)) ("match_rms_adamw")

NewtonSchulz (Jordan et al., 2024): X = U / max(||U||_F, eps) (transposed so that it is
wide), then `ns_steps` times  S = X X^T;  X <- a X + (b S + c S^2) X, a quintic whose
coefficients push every singular value towards 1 fast (to roughly 0.5 to 1.5, which
is enough). It runs in bfloat16, as in PyTorch, so the result carries bfloat16's
rounding; handgrad does the same operations, so it is torch's to the bit.

Same arguments, defaults, state ('momentum_buffer') and arithmetic order as PyTorch's
Muon; like there, every parameter must be 2-d (use another optimizer for biases and
norms) and `foreach` does not exist. Left out: complex and sparse parameters, tensor lr.
"""

from __future__ import annotations

import math

import torch

from handgrad.optim.optimizer import Optimizer

__all__ = ["Muon", "muon"]

EPS = 1e-7
DEFAULT_A, DEFAULT_B, DEFAULT_C = 3.4445, -4.7750, 2.0315
DEFAULT_NS_STEPS = 5


class Muon(Optimizer):
    """Muon (Jordan et al., 2024), as torch.optim.Muon.

    Args:
        params: 2-d Tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-3).
        weight_decay: decoupled weight decay coefficient (default 0.1).
        momentum: momentum factor (default 0.95).
        nesterov: use Nesterov momentum (default True).
        ns_coefficients: (a, b, c) of the Newton-Schulz quintic.
        eps: floor of the norm the update is divided by (default 1e-7).
        ns_steps: Newton-Schulz iterations (default 5; fewer than 100).
        adjust_lr_fn: None or "original" (lr * sqrt(max(1, A / B))), or
            "match_rms_adamw" (lr * 0.2 * sqrt(max(A, B))).
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients: tuple[float, float, float] = (DEFAULT_A, DEFAULT_B,
                                                                DEFAULT_C),
                 eps: float = EPS, ns_steps: int = DEFAULT_NS_STEPS,
                 adjust_lr_fn: str | None = None):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        nesterov=nesterov, ns_coefficients=ns_coefficients, eps=eps,
                        ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError("Muon only supports 2D parameters whereas we found a "
                                     f"parameter with size: {tuple(p.shape)}. Optimize "
                                     "biases and norms with another optimizer (e.g. AdamW).")

    def _check_group(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Muon: Learning rate should be >= 0 but is: {group['lr']}")
        if not 0.0 <= group["momentum"]:
            raise ValueError(f"Muon: momentum should be >= 0 but is: {group['momentum']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Muon: weight decay should be >= 0 but is: "
                             f"{group['weight_decay']}")
        if group["adjust_lr_fn"] not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"Muon: Adjust learning rate function {group['adjust_lr_fn']} "
                             "is not supported (use None, 'original' or 'match_rms_adamw').")

    def _init_state(self, state, p, group):
        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states):
        muon(params, grads, states, lr=group["lr"], weight_decay=group["weight_decay"],
             momentum=group["momentum"], nesterov=group["nesterov"],
             ns_coefficients=group["ns_coefficients"], ns_steps=group["ns_steps"],
             eps=group["eps"], adjust_lr_fn=group["adjust_lr_fn"])


def _zeropower_via_newtonschulz(grad: torch.Tensor, ns_coefficients, ns_steps: int,
                                eps: float) -> torch.Tensor:
    """The Newton-Schulz orthogonalisation of a matrix, in bfloat16 (module docstring)."""
    if ns_steps >= 100:
        raise ValueError("Muon: the number of Newton-Schulz steps must be less than 100 for "
                         f"computational efficiency, got {ns_steps}.")
    if len(ns_coefficients) != 3:
        raise ValueError("Muon: ns_coefficients must be a tuple of exactly 3 values, got "
                         f"{len(ns_coefficients)}.")
    a, b, c = ns_coefficients
    tall = grad.size(0) > grad.size(1)
    x = grad.bfloat16().T if tall else grad.bfloat16()  # wide: S below is the small Gram
    x.div_(x.norm().clamp(min=eps))
    for _ in range(ns_steps):
        s = x @ x.T
        # X <- a X + (b S + c S S) X, as two fused multiply-adds
        x = torch.addmm(x, torch.addmm(s, s, s, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def _adjust_lr(lr: float, adjust_lr_fn: str | None, shape) -> float:
    """lr times the shape factor of the chosen rule (module docstring)."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":  # the update's RMS then matches AdamW's ~0.2
        return lr * (0.2 * math.sqrt(max(rows, cols)))
    if adjust_lr_fn in (None, "original"):  # only tall matrices are scaled up
        return lr * math.sqrt(max(1, rows / cols))
    return lr * 1.0


def muon(params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], *,
         lr: float, weight_decay: float, momentum: float, nesterov: bool,
         ns_coefficients, ns_steps: int, eps: float, adjust_lr_fn: str | None) -> None:
    """The Muon update of raw 2-d tensors `params` in place (see the module docstring)."""
    for param, grad, state in zip(params, grads, states):
        buffer = state["momentum_buffer"]
        buffer.lerp_(grad, 1 - momentum)
        update = grad.lerp(buffer, momentum) if nesterov else buffer
        update = _zeropower_via_newtonschulz(update, ns_coefficients, ns_steps, eps)
        param.mul_(1 - lr * weight_decay)
        param.add_(update, alpha=-_adjust_lr(lr, adjust_lr_fn, param.shape))
