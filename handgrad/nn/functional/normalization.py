"""Batch, layer, group and instance normalisation, each one fused Function with a
hand-derived backward.

All normalise, x_hat = (x - mean) / sqrt(var + eps) with the biased variance, then
apply an optional per-feature affine map y = weight * x_hat + bias. They differ in
which values share a mean: batch norm pools each channel over the batch (and any
spatial dims), layer norm pools each sample over its trailing `normalized_shape` dims,
group norm pools each (sample, group of channels), and instance norm each (sample,
channel): group norm with one channel per group, plus torch's running statistics
(their batch average) when asked. Instance norm with the running statistics
(use_input_stats=False) is exactly batch norm in evaluation, and goes through it.

Left out: RMS norm, local response norm; the modules (handgrad/nn/normalization.py).
"""

from __future__ import annotations

import math

import torch

from handgrad.autograd import Function, HandgradError


def _normalize(x, dims, eps):
    """(x_hat, rstd, mean, var) with the mean and biased variance over `dims` (kept as
    size-1 dims). Two passes, mean((x - mean)^2), as accurate as torch.var_mean's
    Welford and on the CPU 2-4x faster than it; the centred values become x_hat."""
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dims, keepdim=True)
    rstd = (var + eps).rsqrt_()
    return centred.mul_(rstd), rstd, mean, var


def _affine(x_hat, weight, bias):
    if weight is None:
        return x_hat if bias is None else x_hat + bias
    return x_hat * weight if bias is None else torch.addcmul(bias, x_hat, weight)


class BatchNorm(Function):
    """Batch normalisation of x: (N, C, *) per channel c, over the n = N * prod(*)
    values of that channel.

    Training (batch statistics):  x_hat = (x - mean) / sqrt(var + eps),
    y = weight x_hat + bias;  with means over the n values of a channel,
        dbias = sum g,   dweight = sum g x_hat,
        dx = weight / sqrt(var + eps) * (g - mean(g) - x_hat mean(g x_hat)).
    The running statistics, when given, are updated in place:
        running_mean = (1 - momentum) running_mean + momentum mean,
        running_var  = (1 - momentum) running_var + momentum var n / (n - 1).
    Evaluation (running statistics, constants):  y = weight (x - running_mean)
    / sqrt(running_var + eps) + bias,  dx = g weight / sqrt(running_var + eps).
    """

    name = "batch_norm"

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5):
        shape = (1, -1) + (1,) * (x.ndim - 2)  # a per-channel vector, broadcastable
        dims = (0, *range(2, x.ndim))
        if training:
            x_hat, rstd, mean, var = _normalize(x, dims, eps)
            if running_mean is not None:
                n = x.numel() // x.shape[1]
                running_mean.mul_(1 - momentum).add_(mean.view(-1), alpha=momentum)
                running_var.mul_(1 - momentum).add_(var.view(-1), alpha=momentum * n / (n - 1))
        else:
            rstd = (running_var + eps).rsqrt().view(shape)
            x_hat = (x - running_mean.view(shape)).mul_(rstd)
        w = None if weight is None else weight.view(shape)
        need_x, _, _, need_w, _ = ctx.needs_input_grad[:5]
        ctx.save_for_backward(x_hat if need_w or (need_x and training) else None,
                              rstd, w)
        ctx.dims_training = (dims, training)
        return _affine(x_hat, w, None if bias is None else bias.view(shape))

    @staticmethod
    def backward(ctx, g):
        x_hat, rstd, w = ctx.saved_tensors
        dims, training = ctx.dims_training
        need_x, _, _, need_w, need_b = ctx.needs_input_grad[:5]
        g_sum = g.sum(dims) if need_b or (need_x and training) else None
        gx_sum = (g * x_hat).sum(dims) if need_w or (need_x and training) else None
        dx = None
        if need_x:
            scale = rstd if w is None else rstd * w
            if training:
                n = g.numel() // g.shape[1]
                shape = scale.shape
                dx = (g - g_sum.view(shape) / n - x_hat * (gx_sum.view(shape) / n)).mul_(scale)
            else:
                dx = g * scale
        return (dx, None, None, gx_sum if need_w else None, g_sum if need_b else None,
                None, None, None)


class LayerNorm(Function):
    """Layer normalisation over the last k dims (`normalized_shape`), per sample:
        x_hat = (x - mean) / sqrt(var + eps),   y = weight x_hat + bias
    (weight and bias have shape normalized_shape). With gw = g * weight and means over
    the normalised dims:
        dx = (gw - mean(gw) - x_hat mean(gw x_hat)) / sqrt(var + eps),
        dweight = sum over the leading dims of g x_hat,   dbias = sum of g likewise.
    """

    name = "layer_norm"

    @staticmethod
    def forward(ctx, x, normalized_shape, weight=None, bias=None, eps=1e-5):
        dims = tuple(range(x.ndim - len(normalized_shape), x.ndim))
        x_hat, rstd, _, _ = _normalize(x, dims, eps)
        ctx.save_for_backward(x_hat, rstd, weight)
        ctx.dims = dims
        return _affine(x_hat, weight, bias)

    @staticmethod
    def backward(ctx, g):
        x_hat, rstd, weight = ctx.saved_tensors
        dims = ctx.dims
        need_x, _, need_w, need_b = ctx.needs_input_grad[:4]
        leading = tuple(range(g.ndim - len(dims)))
        dx = dw = db = None
        # g x_hat serves dweight and mean(gw x_hat) = mean(g x_hat weight); dx is built in
        # gw's buffer in place: three fresh full-size tensors where the formula made seven
        gx = g * x_hat if need_x or need_w else None
        if need_x:
            if weight is None:
                mean_gw, mean_gwx = g.mean(dims, keepdim=True), gx.mean(dims, keepdim=True)
                dx = torch.sub(g, mean_gw)
            else:
                dx = g * weight
                mean_gw = dx.mean(dims, keepdim=True)
                mean_gwx = (gx * weight).mean(dims, keepdim=True)
                dx.sub_(mean_gw)
            dx.addcmul_(x_hat, mean_gwx, value=-1).mul_(rstd)
        if need_w:
            dw = gx.sum(leading) if leading else gx
        if need_b:
            db = g.sum(leading) if leading else g
        return dx, None, dw, db, None


def _group_forward(ctx, x, groups, weight, bias, eps):
    """Normalise x (N, C, *) over each (sample, group of C / groups channels), apply the
    per-channel affine map, save what the backward needs; returns (y, mean, var), the
    statistics of shape (N, groups, 1). Works on the (N, C, M) view of x, M = prod(*)."""
    n, c = x.shape[:2]
    x_hat, rstd, mean, var = _normalize(x.reshape(n, groups, -1), (2,), eps)  # (N, G, C/G M)
    x_hat = x_hat.view(n, c, -1)  # (N, C, M)
    w = None if weight is None else weight.view(1, c, 1)
    ctx.save_for_backward(x_hat, rstd, weight)
    ctx.groups = groups
    y = _affine(x_hat, w, None if bias is None else bias.view(1, c, 1))
    return y.view(x.shape), mean, var


def _group_backward(ctx, g, need_x, need_w, need_b):
    """(dx, dweight, dbias) of _group_forward for the upstream gradient g.

    The sums of the formula (class GroupNorm) are gathered per (sample, channel) first,
    s1 = sum_M g and s2 = sum_M g x_hat, then per group with the channel weights:
    mean(gw) = sum_c w_c s1 / m and mean(gw x_hat) = sum_c w_c s2 / m. dx is then one
    affine map per (sample, channel), dx = k1 g + k2 x_hat + k3, with k1 = rstd w_c,
    k2 = -rstd mean(gw x_hat), k3 = -rstd mean(gw): five passes over the data."""
    x_hat, rstd, weight = ctx.saved_tensors
    n, c, m = x_hat.shape
    groups = ctx.groups
    g3 = g.reshape(n, c, m)  # (N, C, M)
    gx = g3 * x_hat if need_x or need_w else None
    s1 = g3.sum(2) if need_x or need_b else None  # (N, C)
    s2 = gx.sum(2) if gx is not None else None
    dx = None
    if need_x:
        w = torch.ones((), dtype=g.dtype, device=g.device) if weight is None else weight
        group_size = (1, groups, c // groups)
        count = m * (c // groups)
        mean_gw = (s1 * w).view(n, *group_size[1:]).sum(2, keepdim=True) / count  # (N, G, 1)
        mean_gwx = (s2 * w).view(n, *group_size[1:]).sum(2, keepdim=True) / count
        k1 = (rstd * w.expand(c).view(group_size)).view(n, c, 1)
        k2 = (-rstd * mean_gwx).expand(n, groups, c // groups).reshape(n, c, 1)
        k3 = (-rstd * mean_gw).expand(n, groups, c // groups).reshape(n, c, 1)
        dx = torch.addcmul(k3, g3, k1).addcmul_(x_hat, k2).view(g.shape)
    dw = s2.sum(0) if need_w else None
    db = s1.sum(0) if need_b else None
    return dx, dw, db


class GroupNorm(Function):
    """Group normalisation of x: (N, C, *), the C channels split into G groups of C / G;
    each (sample, group) is normalised over its m = C / G * prod(*) values, then every
    channel c gets its own affine map:
        x_hat = (x - mean) / sqrt(var + eps),   y = weight_c x_hat + bias_c.
    This is layer norm over each (sample, group), so its backward is layer norm's with
    the per-channel weight folded into the upstream gradient: with gw = g weight_c and
    means over the m values of a group,
        dx = (gw - mean(gw) - x_hat mean(gw x_hat)) / sqrt(var + eps),
        dweight_c = sum over N and * of g x_hat,   dbias_c = sum over N and * of g.
    """

    name = "group_norm"

    @staticmethod
    def forward(ctx, x, num_groups, weight=None, bias=None, eps=1e-5):
        y, _, _ = _group_forward(ctx, x, num_groups, weight, bias, eps)
        return y

    @staticmethod
    def backward(ctx, g):
        need_x, _, need_w, need_b = ctx.needs_input_grad[:4]
        dx, dw, db = _group_backward(ctx, g, need_x, need_w, need_b)
        return dx, None, dw, db, None


class InstanceNorm(Function):
    """Instance normalisation of x: (N, C, *) with its own statistics: each (sample,
    channel) normalised over its m = prod(*) values, y = weight_c x_hat + bias_c; group
    norm with one channel per group, and the same backward:
        dx = (gw - mean(gw) - x_hat mean(gw x_hat)) / sqrt(var + eps),  gw = g weight_c,
        dweight_c = sum over N and * of g x_hat,   dbias_c = sum over N and * of g.
    The running statistics, when given, take the batch average of the instances'
    statistics, as torch does (constants: no gradient flows into them):
        running_mean = (1 - momentum) running_mean + momentum mean_n(mean_nc),
        running_var  = (1 - momentum) running_var + momentum mean_n(var_nc m / (m - 1)).
    """

    name = "instance_norm"

    @staticmethod
    def forward(ctx, x, running_mean=None, running_var=None, weight=None, bias=None,
                momentum=0.1, eps=1e-5):
        n, c = x.shape[:2]
        y, mean, var = _group_forward(ctx, x, c, weight, bias, eps)
        m = x.numel() // max(n * c, 1)  # values per instance
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean.view(n, c).mean(0), alpha=momentum)
        if running_var is not None:
            running_var.mul_(1 - momentum).add_(var.view(n, c).mean(0),
                                                alpha=momentum * m / (m - 1))
        return y

    @staticmethod
    def backward(ctx, g):
        need_x, _, _, need_w, need_b = ctx.needs_input_grad[:5]
        dx, dw, db = _group_backward(ctx, g, need_x, need_w, need_b)
        return dx, None, None, dw, db, None, None


def _check_channel_vector(op, name, vector, input):
    if vector is not None and tuple(vector.shape) != (input.shape[1],):
        raise HandgradError(
            f"{op}: expected {name} to be a vector of size equal to the number of channels "
            f"in input ({input.shape[1]}), but got {name} of shape {tuple(vector.shape)} and "
            f"input of shape {tuple(input.shape)}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """PyTorch's nn.functional.batch_norm: normalise each channel (dim 1) of an (N, C, *)
    input; with training=True use (and fold into the running statistics, if given) the
    batch's statistics, else the running ones."""
    if input.ndim < 2:
        raise HandgradError(f"batch_norm: expected an input of shape (N, C, *), got shape "
                            f"{tuple(input.shape)}")
    if training:
        if input.numel() // max(input.shape[1], 1) <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input size {tuple(input.shape)}")
    elif running_mean is None or running_var is None:
        raise HandgradError("batch_norm: training=False needs running_mean and running_var "
                            "(or use training=True for batch statistics)")
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm: eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm: eps must be non-negative, but got {eps}")
    for name, vector in (("running_mean", running_mean), ("running_var", running_var),
                         ("weight", weight), ("bias", bias)):
        _check_channel_vector("batch_norm", name, vector, input)  # never broadcast a (1,)
    return BatchNorm.apply(input, running_mean, running_var, weight, bias, training,
                           momentum, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """PyTorch's nn.functional.layer_norm: normalise each sample over its last
    len(normalized_shape) dims."""
    normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                        else tuple(normalized_shape))
    if tuple(input.shape[input.ndim - len(normalized_shape):]) != normalized_shape:
        raise HandgradError(
            f"layer_norm: normalized_shape {normalized_shape} must match the last dims of "
            f"the input, got input of shape {tuple(input.shape)}")
    return LayerNorm.apply(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """PyTorch's nn.functional.group_norm: split the C channels of an (N, C, *) input into
    num_groups groups and normalise each (sample, group); weight and bias are per
    channel, shape (C,)."""
    if input.ndim < 2:
        raise HandgradError(f"group_norm: expected at least 2 dimensions for input tensor "
                            f"but received {input.ndim} (shape {tuple(input.shape)})")
    n, c = input.shape[:2]
    if num_groups <= 0:
        raise ValueError(f"group_norm: num_groups must be positive, got {num_groups}")
    if n * c // num_groups * math.prod(input.shape[2:]) == 1:
        raise ValueError(f"group_norm: expected more than 1 value per channel when training, "
                         f"got input size {[n * c // num_groups, num_groups, *input.shape[2:]]}")
    if c % num_groups:
        raise HandgradError(
            f"group_norm: expected number of channels in input to be divisible by num_groups, "
            f"but got input of shape {tuple(input.shape)} and num_groups={num_groups}")
    _check_channel_vector("group_norm", "weight", weight, input)
    _check_channel_vector("group_norm", "bias", bias, input)
    return GroupNorm.apply(input, num_groups, weight, bias, eps)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """PyTorch's nn.functional.instance_norm: normalise each (sample, channel) of an
    (N, C, *) input over its spatial dims with its own statistics (use_input_stats=True,
    folding their batch average into running_mean / running_var when given), or with
    the running statistics (use_input_stats=False: batch norm in evaluation)."""
    if input.ndim < 2:
        raise HandgradError(f"instance_norm: expected an input of shape (N, C, *), got "
                            f"shape {tuple(input.shape)}")
    for name, vector in [("running_mean", running_mean), ("running_var", running_var),
                         ("weight", weight), ("bias", bias)]:
        _check_channel_vector("instance_norm", name, vector, input)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise HandgradError("instance_norm: expected running_mean and running_var to be "
                                "defined when use_input_stats is false")
        return BatchNorm.apply(input, running_mean, running_var, weight, bias, False,
                               momentum, eps)
    if math.prod(input.shape[2:]) == 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element when "
                         f"training, got input size {list(input.shape)}")
    return InstanceNorm.apply(input, running_mean, running_var, weight, bias, momentum, eps)
