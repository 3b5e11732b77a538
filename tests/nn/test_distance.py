"""The norms and distances against torch: CosineSimilarity and PairwiseDistance modules
(repr, attributes, outputs and gradients with torch.nn's twin in float32 and float64,
broadcasting), the edge cases the registry's random draws avoid (all-zero rows, norms
below eps, equal inputs, tied maxima for p = inf, p = 0, a single row for pdist), dtype
promotion, normalize's out=, and the errors with torch's exception types.

Left out: random inputs, finite differences and the composed references (the registry:
handgrad/testing/registry/distance.py, run by tests/tensor/test_ops.py).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from tests.torch_compare import assert_close, compare_modules, same_as_torch

pytestmark = pytest.mark.usefixtures("one_thread")


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _public(module) -> dict:
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training"}


# ------------------------------------------------------------------ modules
@pytest.mark.parametrize("kwargs, shapes", [
    ({}, [(4, 5), (4, 5)]), ({"dim": -1, "eps": 1e-3}, [(2, 3, 4), (4,)]),
    ({"dim": 0}, [(5,), (5,)]), ({}, [(3, 4, 2), (4, 1)]),
])
def test_cosine_similarity_module(dtype, kwargs, shapes):
    ours, theirs = nn.CosineSimilarity(**kwargs), torch.nn.CosineSimilarity(**kwargs)
    assert repr(ours) == repr(theirs) and _public(ours) == _public(theirs)
    compare_modules(ours, theirs, *[_randn(*s, seed=i) for i, s in enumerate(shapes)],
                    dtype=dtype)


@pytest.mark.parametrize("kwargs, shapes", [
    ({}, [(4, 5), (4, 5)]), ({"p": 1.0, "keepdim": True}, [(2, 3, 4), (4,)]),
    ({"p": math.inf, "eps": 0.0}, [(3, 6), (3, 6)]), ({"p": 3}, [(5,), (5,)]),
    ({}, [(), ()]),
])
def test_pairwise_distance_module(dtype, kwargs, shapes):
    ours, theirs = nn.PairwiseDistance(**kwargs), torch.nn.PairwiseDistance(**kwargs)
    assert repr(ours) == repr(theirs) and _public(ours) == _public(theirs)
    compare_modules(ours, theirs, *[_randn(*s, seed=i) for i, s in enumerate(shapes)],
                    dtype=dtype)


# ------------------------------------------------------------------ edge cases
ZERO_ROW = [[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [1e-14, 0.0, -1e-14]]


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, math.inf, 0.0])
def test_normalize_with_zero_and_tiny_rows(p):
    same_as_torch(lambda x: F.normalize(x, p, 1), ZERO_ROW,
                  ref=lambda x: TF.normalize(x, p, 1))
    same_as_torch(lambda x: F.normalize(x, p, 0, eps=0.3), ZERO_ROW,
                  ref=lambda x: TF.normalize(x, p, 0, eps=0.3))


def test_cosine_similarity_with_zero_and_tiny_vectors():
    other = [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [1e-10, 2e-10, 0.0]]
    for dim in (0, 1):
        same_as_torch(lambda a, b, d=dim: F.cosine_similarity(a, b, d), ZERO_ROW, other,
                      ref=lambda a, b, d=dim: TF.cosine_similarity(a, b, d))
    same_as_torch(lambda a, b: F.cosine_similarity(a, b, eps=1.0), ZERO_ROW, other,
                  ref=lambda a, b: TF.cosine_similarity(a, b, eps=1.0))


@pytest.mark.parametrize("p", [2.0, 1.0, 1.5, 0.5, math.inf, 0.0])
def test_pairwise_distance_of_equal_inputs_and_ties(p):
    x = [[1.0, 2.0, 3.0], [0.5, 0.5, -0.5]]
    same_as_torch(lambda a, b: F.pairwise_distance(a, b, p), x, x,
                  ref=lambda a, b: TF.pairwise_distance(a, b, p))
    same_as_torch(lambda a, b: F.pairwise_distance(a, b, p, eps=0.0), x, x,
                  ref=lambda a, b: TF.pairwise_distance(a, b, p, eps=0.0))
    # p = inf: |d| tied at the maximum in every row; torch shares the gradient among them
    same_as_torch(lambda a, b: F.pairwise_distance(a, b, p, eps=0.0), x, [[0.0, 1.0, 2.0],
                  [1.5, -0.5, 0.5]], ref=lambda a, b: TF.pairwise_distance(a, b, p, eps=0.0))


@pytest.mark.parametrize("p", [2.0, 1.0, 1.5, 0.5, 3.0, math.inf, 0.0])
def test_pdist_with_equal_rows_and_ties(p):
    rows = [[1.0, 2.0], [1.0, 2.0], [0.0, 1.0], [3.0, -1.0]]  # rows 0 and 1 equal
    same_as_torch(lambda x: F.pdist(x, p), rows, ref=lambda x: TF.pdist(x, p))
    # p = inf, rows 0 and 2 differ by (1, 1): torch gives each tied maximum the whole g
    same_as_torch(lambda x: F.pdist(x, p), rows[::2], ref=lambda x: TF.pdist(x, p))


def test_pdist_of_one_row_and_of_large_inputs():
    for rows in ([[1.0, 2.0]], [[]], _randn(7, 3).tolist()):
        x = torch.tensor(rows, dtype=torch.float64)
        out = F.pdist(hg.tensor(x, requires_grad=True))
        assert_close(out, TF.pdist(x), torch.float64, f"pdist of {tuple(x.shape)}")
    x = 5 * _randn(40, 8)
    same_as_torch(F.pdist, x.tolist(), ref=TF.pdist)


def test_noncontiguous_inputs():
    x = _randn(6, 4).T  # (4, 6), transposed
    same_as_torch(lambda a: F.pdist(a.T.T, 3), x.tolist(), ref=lambda a: TF.pdist(a, 3))
    a, b = hg.tensor(_randn(4, 6)).T, hg.tensor(_randn(4, 6, seed=1)).T
    assert_close(F.cosine_similarity(a, b), TF.cosine_similarity(a.data, b.data),
                 torch.float64)
    assert_close(F.normalize(a, dim=0), TF.normalize(a.data, dim=0), torch.float64)


# ------------------------------------------------------------------ dtypes, out=
def test_dtype_promotion_as_torch():
    a64, a32 = _randn(3, 4), _randn(3, 4, seed=1).float()
    out = F.cosine_similarity(hg.tensor(a64), hg.tensor(a32))
    assert out.dtype == TF.cosine_similarity(a64, a32).dtype == torch.float64
    ints = torch.arange(12).reshape(3, 4)
    out = F.pairwise_distance(hg.tensor(ints), hg.tensor(ints.flip(0)))
    assert_close(out, TF.pairwise_distance(ints, ints.flip(0)), torch.float32)
    leaf = hg.tensor(a32, requires_grad=True)
    F.cosine_similarity(leaf, hg.tensor(a64)).sum().backward()
    assert leaf.grad.dtype == torch.float32


def test_normalize_out():
    x = _randn(3, 4)
    out = hg.zeros(3, 4, dtype=torch.float64)
    assert F.normalize(hg.tensor(x), out=out) is out
    assert_close(out, TF.normalize(x), torch.float64)
    with pytest.raises(RuntimeError):
        TF.normalize(x.clone().requires_grad_(), out=torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="out="):
        F.normalize(hg.tensor(x, requires_grad=True), out=out)


# ------------------------------------------------------------------ errors
ERRORS = [
    ("pdist 1d", lambda f, t: f.pdist(t([1.0, 2.0]))),
    ("pdist 3d", lambda f, t: f.pdist(t([[[1.0, 2.0]]]))),
    ("pdist negative p", lambda f, t: f.pdist(t([[1.0], [2.0]]), -1)),
    ("pdist integers", lambda f, t: f.pdist(t([[1], [2]]))),
    ("cosine integers", lambda f, t: f.cosine_similarity(t([[1, 2]]), t([[1, 2]]))),
    ("cosine shapes", lambda f, t: f.cosine_similarity(t([[1.0, 2.0]] * 3),
                                                       t([[1.0, 2.0]] * 2))),
    ("cosine dim", lambda f, t: f.cosine_similarity(t([1.0, 2.0]), t([1.0, 2.0]))),
    ("pairwise shapes", lambda f, t: f.pairwise_distance(t([[1.0, 2.0]]), t([[1.0, 2.0, 3.0]]))),
    ("normalize dim", lambda f, t: f.normalize(t([1.0, 2.0]), dim=2)),
    ("normalize integers", lambda f, t: f.normalize(t([[1, 2]]))),
]


@pytest.mark.parametrize("name, call", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_as_torch(name, call):
    with pytest.raises(Exception) as torch_error:
        call(TF, torch.tensor)
    with pytest.raises(type(torch_error.value)):
        call(F, hg.tensor)


def test_error_messages_name_the_op_and_the_shapes():
    with pytest.raises(RuntimeError, match="pdist only supports 2D.*\\(2,\\)"):
        F.pdist(hg.randn(2))
    with pytest.raises(RuntimeError, match="floating point.*int64"):
        F.cosine_similarity(hg.arange(3), hg.arange(3), dim=0)
