"""Dropout: zero each element (dropout) or each whole channel (dropout1d, dropout2d)
with probability p while training, scale the rest by 1 / (1 - p); the identity in
evaluation.

The element mask is drawn exactly as torch draws it on the CPU (a Bernoulli(1 - p)
tensor of the input's shape, from torch's default generator unless one is given), so
that with the same seed handgrad and torch drop the same elements there. The channel
mask is one Bernoulli(1 - p) draw per (sample, channel), of shape (N, C, 1, ...); its
draws need not match torch's.

alpha_dropout and feature_alpha_dropout (for SELU networks) keep the mean and variance
of a zero-mean unit-variance input: a dropped value becomes SELU's negative saturation
value -alpha' and the result is rescaled by a, shifted by b (torch's constants). They
are composed from a multiply and an add by constant tensors (no Function of their own).

Left out: dropout3d; the modules (handgrad/nn/dropout.py).
"""

from __future__ import annotations

import math
import warnings

import torch

from handgrad.autograd import Function, HandgradError


class Dropout(Function):
    """out = x * m,  m = Bernoulli(1 - p) / (1 - p) elementwise;  dx = g * m."""

    name = "dropout"

    @staticmethod
    def forward(ctx, x, p, generator=None):
        if p == 1:
            mask = torch.zeros((), dtype=x.dtype, device=x.device)
        else:
            mask = torch.empty_like(x).bernoulli_(1 - p, generator=generator).div_(1 - p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask, None, None


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """PyTorch's nn.functional.dropout (`inplace` is accepted and computes out of place;
    `generator` draws the mask from a torch.Generator of your own, for reproducibility)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0 or input.numel() == 0:
        return input
    return Dropout.apply(input, p, generator)


class FeatureDropout(Function):
    """Dropout of whole channels of x: (N, C, *):
        out = x * m,  m of shape (N, C, 1, ..., 1) = Bernoulli(1 - p) / (1 - p),
    one draw per (sample, channel), broadcast over the channel's values;  dx = g * m."""

    name = "feature_dropout"

    @staticmethod
    def forward(ctx, x, p, generator=None):
        shape = (*x.shape[:2], *(1,) * (x.ndim - 2))
        if p == 1:
            mask = torch.zeros(shape, dtype=x.dtype, device=x.device)
        else:
            mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(
                1 - p, generator=generator).div_(1 - p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask, None, None


def _feature_dropout(op, input, p, training, generator):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim < 2:
        raise HandgradError(f"{op}: feature dropout requires at least 2 dimensions in the "
                            f"input, got shape {tuple(input.shape)}")
    if not training or p == 0 or input.numel() == 0:
        return input
    return FeatureDropout.apply(input, p, generator)


def dropout1d(input, p=0.5, training=True, inplace=False, generator=None):
    """PyTorch's nn.functional.dropout1d: zero whole channels of an (N, C, L) input, or of
    an unbatched (C, L) one, each with probability p, and scale the rest by 1 / (1 - p)
    (`inplace` is accepted and computes out of place; `generator` as in dropout)."""
    if input.ndim not in (2, 3):
        raise HandgradError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input (shape "
            f"{tuple(input.shape)}). Note that dropout1d exists to provide channel-wise "
            "dropout on inputs with 1 spatial dimension, a channel dimension, and an optional "
            "batch dimension (i.e. 2D or 3D inputs).")
    if input.ndim == 2:
        return _feature_dropout("dropout1d", input.unsqueeze(0), p, training,
                                generator).squeeze(0)
    return _feature_dropout("dropout1d", input, p, training, generator)


def dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    """PyTorch's nn.functional.dropout2d: zero whole channels (dim 1) of an (N, C, H, W)
    input, each with probability p, and scale the rest by 1 / (1 - p). As in torch, a
    3-d input is read as (N, C, L) (channel-wise 1-d dropout, with torch's warning),
    and other ranks warn and drop dim 1's entries of each sample."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: dropout probability has to be between 0 and 1, but "
                         f"got {p}")
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2)
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where "
            "C is the channel dim. This behavior will change in a future release to interpret "
            "the input as one without a batch dimension, i.e. shape (C, H, W). To maintain "
            "the 1D channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2)
    return _feature_dropout("dropout2d", input, p, training, generator)


# SELU's lambda * alpha: the value SELU saturates to is -_SELU_SATURATION (torch's constant)
_SELU_SATURATION = 1.7580993408473766


def _alpha_dropout(op, input, p, training, generator, feature):
    """out = x * (m a) + b with m ~ Bernoulli(1 - p) (one draw per element, or per
    (sample, channel) for feature), a = 1 / sqrt((alpha'^2 p + 1)(1 - p)) and
    b = (m - 1) alpha' a + alpha' a p: kept values become a x + alpha' a p, dropped ones
    a alpha' (p - 1), so a zero-mean unit-variance x keeps mean 0 and variance 1.
    dx = g m a (the mul's backward). p = 1 gives x * 0, as torch."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    if feature and input.ndim < 2:
        raise HandgradError(f"{op}: Feature dropout requires at least 2 dimensions in the "
                            f"input, got shape {tuple(input.shape)}")
    if not training or p == 0 or input.numel() == 0:
        return input
    x = input.data
    if p == 1:
        return input * x.new_zeros(())
    shape = (*x.shape[:2], *(1,) * (x.ndim - 2)) if feature else x.shape
    mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(
        1 - p, generator=generator)
    alpha = _SELU_SATURATION
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    shift = (mask - 1).mul_(alpha * a).add_(alpha * a * p)
    return input * mask.mul_(a) + shift


def alpha_dropout(input, p=0.5, training=False, inplace=False, generator=None):
    """PyTorch's nn.functional.alpha_dropout (note torch's default training=False).
    The mask is one Bernoulli(1 - p) draw per element, made as torch makes it on the
    CPU, so the same seed drops the same elements there (on CUDA the draws differ);
    `inplace` is accepted and computes out of place, `generator` is handgrad's extra."""
    return _alpha_dropout("alpha_dropout", input, p, training, generator, feature=False)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False, generator=None):
    """PyTorch's nn.functional.feature_alpha_dropout: alpha dropout of whole channels
    (dim 1) of an (N, C, *) input, one Bernoulli(1 - p) draw per (sample, channel)
    (torch's draws on the CPU, as alpha_dropout); training=False by default, as torch."""
    return _alpha_dropout("feature_alpha_dropout", input, p, training, generator,
                          feature=True)
