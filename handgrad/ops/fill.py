"""Ops whose result holds values that do not come from their input: index_fill (a
constant written into chosen slices) and normal (random draws around a mean), each with
its hand-written backward.

- index_fill overwrites: the filled slices of x reach nothing downstream, so x's
  gradient is g with those slices zeroed, and a 0-d tensor value gets the sum of g over
  every filled element (each slice counted once, however often its index repeats).
- normal draws: torch defines the derivative of a draw with respect to its mean and
  std as zero (the sample is treated as data, not as mean + std * noise), so both get
  zeros; for a reparameterised sample write `mean + std * randn_like(std)`, whose
  gradient is 1 and the noise.

Left out: index_copy, masked_scatter, put / take, the other distributions' tensor forms
(bernoulli, poisson), and `out=`.
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function

__all__ = ["IndexFill", "Normal"]


class IndexFill(Function):
    """out = x.index_fill(dim, index, value): out.select(dim, i) = value for each i in
    index, out = x elsewhere.

    dx = g.index_fill(dim, index, 0) (a filled element does not depend on x);
    dvalue = sum of g over the filled elements = (g - dx).sum(), for a 0-d tensor value
    (d out / d value is 1 at every filled element, 0 elsewhere; a repeated index fills the
    same slice again, so it is counted once).
    """

    name = "index_fill"

    @staticmethod
    def forward(ctx, x, dim, index, value):
        ctx.save_for_backward(index)
        ctx.dim = dim
        ctx.value_device = value.device if isinstance(value, torch.Tensor) else None
        return x.index_fill(dim, index, value)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        dx = g.index_fill(ctx.dim, index, 0)
        dvalue = None
        if ctx.needs_input_grad[3]:
            dvalue = (g - dx).sum().to(ctx.value_device)
        return (dx if ctx.needs_input_grad[0] else None), None, None, dvalue


class Normal(Function):
    """out = a draw from N(mean, std^2) for each element of broadcast(mean, std), as
    torch.normal (mean and std: tensors or one of them a number).

    dmean = 0, dstd = 0 (zeros of each input's shape): torch's derivative of a sample
    with respect to its parameters, which it defines as zero rather than the 1 and noise
    of the reparameterised mean + std * noise.
    """

    name = "normal"

    @staticmethod
    def forward(ctx, mean, std, generator=None):
        ctx.shapes = tuple(t.shape if isinstance(t, torch.Tensor) else None
                           for t in (mean, std))
        return torch.normal(mean, std, generator=generator)

    @staticmethod
    def backward(ctx, g):
        return (*(None if shape is None or not needed
                  else torch.zeros(shape, dtype=g.dtype, device=g.device)
                  for shape, needed in zip(ctx.shapes, ctx.needs_input_grad)), None)
