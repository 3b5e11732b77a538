"""The inverse trigonometric and hyperbolic functions, atan2 and erf, each with its
hand-written backward (scripts reach for them: erf in an exact GELU written out, atan2
for angles, asin / acos / atan in geometry losses).

asin:   out = arcsin x;   dx = g / sqrt(1 - x^2)   (|x| < 1; +-inf at +-1, as torch)
acos:   out = arccos x;   dx = -g / sqrt(1 - x^2)
atan:   out = arctan x;   dx = g / (1 + x^2)
sinh:   out = sinh x;     dx = g cosh x
cosh:   out = cosh x;     dx = g sinh x
erf:    out = 2 / sqrt(pi) int_0^x e^(-t^2) dt;   dx = g 2 / sqrt(pi) e^(-x^2)
atan2:  out = atan2(y, x), the angle of the point (x, y);  with r^2 = x^2 + y^2,
        dy = g x / r^2,  dx = -g y / r^2   (d/dy atan(y / x) = (1 / x) / (1 + y^2 / x^2));
        at the origin, where there is no derivative, both are 0, as torch's. Broadcasting
        between y and x is undone by the engine.
"""

from __future__ import annotations

import math

import torch

from handgrad.autograd import Function

__all__ = ["Asin", "Acos", "Atan", "Sinh", "Cosh", "Erf", "Atan2"]


class Asin(Function):
    """out = arcsin x;  dx = g / sqrt(1 - x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.asin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (1 - x * x).rsqrt()


class Acos(Function):
    """out = arccos x;  dx = -g / sqrt(1 - x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.acos(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g * (1 - x * x).rsqrt()


class Atan(Function):
    """out = arctan x;  dx = g / (1 + x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.atan(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (1 + x * x)


class Sinh(Function):
    """out = sinh x;  dx = g cosh x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sinh(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cosh(x)


class Cosh(Function):
    """out = cosh x;  dx = g sinh x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.cosh(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sinh(x)


class Erf(Function):
    """out = erf x;  dx = g 2 / sqrt(pi) e^(-x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.erf(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (2 / math.sqrt(math.pi)) * torch.exp(-x * x)


class Atan2(Function):
    """out = atan2(y, x);  dy = g x / (x^2 + y^2),  dx = -g y / (x^2 + y^2) (0 at 0)."""

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return torch.atan2(y, x)

    @staticmethod
    def backward(ctx, g):
        y, x = ctx.saved_tensors
        r2 = x * x + y * y
        scale = torch.where(r2 == 0, torch.zeros_like(r2), g / r2)  # 0 at the origin
        need_y, need_x = ctx.needs_input_grad
        return (scale * x if need_y else None), (-scale * y if need_x else None)
