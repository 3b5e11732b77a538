"""Registry entries for the pooling family of handgrad.nn.functional: max_pool1d/2d/3d
(with and without return_indices), avg_pool1d/2d/3d, adaptive_avg_pool1d/2d,
adaptive_max_pool2d and max_unpool1d/2d, over a grid of kernel / stride / padding /
dilation / ceil_mode / count_include_pad / divisor_override and unbatched inputs.

Each entry calls the public functional API with torch.nn.functional as the reference.
The composed references never build the strided window view the fused way:
  * max: the input padded with -inf (hg.pad), one strided slice per kernel offset,
    stacked, and the max over the offsets (its indices turned into flat plane indices);
  * average: the same slices of the zero-padded input, summed, divided by the same
    window sum of a ones-plane padded with ones (count_include_pad) or zeros (not), so
    the divisor is counted, not computed from torch's formula;
  * adaptive average / max: one slice and mean / max per output position (the outputs
    are small);
  * max_unpool: a matmul with the 0/1 matrix M[o, p] = (index[o] == p) per plane. Its
    indices are distinct per plane (a fixed random draw; max_pool with overlapping
    windows can repeat one, and which repeated value lands there is unspecified).
Max pooling entries draw `distinct` values: no ties, so finite differences hold.

Left out: the modules (tests/nn/test_pooling.py compares them with torch.nn).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.testing.registry import distinct, register


# ============================================================== composed references
def _as_tuple(value, n):
    return (value,) * n if isinstance(value, int) else tuple(value)


def _out_length(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    return out - 1 if ceil_mode and (out - 1) * s >= size + p else out


def _padded_slices(x, kernel, stride, padding, dilation, ceil_mode, value, beyond=None):
    """x padded by `padding` with `value`, then on the right by what ceil_mode's last
    window reaches past that with `beyond` (default: value); one strided slice per
    kernel offset, row-major, and the output size."""
    spatial = x.shape[2:]
    out = [_out_length(size, k, s, p, d, ceil_mode)
           for size, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)]
    extra = [max(0, (o - 1) * s + d * (k - 1) + 1 - size - 2 * p)
             for size, k, s, p, d, o in zip(spatial, kernel, stride, padding, dilation, out)]
    both_sides = [a for p in reversed(padding) for a in (p, p)]  # last dim first
    right_only = [a for e in reversed(extra) for a in (0, e)]
    if any(both_sides):
        x = hg.pad(x, both_sides, value)
    if any(right_only):
        x = hg.pad(x, right_only, value if beyond is None else beyond)
    slices = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                       for i, d, s, o in zip(offset, dilation, stride, out))
        slices.append(x[(slice(None), slice(None), *window)])
    return slices, out


def _composed_max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                       return_indices=False, n=2):
    unbatched = x.ndim == n + 1
    if unbatched:
        x = x.unsqueeze(0)
    kernel = _as_tuple(kernel_size, n)
    stride = kernel if stride is None else _as_tuple(stride, n)
    padding, dilation = _as_tuple(padding, n), _as_tuple(dilation, n)
    slices, out = _padded_slices(x, kernel, stride, padding, dilation, ceil_mode,
                                 float("-inf"))
    values, offsets = hg.stack(slices, -1).max(-1)  # offsets: row-major in the window
    values = values[0] if unbatched else values
    if not return_indices:
        return values
    index, rest = torch.zeros_like(offsets.data), offsets.data
    for axis in reversed(range(n)):
        rest, offset = rest // kernel[axis], rest % kernel[axis]
        origin = torch.arange(out[axis]).reshape(-1, *(1,) * (n - axis - 1)) * stride[axis]
        index += (origin + offset * dilation[axis] - padding[axis]) * math.prod(
            x.shape[3 + axis:])
    return values, hg.Tensor(index[0] if unbatched else index)


def _composed_avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None, n=2):
    unbatched = x.ndim == n + 1
    if unbatched:
        x = x.unsqueeze(0)
    kernel = _as_tuple(kernel_size, n)
    stride = kernel if stride is None else _as_tuple(stride, n)
    padding, ones = _as_tuple(padding, n), (1,) * n
    slices, _ = _padded_slices(x, kernel, stride, padding, ones, ceil_mode, 0.0)
    total = sum(slices[1:], slices[0])
    if divisor_override:
        y = total / divisor_override
    else:
        plane = hg.ones(1, 1, *x.shape[2:], dtype=x.dtype)
        # the padding counts when count_include_pad, what ceil_mode adds past it never
        inside = 1.0 if count_include_pad else 0.0
        slices, _ = _padded_slices(plane, kernel, stride, padding, ones, ceil_mode, inside,
                                   beyond=0.0)
        count = sum(slices[1:], slices[0])
        y = total / count.detach()
    return y[0] if unbatched else y


def _composed_adaptive_max_pool(x, output_size, return_indices=False):
    """One slice per output position, flattened, and its max (and argmax as a plane
    index): torch's windows floor(i In / Out) .. ceil((i + 1) In / Out)."""
    (height, width), lead = x.shape[-2:], x.shape[:-2]
    if isinstance(output_size, int):
        output_size = (output_size,) * 2
    output_size = [s if o is None else o for s, o in zip((height, width), output_size)]
    ranges = [[(i * size // o, -(-(i + 1) * size // o)) for i in range(o)]
              for size, o in zip((height, width), output_size)]
    values, indices = [], []
    for (top, bottom), (left, right) in itertools.product(*ranges):
        value, offset = x[..., top:bottom, left:right].reshape(*lead, -1).max(-1)
        values.append(value)
        offset = offset.data
        indices.append((top + offset // (right - left)) * width + left
                       + offset % (right - left))
    values = hg.stack(values, -1).reshape(*lead, *output_size)
    if not return_indices:
        return values
    return values, hg.Tensor(torch.stack(indices, -1).reshape(*lead, *output_size))


def _composed_adaptive_avg_pool(x, output_size, n=2):
    """One slice and mean per output position: torch's windows floor(i In / Out) ..
    ceil((i + 1) In / Out)."""
    spatial = x.shape[-n:]
    if isinstance(output_size, int):
        output_size = (output_size,) * n
    output_size = [s if o is None else o for s, o in zip(spatial, output_size)]
    ranges = [[(i * size // o, -(-(i + 1) * size // o)) for i in range(o)]
              for size, o in zip(spatial, output_size)]
    dims = tuple(range(-n, 0))
    values = [x[(..., *(slice(a, b) for a, b in window))].mean(dims)
              for window in itertools.product(*ranges)]
    return hg.stack(values, -1).reshape(*x.shape[:-n], *output_size)


# ==================================================================== max pooling
MAX_POOL2D = [  # (name, shapes, options)
    ("max_pool2d", [(2, 3, 6, 5), (3, 5, 4)], {"kernel_size": 2}),
    ("max_pool2d_stride_padding", [(2, 2, 7, 6)],
     {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("max_pool2d_tuple_dilation_ceil", [(2, 2, 8, 7)],
     {"kernel_size": (3, 2), "stride": (2, 3), "padding": (1, 1), "dilation": (2, 1),
      "ceil_mode": True}),
    ("max_pool2d_overlapping_ceil", [(1, 2, 5, 6)],
     {"kernel_size": 3, "stride": 1, "ceil_mode": True}),
    ("max_pool2d_tiles_indices", [(2, 3, 7, 6), (2, 6, 4)],  # _max_blocks, a row left over
     {"kernel_size": (3, 2), "return_indices": True}),
    ("max_pool2d_indices", [(2, 2, 6, 7), (2, 5, 5)],
     {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
      "return_indices": True}),
]
MAX_POOL1D = [
    ("max_pool1d", [(2, 3, 9), (3, 8)], {"kernel_size": 3}),
    ("max_pool1d_stride_padding_dilation_ceil", [(2, 2, 10)],
     {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}),
    ("max_pool1d_indices", [(2, 3, 9)],
     {"kernel_size": 2, "stride": 1, "padding": 1, "return_indices": True}),
]
MAX_POOL3D = [  # small volumes: finite differences perturb every element
    ("max_pool3d", [(2, 2, 4, 5, 4), (2, 4, 5, 4)], {"kernel_size": 2}),  # tiles
    ("max_pool3d_stride_padding_dilation_ceil", [(1, 2, 6, 7, 6)],
     {"kernel_size": (3, 2, 3), "stride": (2, 1, 2), "padding": 1, "dilation": (1, 2, 1),
      "ceil_mode": True}),
    ("max_pool3d_indices", [(2, 2, 5, 5, 4), (2, 4, 5, 4)],
     {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
      "return_indices": True}),
    ("max_pool3d_tiles_indices", [(1, 2, 5, 4, 6)],
     {"kernel_size": (2, 2, 3), "return_indices": True}),
    # 7 x 7 x 6 = 294 offsets, past the uint8 offset scan: windows copied, torch.max
    ("max_pool3d_large_kernel_indices", [(1, 2, 8, 8, 7)],
     {"kernel_size": (7, 7, 6), "stride": 1, "return_indices": True}),
]
for functional, reference, n, entries in [(HF.max_pool2d, TF.max_pool2d, 2, MAX_POOL2D),
                                          (HF.max_pool1d, TF.max_pool1d, 1, MAX_POOL1D),
                                          (HF.max_pool3d, TF.max_pool3d, 3, MAX_POOL3D)]:
    for name, shapes, options in entries:
        register(
            name,
            fn=lambda x, f=functional, o=options: f(x, **o),
            ref=lambda x, f=reference, o=options: f(x, **o),
            composed=lambda x, o=options, n=n: _composed_max_pool(x, **o, n=n),
            shapes=[(s,) for s in shapes],
            domains=distinct,
            covers=(HF.MaxPool,),
        )

# ================================================================ average pooling
AVG_POOL2D = [
    ("avg_pool2d", [(2, 3, 6, 5), (3, 4, 4)], {"kernel_size": 2}),
    ("avg_pool2d_stride_padding", [(2, 2, 7, 6)],
     {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg_pool2d_exclude_pad_ceil", [(2, 2, 7, 6)],
     {"kernel_size": (3, 2), "stride": 2, "padding": 1, "ceil_mode": True,
      "count_include_pad": False}),
    ("avg_pool2d_include_pad_ceil", [(1, 2, 6, 7)],
     {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ("avg_pool2d_divisor_override", [(2, 2, 6, 6)],
     {"kernel_size": 3, "stride": 2, "padding": 1, "divisor_override": 4}),
]
AVG_POOL1D = [
    ("avg_pool1d", [(2, 3, 9), (3, 8)], {"kernel_size": 3}),
    ("avg_pool1d_stride_padding_ceil", [(2, 2, 10)],
     {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True}),
    ("avg_pool1d_exclude_pad", [(2, 2, 7)],
     {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
]
AVG_POOL3D = [
    ("avg_pool3d", [(2, 2, 4, 5, 4), (2, 4, 4, 4)], {"kernel_size": 2}),
    ("avg_pool3d_exclude_pad_ceil", [(1, 2, 5, 6, 5)],
     {"kernel_size": (3, 2, 3), "stride": 2, "padding": 1, "ceil_mode": True,
      "count_include_pad": False}),
    ("avg_pool3d_include_pad_ceil", [(1, 2, 5, 5, 6)],
     {"kernel_size": 3, "stride": (2, 1, 2), "padding": 1, "ceil_mode": True}),
    ("avg_pool3d_divisor_override", [(1, 2, 4, 4, 4)],
     {"kernel_size": 3, "stride": 2, "padding": 1, "divisor_override": 5}),
]
for functional, reference, n, entries in [(HF.avg_pool2d, TF.avg_pool2d, 2, AVG_POOL2D),
                                          (HF.avg_pool1d, TF.avg_pool1d, 1, AVG_POOL1D),
                                          (HF.avg_pool3d, TF.avg_pool3d, 3, AVG_POOL3D)]:
    for name, shapes, options in entries:
        register(
            name,
            fn=lambda x, f=functional, o=options: f(x, **o),
            ref=lambda x, f=reference, o=options: f(x, **o),
            composed=lambda x, o=options, n=n: _composed_avg_pool(x, **o, n=n),
            shapes=[(s,) for s in shapes],
            covers=(HF.AvgPool,),
        )

# ======================================================= adaptive average pooling
ADAPTIVE = [
    ("adaptive_avg_pool2d", HF.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, 2,
     [(2, 3, 7, 5), (3, 6, 6)], 3),
    ("adaptive_avg_pool2d_pair_none", HF.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, 2,
     [(2, 2, 5, 9)], (2, None)),
    ("adaptive_avg_pool2d_upsample", HF.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, 2,
     [(1, 2, 3, 2)], (4, 5)),
    ("adaptive_avg_pool1d", HF.adaptive_avg_pool1d, TF.adaptive_avg_pool1d, 1,
     [(2, 3, 10), (3, 7)], 4),
]
for name, functional, reference, n, shapes, size in ADAPTIVE:
    register(
        name,
        fn=lambda x, f=functional, s=size: f(x, s),
        ref=lambda x, f=reference, s=size: f(x, s),
        composed=lambda x, s=size, n=n: _composed_adaptive_avg_pool(x, s, n=n),
        shapes=[(s,) for s in shapes],
        covers=(HF.AdaptiveAvgPool,),
    )

# =========================================================== adaptive max pooling
ADAPTIVE_MAX = [
    ("adaptive_max_pool2d", [(2, 3, 7, 5), (3, 6, 6)], (3,), {}),
    ("adaptive_max_pool2d_pair_none_indices", [(2, 2, 5, 9)], ((2, None),),
     {"return_indices": True}),
    ("adaptive_max_pool2d_upsample_indices", [(1, 2, 3, 2)], ((4, 5),),
     {"return_indices": True}),
]
for name, shapes, args, options in ADAPTIVE_MAX:
    register(
        name,
        fn=lambda x, a=args, o=options: HF.adaptive_max_pool2d(x, *a, **o),
        ref=lambda x, a=args, o=options: TF.adaptive_max_pool2d(x, *a, **o),
        composed=lambda x, a=args, o=options: _composed_adaptive_max_pool(x, *a, **o),
        shapes=[(s,) for s in shapes],
        domains=distinct,
        covers=(HF.AdaptiveMaxPool,),
    )


# ================================================================ max unpooling
def _unpool_indices(x, n, output_size):
    """int64 indices shaped as x ((N, C, *in) or (C, *in), n spatial dims): per plane,
    distinct flat positions in the output plane, drawn from a fixed seed."""
    count = math.prod(x.shape[-n:])
    planes = math.prod(x.shape) // count
    gen = torch.Generator().manual_seed(7)
    draw = torch.rand(planes, math.prod(output_size), generator=gen).argsort(1)[:, :count]
    return draw.reshape(x.shape).to(getattr(x, "data", x).device)


def _composed_max_unpool(x, indices, output_size):
    """out[plane] = x[plane] @ M with M[o, p] = (indices[plane, o] == p)."""
    n = len(output_size)
    lead = x.shape[:x.ndim - n]
    planes = math.prod(lead)
    flat = indices.reshape(planes, -1)
    onehot = torch.zeros(planes, flat.shape[1], math.prod(output_size), dtype=x.dtype,
                         device=x.data.device)
    onehot.scatter_(2, flat.unsqueeze(-1), 1.0)
    out = x.reshape(planes, 1, -1) @ hg.Tensor(onehot)  # (planes, 1, prod(output_size))
    return out.reshape(*lead, *output_size)


# (name, n, shapes of x, output plane size, options)
UNPOOL = [
    ("max_unpool2d", 2, [(2, 3, 3, 3), (3, 2, 4)], None, {"kernel_size": 2}),
    ("max_unpool2d_stride_padding_output_size", 2, [(2, 2, 3, 4)], (6, 7),
     {"kernel_size": 3, "stride": 2, "padding": 1, "output_size": (6, 7)}),
    ("max_unpool1d", 1, [(2, 3, 4)], None, {"kernel_size": 2}),
    ("max_unpool1d_stride_output_size_unbatched", 1, [(3, 5)], (12,),
     {"kernel_size": 3, "stride": 2, "output_size": (12,)}),
]


def _unpool_size(shape, n, size, options):
    """The output plane: `size`, else torch's default (in - 1) stride - 2 pad + kernel."""
    if size is not None:
        return size
    k, s, p = (options.get(name, default) for name, default in
               [("kernel_size", None), ("stride", options["kernel_size"]), ("padding", 0)])
    return tuple((i - 1) * s + k - 2 * p for i in shape[-n:])


for name, n, shapes, size, options in UNPOOL:
    functional, reference = ((HF.max_unpool2d, TF.max_unpool2d) if n == 2
                             else (HF.max_unpool1d, TF.max_unpool1d))

    def indices_for(x, n=n, options=options, size=size):
        return _unpool_indices(x, n, _unpool_size(x.shape, n, size, options))

    register(
        name,
        fn=lambda x, f=functional, o=options, i=indices_for: f(x, hg.Tensor(i(x)), **o),
        ref=lambda x, f=reference, o=options, i=indices_for: f(x, i(x), **o),
        composed=lambda x, o=options, i=indices_for, n=n, size=size: _composed_max_unpool(
            x, i(x), _unpool_size(x.shape, n, size, o)),
        shapes=[(s,) for s in shapes],
        covers=(HF.MaxUnpool,),
    )
