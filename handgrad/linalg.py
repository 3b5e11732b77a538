"""handgrad.linalg, as torch.linalg: the vector and matrix norms.

vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None): ord >= 1 and inf run
handgrad.ops.reduce.Norm, ord < 1 and -inf run handgrad.ops.linalg.NormSmallOrder (both
derive their gradients in their docstrings; the gradient of the 2-norm at a zero input
is 0, as torch). matrix_norm(A, ord='fro', dim=(-2, -1), ...): 'fro' is the vector 2-norm
over the two dims; ord = 1 / -1 is the largest / smallest column sum of |A|, ord = inf /
-inf the largest / smallest row sum, written with abs, sum and amax / amin (ties share
the gradient evenly, as torch); 'nuc', 2 and -2 come from the singular values
(handgrad.ops.linalg.SingularValueNorm). norm(A, ord=None, dim=None, ...) picks one of the two by
torch's rules. Also as torch.linalg: vecdot, matmul, multi_dot and diagonal, written
with handgrad's ops (their gradients are those ops').

Left out: the rest of torch.linalg (solve, inv, det, svd, qr, eig, ...).
"""

from __future__ import annotations

from handgrad import ops as F
from handgrad._tensor import Tensor
from handgrad.ops.linalg import NormSmallOrder, SingularValueNorm
from handgrad.ops.matrix_functions import MatrixExp, Solve
from handgrad.ops.reduce import wrap_dim

__all__ = ["vector_norm", "matrix_norm", "norm", "vecdot", "matmul", "multi_dot", "diagonal",
           "matrix_exp", "solve"]

_INF = float("inf")


def _floating(op: str, x: Tensor, dtype) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a handgrad Tensor, got {type(x).__name__}")
    if dtype is not None:
        if not (dtype.is_floating_point or dtype.is_complex):
            raise RuntimeError(f"{op}: dtype should be floating point or complex, got "
                               f"{dtype}")
        x = x.to(dtype)
    if not (x.is_floating_point() or x.data.is_complex()):
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. "
                           f"Got {x.dtype}; convert it first, e.g. x.float()")
    return x


def _dims(op: str, dim, ndim: int) -> tuple:
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):  # () is every dim
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    try:
        wrapped = tuple(wrap_dim(d, ndim) for d in dims)
    except IndexError as error:
        raise IndexError(f"{op}: {error}") from None
    if len(set(wrapped)) != len(wrapped):
        raise RuntimeError(f"{op}: dim {dims} names a dimension more than once")
    return tuple(sorted(wrapped)) if ndim else ()


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """(sum |x|^ord)^(1/ord) over dim (every element when None), as torch.linalg."""
    x = _floating("linalg.vector_norm", x, dtype)
    if isinstance(ord, str) or isinstance(ord, bool) or not isinstance(ord, int | float):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}; "
                           "for 'fro' or 'nuc' use linalg.matrix_norm")
    dims = _dims("linalg.vector_norm", dim, x.ndim)
    if ord >= 1:
        return F.Norm.apply(x, ord, dims if dims else None, keepdim)
    return NormSmallOrder.apply(x, ord, dims, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):  # noqa: A002
    """The norm of the matrices over the two dims `dim`: 'fro', 1, -1, inf, -inf."""
    A = _floating("linalg.matrix_norm", A, dtype)
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: the input tensor A must have at least 2 "
                           f"dimensions, got shape {tuple(A.shape)}")
    dims = tuple(dim) if not isinstance(dim, int) else (dim,)
    if len(dims) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple, got {dim!r}")
    rows, cols = (_wrap("linalg.matrix_norm", d, A.ndim) for d in dims)
    if rows == cols:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different, got {dim!r}")
    if ord == "fro":
        return vector_norm(A, 2, (rows, cols), keepdim)
    if ord in ("nuc", 2, -2):
        others = [d for d in range(A.ndim) if d not in (rows, cols)]
        moved = A.permute(*others, rows, cols) if (rows, cols) != (A.ndim - 2, A.ndim - 1) \
            else A
        out = SingularValueNorm.apply(moved, ord)
        if keepdim:
            for d in sorted((rows, cols)):
                out = out.unsqueeze(d)
        return out
    if ord in (1, -1):
        summed, over = A.abs().sum(rows, keepdim=True), cols  # column sums
    elif ord in (_INF, -_INF):
        summed, over = A.abs().sum(cols, keepdim=True), rows  # row sums
    else:
        raise RuntimeError(f"linalg.matrix_norm: order {ord!r} not supported; use 'fro', "
                           "'nuc', 1, -1, 2, -2, inf or -inf")
    reduce = summed.amax if ord > 0 else summed.amin
    out = reduce(over, keepdim=True)
    return out if keepdim else out.squeeze((rows, cols))


def _wrap(op: str, d: int, ndim: int) -> int:
    try:
        return wrap_dim(d, ndim)
    except IndexError as error:
        raise IndexError(f"{op}: {error}") from None


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """torch.linalg.norm: a vector norm when dim is an int (or A is 1-D with dim=None),
    a matrix norm when dim is a 2-tuple (or A is 2-D with dim=None and ord given); with
    ord=None and dim=None, the 2-norm of every element."""
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None:
        dim = tuple(dim)
        if len(dim) == 1:
            if isinstance(ord, str):
                raise RuntimeError(f"linalg.norm: ord={ord!r} needs two dims, got dim={dim}")
            return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
        if len(dim) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
        raise RuntimeError(f"linalg.norm: dim must be an int or a tuple of 1 or 2 ints, got "
                           f"{dim}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 1 and not isinstance(ord, str):
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: with ord={ord!r} and dim=None the input must be 1-D "
                       f"or 2-D, got shape {tuple(A.shape)}; pass dim")


def vecdot(x, y, *, dim=-1):
    """sum(x * y) along dim (x and y broadcast), as torch.linalg.vecdot for real tensors."""
    if x.is_complex() or getattr(y, "is_complex", lambda: False)():
        raise NotImplementedError("linalg.vecdot: complex tensors are not supported by "
                                  "handgrad")
    return (x * y).sum(dim)


def matmul(input, other):  # noqa: A002 -- torch's argument name
    """torch.linalg.matmul, the same as handgrad.matmul."""
    return F.Matmul.apply(input, other)


def multi_dot(tensors):
    """tensors[0] @ tensors[1] @ ... (the first may be 1-D, a row; the last 1-D, a
    column; the others 2-D), as torch.linalg.multi_dot, multiplied left to right."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got "
                           f"{len(tensors)}")
    for i, t in enumerate(tensors):
        allowed = (1, 2) if i in (0, len(tensors) - 1) else (2,)
        if t.ndim not in allowed:
            raise RuntimeError(f"multi_dot(): tensor {i} must be "
                               f"{' or '.join(f'{n}D' for n in allowed)} but got "
                               f"{t.ndim}D (shape {tuple(t.shape)})")
    out = tensors[0]
    for t in tensors[1:]:
        out = F.Matmul.apply(out, t)
    return out


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """The diagonals of the matrices in the last two dims, as torch.linalg.diagonal."""
    return A.diagonal(offset, dim1, dim2)


def matrix_exp(A):
    """exp(A) of the square matrices in the last two dims, as torch.linalg.matrix_exp;
    the backward is derived in handgrad/ops/matrix_functions.py."""
    return MatrixExp.apply(A)


def solve(A, B, *, left=True):
    """X with A X = B (A square and invertible, B of shape (..., n, k) with A's batch
    dims), as torch.linalg.solve; the backward is derived in
    handgrad/ops/matrix_functions.py. A vector B, batch broadcasting and left=False are
    refused: write B as a column (B[..., None]) and give A and B the same batch dims."""
    if not left:
        raise NotImplementedError("linalg.solve: left=False is not supported; solve "
                                  "A^T X^T = B^T with left=True and transpose")
    if B.ndim == A.ndim - 1:
        raise RuntimeError(f"linalg.solve: B of shape {tuple(B.shape)} is a vector; "
                           f"handgrad needs B as a column, B.unsqueeze(-1), of shape "
                           f"{tuple(B.shape) + (1,)}")
    return Solve.apply(A, B)
