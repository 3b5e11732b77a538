"""Registry entries for the transposed convolution of handgrad.nn.functional:
conv_transpose1d, conv_transpose2d and conv_transpose3d over a grid of stride / padding /
output_padding (below the stride, and below the dilation with stride 1) / dilation /
groups, with and without bias, batched and unbatched.

Each entry calls the public functional API with torch.nn.functional as the reference.
The composed reference is the textbook picture, never columns and col2im: insert
s - 1 zeros between input pixels (stack with zeros, reshape), pad each side by
d (k - 1) - p (crop where that is negative; output_padding more at the high end), then
a stride-1 convolution with the kernel flipped and its two channel axes swapped, done by
the per-offset slices of the conv entries' composed reference.

Left out: the modules (tests/nn/test_conv_transpose.py compares them with torch.nn).
"""

from __future__ import annotations

import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.testing.registry import register
from handgrad.testing.registry.conv import _composed_conv


def _as_tuple(value, n):
    return (value,) * n if isinstance(value, int) else tuple(value)


def _insert_zeros(x, dim, stride):
    """x with stride - 1 zeros between neighbours along dim: (..., S, ...) ->
    (..., (S - 1) stride + 1, ...)."""
    if stride == 1:
        return x
    size = x.shape[dim]
    zeros = hg.zeros(*x.shape, dtype=x.dtype, device=x.device)
    spread = hg.stack([x] + [zeros] * (stride - 1), dim + 1)  # (..., S, stride, ...)
    shape = list(x.shape)
    shape[dim] = size * stride
    spread = spread.reshape(*shape)
    index = [slice(None)] * x.ndim
    index[dim] = slice(0, (size - 1) * stride + 1)
    return spread[tuple(index)]


def _pad_or_crop(x, dim, lo, hi):
    """Zero-pad dim by lo / hi where positive, cut away -lo / -hi where negative."""
    index = [slice(None)] * x.ndim
    index[dim] = slice(max(-lo, 0), x.shape[dim] - max(-hi, 0))
    x = x[tuple(index)]
    if lo > 0 or hi > 0:
        flat = [0, 0] * (x.ndim - 1 - dim) + [max(lo, 0), max(hi, 0)]
        x = hg.pad(x, flat)
    return x


def _composed_conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0,
                             groups=1, dilation=1):
    """out = conv(zero-inserted, padded x, flipped W^T) with stride 1, dilation d."""
    n = w.ndim - 2
    unbatched = x.ndim == n + 1
    if unbatched:
        x = x.unsqueeze(0)
    stride, padding, output_padding, dilation = (
        _as_tuple(v, n) for v in (stride, padding, output_padding, dilation))
    kernel = tuple(w.shape[2:])
    for axis in range(n):
        dim = 2 + axis
        x = _insert_zeros(x, dim, stride[axis])
        reach = dilation[axis] * (kernel[axis] - 1) - padding[axis]
        x = _pad_or_crop(x, dim, reach, reach + output_padding[axis])
    # W (C_in, Cg_out, *k) -> (C_out, Cg_in, *k), kernel flipped
    in_channels, group_out = w.shape[0], w.shape[1]
    flipped = w.reshape(groups, in_channels // groups, group_out, *kernel).transpose(1, 2)
    flipped = flipped.reshape(groups * group_out, in_channels // groups, *kernel)
    flipped = flipped.flip(tuple(range(2, 2 + n)))
    y = _composed_conv(x, flipped, b, stride=1, padding=0, dilation=dilation, groups=groups)
    return y[0] if unbatched else y


# ============================================================================ entries
# (name, shapes of (x, weight, bias), options): weight is (C_in, C_out / groups, *k)
CONV_TRANSPOSE2D = [
    ("conv_transpose2d", [((2, 3, 4, 5), (3, 2, 3, 2), (2,)), ((1, 2, 2, 2), (2, 3, 1, 1), (3,))],
     {}),
    ("conv_transpose2d_stride_padding_output_padding", [((2, 3, 4, 3), (3, 2, 3, 3), (2,))],
     {"stride": 2, "padding": 1, "output_padding": 1}),
    ("conv_transpose2d_tuple_options_groups", [((2, 4, 3, 4), (4, 3, 2, 3), (6,))],
     {"stride": (2, 3), "padding": (1, 0), "output_padding": (0, 2), "dilation": (1, 2),
      "groups": 2}),
    ("conv_transpose2d_output_padding_below_dilation", [((2, 2, 3, 3), (2, 2, 2, 2), (2,))],
     {"output_padding": 1, "dilation": 2}),
    ("conv_transpose2d_depthwise_unbatched", [((3, 4, 3), (3, 1, 3, 3), (3,))],
     {"groups": 3, "stride": 2, "padding": 2}),
]
CONV_TRANSPOSE1D = [
    ("conv_transpose1d", [((2, 3, 5), (3, 4, 3), (4,)), ((3, 4), (3, 2, 2), (2,))], {}),
    ("conv_transpose1d_stride_padding_dilation_groups", [((2, 4, 5), (4, 1, 3), (2,))],
     {"stride": 3, "padding": 2, "output_padding": 1, "dilation": 2, "groups": 2}),
]
CONV_TRANSPOSE3D = [  # small volumes: finite differences perturb every element
    ("conv_transpose3d", [((2, 2, 2, 3, 2), (2, 3, 2, 2, 2), (3,)),
                          ((2, 2, 2, 2), (2, 2, 1, 2, 2), (2,))], {}),
    ("conv_transpose3d_stride_padding_output_padding_dilation_groups",
     [((1, 4, 2, 3, 2), (4, 1, 3, 2, 2), (2,))],
     {"stride": (2, 1, 2), "padding": (1, 0, 1), "output_padding": (1, 0, 0),
      "dilation": (1, 2, 1), "groups": 2}),
]
for functional, reference, entries in [(HF.conv_transpose2d, TF.conv_transpose2d,
                                        CONV_TRANSPOSE2D),
                                       (HF.conv_transpose1d, TF.conv_transpose1d,
                                        CONV_TRANSPOSE1D),
                                       (HF.conv_transpose3d, TF.conv_transpose3d,
                                        CONV_TRANSPOSE3D)]:
    for name, shapes, options in entries:
        register(
            name,
            fn=lambda x, w, b, f=functional, o=options: f(x, w, b, **o),
            ref=lambda x, w, b, f=reference, o=options: f(x, w, b, **o),
            composed=lambda x, w, b, o=options: _composed_conv_transpose(x, w, b, **o),
            shapes=shapes,
            covers=(HF.ConvTransposeNd,),
        )
register(
    "conv_transpose2d_no_bias",
    fn=lambda x, w: HF.conv_transpose2d(x, w, stride=(1, 2), padding=(0, 1)),
    ref=lambda x, w: TF.conv_transpose2d(x, w, stride=(1, 2), padding=(0, 1)),
    composed=lambda x, w: _composed_conv_transpose(x, w, stride=(1, 2), padding=(0, 1)),
    shapes=[((2, 3, 3, 4), (3, 2, 2, 3))],
    covers=(HF.ConvTransposeNd,),
)
