"""Free functions of the math family, as torch's (`handgrad.f(x, ...)`); they
delegate to the Tensor methods (handgrad/_tensor_math.py) and the ops.

einsum takes torch's three forms: `einsum("ij,jk->ik", a, b)`, the operands as one list
(`einsum("ij,jk", [a, b])`), and the sublist form (`einsum(a, [0, 1], b, [1, 2], [0, 2])`,
integers in [0, 52) and Ellipsis), which is rewritten as an equation.
"""

from __future__ import annotations

import string
import warnings

import torch

from handgrad._tensor import Tensor
from handgrad.autograd import is_grad_enabled
from handgrad.ops.linalg import Einsum

__all__ = [
    "einsum", "mm", "bmm", "addmm", "baddbmm", "addmv", "mv", "dot", "vdot", "outer",
    "ger", "prod", "log1p", "expm1", "lerp", "addcmul", "addcdiv", "trace", "diag",
    "diagonal", "diag_embed", "allclose", "clone", "preserve_format", "contiguous_format",
    "channels_last", "channels_last_3d", "log2", "log10", "reciprocal", "floor", "ceil",
    "round", "trunc", "fix", "fmod", "isinf", "isposinf", "isneginf", "diff",
    "median", "tensordot", "inner", "addbmm", "addr",
    "asin", "acos", "atan", "arcsin", "arccos", "arctan", "sinh", "cosh", "erf", "atan2",
    "arctan2", "bernoulli", "count_nonzero", "remainder", "floor_divide", "sign", "clip", "t",
    "ravel",
    "absolute", "true_divide", "meshgrid", "broadcast_tensors", "broadcast_shapes",
    "tril_indices", "triu_indices", "bincount",
]

# clone's memory formats, torch's own objects (handgrad.channels_last is torch's)
preserve_format = torch.preserve_format
contiguous_format = torch.contiguous_format
channels_last = torch.channels_last
channels_last_3d = torch.channels_last_3d


def _method(name: str):
    def function(x, *args, **kwargs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a handgrad Tensor, got {type(x).__name__}")
        return getattr(x, name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"handgrad.{name}(x, ...) is x.{name}(...)."
    return function


mm = _method("mm")
bmm = _method("bmm")
addmm = _method("addmm")
baddbmm = _method("baddbmm")
addmv = _method("addmv")
mv = _method("mv")
dot = _method("dot")
vdot = _method("vdot")
outer = _method("outer")
ger = _method("ger")
prod = _method("prod")
log1p = _method("log1p")
expm1 = _method("expm1")
asin, acos, atan = _method("asin"), _method("acos"), _method("atan")
arcsin, arccos, arctan = _method("arcsin"), _method("arccos"), _method("arctan")
sinh, cosh, erf = _method("sinh"), _method("cosh"), _method("erf")
atan2, arctan2 = _method("atan2"), _method("arctan2")
bernoulli = _method("bernoulli")
count_nonzero = _method("count_nonzero")
remainder = _method("remainder")
floor_divide = _method("floor_divide")
sign, clip, t, ravel = _method("sign"), _method("clip"), _method("t"), _method("ravel")
absolute, true_divide = _method("absolute"), _method("true_divide")
lerp = _method("lerp")
addcmul = _method("addcmul")
addcdiv = _method("addcdiv")
trace = _method("trace")
diag = _method("diag")
diagonal = _method("diagonal")
diag_embed = _method("diag_embed")
clone = _method("clone")
log2 = _method("log2")
log10 = _method("log10")
reciprocal = _method("reciprocal")
floor = _method("floor")
ceil = _method("ceil")
round = _method("round")  # noqa: A001 -- torch's name
trunc = _method("trunc")
fix = _method("fix")
fmod = _method("fmod")
isinf = _method("isinf")
isposinf = _method("isposinf")
isneginf = _method("isneginf")
diff = _method("diff")
median = _method("median")
inner = _method("inner")
addbmm = _method("addbmm")
addr = _method("addr")


def _sublist_letters(sublist) -> str:
    text = ""
    for item in sublist:
        if item is Ellipsis:
            text += "..."
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 52:
            text += string.ascii_letters[item]
        else:
            raise ValueError(f"einsum(): subscript in a sublist must be an int in [0, 52) "
                             f"or Ellipsis, got {item!r}")
    return text


def einsum(*args) -> Tensor:
    """torch.einsum: the sum of products the equation spells (see handgrad.ops.linalg
    for the backward)."""
    if not args:
        raise TypeError("einsum(): must specify the equation string and at least one "
                        "operand, or at least one operand and its subscripts list")
    if isinstance(args[0], str):
        equation, operands = args[0], args[1:]
        if len(operands) == 1 and isinstance(operands[0], list | tuple):
            operands = tuple(operands[0])
    else:  # sublist form: op, sublist, op, sublist, ..., [output sublist]
        pairs = args[:len(args) - len(args) % 2]
        operands = pairs[0::2]
        equation = ",".join(_sublist_letters(s) for s in pairs[1::2])
        if len(args) % 2:
            equation += "->" + _sublist_letters(args[-1])
    if not operands:
        raise ValueError("einsum(): must provide at least one operand")
    for i, x in enumerate(operands):
        if not isinstance(x, Tensor | torch.Tensor):
            raise TypeError(f"einsum(): operand {i} must be a Tensor, got "
                            f"{type(x).__name__}")
    return Einsum.apply(equation, *operands)


def tensordot(a, b, dims=2) -> Tensor:
    """The contraction of the last `dims` dims of a with the first `dims` of b, or of
    the dims listed in dims = (dims_of_a, dims_of_b), as torch.tensordot (one einsum,
    so one graph node with einsum's backward)."""
    if isinstance(dims, Tensor | torch.Tensor):
        dims = dims.tolist() if dims.ndim else int(dims.item())
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot: dims={dims} is more than the dims of a "
                               f"{tuple(a.shape)} or b {tuple(b.shape)}")
        dims_a, dims_b = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        dims_a, dims_b = ([d] if isinstance(d, int) else list(d) for d in dims)
        if len(dims_a) != len(dims_b):
            raise RuntimeError(f"tensordot: both dimension lists should have the same "
                               f"length, got {dims_a} and {dims_b}")
        dims_a = [d % a.ndim if a.ndim else d for d in dims_a]
        dims_b = [d % b.ndim if b.ndim else d for d in dims_b]
    letters = iter(string.ascii_letters)
    subs_a = [next(letters) for _ in range(a.ndim)]
    subs_b = [next(letters) for _ in range(b.ndim)]
    for da, db in zip(dims_a, dims_b):
        if a.shape[da] != b.shape[db]:
            raise RuntimeError(f"tensordot: contracted dimensions need to match, but first "
                               f"has size {a.shape[da]} in dim {da} and second has size "
                               f"{b.shape[db]} in dim {db}")
        subs_b[db] = subs_a[da]
    out = [c for i, c in enumerate(subs_a) if i not in dims_a] + \
        [c for i, c in enumerate(subs_b) if i not in dims_b]
    return Einsum.apply(f"{''.join(subs_a)},{''.join(subs_b)}->{''.join(out)}", a, b)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:  # noqa: A002
    """|input - other| <= atol + rtol |other| everywhere (a bool, no gradient)."""
    return torch.allclose(_data(input), _data(other), rtol=rtol, atol=atol,
                          equal_nan=equal_nan)


def _data(x):
    return x.data if isinstance(x, Tensor) else x


# ------------------------------------------------------ grids, broadcasting, index lists
broadcast_shapes = torch.broadcast_shapes  # shapes only, torch's own


def broadcast_tensors(*tensors):
    """Each tensor expanded to their common broadcast shape (views; gradients sum back
    over the expanded dims through expand), as torch.broadcast_tensors."""
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t.expand(shape) for t in tensors)


def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 1-d (or 0-d) tensors, as torch.meshgrid: with indexing="ij"
    (the default, with torch's warning when not given) output k varies along dim k; with
    "xy" the first two dims are swapped (Cartesian). Each grid is a view (reshape +
    expand), so gradients sum back into the 1-d inputs."""
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass "
                      "the indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f'meshgrid: indexing must be "ij" or "xy", got {indexing!r}')
    for k, t in enumerate(tensors):
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expects 0D or 1D tensors, got a {t.ndim}-d tensor "
                               f"at position {k} (shape {tuple(t.shape)})")
    if not tensors:
        raise RuntimeError("meshgrid: expects a non-empty list of tensors")
    flat = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(flat) >= 2
    if swap:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.shape[0] for t in flat)
    grids = []
    for k, t in enumerate(flat):
        view = [1] * len(flat)
        view[k] = shape[k]
        grids.append(t.reshape(view).expand(shape))
    if swap:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def tril_indices(row, col, offset=0, *, dtype=torch.long, device=None):
    """The (2, N) row and column indices of the lower triangle, as torch.tril_indices."""
    return Tensor(torch.tril_indices(row, col, offset, dtype=dtype, device=device))


def triu_indices(row, col, offset=0, *, dtype=torch.long, device=None):
    """The (2, N) row and column indices of the upper triangle, as torch.triu_indices."""
    return Tensor(torch.triu_indices(row, col, offset, dtype=dtype, device=device))


def bincount(input, weights=None, minlength=0):  # noqa: A002 -- torch's argument name
    """How often each value 0, 1, ... occurs in a 1-d int tensor (the sum of weights
    there, with weights), as torch.bincount. No gradient: torch has no derivative for
    it, so weights that require grad are refused here rather than at backward."""
    if isinstance(weights, Tensor) and weights.requires_grad and is_grad_enabled():
        raise RuntimeError("bincount: no derivative with respect to weights (torch: "
                           "derivative for aten::bincount is not implemented); pass "
                           "weights.detach(), or write the sum with index_add / "
                           "scatter_add, which have one")
    w = weights.data if isinstance(weights, Tensor) else weights
    return Tensor(torch.bincount(input.data if isinstance(input, Tensor) else input, w,
                                 minlength))
