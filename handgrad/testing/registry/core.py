"""Registry entries for the tensor core's primitives (handgrad/ops): elementwise math,
reductions and the softmax family, shape/movement/indexing ops, matmul.

Entries call the public API (operators, Tensor methods, handgrad.* functions) so that
the wiring in _tensor.py is checked along with each Function. Where torch spells an op
differently (pad, leaky_relu, gelu...), `ref` names torch's version.

Left out: fused layer-level Functions (registry/nn.py, with handgrad.nn).
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

import handgrad as hg
from handgrad import ops
from handgrad.ops.arith import CloneFormat
from handgrad.testing.registry import (
    distinct,
    even_grid,
    nonzero,
    odd_grid,
    positive,
    real,
    register,
    uniform,
)

# ------------------------------------------------------------------ shape menus
UNARY = [((3, 4),), ((),), ((2, 3, 4),), ((5,),)]
# Broadcasting pairs, `()` scalars on either side included.
BINARY = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (3, 4)),
          ((3, 4), ()), ((), ()), ((1,), (2, 3))]
REDUCE = [((3, 4),), ((2, 3, 4),), ((5,),)]


def _randint(gen, low, high) -> int:
    return int(torch.randint(low, high, (), generator=gen))


def dim_keepdim(gen, shapes):
    """A random dim of the first input (negative half the time) and a random keepdim."""
    ndim = len(shapes[0])
    return _randint(gen, -ndim, ndim), bool(_randint(gen, 0, 2))


def dims_keepdim(gen, shapes):
    """A random non-empty tuple of dims of the first input and a random keepdim."""
    ndim = len(shapes[0])
    chosen = tuple(d for d in range(ndim) if _randint(gen, 0, 2)) or (ndim - 1,)
    return chosen, bool(_randint(gen, 0, 2))


# ----------------------------------------------- composed references (fused primitives)
# Some primitives are themselves fusions of simpler ones (softmax, logsumexp, silu, ...):
# their entries carry the same math composed from those, checked like nn's fused layers.
def _shifted(x, dim):
    """x - max(x) along dim: the max is a constant shift, so it gets no gradient."""
    return x - x.amax(dim, keepdim=True).detach()


def _composed_logsumexp(x, dim, keepdim=False):
    """log sum exp(x - m) + m; the size-1 dims are summed away unless keepdim."""
    m = x.amax(dim, keepdim=True).detach()
    return ((x - m).exp().sum(dim, keepdim=True).log() + m).sum(dim, keepdim=keepdim)


def _composed_softmax(x, dim):
    e = _shifted(x, dim).exp()
    return e / e.sum(dim, keepdim=True)


def _composed_log_softmax(x, dim):
    z = _shifted(x, dim)
    return z - z.exp().sum(dim, keepdim=True).log()


def _composed_softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    return hg.where(x * beta > threshold, x, (1 + (x * beta).exp()).log() / beta)


def _composed_elu(x, alpha=1.0):
    return hg.where(x > 0, x, alpha * (x.exp() - 1))


def _composed_gelu_tanh(x):
    """x / 2 (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + ((2 / torch.pi) ** 0.5 * (x + 0.044715 * x * x * x)).tanh())


def broadcast_mask(gen, shapes):
    """A random boolean mask of the inputs' broadcast shape."""
    return (torch.rand(torch.broadcast_shapes(*shapes), generator=gen) < 0.5,)


# ============================================================================ binary
for name, fn, cls, domains in [
    ("add", lambda a, b: a + b, ops.Add, real),
    ("sub", lambda a, b: a - b, ops.Sub, real),
    ("mul", lambda a, b: a * b, ops.Mul, real),
    ("div", lambda a, b: a / b, ops.Div, (real, nonzero)),
]:
    register(name, fn, shapes=BINARY, covers=(cls,), domains=domains, random_shapes="binary")

# Python numbers on either side (reflected operators) and the method forms.
register("add_number", lambda x: 2.5 + x + 1, shapes=UNARY, covers=(ops.Add,))
register("sub_number", lambda x: 2.5 - x - 1, shapes=UNARY, covers=(ops.Sub,))
register("mul_number", lambda x: 2.5 * x * -3, shapes=UNARY, covers=(ops.Mul,))
register("div_number", lambda x: 2.5 / x / 4, shapes=UNARY, covers=(ops.Div,),
         domains=nonzero)
register("add_method_alpha", lambda a, b: a.add(b, alpha=2).sub(b, alpha=0.5),
         shapes=BINARY[:3], covers=(ops.Add, ops.Sub, ops.Mul))
register("neg", lambda x: -x, shapes=UNARY, covers=(ops.Neg,), random_shapes="unary")

register("pow_tensor_int", lambda x: x ** 3 + x.pow(2), shapes=UNARY, covers=(ops.Pow,),
         random_shapes="unary")
register("pow_tensor_float", lambda x: x ** 2.5 + x ** -0.5, shapes=UNARY,
         covers=(ops.Pow,), domains=positive)
register("pow_tensor_zero", lambda x: x ** 0, shapes=UNARY, covers=(ops.Pow,))
register("pow_number_tensor", lambda x: 2.0 ** x + 0.5 ** x, shapes=UNARY,
         covers=(ops.Pow,), random_shapes="unary")
register("pow_tensor_tensor", lambda a, b: a ** b, shapes=BINARY, covers=(ops.Pow,),
         domains=(positive, real), random_shapes="binary")
register("pow_function", lambda a, b: hg.pow(a, b), ref=torch.pow, shapes=BINARY[:3],
         covers=(ops.Pow,), domains=(positive, real))

register("maximum", hg.maximum, ref=torch.maximum, shapes=BINARY, covers=(ops.Maximum,),
         domains=(odd_grid, even_grid), random_shapes="binary")
register("minimum", hg.minimum, ref=torch.minimum, shapes=BINARY, covers=(ops.Minimum,),
         domains=(odd_grid, even_grid), random_shapes="binary")
register("max_min_tensor", lambda a, b: a.max(b) + a.min(b), shapes=BINARY[:3],
         covers=(ops.Maximum, ops.Minimum), domains=(even_grid, odd_grid))

register("where", lambda a, b, cond: hg.where(cond, a, b),
         ref=lambda a, b, cond: torch.where(cond, a, b), shapes=BINARY,
         covers=(ops.Where,), extras=broadcast_mask, random_shapes="binary")
register("where_number", lambda x, cond: hg.where(cond, x, 0.5) + x.where(cond, -1.0),
         ref=lambda x, cond: torch.where(cond, x, 0.5) + x.where(cond, -1.0),
         shapes=UNARY, covers=(ops.Where,), extras=broadcast_mask)
register("masked_fill", lambda x, mask: x.masked_fill(mask, -1.5), shapes=UNARY,
         covers=(ops.MaskedFill,), extras=broadcast_mask, random_shapes="unary")
register("masked_fill_tensor_value", lambda x, value, mask: x.masked_fill(mask, value),
         shapes=[((3, 4), ()), ((5,), ())], covers=(ops.Where,),
         extras=lambda gen, shapes: broadcast_mask(gen, shapes[:1]),
         note="a value that requires grad gets the sum of g over the mask, as torch")
register("masked_fill_broadcast_mask", lambda x, mask: x.masked_fill(mask, 2.0),
         shapes=[((3, 4),), ((2, 3, 4),)], covers=(ops.MaskedFill,),
         extras=lambda gen, shapes: broadcast_mask(gen, [shapes[0][-1:]]))

# ============================================================================ unary
for name, fn, cls, domains in [
    ("exp", lambda x: x.exp(), ops.Exp, real),
    ("log", lambda x: x.log(), ops.Log, positive),
    ("sqrt", lambda x: x.sqrt(), ops.Sqrt, positive),
    ("rsqrt", lambda x: x.rsqrt(), ops.Rsqrt, positive),
    ("abs", lambda x: x.abs() + abs(x), ops.Abs, nonzero),
    ("sin", lambda x: x.sin(), ops.Sin, real),
    ("cos", lambda x: x.cos(), ops.Cos, real),
    ("tanh", lambda x: x.tanh(), ops.Tanh, real),
    ("sigmoid", lambda x: x.sigmoid(), ops.Sigmoid, real),
    ("relu", lambda x: x.relu(), ops.Relu, nonzero),
]:
    register(name, fn, shapes=UNARY, covers=(cls,), domains=domains, random_shapes="unary")

for name, torch_fn in [("exp", torch.exp), ("log", torch.log), ("tanh", torch.tanh),
                       ("sigmoid", torch.sigmoid), ("relu", torch.relu)]:
    register(f"{name}_function", getattr(hg, name), ref=torch_fn, shapes=UNARY[:1],
             covers=(getattr(ops, name.capitalize()),),
             domains=positive if name == "log" else nonzero)

register("leaky_relu", lambda x: x.leaky_relu(), ref=TF.leaky_relu, shapes=UNARY,
         covers=(ops.LeakyRelu,), domains=nonzero, random_shapes="unary")
register("leaky_relu_slope", lambda x: hg.leaky_relu(x, 0.2),
         ref=lambda x: TF.leaky_relu(x, 0.2), shapes=UNARY, covers=(ops.LeakyRelu,),
         domains=nonzero)
register("elu", lambda x: x.elu(), ref=TF.elu, shapes=UNARY, covers=(ops.Elu,),
         domains=nonzero, random_shapes="unary", composed=_composed_elu)
register("elu_alpha", lambda x: hg.elu(x, 1.5), ref=lambda x: TF.elu(x, 1.5), shapes=UNARY,
         covers=(ops.Elu,), domains=nonzero, composed=lambda x: _composed_elu(x, 1.5))
register("gelu", lambda x: x.gelu(), ref=TF.gelu, shapes=UNARY, covers=(ops.Gelu,),
         random_shapes="unary")
register("gelu_tanh", lambda x: hg.gelu(x, approximate="tanh"),
         ref=lambda x: TF.gelu(x, approximate="tanh"), shapes=UNARY, covers=(ops.Gelu,),
         random_shapes="unary", composed=_composed_gelu_tanh)
register("silu", lambda x: x.silu(), ref=TF.silu, shapes=UNARY, covers=(ops.Silu,),
         random_shapes="unary", composed=lambda x: x * x.sigmoid())
register("softplus", lambda x: x.softplus(), ref=TF.softplus, shapes=UNARY,
         covers=(ops.Softplus,), random_shapes="unary", composed=_composed_softplus)
# beta=2, threshold=1.2: both branches (log1p(exp) and the linear one) are taken; on the
# odd grid beta*x is never the threshold, where softplus itself jumps (as in torch).
register("softplus_beta_threshold", lambda x: hg.softplus(x, beta=2.0, threshold=1.2),
         ref=lambda x: TF.softplus(x, beta=2.0, threshold=1.2), shapes=UNARY,
         covers=(ops.Softplus,), domains=odd_grid,
         composed=lambda x: _composed_softplus(x, beta=2.0, threshold=1.2))

register("clamp", lambda x: x.clamp(-0.4, 0.6), shapes=UNARY, covers=(ops.Clamp,),
         domains=odd_grid, random_shapes="unary")
register("clamp_min_max", lambda x: x.clamp(min=-0.4) + x.clamp(max=0.6)
         + x.clamp_min(0.2) + x.clamp_max(-0.2) + x.clip(-1.0, 1.0), shapes=UNARY,
         covers=(ops.Clamp,), domains=odd_grid)
# Tensor bounds that require grad: each bound gets the gradient where it wins, as
# torch. Random bounds never sit exactly on x (ties: tests/autograd/test_autograd.py).
register("clamp_tensor_bounds", lambda x, lo, hi: x.clamp(lo, hi) + x.clamp(min=lo)
         + x.clamp(max=hi) + x.clamp_min(lo) * x.clamp_max(hi),
         shapes=[((3, 4), (3, 4), (3, 4)), ((3, 4), (4,), ()), ((), (), ())],
         covers=(ops.Clamp,), domains=(odd_grid, uniform(-1.5, -0.5), uniform(0.5, 1.5)))
register("clamp_function", lambda x: hg.clamp(x, -0.4, 0.6),
         ref=lambda x: torch.clamp(x, -0.4, 0.6), shapes=UNARY[:1], covers=(ops.Clamp,),
         domains=odd_grid)


def _other_dtype(x):
    return torch.float32 if x.dtype == torch.float64 else torch.float64


register("to_dtype", lambda x: x.to(_other_dtype(x)) * 1.5, shapes=UNARY, covers=(ops.To,),
         finite_differences=False,
         note="a float64 -> float32 round trip makes central differences meaningless")
register("double_float", lambda x: x.double().float() if x.dtype == torch.float32
         else x.float().double(), shapes=UNARY[:1], covers=(ops.To,),
         finite_differences=False, note="float32 rounding")
register("clone", lambda x: x.clone() * x, shapes=UNARY, covers=(ops.Clone,),
         random_shapes="unary")
register("contiguous", lambda x: x.mT.contiguous(), shapes=[((3, 4),), ((2, 3, 4),)],
         covers=(CloneFormat, ops.Transpose))

# ============================================================================ reduce
register("sum", lambda x: x.sum(), shapes=UNARY, covers=(ops.Sum,), random_shapes="unary")
register("sum_dim", lambda x, dim, keepdim: x.sum(dim, keepdim), shapes=REDUCE,
         covers=(ops.Sum,), extras=dim_keepdim, random_shapes="reduce")
register("sum_dims", lambda x, dims, keepdim: hg.sum(x, dims, keepdim=keepdim),
         ref=lambda x, dims, keepdim: torch.sum(x, dims, keepdim=keepdim), shapes=REDUCE,
         covers=(ops.Sum,), extras=dims_keepdim, random_shapes="reduce")
register("mean", lambda x: x.mean(), shapes=UNARY, covers=(ops.Mean,), random_shapes="unary")
register("reduce_0d_along_dim", lambda x: x.mean(0) + x.sum(-1, keepdim=True) + x.amax(0)
         + x.logsumexp(0) + x.softmax(0) + x.max(0).values, shapes=[((),)],
         covers=(ops.Mean, ops.Sum, ops.AmaxAmin, ops.LogSumExp, ops.Softmax, ops.MaxDim))
register("mean_dim", lambda x, dim, keepdim: x.mean(dim, keepdim), shapes=REDUCE,
         covers=(ops.Mean,), extras=dim_keepdim, random_shapes="reduce")
register("mean_dims", lambda x, dims, keepdim: x.mean(dims, keepdim=keepdim), shapes=REDUCE,
         covers=(ops.Mean,), extras=dims_keepdim, random_shapes="reduce")

VAR_SHAPES = [((3, 4),), ((4, 3, 5),), ((6,),)]
register("var", lambda x: x.var(), shapes=VAR_SHAPES, covers=(ops.Var,))
register("var_dim", lambda x, dim, keepdim: x.var(dim, keepdim=keepdim), shapes=VAR_SHAPES,
         covers=(ops.Var,), extras=dim_keepdim)
register("var_correction", lambda x, dims, keepdim: x.var(dims, keepdim=keepdim, correction=0)
         + x.var(dims, keepdim=keepdim, correction=2), shapes=VAR_SHAPES, covers=(ops.Var,),
         extras=dims_keepdim)
register("var_unbiased_false", lambda x: x.var(0, False), shapes=VAR_SHAPES,
         covers=(ops.Var,))
register("std", lambda x, dim, keepdim: x.std(dim, keepdim=keepdim) + x.std(),
         shapes=VAR_SHAPES, covers=(ops.Std,), extras=dim_keepdim)
register("std_function", lambda x: (hg.std(x, 0, correction=0), hg.var(x, -1)),
         ref=lambda x: (torch.std(x, 0, correction=0), torch.var(x, -1)), shapes=VAR_SHAPES,
         covers=(ops.Std, ops.Var))
register("std_correction_keepdim", lambda x, dims, keepdim: x.std(dims, keepdim=keepdim,
                                                                   correction=2),
         shapes=VAR_SHAPES, covers=(ops.Std,), extras=dims_keepdim)

register("norm", lambda x: x.norm(), shapes=UNARY, covers=(ops.Norm,), random_shapes="unary")
register("norm_dims", lambda x, dims, keepdim: x.norm(2, dims, keepdim), shapes=REDUCE,
         covers=(ops.Norm,), extras=dims_keepdim, random_shapes="reduce")
register("norm_p1", lambda x, dim, keepdim: x.norm(1, dim, keepdim) + x.norm(1), shapes=REDUCE,
         covers=(ops.Norm,), domains=nonzero, extras=dim_keepdim)
register("norm_p3", lambda x, dims, keepdim: x.norm(3, dims, keepdim), shapes=REDUCE,
         covers=(ops.Norm,), domains=nonzero, extras=dims_keepdim)
register("norm_inf", lambda x, dim, keepdim: x.norm(float("inf"), dim, keepdim)
         + hg.norm(x, float("inf")), ref=lambda x, dim, keepdim: x.norm(float("inf"), dim, keepdim)
         + torch.norm(x, float("inf")), shapes=REDUCE, covers=(ops.Norm,), domains=distinct,
         extras=dim_keepdim)

register("max_all", lambda x: x.max(), shapes=UNARY, covers=(ops.MaxAll,), domains=distinct,
         random_shapes="unary")
register("min_all", lambda x: hg.min(x), ref=torch.min, shapes=UNARY, covers=(ops.MaxAll,),
         domains=distinct, random_shapes="unary")
register("max_dim", lambda x, dim, keepdim: tuple(x.max(dim, keepdim)), shapes=REDUCE,
         covers=(ops.MaxDim,), domains=distinct, extras=dim_keepdim, random_shapes="reduce")
register("min_dim", lambda x, dim, keepdim: tuple(x.min(dim, keepdim=keepdim)),
         shapes=REDUCE, covers=(ops.MaxDim,), domains=distinct, extras=dim_keepdim,
         random_shapes="reduce")
register("max_dim_values", lambda x: x.max(1).values * x.min(dim=0).values.sum(),
         shapes=[((3, 4),)], covers=(ops.MaxDim, ops.Mul, ops.Sum), domains=distinct)
register("amax", lambda x, dims, keepdim: x.amax(dims, keepdim), shapes=REDUCE,
         covers=(ops.AmaxAmin,), domains=distinct, extras=dims_keepdim, random_shapes="reduce")
register("amin", lambda x, dim, keepdim: hg.amin(x, dim, keepdim),
         ref=lambda x, dim, keepdim: torch.amin(x, dim, keepdim), shapes=REDUCE,
         covers=(ops.AmaxAmin,), domains=distinct, extras=dim_keepdim, random_shapes="reduce")
register("amax_all", lambda x: x.amax() + x.amin(), shapes=UNARY, covers=(ops.AmaxAmin,),
         domains=distinct)
register("logsumexp", lambda x, dim, keepdim: x.logsumexp(dim, keepdim), shapes=REDUCE,
         covers=(ops.LogSumExp,), extras=dim_keepdim, random_shapes="reduce",
         composed=_composed_logsumexp)
register("logsumexp_dims", lambda x, dims, keepdim: hg.logsumexp(x, dims, keepdim),
         ref=lambda x, dims, keepdim: torch.logsumexp(x, dims, keepdim), shapes=REDUCE,
         covers=(ops.LogSumExp,), extras=dims_keepdim, composed=_composed_logsumexp)
register("logsumexp_large", lambda x: (x * 300).logsumexp(-1), shapes=REDUCE,
         covers=(ops.LogSumExp, ops.Mul), note="large inputs: the max shift keeps it finite",
         composed=lambda x: _composed_logsumexp(x * 300, -1))
register("softmax", lambda x, dim, keepdim: x.softmax(dim), shapes=REDUCE,
         covers=(ops.Softmax,), extras=dim_keepdim, random_shapes="reduce",
         composed=lambda x, dim, keepdim: _composed_softmax(x, dim))
register("softmax_function", lambda x: hg.softmax(x * 50, -1),
         ref=lambda x: torch.softmax(x * 50, -1), shapes=REDUCE, covers=(ops.Softmax,),
         composed=lambda x: _composed_softmax(x * 50, -1))
register("log_softmax", lambda x, dim, keepdim: x.log_softmax(dim), shapes=REDUCE,
         covers=(ops.LogSoftmax,), extras=dim_keepdim, random_shapes="reduce",
         composed=lambda x, dim, keepdim: _composed_log_softmax(x, dim))
register("log_softmax_function", lambda x: hg.log_softmax(x * 50, 0),
         ref=lambda x: torch.log_softmax(x * 50, 0), shapes=REDUCE, covers=(ops.LogSoftmax,),
         composed=lambda x: _composed_log_softmax(x * 50, 0))

# ============================================================================ movement
register("reshape", lambda x: x.reshape(2, -1, 3).reshape(x.shape[::-1]),
         shapes=[((3, 4),), ((6, 2),), ((2, 3, 2),)], covers=(ops.Reshape,))
register("reshape_scalar", lambda x: x.reshape(1, 1).reshape(()), shapes=[((),)],
         covers=(ops.Reshape,))
register("view", lambda x: x.view(-1) * x.view(x.numel(), 1).view(-1), shapes=UNARY,
         covers=(ops.Reshape,), noncontiguous=False,
         note="view refuses non-contiguous inputs, as torch does")
register("flatten", lambda x: x.flatten() + hg.flatten(x, 0, -1),
         ref=lambda x: x.flatten() + torch.flatten(x, 0, -1), shapes=UNARY,
         covers=(ops.Reshape,), random_shapes="unary")
register("flatten_start", lambda x: x.flatten(1), shapes=[((2, 3, 4),), ((3, 1),)],
         covers=(ops.Reshape,))
register("unflatten", lambda x: x.unflatten(1, (2, 2)), shapes=[((3, 4),), ((2, 4, 3),)],
         covers=(ops.Reshape,))
register("squeeze", lambda x: x.squeeze(), shapes=[((3, 1, 4),), ((1,),), ((1, 1),), ((),)],
         covers=(ops.Reshape,))
register("squeeze_dim", lambda x: x.squeeze(1).squeeze(-1), shapes=[((3, 1, 1),), ((3, 4),)],
         covers=(ops.Reshape,))
register("unsqueeze", lambda x: x.unsqueeze(0).unsqueeze(-1) + hg.unsqueeze(x, 0)[..., None],
         ref=lambda x: x.unsqueeze(0).unsqueeze(-1) + torch.unsqueeze(x, 0)[..., None],
         shapes=UNARY, covers=(ops.Reshape, ops.GetItem))
register("transpose", lambda x: x.transpose(0, -1), shapes=[((3, 4),), ((2, 3, 4),)],
         covers=(ops.Transpose,))
register("permute", lambda x: x.permute(2, 0, 1) + hg.permute(x, (2, 0, 1)),
         ref=lambda x: x.permute(2, 0, 1) + torch.permute(x, (2, 0, 1)),
         shapes=[((2, 3, 4),)], covers=(ops.Permute,))
register("T", lambda x: x.T, shapes=[((3, 4),), ((1, 5),)], covers=(ops.Permute,))
register("mT", lambda x: x.mT, shapes=[((3, 4),), ((2, 3, 4),)], covers=(ops.Transpose,))
register("t", lambda x: x.t(), shapes=[((3, 4),)], covers=(ops.Permute,))
register("expand", lambda x: x.expand(2, 3, 4) * 1.0, shapes=[((3, 1),), ((4,),), ((),),
                                                               ((1, 3, 4),)],
         covers=(ops.Expand,))
register("expand_minus_one", lambda x: x.expand(2, -1, 4), shapes=[((3, 1),)],
         covers=(ops.Expand,))
register("broadcast_to", lambda x: hg.broadcast_to(x, (2, 3, 4)),
         ref=lambda x: torch.broadcast_to(x, (2, 3, 4)), shapes=[((3, 1),), ((4,),)],
         covers=(ops.Expand,))
register("expand_as", lambda x, y: x.expand_as(y) * y, shapes=[((3, 1), (2, 3, 4))],
         covers=(ops.Expand, ops.Mul))


# ---- indexing
def _index_extras(make):
    """Extras that are only an index built from a generator and the input shape."""
    return lambda gen, shapes: (make(gen, shapes[0]),)


register("getitem_int", lambda x: x[1] + x[-1], shapes=[((3, 4),), ((2, 3, 4),), ((3,),)],
         covers=(ops.GetItem,))
register("getitem_slices", lambda x: x[::2, 1:], shapes=[((5, 4),), ((4, 3, 2),)],
         covers=(ops.GetItem,))
register("getitem_steps", lambda x: x[1::3, :-1:2], shapes=[((7, 6),)], covers=(ops.GetItem,))
register("getitem_mixed", lambda x: x[-1, 1:3], shapes=[((3, 4),), ((2, 3, 4),)],
         covers=(ops.GetItem,))
register("getitem_none_ellipsis", lambda x: x[None, ..., 1] * x[..., None, ::2][..., :1],
         shapes=[((3, 4),), ((2, 3, 4),)], covers=(ops.GetItem, ops.Mul))
register("getitem_scalar_result", lambda x: x[1, 2], shapes=[((3, 4),)],
         covers=(ops.GetItem,))
register("getitem_bool_mask", lambda x, mask: x[mask], shapes=[((3, 4),), ((5,),),
                                                                ((2, 3, 4),)],
         covers=(ops.GetItem,),
         extras=_index_extras(lambda gen, shape: torch.rand(shape, generator=gen) < 0.5))
register("getitem_bool_rows", lambda x, mask: x[mask], shapes=[((4, 3),), ((4, 2, 3),)],
         covers=(ops.GetItem,),
         extras=_index_extras(lambda gen, shape: torch.tensor([True, False, True, True])))
register("getitem_int_tensor", lambda x, index: x[index], shapes=[((4, 3),), ((5,),)],
         covers=(ops.GetItem,),
         extras=_index_extras(lambda gen, shape: torch.randint(
             -shape[0], shape[0], (7,), generator=gen)),
         note="7 indices into at most 5 rows: repeats are certain")
register("getitem_int_tensor_2d", lambda x, index: x[index], shapes=[((4, 3),)],
         covers=(ops.GetItem,),
         extras=_index_extras(lambda gen, shape: torch.tensor([[0, 2], [2, 2], [3, 0]])))
register("getitem_columns", lambda x, index: x[:, index], shapes=[((3, 4),), ((2, 4, 3),)],
         covers=(ops.GetItem,),
         extras=_index_extras(lambda gen, shape: torch.tensor([1, 1, 0, 3])[: shape[1]]))
register("getitem_pairs", lambda x, rows, cols: x[rows, cols], shapes=[((3, 4),)],
         covers=(ops.GetItem,),
         extras=lambda gen, shapes: (torch.tensor([0, 2, 2, 1]), torch.tensor([3, 3, 3, 0])))
register("select_narrow_unbind", lambda x: x.select(1, 2) + x.narrow(1, 0, 2).sum(1)
         + x.unbind(1)[0], shapes=[((3, 4),)], covers=(ops.GetItem, ops.Sum))

register("cat", lambda a, b, c: hg.cat([a, b, c]), ref=lambda a, b, c: torch.cat([a, b, c]),
         shapes=[((2, 3), (4, 3), (1, 3)), ((2,), (1,), (3,))], covers=(ops.Cat,))
register("cat_dim", lambda a, b: hg.cat((a, b), dim=-1), ref=lambda a, b: torch.cat((a, b), -1),
         shapes=[((2, 3), (2, 1)), ((2, 3, 4), (2, 3, 2))], covers=(ops.Cat,))
register("stack", lambda a, b: hg.stack([a, b], dim=1), ref=lambda a, b: torch.stack([a, b], 1),
         shapes=[((2, 3), (2, 3)), ((4,), (4,))], covers=(ops.Stack,))
register("stack_scalars", lambda a, b: hg.stack([a, b]), ref=lambda a, b: torch.stack([a, b]),
         shapes=[((), ())], covers=(ops.Stack,))
register("stack_last", lambda a, b, c: hg.stack([a, b, c], dim=-1),
         ref=lambda a, b, c: torch.stack([a, b, c], -1), shapes=[((2, 3),) * 3],
         covers=(ops.Stack,))
register("split", lambda x: x.split(2, dim=1), shapes=[((3, 5),), ((2, 4, 3),)],
         covers=(ops.GetItem,))
register("split_sizes", lambda x: hg.split(x, [1, 3], dim=0),
         ref=lambda x: torch.split(x, [1, 3], dim=0), shapes=[((4, 3),), ((4,),)],
         covers=(ops.GetItem,))
register("chunk", lambda x: x.chunk(3, dim=-1), shapes=[((3, 5),), ((2, 6),)],
         covers=(ops.GetItem,))
register("pad", lambda x: hg.pad(x, (1, 2)), ref=lambda x: TF.pad(x, (1, 2)),
         shapes=[((3, 4),), ((5,),), ((2, 3, 4),)], covers=(ops.Pad,))
register("pad_value", lambda x: hg.pad(x, (1, 0, 2, 1), value=0.5),
         ref=lambda x: TF.pad(x, (1, 0, 2, 1), value=0.5), shapes=[((3, 4),), ((2, 3, 4),)],
         covers=(ops.Pad,))


def _gather_index(gen, shapes):
    shape = shapes[0]
    dim = _randint(gen, 0, len(shape))
    index_shape = list(shape)
    index_shape[dim] = 5  # longer than the dim: repeated indices are certain
    return dim, torch.randint(0, shape[dim], index_shape, generator=gen)


register("gather", lambda x, dim, index: x.gather(dim, index) + hg.gather(x, dim, index),
         ref=lambda x, dim, index: x.gather(dim, index) + torch.gather(x, dim, index),
         shapes=[((3, 4),), ((2, 3, 4),), ((4,),)], covers=(ops.Gather,), extras=_gather_index,
         random_shapes="reduce")


def _index_select_extras(gen, shapes):
    shape = shapes[0]
    dim = _randint(gen, 0, len(shape))
    return dim, torch.randint(0, shape[dim], (5,), generator=gen)  # 5 > size: repeats


register("index_select", lambda x, dim, index: x.index_select(dim, index), shapes=REDUCE,
         covers=(ops.IndexSelect,), extras=_index_select_extras, random_shapes="reduce")

register("index_select_function", lambda x, index: hg.index_select(x, -1, index),
         ref=lambda x, index: torch.index_select(x, -1, index), shapes=[((3, 4),)],
         covers=(ops.IndexSelect,), extras=lambda gen, shapes: (torch.tensor([3, 0, 3]),))
register("repeat", lambda x: x.repeat(2, 3), shapes=[((3, 4),), ((4,),), ((),)],
         covers=(ops.Repeat,))
register("repeat_more_dims", lambda x: x.repeat(2, 1, 3), shapes=[((3, 4),), ((2, 3, 1),)],
         covers=(ops.Repeat,))
register("flip", lambda x: x.flip(0) + hg.flip(x, (0, -1)),
         ref=lambda x: x.flip(0) + torch.flip(x, (0, -1)), shapes=[((3, 4),), ((2, 3, 4),)],
         covers=(ops.Flip,))
register("flip_1d", lambda x: x.flip(0), shapes=[((5,),)], covers=(ops.Flip,))
register("tril_triu", lambda x: x.tril() + x.triu(1) * 2 + hg.tril(x, -1) * hg.triu(x, -1),
         ref=lambda x: x.tril() + x.triu(1) * 2 + torch.tril(x, -1) * torch.triu(x, -1),
         shapes=[((4, 4),), ((3, 5),), ((2, 3, 4),)], covers=(ops.Tril, ops.Triu))

# ============================================================================ matmul
register("matmul", lambda a, b: a @ b, shapes=[
    ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)), ((2, 3, 4), (4, 5)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
    ((3, 4), (2, 4, 5)), ((1, 3), (3, 1)),
], covers=(ops.Matmul,))
register("matmul_function", lambda a, b: hg.matmul(a, b) + a.matmul(b),
         ref=lambda a, b: torch.matmul(a, b) + a.matmul(b),
         shapes=[((3, 4), (4, 5)), ((2, 3, 4), (4,))], covers=(ops.Matmul,))
register("rmatmul", lambda a, b: b.__rmatmul__(a), shapes=[((3, 4), (4, 2))],
         covers=(ops.Matmul,))
