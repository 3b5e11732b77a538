"""Norms and distances: normalize, cosine_similarity, pairwise_distance and pdist, each one
fused Function with its backward derived in its docstring.

All of them rest on the p-norm ||d||_p = (sum |d_i|**p)**(1/p) (p = inf: max |d_i|;
p = 0: the count of non-zeros) and its gradient, written once in `_norm_grad` with
torch's conventions: 0 where the norm is 0 (p = 2 and the others; sign(d) for p = 1),
and for p = inf the gradient shared among tied maxima (torch's norm backward) or given
whole to each of them (torch's pdist backward). The norms themselves are computed with
torch.linalg.vector_norm (a reduction of the array library).

Left out: cdist; the modules (handgrad/nn/distance.py).
"""

from __future__ import annotations

import math

import torch

from handgrad.autograd import Function, describe
from handgrad.ops.reduce import wrap_dim


def _norm_grad(d: torch.Tensor, norm: torch.Tensor, p: float, dim=-1,
               split_ties: bool = True) -> torch.Tensor:
    """d ||d||_p / d d, with `norm` = ||d||_p along `dim` kept as a size-1 dim:
        p = 0:     0                                 (the count of non-zeros is flat)
        p = 1:     sign(d)
        p = 2:     d / ||d||                         (0 where ||d|| = 0)
        p = inf:   sign(d) [|d_i| = max]             (/ the number of ties if split_ties)
        else:      sign(d) |d|**(p-1) / ||d||**(p-1) (0 where ||d|| = 0; p < 1: also 0
                                                      where d = 0, where |d|**(p-1) is inf)
    """
    if p == 0:
        return torch.zeros_like(d)
    if p == 1:
        return torch.sign(d)
    zero_norm = norm == 0
    if p == 2:
        return d / norm.masked_fill(zero_norm, 1) * ~zero_norm
    if math.isinf(p):
        ties = (d.abs() == norm).to(d.dtype)
        if split_ties:
            ties = ties / (ties.sum(dim, keepdim=True) if dim is not None else ties.sum())
        return torch.sign(d) * ties
    scaled = torch.sign(d) * d.abs().pow(p - 1)
    if p < 1:
        scaled = scaled.masked_fill(d == 0, 0)
    return scaled / norm.masked_fill(zero_norm, 1).pow(p - 1) * ~zero_norm


def _check_floating(op: str, *tensors) -> None:
    for t in tensors:
        if not t.dtype.is_floating_point:
            raise RuntimeError(
                f"{op}: Expected a floating point tensor as input, got {describe(t)} (as "
                "torch's linalg.vector_norm); convert it first, e.g. x.float()")


class Normalize(Function):
    """out = x / max(||x||_p, eps), the norm along dim (kept), as torch's
    x / x.norm(p, dim, keepdim=True).clamp_min(eps).

    With n = ||x||_p, c = max(n, eps) and dn/dx from _norm_grad:
        dx = g / c - (sum_dim g x / c**2) [n >= eps] dn/dx
           = (g - (sum_dim g out) [n >= eps] dn/dx) / c.
    (clamp_min passes the gradient where n >= eps, bound included, as torch.)
    """

    name = "normalize"

    @staticmethod
    def forward(ctx, x, p, dim, eps):
        norm = torch.linalg.vector_norm(x, p, dim, keepdim=True)
        clamped = norm.clamp_min(eps)
        out = x / clamped
        ctx.save_for_backward(x, norm, clamped, out)
        ctx.p, ctx.dim, ctx.eps = p, dim, eps
        return out

    @staticmethod
    def backward(ctx, g):
        x, norm, clamped, out = ctx.saved_tensors
        through = (g * out).sum(ctx.dim, keepdim=True) * (norm >= ctx.eps)
        # p = 2: dn/dx = x / n is `out` wherever the factor [n >= eps] lets it through
        # (there c = n); using it keeps float32's cancellation exact (g - g = 0 along a
        # size-1 dim, where x / n rounds differently from out)
        norm_grad = out if ctx.p == 2 else _norm_grad(x, norm, ctx.p, ctx.dim)
        return (g - through * norm_grad) / clamped, None, None, None


class CosineSimilarity(Function):
    """out = sum_dim (x1 / c1) (x2 / c2),  c_k = max(||x_k||, eps), the inputs broadcast
    first, as torch's (which divides each input by its norm before the product, so
    |out| <= 1, and clamps the norms outside the graph: the gradient sees c_k as n_k).

    With u_k = x_k / c_k, n_k = ||x_k|| and dn_k/dx_k = x_k / n_k (0 where n_k = 0):
        dx1 = g (u2 - out x1 / n1) / c1,    dx2 = g (u1 - out x2 / n2) / c2,
    each of the broadcast shape (the engine sums it back to the input's).
    """

    name = "cosine_similarity"

    @staticmethod
    def forward(ctx, x1, x2, dim, eps):
        x1, x2 = torch.broadcast_tensors(x1, x2)
        n1 = torch.linalg.vector_norm(x1, 2, dim, keepdim=True)
        n2 = torch.linalg.vector_norm(x2, 2, dim, keepdim=True)
        c1, c2 = n1.clamp_min(eps), n2.clamp_min(eps)
        out = ((x1 / c1) * (x2 / c2)).sum(dim)
        ctx.save_for_backward(x1, x2, n1, n2, c1, c2, out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, g):
        x1, x2, n1, n2, c1, c2, out = ctx.saved_tensors
        need1, need2 = ctx.needs_input_grad[:2]
        g = g.unsqueeze(ctx.dim)
        go = g * out.unsqueeze(ctx.dim)
        d1 = d2 = None
        if need1:
            d1 = (g * x2 / c2 - go * _norm_grad(x1, n1, 2, ctx.dim)) / c1
        if need2:
            d2 = (g * x1 / c1 - go * _norm_grad(x2, n2, 2, ctx.dim)) / c2
        return d1, d2, None, None


class PairwiseDistance(Function):
    """out = ||x1 - x2 + eps||_p along the last dim of the broadcast inputs (as torch,
    which adds eps to the difference before the norm).

    With d = x1 - x2 + eps:  dx1 = g dn/dd (_norm_grad, ties of p = inf shared),
    dx2 = -dx1.
    """

    name = "pairwise_distance"

    @staticmethod
    def forward(ctx, x1, x2, p, eps, keepdim):
        d = x1 - x2 + eps
        dim = -1 if d.ndim else None
        norm = torch.linalg.vector_norm(d, p, dim, keepdim=True)
        ctx.save_for_backward(d, norm)
        ctx.p, ctx.keepdim = p, keepdim
        return norm if keepdim or d.ndim == 0 else norm.squeeze(-1)

    @staticmethod
    def backward(ctx, g):
        d, norm = ctx.saved_tensors
        if not ctx.keepdim and d.ndim:
            g = g.unsqueeze(-1)
        grad = g * _norm_grad(d, norm, ctx.p, -1 if d.ndim else None)
        need1, need2 = ctx.needs_input_grad[:2]
        return grad if need1 else None, -grad if need2 else None, None, None, None


class PDist(Function):
    """out_k = ||x_i - x_j||_p for the rows i < j of x: (N, M), in row-major order of the
    upper triangle (N (N - 1) / 2 distances), as torch.nn.functional.pdist.

    With d_k = x_i - x_j and G_k = g_k dn/dd_k (_norm_grad; for p = inf each tied
    maximum gets the whole gradient, as torch's pdist backward):
        dx_i += G_k,   dx_j -= G_k    (two index_adds over the pairs).
    """

    name = "pdist"

    @staticmethod
    def forward(ctx, x, p):
        n = x.shape[0]
        rows, cols = torch.triu_indices(n, n, 1, device=x.device)
        d = x.index_select(0, rows) - x.index_select(0, cols)  # (P, M)
        norm = torch.linalg.vector_norm(d, p, 1, keepdim=True)  # (P, 1)
        ctx.save_for_backward(d, norm, rows, cols)
        ctx.p, ctx.shape = p, x.shape
        return norm.squeeze(1)

    @staticmethod
    def backward(ctx, g):
        d, norm, rows, cols = ctx.saved_tensors
        grad = g.unsqueeze(1) * _norm_grad(d, norm, ctx.p, 1, split_ties=False)
        out = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
        return out.index_add_(0, rows, grad).index_add_(0, cols, grad, alpha=-1), None


# ============================================================ the functional API
def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """x / max(||x||_p, eps) along dim, as torch.nn.functional.normalize. `out`, as
    torch's, receives the values and cannot be used where a gradient is needed."""
    _check_floating("normalize", input)
    result = Normalize.apply(input, float(p), wrap_dim(dim, input.ndim), eps)
    if out is None:
        return result
    if result.requires_grad:
        raise RuntimeError("normalize(): functions with out=... arguments don't support "
                           "automatic differentiation, but one of the arguments requires "
                           "grad (as torch); drop out= and use the returned tensor")
    out.copy_(result)
    return out


def _common_floating(op, x1, x2, promote_integers):
    """Both inputs in their common dtype (torch's result_type). cosine_similarity refuses
    an integer common dtype; pairwise_distance takes the default float dtype, as
    torch's x1 - x2 + eps does."""
    dtype = torch.result_type(x1.data, x2.data)
    if not dtype.is_floating_point:
        if not promote_integers:
            raise RuntimeError(f"{op}: expected common dtype to be floating point, yet "
                               f"common dtype is {dtype} (inputs {describe(x1)} and "
                               f"{describe(x2)}); convert them, e.g. x.float()")
        dtype = torch.get_default_dtype()
    return (x if x.dtype == dtype else x.to(dtype) for x in (x1, x2))


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum x1 x2 / (max(||x1||, eps) max(||x2||, eps)) along dim of the broadcast inputs
    (the norms clamped one by one, as torch)."""
    x1, x2 = _common_floating("cosine_similarity", x1, x2, promote_integers=False)
    ndim = max(x1.ndim, x2.ndim)
    return CosineSimilarity.apply(x1, x2, wrap_dim(dim, ndim), eps)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p along the last dim of the broadcast inputs."""
    x1, x2 = _common_floating("pairwise_distance", x1, x2, promote_integers=True)
    return PairwiseDistance.apply(x1, x2, float(p), eps, keepdim)


def pdist(input, p=2):
    """The p-norm distances between the rows of an (N, M) input, i < j, flattened."""
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D (input "
                           f"{describe(input)}); give it (N, M) rows")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"pdist only supports floating-point dtypes (got "
                           f"{describe(input)}); convert it first, e.g. x.float()")
    if p < 0:
        raise RuntimeError(f"pdist only supports non-negative p values (got p={p})")
    return PDist.apply(input, float(p))


