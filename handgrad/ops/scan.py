"""Scans along a dim (cumulative sum and product) with hand-written backward.

cumsum:  y_i = sum_{j<=i} x_j, so dx_k = sum_{i>=k} g_i: the cumsum of g taken from the
end (flip, cumsum, flip).

cumprod: y_i = prod_{j<=i} x_j, so dx_k = sum_{i>=k} g_i prod_{j<=i, j!=k} x_j.
  With no zero in x this is  dx_k = (sum_{i>=k} g_i y_i) / x_k.  With zeros (along the
  dim, z = the position of the first zero):
  - k < z: the same formula (x_k != 0; the terms i >= z have y_i = 0 on both sides);
  - k = z: dx_z = sum_{i>=z} g_i y'_i, where y' is the cumprod of x with x_z set to 1
    (y'_i = prod_{j<=i, j!=z} x_j exactly, later zeros included);
  - k > z: every product contains x_z = 0, so dx_k = 0.
  All three are computed for the whole tensor at once, without any division by zero.

Left out: cummax / cummin / logcumsumexp, and the `out=` arguments.
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function

__all__ = ["Cumsum", "Cumprod"]


def _reverse_cumsum(v: torch.Tensor, dim: int) -> torch.Tensor:
    """out_k = sum_{i>=k} v_i along dim."""
    return v.flip(dim).cumsum(dim).flip(dim)


class Cumsum(Function):
    """y = cumsum(x, dim);  dx = reversed cumsum of g along dim."""

    name = "cumsum"

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim, ctx.ndim = dim, x.ndim
        return torch.cumsum(x, dim)

    @staticmethod
    def backward(ctx, g):
        if not ctx.ndim:
            return g.clone(), None
        return _reverse_cumsum(g, ctx.dim), None


class Cumprod(Function):
    """y = cumprod(x, dim);  dx as derived in the module docstring (exact with zeros)."""

    name = "cumprod"

    @staticmethod
    def forward(ctx, x, dim):
        out = torch.cumprod(x, dim)
        ctx.save_for_backward(x, out)
        ctx.dim, ctx.ndim = dim, x.ndim
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        if not ctx.ndim:
            return g.clone(), None
        dim = ctx.dim
        is_zero = x == 0
        zeros_so_far = is_zero.cumsum(dim)  # > 0 from the first zero on
        safe_x = torch.where(is_zero, torch.ones_like(x), x)
        grad = _reverse_cumsum(g * out, dim) / safe_x  # k before the first zero
        grad = torch.where(zeros_so_far == 0, grad, torch.zeros_like(grad))
        first_zero = is_zero & (zeros_so_far == 1)
        if first_zero.any():
            without = torch.cumprod(torch.where(first_zero, torch.ones_like(x), x), dim)
            grad = torch.where(first_zero, _reverse_cumsum(g * without, dim), grad)
        return grad, None
