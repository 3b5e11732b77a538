"""Shape, movement and indexing primitives with hand-written backward.

The backward of a pure movement op moves the gradient back the same way (reshape back,
permute back, flip again); the backward of a selection (indexing, gather,
index_select, narrowing by pad) scatters the gradient into zeros, adding where one
element was selected more than once.

Left out: elementwise math (elementwise.py), reductions (reduce.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function, unbroadcast


class Reshape(Function):
    """out = x viewed with a new shape (copying if it must);  dx = g reshaped back.

    Serves view, reshape, flatten, squeeze and unsqueeze."""

    returns_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Permute(Function):
    """out = x with dims reordered;  dx = g permuted by the inverse order.

    Serves permute, transpose, .T and .mT."""

    returns_view = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.inverse = tuple(sorted(range(len(dims)), key=lambda i: dims[i] % len(dims)))
        return x.permute(dims)

    @staticmethod
    def backward(ctx, g):
        return g.permute(ctx.inverse), None


class Transpose(Function):
    """out = x with dims d0 and d1 swapped;  dx = g swapped back."""

    returns_view = True

    @staticmethod
    def forward(ctx, x, dim0, dim1):
        ctx.dims = (dim0, dim1)
        return x.transpose(dim0, dim1)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(*ctx.dims), None, None


class Expand(Function):
    """out = x broadcast to a larger shape (no copy);  dx = g summed over stretched dims."""

    returns_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.expand(shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape), None


def _is_basic(index) -> bool:
    """True when an index holds only ints, slices, None and Ellipsis (no duplicates)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, int | slice) for i in items)


class GetItem(Function):
    """out = x[index];  dx = zeros with g added at the selected positions.

    Basic indices (ints, slices with steps, None, Ellipsis) select each element at most
    once, so the gradient is written into a view. Advanced indices (integer tensors,
    boolean masks) may select an element several times: the gradient is scattered with
    index_add over flat positions, which adds the repeats."""

    returns_view = True

    name = "getitem"

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        ctx.basic = _is_basic(index)
        if not ctx.basic:
            ctx.save_for_backward(*(i for i in (index if isinstance(index, tuple) else (index,))
                                    if isinstance(i, torch.Tensor)))
        return x[index]

    @staticmethod
    def backward(ctx, g):
        grad = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
        if ctx.basic:
            grad[ctx.index] = g
            return grad, None
        ctx.saved_tensors  # noqa: B018 -- raises if an index tensor changed in place
        positions = torch.arange(grad.numel(), device=g.device).reshape(ctx.shape)[ctx.index]
        grad.view(-1).index_add_(0, positions.reshape(-1), g.reshape(-1))
        return grad, None


class Cat(Function):
    """out = inputs joined along dim;  d input_i = the slice of g that input_i filled."""

    @staticmethod
    def forward(ctx, *xs, dim=0):
        ctx.dim = dim
        ctx.sizes = [x.shape[dim] if x.ndim else 1 for x in xs]
        return torch.cat(xs, dim=dim)

    @staticmethod
    def backward(ctx, g):
        return tuple(g.split(ctx.sizes, dim=ctx.dim))


class Stack(Function):
    """out = inputs stacked along a new dim;  d input_i = g selected at position i."""

    @staticmethod
    def forward(ctx, *xs, dim=0):
        ctx.dim = dim
        return torch.stack(xs, dim=dim)

    @staticmethod
    def backward(ctx, g):
        return tuple(g.unbind(ctx.dim))


class Pad(Function):
    """out = x surrounded by `value` (torch's pad order: last dim first, (left, right));
    dx = the centre of g (the slice that x filled). Pads must be non-negative."""

    @staticmethod
    def forward(ctx, x, pad, value=0.0):
        if len(pad) % 2 or len(pad) // 2 > x.ndim:
            raise ValueError(f"pad: expected pairs for at most {x.ndim} dims, got {pad}")
        if any(p < 0 for p in pad):
            raise ValueError(f"pad: negative padding {pad} is not supported; slice instead")
        shape = list(x.shape)
        index = [slice(None)] * x.ndim
        for i in range(len(pad) // 2):
            d = x.ndim - 1 - i
            left, right = pad[2 * i], pad[2 * i + 1]
            shape[d] += left + right
            index[d] = slice(left, left + x.shape[d])
        ctx.index = tuple(index)
        out = torch.full(shape, value, dtype=x.dtype, device=x.device)
        out[ctx.index] = x
        return out

    @staticmethod
    def backward(ctx, g):
        return g[ctx.index], None, None


class Gather(Function):
    """out[i][j] = x[i][index[i][j]] (along dim);  dx = zeros scatter-added with g."""

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.save_for_backward(index)
        ctx.shape, ctx.dim = x.shape, dim
        return torch.gather(x, dim, index)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        grad = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
        return grad.scatter_add_(ctx.dim, index, g), None, None


class IndexSelect(Function):
    """out = x.index_select(dim, index);  dx = zeros index-added with g (repeats add)."""

    name = "index_select"

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.save_for_backward(index)
        ctx.shape, ctx.dim = x.shape, dim
        return torch.index_select(x, dim, index)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        grad = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
        return grad.index_add_(ctx.dim, index, g), None, None


class Repeat(Function):
    """out = x tiled `repeats` times per dim;  dx = g summed over the tiles."""

    @staticmethod
    def forward(ctx, x, repeats):
        ctx.shape = x.shape
        ctx.repeats = tuple(repeats)
        return x.repeat(repeats)

    @staticmethod
    def backward(ctx, g):
        repeats = ctx.repeats
        shape = (1,) * (len(repeats) - len(ctx.shape)) + tuple(ctx.shape)
        split = []
        for r, n in zip(repeats, shape):
            split += [r, n]
        g = g.reshape(split).sum(dim=tuple(range(0, 2 * len(repeats), 2)))
        return g.reshape(ctx.shape), None


class Flip(Function):
    """out = x reversed along dims;  dx = g reversed along the same dims."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return torch.flip(x, dims)

    @staticmethod
    def backward(ctx, g):
        return torch.flip(g, ctx.dims), None


class Tril(Function):
    """out = lower triangle of x (below `diagonal`), zeros elsewhere;  dx = tril(g)."""

    @staticmethod
    def forward(ctx, x, diagonal=0):
        ctx.diagonal = diagonal
        return torch.tril(x, diagonal)

    @staticmethod
    def backward(ctx, g):
        return torch.tril(g, ctx.diagonal), None


class Triu(Function):
    """out = upper triangle of x (above `diagonal`), zeros elsewhere;  dx = triu(g)."""

    @staticmethod
    def forward(ctx, x, diagonal=0):
        ctx.diagonal = diagonal
        return torch.triu(x, diagonal)

    @staticmethod
    def backward(ctx, g):
        return torch.triu(g, ctx.diagonal), None


class Unfold(Function):
    """out = x.unfold(dim, size, step): every window of `size` elements along dim, with
    windows starting `step` apart, as a new last dim (a strided view, as torch's).

    With L = (n - size) // step + 1 windows, out[..., i, ..., k] = x[..., i*step + k, ...]
    (i < L along dim, k < size in the new last dim). Each x element at position p along
    dim appears once for every (i, k) with i*step + k = p, so

        dx[..., p, ...] = sum over (i, k) with i*step + k = p of g[..., i, ..., k]

    (positions no window reaches get 0; overlapping windows, step < size, add up). The
    backward is one strided add per offset k: dx[k : k + (L-1)*step + 1 : step] += g[..., k]
    along dim, so the loop runs `size` times, never over elements.
    """

    name = "unfold"
    returns_view = True

    @staticmethod
    def forward(ctx, x, dim, size, step):
        ctx.shape, ctx.dim, ctx.step = x.shape, dim, step
        return x.unfold(dim, size, step)

    @staticmethod
    def backward(ctx, g):
        dim, step = ctx.dim, ctx.step
        if len(ctx.shape) == 0:  # a 0-d x: out is (size,), size 0 or 1
            return g.sum(), None, None, None
        dx = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
        windows = g.shape[dim]
        where = [slice(None)] * len(ctx.shape)
        for k in range(g.shape[-1]):
            where[dim] = slice(k, k + (windows - 1) * step + 1, step)
            dx[tuple(where)] += g[..., k]
        return dx, None, None, None
