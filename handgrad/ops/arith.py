"""More arithmetic Functions with hand-written backward: the product reduction,
log1p / expm1, lerp, and clone with a memory format.

prod:   out = prod_j x_j over dim (every element when dim is None), so
        dx_k = g prod_{j != k} x_j. Counting the zeros along the reduced dim:
        - none:  dx_k = g out / x_k;
        - one, at position z:  dx_z = g prod_{j != z} x_j (the product with x_z read as
          1), and dx_k = 0 for k != z (their products contain x_z = 0);
        - two or more:  every product prod_{j != k} contains a zero, so dx = 0.
        All three are computed at once, without dividing by a zero.
log1p:  out = log(1 + x);  dx = g / (1 + x).
expm1:  out = e^x - 1;  dx = g e^x = g (out + 1).
lerp:   out = start + weight (end - start);  dstart = g (1 - weight),  dend = g weight,
        dweight = g (end - start) (weight a number or a tensor; broadcasting is undone by
        the engine).
clone:  out = a copy of x in the requested memory format;  dx = g.
log2, log10:  out = log(x) / log(b);  dx = g / (x log b).
reciprocal:   out = 1 / x;  dx = -g / x^2 = -g out^2.
floor, ceil, round, trunc:  piecewise constant, so dx = 0 (as torch: a zero gradient,
        not none).
median: over every element, out = the lower median; ties (and a nan result: the nan
        entries) share g evenly, as torch. Along a dim: (values, indices), and g goes to
        the returned index only.
fmod:   out = a - trunc(a / b) b (the remainder with the sign of a);  da = g,
        db = -g trunc(a / b) (b a tensor or a number).
remainder (the % operator): out = a - floor(a / b) b (the sign of b, Python's %);
        da = g,  db = -g floor(a / b) (b may be a number; for a number a, `2.5 % b`,
        torch has no derivative and neither does handgrad: its backward is refused).

Left out: the `out=` arguments, and prod over several dims at once (torch has none).
"""

from __future__ import annotations

import math

import torch

from handgrad.autograd import Function

__all__ = ["Prod", "Log1p", "Expm1", "Lerp", "CloneFormat", "LogBase", "Reciprocal",
           "Rounding", "Fmod", "Remainder", "FloorDivide", "MedianAll", "MedianDim"]


class Prod(Function):
    """out = prod of x over dim (all elements when None);  exact with zeros (see above)."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        out = torch.prod(x) if dim is None else torch.prod(x, dim, keepdim=keepdim)
        if out.is_floating_point() or out.is_complex():
            ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.dim is None or x.ndim == 0:
            flat, dim = x.reshape(-1), 0
            g = g.reshape(1)
        else:
            flat, dim = x, ctx.dim
            if not ctx.keepdim:
                g = g.unsqueeze(dim)
        is_zero = flat == 0
        zeros = is_zero.sum(dim, keepdim=True)
        safe = torch.where(is_zero, torch.ones_like(flat), flat)
        others = safe.prod(dim, keepdim=True)  # the product with every zero read as 1
        grad = torch.where(zeros == 0, g * others / safe,
                           torch.where((zeros == 1) & is_zero, g * others,
                                       torch.zeros_like(flat)))
        return grad.reshape(ctx.shape), None, None


class Log1p(Function):
    """out = log(1 + x);  dx = g / (1 + x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log1p(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (1 + x)


class Expm1(Function):
    """out = e^x - 1;  dx = g (out + 1)."""

    @staticmethod
    def forward(ctx, x):
        out = torch.expm1(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (out + 1)


class Lerp(Function):
    """out = start + weight (end - start);  dstart = g (1 - w),  dend = g w,
    dweight = g (end - start)."""

    @staticmethod
    def forward(ctx, start, end, weight):
        ctx.save_for_backward(start, end, weight if isinstance(weight, torch.Tensor)
                              else None)
        ctx.weight = weight
        return torch.lerp(start, end, weight)

    @staticmethod
    def backward(ctx, g):
        start, end, weight = ctx.saved_tensors
        if weight is None:
            weight = ctx.weight
        n_start, n_end, n_weight = ctx.needs_input_grad
        return (g * (1 - weight) if n_start else None, g * weight if n_end else None,
                g * (end - start) if n_weight else None)


class CloneFormat(Function):
    """out = x.clone(memory_format=...);  dx = g."""

    name = "clone"

    @staticmethod
    def forward(ctx, x, memory_format):
        return x.clone(memory_format=memory_format)

    @staticmethod
    def backward(ctx, g):
        return g, None


class LogBase(Function):
    """out = log_b(x) for b = 2 or 10;  dx = g / (x ln b)."""

    name = "log"

    @staticmethod
    def forward(ctx, x, base):
        ctx.save_for_backward(x)
        ctx.base = base
        return torch.log2(x) if base == 2 else torch.log10(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (x * math.log(ctx.base)), None


class Reciprocal(Function):
    """out = 1 / x;  dx = -g out^2."""

    @staticmethod
    def forward(ctx, x):
        out = torch.reciprocal(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return -g * out * out


_ROUNDINGS = {"floor": torch.floor, "ceil": torch.ceil, "trunc": torch.trunc}


class Rounding(Function):
    """out = floor / ceil / round / trunc of x;  dx = 0 (piecewise constant)."""

    name = "round"

    @staticmethod
    def forward(ctx, x, mode, decimals=0):
        if mode == "round":
            return torch.round(x, decimals=decimals)
        return _ROUNDINGS[mode](x)

    @staticmethod
    def backward(ctx, g):
        return torch.zeros_like(g), None, None


class Fmod(Function):
    """out = fmod(a, b) = a - trunc(a / b) b;  da = g,  db = -g trunc(a / b)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b if isinstance(b, torch.Tensor) else None)
        ctx.number = b
        return torch.fmod(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        b = ctx.number if b is None else b
        need_a, need_b = ctx.needs_input_grad
        grad_b = -g * torch.div(a, b, rounding_mode="trunc") if need_b else None
        return (g if need_a else None), grad_b


class Remainder(Function):
    """out = a % b = a - floor(a / b) b;  da = g,  db = -g floor(a / b)."""

    name = "remainder"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(*(t if isinstance(t, torch.Tensor) else None for t in (a, b)))
        ctx.numbers = (a, b)
        return torch.remainder(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = (n if t is None else t for t, n in zip(ctx.saved_tensors, ctx.numbers))
        need_a, need_b = ctx.needs_input_grad
        if need_b and not isinstance(a, torch.Tensor):
            raise RuntimeError(f"remainder: no derivative of {a} % b with respect to b, as "
                               "in torch (derivative for aten::remainder is not "
                               "implemented); write it with a tensor: handgrad.full_like(b, "
                               f"{a}) % b")
        grad_b = -g * torch.div(a, b, rounding_mode="floor") if need_b else None
        return (g if need_a else None), grad_b


class FloorDivide(Function):
    """out = a // b = floor(a / b) (torch.floor_divide, floor rounding);  da = db = 0.

    floor(a / b) is a step function of a and of b: constant between the points where
    a / b crosses an integer, so its derivative is 0 wherever it exists, the gradient
    torch gives floor(a / b) written as torch.floor(a / b). (torch's own `//` records a
    node whose backward raises "derivative for aten::floor_divide is not implemented";
    handgrad records the zero gradient instead of leaving the graph, so a gradient
    through `//` is never silently cut: it is zero, and the other paths keep theirs.)"""

    name = "floor_divide"

    @staticmethod
    def forward(ctx, a, b):
        ctx.meta = [(t.shape, t.dtype, t.device) if isinstance(t, torch.Tensor) else None
                    for t in (a, b)]
        return torch.div(a, b, rounding_mode="floor")

    @staticmethod
    def backward(ctx, g):
        return tuple(torch.zeros(m[0], dtype=m[1], device=m[2]) if need and m else None
                     for m, need in zip(ctx.meta, ctx.needs_input_grad))

class MedianAll(Function):
    """out = the lower median of every element;  ties share g evenly (as torch)."""

    name = "median"

    @staticmethod
    def forward(ctx, x):
        out = torch.median(x)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        hit = (x == out) | (x.isnan() & out.isnan())
        return g * hit / hit.sum()


class MedianDim(Function):
    """values, indices = the lower median along dim;  dx = g scattered to the indices."""

    name = "median"

    @staticmethod
    def forward(ctx, x, dim, keepdim=False):
        values, indices = torch.median(x, dim, keepdim)
        ctx.save_for_backward(indices)
        ctx.shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        return values, indices

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_tensors
        if not len(ctx.shape):
            return g.clone(), None, None
        if not ctx.keepdim:
            g, indices = g.unsqueeze(ctx.dim), indices.unsqueeze(ctx.dim)
        grad = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
        return grad.scatter_(ctx.dim, indices, g), None, None
