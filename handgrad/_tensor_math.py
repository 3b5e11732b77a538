"""Tensor methods of the math family, as a mixin of handgrad.Tensor (kept out of
_tensor.py so that file stays readable; the ops themselves live in handgrad/ops/).

Here: the matrix products with torch's strict shapes (mm, bmm, mv, dot, vdot, outer /
ger, inner) and their scaled-add forms (addmm, baddbmm, addbmm, addmv, addr, addcmul,
addcdiv), prod, median, log1p, expm1, log2, log10, reciprocal, lerp, fmod, floor / ceil /
round / trunc (gradient 0), diff, trace, diag, diagonal, diag_embed, norm (every vector
order, 'fro'; handgrad.linalg has the matrix norms), isinf / isposinf / isneginf, exp_,
clone with a memory format, byte (uint8) and ndimension, asin / acos / atan, sinh / cosh,
erf and atan2 (handgrad/ops/trig.py), bernoulli (gradient 0) and count_nonzero.

The products reuse Matmul (its backward is dA = g B^T, dB = A^T g); the scaled adds are
written with Mul and Add, whose gradients are the table of derivatives they mean
(d(beta input + alpha m1 m2) = beta g, alpha g m2^T, alpha m1^T g). As in torch, beta = 0
ignores `input` (a nan or inf in it does not reach the result) and gives it a zero
gradient, as torch does.

This module must not import handgrad._tensor at import time (that module imports this
one): results are made with Function.apply or `self._result_type._make(data, False,
None)`.
"""

from __future__ import annotations

import torch

from handgrad.autograd.grad_mode import is_grad_enabled
from handgrad.ops.arith import (
    CloneFormat,
    Expm1,
    FloorDivide,
    Fmod,
    Lerp,
    Log1p,
    LogBase,
    MedianAll,
    MedianDim,
    Prod,
    Reciprocal,
    Remainder,
    Rounding,
)
from handgrad.ops.bernoulli import Bernoulli
from handgrad.ops.elementwise import Clone, Mul, Where
from handgrad.ops.linalg import DiagEmbed, Diagonal
from handgrad.ops.matmul import Matmul
from handgrad.ops.reduce import wrap_dim
from handgrad.ops.trig import Acos, Asin, Atan, Atan2, Cosh, Erf, Sinh

__all__: list[str] = []


def _unary_inplace(name: str):
    """x.name_(): in place x.name() (recorded as name when x is in the graph, as exp_)."""
    def method(self):
        if self._check_inplace(f"{name}_"):
            return self._rebind(getattr(self, name)(), f"{name}_")
        getattr(self.data, f"{name}_")()
        return self

    method.__name__ = method.__qualname__ = f"{name}_"
    method.__doc__ = f"In place {name} (as torch's Tensor.{name}_)."
    return method


def _rank(op: str, x, ndim: int, what: str) -> None:
    """torch's RuntimeError for an input of the wrong rank (mm, bmm, mv, dot...)."""
    if x.ndim != ndim:
        raise RuntimeError(f"{op}: {what} must be a {ndim}-D tensor, got shape "
                           f"{tuple(x.shape)}; reshape it, or use matmul (which "
                           "broadcasts)")


def _same_dtype(op: str, a, b) -> None:
    if a.dtype != b.dtype:
        raise RuntimeError(f"{op}: expected both inputs to have the same dtype, got "
                           f"{a.dtype} and {b.dtype}; convert one, e.g. with .to(x.dtype)")


def _scaled_add(op: str, input, product, beta, alpha):
    """beta * input + alpha * product, as torch: beta = 0 ignores input (nan included),
    but input must still broadcast to the product's shape."""
    shape = tuple(product.shape)
    if torch.broadcast_shapes(tuple(input.shape), shape) != torch.Size(shape):
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} does not broadcast "
                           f"to the product's shape {shape}")
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:
        if not (input.requires_grad and is_grad_enabled()):
            return scaled
        # as torch: input's values never reach the result, but it gets a zero gradient
        # (where(False, input, 0) is 0 with gradient 0, a nan in input included)
        never = torch.zeros(input.shape, dtype=torch.bool, device=input.device)
        return scaled + Where.apply(never, input, 0.0)
    return scaled + (input if beta == 1 else input * beta)


def _number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


class _MathMethods:
    __slots__ = ()

    # ------------------------------------------------------------------ products
    def mm(self, mat2):
        """The matrix product of two 2-D tensors (no broadcasting), as torch.mm."""
        _rank("mm", self, 2, "self")
        _rank("mm", mat2, 2, "mat2")
        if self.shape[1] != mat2.shape[0]:
            raise RuntimeError(f"mm: mat1 and mat2 shapes cannot be multiplied "
                               f"({self.shape[0]}x{self.shape[1]} and "
                               f"{mat2.shape[0]}x{mat2.shape[1]})")
        _same_dtype("mm", self, mat2)
        return Matmul.apply(self, mat2)

    def bmm(self, mat2):
        """Batched matrix product of (b, n, m) and (b, m, p) tensors (no broadcasting)."""
        _rank("bmm", self, 3, "batch1")
        _rank("bmm", mat2, 3, "batch2")
        if self.shape[0] != mat2.shape[0] or self.shape[2] != mat2.shape[1]:
            raise RuntimeError(f"bmm: batch1 of shape {tuple(self.shape)} and batch2 of "
                               f"shape {tuple(mat2.shape)} cannot be multiplied (expected "
                               "(b, n, m) and (b, m, p))")
        _same_dtype("bmm", self, mat2)
        return Matmul.apply(self, mat2)

    def mv(self, vec):
        """Matrix (n, m) times vector (m,), as torch.mv."""
        _rank("mv", self, 2, "self")
        _rank("mv", vec, 1, "vec")
        if self.shape[1] != vec.shape[0]:
            raise RuntimeError(f"mv: size mismatch, matrix {tuple(self.shape)} and vector "
                               f"{tuple(vec.shape)}")
        _same_dtype("mv", self, vec)
        return Matmul.apply(self, vec)

    def dot(self, other):
        """The inner product of two 1-D tensors of the same size, as torch.dot."""
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"dot: 1D tensors expected, but got {self.ndim}D and "
                               f"{other.ndim}D tensors")
        if self.shape[0] != other.shape[0]:
            raise RuntimeError(f"dot: inconsistent tensor size, expected tensor "
                               f"[{self.shape[0]}] and src [{other.shape[0]}] to have the "
                               "same number of elements")
        _same_dtype("dot", self, other)
        return Matmul.apply(self, other)

    def vdot(self, other):
        """dot with the first argument conjugated; for real tensors the same as dot."""
        if self.is_complex():
            raise NotImplementedError("vdot: complex tensors are not supported by handgrad")
        return self.dot(other)

    def outer(self, vec2):
        """out[i, j] = self[i] vec2[j] for two 1-D tensors (through Mul)."""
        if self.ndim != 1 or vec2.ndim != 1:
            raise RuntimeError(f"outer: 1D tensors expected, got shapes {tuple(self.shape)} "
                               f"and {tuple(vec2.shape)}")
        return Mul.apply(self.reshape(-1, 1), vec2.reshape(1, -1))

    ger = outer

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        """beta * self + alpha * (mat1 @ mat2)."""
        return _scaled_add("addmm", self, mat1.mm(mat2), beta, alpha)

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        """beta * self + alpha * bmm(batch1, batch2)."""
        return _scaled_add("baddbmm", self, batch1.bmm(batch2), beta, alpha)

    def addmv(self, mat, vec, *, beta=1, alpha=1):
        """beta * self + alpha * (mat @ vec)."""
        return _scaled_add("addmv", self, mat.mv(vec), beta, alpha)

    def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
        """beta * self + alpha * sum over the batch of bmm(batch1, batch2)."""
        return _scaled_add("addbmm", self, batch1.bmm(batch2).sum(0), beta, alpha)

    def addr(self, vec1, vec2, *, beta=1, alpha=1):
        """beta * self + alpha * outer(vec1, vec2)."""
        return _scaled_add("addr", self, vec1.outer(vec2), beta, alpha)

    def inner(self, other):
        """The sum over the last dim of both (out shape: self's other dims, then other's),
        as torch.inner; a 0-d operand multiplies."""
        if self.ndim == 0 or other.ndim == 0:
            return self * other
        if self.shape[-1] != other.shape[-1]:
            raise RuntimeError(f"inner() the last dimension must match on both input "
                               f"tensors but got shapes {tuple(self.shape)} and "
                               f"{tuple(other.shape)}")
        from handgrad._functions_math import tensordot
        return tensordot(self, other, ([-1], [-1]))

    def addcmul(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 * tensor2."""
        product = tensor1 * tensor2
        return self + (product if value == 1 else product * value)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 / tensor2 (integer inputs are refused, as torch)."""
        if not (tensor1.is_floating_point() or tensor1.is_complex()) and \
                not (tensor2.is_floating_point() or tensor2.is_complex()):
            raise RuntimeError("addcdiv: integer division of tensors using addcdiv is no "
                               "longer supported; convert tensor1 or tensor2 to a float")
        quotient = tensor1 / tensor2
        return self + (quotient if value == 1 else quotient * value)

    def is_complex(self) -> bool:
        return self.data.is_complex()

    # ------------------------------------------------------------------ elementwise
    def log1p(self):
        return Log1p.apply(self)

    def expm1(self):
        return Expm1.apply(self)

    def lerp(self, end, weight):
        """self + weight * (end - self); weight a number or a tensor."""
        return Lerp.apply(self, end, weight)

    def log2(self):
        return LogBase.apply(self, 2)

    def log10(self):
        return LogBase.apply(self, 10)

    def reciprocal(self):
        return Reciprocal.apply(self)

    def floor(self):
        """Rounded down; the gradient is 0 (piecewise constant), as torch."""
        return self._rounded("floor")

    def ceil(self):
        return self._rounded("ceil")

    def trunc(self):
        return self._rounded("trunc")

    fix = trunc

    def round(self, *, decimals=0):
        """Rounded half to even (torch.round), to `decimals` places; the gradient is 0."""
        return self._rounded("round", decimals)

    def _rounded(self, mode, decimals=0):
        if not (self.data.is_floating_point() or self.data.is_complex()):
            if mode == "round" and decimals:
                raise RuntimeError(f"round: decimals={decimals} is not supported for "
                                   f"{self.dtype} tensors (as torch); convert first")
            return self._result_type._make(self.data.clone(), False, None)
        return Rounding.apply(self, mode, decimals)

    def fmod(self, other):
        """The remainder of self / other with the sign of self (C's fmod)."""
        return Fmod.apply(self, other)

    def remainder(self, other):
        """self % other: the remainder with the sign of other (Python's %)."""
        return Remainder.apply(self, other)

    def floor_divide(self, other):
        """self // other = floor(self / other); its gradient is 0 (ops/arith.FloorDivide)."""
        return FloorDivide.apply(self, other)

    def isinf(self):
        return self._result_type._make(torch.isinf(self.data), False, None)

    def isposinf(self):
        return self._result_type._make(torch.isposinf(self.data), False, None)

    def isneginf(self):
        return self._result_type._make(torch.isneginf(self.data), False, None)

    # in place forms of unary ops, as exp_ below: recorded as the op when self is in the
    # graph, else torch's in-place op on the data
    abs_ = _unary_inplace("abs")
    neg_ = _unary_inplace("neg")
    sqrt_ = _unary_inplace("sqrt")
    square_ = _unary_inplace("square")
    log_ = _unary_inplace("log")
    sin_ = _unary_inplace("sin")
    cos_ = _unary_inplace("cos")
    tanh_ = _unary_inplace("tanh")
    sigmoid_ = _unary_inplace("sigmoid")
    relu_ = _unary_inplace("relu")

    def pow_(self, exponent):
        """In place self ** exponent (recorded as pow when self or exponent is in the
        graph)."""
        if self._check_inplace("pow_", exponent):
            return self._rebind(self.pow(exponent), "pow_")
        self.data.pow_(exponent.data if hasattr(exponent, "data") else exponent)
        return self

    def absolute(self):
        return self.abs()

    def bincount(self, weights=None, minlength=0):
        """As handgrad.bincount(self, weights, minlength): counts, no gradient."""
        from handgrad._functions_math import bincount
        return bincount(self, weights, minlength)

    def true_divide(self, other):
        return self / other

    def ravel(self):
        """self flattened to 1-d (a view when it can be, as torch.ravel)."""
        return self.reshape(-1)

    nbytes = property(lambda self: self.data.nbytes)
    itemsize = property(lambda self: self.data.itemsize)

    def exp_(self):
        """In place e^x (recorded as exp when self is in the graph; see Tensor.add_)."""
        if self._check_inplace("exp_"):
            return self._rebind(self.exp(), "exp_")
        self.data.exp_()
        return self

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The n-th forward difference along dim, out_i = x_{i+1} - x_i (applied n times),
        after joining prepend / append to x along dim, as torch.diff; its gradient comes
        from the slices and the subtraction."""
        from handgrad._functions import cat
        if self.ndim == 0:
            raise RuntimeError("diff: expects input to be at least one-dimensional")
        try:
            dim = wrap_dim(dim, self.ndim)
        except IndexError as error:
            raise IndexError(f"diff: {error}") from None
        if n < 0:
            raise RuntimeError(f"diff: order must be non-negative but got {n}")
        edges = [e for e in (prepend, append) if e is not None]
        if any(e.ndim != self.ndim for e in edges):
            raise RuntimeError(f"diff: expects prepend or append to be the same dimension as "
                               f"input (shape {tuple(self.shape)}), got shapes "
                               f"{[tuple(e.shape) for e in edges]}")
        x = self
        if edges:
            x = cat([prepend] * (prepend is not None) + [x] + [append] * (append is not None),
                    dim)
        for _ in range(n):
            length = x.shape[dim]
            if length == 0:
                break
            x = x.narrow(dim, 1, length - 1) - x.narrow(dim, 0, length - 1)
        return x

    # ------------------------------------------------------------------ reductions
    def prod(self, dim=None, keepdim=False, *, dtype=None):
        """The product over dim (every element when None); dtype: cast first, as torch.
        The gradient is exact with zeros in self."""
        x = self if dtype is None else self.to(dtype)
        if dim is not None:
            if not isinstance(dim, int) or isinstance(dim, bool):
                raise TypeError(f"prod: dim must be an int, got {dim!r} (torch.prod reduces "
                                "one dim at a time)")
            try:
                dim = wrap_dim(dim, self.ndim)
            except IndexError as error:
                raise IndexError(f"prod: {error}") from None
        return Prod.apply(x, dim, keepdim)

    def median(self, dim=None, keepdim=False):
        """median() -> the lower median of every element; median(dim) -> (values,
        indices) along dim, as torch (values carry the gradient)."""
        if dim is None:
            return MedianAll.apply(self)
        try:
            dim = wrap_dim(dim, self.ndim)
        except IndexError as error:
            raise IndexError(f"median: {error}") from None
        from handgrad._tensor import _ValuesIndices
        return _ValuesIndices(MedianDim.apply(self, dim, bool(keepdim)))

    def trace(self):
        """The sum of the main diagonal of a 2-D tensor."""
        if self.ndim != 2:
            raise RuntimeError(f"trace: expected a matrix, but got tensor with shape "
                               f"{tuple(self.shape)}")
        return Diagonal.apply(self, 0, 0, 1).sum()

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return Diagonal.apply(self, offset, dim1, dim2)

    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        return DiagEmbed.apply(self, offset, dim1, dim2)

    def diag(self, diagonal=0):
        """1-D -> the square matrix with self on that diagonal; 2-D -> that diagonal."""
        if self.ndim == 1:
            return DiagEmbed.apply(self, diagonal, 0, 1)
        if self.ndim == 2:
            return Diagonal.apply(self, diagonal, 0, 1)
        raise RuntimeError(f"diag: expected a 1-D or 2-D tensor, got shape "
                           f"{tuple(self.shape)}")

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """torch.norm: a vector norm of order p over dim (every element when None);
        p = 'fro' is the 2-norm (over two dims: the Frobenius norm of those matrices).
        The gradient is 0 at a zero input for p = 2, as torch."""
        from handgrad import linalg
        if p is None:
            p = 2
        if isinstance(p, str):
            if p == "nuc":
                if dim is None and self.ndim != 2:
                    raise RuntimeError(f"norm: p='nuc' with dim=None needs a 2-D tensor, "
                                       f"got shape {tuple(self.shape)}; pass dim=(d1, d2)")
                return linalg.matrix_norm(self, "nuc", (-2, -1) if dim is None else dim,
                                          keepdim, dtype=dtype)
            if p != "fro":
                raise RuntimeError(f"norm: p must be a number, 'fro' or 'nuc', got {p!r}")
            p = 2
        if dim is not None and not isinstance(dim, int):
            dim = tuple(dim)
        return linalg.vector_norm(self, p, dim, keepdim, dtype=dtype)

    # ------------------------------------------------------------------ copies
    def clone(self, *, memory_format=torch.preserve_format):
        """A copy (in the graph: dx = g); memory_format as torch (preserve_format keeps
        the strides of a dense tensor, contiguous_format / channels_last lay it out)."""
        if memory_format is torch.preserve_format:
            return Clone.apply(self)  # torch's clone preserves the format by default
        return CloneFormat.apply(self, memory_format)

    # ------------------------------------------------------------------ dtype, rank
    def byte(self):
        """self as uint8 (torch's Tensor.byte; floats are truncated toward 0, and out of
        range values wrap as torch's cast does). No gradient, as for every integer."""
        return self.to(torch.uint8)

    def ndimension(self) -> int:
        """The number of dims (torch's older name for dim())."""
        return self.data.ndim

    # ---------------------------------------- inverse trigonometric, hyperbolic, erf
    def asin(self):
        return Asin.apply(self)

    def acos(self):
        return Acos.apply(self)

    def atan(self):
        return Atan.apply(self)

    arcsin, arccos, arctan = asin, acos, atan  # torch's numpy-style aliases

    def sinh(self):
        return Sinh.apply(self)

    def cosh(self):
        return Cosh.apply(self)

    def erf(self):
        return Erf.apply(self)

    def atan2(self, other):
        """The angle of the point (other, self), in (-pi, pi], as torch.atan2(self, other)."""
        return Atan2.apply(self, other)

    arctan2 = atan2

    # ------------------------------------------------------------ draws, counts
    def bernoulli(self, p=None, *, generator=None):
        """0 / 1 draws, 1 with probability self (or with the number p, in self's shape),
        as torch.bernoulli: the same draws for the same seed, gradient 0 (torch's)."""
        return Bernoulli.apply(self, p, generator)

    def count_nonzero(self, dim=None):
        """The number of nonzero elements (along dim: an int or a tuple), int64, no
        gradient, as torch.count_nonzero."""
        return self._result_type._make(torch.count_nonzero(self.data, dim=dim), False, None)
