"""Registry entries for the indexing family: scatter (src, value, multiply), scatter_add,
index_add, index_put (set and accumulate), masked_select, take_along_dim,
repeat_interleave, roll, index_fill (number and 0-d tensor value), Tensor.unfold and
normal (drawn with one seeded generator for handgrad and torch).

scatter without accumulation draws distinct indices along dim (a permutation's first
rows), since torch keeps an arbitrary one of repeated writes.
"""

from __future__ import annotations

import torch

import handgrad as hg
from handgrad.ops.fill import IndexFill, Normal
from handgrad.ops.indexing import (
    IndexAdd,
    IndexPut,
    MaskedSelect,
    RepeatInterleave,
    Roll,
    Scatter,
    ScatterAdd,
)
from handgrad.ops.movement import Gather, Unfold
from handgrad.testing.registry import positive, real, register


def _distinct_rows(gen, shapes):
    """index (k, m) into dim 0 of x (n, m), distinct along dim 0 in every column."""
    (n, m), (k, _) = shapes[0], shapes[1]
    cols = [torch.randperm(n, generator=gen)[:k] for _ in range(m)]
    return (torch.stack(cols, 1),)


def _any_rows(gen, shapes):
    (n, m), (k, _) = shapes[0], shapes[1]
    return (torch.randint(0, n, (k, m), generator=gen),)


def _index_add(gen, shapes):
    n, k = shapes[0][0], shapes[1][0]
    return (torch.randint(0, n, (k,), generator=gen),)


def _put(gen, shapes):
    n = shapes[0][0]
    return (torch.randperm(n, generator=gen)[:shapes[1][0]],)


def _mask(gen, shapes):
    return (torch.rand(shapes[0], generator=gen) < 0.5,)


SCATTER = [((4, 3), (2, 3)), ((5, 2), (3, 2))]
register("scatter", lambda x, s, i: x.scatter(0, i, s),
         ref=lambda x, s, i: x.scatter(0, i, s), shapes=SCATTER, covers=(Scatter,),
         extras=_distinct_rows)
register("scatter_value", lambda x, s, i: x.scatter(0, i, 2.5) * s.sum(),
         ref=lambda x, s, i: x.scatter(0, i, 2.5) * s.sum(), shapes=SCATTER,
         covers=(Scatter,), extras=_distinct_rows)
register("scatter_multiply", lambda x, s, i: hg.scatter(x, 0, i, s, reduce="multiply"),
         ref=lambda x, s, i: x.scatter_reduce(0, i, s, "prod"), shapes=SCATTER,
         covers=(Scatter,), extras=_distinct_rows)
register("scatter_add", lambda x, s, i: x.scatter_add(0, i, s),
         ref=lambda x, s, i: x.scatter_add(0, i, s), shapes=SCATTER, covers=(ScatterAdd,),
         extras=_any_rows, note="repeated indices add up")
register("index_add", lambda x, s, i: x.index_add(0, i, s, alpha=2.0),
         ref=lambda x, s, i: x.index_add(0, i, s, alpha=2.0),
         shapes=[((4, 3), (6, 3)), ((5,), (2,))], covers=(IndexAdd,), extras=_index_add)
register("index_put", lambda x, v, i: x.index_put((i,), v),
         ref=lambda x, v, i: x.index_put((i,), v), shapes=[((5, 3), (2, 3)), ((6,), (3,))],
         covers=(IndexPut,), extras=_put)
register("index_put_accumulate", lambda x, v, i: x.index_put((i,), v, accumulate=True),
         ref=lambda x, v, i: x.index_put((i,), v, accumulate=True),
         shapes=[((5, 3), (2, 3)), ((6,), (3,))], covers=(IndexPut,), extras=_put)
register("masked_select", lambda x, m: x.masked_select(m),
         ref=lambda x, m: x.masked_select(m), shapes=[((3, 4),), ((5,),)],
         covers=(MaskedSelect,), extras=_mask)
register("take_along_dim", lambda x: hg.take_along_dim(x, hg.argsort(x, 1), 1),
         ref=lambda x: torch.take_along_dim(x, torch.argsort(x, 1), 1),
         shapes=[((3, 4),)], covers=(Gather,))
register("repeat_interleave", lambda x: x.repeat_interleave(hg.tensor([2, 0, 1]), 0),
         ref=lambda x: x.repeat_interleave(torch.tensor([2, 0, 1]), 0),
         shapes=[((3, 2),), ((3,),)], covers=(RepeatInterleave,))
register("repeat_interleave_int", lambda x: x.repeat_interleave(3),
         ref=lambda x: x.repeat_interleave(3), shapes=[((2, 3),)],
         covers=(RepeatInterleave,))
register("roll", lambda x: x.roll((1, -2), (0, 1)) + x.roll(3),
         ref=lambda x: x.roll((1, -2), (0, 1)) + x.roll(3), shapes=[((3, 4),)],
         covers=(Roll,))


# ------------------------------------------------------------------ index_fill, unfold, normal
def _fill_rows(gen, shapes):
    """index into dim 0 of x, with repeats (a slice filled twice is filled once)."""
    return (torch.randint(0, shapes[0][0], (3,), generator=gen),)


def _fill_columns(gen, shapes):
    return (torch.randint(0, shapes[0][1], (3,), generator=gen),)


def _seeded(x) -> torch.Generator:
    """A generator on x's device, seeded the same for handgrad's call and torch's."""
    return torch.Generator(device=x.device).manual_seed(7)


register("index_fill", lambda x, i: x.index_fill(0, i, -1.5),
         shapes=[((5, 3),), ((4,),)], covers=(IndexFill,), extras=_fill_rows,
         note="the filled rows get no gradient")
register("index_fill_tensor_value", lambda x, v, i: hg.index_fill(x, 1, i, v),
         ref=lambda x, v, i: torch.index_fill(x, 1, i, v), shapes=[((3, 4), ())],
         covers=(IndexFill,), extras=_fill_columns,
         note="a 0-d value gets the sum of g over the filled columns")
register("tensor_unfold", lambda x: x.unfold(1, 3, 2), shapes=[((2, 7),), ((3, 5, 4),)],
         covers=(Unfold,), note="overlapping windows (step < size) add their gradients")
register("tensor_unfold_gaps", lambda x: x.unfold(0, 2, 3) * 2 + x.unfold(-1, 1, 1).sum(),
         shapes=[((7, 2),), ((5,),)], covers=(Unfold,),
         note="step > size: elements no window reaches get 0")
register("normal", lambda m, s: hg.normal(m, s, generator=_seeded(m)),
         ref=lambda m, s: torch.normal(m, s, generator=_seeded(m)),
         shapes=[((3, 4), (3, 4)), ((2, 3), (3,))], covers=(Normal,),
         domains=(real, positive), finite_differences=False,
         note="torch defines the gradient of a draw as 0 for mean and std; finite "
              "differences of a fixed draw would give 1 and the noise")
register("normal_float_std", lambda m: hg.normal(m, 0.5, generator=_seeded(m)),
         ref=lambda m: torch.normal(m, 0.5, generator=_seeded(m)), shapes=[((4, 3),)],
         covers=(Normal,), finite_differences=False, note="gradient 0, as torch's")
