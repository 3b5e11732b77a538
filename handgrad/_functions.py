"""Free functions, as torch's: `handgrad.exp(x)` is `x.exp()`, `handgrad.sum(x, dim)` is
`x.sum(dim)`, and so on; plus the functions of several tensors (`maximum`, `minimum`,
`pow`, `matmul`, `where`, `cat`, `stack`, `split`, `chunk`, `pad`).

This module rebinds `abs`, `sum`, `max`, `min` and `pow` on purpose (torch's names), so
its functions only delegate to Tensor methods and Functions and use no builtin of those
names. What it leaves out: the methods themselves (_tensor.py), factories (_creation.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from handgrad import ops as F
from handgrad._tensor import Tensor, _raw, _wrap_dim
from handgrad.autograd import HandgradError

__all__ = [
    "exp", "log", "sqrt", "rsqrt", "abs", "sin", "cos", "tanh", "sigmoid", "relu",
    "leaky_relu", "elu", "gelu", "silu", "softplus", "maximum", "minimum", "clamp",
    "where", "masked_fill", "pow", "matmul", "cat", "stack", "split", "chunk", "pad",
    "gather", "index_select", "flip", "tril", "triu", "sum", "mean", "var", "std",
    "norm", "amax", "amin", "max", "min", "argmax", "argmin", "logsumexp", "softmax",
    "log_softmax", "flatten", "transpose", "permute", "reshape", "squeeze", "unsqueeze",
    "broadcast_to", "sort", "argsort", "topk", "cumsum", "cumprod",
    "isclose", "logical_and", "logical_or", "logical_xor", "logical_not", "square",
]


def _method(name: str):
    def function(x, *args, **kwargs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a handgrad Tensor, got {type(x).__name__}")
        return getattr(x, name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"handgrad.{name}(x, ...) is x.{name}(...)."
    return function


# handgrad.exp(x, ...) is x.exp(...), and so on, as in torch.
exp = _method("exp")
log = _method("log")
sqrt = _method("sqrt")
rsqrt = _method("rsqrt")
abs = _method("abs")
sin = _method("sin")
cos = _method("cos")
tanh = _method("tanh")
sigmoid = _method("sigmoid")
relu = _method("relu")
leaky_relu = _method("leaky_relu")
elu = _method("elu")
gelu = _method("gelu")
silu = _method("silu")
softplus = _method("softplus")
clamp = _method("clamp")
sum = _method("sum")
mean = _method("mean")
sort = _method("sort")
argsort = _method("argsort")
topk = _method("topk")
cumsum = _method("cumsum")
cumprod = _method("cumprod")
isclose = _method("isclose")
logical_and = _method("logical_and")
logical_or = _method("logical_or")
logical_xor = _method("logical_xor")
logical_not = _method("logical_not")
square = _method("square")
var = _method("var")
std = _method("std")
norm = _method("norm")
amax = _method("amax")
amin = _method("amin")
max = _method("max")
min = _method("min")
argmax = _method("argmax")
argmin = _method("argmin")
logsumexp = _method("logsumexp")
softmax = _method("softmax")
log_softmax = _method("log_softmax")
flatten = _method("flatten")
transpose = _method("transpose")
permute = _method("permute")
reshape = _method("reshape")
squeeze = _method("squeeze")
unsqueeze = _method("unsqueeze")
flip = _method("flip")
tril = _method("tril")
triu = _method("triu")
gather = _method("gather")
index_select = _method("index_select")
masked_fill = _method("masked_fill")
broadcast_to = _method("broadcast_to")


split = _method("split")
chunk = _method("chunk")


def _check_same_device(op: str, tensors) -> None:
    devices = {t.device for t in tensors if isinstance(t, Tensor)}
    if len(devices) > 1:
        raise HandgradError(
            f"{op}: inputs are on different devices ({', '.join(sorted(map(str, devices)))});"
            " move them to one device first with .to(device)")


def maximum(a, b) -> Tensor:
    return F.Maximum.apply(a, b)


def minimum(a, b) -> Tensor:
    return F.Minimum.apply(a, b)


def pow(base, exponent) -> Tensor:  # noqa: A001
    return F.Pow.apply(base, exponent)


def matmul(a, b) -> Tensor:
    return F.Matmul.apply(a, b)


def where(condition, a=None, b=None):
    """where(condition, a, b): elements of a where condition holds, else of b (a or b may
    be numbers). where(condition): the indices of the nonzero elements of condition, one
    int64 tensor per dim, as torch (condition.nonzero(as_tuple=True))."""
    if a is None and b is None:
        data = _raw(condition)
        return tuple(Tensor._make(d, False, None) for d in torch.nonzero(data, as_tuple=True))
    if a is None or b is None:
        raise TypeError("where: give both a and b (where(condition, a, b)), or neither "
                        "(where(condition) returns the indices of the nonzero elements)")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):  # two numbers
        condition = condition if isinstance(condition, Tensor) else Tensor(condition)
        dtype = torch.result_type(torch.tensor(a), torch.tensor(b))
        if not dtype.is_floating_point and (isinstance(a, float) or isinstance(b, float)):
            dtype = torch.get_default_dtype()
        a = Tensor._make(torch.tensor(a, dtype=dtype, device=condition.device), False, None)
    return F.Where.apply(_raw(condition), a, b)


def cat(tensors, dim=0) -> Tensor:
    """Join tensors along an existing dim; all other sizes must match."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    _check_same_device("cat", tensors)
    first = tensors[0]
    join = _wrap_dim("cat", dim, first.ndim) if first.ndim else 0
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim or any(
                a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != join):
            raise HandgradError(
                f"cat: tensor 0 has shape {tuple(first.shape)} but tensor {i} has shape "
                f"{tuple(t.shape)}; all sizes except dim {dim} must match")
    return F.Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0) -> Tensor:
    """Join same-shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    _check_same_device("stack", tensors)
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise HandgradError(
                f"stack: tensor 0 has shape {tuple(tensors[0].shape)} but tensor {i} has "
                f"shape {tuple(t.shape)}; stack needs equal shapes")
    return F.Stack.apply(*tensors, dim=dim)


def pad(x: Tensor, pad: Sequence[int], value=0.0) -> Tensor:
    """Constant padding, torch's order: (last_left, last_right, prev_left, ...)."""
    return F.Pad.apply(x, tuple(pad), value)

