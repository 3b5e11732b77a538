"""Batch and layer normalisation, each one fused Function with a hand-derived backward.

Both normalise, x_hat = (x - mean) / sqrt(var + eps) with the biased variance, then
apply an optional per-feature affine map y = weight * x_hat + bias. They differ in
which values share a mean: batch norm pools each channel over the batch (and any
spatial dims), layer norm pools each sample over its trailing `normalized_shape` dims.

Left out: group and instance norm; the modules (handgrad/nn/normalization.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function, HandgradError


def _normalize(x, dims, eps):
    """(x_hat, rstd) with mean and biased variance over `dims` (kept as size-1 dims)."""
    var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
    rstd = (var + eps).rsqrt_()
    return (x - mean).mul_(rstd), rstd, mean, var


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
        if need_x:
            gw = g if weight is None else g * weight
            dx = (gw - gw.mean(dims, keepdim=True)
                  - x_hat * (gw * x_hat).mean(dims, keepdim=True)).mul_(rstd)
        if need_w:
            dw = (g * x_hat).sum(leading) if leading else g * x_hat
        if need_b:
            db = g.sum(leading) if leading else g
        return dx, None, dw, db, None


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
