"""Tensor methods of the indexing family, as a mixin of handgrad.Tensor (kept out of
_tensor.py so that file stays readable; the ops themselves live in handgrad/ops/).

Here: scatter / scatter_add / index_add / index_put / index_fill and their in-place
forms, unfold (sliding windows along a dim), masked_select, take_along_dim, nonzero /
argwhere, repeat_interleave, tile, roll, unique, movedim / moveaxis, swapaxes / swapdims.

The differentiable ones are Functions of handgrad/ops/indexing.py (scatter, scatter_add,
index_add, index_put, masked_select, repeat_interleave, roll), ops/fill.py (index_fill)
and ops/movement.py (unfold); take_along_dim (expand then gather), tile (repeat),
movedim (permute) and swapaxes (transpose) are written with existing ops and get their
gradient from them. nonzero, argwhere and unique return
integer tensors or values without a gradient, as in torch.

In-place forms follow the other in-place ops of Tensor: on a tensor outside the graph
they write into its data; on a non-leaf in the graph they record the out-of-place op and
take its place; on a leaf that requires grad they raise, as torch.

This module must not import handgrad._tensor at import time (that module imports this
one): results are made with Function.apply or `self._result_type._make(data, False,
None)`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from handgrad.autograd import TensorBase
from handgrad.ops.fill import IndexFill
from handgrad.ops.indexing import (
    IndexAdd,
    IndexPut,
    MaskedSelect,
    RepeatInterleave,
    Roll,
    Scatter,
    ScatterAdd,
)
from handgrad.ops.movement import Gather, Unfold
from handgrad.ops.reduce import wrap_dim

__all__: list[str] = []


def _raw(x):
    """The torch tensor of a handgrad Tensor; anything else as it is."""
    return x.data if isinstance(x, TensorBase) else x


def _dim(op: str, dim, ndim: int) -> int:
    """A non-negative dim (0-d tensors take dims 0 and -1), or torch's IndexError."""
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    try:
        return wrap_dim(dim, ndim)
    except IndexError as error:
        raise IndexError(f"{op}: {error}") from None


def _index(op: str, index) -> torch.Tensor:
    index = _raw(index)
    if not isinstance(index, torch.Tensor):
        raise TypeError(f"{op}: index must be a tensor (int64), got {type(index).__name__}")
    return index


def _dims(dims) -> tuple:
    if len(dims) == 1 and isinstance(dims[0], Sequence | torch.Size):
        return tuple(dims[0])
    return tuple(dims)


def _index_fill_args(op: str, x, dim, index, value) -> tuple:
    """(dim, raw index) for index_fill, after torch's checks of index and value."""
    dim = _dim(op, dim, x.ndim)
    index = _index(op, index)
    if index.dtype != torch.int64:
        raise IndexError(f"{op}: index must be int64 (torch.long), got {index.dtype}; "
                         "convert with index.long()")
    if index.ndim > 1:
        raise RuntimeError(f"{op}: index must be a vector or a scalar, got shape "
                           f"{tuple(index.shape)}")
    if isinstance(value, TensorBase | torch.Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"{op}: value must be a number or a 0-d tensor, got a "
                               f"tensor of shape {tuple(value.shape)}")
    elif not isinstance(value, int | float | bool):
        raise TypeError(f"{op}: value must be a number or a 0-d tensor, got "
                        f"{type(value).__name__}")
    return dim, index


class _IndexingMethods:
    __slots__ = ()

    # ------------------------------------------------------------------ scatter family
    def scatter(self, dim, index, src=None, value=None, *, reduce=None):
        """out = self with out[..index..] = src (a tensor or a number), as torch.scatter;
        reduce='add' / 'multiply' combines instead. Gradients reach self and src."""
        if src is None:
            src = value
        elif value is not None:
            raise TypeError("scatter: give src or value, not both")
        if src is None:
            raise TypeError("scatter: missing src (a tensor) or value (a number)")
        if isinstance(src, TensorBase | torch.Tensor) is False and (
                isinstance(src, bool) or not isinstance(src, int | float)):
            raise TypeError(f"scatter: src must be a tensor or a number, got "
                            f"{type(src).__name__}")
        dim = _dim("scatter", dim, self.ndim)
        return Scatter.apply(self, src, dim, _index("scatter", index), reduce)

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        if self._check_inplace("scatter_", src):
            return self._rebind(self.scatter(dim, index, src, value, reduce=reduce),
                                "scatter_")
        src = _raw(src if src is not None else value)
        kwargs = {} if reduce is None else {"reduce": reduce}
        self.data.scatter_(dim, _index("scatter_", index), src, **kwargs)
        return self

    def scatter_add(self, dim, index, src):
        """out = self with src added at index along dim (repeated indices add up)."""
        if not isinstance(src, TensorBase | torch.Tensor):
            raise TypeError(f"scatter_add: src must be a tensor, got {type(src).__name__}")
        dim = _dim("scatter_add", dim, self.ndim)
        return ScatterAdd.apply(self, src, dim, _index("scatter_add", index))

    def scatter_add_(self, dim, index, src):
        if self._check_inplace("scatter_add_", src):
            return self._rebind(self.scatter_add(dim, index, src), "scatter_add_")
        self.data.scatter_add_(dim, _index("scatter_add_", index), _raw(src))
        return self

    def index_add(self, dim, index, source, *, alpha=1):
        """out = self with alpha * source's slices added at the slices `index` names along
        dim (repeated indices add up), as torch.index_add."""
        if not isinstance(source, TensorBase | torch.Tensor):
            raise TypeError(f"index_add: source must be a tensor, got "
                            f"{type(source).__name__}")
        dim = _dim("index_add", dim, self.ndim)
        return IndexAdd.apply(self, source, dim, _index("index_add", index), alpha)

    def index_add_(self, dim, index, source, *, alpha=1):
        if self._check_inplace("index_add_", source):
            return self._rebind(self.index_add(dim, index, source, alpha=alpha),
                                "index_add_")
        self.data.index_add_(dim, _index("index_add_", index), _raw(source), alpha=alpha)
        return self

    def index_put(self, indices, values, accumulate=False):
        """out = self with out[indices] = values (+= with accumulate), as
        torch.index_put; indices is a tuple of int64 or bool tensors."""
        if not isinstance(indices, tuple | list):
            raise TypeError(f"index_put: indices must be a tuple of tensors, got "
                            f"{type(indices).__name__}")
        raw = tuple(_raw(i) for i in indices)
        if not all(i is None or isinstance(i, torch.Tensor) for i in raw):
            raise TypeError("index_put: every entry of indices must be a tensor (int64 or "
                            f"bool), got {[type(i).__name__ for i in indices]}")
        if not isinstance(values, TensorBase | torch.Tensor):
            raise TypeError(f"index_put: values must be a tensor, got "
                            f"{type(values).__name__}")
        return IndexPut.apply(self, values, raw, bool(accumulate))

    def index_put_(self, indices, values, accumulate=False):
        if self._check_inplace("index_put_", values):
            return self._rebind(self.index_put(indices, values, accumulate), "index_put_")
        self.data.index_put_(tuple(_raw(i) for i in indices), _raw(values),
                             accumulate=accumulate)
        return self

    def index_fill(self, dim, index, value):
        """out = self with every slice along dim that index names set to value (a number
        or a 0-d tensor), as torch.index_fill; the filled slices give self no gradient,
        and a 0-d tensor value gets the sum of g over them."""
        dim, index = _index_fill_args("index_fill", self, dim, index, value)
        return IndexFill.apply(self, dim, index, value)

    def index_fill_(self, dim, index, value):
        if self._check_inplace("index_fill_", value):
            return self._rebind(self.index_fill(dim, index, value), "index_fill_")
        dim, index = _index_fill_args("index_fill_", self, dim, index, value)
        self.data.index_fill_(dim, index, _raw(value))
        return self

    def unfold(self, dimension, size, step):
        """Every window of `size` elements along `dimension`, windows starting `step`
        apart, as a new last dim: shape (..., (n - size) // step + 1, ..., size), as
        torch's Tensor.unfold (a view of self; overlapping windows add their gradients)."""
        for what, value in (("size", size), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"unfold: {what} must be an int, got "
                                f"{type(value).__name__}")
        dim = _dim("unfold", dimension, self.ndim)
        n = self.shape[dim] if self.ndim else 1
        if size < 0:
            raise RuntimeError(f"unfold: size is {size} but must be >= 0")
        if size > n:
            raise RuntimeError(f"unfold: maximum size for tensor at dimension {dim} is {n} "
                               f"but size is {size} (shape {tuple(self.shape)})")
        if step <= 0:
            raise RuntimeError(f"unfold: step is {step} but must be > 0")
        return Unfold.apply(self, dim, size, step)

    # ------------------------------------------------------------------ selection
    def masked_select(self, mask):
        """The elements where mask (broadcast with self) holds, as a 1-d tensor."""
        mask = _raw(mask)
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"masked_select: mask must be a bool tensor, got "
                            f"{type(mask).__name__}")
        return MaskedSelect.apply(self, mask)

    def take_along_dim(self, indices, dim=None):
        """out = self.gather(dim, indices) after broadcasting the two (all dims but dim);
        dim=None: over the flattened tensor. Its gradient comes from expand and gather."""
        idx = _index("take_along_dim", indices)
        if idx.dtype != torch.int64:
            raise RuntimeError(f"take_along_dim: indices must be int64 (torch.long), got "
                               f"{idx.dtype}; convert with indices.long()")
        if dim is None:
            return Gather.apply(self.reshape(-1), 0, idx.reshape(-1))
        if idx.ndim != self.ndim:
            raise RuntimeError(
                f"take_along_dim: input (shape {tuple(self.shape)}) and indices (shape "
                f"{tuple(idx.shape)}) must have the same number of dims")
        dim = _dim("take_along_dim", dim, self.ndim)
        if self.ndim == 0:
            return Gather.apply(self, 0, idx)
        sizes = list(self.shape)
        sizes[dim] = idx.shape[dim]
        try:
            shape = list(torch.broadcast_shapes(tuple(sizes), idx.shape))
        except RuntimeError:
            raise RuntimeError(
                f"take_along_dim: input (shape {tuple(self.shape)}) and indices (shape "
                f"{tuple(idx.shape)}) do not broadcast outside dim {dim}") from None
        idx = idx.expand(shape)
        shape[dim] = self.shape[dim]
        x = self if list(self.shape) == shape else self.expand(shape)
        return Gather.apply(x, dim, idx)

    def nonzero(self, *, as_tuple=False):
        """Indices of the nonzero elements: an (n, ndim) int64 tensor, or with
        as_tuple=True one 1-d tensor per dim (no gradient)."""
        make = self._result_type._make
        if as_tuple:
            return tuple(make(d, False, None) for d in torch.nonzero(self.data,
                                                                      as_tuple=True))
        return make(torch.nonzero(self.data), False, None)

    def argwhere(self):
        """= nonzero(): an (n, ndim) int64 tensor of the nonzero positions."""
        return self._result_type._make(torch.argwhere(self.data), False, None)

    # ------------------------------------------------------------------ repeating, moving
    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        """Each slice along dim repeated repeats[i] times (an int or a 1-d int tensor);
        dim=None flattens first. The gradient sums g over each slice's copies."""
        repeats = _raw(repeats)
        if isinstance(repeats, bool) or not isinstance(repeats, int | torch.Tensor):
            raise TypeError(f"repeat_interleave: repeats must be an int or an int tensor, "
                            f"got {type(repeats).__name__}")
        x = self
        if dim is None:
            x, dim = self.reshape(-1), 0
        elif self.ndim == 0:
            x, dim = self.reshape(1), 0
            _dim("repeat_interleave", dim, 0)
        else:
            dim = _dim("repeat_interleave", dim, self.ndim)
        if isinstance(repeats, torch.Tensor) and repeats.ndim > 1:
            raise RuntimeError(f"repeat_interleave: repeats must be 0-d or 1-d, got shape "
                               f"{tuple(repeats.shape)}")
        return RepeatInterleave.apply(x, repeats, dim, output_size)

    def tile(self, *dims):
        """self repeated dims[i] times along each dim; fewer dims than self.ndim are
        padded with 1s in front (as torch.tile), more add leading dims."""
        dims = _dims(dims)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
            raise TypeError(f"tile: dims must be ints, got {dims}")
        dims = (1,) * (self.ndim - len(dims)) + dims
        return self.repeat(dims)

    def roll(self, shifts, dims=None):
        """Elements shifted by `shifts` along `dims` (wrapping around); dims=None rolls
        the flattened tensor and keeps the shape. The gradient rolls g back."""
        shifts = tuple(shifts) if isinstance(shifts, Sequence | torch.Size) else shifts
        if isinstance(dims, Sequence | torch.Size):
            dims = tuple(dims)
        if dims is None and isinstance(shifts, tuple) and len(shifts) != 1:
            raise RuntimeError(f"roll: with dims=None give one shift, got shifts {shifts}")
        if isinstance(dims, tuple) or isinstance(shifts, tuple):
            s = shifts if isinstance(shifts, tuple) else (shifts,)
            d = dims if isinstance(dims, tuple) else (dims,)
            if dims is not None and len(s) != len(d):
                raise RuntimeError(f"roll: shifts {s} and dims {d} must have the same "
                                   "length")
        return Roll.apply(self, shifts, dims)

    def movedim(self, source, destination):
        """Dims `source` moved to positions `destination`, the others keeping their
        order (a permute)."""
        src = tuple(source) if isinstance(source, Sequence) else (source,)
        dst = tuple(destination) if isinstance(destination, Sequence) else (destination,)
        if len(src) != len(dst):
            raise RuntimeError(
                f"movedim: source {src} and destination {dst} must have the same number "
                "of dims")
        src = tuple(_dim("movedim", d, self.ndim) for d in src)
        dst = tuple(_dim("movedim", d, self.ndim) for d in dst)
        if len(set(src)) != len(src) or len(set(dst)) != len(dst):
            raise RuntimeError(f"movedim: repeated dim in source {src} or destination "
                               f"{dst}")
        order = [None] * self.ndim
        for s, d in zip(src, dst):
            order[d] = s
        rest = iter(i for i in range(self.ndim) if i not in src)
        order = [next(rest) if o is None else o for o in order]
        if self.ndim == 0:
            return self.reshape(())
        return self.permute(order)

    moveaxis = movedim

    def swapaxes(self, axis0, axis1):
        return self.transpose(axis0, axis1)

    def swapdims(self, dim0, dim1):
        return self.transpose(dim0, dim1)

    # ------------------------------------------------------------------ no gradient
    def unique(self, sorted=True, return_inverse=False, return_counts=False,  # noqa: A002
               dim=None):
        """The distinct values (or slices along dim), with the inverse map and counts on
        request, as torch.unique; integer and value results carry no gradient."""
        out = torch.unique(self.data, sorted=sorted, return_inverse=return_inverse,
                           return_counts=return_counts, dim=dim)
        make = self._result_type._make
        if isinstance(out, tuple):
            return tuple(make(t, False, None) for t in out)
        return make(out, False, None)
