"""Convolution as matmuls over strided views: `unfold` (im2col), `fold` (col2im, its
adjoint), and `conv1d` / `conv2d` / `conv3d`, each one fused graph node with a
hand-derived backward. conv runs in one of four layouts of the same products, picked per call by
conv_strategy() (ConvNd's docstring): im2col per image ("columns"), im2col with images
side by side per group ("grouped"), im2col with the batch innermost ("batch_inner"), or
no columns at all, one matmul per kernel offset on shifted views of the padded input
("shift"). On CPU the column buffers are reused between calls (see _buffer).

The shared geometry (N spatial dims: 1, 2 or 3 for conv, 2 for unfold / fold): a kernel
of size k with dilation d and stride s over a padded length P = S + lo + hi gives
out = (P - d (k - 1) - 1) // s + 1 positions; position o of kernel offset i reads padded
index o s + i d.

    im2col  (N, C, *S) -> (N, C, *k, *out)   a strided view of the padded input
                                              (Tensor.as_strided), no copy until reshape
    col2im  (N, C, *k, *out) -> (N, C, *S)   one strided add per kernel offset into a
                                              zero canvas, then the padding cropped off

col2im is im2col's adjoint (<im2col(x), c> = <x, col2im(c)>), so each one's backward is
the other, and conv's input gradient is col2im of W^T g.

conv3d is the same ConvNd node: each of its layouts is written over any number of
spatial dims (the geometry is zipped per dim, im2col / col2im loop over kernel offsets,
"shift"'s flat shifts sum over dims), so a volume takes whichever layout conv_strategy()
picks by the same rules. The thresholds were timed on 2-d images; for volumes "shift"
is picked less often, as the padded grid's waste grows with each dim (a 3x3x3 kernel
padded by 1 needs a volume of 14^3 or more to stay under 1.5).

Left out: conv_transpose* (conv_transpose.py), padding modes other than zeros in the
functional form (the nn.Conv* modules pad with reflect / replicate / circular before
calling these), unfold / fold of volumes (torch has none).
"""

from __future__ import annotations

import itertools
import math
import sys
import threading

import torch

from handgrad.autograd import Function, HandgradError

__all__ = ["Unfold", "Fold", "ConvNd", "unfold", "fold", "conv1d", "conv2d", "conv3d"]


# ======================================================== geometry on raw torch tensors
def _output_size(spatial, kernel, dilation, pads, stride) -> tuple[int, ...]:
    """Number of kernel positions per spatial dim."""
    return tuple((size + lo + hi - d * (k - 1) - 1) // s + 1
                 for size, k, d, (lo, hi), s in zip(spatial, kernel, dilation, pads, stride))


def _pad(x: torch.Tensor, pads) -> torch.Tensor:
    """Zero padding of the trailing len(pads) dims, pads = ((lo, hi), ...)."""
    if not any(lo or hi for lo, hi in pads):
        return x
    n = len(pads)
    spatial = x.shape[-n:]
    out = x.new_zeros(*x.shape[:-n], *(s + lo + hi for s, (lo, hi) in zip(spatial, pads)))
    out[(..., *(slice(lo, lo + s) for s, (lo, _) in zip(spatial, pads)))] = x
    return out


def _im2col(x, kernel, dilation, pads, stride, out=None) -> torch.Tensor:
    """(N, C, *S) -> (N, C, *kernel, *out): element [n, c, i.., o..] is the padded
    x[n, c, o s + i d ..]. A view (as_strided of the padded input). `out` defaults to
    every position that fits; the transposed conv passes its input's size."""
    padded = _pad(x, pads)
    if out is None:
        out = _output_size(x.shape[2:], kernel, dilation, pads, stride)
    strides = padded.stride()
    spatial_strides = strides[2:]
    return padded.as_strided(
        (*padded.shape[:2], *kernel, *out),
        (*strides[:2], *(st * d for st, d in zip(spatial_strides, dilation)),
         *(st * s for st, s in zip(spatial_strides, stride))),
        padded.storage_offset())


def _col2im(cols, spatial, dilation, pads, stride) -> torch.Tensor:
    """(N, C, *kernel, *out) -> (N, C, *spatial): the sum, over kernel offsets i, of each
    offset's slab added at padded rows i d, i d + s, ...; then the padding is cropped.
    The loop runs over kernel offsets only (k_h k_w strided adds)."""
    n = len(spatial)
    kernel, out = cols.shape[2:2 + n], cols.shape[2 + n:]
    padded = [size + lo + hi for size, (lo, hi) in zip(spatial, pads)]
    canvas = cols.new_zeros(*cols.shape[:2], *padded)
    for offset in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                       for i, d, s, o in zip(offset, dilation, stride, out))
        canvas[(..., *window)] += cols[(slice(None), slice(None), *offset)]
    if not any(lo or hi for lo, hi in pads):
        return canvas
    return canvas[(..., *(slice(lo, lo + size) for size, (lo, _) in zip(spatial, pads)))]


# ============================================================== the fused Functions
class Unfold(Function):
    """im2col: x (N, C, H, W) -> cols (N, C kh kw, L), L = out_h out_w, with
    cols[n, (c, i, j), (p, q)] = x_padded[n, c, p s_h + i d_h, q s_w + j d_w].

    A linear map that copies each input element into every column that sees it, so
    its gradient adds those copies back: dx = col2im(g), i.e. fold of g."""

    name = "unfold"

    @staticmethod
    def forward(ctx, x, kernel, dilation, pads, stride):
        ctx.unbatched = x.ndim == 3
        if ctx.unbatched:
            x = x.unsqueeze(0)
        ctx.spatial, ctx.geometry = x.shape[2:], (dilation, pads, stride)
        view = _im2col(x, kernel, dilation, pads, stride)  # (N, C, kh, kw, oh, ow)
        ctx.view_shape = view.shape[1:]
        cols = view.reshape(x.shape[0], x.shape[1] * math.prod(kernel), -1)
        return cols[0] if ctx.unbatched else cols

    @staticmethod
    def backward(ctx, g):
        dx = _col2im(g.reshape(-1, *ctx.view_shape), ctx.spatial, *ctx.geometry)
        return (dx[0] if ctx.unbatched else dx), None, None, None, None


class Fold(Function):
    """col2im: cols (N, C kh kw, L) -> out (N, C, H, W), the adjoint of unfold:
    out[n, c, y, x] = sum of cols[n, (c, i, j), (p, q)] over the (i, j, p, q) with
    p s_h + i d_h - pad_h = y and q s_w + j d_w - pad_w = x (overlaps add up).

    Its gradient gathers those positions back: dcols = im2col(g), i.e. unfold of g."""

    name = "fold"

    @staticmethod
    def forward(ctx, cols, output_size, kernel, dilation, pads, stride):
        ctx.unbatched = cols.ndim == 2
        if ctx.unbatched:
            cols = cols.unsqueeze(0)
        ctx.kernel, ctx.geometry = kernel, (dilation, pads, stride)
        out = _output_size(output_size, kernel, dilation, pads, stride)
        channels = cols.shape[1] // math.prod(kernel)
        image = _col2im(cols.reshape(cols.shape[0], channels, *kernel, *out), output_size,
                        dilation, pads, stride)
        return image[0] if ctx.unbatched else image

    @staticmethod
    def backward(ctx, g):
        if ctx.unbatched:
            g = g.unsqueeze(0)
        view = _im2col(g, ctx.kernel, *ctx.geometry)
        dcols = view.reshape(g.shape[0], g.shape[1] * math.prod(ctx.kernel), -1)
        return (dcols[0] if ctx.unbatched else dcols), None, None, None, None, None


class ConvNd(Function):
    """out = W * x + b (cross-correlation, as torch), for 1, 2 or 3 spatial dims, groups G;
    K = prod(kernel), L = prod(out), g = d loss / d out. Four layouts of the same
    products, chosen by conv_strategy():

    "columns" (no groups, L >= 256): X = im2col(x) as (N, C K, L), one block per image,
    so out comes out as (N, O, L) and g is read as (N, O, L) with no transposes (for a
    1x1 kernel X is a view of x itself, nothing is copied):
        out = W X + b                       (O, C K) @ (N, C K, L), batched over N
        dW  = sum over n of g_n X_n^T        (N, O, C K) summed over N
        dx  = col2im(W^T g)                 the adjoint of im2col
        db  = sum of g over N and the spatial dims.

    "grouped" (G > 1, or small outputs, with under 8 images or one channel per group):
    X as (G, Cg K, N L), images side by side, W as (G, Og, Cg K), g as (G, Og, N L):
    out = W X (bmm over G), dW = g X^T, dx = col2im(W^T g). Batching over G only keeps
    each product large; batching over N too ran 1000s of tiny products for depthwise
    convs.

    "batch_inner" (the same cases with 8+ images and 2+ channels per group): the same
    products with the columns ordered (G, Cg K, L N), the batch innermost. x is copied
    once to (C, *padded, N); im2col is then a strided view whose runs are out_w N floats
    (LeNet conv2: 640, against 10 in "grouped"), and so are col2im's adds, into a
    (C, *padded, N) canvas. out and dx come back to (N, C, ...) by one permuting copy
    each, g goes in by one:
        out = W X                           (G, Og, Cg K) @ (G, Cg K, L N)
        dW  = (X g^T)^T                     (MKL ran X g^T 1.4x faster than g X^T)
        dx  = col2im(W^T g), permuted back to (N, C, *S).

    "shift" (stride 1, no groups, 16+ input channels): no column buffer at all. x is
    zero-padded and laid out channels first, xf = (C, M) with M = N prod(padded); kernel
    offset i then reads xf shifted by one flat amount s_i = sum_a i_a d_a stride_a(grid),
    so the output on the whole padded grid is
        y_grid = sum_i W_i xf[:, s_i : s_i + M']       (W_i = W[:, :, i], (O, C))
    and the true output is the corner [:O_h, :O_w] of every image (positions past it read
    across rows or images and are dropped; M' = M - s_last keeps every read in range).
    With g_grid = g placed in that corner of a zero grid (O, M):
        dW_i = g_grid[:, :M'] xf[:, s_i : s_i + M']^T
        dxf[:, s_i : s_i + M'] += W_i^T g_grid[:, :M']
    and dx is dxf's unpadded interior: K products of (O, C) with (C, M') each way, big
    enough when C is. The grid computes prod(padded) / prod(out) times the needed
    outputs, so conv_strategy() keeps "columns" when that exceeds 1.5.

    What backward needs is saved only when some gradient needs it.
    """

    name = "conv"

    @staticmethod
    def forward(ctx, x, weight, bias, stride, pads, dilation, groups):
        n = weight.ndim - 2  # spatial dims
        ctx.unbatched = x.ndim == n + 1
        if ctx.unbatched:
            x = x.unsqueeze(0)
        ctx.strategy = conv_strategy(x.shape, weight.shape, stride, pads, dilation, groups)
        ctx.groups, ctx.geometry = groups, (dilation, pads, stride)
        forward, _ = _STRATEGIES[ctx.strategy]
        y = forward(ctx, x, weight, stride, pads, dilation, groups)  # (N, O, *out)
        if bias is not None and ctx.strategy == "columns":
            y = y.add_(bias.reshape(weight.shape[0], *(1,) * n))  # y is the fresh product
        elif bias is not None:  # y is a permuted or sliced view: the sum made contiguous
            y = torch.add(y, bias.reshape(weight.shape[0], *(1,) * n),
                          out=y.new_empty(y.shape))
        else:
            y = y.contiguous()
        return y[0] if ctx.unbatched else y

    @staticmethod
    def backward(ctx, g):
        need_b = ctx.needs_input_grad[2]
        if ctx.unbatched:
            g = g.unsqueeze(0)
        _, backward = _STRATEGIES[ctx.strategy]
        dx, dw = backward(ctx, g)
        db = g.sum((0, *range(2, g.ndim))) if need_b else None
        if dx is not None and ctx.unbatched:
            dx = dx[0]
        return dx, dw, db, None, None, None, None


def conv_strategy(x_shape, w_shape, stride, pads, dilation, groups) -> str:
    """Which of ConvNd's layouts runs: "grouped", "columns" or "shift" (ConvNd's
    docstring). The thresholds come from timing them against each other on a 2-core CPU
    (docs/benchmarks.md, CNN layers)."""
    padded = [size + lo + hi for size, (lo, hi) in zip(x_shape[2:], pads)]
    out = [(p - d * (k - 1) - 1) // s + 1
           for p, d, k, s in zip(padded, dilation, w_shape[2:], stride)]
    if groups != 1 or math.prod(out) < _COLUMNS_MIN_OUTPUT:
        # small images (per-image products would be tiny) or groups: the batch joins the
        # columns, innermost where the runs it makes are long enough
        if x_shape[0] >= _BATCH_INNER_MIN_BATCH and w_shape[1] > 1:
            return "batch_inner"
        return "grouped"  # depthwise (1 channel per group) or a few images
    if any(s != 1 for s in stride) or x_shape[0] == 0 or w_shape[1] < _SHIFT_MIN_CHANNELS:
        return "columns"
    if math.prod(w_shape[2:]) == 1:
        return "columns"  # a 1x1 kernel's columns are x itself, a view: nothing to copy
    if math.prod(padded) > _SHIFT_MAX_WASTE * math.prod(out):
        return "columns"
    return "shift"


_COLUMNS_MIN_OUTPUT = 256  # output positions per image for "columns" (LeNet's 10x10: no)
_BATCH_INNER_MIN_BATCH = 8  # images for "batch_inner" (1 to 4 ran even with "grouped")
_SHIFT_MIN_CHANNELS = 16  # input channels for "shift" (8 to 32 ran even with "columns")
_SHIFT_MAX_WASTE = 1.5  # padded grid / output positions for "shift"


def _columns_forward(ctx, x, weight, stride, pads, dilation, groups):
    need_x, need_w = ctx.needs_input_grad[:2]
    view = _im2col(x, weight.shape[2:], dilation, pads, stride)  # (N, C, *k, *out)
    n = weight.ndim - 2
    batch, out_channels, out = x.shape[0], weight.shape[0], view.shape[2 + n:]
    cols = _copied(view, (batch, weight[0].numel(), math.prod(out)))  # the one copy
    w2 = weight.reshape(out_channels, -1)  # (O, C K)
    y = torch.matmul(w2, cols)  # (N, O, L)
    ctx.save_for_backward(cols if need_w else None, w2 if need_x else None)
    ctx.shapes = (x.shape, weight.shape, view.shape)
    return y.view(batch, out_channels, *out)


def _columns_backward(ctx, g):
    cols, w2 = ctx.saved_tensors
    need_x, need_w = ctx.needs_input_grad[:2]
    x_shape, w_shape, view_shape = ctx.shapes
    n = len(w_shape) - 2
    g3 = g.reshape(g.shape[0], g.shape[1], math.prod(view_shape[2 + n:]))  # (N, O, L)
    dx = dw = None
    if need_x:
        dcols = torch.matmul(w2.t(), g3)  # (N, C K, L)
        dx = _col2im(dcols.view(view_shape), x_shape[2:], *ctx.geometry)
    if need_w:
        dw = torch.matmul(g3, cols.transpose(1, 2)).sum(0).reshape(w_shape)
    return dx, dw


def _grouped_forward(ctx, x, weight, stride, pads, dilation, groups):
    need_x, need_w = ctx.needs_input_grad[:2]
    n = weight.ndim - 2
    view = _im2col(x, weight.shape[2:], dilation, pads, stride)  # (N, C, *k, *out)
    batch, out_channels, out = x.shape[0], weight.shape[0], view.shape[2 + n:]
    # (C, *k, N, *out) -> (G, Cg K, N L): the one copy of the input's columns
    cols = view.permute(1, *range(2, 2 + n), 0, *range(2 + n, 2 + 2 * n))
    cols = cols.reshape(groups, x.shape[1] // groups * math.prod(weight.shape[2:]),
                        batch * math.prod(out))  # sizes spelled out: N may be 0
    y = torch.bmm(weight.reshape(groups, out_channels // groups, -1), cols)
    ctx.save_for_backward(cols if need_w else None, weight if need_x else None)
    ctx.shapes = (x.shape, weight.shape, view.shape)
    return y.reshape(out_channels, batch, *out).transpose(0, 1)  # (N, O, *out)


def _grouped_backward(ctx, g):
    cols, weight = ctx.saved_tensors
    need_x, need_w = ctx.needs_input_grad[:2]
    x_shape, w_shape, view_shape = ctx.shapes
    groups, n = ctx.groups, len(w_shape) - 2
    g3 = g.transpose(0, 1).reshape(groups, w_shape[0] // groups,
                                   g.numel() // w_shape[0])  # (G, Og, N L)
    dx = dw = None
    if need_x:
        w3 = weight.reshape(groups, w_shape[0] // groups, -1)  # (G, Og, Cg K)
        dcols = torch.bmm(w3.transpose(1, 2), g3)  # (G, Cg K, N L)
        # back to (N, C, *k, *out) as a view, which col2im reads strided
        dcols = dcols.reshape(view_shape[1:2 + n] + view_shape[:1] + view_shape[2 + n:])
        dcols = dcols.permute(1 + n, 0, *range(1, 1 + n), *range(2 + n, 2 + 2 * n))
        dx = _col2im(dcols, x_shape[2:], *ctx.geometry)
    if need_w:
        dw = torch.bmm(g3, cols.transpose(1, 2)).reshape(w_shape)
    return dx, dw


def _grid_shifts(padded, kernel, dilation) -> list[int]:
    """The flat shift s_i of every kernel offset i (row-major) on the padded grid."""
    grid_strides = [math.prod(padded[a + 1:]) for a in range(len(padded))]
    return [sum(i * d * st for i, d, st in zip(offset, dilation, grid_strides))
            for offset in itertools.product(*(range(k) for k in kernel))]


def _on_zero_grid(t, padded, starts) -> torch.Tensor:
    """t (A, B, *S) placed at `starts` in a new zero (A, B, *padded). (Zeroing only the
    borders was slower on CPU: thin strided slices fill far slower than one memset.)"""
    grid = t.new_zeros(*t.shape[:2], *padded)
    grid[(slice(None), slice(None), *(slice(a, a + size) for a, size in
                                      zip(starts, t.shape[2:])))] = t
    return grid


def _shift_forward(ctx, x, weight, stride, pads, dilation, groups):
    need_x, need_w = ctx.needs_input_grad[:2]
    n = weight.ndim - 2
    batch, channels, spatial = x.shape[0], x.shape[1], x.shape[2:]
    out_channels, kernel = weight.shape[0], weight.shape[2:]
    padded = [size + lo + hi for size, (lo, hi) in zip(spatial, pads)]
    out = [p - d * (k - 1) for p, d, k in zip(padded, dilation, kernel)]
    shifts = _grid_shifts(padded, kernel, dilation)
    grid = _on_zero_grid(x.transpose(0, 1), padded, [lo for lo, _ in pads])
    xf = grid.view(channels, batch * math.prod(padded))  # (C, M): the one copy of x
    m = xf.shape[1]
    valid = m - shifts[-1]  # M'
    y_grid = x.new_empty(out_channels, m)
    y_valid = y_grid[:, :valid]
    w_offsets = weight.permute(*range(2, 2 + n), 0, 1).reshape(-1, out_channels, channels)
    torch.mm(w_offsets[0], xf[:, :valid], out=y_valid)
    for w_i, s in zip(w_offsets[1:], shifts[1:]):
        y_valid.addmm_(w_i, xf[:, s:s + valid])
    ctx.save_for_backward(xf if need_w else None, w_offsets if need_x else None)
    ctx.grid = (x.shape, weight.shape, padded, out, shifts, valid)
    y = y_grid.view(out_channels, batch, *padded)
    return y[(slice(None), slice(None), *(slice(0, o) for o in out))].transpose(0, 1)


def _shift_backward(ctx, g):
    xf, w_offsets = ctx.saved_tensors
    need_x, need_w = ctx.needs_input_grad[:2]
    x_shape, w_shape, padded, out, shifts, valid = ctx.grid
    n = len(w_shape) - 2
    batch, channels, out_channels = x_shape[0], x_shape[1], w_shape[0]
    g_grid = _on_zero_grid(g.transpose(0, 1), padded, [0] * n)
    m = batch * math.prod(padded)
    g_valid = g_grid.view(out_channels, m)[:, :valid]  # (O, M')
    dx = dw = None
    if need_w:
        dw = g.new_empty(len(shifts), out_channels, channels)
        for dw_i, s in zip(dw, shifts):
            torch.mm(g_valid, xf[:, s:s + valid].t(), out=dw_i)
        dw = dw.reshape(*w_shape[2:], out_channels, channels)
        dw = dw.permute(n, n + 1, *range(n)).contiguous()
    if need_x:  # the first offset (shift 0) writes [:, :M'], the rest add; the tail is 0
        dxf = g.new_empty(channels, m)
        dxf[:, valid:] = 0
        torch.mm(w_offsets[0].t(), g_valid, out=dxf[:, :valid])
        for w_i, s in zip(w_offsets[1:], shifts[1:]):
            dxf[:, s:s + valid].addmm_(w_i.t(), g_valid)
        _, pads, _ = ctx.geometry
        dx = dxf.view(channels, batch, *padded)
        dx = dx[(slice(None), slice(None), *(slice(lo, lo + s) for s, (lo, _) in
                                             zip(x_shape[2:], pads)))]
        dx = dx.transpose(0, 1).contiguous()
    return dx, dw


# ====================================================== reused buffers (CPU only)
# A fresh multi-MB tensor every step made glibc hand the freed heap back to the system
# and fault it in again on the next step: LeNet conv2's column gradient (3.8 MB) cost
# 2100 page faults a call, 5.2 against 2.7 ms alone; the saved columns of both LeNet
# convs another 1500 faults a training step. So the column buffers are kept between
# calls, per thread, dtype and shape (the 8 most recent, each at most 16 MB), and a
# kept buffer is handed out again only when nothing else holds it: neither the tensor
# (a graph that has not run its backward yet, or keeps it with retain_graph) nor a view
# of its storage. On other devices torch's caching allocator already reuses memory.
_BUFFERS: dict = {}
_BUFFERS_LOCK = threading.Lock()
_BUFFER_ENTRIES = 8
_BUFFER_MAX_BYTES = 16 << 20


def _holders(t) -> tuple[int, int]:
    """(Python references to t, tensors on t's storage), as seen from a caller's local."""
    return sys.getrefcount(t), torch._C._storage_Use_Count(t.untyped_storage()._cdata)


def _free_holders() -> tuple[int, int]:
    t = torch.empty(1)  # held by this one local only, as a buffer popped in _buffer
    return _holders(t)


_CAN_REUSE = hasattr(torch._C, "_storage_Use_Count")
_FREE = _free_holders() if _CAN_REUSE else None


def _buffer(like, shape, role: str = "columns") -> torch.Tensor:
    """An uninitialized tensor of `shape` (like's dtype and device) for column data,
    reused from an earlier call when no one holds that one any more. `role` keeps the
    saved columns and a column gradient of the same shape apart (the backward needs
    both at once)."""
    shape = tuple(shape)
    if (like.device.type != "cpu" or not _CAN_REUSE
            or math.prod(shape) * like.element_size() > _BUFFER_MAX_BYTES):
        return like.new_empty(shape)
    key = (threading.get_ident(), role, like.dtype, shape)
    with _BUFFERS_LOCK:  # threads share the dict (each only its own entries)
        buffer = _BUFFERS.pop(key, None)
        if buffer is None or _holders(buffer) != _FREE:
            buffer = like.new_empty(shape)
            while len(_BUFFERS) >= _BUFFER_ENTRIES:
                _BUFFERS.pop(next(iter(_BUFFERS)))
        _BUFFERS[key] = buffer
    return buffer


def _copied(view, shape) -> torch.Tensor:
    """view.reshape(shape), a copy into a reused buffer, unless it is a view already."""
    try:
        return view.view(shape)  # e.g. a 1x1 kernel's columns: x itself
    except RuntimeError:
        cols = _buffer(view, shape)
        cols.view(view.shape).copy_(view)
        return cols


def _batch_last(x, pads) -> torch.Tensor:
    """x (N, C, *S) as a new zero-padded (C, *padded, N): the batch innermost."""
    n = len(pads)
    order = (1, *range(2, 2 + n), 0)
    if not any(lo or hi for lo, hi in pads):
        return x.permute(*order).contiguous()
    padded = [size + lo + hi for size, (lo, hi) in zip(x.shape[2:], pads)]
    out = x.new_zeros(x.shape[1], *padded, x.shape[0])
    out[(slice(None), *(slice(lo, lo + size) for size, (lo, _) in
                        zip(x.shape[2:], pads)))] = x.permute(*order)
    return out


def _batch_inner_forward(ctx, x, weight, stride, pads, dilation, groups):
    need_x, need_w = ctx.needs_input_grad[:2]
    n = weight.ndim - 2
    batch, channels, out_channels, kernel = x.shape[0], x.shape[1], weight.shape[0], \
        weight.shape[2:]
    xt = _batch_last(x, pads)  # (C, *padded, N)
    out = _output_size(x.shape[2:], kernel, dilation, pads, stride)
    st = xt.stride()
    view = xt.as_strided(  # (C, *k, *out, N): runs of out_w N floats when stride_w is 1
        (channels, *kernel, *out, batch),
        (st[0], *(a * d for a, d in zip(st[1:1 + n], dilation)),
         *(a * s for a, s in zip(st[1:1 + n], stride)), 1))
    cols = _copied(view, (groups, channels // groups * math.prod(kernel),
                          math.prod(out) * batch))  # (G, Cg K, L N): the one copy
    y = torch.bmm(weight.reshape(groups, out_channels // groups, -1), cols)
    ctx.save_for_backward(cols if need_w else None, weight if need_x else None)
    ctx.shapes = (x.shape, weight.shape, view.shape)
    return y.view(out_channels, *out, batch).permute(n + 1, 0, *range(1, n + 1))


def _batch_inner_backward(ctx, g):
    cols, weight = ctx.saved_tensors
    need_x, need_w = ctx.needs_input_grad[:2]
    x_shape, w_shape, view_shape = ctx.shapes
    groups, n = ctx.groups, len(w_shape) - 2
    batch, out_channels = x_shape[0], w_shape[0]
    g3 = g.permute(1, *range(2, 2 + n), 0).reshape(
        groups, out_channels // groups, g.numel() // out_channels)  # (G, Og, L N)
    dx = dw = None
    if need_w:  # as (X g^T)^T: MKL ran g X^T, with X^T's long rows, 1.4x slower
        dw = torch.bmm(cols, g3.transpose(1, 2)).transpose(1, 2).reshape(w_shape)
    if need_x:
        w3 = weight.reshape(groups, out_channels // groups, -1)  # (G, Og, Cg K)
        dcols = torch.bmm(w3.transpose(1, 2), g3,  # (C, *k, *out, N), read by col2im only
                          out=_buffer(g3, (groups, w3.shape[2], g3.shape[2]),
                                      role="column gradient"))
        dcols = dcols.view(view_shape)
        dilation, pads, stride = ctx.geometry
        kernel, out = view_shape[1:1 + n], view_shape[1 + n:1 + 2 * n]
        padded = [size + lo + hi for size, (lo, hi) in zip(x_shape[2:], pads)]
        canvas = dcols.new_zeros(x_shape[1], *padded, batch)
        for offset in itertools.product(*(range(k) for k in kernel)):
            window = tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                           for i, d, s, o in zip(offset, dilation, stride, out))
            canvas[(slice(None), *window)] += dcols[(slice(None), *offset)]
        canvas = canvas[(slice(None), *(slice(lo, lo + size) for size, (lo, _) in
                                        zip(x_shape[2:], pads)))]
        dx = canvas.permute(n + 1, 0, *range(1, n + 1)).contiguous()
    return dx, dw


_STRATEGIES = {"columns": (_columns_forward, _columns_backward),
               "grouped": (_grouped_forward, _grouped_backward),
               "batch_inner": (_batch_inner_forward, _batch_inner_backward),
               "shift": (_shift_forward, _shift_backward)}


# ================================================================ argument handling
def _tuple(op: str, name: str, value, n: int) -> tuple[int, ...]:
    """An int or a sequence of 1 or n ints, as n ints (torch's expand_param_if_needed)."""
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise HandgradError(
            f"{op}: expected {name} to be a single integer value or a list of {n} values "
            f"to match the convolution dimensions, but got {name}={list(value)}")
    return value


def _shape(t) -> list[int]:
    return list(t.shape)


def _unfold_geometry(op, input, kernel_size, dilation, padding, stride):
    kernel = _tuple(op, "kernel_size", kernel_size, 2)
    dilation = _tuple(op, "dilation", dilation, 2)
    padding = _tuple(op, "padding", padding, 2)
    stride = _tuple(op, "stride", stride, 2)
    for name, values, low in [("kernel_size", kernel, 1), ("dilation", dilation, 1),
                              ("padding", padding, 0), ("stride", stride, 1)]:
        if min(values) < low:
            raise HandgradError(f"{op}: {name} should be at least {low}, got {values}")
    return kernel, dilation, tuple((p, p) for p in padding), stride


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's nn.functional.unfold (im2col) for (N, C, H, W) or unbatched (C, H, W)
    input: (N, C kh kw, L), one fused node."""
    if input.ndim not in (3, 4):
        raise HandgradError(
            f"unfold: expected 3D (unbatched) or 4D (batched) input, got input of size "
            f"{_shape(input)}; only 4-D (N, C, H, W) images are supported")
    kernel, dilation, pads, stride = _unfold_geometry("unfold", input, kernel_size,
                                                      dilation, padding, stride)
    out = _output_size(input.shape[-2:], kernel, dilation, pads, stride)
    if min(out) < 1:
        raise HandgradError(
            f"unfold: input of size {_shape(input)} with padding {[p for p, _ in pads]} is "
            f"too small for kernel_size {kernel} with dilation {dilation}: it gives "
            f"{out} sliding blocks; use a smaller kernel or more padding")
    return Unfold.apply(input, kernel, dilation, pads, stride)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's nn.functional.fold (col2im) for (N, C kh kw, L) or unbatched
    (C kh kw, L) input: (N, C, *output_size), overlapping values summed; one fused node."""
    if input.ndim not in (2, 3):
        raise HandgradError(
            f"fold: expected 2D (unbatched) or 3D (batched) input, got input of size "
            f"{_shape(input)}")
    output_size = _tuple("fold", "output_size", output_size, 2)
    kernel, dilation, pads, stride = _unfold_geometry("fold", input, kernel_size,
                                                      dilation, padding, stride)
    columns, blocks = input.shape[-2], input.shape[-1]
    if columns % math.prod(kernel):
        raise HandgradError(
            f"fold: expected size of input's dimension {input.ndim - 2} to be divisible "
            f"by the product of kernel_size, but got input.size({input.ndim - 2})="
            f"{columns} and kernel_size={kernel}")
    out = _output_size(output_size, kernel, dilation, pads, stride)
    if min(out) < 1 or math.prod(out) != blocks:
        raise HandgradError(
            f"fold: given output_size={output_size}, kernel_size={kernel}, dilation="
            f"{dilation}, padding={tuple(p for p, _ in pads)}, stride={stride}, expected "
            f"size of input's dimension {input.ndim - 1} to match the calculated number "
            f"of sliding blocks {' * '.join(map(str, out))} = {math.prod(out)}, but got "
            f"input.size({input.ndim - 1})={blocks}")
    return Fold.apply(input, output_size, kernel, dilation, pads, stride)


def _conv_pads(op, padding, kernel, dilation, stride, n):
    """padding (int, tuple, 'valid', 'same') as ((lo, hi), ...) per spatial dim. 'same'
    splits d (k - 1) as torch does: the odd one out goes to the right (hi) side."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding != "same":
            raise HandgradError(f"{op}: Invalid padding string: {padding!r}; use 'valid', "
                                "'same', an int or a tuple of ints")
        if any(s != 1 for s in stride):
            raise HandgradError(f"{op}: padding='same' is not supported for strided "
                                f"convolutions (stride={stride}); pad explicitly instead")
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return tuple((t // 2, t - t // 2) for t in totals)
    padding = _tuple(op, "padding", padding, n)
    if min(padding) < 0:
        raise HandgradError(f"{op}: negative padding is not supported, got {padding}")
    return tuple((p, p) for p in padding)


_SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}


def _conv(op, n, input, weight, bias, stride, padding, dilation, groups):
    """The checks of conv1d / conv2d / conv3d (and of the nn.Conv* modules, whose
    forward is this call), then one ConvNd node."""
    if input.ndim not in (n + 1, n + 2):
        raise HandgradError(
            f"{op}: Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {op}, but "
            f"got input of size: {_shape(input)} (weight of size {_shape(weight)}); pass "
            f"(N, C, {_SPATIAL_NAMES[n]}) or one unbatched (C, {_SPATIAL_NAMES[n]})")
    if weight.ndim != n + 2:
        raise HandgradError(
            f"{op}: expected a {n + 2}-D weight (out_channels, in_channels / groups, "
            f"{', '.join('k' + str(i) for i in range(n))}), got weight of size "
            f"{_shape(weight)}")
    for name, t in [("weight", weight), ("bias", bias)]:
        if t is not None and (t.dtype != input.dtype or t.device != input.device):
            raise HandgradError(
                f"{op}: input ({input.dtype}, {input.device}) and {name} ({t.dtype}, "
                f"{t.device}) should have the same dtype and device; convert one with "
                f".to()")
    stride = _tuple(op, "stride", stride, n)
    dilation = _tuple(op, "dilation", dilation, n)
    if min(stride) < 1 or min(dilation) < 1:
        raise HandgradError(f"{op}: stride and dilation should be positive, got "
                            f"stride={stride}, dilation={dilation}")
    if groups < 1:
        raise HandgradError(f"{op}: non-positive groups is not supported, got {groups}")
    out_channels, channels = weight.shape[0], input.shape[-n - 1]
    if out_channels % groups:
        raise HandgradError(
            f"{op}: Given groups={groups}, expected weight to be divisible by {groups} at "
            f"dimension 0, but got weight of size {_shape(weight)} instead (input of size "
            f"{_shape(input)}); out_channels and in_channels must both be multiples of "
            "groups")
    if channels != weight.shape[1] * groups:
        raise HandgradError(
            f"{op}: Given groups={groups}, weight of size {_shape(weight)}, expected "
            f"input{_shape(input)} to have {weight.shape[1] * groups} channels, but got "
            f"{channels} channels instead; make the layer's in_channels {channels} or give "
            f"it {weight.shape[1] * groups}-channel input")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise HandgradError(
            f"{op}: expected bias of size [{out_channels}] (one per output channel), got "
            f"{_shape(bias)}")
    kernel = tuple(weight.shape[2:])
    pads = _conv_pads(op, padding, kernel, dilation, stride, n)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(input.shape[-n:], pads))
    reach = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    if any(r > p for r, p in zip(reach, padded)):
        raise HandgradError(
            f"{op}: Calculated padded input size per channel: ({' x '.join(map(str, padded))})."
            f" Kernel size: ({' x '.join(map(str, reach))}). Kernel size can't be greater "
            f"than actual input size (input of size {_shape(input)}, weight of size "
            f"{_shape(weight)}); use more padding or a smaller kernel or dilation")
    return ConvNd.apply(input, weight, bias, stride, pads, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """PyTorch's nn.functional.conv1d on (N, C, L) or unbatched (C, L): one fused node."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """PyTorch's nn.functional.conv2d on (N, C, H, W) or unbatched (C, H, W): one fused
    node."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """PyTorch's nn.functional.conv3d on (N, C, D, H, W) or unbatched (C, D, H, W): one
    fused node (the ConvNd of conv2d, over three spatial dims; module docstring)."""
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)
