"""sort / argsort / topk / cumsum / cumprod beyond the registry's checks: torch's field
names and errors, integer indices without a gradient, torch.sort and friends called on
handgrad Tensors, the logical ops and isclose (no gradient), and cumprod's backward at
exact zeros (first, several, all) against torch autograd and finite differences."""

from __future__ import annotations

import pytest
import torch

import handgrad as hg
from handgrad.testing import gradcheck


def _pair(values, requires_grad=True):
    base = torch.as_tensor(values, dtype=torch.float64)
    return (base.clone().requires_grad_(requires_grad),
            hg.tensor(base, requires_grad=requires_grad))


def _distinct(*shape, seed=0):
    n = int(torch.Size(shape).numel())
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).double() \
        .reshape(shape) * 0.1


@pytest.mark.parametrize("call", [
    lambda m, x: m.sort(x, 1),
    lambda m, x: m.sort(x, dim=0, descending=True),
    lambda m, x: m.sort(x, stable=True),
    lambda m, x: m.topk(x, 2),
    lambda m, x: m.topk(x, 3, dim=0, largest=False),
    lambda m, x: m.topk(x, 2, sorted=False),
])
@pytest.mark.parametrize("via", ["handgrad", "torch_function"])
def test_values_indices_fields_and_gradient(call, via):
    t, h = _pair(_distinct(3, 4))
    expected = call(torch, t)
    got = call(torch if via == "torch_function" else hg, h)
    assert isinstance(got, tuple) and len(got) == 2
    assert got.indices.dtype == torch.int64 and not got.indices.requires_grad
    assert torch.equal(got.indices.data, expected.indices)
    torch.testing.assert_close(got.values.data, expected.values.detach())
    g = torch.randn(expected.values.shape, dtype=torch.float64)
    expected.values.backward(g)
    got.values.backward(hg.tensor(g))
    torch.testing.assert_close(h.grad.data, t.grad)


def test_methods_and_argsort():
    t, h = _pair(_distinct(2, 5), requires_grad=False)
    assert torch.equal(h.argsort().data, t.argsort())
    assert torch.equal(hg.argsort(h, 0, descending=True).data, torch.argsort(t, 0, True))
    assert torch.equal(torch.argsort(h, dim=1).data, torch.argsort(t, dim=1))
    assert not h.argsort().requires_grad
    values, indices = h.sort(descending=True)
    assert torch.equal(values.data, t.sort(descending=True).values)
    assert torch.equal(indices.data, t.sort(descending=True).indices)


def test_zero_dim_inputs():
    t, h = _pair(1.5)
    h.sort().values.backward()
    assert h.grad.item() == 1.0
    for k in (0, 1):
        expected, got = t.detach().topk(k), h.topk(k)
        assert got.values.shape == expected.values.shape
        assert torch.equal(got.indices.data, expected.indices)


def test_errors_as_torch():
    h = hg.tensor(_distinct(3, 4))
    with pytest.raises(RuntimeError, match="k out of range"):
        h.topk(5)
    with pytest.raises(RuntimeError, match="k out of range"):
        torch.topk(torch.zeros(3, 4), 5)  # torch says the same
    with pytest.raises(RuntimeError, match="topk"):
        h.topk(-1, dim=0)
    with pytest.raises(IndexError, match="sort.*Dimension out of range"):
        h.sort(2)
    with pytest.raises(IndexError, match="cumsum.*Dimension out of range"):
        h.cumsum(-3)
    with pytest.raises(TypeError, match="topk: k must be an int"):
        h.topk(1.5)


def test_cumsum_dtypes_and_dispatch():
    ints = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    h = hg.tensor(ints)
    assert h.cumsum(1).dtype == torch.cumsum(ints, 1).dtype == torch.int64
    assert torch.equal(h.cumsum(0).data, ints.cumsum(0))
    assert hg.cumsum(h, 1, dtype=hg.float64).dtype == torch.float64
    t, x = _pair(torch.randn(3, 4, dtype=torch.float64))
    expected = torch.cumsum(t, 1, dtype=torch.float32)
    got = torch.cumsum(x, 1, dtype=torch.float32)  # through __torch_function__
    assert got.dtype == torch.float32
    g = torch.randn(3, 4)
    expected.backward(g)
    got.backward(hg.tensor(g))
    assert x.grad.dtype == torch.float64
    torch.testing.assert_close(x.grad.data, t.grad)


ZEROS = [
    [0.0, 2.0, 3.0, -1.5],           # zero first
    [1.5, -2.0, 0.0, 3.0, 0.5],      # one zero inside
    [2.0, 0.0, 1.5, 0.0, -3.0],      # two zeros: only the first gets a gradient
    [0.0, 0.0, 0.0],                 # all zeros
    [0.7, -1.2, 2.0, 0.0],           # zero last
    [[0.0, 1.0, 2.0], [3.0, 0.0, 0.0], [1.0, 2.0, 3.0]],
]


@pytest.mark.parametrize("values", ZEROS)
def test_cumprod_backward_with_exact_zeros(values):
    t, h = _pair(values)
    for dim in range(t.ndim):
        t.grad = None
        h.grad = None
        g = torch.randn(t.shape, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(dim))
        torch.cumprod(t, dim).backward(g)
        out = h.cumprod(dim)
        torch.testing.assert_close(out.data, torch.cumprod(t.detach(), dim))
        out.backward(hg.tensor(g))
        assert torch.isfinite(h.grad.data).all()
        torch.testing.assert_close(h.grad.data, t.grad)
        assert gradcheck(lambda x, d=dim: hg.cumprod(x, d), hg.tensor(t.detach().clone(),
                                                                       requires_grad=True))


def test_cumprod_through_torch_function():
    t, h = _pair([[1.0, 0.0, 2.0], [3.0, 4.0, 0.5]])
    torch.cumprod(t, 1).sum().backward()
    torch.cumprod(h, 1).sum().backward()
    torch.testing.assert_close(h.grad.data, t.grad)


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor", "isclose"])
def test_logical_and_isclose_have_no_gradient(name):
    a = torch.tensor([0.0, 1.0, 2.0, 1e-9])
    b = torch.tensor([0.0, 0.0, 2.0, 0.0])
    expected = getattr(torch, name)(a, b)
    for got in (getattr(hg.tensor(a, requires_grad=True), name)(hg.tensor(b)),
                getattr(hg, name)(hg.tensor(a), b),
                getattr(torch, name)(hg.tensor(a, requires_grad=True), hg.tensor(b))):
        assert got.dtype == torch.bool and not got.requires_grad
        assert torch.equal(got.data, expected)
    x = hg.tensor(a, requires_grad=True)
    assert torch.equal(x.logical_not().data, a.logical_not())
    assert torch.equal(torch.logical_not(x).data, a.logical_not())
    assert hg.tensor(a).allclose(hg.tensor(a + 1e-9)) and not torch.allclose(x, hg.tensor(b))
