"""Pooling: max and average pooling over 1, 2 or 3 spatial dims, adaptive-average pooling
over 1 or 2 and adaptive max pooling over 2, each one fused graph node with a
hand-derived backward. MaxPool and AvgPool are written over any number of spatial dims
(the window view, the offset scan and the transposed window sum loop over dims and
kernel offsets), so max_pool3d / avg_pool3d are the same nodes as the 2-d ones.

The shared geometry (as torch's pooling_output_shape): a kernel of size k with dilation d
and stride s over a length S padded by p on both sides gives
    out = floor((S + 2p - d (k - 1) - 1 (+ s - 1 with ceil_mode)) / s) + 1
positions, less one with ceil_mode when the last window would start at or past S + p
(in the right padding). Position o of kernel offset i reads padded index o s + i d.
The windows are a strided view of the padded input (Tensor.as_strided):

    windows  (N, C, *S) -> (N, C, *out, *k)   padded with -inf (max) or 0 (average),
                                              and on the right by what ceil_mode's last
                                              window reaches past the padding

    max      out = max over the window; the first maximum (row-major in the window) is
             the argmax, saved as a flat index into the input plane (torch's indices),
             found by one elementwise pass per kernel offset (_max_offset_scan);
             dx = g scattered to those indices (scatter_add_: overlapping windows add);
             windows that tile the input (stride = kernel, no padding, dilation 1) scan
             a blocks view (N, C, o_0, k_0, ..) instead, keep the winning offset as
             uint8 and build the int64 indices only when asked or in backward
             (_max_blocks)
    average  out = window sum / divisor, the divisor per output position as torch's
             (count_include_pad, divisor_override, windows cut at the padding's edge);
             dx = the transposed window sum of g / divisor (one strided add per kernel
             offset, the loop running over kernel offsets only)
    adaptive out = P_h x P_w^T with the pooling matrix P[o, j] = 1 / (end_o - start_o)
             for start_o = floor(o In / Out) <= j < end_o = ceil((o + 1) In / Out);
             dx = P_h^T g P_w
    adaptive max: the same windows gathered through index tables (the widest window's
             size, short rows repeating their last index), then as max pooling
    unpool   max pooling's partial inverse: a zero plane of the output size with each
             input value written at its flat plane index (torch's max_unpool);
             dx = g gathered at those indices

Left out: adaptive pooling of volumes (adaptive_avg_pool3d, adaptive_max_pool1d/3d),
lp_pool, fractional pooling, max_unpool3d.
"""

from __future__ import annotations

import itertools
import math

import torch

from handgrad.autograd import Function, HandgradError

__all__ = ["MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "max_pool1d",
           "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "adaptive_max_pool2d", "MaxUnpool", "max_unpool1d",
           "max_unpool2d"]


# ======================================================== geometry on raw torch tensors
def _output_length(size, kernel, stride, pad, dilation, ceil_mode) -> int:
    """torch's pooling_output_shape for one spatial dim."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _windows(x, kernel, stride, padding, dilation, out, fill) -> torch.Tensor:
    """(N, C, *S) -> (N, C, *out, *kernel): element [n, c, o.., i..] is the padded
    x[n, c, o s + i d ..]. A view (as_strided) of x, or of one padded copy of it."""
    spatial = x.shape[2:]
    highs = [max(0, (o - 1) * s + d * (k - 1) + 1 - size - p)
             for size, k, s, p, d, o in zip(spatial, kernel, stride, padding, dilation, out)]
    if any(padding) or any(highs):
        padded = x.new_full((*x.shape[:2], *(size + p + h for size, p, h in
                                             zip(spatial, padding, highs))), fill)
        padded[(..., *(slice(p, p + size) for size, p in zip(spatial, padding)))] = x
        x = padded
    strides = x.stride()[2:]
    return x.as_strided(
        (*x.shape[:2], *out, *kernel),
        (*x.stride()[:2], *(st * s for st, s in zip(strides, stride)),
         *(st * d for st, d in zip(strides, dilation))),
        x.storage_offset())


def _window_sum_transposed(g, spatial, kernel, stride, padding) -> torch.Tensor:
    """The adjoint of summing windows: (N, C, *out) -> (N, C, *spatial), each output's
    value added to every input position its window covers (padding cropped off). One
    strided add per kernel offset (dilation 1, as average pooling has)."""
    out = g.shape[2:]
    canvas_size = [max(size + p, (o - 1) * s + k)
                   for size, k, s, p, o in zip(spatial, kernel, stride, padding, out)]
    canvas = g.new_zeros(*g.shape[:2], *canvas_size)
    for offset in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(i, i + s * (o - 1) + 1, s) for i, s, o in zip(offset, stride, out))
        canvas[(..., *window)] += g
    return canvas[(..., *(slice(p, p + size) for size, p in zip(spatial, padding)))]


def _divisor(spatial, kernel, stride, padding, out, count_include_pad, like):
    """torch's avg_pool divisor for every output position, shape (*out): the window cut
    at the padding's far edge (count_include_pad) or at the input's (not)."""
    divisor = None
    for axis, (size, k, s, p, o) in enumerate(zip(spatial, kernel, stride, padding, out)):
        start = torch.arange(o, device=like.device) * s - p
        end = torch.clamp(start + k, max=size + p)
        if count_include_pad:
            count = end - start
        else:
            count = end.clamp(max=size) - start.clamp(min=0)
        count = count.reshape(-1, *(1,) * (len(out) - axis - 1)).to(like.dtype)
        divisor = count if divisor is None else divisor * count
    return divisor


def _window_table(size, out, device) -> torch.Tensor:
    """(out, K): row o lists torch's adaptive window floor(o size / out) ..
    ceil((o + 1) size / out) - 1, its tail repeating the last index (K: the widest)."""
    o = torch.arange(out, device=device)
    start = (o * size) // out
    end = ((o + 1) * size + out - 1) // out
    widest = int((end - start).max()) if out else 1
    table = start[:, None] + torch.arange(widest, device=device)
    return torch.minimum(table, end[:, None] - 1)


def _scatter_to_planes(g, index, shape) -> torch.Tensor:
    """dx of shape (N, C, *S) with g[n, c, o] added at the flat plane index[n, c, o]."""
    planes = shape[0] * shape[1]
    dx = g.new_zeros(planes, math.prod(shape[2:]))
    dx.scatter_add_(1, index.reshape(planes, -1), g.reshape(planes, -1))
    return dx.reshape(shape)


def _pooling_matrix(size, out, like) -> torch.Tensor:
    """(out, size): row o averages positions floor(o size / out) .. ceil((o+1) size / out) - 1."""
    o = torch.arange(out, device=like.device)
    start = (o * size) // out
    end = ((o + 1) * size + out - 1) // out
    j = torch.arange(size, device=like.device)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


# ============================================================== the fused Functions
class MaxPool(Function):
    """out[n, c, o] = max over kernel offsets i of x_padded[n, c, o s + i d] (padding is
    -inf), for 1, 2 or 3 spatial dims; also (with_indices) the argmax as a flat index into
    x's plane.

    Only the first maximum of each window (row-major) gets its output's gradient, as in
    torch; windows overlap when s < k d, so the scatter adds:
        dx.flat[n, c, index[n, c, o]] += g[n, c, o]      (scatter_add_ over the plane).
    Only the int64 indices are saved. Tiling windows (stride = kernel, no padding,
    dilation 1, no ceil_mode window past the input) take _max_blocks instead, which
    saves the winning offset as uint8 when no indices are asked for; backward then
    builds the indices from it."""

    name = "max_pool"

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, out, with_indices=True):
        ctx.unbatched = x.ndim == len(kernel) + 1
        if ctx.unbatched:
            x = x.unsqueeze(0)
        n = len(kernel)
        ctx.blocks = False
        if _tiles(x.shape[2:], kernel, stride, padding, dilation, out):
            result = _max_blocks(ctx, x, kernel, out, with_indices)
            if result is not None:
                return result
        view = _windows(x, kernel, stride, padding, dilation, out, float("-inf"))
        if math.prod(kernel) <= _OFFSET_SCAN_LIMIT:
            values, index = _max_outputs(ctx, x, *_max_offset_scan(
                view, x.shape, kernel, stride, padding, dilation))
            return (values, index) if with_indices else values
        values, argmax = view.reshape(*view.shape[:2 + n], -1).max(-1)  # (N, C, *out)
        # argmax (row-major offset in the window) -> flat index into the input plane
        index = torch.zeros_like(argmax)
        rest = argmax
        for axis in reversed(range(n)):
            rest, offset = rest.div(kernel[axis], rounding_mode="floor"), rest % kernel[axis]
            position = torch.arange(out[axis], device=x.device) * stride[axis]
            position = position.reshape(-1, *(1,) * (n - axis - 1))
            coordinate = _first_inside(position + offset * dilation[axis] - padding[axis],
                                       padding[axis], dilation[axis])
            index += coordinate * math.prod(x.shape[3 + axis:])
        values, index = _max_outputs(ctx, x, values, index)
        return (values, index) if with_indices else values

    @staticmethod
    def backward(ctx, g):
        return _max_input_gradient(ctx, g), None, None, None, None, None, None


def _tiles(spatial, kernel, stride, padding, dilation, out) -> bool:
    """True when the windows tile the input: stride = kernel, no padding, dilation 1,
    every window inside (2 to 255 offsets: the winning offset is a uint8)."""
    return (tuple(stride) == tuple(kernel) and not any(padding) and max(dilation) == 1
            and 2 <= math.prod(kernel) <= _OFFSET_SCAN_LIMIT
            and all(o * k <= size for o, k, size in zip(out, kernel, spatial)))


def _blocks(t, kernel, out) -> torch.Tensor:
    """(N, C, *S) -> (N, C, o_0, k_0, o_1, k_1 ..): a view of t's first o_a k_a rows
    along each axis, element [n, c, o_0, i_0 ..] being t[n, c, o_0 k_0 + i_0 ..]."""
    shape, strides = list(t.shape[:2]), list(t.stride()[:2])
    for st, k, o in zip(t.stride()[2:], kernel, out):
        shape += [o, k]
        strides += [st * k, st]
    return t.as_strided(shape, strides, t.storage_offset())


def _block_slab(blocks, offset) -> torch.Tensor:
    """Kernel offset i's values of every window: blocks[n, c, :, i_0, :, i_1 ..]."""
    return blocks[(slice(None), slice(None),
                   *itertools.chain.from_iterable((slice(None), i) for i in offset))]


def _max_blocks(ctx, x, kernel, out, with_indices):
    """Max pooling over tiling windows, 3 to 4 elementwise kernels per offset on strided
    views of x, no copy of the windows: the running maximum
        values = max(values, slab_t)           (NaN propagates, as torch's max)
    and the winning offset's row-major ordinal t as a running maximum
        ordinal = max(ordinal, t [slab_t > values])     (t rises: the last strict
    improvement, so the first maximum wins ties, as in torch). A NaN sum of the output
    (one reduction: a NaN, or +inf and -inf) returns None, handing the input back to
    _max_offset_scan (torch lets the last NaN of a window win, which the strict
    comparison misses). Without indices it saves only the uint8 ordinals (ctx.blocks);
    backward builds the int64 indices from them (_block_indices)."""
    slabs = [_block_slab(_blocks(x, kernel, out), offset)
             for offset in itertools.product(*(range(k) for k in kernel))]
    values = torch.maximum(slabs[0], slabs[1])  # (N, C, *out)
    ordinal = torch.gt(slabs[1], slabs[0]).view(torch.uint8)
    for t in range(2, len(slabs)):
        torch.maximum(ordinal, torch.gt(slabs[t], values).view(torch.uint8) * t,
                      out=ordinal)
        torch.maximum(values, slabs[t], out=values)
    if math.isnan(float(values.sum())):
        return None
    if with_indices:
        return _max_outputs(ctx, x, values, _block_indices(ordinal, kernel, x.shape))
    ctx.blocks = True
    ctx.save_for_backward(ordinal)
    ctx.x_shape, ctx.kernel = x.shape, kernel
    return values[0] if ctx.unbatched else values


def _block_indices(ordinal, kernel, x_shape) -> torch.Tensor:
    """The flat plane indices of _max_blocks' winners: base(o) + delta(t), base(o) =
    sum_a o_a k_a W_a and delta(t) = sum_a i_a W_a for offset t = ravel(i) (W_a: the
    plane's stride along axis a), delta a K-entry table looked up by the ordinals."""
    n, out = len(kernel), ordinal.shape[2:]
    plane_strides = [math.prod(x_shape[3 + a:]) for a in range(n)]
    delta = torch.tensor([sum(i * w for i, w in zip(offset, plane_strides))
                          for offset in itertools.product(*(range(k) for k in kernel))],
                         device=ordinal.device)
    base = None
    for axis in range(n):
        position = torch.arange(out[axis], device=ordinal.device) * (
            kernel[axis] * plane_strides[axis])
        position = position.reshape(-1, *(1,) * (n - axis - 1))
        base = position if base is None else base + position
    return delta.take(ordinal.long()).add_(base)  # (N, C, *out)


# kernels of up to 255 offsets scan them (the ordinals are uint8); larger ones copy their
# windows and take torch.max, whose NaN pick (the first) is not the pooling kernel's
_OFFSET_SCAN_LIMIT = 255


def _max_offset_scan(view, x_shape, kernel, stride, padding, dilation):
    """Max pooling's values and flat plane indices by one pass per kernel offset over
    the window view (N, C, *out, *k), no copy of the windows: offset i's slab replaces
    the running maximum where it is larger or NaN (torch's CPU rule), so the first
    maximum in row-major order wins.

    Where it replaces, the offset's coordinates are recorded as prefix ordinals
    P_a = ravel(i_0 .. i_a) (uint8): along the row-major scan each P_a never decreases,
    so "the P_a of the last replacement" is a running maximum of better * P_a, far
    cheaper than a masked write. Then i_a = P_a - P_(a-1) k_a, and the plane index of
    window o, offset i is linear: base(o) + delta(i) with base(o) = sum_a (o_a s_a - p_a)
    W_a and delta(i) = sum_a i_a d_a W_a (W_a: the plane's stride along axis a)."""
    n = len(kernel)
    out = view.shape[2:2 + n]
    plane_strides = [math.prod(x_shape[3 + a:]) for a in range(n)]
    values, prefixes = None, []
    for offset in itertools.product(*(range(k) for k in kernel)):
        slab = view[(slice(None), slice(None), *(slice(None),) * n, *offset)]
        if values is None:
            values = slab.clone()
            prefixes = [torch.zeros(slab.shape, dtype=torch.uint8, device=slab.device)
                        for _ in range(n)]
            continue
        better = ((slab > values) | slab.isnan()).view(torch.uint8)
        ordinal = 0
        for axis in range(n):
            ordinal = ordinal * kernel[axis] + offset[axis]
            if ordinal:
                prefixes[axis] = torch.maximum(prefixes[axis], better * ordinal)
        values = torch.maximum(values, slab)  # NaN stays NaN, as torch.max keeps it
    index = None
    for axis in range(n):
        position = torch.arange(out[axis], device=view.device) * stride[axis] - padding[axis]
        position = position.reshape(-1, *(1,) * (n - axis - 1))
        offset = prefixes[axis] - prefixes[axis - 1] * kernel[axis] if axis else \
            prefixes[0]  # i_a, the offset along this axis
        coordinate = _first_inside(offset.long() * dilation[axis] + position,
                                   padding[axis], dilation[axis])
        term = coordinate * plane_strides[axis]
        index = term if index is None else index + term
    return values, index


def _first_inside(coordinate, pad, dilation):
    """A window whose every input value is -inf keeps its first offset, which may lie in
    the left padding; torch then reports the window's first position inside the input
    (its hstart += dilation while < 0). Only that offset can be outside (padding, -inf,
    never wins a comparison), so a negative coordinate c becomes c mod dilation."""
    if not pad:
        return coordinate
    if dilation == 1:
        return coordinate.clamp_(min=0)
    return torch.where(coordinate < 0, coordinate % dilation, coordinate)


def _max_outputs(ctx, x, values, index):
    """Max pooling's results (values and flat indices, unbatched again if the input was);
    saves the indices, all its backward needs."""
    ctx.save_for_backward(index)
    ctx.x_shape = x.shape
    if ctx.unbatched:
        return values[0], index[0]
    return values, index


def _max_input_gradient(ctx, g):
    """dx.flat[n, c, index[n, c, o]] += g[n, c, o], for both max poolings (the indices
    rebuilt from _max_blocks' ordinals where it saved those)."""
    (index,) = ctx.saved_tensors
    if getattr(ctx, "blocks", False):
        index = _block_indices(index, ctx.kernel, ctx.x_shape)
    dx = _scatter_to_planes(g, index, ctx.x_shape)
    return dx[0] if ctx.unbatched else dx


class AdaptiveMaxPool(Function):
    """out[n, c, oh, ow] = max of x[n, c, h, w] over torch's adaptive window
    floor(oh H / Oh) <= h < ceil((oh + 1) H / Oh) (and so for w); also its argmax as a
    flat index h W + w into the plane.

    The windows, of varying size, are gathered as (Oh, Kh) and (Ow, Kw) index tables
    (K: the largest window), each row's tail repeating its last index: a repeat comes
    after the original, so the first maximum stays the first. As for max pooling,
        dx.flat[n, c, index[n, c, o]] += g[n, c, o]      (scatter_add_ over the plane)."""

    name = "adaptive_max_pool"

    @staticmethod
    def forward(ctx, x, output_size):
        ctx.unbatched = x.ndim == 3
        if ctx.unbatched:
            x = x.unsqueeze(0)
        rows, cols = (_window_table(size, o, x.device)
                      for size, o in zip(x.shape[2:], output_size))  # (O, K) each
        view = x[:, :, rows[:, :, None, None], cols[None, None]]  # (N, C, Oh, Kh, Ow, Kw)
        view = view.permute(0, 1, 2, 4, 3, 5)
        window = rows.shape[1] * cols.shape[1]
        values, argmax = view.reshape(*view.shape[:4], window).max(-1)  # (N, C, Oh, Ow)
        i, j = argmax.div(cols.shape[1], rounding_mode="floor"), argmax % cols.shape[1]
        oh = torch.arange(rows.shape[0], device=x.device)[:, None]  # (Oh, 1)
        ow = torch.arange(cols.shape[0], device=x.device)  # (Ow,)
        index = rows[oh, i] * x.shape[3] + cols[ow, j]  # (N, C, Oh, Ow)
        return _max_outputs(ctx, x, values, index)

    @staticmethod
    def backward(ctx, g):
        return _max_input_gradient(ctx, g), None


class AvgPool(Function):
    """out[n, c, o] = (sum over kernel offsets i of x_padded[n, c, o s + i]) / D[o], for 1,
    2 or 3 spatial dims (padding is 0), D as torch: divisor_override, else the window's size
    cut at the padding's edge (count_include_pad) or at the input's edge.

    A linear map, so its gradient is the transposed window sum of the scaled upstream:
        dx[n, c, j] = sum over the windows o that cover j of g[n, c, o] / D[o].
    Nothing is saved but the geometry."""

    name = "avg_pool"

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, out, count_include_pad, divisor_override):
        ctx.unbatched = x.ndim == len(kernel) + 1
        if ctx.unbatched:
            x = x.unsqueeze(0)
        n = len(kernel)
        view = _windows(x, kernel, stride, padding, (1,) * n, out, 0.0)
        total = view.sum(tuple(range(2 + n, 2 + 2 * n)))  # (N, C, *out)
        if divisor_override:
            divisor = divisor_override
        else:
            divisor = _divisor(x.shape[2:], kernel, stride, padding, out, count_include_pad,
                               x)
        ctx.divisor, ctx.spatial = divisor, x.shape[2:]
        ctx.geometry = (kernel, stride, padding)
        y = total / divisor
        return y[0] if ctx.unbatched else y

    @staticmethod
    def backward(ctx, g):
        if ctx.unbatched:
            g = g.unsqueeze(0)
        dx = _window_sum_transposed(g / ctx.divisor, ctx.spatial, *ctx.geometry)
        return (dx[0] if ctx.unbatched else dx), None, None, None, None, None, None


class AdaptiveAvgPool(Function):
    """out = x P^T over the last dim (1-d), out = P_h x P_w^T over the last two (2-d),
    with the pooling matrices P (out, in) of torch's adaptive windows (module docstring).

    Linear in x:   dx = g P   (1-d),   dx = P_h^T g P_w   (2-d).
    Only the small pooling matrices are saved."""

    name = "adaptive_avg_pool"

    @staticmethod
    def forward(ctx, x, output_size):
        n = len(output_size)
        matrices = [_pooling_matrix(size, o, x) for size, o in zip(x.shape[-n:], output_size)]
        ctx.save_for_backward(*matrices)
        if n == 1:
            return torch.matmul(x, matrices[0].t())
        rows, cols = matrices
        return torch.matmul(torch.matmul(rows, x), cols.t())

    @staticmethod
    def backward(ctx, g):
        matrices = ctx.saved_tensors
        if len(matrices) == 1:
            return torch.matmul(g, matrices[0]), None
        rows, cols = matrices
        return torch.matmul(torch.matmul(rows.t(), g), cols), None


class MaxUnpool(Function):
    """out.flat[n, c, index[n, c, o]] = x[n, c, o] on a zero plane of the output size
    (torch's max_unpool; where indices repeat, one of the values is kept).

    Each output element is one input element or zero, so the gradient reads back where
    each input went:   dx[n, c, o] = g.flat[n, c, index[n, c, o]]   (a gather).
    Only the indices are saved."""

    name = "max_unpool"

    @staticmethod
    def forward(ctx, x, indices, output_size):
        ctx.unbatched = x.ndim == len(output_size) + 1
        if ctx.unbatched:
            x, indices = x.unsqueeze(0), indices.unsqueeze(0)
        planes = x.shape[0] * x.shape[1]
        flat_index = indices.reshape(planes, -1)
        out = x.new_zeros(planes, math.prod(output_size))
        out.scatter_(1, flat_index, x.reshape(planes, -1))
        ctx.save_for_backward(flat_index)
        ctx.x_shape = x.shape
        out = out.reshape(*x.shape[:2], *output_size)
        return out[0] if ctx.unbatched else out

    @staticmethod
    def backward(ctx, g):
        (flat_index,) = ctx.saved_tensors
        if ctx.unbatched:
            g = g.unsqueeze(0)
        dx = g.reshape(flat_index.shape[0], -1).gather(1, flat_index).reshape(ctx.x_shape)
        return (dx[0] if ctx.unbatched else dx), None, None


# ================================================================ argument handling
def _tuple(op: str, name: str, value, n: int) -> tuple[int, ...]:
    """An int or a sequence of 1 or n ints, as n ints."""
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise HandgradError(f"{op}: {name} must either be a single int, or a tuple of {n} "
                            f"ints, got {name}={value}")
    return value


_SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}


def _check_input(op: str, input, n: int) -> None:
    if input.ndim not in (n + 1, n + 2) or 0 in input.shape[-n - 1:]:
        raise HandgradError(
            f"{op}: Expected {n + 1}D or {n + 2}D (batch mode) tensor with optional 0 dim "
            f"batch size for input, but got: {list(input.shape)}; pass (N, C, "
            f"{_SPATIAL_NAMES[n]}) or an unbatched (C, {_SPATIAL_NAMES[n]})")
    if not input.dtype.is_floating_point:
        raise HandgradError(f"{op}: expected a floating-point input, got {input.dtype}; "
                            "convert it with .float()")


def _geometry(op, input, n, kernel_size, stride, padding, dilation, ceil_mode):
    """The checks of torch's pool shape check; returns the tuples and the output size."""
    kernel = _tuple(op, "kernel_size", kernel_size, n)
    stride = kernel if stride is None or stride == [] or stride == () else _tuple(
        op, "stride", stride, n)
    padding, dilation = _tuple(op, "padding", padding, n), _tuple(op, "dilation", dilation, n)
    if min(kernel) <= 0:
        raise HandgradError(f"{op}: kernel_size should be greater than zero, but got "
                            f"kernel_size={kernel}")
    if min(stride) <= 0:
        raise HandgradError(f"{op}: stride should not be zero (or negative), got "
                            f"stride={stride}")
    if min(dilation) <= 0:
        raise HandgradError(f"{op}: dilation should be greater than zero, got "
                            f"dilation={dilation}")
    if min(padding) < 0 or any(p > k // 2 for p, k in zip(padding, kernel)):
        raise HandgradError(
            f"{op}: pad should be at most half of effective kernel size, but got "
            f"padding={padding}, kernel_size={kernel} and dilation={dilation}; use less "
            "padding or a larger kernel")
    spatial = tuple(input.shape[-n:])
    out = tuple(_output_length(size, k, s, p, d, ceil_mode)
                for size, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
    if min(out) < 1:
        channels = input.shape[-n - 1]
        raise HandgradError(
            f"{op}: Given input size: ({'x'.join(map(str, (channels, *spatial)))}). "
            f"Calculated output size: ({'x'.join(map(str, (channels, *out)))}). Output "
            f"size is too small; use a smaller kernel_size, dilation or stride, or more "
            "padding")
    return kernel, stride, padding, dilation, out


def _max_pool(op, n, input, kernel_size, stride, padding, dilation, ceil_mode,
              return_indices):
    _check_input(op, input, n)
    kernel, stride, padding, dilation, out = _geometry(op, input, n, kernel_size, stride,
                                                       padding, dilation, ceil_mode)
    return MaxPool.apply(input, kernel, stride, padding, dilation, out, bool(return_indices))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """PyTorch's nn.functional.max_pool1d on (N, C, L) or unbatched (C, L): one fused node.
    With return_indices, also the argmax of each window as an index into L."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """PyTorch's nn.functional.max_pool2d on (N, C, H, W) or unbatched (C, H, W): one fused
    node. With return_indices, also the argmax of each window as a flat index into H W."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """PyTorch's nn.functional.max_pool3d on (N, C, D, H, W) or unbatched (C, D, H, W): one
    fused node. With return_indices, also the argmax of each window as a flat index into
    D H W."""
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def _avg_pool(op, n, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    _check_input(op, input, n)
    kernel, stride, padding, _, out = _geometry(op, input, n, kernel_size, stride, padding,
                                                1, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise HandgradError(f"{op}: divisor must be not zero (divisor_override=0); pass "
                            "None to divide by the window size")
    return AvgPool.apply(input, kernel, stride, padding, out, count_include_pad,
                         divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """PyTorch's nn.functional.avg_pool1d on (N, C, L) or unbatched (C, L): one fused node."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """PyTorch's nn.functional.avg_pool2d on (N, C, H, W) or unbatched (C, H, W): one
    fused node."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """PyTorch's nn.functional.avg_pool3d on (N, C, D, H, W) or unbatched (C, D, H, W): one
    fused node."""
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def _adaptive_sizes(op, n, input, output_size) -> tuple[int, ...]:
    """The checks of the adaptive pools; output_size as n ints (None: the input's)."""
    _check_input(op, input, n)
    if n == 1:
        sizes = _tuple(op, "output_size", output_size, 1)
    else:
        if output_size is None or isinstance(output_size, int):
            output_size = (output_size, output_size)
        if len(tuple(output_size)) != 2:
            raise HandgradError(f"{op}: output_size must be 2, got {output_size}")
        sizes = tuple(input.shape[-2 + i] if o is None else int(o)
                      for i, o in enumerate(output_size))
    if min(sizes) < 0:
        raise HandgradError(f"{op}: elements of output_size must be greater than or equal "
                            f"to 0, but got output_size={sizes}")
    return sizes


def _adaptive_avg_pool(op, n, input, output_size):
    return AdaptiveAvgPool.apply(input, _adaptive_sizes(op, n, input, output_size))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """PyTorch's nn.functional.adaptive_max_pool2d on (N, C, H, W) or (C, H, W); an entry
    of output_size may be None (keep that size). One fused node; with return_indices,
    also the argmax of each window as a flat index into H W."""
    sizes = _adaptive_sizes("adaptive_max_pool2d", 2, input, output_size)
    values, indices = AdaptiveMaxPool.apply(input, sizes)
    return (values, indices) if return_indices else values


def adaptive_avg_pool1d(input, output_size):
    """PyTorch's nn.functional.adaptive_avg_pool1d on (N, C, L) or (C, L): one fused node
    (a matmul with the pooling matrix)."""
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """PyTorch's nn.functional.adaptive_avg_pool2d on (N, C, H, W) or (C, H, W); an entry
    of output_size may be None (keep that size). One fused node (two matmuls)."""
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def _max_unpool(op, n, input, indices, kernel_size, stride, padding, output_size):
    """torch's checks of max_unpool (its _unpool_output_size, then the kernel's), then one
    MaxUnpool node."""
    _check_input(op, input, n)
    kernel = _tuple(op, "kernel_size", kernel_size, n)
    stride = kernel if stride is None else _tuple(op, "stride", stride, n)
    padding = _tuple(op, "padding", padding, n)
    raw_indices = getattr(indices, "data", indices)
    if not isinstance(raw_indices, torch.Tensor) or raw_indices.dtype != torch.int64:
        raise HandgradError(
            f"{op}: elements in indices should be type int64 but got: "
            f"{getattr(raw_indices, 'dtype', type(indices).__name__)}; pass the indices "
            f"that max_pool{n}d(..., return_indices=True) returns")
    if tuple(raw_indices.shape) != tuple(input.shape):
        raise HandgradError(
            f"{op}: Expected shape of indices to be same as that of the input tensor "
            f"({list(input.shape)}) but got indices tensor with shape: "
            f"{list(raw_indices.shape)}")
    if raw_indices.device != input.data.device:
        raise HandgradError(f"{op}: input ({input.data.device}) and indices "
                            f"({raw_indices.device}) should be on the same device")
    spatial = input.shape[-n:]
    default = [(size - 1) * s + k - 2 * p
               for size, s, k, p in zip(spatial, stride, kernel, padding)]
    if output_size is None:
        sizes = default
    else:
        sizes = [int(o) for o in ((output_size,) if isinstance(output_size, int)
                                  else output_size)]
        if len(sizes) == n + 2:
            sizes = sizes[2:]
        if len(sizes) != n:
            raise ValueError(
                f"{op}: output_size should be a sequence containing {n} or {n + 2} "
                f"elements, but it has a length of '{len(sizes)}'")
        for d, (o, low, s) in enumerate(zip(sizes, default, stride)):
            if not (low - s < o < low + s):
                raise ValueError(
                    f'{op}: invalid output_size "{sizes}" (dim {d} must be between '
                    f"{low - s} and {low + s}) for input of size {list(input.shape)}, "
                    f"kernel_size={kernel}, stride={stride}, padding={padding}")
    if min(sizes) < 0:
        raise ValueError(f"{op}: output_size must contain non-negative spatial dimensions, "
                         f"but got output_size={sizes}")
    plane = math.prod(sizes)
    if raw_indices.numel() and (int(raw_indices.min()) < 0 or int(raw_indices.max()) >= plane):
        bad = raw_indices[(raw_indices < 0) | (raw_indices >= plane)].flatten()[0]
        raise HandgradError(
            f"{op}: Found an invalid max index: {int(bad)} (output volumes are of size "
            f"{'x'.join(map(str, sizes))}); indices must come from the max pooling whose "
            "output this is, with the same geometry")
    return MaxUnpool.apply(input, indices, tuple(sizes))


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """PyTorch's nn.functional.max_unpool1d on (N, C, L) or unbatched (C, L): each value
    written at its index into a zero output of length (L - 1) stride - 2 padding +
    kernel_size (or output_size). One fused node."""
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """PyTorch's nn.functional.max_unpool2d on (N, C, H, W) or unbatched (C, H, W): each
    value written at its flat index into a zero (H_out, W_out) plane. One fused node."""
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding,
                       output_size)
