"""Registry entries for the convolution family of handgrad.nn.functional: conv1d, conv2d,
conv3d, unfold (im2col) and fold (col2im), over a grid of stride / padding (ints, tuples,
'same' with an even kernel, 'valid') / dilation / groups (depthwise included) and
unbatched inputs, with each layout of conv_strategy reached in 1, 2 and 3 dims.

Each entry calls the public functional API with torch.nn.functional as the reference.
The composed references never build columns the fused way:
  * conv: one slice of the zero-padded input per kernel offset (handgrad strided
    slicing), contracted with that offset's weight slice by a batched matmul, summed;
  * unfold: the same per-offset slices, stacked;
  * fold: a matmul with the 0/1 scatter matrix M[(offset, block), pixel] built from
    the index arithmetic, then the padding sliced off.

Left out: the modules (tests/nn/test_conv.py compares them with torch.nn).
"""

from __future__ import annotations

import itertools
import math
import warnings

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.testing.registry import register


# ============================================================== composed references
def _spatial_pads(padding, kernel, dilation):
    """((lo, hi), ...) per spatial dim for an int / tuple / 'valid' / 'same' padding."""
    n = len(kernel)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return tuple((t // 2, t - t // 2) for t in totals)
    padding = (padding,) * n if isinstance(padding, int) else tuple(padding)
    return tuple((p, p) for p in padding)


def _as_tuple(value, n):
    return (value,) * n if isinstance(value, int) else tuple(value)


def _zero_pad(x, pads):
    """hg.pad takes the last dim first: (w_lo, w_hi, h_lo, h_hi)."""
    flat = [amount for pair in reversed(pads) for amount in pair]
    return hg.pad(x, flat) if any(flat) else x


def _offset_slices(x_padded, kernel, dilation, stride, out):
    """For each kernel offset i (row-major): x_padded[..., i d : : s] cut to `out`."""
    for offset in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                       for i, d, s, o in zip(offset, dilation, stride, out))
        yield offset, x_padded[(slice(None), slice(None), *window)]


def _out_size(spatial, kernel, dilation, pads, stride):
    return tuple((size + lo + hi - d * (k - 1) - 1) // s + 1
                 for size, k, d, (lo, hi), s in zip(spatial, kernel, dilation, pads, stride))


def _composed_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """out[n, o] = sum over offsets i of W[o, :, i] . x_padded[n, :, p s + i d] + b[o]."""
    n = w.ndim - 2
    unbatched = x.ndim == n + 1
    if unbatched:
        x = x.unsqueeze(0)
    kernel = tuple(w.shape[2:])
    stride, dilation = _as_tuple(stride, n), _as_tuple(dilation, n)
    pads = _spatial_pads(padding, kernel, dilation)
    out = _out_size(x.shape[2:], kernel, dilation, pads, stride)
    batch, channels, out_channels = x.shape[0], x.shape[1], w.shape[0]
    total = None
    for offset, patch in _offset_slices(_zero_pad(x, pads), kernel, dilation, stride, out):
        patch = patch.reshape(batch, groups, channels // groups, -1)  # (N, G, Cg, L)
        w_offset = w[(slice(None), slice(None), *offset)]  # (O, Cg)
        term = w_offset.reshape(groups, out_channels // groups, -1) @ patch  # (N, G, Og, L)
        total = term if total is None else total + term
    y = total.reshape(batch, out_channels, *out)
    if b is not None:
        y = y + b.reshape(out_channels, *(1,) * n)
    return y[0] if unbatched else y


def _composed_unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """cols[n, (c, i), block] = x_padded[n, c, block's origin + i d], stacked over i."""
    unbatched = x.ndim == 3
    if unbatched:
        x = x.unsqueeze(0)
    kernel, dilation, stride = (_as_tuple(v, 2) for v in (kernel_size, dilation, stride))
    pads = _spatial_pads(padding, kernel, dilation)
    out = _out_size(x.shape[2:], kernel, dilation, pads, stride)
    slabs = [s for _, s in _offset_slices(_zero_pad(x, pads), kernel, dilation, stride, out)]
    cols = hg.stack(slabs, 2).reshape(x.shape[0], x.shape[1] * math.prod(kernel), -1)
    return cols[0] if unbatched else cols


def _scatter_matrix(output_size, kernel, dilation, pads, stride, like):
    """M[(i, block), pixel] = 1 where kernel offset i of block lands on padded pixel."""
    out = _out_size(output_size, kernel, dilation, pads, stride)
    padded = [size + lo + hi for size, (lo, hi) in zip(output_size, pads)]
    rows = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        for block in itertools.product(*(range(o) for o in out)):
            y, x = (b * s + i * d for b, s, i, d in zip(block, stride, offset, dilation))
            rows.append(y * padded[1] + x)
    matrix = torch.zeros(len(rows), math.prod(padded), dtype=like.dtype, device=like.device)
    matrix[torch.arange(len(rows)), torch.tensor(rows)] = 1.0
    return hg.Tensor(matrix), padded


def _composed_fold(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """image_padded = cols @ M (overlaps add up), then the padding is cut away."""
    unbatched = cols.ndim == 2
    if unbatched:
        cols = cols.unsqueeze(0)
    output_size, kernel, dilation, stride = (_as_tuple(v, 2) for v in
                                             (output_size, kernel_size, dilation, stride))
    pads = _spatial_pads(padding, kernel, dilation)
    matrix, padded = _scatter_matrix(output_size, kernel, dilation, pads, stride, cols.data)
    batch, channels = cols.shape[0], cols.shape[1] // math.prod(kernel)
    image = (cols.reshape(batch, channels, -1) @ matrix).reshape(batch, channels, *padded)
    (top, _), (left, _) = pads
    image = image[:, :, top:top + output_size[0], left:left + output_size[1]]
    return image[0] if unbatched else image


def _quiet(reference, *args, **options):
    """torch's conv, without its UserWarning that 'same' with an even kernel copies the
    input (a note about its speed, not about the values compared)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using padding='same'", UserWarning)
        return reference(*args, **options)


# ==================================================================== conv entries
# (name, shapes of (x, weight, bias), options): bias-free entries drop the third shape.
CONV2D = [
    ("conv2d", [((2, 3, 5, 4), (4, 3, 3, 2), (4,)), ((1, 2, 3, 3), (3, 2, 1, 1), (3,))], {}),
    ("conv2d_stride_padding", [((2, 3, 6, 5), (4, 3, 3, 3), (4,))],
     {"stride": 2, "padding": 1}),
    ("conv2d_tuple_stride_padding_dilation", [((2, 2, 7, 6), (3, 2, 2, 3), (3,))],
     {"stride": (2, 1), "padding": (1, 2), "dilation": (2, 1)}),
    ("conv2d_groups", [((2, 4, 5, 5), (6, 2, 3, 3), (6,))], {"groups": 2, "padding": 1}),
    ("conv2d_depthwise", [((2, 3, 5, 4), (6, 1, 3, 3), (6,))],
     {"groups": 3, "padding": "same"}),
    ("conv2d_same_even_kernel", [((2, 2, 5, 6), (3, 2, 2, 4), (3,))],
     {"padding": "same", "dilation": (1, 2)}),
    ("conv2d_valid_unbatched", [((3, 5, 4), (2, 3, 2, 2), (2,))], {"padding": "valid"}),
    # the layouts of conv_strategy: 256+ output positions per image run "columns", and
    # "shift" (the padded grid) with stride 1 and 16+ input channels
    ("conv2d_columns", [((1, 3, 16, 16), (2, 3, 3, 3), (2,)), ((2, 16, 16), (2, 2, 3, 3), (2,))],
     {"padding": 1}),
    ("conv2d_columns_1x1", [((1, 4, 16, 16), (3, 4, 1, 1), (3,))], {}),
    ("conv2d_columns_dilation_same", [((1, 2, 16, 16), (2, 2, 3, 2), (2,))],
     {"padding": "same", "dilation": (2, 1)}),
    ("conv2d_shift", [((1, 16, 16, 16), (2, 16, 3, 3), (2,))], {"padding": 1}),
    ("conv2d_shift_dilation_same", [((1, 16, 16, 16), (2, 16, 2, 3), (2,))],
     {"padding": "same", "dilation": (1, 2)}),
    # "batch_inner": small images (under 256 outputs) of 8+ images, not depthwise
    ("conv2d_batchinner", [((8, 2, 4, 5), (3, 2, 3, 2), (3,))], {"padding": (1, 0)}),
    ("conv2d_batchinner_stride_groups", [((8, 4, 6, 5), (4, 2, 3, 2), (4,))],
     {"stride": (2, 1), "dilation": (1, 2), "padding": 1, "groups": 2}),
]
CONV1D = [
    ("conv1d", [((2, 3, 7), (4, 3, 3), (4,)), ((3, 6), (2, 3, 2), (2,))], {}),
    ("conv1d_stride_padding_dilation_groups", [((2, 3, 9), (6, 1, 3), (6,))],
     {"stride": 2, "padding": 2, "dilation": 2, "groups": 3}),
    ("conv1d_same_even_kernel", [((2, 2, 8), (3, 2, 4), (3,))], {"padding": "same"}),
    ("conv1d_columns", [((1, 3, 260), (2, 3, 3), (2,))], {"padding": 2, "dilation": 2}),
    ("conv1d_shift", [((1, 16, 256), (2, 16, 3), (2,)), ((16, 258), (2, 16, 2), (2,))],
     {"padding": 1}),
    ("conv1d_batchinner", [((8, 3, 7), (4, 3, 3), (4,))], {"stride": 2, "padding": 1}),
]
# volumes kept small: float64 finite differences perturb every element of x and W
CONV3D = [
    ("conv3d", [((2, 2, 3, 4, 3), (3, 2, 2, 2, 2), (3,)), ((2, 4, 3, 3), (2, 2, 2, 1, 2), (2,))],
     {}),
    ("conv3d_stride_padding_dilation", [((1, 2, 5, 6, 5), (3, 2, 3, 2, 2), (3,))],
     {"stride": (2, 1, 2), "padding": (1, 0, 1), "dilation": (1, 2, 1)}),
    ("conv3d_groups", [((2, 4, 3, 4, 3), (4, 2, 2, 2, 2), (4,))], {"groups": 2, "padding": 1}),
    ("conv3d_depthwise_same_even_kernel", [((1, 3, 4, 3, 4), (3, 1, 2, 3, 2), (3,))],
     {"groups": 3, "padding": "same", "dilation": (1, 1, 2)}),
    ("conv3d_valid_unbatched", [((2, 3, 4, 3), (2, 2, 3, 2, 2), (2,))], {"padding": "valid"}),
    # the layouts of conv_strategy for volumes: 256+ output positions per image run
    # "columns", and "shift" with stride 1, 16+ input channels and a grid that wastes
    # under half (here a (2, 1, 1) kernel, unpadded: 320 grid positions for 256 outputs)
    ("conv3d_columns", [((1, 2, 8, 8, 4), (2, 2, 3, 3, 3), (2,))], {"padding": 1}),
    ("conv3d_shift", [((1, 16, 5, 8, 8), (2, 16, 2, 1, 1), (2,))], {}),
    ("conv3d_batchinner", [((8, 2, 3, 3, 3), (3, 2, 2, 2, 2), (3,))],
     {"padding": (1, 0, 0), "stride": (1, 1, 2)}),
]
for functional, reference, entries in [(HF.conv2d, TF.conv2d, CONV2D),
                                       (HF.conv1d, TF.conv1d, CONV1D),
                                       (HF.conv3d, TF.conv3d, CONV3D)]:
    for name, shapes, options in entries:
        register(
            name,
            fn=lambda x, w, b, f=functional, o=options: f(x, w, b, **o),
            ref=lambda x, w, b, f=reference, o=options: _quiet(f, x, w, b, **o),
            composed=lambda x, w, b, o=options: _composed_conv(x, w, b, **o),
            shapes=shapes,
            covers=(HF.ConvNd,),
        )
register(
    "conv2d_no_bias",
    fn=lambda x, w: HF.conv2d(x, w, stride=(1, 2), padding=1),
    ref=lambda x, w: TF.conv2d(x, w, stride=(1, 2), padding=1),
    composed=lambda x, w: _composed_conv(x, w, stride=(1, 2), padding=1),
    shapes=[((2, 3, 4, 5), (2, 3, 3, 3))],
    covers=(HF.ConvNd,),
)
register(
    "conv3d_no_bias",
    fn=lambda x, w: HF.conv3d(x, w, stride=(1, 2, 1), padding=(0, 1, 1)),
    ref=lambda x, w: TF.conv3d(x, w, stride=(1, 2, 1), padding=(0, 1, 1)),
    composed=lambda x, w: _composed_conv(x, w, stride=(1, 2, 1), padding=(0, 1, 1)),
    shapes=[((2, 2, 3, 4, 3), (2, 2, 2, 3, 2))],
    covers=(HF.ConvNd,),
)
register(
    "conv1d_no_bias",
    fn=lambda x, w: HF.conv1d(x, w, groups=2),
    ref=lambda x, w: TF.conv1d(x, w, groups=2),
    composed=lambda x, w: _composed_conv(x, w, groups=2),
    shapes=[((2, 4, 6), (4, 2, 3))],
    covers=(HF.ConvNd,),
)

# ============================================================ unfold / fold entries
UNFOLD = [
    ("unfold", [(2, 3, 5, 4), (3, 4, 4)], {"kernel_size": 2}),
    ("unfold_stride_padding_dilation", [(2, 2, 6, 5)],
     {"kernel_size": (3, 2), "dilation": (1, 2), "padding": 1, "stride": 2}),
]
for name, shapes, options in UNFOLD:
    register(
        name,
        fn=lambda x, o=options: HF.unfold(x, **o),
        ref=lambda x, o=options: TF.unfold(x, **o),
        composed=lambda x, o=options: _composed_unfold(x, **o),
        shapes=[(s,) for s in shapes],
        covers=(HF.Unfold,),
    )
FOLD = [
    # output (5, 4), 2x2 kernel: 4 * 3 blocks; C = 3 -> 12 rows
    ("fold", [(2, 12, 12), (12, 12)], {"output_size": (5, 4), "kernel_size": 2}),
    # output (6, 5), 3x2 kernel, dilation (1, 2), padding 1, stride 2: 3 * 3 blocks
    ("fold_stride_padding_dilation", [(2, 12, 9)],
     {"output_size": (6, 5), "kernel_size": (3, 2), "dilation": (1, 2), "padding": 1,
      "stride": 2}),
]
for name, shapes, options in FOLD:
    register(
        name,
        fn=lambda c, o=options: HF.fold(c, **o),
        ref=lambda c, o=options: TF.fold(c, **o),
        composed=lambda c, o=options: _composed_fold(c, **o),
        shapes=[(s,) for s in shapes],
        covers=(HF.Fold,),
    )
