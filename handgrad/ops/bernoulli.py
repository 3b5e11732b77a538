"""bernoulli: 0 / 1 draws, each 1 with its probability (torch.bernoulli), with the
backward torch defines for it.

out_i = 1 with probability p_i (p = the input tensor, or one number p for every element
of the input's shape), else 0, drawn by torch's generator (the same draws as torch for
the same seed). A draw does not change smoothly with p, and torch defines its derivative
as zero: dp = 0 (zeros of the input's shape), so a graph through a sample stays whole
but sends nothing back (a straight-through estimator is written by hand:
`sample + p - p.detach()`). With a number p the draws do not depend on the input's
values at all, and, as in torch, a backward that reaches them is refused (torch:
"derivative for aten::bernoulli is not implemented").
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function

__all__ = ["Bernoulli"]


class Bernoulli(Function):
    """out = 0 / 1 draws with probability p (the input, or the number `p`);  dx = 0."""

    name = "bernoulli"

    @staticmethod
    def forward(ctx, x, p=None, generator=None):
        ctx.shape, ctx.number = x.shape, p
        if p is None:
            return torch.bernoulli(x, generator=generator)
        return torch.bernoulli(x, p, generator=generator)

    @staticmethod
    def backward(ctx, g):
        if ctx.number is not None:
            raise RuntimeError(
                f"bernoulli: no derivative for draws with a number p ({ctx.number}), as in "
                "torch (derivative for aten::bernoulli is not implemented): draw from a "
                "detached tensor (x.detach().bernoulli(p)), or pass the probabilities as a "
                "tensor (handgrad.bernoulli(probs), gradient 0)")
        return torch.zeros(ctx.shape, dtype=g.dtype, device=g.device), None, None
