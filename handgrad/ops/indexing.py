"""Scatter-style writes and index-driven copies, each with a hand-written backward:
scatter (src tensor or value, reduce None / 'add' / 'multiply'), scatter_add, index_add,
index_put (accumulate or not), masked_select, repeat_interleave and roll.

Every one of them moves or adds elements of its inputs without changing them, so each
backward routes g back along the same index map:

- a position that was overwritten (scatter, index_put without accumulate) gives the
  target nothing: dx = g with those positions set to 0; the written value gets g there
  (dsrc = g.gather(dim, index), dvalues = g[indices] summed back to its shape);
- a position that was added to (scatter_add, index_add, index_put with accumulate) gives
  the target all of g (dx = g) and the added value its copy (gather / index_select / g[...]);
- a copy (masked_select, repeat_interleave, roll) sends g back to where each element came
  from, adding where one element was copied several times.

scatter with repeated indices along dim picks an arbitrary winner in torch; its gradient
is then defined only up to that choice (the registry draws distinct indices).

Left out: scatter_reduce (mean/amax/amin), index_copy, masked_scatter,
put / take, and the `out=` arguments (index_fill is in ops/fill.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function
from handgrad.autograd.engine import unbroadcast

__all__ = ["Scatter", "ScatterAdd", "IndexAdd", "IndexPut", "MaskedSelect",
           "RepeatInterleave", "Roll"]


def _pad_to(grad: torch.Tensor, shape) -> torch.Tensor:
    """`grad` (shaped like an index) placed in the leading corner of zeros of `shape`:
    scatter and scatter_add read src only over index's extent."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    out = torch.zeros(shape, dtype=grad.dtype, device=grad.device)
    out[tuple(slice(0, n) for n in grad.shape)] = grad
    return out


class Scatter(Function):
    """out = x.scatter(dim, index, src | value, reduce).

    reduce=None: out[..index..] = src;  dx = g.scatter(dim, index, 0),
    dsrc = g.gather(dim, index) (0 outside index's extent).
    reduce='add': out[..index..] += src;  dx = g, dsrc = g.gather(dim, index).
    reduce='multiply': out[..index..] *= src (distinct indices);
    dx = g * (1 scattered with src), dsrc = (g * x).gather(dim, index).
    With a number for src only x gets a gradient ('multiply' by v scales it by v).
    """

    name = "scatter"

    @staticmethod
    def forward(ctx, x, src, dim, index, reduce=None):
        ctx.dim, ctx.reduce = dim, reduce
        ctx.src_shape = src.shape if isinstance(src, torch.Tensor) else None
        if reduce is None:
            out = torch.scatter(x, dim, index, src)
        else:
            out = torch.scatter(x, dim, index, src, reduce=reduce)
        ctx.save_for_backward(index, x if reduce == "multiply" else None,
                              src if reduce == "multiply" and ctx.src_shape is not None
                              else None)
        ctx.value = src if ctx.src_shape is None else None
        return out

    @staticmethod
    def backward(ctx, g):
        index, x, src = ctx.saved_tensors
        dim, reduce = ctx.dim, ctx.reduce
        dx = dsrc = None
        if reduce is None:
            dx = g.scatter(dim, index, 0.0) if ctx.needs_input_grad[0] else None
            if ctx.needs_input_grad[1]:
                dsrc = _pad_to(g.gather(dim, index), ctx.src_shape)
        elif reduce == "add":
            dx = g
            if ctx.needs_input_grad[1]:
                dsrc = _pad_to(g.gather(dim, index), ctx.src_shape)
        else:  # multiply
            factor = torch.ones_like(g)
            factor = (factor.scatter(dim, index, src[tuple(slice(0, n) for n in index.shape)])
                      if src is not None else factor.scatter(dim, index, float(ctx.value)))
            dx = g * factor
            if ctx.needs_input_grad[1]:
                dsrc = _pad_to((g * x).gather(dim, index), ctx.src_shape)
        return dx, dsrc, None, None, None


class ScatterAdd(Function):
    """out = x.scatter_add(dim, index, src): out[..index[i]..] += src[i] (repeats add);
    dx = g, dsrc = g.gather(dim, index) (0 outside index's extent)."""

    name = "scatter_add"

    @staticmethod
    def forward(ctx, x, src, dim, index):
        ctx.save_for_backward(index)
        ctx.dim, ctx.src_shape = dim, src.shape
        return torch.scatter_add(x, dim, index, src)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        dsrc = (_pad_to(g.gather(ctx.dim, index), ctx.src_shape)
                if ctx.needs_input_grad[1] else None)
        return g, dsrc, None, None


class IndexAdd(Function):
    """out = x.index_add(dim, index, source, alpha): out.select(dim, index[i]) +=
    alpha * source.select(dim, i);  dx = g, dsource = alpha * g.index_select(dim, index)."""

    name = "index_add"

    @staticmethod
    def forward(ctx, x, source, dim, index, alpha=1):
        ctx.save_for_backward(index)
        ctx.dim, ctx.alpha, ctx.source_shape = dim, alpha, source.shape
        return torch.index_add(x, dim, index, source, alpha=alpha)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        dsource = None
        if ctx.needs_input_grad[1]:
            if g.ndim == 0:  # 0-d x: index holds the one position 0
                dsource = g.reshape(ctx.source_shape) * ctx.alpha
            else:
                dsource = g.index_select(ctx.dim, index).reshape(ctx.source_shape)
                if ctx.alpha != 1:
                    dsource = dsource * ctx.alpha
        return g, dsource, None, None, None


class IndexPut(Function):
    """out = x.index_put(indices, values, accumulate): out[indices] = values (or +=).

    accumulate=False: dx = g with g[indices] = 0;  accumulate=True: dx = g.
    dvalues = g[indices] summed over the dims values was broadcast along.
    (accumulate=False with repeated positions keeps one value arbitrarily, as torch.)
    """

    name = "index_put"

    @staticmethod
    def forward(ctx, x, values, indices, accumulate=False):
        ctx.indices, ctx.accumulate, ctx.values_shape = indices, accumulate, values.shape
        return torch.index_put(x, indices, values, accumulate=accumulate)

    @staticmethod
    def backward(ctx, g):
        dx = g
        if not ctx.accumulate and ctx.needs_input_grad[0]:
            dx = g.index_put(ctx.indices, torch.zeros((), dtype=g.dtype, device=g.device))
        dvalues = None
        if ctx.needs_input_grad[1]:
            dvalues = unbroadcast(g[ctx.indices], ctx.values_shape)
        return dx, dvalues, None, None


class MaskedSelect(Function):
    """out = the elements of x where mask holds (both broadcast together), flattened;
    dx = zeros.masked_scatter(mask, g) summed back to x's shape."""

    name = "masked_select"

    @staticmethod
    def forward(ctx, x, mask):
        out = torch.masked_select(x, mask)
        shape = torch.broadcast_shapes(x.shape, mask.shape)
        ctx.save_for_backward(mask.expand(shape))
        ctx.shape = x.shape
        return out

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        full = torch.zeros(mask.shape, dtype=g.dtype, device=g.device)
        return unbroadcast(full.masked_scatter(mask, g), ctx.shape), None


class RepeatInterleave(Function):
    """out = x.repeat_interleave(repeats, dim): slice i along dim repeated repeats[i]
    times;  dx = zeros.index_add(dim, source_of_each_output_slice, g)."""

    name = "repeat_interleave"

    @staticmethod
    def forward(ctx, x, repeats, dim, output_size=None):
        out = torch.repeat_interleave(x, repeats, dim, output_size=output_size)
        n = x.shape[dim]
        if isinstance(repeats, torch.Tensor):
            counts = repeats.expand(n) if repeats.numel() == 1 else repeats
        else:
            counts = torch.full((n,), repeats, dtype=torch.int64, device=x.device)
        source = torch.repeat_interleave(torch.arange(n, device=x.device),
                                         counts.to(x.device), output_size=out.shape[dim])
        ctx.save_for_backward(source)
        ctx.dim, ctx.shape = dim, x.shape
        return out

    @staticmethod
    def backward(ctx, g):
        (source,) = ctx.saved_tensors
        grad = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
        return grad.index_add_(ctx.dim, source, g), None, None, None


class Roll(Function):
    """out = x rolled by shifts along dims (elements leaving one end enter at the other);
    dx = g rolled back by -shifts."""

    name = "roll"

    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return torch.roll(x, shifts, dims)

    @staticmethod
    def backward(ctx, g):
        shifts = ctx.shifts
        back = -shifts if isinstance(shifts, int) else tuple(-s for s in shifts)
        return torch.roll(g, back, ctx.dims), None, None
