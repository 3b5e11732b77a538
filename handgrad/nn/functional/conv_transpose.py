"""Transposed convolution: `conv_transpose1d` / `conv_transpose2d` / `conv_transpose3d`,
one fused graph node (`ConvTransposeNd`, written over any number of spatial dims) with a
hand-derived backward.

A transposed convolution is the adjoint of a convolution. Take the conv that maps an
image y of the *output's* size (N, C_out, *S_out) to one of the *input's* size
(N, C_in, *S_in) with the same weight W (C_in, C_out / G, *k), stride s, padding p and
dilation d. Its input gradient is a linear map x -> dy; that map is conv_transpose(x).
So the forward is what conv's backward does (a matmul into columns, then col2im) and the
backward is what conv's forward does (im2col, then a matmul):

    out size  S_out = (S_in - 1) s - 2 p + d (k - 1) + output_padding + 1
    im2col    (N, C, *S) -> (N, C, *k, *S_in)    padded g[n, c, o s + i d] (a strided view)
    col2im    (N, C, *k, *S_in) -> (N, C, *S)    its adjoint: one strided add per kernel
                                                  offset i into a zero canvas, then the
                                                  padding cropped off

output_padding only lengthens the canvas at the high end (rows no kernel offset reaches
get zeros); torch accepts it below max(stride, dilation).

im2col / col2im are conv.py's (`_im2col` with the input's size as `out`, `_col2im`),
with the symmetric padding as (p, p) pairs.

Left out: padding strings ('same' / 'valid': torch has none for the
transposed conv either), padding modes other than zeros (torch's ConvTranspose has none).
"""

from __future__ import annotations

import math

import torch

from handgrad.autograd import Function, HandgradError
from handgrad.nn.functional.conv import _col2im, _im2col
from handgrad.nn.functional.conv import _tuple as _conv_tuple

__all__ = ["ConvTransposeNd", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]


# ============================================================== the fused Function
class ConvTransposeNd(Function):
    """out = conv_transpose(x, W) + b for 1, 2 or 3 spatial dims, groups G, with W of shape
    (C_in, C_out / G, *k).

    Lay x out as X (G, Cg_in, N L) (L = prod(S_in): every image side by side), W as
    (G, Cg_in, Cg_out K) (K = prod(k)) and g = d loss / d out (N, C_out, *S_out).

    Forward (the input gradient of the conv from S_out to S_in with weight W):
        cols = W^T X                      (G, Cg_out K, N L)   one bmm over groups
        out  = col2im(cols) + b           (N, C_out, *S_out)
    Backward. out is linear in x and W, out = col2im(W^T X), and col2im's adjoint is
    im2col, so with Gc = im2col(g) laid out as (G, Cg_out K, N L):
        <g, col2im(W^T X)> = <im2col(g), W^T X> = <Gc, W^T X>
        dX = W Gc                         (G, Cg_in, N L): a conv of g with W
        dW = X Gc^T                       (G, Cg_in, Cg_out K), summed over images
        db = sum of g over N and the spatial dims.
    im2col(g) is taken with padding p and only the first S_in positions per dim (with
    output_padding >= stride, which dilation allows, g has rows past the last position
    any input pixel reaches; they get no gradient, as they got no value).
    Saved: X when W needs a gradient, W when x needs one.
    """

    name = "conv_transpose"

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, dilation, groups):
        need_x, need_w = ctx.needs_input_grad[:2]
        n = weight.ndim - 2
        ctx.unbatched = x.ndim == n + 1
        if ctx.unbatched:
            x = x.unsqueeze(0)
        batch, in_channels, spatial = x.shape[0], x.shape[1], tuple(x.shape[2:])
        kernel = tuple(weight.shape[2:])
        out_channels = weight.shape[1] * groups
        out_spatial = tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, s, p, d, k, op
                            in zip(spatial, stride, padding, dilation, kernel, output_padding))
        # X: (N, C_in, *S_in) -> (G, Cg_in, N L)
        x3 = x.transpose(0, 1).reshape(groups, in_channels // groups, -1)
        w3 = weight.reshape(groups, in_channels // groups, -1)  # (G, Cg_in, Cg_out K)
        cols = torch.bmm(w3.transpose(1, 2), x3)  # (G, Cg_out K, N L)
        # (C_out, *k, N, *S_in) -> (N, C_out, *k, *S_in), a view col2im reads strided
        cols = cols.reshape(out_channels, *kernel, batch, *spatial)
        cols = cols.permute(1 + n, 0, *range(1, 1 + n), *range(2 + n, 2 + 2 * n))
        y = _col2im(cols, out_spatial, dilation, tuple((p, p) for p in padding), stride)
        if bias is not None:
            y = y + bias.reshape(out_channels, *(1,) * n)
        else:
            y = y.contiguous()
        ctx.save_for_backward(x3 if need_w else None, weight if need_x else None)
        ctx.shapes = (batch, spatial, tuple(weight.shape))
        ctx.geometry = (stride, padding, dilation, groups)
        return y[0] if ctx.unbatched else y

    @staticmethod
    def backward(ctx, g):
        x3, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        batch, spatial, w_shape = ctx.shapes
        stride, padding, dilation, groups = ctx.geometry
        n = len(w_shape) - 2
        if ctx.unbatched:
            g = g.unsqueeze(0)
        kernel = w_shape[2:]
        out_channels = g.shape[1]
        pads = tuple((p, p) for p in padding)
        view = _im2col(g, kernel, dilation, pads, stride, spatial)  # (N, C_out, *k, *S_in)
        # (C_out, *k, N, *S_in) -> (G, Cg_out K, N L): the one copy of g's columns
        gcols = view.permute(1, *range(2, 2 + n), 0, *range(2 + n, 2 + 2 * n))
        gcols = gcols.reshape(groups, out_channels // groups * math.prod(kernel), -1)
        dx = dw = db = None
        if need_x:
            w3 = weight.reshape(groups, w_shape[0] // groups, -1)  # (G, Cg_in, Cg_out K)
            dx = torch.bmm(w3, gcols)  # (G, Cg_in, N L)
            dx = dx.reshape(w_shape[0], batch, *spatial).transpose(0, 1)
            dx = dx[0] if ctx.unbatched else dx
        if need_w:
            dw = torch.bmm(x3, gcols.transpose(1, 2)).reshape(w_shape)
        if need_b:
            db = g.sum((0, *range(2, g.ndim)))
        return dx, dw, db, None, None, None, None, None


# ================================================================ argument handling
def _tuple(op: str, name: str, value, n: int) -> tuple[int, ...]:
    """conv's _tuple (torch's expand_param_if_needed), refusing padding strings."""
    if isinstance(value, str):
        raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, not str "
                        f"({value!r}); the transposed conv takes no padding strings")
    return _conv_tuple(op, name, value, n)


def output_size(input_size, kernel, stride, padding, output_padding, dilation):
    """Spatial output size of a transposed conv: (S - 1) s - 2 p + d (k - 1) + op + 1."""
    return tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, k, s, p, op, d
                 in zip(input_size, kernel, stride, padding, output_padding, dilation))


def _conv_transpose(op, n, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    """The checks of conv_transpose1d / 2d / 3d (and of the modules, whose forward is this
    call), then one ConvTransposeNd node."""
    if input.ndim not in (n + 1, n + 2):
        raise HandgradError(
            f"{op}: Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {op}, but "
            f"got input of size: {list(input.shape)}")
    if weight.ndim != n + 2:
        raise HandgradError(
            f"{op}: expected a {n + 2}-D weight (in_channels, out_channels / groups, "
            f"{', '.join('k' + str(i) for i in range(n))}), got weight of size "
            f"{list(weight.shape)}")
    for name, t in [("weight", weight), ("bias", bias)]:
        if t is not None and (t.dtype != input.dtype or t.device != input.device):
            raise HandgradError(
                f"{op}: input ({input.dtype}, {input.device}) and {name} ({t.dtype}, "
                f"{t.device}) should have the same dtype and device; convert one with .to()")
    stride = _tuple(op, "stride", stride, n)
    padding = _tuple(op, "padding", padding, n)
    output_padding = _tuple(op, "output_padding", output_padding, n)
    dilation = _tuple(op, "dilation", dilation, n)
    if min(stride) < 1:
        raise HandgradError(f"{op}: non-positive stride is not supported, got {stride}")
    if min(dilation) < 1:
        raise HandgradError(f"{op}: dilation should be greater than zero, got {dilation}")
    if min(padding) < 0:
        raise HandgradError(f"{op}: negative padding is not supported, got {padding}")
    if min(output_padding) < 0:
        raise HandgradError(f"{op}: negative output_padding is not supported, got "
                            f"{output_padding}")
    if groups < 1:
        raise HandgradError(f"{op}: non-positive groups is not supported, got {groups}")
    if any(o >= s and o >= d for o, s, d in zip(output_padding, stride, dilation)):
        raise HandgradError(
            f"{op}: output padding must be smaller than either stride or dilation, but got "
            f"output_padding={output_padding}, stride={stride}, dilation={dilation}; "
            "output_padding only picks among the output sizes a stride leaves open, "
            "so keep it below the stride (or ask the module for output_size=)")
    in_channels, channels = weight.shape[0], input.shape[-n - 1]
    if in_channels % groups:
        raise HandgradError(
            f"{op}: Given groups={groups}, expected weight to be divisible by {groups} at "
            f"dimension 0, but got weight of size {list(weight.shape)} instead")
    if channels != in_channels:
        raise HandgradError(
            f"{op}: Given transposed=1, weight of size {list(weight.shape)}, expected "
            f"input{list(input.shape)} to have {in_channels} channels, but got {channels} "
            f"channels instead")
    out_channels = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise HandgradError(
            f"{op}: Given transposed=1, weight of size {list(weight.shape)}, expected bias "
            f"to be 1-dimensional with {out_channels} elements, but got bias of size "
            f"{list(bias.shape)} instead")
    kernel = tuple(weight.shape[2:])
    out = output_size(input.shape[-n:], kernel, stride, padding, output_padding, dilation)
    if min(out) < 1 or min(input.shape[-n:]) < 1:
        raise HandgradError(
            f"{op}: Given input size per channel: ({' x '.join(map(str, input.shape[-n:]))})"
            f". Calculated output size per channel: ({' x '.join(map(str, out))}). Output "
            f"size is too small (weight of size {list(weight.shape)}, stride {stride}, "
            f"padding {padding}); use less padding")
    return ConvTransposeNd.apply(input, weight, bias, stride, padding, output_padding,
                                 dilation, groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """PyTorch's nn.functional.conv_transpose1d on (N, C_in, L) or unbatched (C_in, L),
    weight (C_in, C_out / groups, k): one fused node."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """PyTorch's nn.functional.conv_transpose2d on (N, C_in, H, W) or unbatched
    (C_in, H, W), weight (C_in, C_out / groups, kh, kw): one fused node."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """PyTorch's nn.functional.conv_transpose3d on (N, C_in, D, H, W) or unbatched
    (C_in, D, H, W), weight (C_in, C_out / groups, kd, kh, kw): one fused node."""
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)
