"""Registry entries for the image layers of handgrad.nn.functional beyond convolution and
pooling: group_norm, instance_norm (its own statistics, with and without running ones
to update, and from the running ones), dropout1d / dropout2d (whole channels) and
interpolate (nearest 1-d / 2-d, linear, bilinear; size or scale_factor; align_corners).

Each entry calls the public functional API with torch.nn.functional as the reference
(channel dropout: its formula x * mask / (1 - p) under the same seeded generator, since
torch draws its channel mask differently). The composed references:
  * group / instance norm: mean and biased variance of the (N, G, -1) reshape, then
    (x - mean) * rsqrt(var + eps), reshaped back, times weight plus bias per channel;
  * channel dropout: x times the seeded (N, C, 1, ...) mask, divided by 1 - p;
  * interpolation: a matmul per spatial axis with the (out, in) interpolation matrix,
    built here entry by entry in plain Python from torch's index rule (nearest: float32
    arithmetic, as torch's kernels do; linear: the input's precision, float64 there).

Left out: the modules (tests/nn/test_group_instance_norm.py, test_dropout2d.py and
test_upsampling.py compare them with torch.nn).
"""

from __future__ import annotations

import math
import struct

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.testing.registry import positive, register


# ============================================================== normalisation
def _per_channel(vector, x):
    return vector.reshape(1, -1, *(1,) * (x.ndim - 2))


def _composed_group_norm(x, groups, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) over each (sample, group), then the per-channel affine
    map."""
    grouped = x.reshape(x.shape[0], groups, -1)
    mean = grouped.mean(dim=2, keepdim=True)
    var = grouped.var(dim=2, keepdim=True, correction=0)
    out = ((grouped - mean) * (var + eps).rsqrt()).reshape(x.shape)
    if weight is not None:
        out = out * _per_channel(weight, x)
    if bias is not None:
        out = out + _per_channel(bias, x)
    return out


GN_SHAPES = [((2, 6, 3, 4), (6,), (6,)), ((3, 4, 5), (4,), (4,)), ((2, 6), (6,), (6,))]
register(
    "group_norm",
    fn=lambda x, w, b: HF.group_norm(x, 2, w, b),
    ref=lambda x, w, b: TF.group_norm(x, 2, w, b),
    composed=lambda x, w, b: _composed_group_norm(x, 2, w, b),
    shapes=GN_SHAPES,
    covers=(HF.GroupNorm,),
)
register(
    "group_norm_one_group_no_affine",
    fn=lambda x: HF.group_norm(x, 1, eps=1e-3),
    ref=lambda x: TF.group_norm(x, 1, eps=1e-3),
    composed=lambda x: _composed_group_norm(x, 1, eps=1e-3),
    shapes=[((2, 3, 4, 2),), ((3, 5, 4),)],
    covers=(HF.GroupNorm,),
)
register(
    "group_norm_per_channel",
    fn=lambda x, w, b: HF.group_norm(x, x.shape[1], w, b),
    ref=lambda x, w, b: TF.group_norm(x, x.shape[1], w, b),
    composed=lambda x, w, b: _composed_group_norm(x, x.shape[1], w, b),
    shapes=[((2, 3, 4, 3), (3,), (3,))],
    covers=(HF.GroupNorm,),
)


def _running_stats(gen, shapes):
    channels = shapes[0][1]
    return (torch.randn(channels, generator=gen, dtype=torch.float64),
            positive(gen, (channels,)))


def _fresh(stat, x):
    """A copy of a running statistic in x's dtype and device (the update stays local)."""
    stat = stat.data if isinstance(stat, hg.Tensor) else stat
    copy = stat.detach().to(dtype=x.dtype, device=x.device).clone()
    return hg.Tensor(copy) if isinstance(x, hg.Tensor) else copy


IN_SHAPES = [((2, 3, 4, 5), (3,), (3,)), ((3, 2, 6), (2,), (2,))]
register(
    "instance_norm",
    fn=lambda x, w, b: HF.instance_norm(x, weight=w, bias=b),
    ref=lambda x, w, b: TF.instance_norm(x, weight=w, bias=b),
    composed=lambda x, w, b: _composed_group_norm(x, x.shape[1], w, b),
    shapes=IN_SHAPES,
    covers=(HF.InstanceNorm,),
)
register(
    "instance_norm_running_stats_no_affine",
    fn=lambda x, mean, var: HF.instance_norm(x, _fresh(mean, x), _fresh(var, x),
                                             momentum=0.3, eps=1e-3),
    ref=lambda x, mean, var: TF.instance_norm(x, _fresh(mean, x), _fresh(var, x),
                                              momentum=0.3, eps=1e-3),
    composed=lambda x, mean, var: _composed_group_norm(x, x.shape[1], eps=1e-3),
    shapes=[((2, 3, 4, 5),), ((3, 2, 6),)],
    extras=_running_stats,
    covers=(HF.InstanceNorm,),
)


def _composed_eval_norm(x, w, b, mean, var):
    out = (x - _per_channel(mean, x)) * (_per_channel(var, x) + 1e-5).rsqrt()
    return out * _per_channel(w, x) + _per_channel(b, x)


register(
    "instance_norm_use_running_stats",
    fn=lambda x, w, b, mean, var: HF.instance_norm(x, _fresh(mean, x), _fresh(var, x), w, b,
                                                   use_input_stats=False),
    ref=lambda x, w, b, mean, var: TF.instance_norm(x, _fresh(mean, x), _fresh(var, x), w, b,
                                                    use_input_stats=False),
    composed=lambda x, w, b, mean, var: _composed_eval_norm(x, w, b, _fresh(mean, x),
                                                            _fresh(var, x)),
    shapes=IN_SHAPES,
    extras=_running_stats,
    covers=(HF.BatchNorm,),
    note="instance norm from the running statistics is batch norm in evaluation",
)


# ============================================================== channel dropout
def _seeded(x):
    return torch.Generator(device=x.device).manual_seed(0)


def _channel_mask(x, p):
    """The (N, C, 1, ...) Bernoulli(1 - p) mask the seeded generator draws."""
    shape = (*x.shape[:2], *(1,) * (x.ndim - 2))
    return torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(
        1 - p, generator=_seeded(x))


def _channel_dropout_reference(x, p, unbatched=False):
    if unbatched:
        return _channel_dropout_reference(x.unsqueeze(0), p)[0]
    return x * (_channel_mask(x, p) / (1 - p))


def _composed_channel_dropout(x, p, unbatched=False):
    """x times the seeded channel mask, over 1 - p: a fixed mask makes it deterministic."""
    if unbatched:
        return _composed_channel_dropout(x.unsqueeze(0), p)[0]
    return x * hg.Tensor(_channel_mask(x.data, p)) / (1 - p)


register(
    "dropout2d",
    fn=lambda x: HF.dropout2d(x, 0.4, generator=_seeded(x)),
    ref=lambda x: _channel_dropout_reference(x, 0.4),
    composed=lambda x: _composed_channel_dropout(x, 0.4),
    shapes=[((4, 5, 3, 2),), ((6, 4, 2, 3),)],
    covers=(HF.FeatureDropout,),
    note="the same seeded generator draws the channel mask on both sides",
)
register(
    "dropout1d",
    fn=lambda x: HF.dropout1d(x, 0.3, generator=_seeded(x)),
    ref=lambda x: _channel_dropout_reference(x, 0.3),
    composed=lambda x: _composed_channel_dropout(x, 0.3),
    shapes=[((5, 4, 3),)],
    covers=(HF.FeatureDropout,),
)
register(
    "dropout1d_unbatched",
    fn=lambda x: HF.dropout1d(x, 0.3, generator=_seeded(x)),
    ref=lambda x: _channel_dropout_reference(x, 0.3, unbatched=True),
    composed=lambda x: _composed_channel_dropout(x, 0.3, unbatched=True),
    shapes=[((6, 3),)],
    covers=(HF.FeatureDropout,),
)
register(
    "dropout2d_all",
    fn=lambda x: HF.dropout2d(x, 1.0),
    ref=lambda x: TF.dropout2d(x, 1.0),
    composed=lambda x: x * 0.0,
    shapes=[((2, 3, 2, 2),)],
    covers=(HF.FeatureDropout,),
)


# ============================================================== interpolation
def _f32(value: float) -> float:
    """value rounded to float32 (the precision of torch's nearest-neighbour indices)."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _nearest_matrix(n_in, n_out, scale_factor, shortcuts):
    """(n_out, n_in) 0/1 rows: output o copies input min(floor(o * scale), n_in - 1)
    (in 2-d: o when n_out == n_in, o // 2 when n_out == 2 n_in, torch's shortcuts)."""
    rows = []
    for o in range(n_out):
        if shortcuts and n_out == n_in:
            source = o
        elif shortcuts and n_out == 2 * n_in:
            source = o // 2
        else:
            scale = _f32(1.0 / scale_factor) if scale_factor else _f32(_f32(n_in) / n_out)
            source = min(math.floor(_f32(o * scale)), n_in - 1)
        rows.append([1.0 if i == source else 0.0 for i in range(n_in)])
    return rows


def _linear_matrix(n_in, n_out, align_corners, scale_factor):
    """(n_out, n_in) rows with the two weights of torch's linear interpolation (float64)."""
    rows = []
    for o in range(n_out):
        if align_corners:
            position = o * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        else:
            scale = 1.0 / scale_factor if scale_factor else n_in / n_out
            position = max(scale * (o + 0.5) - 0.5, 0.0)
        low = min(math.floor(position), n_in - 1)
        high = low + 1 if low < n_in - 1 else low
        weight = min(max(position - low, 0.0), 1.0)
        row = [0.0] * n_in
        row[low] += 1.0 - weight
        row[high] += weight
        rows.append(row)
    return rows


def _composed_interpolate(x, size=None, scale_factor=None, mode="nearest",
                          align_corners=None, recompute_scale_factor=None):
    """x times one interpolation matrix per spatial axis: y = M_h (x M_w^T)."""
    spatial = x.ndim - 2
    sizes = [size] * spatial if isinstance(size, int) else size
    factors = ([scale_factor] * spatial if isinstance(scale_factor, int | float)
               else scale_factor)
    if sizes is None:
        sizes = [math.floor(n * s) for n, s in zip(x.shape[2:], factors)]
    if factors is None or recompute_scale_factor:
        factors = [None] * spatial
    if mode != "nearest":  # torch copies an axis whose size does not change
        factors = [None if n == o else f for n, o, f in zip(x.shape[2:], sizes, factors)]
    out = x
    for axis in reversed(range(spatial)):
        n_in, n_out, factor = x.shape[2 + axis], sizes[axis], factors[axis]
        rows = (_nearest_matrix(n_in, n_out, factor, spatial == 2) if mode == "nearest"
                else _linear_matrix(n_in, n_out, bool(align_corners), factor))
        matrix = hg.tensor(rows, dtype=x.dtype, device=x.device)  # (out, in)
        if axis == spatial - 1:
            out = out @ matrix.T  # along the last axis
        else:
            out = matrix @ out  # along H: (OH, H) @ (N, C, H, OW)
    return out


INTERPOLATE = [  # (name, shapes, options)
    ("interpolate_nearest2d_size", [(2, 3, 4, 5), (1, 2, 3, 3)], {"size": (7, 3)}),
    ("interpolate_nearest2d_scale", [(2, 2, 5, 4)], {"scale_factor": (1.7, 0.6)}),
    ("interpolate_nearest2d_double", [(2, 2, 3, 4)], {"scale_factor": 2}),
    ("interpolate_nearest2d_recompute", [(1, 2, 5, 3)],
     {"scale_factor": 2.6, "recompute_scale_factor": True}),
    ("interpolate_nearest1d", [(2, 3, 5)], {"size": 12}),
    ("interpolate_nearest1d_scale", [(2, 3, 7)], {"scale_factor": 0.45}),
    ("interpolate_nearest2d_shortcut", [(1, 2, 3, 5)], {"scale_factor": (1.1, 2.1)}),
    ("interpolate_linear", [(2, 3, 5)], {"size": 9, "mode": "linear"}),
    ("interpolate_linear_align_corners", [(2, 2, 6)],
     {"scale_factor": 1.5, "mode": "linear", "align_corners": True}),
    ("interpolate_linear_scale", [(2, 2, 7)], {"scale_factor": 0.7, "mode": "linear"}),
    ("interpolate_linear_same_size", [(2, 2, 3)], {"scale_factor": 1.3, "mode": "linear"}),
    ("interpolate_bilinear", [(2, 3, 4, 5), (1, 2, 3, 3)],
     {"size": (7, 4), "mode": "bilinear"}),
    ("interpolate_bilinear_align_corners", [(2, 2, 4, 3)],
     {"size": (6, 5), "mode": "bilinear", "align_corners": True}),
    ("interpolate_bilinear_scale", [(2, 2, 5, 4)],
     {"scale_factor": (1.7, 2.5), "mode": "bilinear"}),
    ("interpolate_bilinear_one_axis_same_size", [(2, 2, 3, 5)],
     {"scale_factor": (1.3, 0.8), "mode": "bilinear"}),
    ("interpolate_bilinear_recompute_down", [(1, 2, 7, 6)],
     {"scale_factor": 0.6, "mode": "bilinear", "recompute_scale_factor": True}),
    ("interpolate_bilinear_align_corners_to_one", [(2, 2, 4, 3)],
     {"size": (1, 5), "mode": "bilinear", "align_corners": True}),
]
for name, shapes, options in INTERPOLATE:
    register(
        name,
        fn=lambda x, o=options: HF.interpolate(x, **o),
        ref=lambda x, o=options: TF.interpolate(x, **o),
        composed=lambda x, o=options: _composed_interpolate(x, **o),
        shapes=[(s,) for s in shapes],
        covers=(HF.UpsampleNearest if options.get("mode", "nearest") == "nearest"
                else HF.UpsampleLinear,),
    )
