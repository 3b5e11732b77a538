"""Sorting along a dim with hand-written backward: sort and topk return (values, indices);
the values are differentiable through their indices, the indices are int64 and carry no
gradient (as in torch).

Backward of both: each output value is a copy of one input element, x[..., idx[i], ...],
so dx is g scattered back to those positions along the dim and 0 elsewhere (sort's
indices are a permutation, topk's are k distinct positions; ties in x go wherever torch's
indices put them).

Left out: argsort (no gradient: a plain Tensor method), msort, kthvalue, sort of
complex tensors, and the `out=` arguments.
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function

__all__ = ["Sort", "TopK"]


def _scatter_back(ctx, g):
    """g (shaped like the output) put back at `indices` along ctx.dim, zeros elsewhere."""
    (indices,) = ctx.saved_tensors
    if not len(ctx.shape):  # a 0-d input: its one value is the output
        return g.clone()
    grad = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
    return grad.scatter_(ctx.dim, indices, g)


class Sort(Function):
    """values, indices = x sorted along dim;  dx = zeros.scatter(dim, indices, g)."""

    name = "sort"

    @staticmethod
    def forward(ctx, x, dim=-1, descending=False, stable=False):
        values, indices = torch.sort(x, dim=dim, descending=descending, stable=stable)
        ctx.save_for_backward(indices)
        ctx.shape, ctx.dim = x.shape, dim
        return values, indices

    @staticmethod
    def backward(ctx, g):
        return _scatter_back(ctx, g), None, None, None


class TopK(Function):
    """values, indices = the k largest (or smallest) along dim;
    dx = zeros.scatter(dim, indices, g)."""

    name = "topk"

    @staticmethod
    def forward(ctx, x, k, dim=-1, largest=True, sorted=True):  # noqa: A002 (torch's name)
        values, indices = torch.topk(x, k, dim=dim, largest=largest, sorted=sorted)
        ctx.save_for_backward(indices)
        ctx.shape, ctx.dim = x.shape, dim
        return values, indices

    @staticmethod
    def backward(ctx, g):
        return _scatter_back(ctx, g), None, None, None, None
