"""handgrad._compat: compile, the legacy typed constructors, torch.dropout and cdist,
against torch."""

import pytest
import torch

import handgrad as hg
from handgrad import nn


def test_compile_returns_the_model_itself():
    model = nn.Linear(3, 2)
    assert hg.compile(model) is model
    assert hg.compile(mode="max-autotune")(model) is model

    @hg.compile
    def f(x):
        return x * 2
    assert f(hg.ones(2)).tolist() == [2.0, 2.0]


@pytest.mark.parametrize("name", ["LongTensor", "FloatTensor", "DoubleTensor", "IntTensor",
                                  "BoolTensor", "ByteTensor", "HalfTensor"])
def test_legacy_constructors_match_torch(name):
    ours, theirs = getattr(hg, name), getattr(torch, name)
    data = [[1, 0], [3, 4]]
    assert ours(data).dtype == theirs(data).dtype
    assert ours(data).tolist() == theirs(data).tolist()
    assert ours(2, 3).shape == theirs(2, 3).shape and ours(2, 3).dtype == theirs(2, 3).dtype
    with pytest.raises(TypeError, match=rf"{name}\(\): expected one sequence"):
        ours(2, "x")


def test_torch_dropout_is_the_functional_dropout():
    x = hg.ones(1000)
    assert torch.equal(hg.dropout(x, 0.3, False).data, x.data)
    hg.manual_seed(0)
    ours = hg.dropout(x, 0.3, True)
    torch.manual_seed(0)
    assert torch.equal(ours.data, hg.nn.functional.dropout(x, 0.3).data)


@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, 3.0, float("inf")])
def test_cdist_matches_torch(p):
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(2, 5, 3, dtype=torch.float64, generator=gen)
    b = torch.randn(2, 4, 3, dtype=torch.float64, generator=gen)
    g = torch.randn(2, 5, 4, dtype=torch.float64, generator=gen)
    ha, hb = hg.tensor(a, requires_grad=True), hg.tensor(b, requires_grad=True)
    ta, tb = a.clone().requires_grad_(), b.clone().requires_grad_()
    out, ref = hg.cdist(ha, hb, p), torch.cdist(ta, tb, p)
    assert torch.allclose(out.data, ref.detach(), atol=1e-12)
    if p == 0.0:
        return  # a count: no gradient in either
    (out * hg.tensor(g)).sum().backward()
    (ref * g).sum().backward()
    assert torch.allclose(ha.grad.data, ta.grad, atol=1e-10)
    assert torch.allclose(hb.grad.data, tb.grad, atol=1e-10)


def test_cdist_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"same number of columns.*\(2, 3\) and \(4, 2\)"):
        hg.cdist(hg.ones(2, 3), hg.ones(4, 2))
    with pytest.raises(RuntimeError, match="at least 2D"):
        hg.cdist(hg.ones(3), hg.ones(4, 3))
    with pytest.raises(RuntimeError, match="non-negative p"):
        hg.cdist(hg.ones(2, 3), hg.ones(4, 3), -1.0)
