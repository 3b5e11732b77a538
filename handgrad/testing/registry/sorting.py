"""Registry entries for sorting and scans: sort, argsort, topk (values through their
indices; indices compared exactly), cumsum and cumprod (cumprod also on inputs with exact
zeros, where the backward must not divide by them), and square (x ** 2 through Pow).

Sorted inputs are drawn without ties (`distinct`), so indices are the same as torch's and
finite differences do not cross a reordering.
"""

from __future__ import annotations

import torch

import handgrad as hg
from handgrad.ops.elementwise import Pow
from handgrad.ops.scan import Cumprod, Cumsum
from handgrad.ops.sorting import Sort, TopK
from handgrad.testing.registry import distinct, real, register

SHAPES = [((5,),), ((3, 4),), ((2, 3, 4),), ((),)]


def _dim(gen, shapes):
    """A random dim of the first input (negative half the time); 0 for a 0-d input."""
    ndim = max(len(shapes[0]), 1)
    return (int(torch.randint(-ndim, ndim, (), generator=gen)),)


def _dim_k(gen, shapes):
    """A dim and a k in [0, size] along it (largest and sorted drawn too)."""
    (dim,) = _dim(gen, shapes)
    size = shapes[0][dim] if shapes[0] else 1
    k = int(torch.randint(0, size + 1, (), generator=gen))
    flags = torch.randint(0, 2, (2,), generator=gen)
    return dim, k, bool(flags[0]), bool(flags[1])


def _with_zeros(gen, shape):
    """Normal values with about a third set to exactly 0 (several zeros along a dim)."""
    x = real(gen, shape)
    return torch.where(torch.rand(shape, generator=gen, dtype=torch.float64) < 0.35,
                       torch.zeros_like(x), x)



register("sort", lambda x, dim: tuple(x.sort(dim)), shapes=SHAPES, covers=(Sort,),
         domains=distinct, extras=_dim, random_shapes="reduce")
register("sort_descending_stable",
         lambda x, dim: tuple(hg.sort(x, dim, descending=True, stable=True)),
         ref=lambda x, dim: tuple(torch.sort(x, dim=dim, descending=True, stable=True)),
         shapes=SHAPES, covers=(Sort,), domains=distinct, extras=_dim)
register("sort_values_fields", lambda x: x.sort(0).values * x.sort(-1, True).values
         + x.argsort(0).to(x.dtype), shapes=[((4, 4),)], covers=(Sort,), domains=distinct)
register("argsort", lambda x, dim: (x * 1.0, hg.argsort(x, dim, descending=True)),
         ref=lambda x, dim: (x * 1.0, torch.argsort(x, dim=dim, descending=True)),
         shapes=SHAPES, covers=(Sort,), domains=distinct, extras=_dim,
         note="argsort has no gradient; x * 1 carries the checked one")
register("topk", lambda x, dim, k, largest, s: tuple(x.topk(k, dim, largest, s)),
         shapes=SHAPES, covers=(TopK,), domains=distinct, extras=_dim_k,
         random_shapes="reduce")
register("topk_function", lambda x: tuple(hg.topk(x, 2, largest=False)),
         ref=lambda x: tuple(torch.topk(x, 2, largest=False)),
         shapes=[((3, 5),), ((4,),)], covers=(TopK,), domains=distinct)
register("cumsum", lambda x, dim: x.cumsum(dim), shapes=SHAPES, covers=(Cumsum,),
         extras=_dim, random_shapes="reduce")
register("cumsum_function_dtype", lambda x, dim: hg.cumsum(x.float(), dim, dtype=hg.float64),
         ref=lambda x, dim: torch.cumsum(x.float(), dim, dtype=torch.float64),
         shapes=SHAPES[:3], covers=(Cumsum,), extras=_dim,
         tolerances={"float64": (1e-5, 1e-5)}, finite_differences=False,
         note="through float32 first: a 1e-6 finite difference drowns in its rounding")
register("cumprod", lambda x, dim: x.cumprod(dim), shapes=SHAPES, covers=(Cumprod,),
         extras=_dim, random_shapes="reduce")
register("cumprod_zeros", lambda x, dim: hg.cumprod(x, dim),
         ref=lambda x, dim: torch.cumprod(x, dim), shapes=[((6,),), ((4, 5),), ((2, 3, 6),)],
         covers=(Cumprod,), domains=_with_zeros, extras=_dim,
         note="exact zeros in the input: the backward must not divide by them")
register("square", lambda x: x.square() + hg.square(x * 0.5),
         ref=lambda x: x.square() + torch.square(x * 0.5), shapes=SHAPES, covers=(Pow,),
         random_shapes="unary")
