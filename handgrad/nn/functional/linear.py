"""The fused affine map `linear(x, W, b) = x W^T + b`: one graph node, one addmm forward,
at most three matmul-sized kernels backward; and the bilinear map
`bilinear(x1, x2, A, b) = x1^T A x2 + b`, composed from einsum (one node with einsum's
hand-written backward) and an add, so it has no Function of its own.

Left out: the Linear and Bilinear modules with their default initialisation
(handgrad/nn/linear.py).
"""

from __future__ import annotations

import torch

from handgrad._functions_math import einsum
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


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] + bias[o], as
    PyTorch's nn.functional.bilinear: input1 (*, in1), input2 (*, in2) with the same
    leading dims, weight (out, in1, in2), bias (out,) or None.

    One einsum node ("...i,oij,...j->...o"); its backward gives
    d input1 = g . A . x2,  d A[o] = sum over the batch of g_o x1 x2^T,
    d input2 = g . A^T . x1 (and d bias = g summed over the batch, from the add).
    The checks of nn.Bilinear live here, with torch's messages."""
    if weight.ndim != 3:
        raise HandgradError(f"bilinear(): weight must be 3-D (out_features, in1_features, "
                            f"in2_features), got shape {tuple(weight.shape)}")
    if input1.ndim != input2.ndim:
        raise HandgradError(f"bilinear(): input dimensions do not match: got {input1.ndim} "
                            f"and {input2.ndim} (shapes {tuple(input1.shape)} and "
                            f"{tuple(input2.shape)})")
    for dim in range(input1.ndim - 1):
        if input1.shape[dim] != input2.shape[dim]:
            raise HandgradError(f"bilinear(): input batch dimensions do not match at dim "
                                f"{dim}: got {input1.shape[dim]} and {input2.shape[dim]}")
    for which, x, dim in (("input1", input1, 1), ("input2", input2, 2)):
        if x.ndim == 0 or x.shape[-1] != weight.shape[dim]:
            got = x.shape[-1] if x.ndim else "a 0-d tensor"
            raise HandgradError(f"bilinear(): {which} size does not match weight size: got "
                                f"{got} but expected {weight.shape[dim]} (weight of shape "
                                f"{tuple(weight.shape)}); build Bilinear with the input's "
                                "feature sizes")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != weight.shape[0]):
        raise HandgradError(f"bilinear(): bias size does not match weight size: got "
                            f"{tuple(bias.shape)} but expected ({weight.shape[0]},)")
    out = einsum("...i,oij,...j->...o", input1, weight, input2)  # (*, out)
    return out if bias is None else out + bias
