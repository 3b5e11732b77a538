"""Registry entries for the math breadth: einsum (matrix products, implicit output,
ellipsis with broadcast batches, diagonals, letters summed out in one operand only,
size-1 broadcasting, three operands, the list and sublist forms), mm / bmm / mv / dot /
vdot / outer / ger and their scaled adds (addmm, baddbmm, addmv, addcmul, addcdiv), prod
(all, along a dim, with exact zeros), log1p, expm1, lerp, trace, diag, diagonal,
diag_embed, log2 / log10 / reciprocal, the roundings (gradient 0), fmod, diff, median, the norms
(Tensor.norm of every vector order, linalg.vector_norm, linalg.matrix_norm, linalg.norm)
and the dtype= / memory_format= arguments of sum, softmax, log_softmax and clone.

Inputs of max-like norms (inf, -inf, matrix 1 / inf) are drawn without ties
(`distinct`), so the gradient goes to one entry as in torch; the orders whose gradient
has sign(x) or |x|^(p-1) are drawn away from 0 (`nonzero`).
"""

from __future__ import annotations

import torch

import handgrad as hg
from handgrad import ops
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
from handgrad.ops.linalg import (
    DiagEmbed,
    Diagonal,
    Einsum,
    NormSmallOrder,
    SingularValueNorm,
)
from handgrad.testing.registry import (
    distinct,
    nonzero,
    odd_grid,
    positive,
    real,
    register,
    uniform,
)

INF = float("inf")


def _randint(gen, low, high) -> int:
    return int(torch.randint(low, high, (), generator=gen))


def _dim_keepdim(gen, shapes):
    ndim = max(len(shapes[0]), 1)
    return _randint(gen, -ndim, ndim), bool(_randint(gen, 0, 2))


def _with_zeros(gen, shape):
    """Normal values with about a third exactly 0 (one or several zeros along a dim)."""
    x = real(gen, shape)
    return torch.where(torch.rand(shape, generator=gen, dtype=torch.float64) < 0.35,
                       torch.zeros_like(x), x)


def _one_zero_per_row(gen, shape):
    """Normal values with exactly one 0 in each row of the last dim."""
    x = real(gen, shape)
    where = torch.randint(0, shape[-1], shape[:-1] + (1,), generator=gen)
    return x.scatter(-1, where, 0.0)


# ------------------------------------------------------------------ einsum
def _einsum(equation):
    return dict(fn=lambda *xs: hg.einsum(equation, *xs),
                ref=lambda *xs: torch.einsum(equation, *xs), covers=(Einsum,))


register("einsum_matmul", shapes=[((3, 4), (4, 5))], **_einsum("ij,jk->ik"))
register("einsum_implicit", shapes=[((3, 4), (4, 5))], **_einsum("ij,jk"))
register("einsum_batched_ellipsis", shapes=[((2, 3, 4), (4, 5)), ((1, 3, 4), (2, 4, 2)),
                                            ((3, 4), (2, 4, 2))],
         **_einsum("...ij,...jk->...ik"))
register("einsum_ellipsis_middle", shapes=[((2, 3, 4), (2,)), ((2, 4), (2,))],
         **_einsum("b...,b->..."))
register("einsum_diagonal", shapes=[((3, 3),)], **_einsum("ii->i"))
register("einsum_trace", shapes=[((4, 4),)], **_einsum("ii"))
register("einsum_diagonal_of_batch", shapes=[((3, 3, 2),)], **_einsum("iij->ji"))
register("einsum_two_diagonals", shapes=[((2, 3, 3, 2),)], **_einsum("ijji->j"))
register("einsum_summed_in_one", shapes=[((3, 4), (5,))], **_einsum("ij,k->ik"))
register("einsum_summed_alone", shapes=[((3, 4, 2), (2, 5))], **_einsum("ijk,kl->l"))
register("einsum_size1_broadcast", shapes=[((3, 1), (3, 4))], **_einsum("ij,ij->ij"))
register("einsum_ellipsis_broadcast", shapes=[((3, 1), (3, 4)), ((1,), (4,))],
         **_einsum("...,...->..."))
register("einsum_size1_letter", shapes=[((3, 1), (1, 4)), ((3, 4), (4, 1))],
         **_einsum("ij,jk->ik"))
register("einsum_three_operands", shapes=[((2, 3), (3, 4), (4, 2))],
         **_einsum("ij,jk,kl->il"))
register("einsum_scalar_operand", shapes=[((3,), ())], **_einsum("i,->i"))
register("einsum_full_contraction", shapes=[((3, 4), (4, 3))], **_einsum("ij,ji->"))
register("einsum_attention_scores", shapes=[((2, 3, 5, 4), (2, 3, 6, 4))],
         **_einsum("bhqd,bhkd->bhqk"))
register("einsum_list_form", lambda a, b: hg.einsum("bij,bjk->bik", [a, b]),
         ref=lambda a, b: torch.einsum("bij,bjk->bik", [a, b]),
         shapes=[((2, 3, 4), (2, 4, 5))], covers=(Einsum,))
register("einsum_sublist_form", lambda a, b: hg.einsum(a, [0, Ellipsis, 1], b, [1, 2],
                                                       [0, Ellipsis, 2]),
         ref=lambda a, b: torch.einsum(a, [0, Ellipsis, 1], b, [1, 2], [0, Ellipsis, 2]),
         shapes=[((2, 3, 4), (4, 5))], covers=(Einsum,))

# ------------------------------------------------------------------ matrix products
register("mm", lambda a, b: a.mm(b) + hg.mm(a, b), ref=lambda a, b: a.mm(b) + torch.mm(a, b),
         shapes=[((3, 4), (4, 5)), ((1, 2), (2, 1))], covers=(ops.Matmul,))
register("bmm", lambda a, b: hg.bmm(a, b), ref=torch.bmm,
         shapes=[((2, 3, 4), (2, 4, 5))], covers=(ops.Matmul,))
register("mv", lambda a, v: hg.mv(a, v), ref=torch.mv, shapes=[((3, 4), (4,))],
         covers=(ops.Matmul,))
register("dot", lambda a, b: hg.dot(a, b) + a.vdot(b),
         ref=lambda a, b: torch.dot(a, b) + a.vdot(b), shapes=[((5,), (5,))],
         covers=(ops.Matmul,))
register("outer", lambda a, b: hg.outer(a, b) + hg.ger(a, b) * 0.5,
         ref=lambda a, b: torch.outer(a, b) + torch.ger(a, b) * 0.5,
         shapes=[((3,), (4,))], covers=(ops.Mul,))
register("addmm", lambda x, a, b: hg.addmm(x, a, b, beta=0.5, alpha=2.0) + x.addmm(a, b),
         ref=lambda x, a, b: torch.addmm(x, a, b, beta=0.5, alpha=2.0) + x.addmm(a, b),
         shapes=[((3, 5), (3, 4), (4, 5)), ((5,), (3, 4), (4, 5))], covers=(ops.Matmul,))
register("baddbmm", lambda x, a, b: hg.baddbmm(x, a, b, beta=-1.0, alpha=0.5),
         ref=lambda x, a, b: torch.baddbmm(x, a, b, beta=-1.0, alpha=0.5),
         shapes=[((2, 3, 5), (2, 3, 4), (2, 4, 5)), ((3, 1), (2, 3, 4), (2, 4, 5))],
         covers=(ops.Matmul,))
register("addmv", lambda x, a, v: hg.addmv(x, a, v, alpha=3.0),
         ref=lambda x, a, v: torch.addmv(x, a, v, alpha=3.0),
         shapes=[((3,), (3, 4), (4,)), ((), (3, 4), (4,))], covers=(ops.Matmul,))
register("addcmul", lambda x, a, b: hg.addcmul(x, a, b, value=0.5) + x.addcmul(a, b),
         ref=lambda x, a, b: torch.addcmul(x, a, b, value=0.5) + x.addcmul(a, b),
         shapes=[((3, 4), (3, 4), (3, 4)), ((3, 4), (4,), (3, 1))], covers=(ops.Mul,))
register("addcdiv", lambda x, a, b: hg.addcdiv(x, a, b, value=-2.0),
         ref=lambda x, a, b: torch.addcdiv(x, a, b, value=-2.0),
         shapes=[((3, 4), (3, 4), (3, 4)), ((4,), (3, 4), (3, 1))],
         domains=(real, real, nonzero), covers=(ops.Div,))

register("tensordot", lambda a, b: hg.tensordot(a, b, 2) + hg.tensordot(a, b, ([1, 2], [0, 1])),
         ref=lambda a, b: torch.tensordot(a, b, 2) + torch.tensordot(a, b, ([1, 2], [0, 1])),
         shapes=[((2, 3, 4), (3, 4, 5))], covers=(Einsum,))
register("tensordot_swapped_dims", lambda a, b: hg.tensordot(a, b, ([0, -1], [2, 0])),
         ref=lambda a, b: torch.tensordot(a, b, ([0, -1], [2, 0])),
         shapes=[((2, 3, 4), (4, 5, 2))], covers=(Einsum,))
register("inner", lambda a, b: hg.inner(a, b), ref=torch.inner,
         shapes=[((2, 3, 4), (5, 4)), ((4,), (4,)), ((), (3, 2))], covers=(Einsum, ops.Mul))
register("addbmm_addr", lambda x, a, b, u, v: hg.addbmm(x, a, b, beta=0.5, alpha=2.0)
         + x.addr(u, v, alpha=-1.0),
         ref=lambda x, a, b, u, v: torch.addbmm(x, a, b, beta=0.5, alpha=2.0)
         + x.addr(u, v, alpha=-1.0),
         shapes=[((3, 5), (2, 3, 4), (2, 4, 5), (3,), (5,))], covers=(ops.Matmul, ops.Mul))
register("linalg_products", lambda x, y, m: (hg.linalg.vecdot(x, y), hg.linalg.matmul(x, m),
                                             hg.linalg.multi_dot([x[0], m, m.T, y[1]]),
                                             hg.linalg.diagonal(m.reshape(2, 2, 2), offset=1)),
         ref=lambda x, y, m: (torch.linalg.vecdot(x, y), torch.linalg.matmul(x, m),
                              torch.linalg.multi_dot([x[0], m, m.T, y[1]]),
                              torch.linalg.diagonal(m.reshape(2, 2, 2), offset=1)),
         shapes=[((3, 4), (3, 4), (4, 2))], covers=(ops.Matmul, Diagonal))

# ------------------------------------------------------------------ prod and pointwise
PROD_SHAPES = [((5,),), ((3, 4),), ((2, 3, 4),), ((),)]
register("prod", lambda x: x.prod(), shapes=PROD_SHAPES, covers=(Prod,),
         domains=uniform(0.5, 1.5), random_shapes="unary")
register("prod_dim", lambda x, dim, keepdim: x.prod(dim, keepdim),
         ref=lambda x, dim, keepdim: x.prod(dim, keepdim), shapes=PROD_SHAPES,
         covers=(Prod,), extras=_dim_keepdim, random_shapes="reduce")
register("prod_zeros", lambda x, dim, keepdim: hg.prod(x, dim, keepdim) + hg.prod(x) * 0.5,
         ref=lambda x, dim, keepdim: torch.prod(x, dim, keepdim) + torch.prod(x) * 0.5,
         shapes=[((6,),), ((4, 5),), ((2, 3, 6),)], covers=(Prod,), domains=_with_zeros,
         extras=_dim_keepdim, note="exact zeros (one or several along a dim)")
register("prod_one_zero", lambda x: x.prod(-1) + x.prod(),
         ref=lambda x: x.prod(-1) + x.prod(), shapes=[((3, 4),), ((5,),)], covers=(Prod,),
         domains=_one_zero_per_row, note="exactly one zero per row: its gradient is the "
         "product of the others")
register("prod_dtype", lambda x: hg.prod(x.float(), 0, dtype=hg.float64),
         ref=lambda x: torch.prod(x.float(), 0, dtype=torch.float64), shapes=[((3, 4),)],
         covers=(Prod,), finite_differences=False, tolerances={"float64": (1e-5, 1e-5)},
         note="through float32 first: a 1e-6 finite difference drowns in its rounding")
register("log1p", lambda x: hg.log1p(x), ref=torch.log1p, shapes=[((3, 4),), ((),)],
         domains=uniform(-0.5, 2.0), covers=(Log1p,), random_shapes="unary")
register("expm1", lambda x: x.expm1(), shapes=[((3, 4),), ((),)], covers=(Expm1,),
         random_shapes="unary")
register("lerp_number", lambda a, b: hg.lerp(a, b, 0.3) + a.lerp(b, 0.8),
         ref=lambda a, b: torch.lerp(a, b, 0.3) + a.lerp(b, 0.8),
         shapes=[((3, 4), (3, 4)), ((3, 4), (4,)), ((), ())], covers=(Lerp,),
         random_shapes="binary")
register("lerp_tensor", lambda a, b, w: hg.lerp(a, b, w), ref=torch.lerp,
         shapes=[((3, 4), (3, 4), (3, 4)), ((3, 4), (3, 4), (4,)), ((3, 1), (3, 4), ())],
         domains=(real, real, uniform(-0.5, 1.5)), covers=(Lerp,))

register("log2_log10", lambda x: hg.log2(x) + x.log10() * 2,
         ref=lambda x: torch.log2(x) + x.log10() * 2, shapes=[((3, 4),), ((),)],
         domains=positive, covers=(LogBase,), random_shapes="unary")
register("reciprocal", lambda x: hg.reciprocal(x), ref=torch.reciprocal,
         shapes=[((3, 4),), ((),)], domains=nonzero, covers=(Reciprocal,),
         random_shapes="unary")
register("roundings", lambda x: x * (hg.floor(x) + x.ceil() * 2 + x.trunc() * 3
                                     + hg.round(x) * 4 + x.round(decimals=1) * 5),
         ref=lambda x: x * (torch.floor(x) + x.ceil() * 2 + x.trunc() * 3
                            + torch.round(x) * 4 + x.round(decimals=1) * 5),
         shapes=[((3, 4),), ((),)], domains=uniform(0.13, 0.37), covers=(Rounding,),
         note="x times its roundings: each rounding's gradient 0 is checked through the "
              "product; a step lies within a finite difference's 1e-6 with negligible odds")
register("fmod", lambda a, b: hg.fmod(a, b) + a.fmod(1.75),
         ref=lambda a, b: torch.fmod(a, b) + a.fmod(1.75),
         shapes=[((3, 4), (3, 4)), ((3, 4), (4,)), ((), ())],
         domains=(odd_grid, uniform(0.55, 0.95)), covers=(Fmod,),
         note="a on the odd tenths: a / 1.75 is never an integer, and a / b (b drawn in "
              "(0.55, 0.95)) lands within a finite difference of one with negligible odds")
register("remainder", lambda a, b: hg.remainder(a, b) + a % 1.75 + (-a) % b,
         ref=lambda a, b: torch.remainder(a, b) + a % 1.75 + (-a) % b,
         shapes=[((3, 4), (3, 4)), ((3, 4), (4,)), ((), ())],
         domains=(odd_grid, uniform(0.55, 0.95)), covers=(Remainder,),
         note="the % operator, a on the odd tenths as for fmod (and -a: the floor's other "
              "side)")
register("floor_divide", lambda a, b: hg.floor_divide(a, b) + a // 1.75 + (-a) // b + a,
         ref=lambda a, b: torch.floor(a / b) + torch.floor(a / 1.75) + torch.floor(-a / b) + a,
         shapes=[((3, 4), (3, 4)), ((3, 4), (4,)), ((), ())],
         domains=(odd_grid, uniform(0.55, 0.95)), covers=(FloorDivide,),
         note="the // operator; torch's floor_divide has no derivative, so the reference is "
              "floor(a / b), whose gradient torch gives as 0 (a on the odd tenths as for fmod; "
              "+ a so the gradient reaching a is not all zeros)")
register("diff", lambda x, dim: hg.diff(x, 2, dim),
         ref=lambda x, dim: torch.diff(x, 2, dim), shapes=[((5,),), ((3, 4),), ((2, 3, 5),)],
         extras=lambda g, s: (_randint(g, -len(s[0]), len(s[0])),), covers=(ops.Sub,))
register("diff_prepend_append", lambda x, p, a: hg.diff(x, 1, 0, prepend=p, append=a),
         ref=lambda x, p, a: torch.diff(x, 1, 0, prepend=p, append=a),
         shapes=[((3, 4), (1, 4), (2, 4))], covers=(ops.Sub, ops.Cat))

register("median", lambda x: x.median(), shapes=PROD_SHAPES, covers=(MedianAll,),
         domains=distinct, random_shapes="unary")
register("median_dim", lambda x, dim, keepdim: tuple(hg.median(x, dim, keepdim)),
         ref=lambda x, dim, keepdim: tuple(torch.median(x, dim, keepdim)),
         shapes=PROD_SHAPES, covers=(MedianDim,), domains=distinct, extras=_dim_keepdim,
         random_shapes="reduce")

# ------------------------------------------------------------------ diagonals
def _offset(gen, shapes):
    return (_randint(gen, -2, 3),)


register("trace", lambda x: hg.trace(x) + x.trace(), ref=lambda x: torch.trace(x) * 2,
         shapes=[((4, 4),), ((3, 5),), ((5, 2),)], covers=(Diagonal,))
register("diag_vector", lambda v, k: hg.diag(v, k), ref=lambda v, k: torch.diag(v, k),
         shapes=[((4,),), ((1,),)], extras=_offset, covers=(DiagEmbed,))
register("diag_matrix", lambda x, k: x.diag(k), shapes=[((4, 4),), ((3, 5),)],
         extras=_offset, covers=(Diagonal,))
register("diagonal", lambda x, k: (hg.diagonal(x, k, 2, 0), x.diagonal(), x.diagonal(k, -1, 1)),
         ref=lambda x, k: (torch.diagonal(x, k, 2, 0), x.diagonal(), x.diagonal(k, -1, 1)),
         shapes=[((4, 3, 4),), ((3, 2, 3),)], extras=lambda g, s: (_randint(g, -1, 2),),
         covers=(Diagonal,))
register("diag_embed", lambda x, k: (hg.diag_embed(x, k), x.diag_embed(k, 0, -1)),
         ref=lambda x, k: (torch.diag_embed(x, k), x.diag_embed(k, 0, -1)),
         shapes=[((2, 3),), ((4,),)], extras=_offset, covers=(DiagEmbed,))

# ------------------------------------------------------------------ norms
REDUCE = [((3, 4),), ((2, 3, 4),), ((5,),)]


def _dims_keepdim(gen, shapes):
    ndim = len(shapes[0])
    chosen = tuple(d for d in range(ndim) if _randint(gen, 0, 2)) or (ndim - 1,)
    return chosen, bool(_randint(gen, 0, 2))


register("norm_fro_default", lambda x: x.norm() + hg.norm(x, "fro", (0, 1)),
         ref=lambda x: x.norm() + torch.norm(x, "fro", (0, 1)), shapes=[((3, 4),)],
         covers=(ops.Norm,))
register("norm_neg_inf", lambda x, dim, keepdim: x.norm(-INF, dim, keepdim)
         + hg.norm(x, -INF), ref=lambda x, dim, keepdim: x.norm(-INF, dim, keepdim)
         + torch.norm(x, -INF), shapes=REDUCE, covers=(NormSmallOrder,), domains=distinct,
         extras=_dim_keepdim)
register("norm_zero", lambda x, dims, keepdim: x.norm(0, dims, keepdim) + x.sum(),
         ref=lambda x, dims, keepdim: x.norm(0, dims, keepdim) + x.sum(), shapes=REDUCE,
         covers=(NormSmallOrder,), domains=_with_zeros, extras=_dims_keepdim,
         note="the count of nonzeros has gradient 0; x.sum() carries a checked one")
register("norm_negative_p", lambda x, dims, keepdim: x.norm(-1.5, dims, keepdim),
         ref=lambda x, dims, keepdim: x.norm(-1.5, dims, keepdim), shapes=REDUCE,
         covers=(NormSmallOrder,), domains=nonzero, extras=_dims_keepdim)
register("norm_fractional_p", lambda x, dims, keepdim: x.norm(0.5, dims, keepdim)
         + x.norm(2.5), ref=lambda x, dims, keepdim: x.norm(0.5, dims, keepdim) + x.norm(2.5),
         shapes=REDUCE, covers=(ops.Norm, NormSmallOrder), domains=nonzero, extras=_dims_keepdim)
register("norm_dtype", lambda x: x.float().norm(dtype=hg.float64),
         ref=lambda x: x.float().norm(dtype=torch.float64), shapes=[((3, 4),)],
         covers=(ops.Norm,), finite_differences=False, tolerances={"float64": (1e-5, 1e-5)},
         note="through float32 first: a 1e-6 finite difference drowns in its rounding")
register("norm_at_zero", lambda x: (x * 0).norm() + (x * 0).norm(2, 1).sum() + x.sum(),
         ref=lambda x: (x * 0).norm() + (x * 0).norm(2, 1).sum() + x.sum(),
         shapes=[((3, 4),)], covers=(ops.Norm,), finite_differences=False,
         note="the 2-norm of zeros has gradient 0, as torch (not nan); not smooth there")
register("vector_norm", lambda x, dims, keepdim, o: hg.linalg.vector_norm(x, o, dims, keepdim),
         ref=lambda x, dims, keepdim, o: torch.linalg.vector_norm(x, o, dims, keepdim),
         shapes=REDUCE, domains=distinct, covers=(ops.Norm, NormSmallOrder),
         extras=lambda g, s: (*_dims_keepdim(g, s),
                              [2, 1, 3.0, INF, -INF, -2.0][_randint(g, 0, 6)]))
register("vector_norm_default", lambda x: hg.linalg.vector_norm(x),
         ref=lambda x: torch.linalg.vector_norm(x), shapes=[((3, 4),), ((),), ((2, 3, 4),)],
         covers=(ops.Norm,), random_shapes="unary")
MATRIX_ORDS = ["fro", 1, -1, INF, -INF]
register("matrix_norm", lambda x, o: hg.linalg.matrix_norm(x, o),
         ref=lambda x, o: torch.linalg.matrix_norm(x, o),
         shapes=[((3, 4),), ((2, 3, 4),)], domains=distinct,
         extras=lambda g, s: (MATRIX_ORDS[_randint(g, 0, 5)],),
         covers=(ops.Norm, ops.AmaxAmin))
register("matrix_norm_singular_values", lambda x: (hg.linalg.matrix_norm(x, "nuc"),
                                                   hg.linalg.matrix_norm(x, 2),
                                                   hg.linalg.matrix_norm(x, -2, (0, 2), True),
                                                   x[0].norm("nuc")),
         ref=lambda x: (torch.linalg.matrix_norm(x, "nuc"), torch.linalg.matrix_norm(x, 2),
                        torch.linalg.matrix_norm(x, -2, (0, 2), True), x[0].norm("nuc")),
         shapes=[((2, 3, 4),), ((3, 3, 3),)], covers=(SingularValueNorm,),
         tolerances={"float32": (1e-4, 1e-4)})
register("matrix_norm_dims_keepdim", lambda x: hg.linalg.matrix_norm(x, 1, (0, 2), True)
         + hg.linalg.matrix_norm(x, -INF, (2, 0)),
         ref=lambda x: torch.linalg.matrix_norm(x, 1, (0, 2), True)
         + torch.linalg.matrix_norm(x, -INF, (2, 0)),
         shapes=[((3, 2, 4),)], domains=distinct, covers=(ops.AmaxAmin,))
register("linalg_norm", lambda x: hg.linalg.norm(x) + hg.linalg.norm(x, INF)
         + hg.linalg.norm(x, 1, dim=0).sum() + hg.linalg.norm(x, dim=(1, 0)),
         ref=lambda x: torch.linalg.norm(x) + torch.linalg.norm(x, INF)
         + torch.linalg.norm(x, 1, dim=0).sum() + torch.linalg.norm(x, dim=(1, 0)),
         shapes=[((3, 4),)], domains=distinct, covers=(ops.Norm, ops.AmaxAmin))

# ------------------------------------------------------------------ dtype= and memory_format=
register("sum_dtype", lambda x, dim: x.float().sum(dim, dtype=hg.float64) + hg.sum(x.float(),
                                                                         dtype=hg.float64),
         ref=lambda x, dim: x.float().sum(dim, dtype=torch.float64)
         + torch.sum(x.float(), dtype=torch.float64), shapes=[((3, 4),)], covers=(ops.Sum,),
         extras=lambda g, s: (_randint(g, -2, 2),), finite_differences=False,
         tolerances={"float64": (1e-5, 1e-5)}, note="through float32 first")
register("softmax_dtype", lambda x, dim: x.float().softmax(dim, dtype=hg.float64)
         * hg.log_softmax(x.float(), dim, dtype=hg.float64),
         ref=lambda x, dim: x.float().softmax(dim, dtype=torch.float64)
         * torch.log_softmax(x.float(), dim, dtype=torch.float64),
         shapes=[((3, 4),), ((2, 3, 4),)], covers=(ops.Softmax, ops.LogSoftmax),
         extras=lambda g, s: (_randint(g, -2, 2),), finite_differences=False,
         tolerances={"float64": (1e-5, 1e-5)}, note="through float32 first")
register("clone_memory_format", lambda x: x.clone(memory_format=hg.channels_last)
         + hg.clone(x, memory_format=hg.contiguous_format) * 2 + x.clone() * 3,
         ref=lambda x: x.clone(memory_format=torch.channels_last)
         + torch.clone(x, memory_format=torch.contiguous_format) * 2 + x.clone() * 3,
         shapes=[((2, 3, 4, 5),)], covers=(CloneFormat, ops.Clone), domains=positive)
