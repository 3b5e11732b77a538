"""Resampling of images and sequences: F.interpolate with mode 'nearest' (1-d and 2-d),
'linear' (1-d) and 'bilinear' (2-d), align_corners True or False, as two fused
Functions with a hand-written backward.

Both are separable: along each spatial axis an output position o reads one input
position (nearest) or two with weights (linear), tables built from torch's index
arithmetic, in torch's precision (float32 for float32 and smaller floats, float64 for
float64):
  * nearest: src(o) = min(floor(o * scale), in - 1), scale = 1 / scale_factor when a
    scale factor is given (and recompute_scale_factor is not True), else in / out; in
    2-d, an output as long as the input, or twice as long, reads o, or o // 2 (torch's
    shortcuts, whatever the scale factor). torch's 1-d forward skips those shortcuts but
    its 1-d backward takes them, so with a scale factor that gives out == in or
    out == 2 in (1.1, 2.1) torch's gradient is not the transpose of its own forward;
    handgrad's forward is torch's and its gradient the true transpose;
  * linear and bilinear: an axis whose size does not change is copied (torch's
    shortcut, whatever the scale factor); along the others, the source position is
    x(o) = o * (in - 1) / (out - 1) with align_corners=True (0 when out == 1), or
    x(o) = max(0, scale * (o + 0.5) - 0.5) with align_corners=False (scale as for
    nearest); then i0 = min(floor(x), in - 1), i1 = i0 + 1 (i0 at the last input),
    w1 = clamp(x - i0, 0, 1), w0 = 1 - w1.
The forward gathers along each axis (index_select) and weights; the backward is the
transpose: the upstream gradient times each weight, scatter-added (index_add_) onto
the input positions read, one axis after the other. No loop runs over pixels.

Left out: 'bicubic', 'trilinear', 'area', 'nearest-exact', antialiasing and 3-d (5-d
input) resampling; the modules (handgrad/nn/upsampling.py).
"""

from __future__ import annotations

import math

import torch

from handgrad.autograd import Function, HandgradError

MODES = ("nearest", "linear", "bilinear")
TORCH_ONLY_MODES = ("bicubic", "trilinear", "area", "nearest-exact", "lanczos")


# ------------------------------------------------------------------ index tables
def _compute_dtype(dtype):
    """torch's accumulation type for the index arithmetic: double for double, else float."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _scale(in_size, out_size, scale_factor, dtype):
    """torch's compute_scales_value: 1 / scale_factor when given (> 0), else in / out,
    in the compute dtype (a 0-d tensor)."""
    if scale_factor is not None and scale_factor > 0:
        return torch.tensor(1.0 / scale_factor, dtype=dtype)
    return torch.tensor(in_size, dtype=dtype) / out_size


def _nearest_table(in_size, out_size, scale_factor, device, shortcuts):
    """[(index, None)]: the input position each output position reads."""
    if shortcuts and out_size == in_size:
        index = torch.arange(out_size, device=device)
    elif shortcuts and out_size == 2 * in_size:
        index = torch.arange(out_size, device=device) // 2
    else:
        scale = _scale(in_size, out_size, scale_factor, torch.float32).to(device)
        position = torch.arange(out_size, dtype=torch.float32, device=device) * scale
        index = position.floor_().long().clamp_(max=in_size - 1)
    return [(index, None)]


def _linear_table(in_size, out_size, align_corners, scale_factor, dtype, device):
    """[(i0, w0), (i1, w1)]: the two input positions each output position reads, and
    their weights (in `dtype`)."""
    compute = _compute_dtype(dtype)
    dst = torch.arange(out_size, dtype=compute, device=device)
    if align_corners:
        scale = (torch.tensor(in_size - 1, dtype=compute) / (out_size - 1) if out_size > 1
                 else torch.zeros((), dtype=compute))
        source = dst * scale.to(device)
    else:
        scale = _scale(in_size, out_size, scale_factor, compute).to(device)
        source = (scale * (dst + 0.5) - 0.5).clamp_(min=0)
    i0 = source.floor().long().clamp_(max=in_size - 1)
    w1 = (source - i0).clamp_(0, 1)
    i1 = i0 + (i0 < in_size - 1)
    return [(i0, (1 - w1).to(dtype)), (i1, w1.to(dtype))]


def _three_dims(x, dim):
    """x as an (outer, size, inner) tensor around `dim` (2-d, (outer, size), when `dim` is
    the last): torch's index_select / index_add_ run several times faster on these
    than along a trailing dim of a 4-d tensor."""
    outer = math.prod(x.shape[:dim])
    return x.reshape(outer, x.shape[dim]) if dim == x.ndim - 1 else x.reshape(
        outer, x.shape[dim], -1)


def _gather(x, tables):
    """Resample x along its trailing len(tables) axes, the last axis first:
    out[..., o, ...] = sum over (index, weight) of weight[o] x[..., index[o], ...]."""
    for axis in reversed(range(len(tables))):
        dim = x.ndim - len(tables) + axis
        flat = _three_dims(x, dim)
        weight_shape = (-1,) if flat.ndim == 2 else (-1, 1)  # along `dim`
        out = None
        for index, weight in tables[axis]:
            part = flat.index_select(1, index)
            if weight is None:
                out = part
            elif out is None:
                out = part.mul_(weight.view(weight_shape))
            else:
                out.addcmul_(part, weight.view(weight_shape))
        shape = list(x.shape)
        shape[dim] = tables[axis][0][0].numel()
        x = out.view(shape)
    return x


def _scatter(g, input_shape, tables):
    """The transpose of _gather: the first axis first, each output position's gradient
    times its weights, added onto the input positions it read."""
    spatial = len(tables)
    for axis in range(spatial):
        dim = g.ndim - spatial + axis
        flat = _three_dims(g, dim)
        weight_shape = (-1,) if flat.ndim == 2 else (-1, 1)
        shape = list(g.shape)
        shape[dim] = input_shape[dim]
        dx = flat.new_zeros((flat.shape[0], input_shape[dim], *flat.shape[2:]))
        for index, weight in tables[axis]:
            dx.index_add_(1, index, flat if weight is None else flat * weight.view(weight_shape))
        g = dx.view(shape)
    return g


# ------------------------------------------------------------------ the Functions
class UpsampleNearest(Function):
    """Nearest-neighbour resampling of x: (N, C, *spatial), separable: along each axis
    out[o] = x[src(o)] with src from torch's rule (module docstring). The backward
    sends each output's gradient to the one input it copied, summing where several
    outputs copied the same input:  dx[i] = sum over o with src(o) = i of g[o]
    (index_add_ per axis)."""

    name = "upsample_nearest"

    @staticmethod
    def forward(ctx, x, tables):
        ctx.tables = tables
        ctx.input_shape = x.shape
        return _gather(x, tables)

    @staticmethod
    def backward(ctx, g):
        return _scatter(g, ctx.input_shape, ctx.tables), None


class UpsampleLinear(Function):
    """Linear (1-d) or bilinear (2-d) resampling of x: (N, C, *spatial), separable: along
    each axis out[o] = w0[o] x[i0(o)] + w1[o] x[i1(o)], the positions and weights from
    torch's source-index formula (module docstring); bilinear is the same along H of
    the result along W. The map is linear in x, so the backward is its transpose:
        dx[i] = sum over o of (w0[o] [i0(o) = i] + w1[o] [i1(o) = i]) g[o]
    along each axis (two index_add_ per axis)."""

    name = "upsample_linear"

    @staticmethod
    def forward(ctx, x, tables):
        ctx.tables = tables
        ctx.input_shape = x.shape
        return _gather(x, tables)

    @staticmethod
    def backward(ctx, g):
        return _scatter(g, ctx.input_shape, ctx.tables), None


# ------------------------------------------------------------------ the functional API
def _output_size(input, size, scale_factor, spatial):
    """(output sizes, the scale factors the tables use: None where derived from sizes)."""
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is not None:
        if isinstance(size, list | tuple):
            if len(size) != spatial:
                raise ValueError(
                    f"interpolate: Input and output must have the same number of spatial "
                    f"dimensions, but got input with spatial dimensions of "
                    f"{list(input.shape[2:])} and output size of {size}. Please provide "
                    f"input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                    f"(o1, o2, ...,oK) format.")
            if not all(isinstance(s, int) and not isinstance(s, bool) for s in size):
                raise TypeError(f"interpolate: expected size to be one of int or Tuple[int] or "
                                f"Tuple[int, int], but got size with types "
                                f"{[type(s) for s in size]}")
            return [int(s) for s in size], [None] * spatial
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"interpolate: expected size to be one of int or Tuple[int] or "
                            f"Tuple[int, int], but got size of type {type(size).__name__} "
                            f"({size!r}); pass whole output sizes")
        return [size] * spatial, [None] * spatial
    if scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    if isinstance(scale_factor, list | tuple):
        if len(scale_factor) != spatial:
            raise ValueError(
                f"interpolate: Input and scale_factor must have the same number of spatial "
                f"dimensions, but got input with spatial dimensions of "
                f"{list(input.shape[2:])} and scale_factor of shape {scale_factor}. Please "
                f"provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in "
                f"(s1, s2, ...,sK) format.")
        factors = [float(s) for s in scale_factor]
    else:
        factors = [float(scale_factor)] * spatial
    return [math.floor(n * s) for n, s in zip(input.shape[2:], factors)], factors


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """PyTorch's nn.functional.interpolate for mode 'nearest' ((N, C, L) and
    (N, C, H, W) inputs), 'linear' ((N, C, L)) and 'bilinear' ((N, C, H, W)): resample
    to `size`, or to floor(in * scale_factor), where the interpolation uses the given
    scale_factor unless recompute_scale_factor=True (then in / out, like `size`)."""
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("interpolate: align_corners option can only be set with the "
                             "interpolating modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    spatial = input.ndim - 2
    output_size, factors = _output_size(input, size, scale_factor, spatial)
    if recompute_scale_factor and size is not None:
        raise ValueError("interpolate: recompute_scale_factor is not meaningful with an "
                         "explicit size.")
    if recompute_scale_factor:
        factors = [None] * spatial
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not implemented in "
                                  "handgrad; use antialias=False")
    if mode in TORCH_ONLY_MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not implemented in handgrad "
                                  f"(it has {', '.join(MODES)})")
    wanted = {"linear": 3, "bilinear": 4}.get(mode)
    if mode not in MODES or input.ndim not in (3, 4) or (wanted and input.ndim != wanted):
        if wanted and input.ndim in (3, 4, 5):
            raise NotImplementedError(f"interpolate: Got {input.ndim}D input, but {mode} mode "
                                      f"needs {wanted}D input (shape {tuple(input.shape)})")
        raise NotImplementedError(
            f"interpolate: Input Error: handgrad supports 3D and 4D input Tensors (got "
            f"{input.ndim}D, shape {tuple(input.shape)}) for the modes: "
            f"{' | '.join(MODES)} (got {mode})")
    if min(output_size) <= 0 or min(input.shape[2:]) <= 0:
        raise HandgradError(f"interpolate: input and output sizes should be greater than 0, "
                            f"but got input {tuple(input.shape[2:])} and output "
                            f"{tuple(output_size)}")
    device = input.device
    pairs = zip(input.shape[2:], output_size, factors)
    if mode == "nearest":
        shortcuts = spatial == 2  # as torch's 2-d kernel (module docstring)
        tables = [_nearest_table(n, o, s, device, shortcuts) for n, o, s in pairs]
        return UpsampleNearest.apply(input, tables)
    # torch copies an axis whose size does not change: scale 1, whatever the factor
    tables = [_linear_table(n, o, align_corners, None if n == o else s, input.dtype, device)
              for n, o, s in pairs]
    return UpsampleLinear.apply(input, tables)
