"""Registry entries for the norms and distances of handgrad.nn.functional (distance.py):
normalize, cosine_similarity, pairwise_distance and pdist, for p = 2, 1, 3, 0.5, 1.5 and
inf, with broadcasting inputs (cosine_similarity, pairwise_distance), keepdim, 0-d
and 1-d inputs.

torch.nn.functional is the reference. The composed references write the p-norm from
primitives, (sum |d|**p)**(1/p) (p = 2: sqrt of a sum of squares; inf: amax of |d|), and
the pairs of pdist with index_select. Inputs are drawn `distinct` where p = inf (no tied
maxima) and away from 0 for p = 1 and p < 1 (|d| has a kink at 0).

Left out: the modules (tests/nn/test_distance.py), norms of all-zero rows and tiny norms
below eps (tests/nn/test_distance.py compares those with torch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.nn.functional import distance as D
from handgrad.testing.registry import distinct, nonzero, real, register

P_VALUES = [2.0, 1.0, 3.0, 0.5, 1.5, math.inf]


def _p_name(p: float) -> str:
    return "inf" if math.isinf(p) else str(p).replace(".0", "").replace(".", "_")


def _domain(p: float):
    return distinct if math.isinf(p) else (nonzero if p <= 1 else real)


# ============================================================== composed references
def _norm(d, p, dim, keepdim=True):
    """||d||_p along dim from primitives."""
    if math.isinf(p):
        return d.abs().amax(dim, keepdim=keepdim)
    if p == 2:
        return (d * d).sum(dim, keepdim=keepdim).sqrt()
    if p == 1:
        return d.abs().sum(dim, keepdim=keepdim)
    return (d.abs() ** p).sum(dim, keepdim=keepdim) ** (1 / p)


def _normalize(p, dim, eps=1e-12):
    return lambda x: x / _norm(x, p, dim).clamp_min(eps)


def _cosine(dim, eps=1e-8):
    def composed(x1, x2):
        shape = torch.broadcast_shapes(x1.shape, x2.shape)
        x1, x2 = x1.expand(*shape), x2.expand(*shape)
        return ((x1 / _norm(x1, 2, dim).clamp_min(eps))
                * (x2 / _norm(x2, 2, dim).clamp_min(eps))).sum(dim)
    return composed


def _pairwise(p, eps=1e-6, keepdim=False):
    def composed(x1, x2):
        d = x1 - x2 + eps
        return _norm(d, p, -1, keepdim) if d.ndim else _norm(d.reshape(1), p, 0, False)
    return composed


def _pdist(p):
    def composed(x):
        n = x.shape[0]
        rows, cols = torch.triu_indices(n, n, 1, device=x.device)
        d = x.index_select(0, hg.Tensor(rows)) - x.index_select(0, hg.Tensor(cols))
        return _norm(d, p, 1, keepdim=False)
    return composed


# ============================================================== entries
for p in P_VALUES:
    suffix = _p_name(p)
    register(f"normalize_p{suffix}", lambda x, p=p: HF.normalize(x, p, 1),
             ref=lambda x, p=p: TF.normalize(x, p, 1),
             shapes=[((3, 4),), ((2, 3, 2),), ((1, 5),)], covers=(D.Normalize,),
             domains=_domain(p), composed=_normalize(p, 1))
    register(f"pairwise_distance_p{suffix}", lambda a, b, p=p: HF.pairwise_distance(a, b, p),
             ref=lambda a, b, p=p: TF.pairwise_distance(a, b, p),
             shapes=[((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 3)), ((5,), (5,))],
             covers=(D.PairwiseDistance,), domains=_domain(p), composed=_pairwise(p))
    register(f"pdist_p{suffix}", lambda x, p=p: HF.pdist(x, p),
             ref=lambda x, p=p: TF.pdist(x, p), shapes=[((5, 3),), ((2, 4),), ((4, 1),)],
             covers=(D.PDist,), domains=_domain(p), composed=_pdist(p))

register("normalize_dim0_eps", lambda x: HF.normalize(x, dim=0, eps=0.5),
         ref=lambda x: TF.normalize(x, dim=0, eps=0.5), shapes=[((3, 4),), ((4,),)],
         covers=(D.Normalize,), composed=_normalize(2, 0, 0.5),
         note="eps = 0.5: some columns are clamped, their norm then gets no gradient")
register("normalize_dim_last", lambda x: HF.normalize(x, dim=-1),
         ref=lambda x: TF.normalize(x, dim=-1), shapes=[((2, 3, 4),), ((5,),)],
         covers=(D.Normalize,), composed=_normalize(2, -1))

COSINE = [((3, 4), (3, 4)), ((3, 4, 2), (4, 1)), ((1, 4), (3, 4)), ((2, 3), (3,))]
register("cosine_similarity", HF.cosine_similarity, ref=TF.cosine_similarity,
         shapes=COSINE, covers=(D.CosineSimilarity,), composed=_cosine(1),
         note="broadcasting pairs: the norms are taken over the broadcast shape, as torch")
register("cosine_similarity_dim_last", lambda a, b: HF.cosine_similarity(a, b, -1),
         ref=lambda a, b: TF.cosine_similarity(a, b, -1),
         shapes=[((3, 4), (3, 4)), ((5,), (5,)), ((2, 3, 4), (4,))],
         covers=(D.CosineSimilarity,), composed=_cosine(-1))
register("pairwise_distance_keepdim_eps",
         lambda a, b: HF.pairwise_distance(a, b, 2.0, 0.1, keepdim=True),
         ref=lambda a, b: TF.pairwise_distance(a, b, 2.0, 0.1, keepdim=True),
         shapes=[((3, 4), (3, 4)), ((2, 3), (3,))], covers=(D.PairwiseDistance,),
         composed=_pairwise(2.0, 0.1, keepdim=True))
register("pairwise_distance_scalars", HF.pairwise_distance, ref=TF.pairwise_distance,
         shapes=[((), ()), ((), (3,))], covers=(D.PairwiseDistance,), composed=_pairwise(2.0))


# ============================================================== random shapes
def _random_dim(gen, shapes):
    ndim = len(shapes[0])
    return (int(torch.randint(-ndim, ndim, (), generator=gen)),)


register("normalize_random_dim", lambda x, dim: HF.normalize(x, 2.0, dim),
         ref=lambda x, dim: TF.normalize(x, 2.0, dim), shapes=[((3, 4),), ((2, 3, 4),)],
         covers=(D.Normalize,), extras=_random_dim, random_shapes="reduce",
         domains=nonzero, composed=lambda x, dim: _normalize(2.0, dim)(x),
         note="along a size-1 dim the exact gradient is 0 (handgrad gives 0); torch's "
              "float32 autograd leaves ~1e-7 g / |x| of rounding, so |x| stays >= 0.2")
register("cosine_similarity_broadcast", lambda a, b: HF.cosine_similarity(a, b, -1),
         ref=lambda a, b: TF.cosine_similarity(a, b, -1), shapes=[((3, 4), (4,)), ((), ())],
         covers=(D.CosineSimilarity,), random_shapes="binary", composed=_cosine(-1),
         domains=nonzero, tolerances={"float32": (2e-4, 1e-4)},
         note="a size-1 input broadcast along dim has an exact gradient of 0 (the cosine "
              "ignores its scale); float32 leaves ~1e-7 g / |x| of rounding, in torch too")
register("pairwise_distance_broadcast", HF.pairwise_distance, ref=TF.pairwise_distance,
         shapes=[((3, 4), (1, 4)), ((), (2,))], covers=(D.PairwiseDistance,),
         random_shapes="binary", composed=_pairwise(2.0))
