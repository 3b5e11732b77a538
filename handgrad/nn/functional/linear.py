"""The fused affine map `linear(x, W, b) = x W^T + b`: one graph node, one addmm forward,
at most three matmul-sized kernels backward.

Left out: bilinear maps, and the Linear module with its default initialisation
(handgrad/nn/linear.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function, HandgradError


class Linear(Function):
    """out = x W^T + b   with x: (*, in), W: (out, in), b: (out,) or None.

    With x and g = d loss / d out flattened to 2-D, X: (M, in) and G: (M, out)
    (M = the product of the leading dims):
        dx = G W        dW = G^T X        db = sum of G over its rows.
    Only the inputs that need a gradient get one, and only what those need is saved
    (x for dW, W for dx).
    """

    name = "linear"
    x_shape = ()  # x's shape, set by forward only when x is not 2-D

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        need_x, need_w, _ = ctx.needs_input_grad
        ctx.save_for_backward(x if need_w else None, weight if need_x else None)
        if x.ndim == 2:
            if bias is None:
                return torch.mm(x, weight.t())
            return torch.addmm(bias, x, weight.t())
        ctx.x_shape = x.shape
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim else x
        out = torch.mm(x2, weight.t()) if bias is None else torch.addmm(bias, x2, weight.t())
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        if g.ndim != 2:
            g = g.reshape(-1, g.shape[-1])
        dx = dw = db = None
        if need_x:
            dx = torch.mm(g, weight)
            if ctx.x_shape:  # x was not 2-D: give dx its shape back
                dx = dx.reshape(ctx.x_shape)
        if need_w:
            dw = torch.mm(g.t(), x if x.ndim == 2 else x.reshape(-1, x.shape[-1]))
        if need_b:
            db = g.sum(0)
        return dx, dw, db


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, as PyTorch's nn.functional.linear (one fused node).

    The checks of the layer live here only: nn.Linear.forward is this call, as in torch.
    The message names the layer ('Linear'), so it reads the same from either."""
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise HandgradError(
            f"Linear: expected an input with {weight.shape[-1]} features in its last dim, "
            f"got shape {tuple(input.shape)} (weight of shape {tuple(weight.shape)}). "
            "Reshape the input (e.g. x.flatten(1)) or build the layer with the right "
            "in_features.")
    return Linear.apply(input, weight, bias)
