"""Dropout: zero each element with probability p while training, scale the rest by
1 / (1 - p); the identity in evaluation.

The mask is drawn exactly as torch draws it on the CPU (a Bernoulli(1 - p) tensor of the
input's shape, from torch's default generator unless one is given), so that with the
same seed handgrad and torch drop the same elements there.

Left out: dropout of whole channels (Dropout1d/2d), alpha dropout; the module
(handgrad/nn/dropout.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function


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
