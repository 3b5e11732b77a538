"""Reductions and the normalising reductions (softmax family), with hand-written backward.

`dim=None` reduces over every element. Gradients of max/min follow torch: over the
whole tensor (and amax/amin) ties share the gradient evenly; along a dim with indices,
the gradient goes to the returned index only.

Left out: argmax/argmin (no gradient: plain tensor methods in tensor.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function
from handgrad.ops.elementwise import floating_only


def _dims(dim, ndim):
    """Normalise `dim` (None, int or sequence) to a sorted tuple of non-negative dims."""
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):  # dim=[]: all, as torch
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    return tuple(sorted(wrap_dim(d, ndim) for d in dim))


def wrap_dim(dim: int, ndim: int) -> int:
    """`dim` as a non-negative index into `ndim` dims (a 0-d tensor takes 0 and -1), or
    torch's IndexError when it is out of range."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-size}, {size - 1}], but got {dim})")
    return dim % size


def _restore(g, dims, keepdim, ndim):
    """Put back the reduced dims (as size 1) so `g` broadcasts against the input."""
    if keepdim or g.ndim == 0:  # a 0-d gradient already broadcasts against anything
        return g
    for d in dims:
        g = g.unsqueeze(d)
    return g


class Sum(Function):
    """out = sum of x over dim;  dx = g broadcast back to x's shape."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape = x.shape
        ctx.dims = _dims(dim, x.ndim)
        ctx.keepdim = keepdim
        if dim is None:
            return x.sum() if not keepdim else x.sum(dim=ctx.dims, keepdim=True)
        return x.sum(dim=dim, keepdim=keepdim)

    @staticmethod
    def backward(ctx, g):
        return _restore(g, ctx.dims, ctx.keepdim, len(ctx.shape)).expand(ctx.shape), None, None


class Mean(Function):
    """out = mean of x over dim (n elements);  dx = g / n broadcast back."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape = x.shape
        ctx.dims = _dims(dim, x.ndim)
        ctx.keepdim = keepdim
        ctx.count = max(1, int(torch.Size([x.shape[d] for d in ctx.dims if x.ndim]).numel()))
        if dim is None:
            return x.mean() if not keepdim else x.mean(dim=ctx.dims, keepdim=True)
        return x.mean(dim=dim, keepdim=keepdim)

    @staticmethod
    def backward(ctx, g):
        g = _restore(g, ctx.dims, ctx.keepdim, len(ctx.shape)) / ctx.count
        return g.expand(ctx.shape), None, None


class Var(Function):
    """out = sum((x - mean)**2) / (n - correction);  dx = g 2 (x - mean) / (n - correction).

    With no degrees of freedom left (n - correction <= 0) the result is inf or nan and
    so is the gradient, as in torch: along dims 2 / (n - correction) is taken as it
    comes (inf at 0, negative below); over all elements dx = g * out."""

    @staticmethod
    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        dims = _dims(dim, x.ndim)
        ctx.dims, ctx.keepdim, ctx.ndim = dims, keepdim, x.ndim
        n = int(torch.Size([x.shape[d] for d in dims]).numel()) if x.ndim else 1
        ctx.dof = n - correction
        ctx.whole = dim is None or not x.ndim or len(dims) == x.ndim
        out = torch.var(x, dim=dims if x.ndim else None, correction=correction,
                        keepdim=keepdim)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        return _var_backward(ctx, g, x, out), None, None, None


def _var_backward(ctx, g, x, var):
    """d var / dx pushed from g (g and var as the forward returned them)."""
    g = _restore(g, ctx.dims, ctx.keepdim, ctx.ndim)
    if ctx.dof <= 0 and ctx.whole:
        return (g * _restore(var, ctx.dims, ctx.keepdim, ctx.ndim)).expand(x.shape)
    factor = 2.0 / ctx.dof if ctx.dof else float("inf")
    centered = x - x.mean(dim=ctx.dims, keepdim=True) if x.ndim else x - x
    return g * centered * factor


class Std(Function):
    """out = sqrt(var(x));  dx = d var/dx pushed from g / (2 out), with g / (2 out) taken
    as 0 where out == 0 (a constant input), as torch, rather than 0 * inf = nan."""

    @staticmethod
    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        var = Var.forward(ctx, x, dim, correction, keepdim)
        out = torch.sqrt(var)
        ctx.save_for_backward(x, var, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, var, out = ctx.saved_tensors
        g_var = torch.where(out == 0, 0.0, g / (2 * out))
        return _var_backward(ctx, g_var, x, var), None, None, None


class Norm(Function):
    """out = (sum |x|^p)^(1/p) over dim (p > 0; p = inf: max |x|);
    dx = g sign(x) |x|^(p-1) / out^(p-1)  (p = 2: g x / out; p = 1: g sign(x);
    p = inf: g sign(x) shared evenly among the entries where |x| == out).
    As torch, the gradient is 0 where out == 0 (a zero input) rather than 0 / 0 = nan."""

    @staticmethod
    def forward(ctx, x, p=2, dim=None, keepdim=False):
        ctx.dims, ctx.keepdim, ctx.ndim, ctx.p = _dims(dim, x.ndim), keepdim, x.ndim, p
        dims = ctx.dims if x.ndim else None
        reduce_kw = {"dim": dims, "keepdim": keepdim} if dims is not None else {}
        if p == float("inf"):
            out = x.abs().amax(**reduce_kw) if x.ndim else x.abs()
        elif p == 2:
            out = torch.sqrt((x * x).sum(**reduce_kw))
        elif p == 1:
            out = x.abs().sum(**reduce_kw)
        else:
            out = x.abs().pow(p).sum(**reduce_kw).pow(1.0 / p)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        p = ctx.p
        g = _restore(g, ctx.dims, ctx.keepdim, ctx.ndim)
        out = _restore(out, ctx.dims, ctx.keepdim, ctx.ndim)
        if p == 1:
            return g * torch.sign(x), None, None, None
        if p == float("inf"):
            dims = ctx.dims if x.ndim else None
            mask = (x.abs() == out).to(x.dtype)
            count = mask.sum(dim=dims, keepdim=True) if dims is not None else mask
            grad = g * torch.sign(x) * mask / count
        elif p == 2:
            grad = g * x / out
        else:
            grad = g * torch.sign(x) * x.abs().pow(p - 1) / out.pow(p - 1)
        return torch.where(out == 0, 0.0, grad), None, None, None


class MaxAll(Function):
    """out = max (or min) over all elements;  ties share g evenly (as torch; when the
    result is NaN, the NaN entries share it)."""

    name = "max"

    @staticmethod
    def forward(ctx, x, largest=True):
        out = x.max() if largest else x.min()
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        hit = (x == out) | (x.isnan() & out.isnan())
        return g * hit / hit.sum(), None


class AmaxAmin(Function):
    """out = amax (or amin) over dims;  ties share g evenly (as torch)."""

    name = "amax"

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False, largest=True):
        dims = _dims(dim, x.ndim)
        ctx.dims, ctx.keepdim, ctx.ndim = dims, keepdim, x.ndim
        reduce = torch.amax if largest else torch.amin
        out = reduce(x, dim=dims, keepdim=keepdim)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        out = _restore(out, ctx.dims, ctx.keepdim, ctx.ndim)
        g = _restore(g, ctx.dims, ctx.keepdim, ctx.ndim)
        hit = x == out
        count = hit.sum(dim=ctx.dims, keepdim=True) if ctx.ndim else hit
        return g * hit / count, None, None, None


class MaxDim(Function):
    """values, indices = max (or min) along dim;  dx = g scattered to the indices."""

    name = "max"

    @staticmethod
    def forward(ctx, x, dim, keepdim=False, largest=True):
        values, indices = (x.max if largest else x.min)(dim=dim, keepdim=keepdim)
        ctx.save_for_backward(indices)
        ctx.shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        return values, indices

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_tensors
        if not ctx.keepdim and len(ctx.shape):
            g, indices = g.unsqueeze(ctx.dim), indices.unsqueeze(ctx.dim)
        grad = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
        if not len(ctx.shape):
            return g.clone(), None, None, None
        return grad.scatter_(ctx.dim, indices, g), None, None, None


class LogSumExp(Function):
    """out = m + log(sum(e**(x - m))), m = max (stable);  dx = g softmax(x)."""

    @staticmethod
    def forward(ctx, x, dim, keepdim=False):
        dims = _dims(dim, x.ndim)
        m = x.amax(dim=dims, keepdim=True) if x.ndim else x
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        out = (x - m).exp().sum(dim=dims, keepdim=True).log() + m
        ctx.save_for_backward(x, out)
        ctx.dims, ctx.keepdim = dims, keepdim
        return out if keepdim or not x.ndim else out.squeeze(dims)

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        g = _restore(g, ctx.dims, ctx.keepdim, x.ndim)
        return g * torch.exp(x - out), None, None


class Softmax(Function):
    """y = e**(x - max) / sum e**(x - max) along dim;  dx = y (g - sum(g y))."""

    @staticmethod
    def forward(ctx, x, dim):
        floating_only("softmax", x)
        e = torch.exp(x - x.amax(dim=dim, keepdim=True))
        y = e / e.sum(dim=dim, keepdim=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(dim=ctx.dim, keepdim=True)), None


class LogSoftmax(Function):
    """y = x - logsumexp(x) along dim;  dx = g - softmax(x) sum(g)."""

    name = "log_softmax"

    @staticmethod
    def forward(ctx, x, dim):
        floating_only("log_softmax", x)
        shifted = x - x.amax(dim=dim, keepdim=True)
        y = shifted - shifted.exp().sum(dim=dim, keepdim=True).log()
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g - torch.exp(y) * g.sum(dim=ctx.dim, keepdim=True), None
