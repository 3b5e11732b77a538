"""Gradient clipping (nn.utils.clip_grad_norm_ and clip_grad_value_, as in torch): both
change the parameters' .grad in place, between backward() and the optimizer step.

Left out: the foreach fast path (the argument is accepted and ignored). The other
nn.utils helpers have files of their own (see nn/utils/__init__.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from handgrad._tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list[torch.Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale all gradients together so that their joint norm (the norm of the vector of
    every gradient element) is at most max_norm; return that norm before clipping.

    total = ||(||g_1||, ..., ||g_k||)||_p,  g_i <- g_i * min(1, max_norm / (total + 1e-6)).
    norm_type may be float('inf') (the largest |element|). `foreach` is accepted for
    torch compatibility and ignored."""
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor(torch.tensor(0.0))
    if norm_type == math.inf:
        norms = [g.abs().max() for g in grads]
        total = torch.stack(norms).max() if len(norms) > 1 else norms[0]
    else:
        norms = [torch.linalg.vector_norm(g, norm_type) for g in grads]
        total = torch.linalg.vector_norm(torch.stack(norms), norm_type)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            "non-finite, so it cannot be clipped. To scale the gradients by the non-finite "
            "norm anyway, set error_if_nonfinite=False")
    coefficient = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coefficient.to(g.dtype))
    return Tensor(total)


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float,
                     foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)
