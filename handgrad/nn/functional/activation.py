"""Activation functions as plain functions (PyTorch's functional API's names and arguments).

The common ones (relu, leaky_relu, elu, gelu, silu, sigmoid, tanh, softplus, softmax,
log_softmax) are primitives of the tensor core (handgrad/ops, reached through the Tensor
method of the same name), so they are not defined again here: their wrappers only give
PyTorch's functional API's spelling, and their `inplace=True` is accepted for
compatibility and computes out of place (same values, same gradients).

The less common ones are fused Functions of this file, each one graph node with its
backward derived in its docstring: LogSigmoid, Hardtanh (hardtanh, relu6), Hardswish,
Hardsigmoid, Mish, GLU, PReLU, ScaledElu (selu, celu), Softsign, Tanhshrink, Threshold.
softmin is softmax(-x), composed from two primitives. Their `inplace=True` is torch's:
the input takes the result's values (and, inside a graph, the result's place, see
_tensor.py's in-place ops); a leaf that requires grad is refused with torch's
RuntimeError. Kinks take torch's subgradients (each docstring says which).

one_hot (integer classes to a 0/1 int64 tensor, no gradient) lives here too: torch's
docs list it among the 'sparse' functions, next to embedding.

Left out: the activations as modules (handgrad/nn/activation.py); rrelu, hardshrink,
softshrink, softmax2d, gumbel_softmax; in-place forms of the primitives.
"""

from __future__ import annotations

import warnings

import torch

from handgrad._tensor import Tensor
from handgrad.autograd import Function, describe
from handgrad.ops.elementwise import floating_only
from handgrad.ops.reduce import wrap_dim


def relu(input, inplace=False):
    """max(x, 0)."""
    return input.relu()


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x if x > 0 else negative_slope * x."""
    return input.leaky_relu(negative_slope)


def elu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha (e**x - 1)."""
    return input.elu(alpha)


def gelu(input, approximate="none"):
    """x Phi(x) (approximate='tanh': the tanh approximation)."""
    return input.gelu(approximate)


def silu(input, inplace=False):
    """x sigmoid(x)."""
    return input.silu()


def sigmoid(input):
    """1 / (1 + e**-x)."""
    return input.sigmoid()


def tanh(input):
    return input.tanh()


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + e**(beta x)) / beta (x itself where beta x > threshold)."""
    return input.softplus(beta, threshold)


def _softmax_dim(name: str, ndim: int, dim):
    """torch's legacy rule when dim is not given (with its warning): 0 for 0-, 1- and
    3-D inputs, else 1."""
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the "
                  "call to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, dtype=None):
    """e**x / sum e**x along dim (the primitive Softmax node)."""
    if dtype is not None:
        input = input.to(dtype)
    return input.softmax(_softmax_dim("softmax", input.ndim, dim))


def log_softmax(input, dim=None, dtype=None):
    """x - logsumexp(x) along dim (the primitive LogSoftmax node)."""
    if dtype is not None:
        input = input.to(dtype)
    return input.log_softmax(_softmax_dim("log_softmax", input.ndim, dim))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """e**-x / sum e**-x along dim: softmax(-x), two primitive nodes (Neg, Softmax), as
    torch composes it. dtype casts the input first; dim=None takes torch's legacy
    choice with its warning."""
    if dtype is not None:
        input = input.to(dtype)
    return (-input).softmax(_softmax_dim("softmin", input.ndim, dim))


# ============================================================ in place, as torch
def _in_place(op: str, input, compute):
    """torch's inplace=True: `input` takes the values of compute(input) and, when the
    op is recorded, the result's place in the graph (Tensor._rebind, as add_ does).

    A leaf that requires grad, or a graph tensor with live views, is refused (the
    Tensor's in-place check, RuntimeError as torch's)."""
    if input._check_inplace(op):
        return input._rebind(compute(input), op)
    result = compute(input)
    if result.dtype != input.dtype:
        raise RuntimeError(
            f"{op}: the result is {result.dtype} and cannot be written into the "
            f"{input.dtype} input in place (as torch refuses it); use inplace=False.")
    input.data.copy_(result.data)
    return input


def _floating(input):
    """torch's softsign and tanhshrink are composites that promote integer inputs to the
    default float dtype: do the same before the fused node."""
    return input if input.dtype.is_floating_point else input.to(torch.get_default_dtype())


# ============================================================ smooth activations
class LogSigmoid(Function):
    """out = log sigmoid(x) = min(x, 0) - log(1 + e**-|x|): no overflow for any x (the
    naive -log(1 + e**-x) overflows for x << 0).

    dx = g d/dx log sigmoid(x) = g sigmoid'(x) / sigmoid(x) = g (1 - sigmoid(x))
       = g sigmoid(-x).
    """

    name = "logsigmoid"

    @staticmethod
    def forward(ctx, x):
        floating_only("logsigmoid", x)
        ctx.save_for_backward(x)
        return torch.clamp_max(x, 0) - torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sigmoid(-x)


class Mish(Function):
    """out = x tanh(softplus(x)),  softplus(x) = log(1 + e**x) = max(x, 0) + log(1 + e**-|x|).

    With t = tanh(softplus(x)) and softplus'(x) = sigmoid(x):
        dx = g (t + x (1 - t**2) sigmoid(x)).
    Only x is saved; backward recomputes t (as torch's mish_backward does).
    """

    name = "mish"

    @staticmethod
    def _tanh_softplus(x):
        return torch.tanh(torch.clamp_min(x, 0) + torch.log1p(torch.exp(-x.abs())))

    @staticmethod
    def forward(ctx, x):
        floating_only("mish", x)
        ctx.save_for_backward(x)
        return x * Mish._tanh_softplus(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        t = Mish._tanh_softplus(x)
        return g * (t + x * (1 - t * t) * torch.sigmoid(x))


class ScaledElu(Function):
    """torch's elu kernel with its three constants, behind selu and celu:
        out = scale x                                  where x > 0,
              scale alpha (e**(input_scale x) - 1)     elsewhere;
        dx  = g scale                                  where x > 0,
              g scale alpha input_scale e**(input_scale x)   elsewhere (x = 0 included,
              as torch: selu'(0) = scale alpha, celu'(0) = 1).
    selu: scale = 1.0507..., alpha = 1.6732..., input_scale = 1.
    celu: scale = 1, input_scale = 1 / alpha. (torch's celu backward rounds 1 / alpha to
    float32, so its float64 gradients are up to ~1e-7 relative off these, exact, ones
    when 1 / alpha is not a float32 number.)
    """

    name = "elu"

    @staticmethod
    def forward(ctx, x, alpha, scale, input_scale):
        ctx.save_for_backward(x)
        ctx.alpha, ctx.scale, ctx.input_scale = alpha, scale, input_scale
        # scale max(x, 0) + scale alpha (e**(input_scale min(x, 0)) - 1): the same values
        # as a select of the two branches (each side adds an exact 0), but clamps run
        # vectorised where torch.where on a random mask is ~7x slower on the CPU
        negative = torch.expm1(torch.clamp_max(x, 0) * input_scale)
        return torch.clamp_min(x, 0).mul_(scale).add_(negative, alpha=scale * alpha)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        positive = x > 0
        # slope: e**(input_scale x) scale alpha input_scale where x <= 0, scale where x > 0
        slope = torch.exp(torch.clamp_max(x, 0) * ctx.input_scale)
        slope.mul_(ctx.scale * ctx.alpha * ctx.input_scale).mul_(~positive)
        return g * slope.add_(positive, alpha=ctx.scale), None, None, None


class Softsign(Function):
    """out = x / (1 + |x|);  dx = g / (1 + |x|)**2  (1 at x = 0, as torch:
    (1 + |x| - x sign(x)) / (1 + |x|)**2 with sign(0) = 0)."""

    name = "softsign"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (x.abs() + 1)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        d = x.abs() + 1
        return g / (d * d)


class Tanhshrink(Function):
    """out = x - tanh(x);  dx = g (1 - (1 - tanh**2 x)) = g tanh**2 x."""

    name = "tanhshrink"

    @staticmethod
    def forward(ctx, x):
        t = torch.tanh(x)
        ctx.save_for_backward(t)
        return x - t

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return g * t * t


# ============================================================ piecewise linear
class Hardtanh(Function):
    """out = min(max(x, min_val), max_val);
    dx = g where min_val < x < max_val, else 0: the bounds themselves get 0, as torch's
    hardtanh_backward (unlike clamp, whose gradient passes at the bounds). relu6 is
    hardtanh(x, 0, 6), so relu6'(0) = relu6'(6) = 0 as in torch. Only the bool mask of
    the open interval is saved."""

    name = "hardtanh"

    @staticmethod
    def forward(ctx, x, min_val, max_val):
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward((x > min_val) & (x < max_val))
        out = torch.clamp(x, min_val, max_val)
        return out if out.dtype == x.dtype else out.to(x.dtype)  # ints stay ints, as torch

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved_tensors
        return g * inside, None, None


class Threshold(Function):
    """out = x where x > threshold, else value;  dx = g where x > threshold, else 0 (0
    at x == threshold, as torch). Only the bool mask is saved."""

    name = "threshold"

    @staticmethod
    def forward(ctx, x, threshold, value):
        below = x <= threshold
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(~below)
        return x.masked_fill(below, value)

    @staticmethod
    def backward(ctx, g):
        (above,) = ctx.saved_tensors
        return g * above, None, None  # a bool factor: one vectorised pass (see Relu)


class Hardswish(Function):
    """out = x relu6(x + 3) / 6:  0 for x <= -3, x (x + 3) / 6 between, x for x >= 3.

    dx = 0 for x <= -3,  g (x / 3 + 1/2) for -3 < x < 3,  g for x >= 3: torch's
    subgradients at the kinks (0 at -3, 1 at 3)."""

    name = "hardswish"

    @staticmethod
    def forward(ctx, x):
        floating_only("hardswish", x)
        ctx.save_for_backward(x)
        return x * torch.clamp(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        # slope x / 3 + 1/2 inside (-3, 3), plus 1 from 3 on (bool factors, no where)
        slope = (x / 3 + 0.5).mul_((x > -3) & (x < 3)).add_(x >= 3)
        return g * slope


class Hardsigmoid(Function):
    """out = relu6(x + 3) / 6;  dx = g / 6 for -3 < x < 3, else 0 (0 at both kinks, as
    torch). Only the bool mask is saved. (torch's backward multiplies by 1/6 rounded
    to float32 in every dtype, 0.16666667163...: its float64 gradients are 3e-8
    relative off the exact 1/6 used here.)"""

    name = "hardsigmoid"

    @staticmethod
    def forward(ctx, x):
        floating_only("hardsigmoid", x)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward((x > -3) & (x < 3))
        return torch.clamp(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved_tensors
        return g * inside / 6


class PReLU(Function):
    """out = x where x > 0, else w x, with w one learned slope (weight of 1 element) or
    one per channel (channel dim 1, weight of C elements, broadcast as (1, C, 1, ...)).

    dx = g where x > 0, else w g;   dw = sum of g x over the entries with x <= 0,
    summed over every dim but the channel's (over all of them for one slope), as
    torch's prelu backward (x = 0 counts as the negative side: dx = w g there).
    """

    name = "prelu"

    @staticmethod
    def _slope(x, weight):
        if weight.numel() == 1:
            return weight.reshape(())
        return weight.reshape((1, -1) + (1,) * (x.ndim - 2))

    @staticmethod
    def forward(ctx, x, weight):
        floating_only("prelu", x)
        w = PReLU._slope(x, weight)
        ctx.save_for_backward(x, w)
        ctx.weight_shape = weight.shape
        # max(x, 0) + w min(x, 0): a select's values (an exact 0 is added on each side)
        # without torch.where, ~7x slower than the clamps on the CPU
        return torch.clamp_min(x, 0).add_(torch.clamp_max(x, 0) * w)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad
        gx = gw = None
        if need_x:
            positive = x > 0
            gx = g * (w * ~positive).add_(positive)  # slope 1 where x > 0, else w
        if need_w:
            gxw = g * torch.clamp_max(x, 0)  # g x where x <= 0, else 0
            dims = tuple(d for d in range(x.ndim) if w.ndim == 0 or d != 1)
            gw = (gxw.sum(dims) if dims else gxw).reshape(ctx.weight_shape)
        return gx, gw


class GLU(Function):
    """The gated linear unit: x split in halves a, b along dim, out = a sigmoid(b).

    With s = sigmoid(b):  da = g s,  db = g a s (1 - s);  dx = cat(da, db) along dim.
    """

    name = "glu"

    @staticmethod
    def forward(ctx, x, dim):
        a, b = x.chunk(2, dim)
        s = torch.sigmoid(b)
        ctx.save_for_backward(a, s)
        ctx.dim = dim
        return a * s

    @staticmethod
    def backward(ctx, g):
        a, s = ctx.saved_tensors
        gs = g * s
        return torch.cat([gs, gs * a * (1 - s)], ctx.dim), None


# ============================================================ the functional API
def logsigmoid(input):
    """log(1 / (1 + e**-x)), stable for any x (torch.nn.functional's name; log_sigmoid
    is the same function under the spelling of the other functions)."""
    return LogSigmoid.apply(input)


log_sigmoid = logsigmoid


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """min(max(x, min_val), max_val); the bounds get gradient 0, as torch."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val cannot be greater than max_val (got min_val="
                         f"{min_val}, max_val={max_val}), as torch")
    if inplace:
        return _in_place("hardtanh_", input, lambda x: Hardtanh.apply(x, min_val, max_val))
    return Hardtanh.apply(input, min_val, max_val)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input, inplace=False):
    """min(max(x, 0), 6): hardtanh(x, 0, 6), so 0 and 6 get gradient 0, as torch."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardswish(input, inplace=False):
    """x relu6(x + 3) / 6."""
    if inplace:
        return _in_place("hardswish_", input, Hardswish.apply)
    return Hardswish.apply(input)


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6."""
    if inplace:
        return _in_place("hardsigmoid_", input, Hardsigmoid.apply)
    return Hardsigmoid.apply(input)


def mish(input, inplace=False):
    """x tanh(softplus(x))."""
    if inplace:
        return _in_place("mish_", input, Mish.apply)
    return Mish.apply(input)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """scale (max(0, x) + min(0, alpha (e**x - 1))) with torch's alpha = 1.6732... and
    scale = 1.0507... (self-normalising networks, Klambauer et al. 2017)."""
    floating_only("selu", input.data)

    def compute(x):
        return ScaledElu.apply(x, SELU_ALPHA, SELU_SCALE, 1.0)
    return _in_place("selu_", input, compute) if inplace else compute(input)


def selu_(input):
    return selu(input, inplace=True)


def celu(input, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha (e**(x / alpha) - 1)) (continuously differentiable ELU)."""
    if alpha == 0:
        raise RuntimeError("celu: ZeroDivisionError: alpha cannot be 0 for CELU (as torch)")
    floating_only("celu", input.data)

    def compute(x):
        return ScaledElu.apply(x, alpha, 1.0, 1.0 / alpha)
    return _in_place("celu_", input, compute) if inplace else compute(input)


def celu_(input, alpha=1.0):
    return celu(input, alpha, inplace=True)


def softsign(input):
    """x / (1 + |x|)."""
    return Softsign.apply(_floating(input))


def tanhshrink(input):
    """x - tanh(x)."""
    return Tanhshrink.apply(_floating(input))


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else value."""
    if inplace:
        return _in_place("threshold_", input, lambda x: Threshold.apply(x, threshold, value))
    return Threshold.apply(input, threshold, value)


_threshold = threshold  # threshold_'s own argument hides the function's name


def threshold_(input, threshold, value):
    return _threshold(input, threshold, value, inplace=True)


def glu(input, dim=-1):
    """a sigmoid(b), a and b the two halves of the input along dim (its size must be
    even)."""
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even "
                           "(as torch); give it a tensor with an even-sized dim")
    dim = wrap_dim(dim, input.ndim)
    if input.shape[dim] % 2:
        raise RuntimeError(
            f"glu: Halving dimension must be even, but dimension {dim} is size "
            f"{input.shape[dim]} (input of shape {tuple(input.shape)}); pick an even-sized "
            "dim with dim=")
    return GLU.apply(input, dim)


def prelu(input, weight):
    """x where x > 0, else weight x: weight of 1 element (one slope) or of C elements, C
    the size of dim 1 (1 for inputs of fewer than 2 dims)."""
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                           f"ndim = {weight.ndim} (weight {describe(weight)})")
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() != 1 and weight.numel() != channels:
        raise RuntimeError(
            f"prelu: Mismatch of parameter numbers and input channel size. Found parameter "
            f"numbers = {weight.numel()} and channel size = {channels} (input "
            f"{describe(input)}; the channel dim is dim 1). Build PReLU(num_parameters="
            f"{channels}) or PReLU() for one slope.")
    return PReLU.apply(input, weight)


# ============================================================ encodings
def one_hot(tensor, num_classes=-1):
    """(*) int64 class indices -> (*, num_classes) int64 with a 1 at each index, as
    torch.nn.functional.one_hot; num_classes=-1 takes max + 1. No gradient (the result
    is an integer tensor)."""
    data = tensor.data
    if data.dtype != torch.int64:
        raise RuntimeError(
            f"one_hot is only applicable to index tensor of type LongTensor (got "
            f"{describe(tensor)}, as torch); convert it with .long()")
    if data.numel() and int(data.min()) < 0:
        raise RuntimeError(f"one_hot: Class values must be non-negative (got "
                           f"{int(data.min())})")
    if num_classes == -1:
        if data.numel() == 0:
            raise RuntimeError("one_hot: Can not infer total number of classes from empty "
                               "tensor (as torch); give num_classes")
        num_classes = int(data.max()) + 1
    elif data.numel():
        if int(data.max()) >= num_classes:
            raise RuntimeError(
                f"one_hot: Class values must be smaller than num_classes (got "
                f"num_classes={num_classes} and a largest class {int(data.max())})")
    out = torch.zeros(*data.shape, num_classes, dtype=torch.int64, device=data.device)
    out.scatter_(-1, data.unsqueeze(-1), 1)
    return Tensor(out)

