"""The last Tensor / torch names `handgrad coverage` listed as missing: byte, ndimension,
index_fill / index_fill_, Tensor.unfold and normal, beyond the registry's checks (which
prove the gradients of index_fill, unfold and normal against torch and, for the first
two, finite differences): torch's dtypes, shapes, in-place forms, errors, the same random
draws as torch for the same seed or generator, and the torch names reaching handgrad's
ops through __torch_function__.
"""

from __future__ import annotations

import pytest
import torch

import handgrad as hg
from handgrad.testing import gradcheck


def _pair(values, requires_grad=True):
    base = torch.as_tensor(values, dtype=torch.float64)
    return (base.clone().requires_grad_(requires_grad),
            hg.tensor(base, requires_grad=requires_grad))


def _same(h, t, exact=True):
    """Same shape, dtype and values (bit for bit unless exact=False: sums may add in
    another order)."""
    assert h.shape == t.shape and h.dtype == t.dtype, (h.shape, t.shape, h.dtype, t.dtype)
    tolerance = {"rtol": 0, "atol": 0} if exact else {}
    torch.testing.assert_close(h.data, t.detach(), **tolerance)


# ------------------------------------------------------------------ byte, ndimension
def test_byte_and_ndimension_as_torch():
    values = torch.tensor([[0.0, 1.7, 255.0], [3.2, 7.9, 100.0]])
    t, h = values, hg.tensor(values, requires_grad=True)
    _same(h.byte(), t.byte())
    assert not h.byte().requires_grad
    assert h.ndimension() == t.ndimension() == 2
    assert hg.tensor(1.0).ndimension() == 0


# ------------------------------------------------------------------ index_fill
@pytest.mark.parametrize("via", ["method", "function", "torch_function"])
def test_index_fill_values_and_gradient(via):
    t, h = _pair(torch.randn(4, 3, dtype=torch.float64))
    index = torch.tensor([2, 0, 2])
    calls = {"method": lambda x, i: x.index_fill(1, i, 7.0),
             "function": lambda x, i: (torch if isinstance(x, torch.Tensor) else hg)
             .index_fill(x, 1, i, 7.0),
             "torch_function": lambda x, i: torch.index_fill(x, 1, i, 7.0)}
    call = calls[via]
    expected = call(t, index)
    got = call(h, index if via == "torch_function" else hg.tensor(index))
    assert isinstance(got, hg.Tensor)
    _same(got, expected)
    g = torch.randn(4, 3, dtype=torch.float64)
    expected.backward(g)
    got.backward(hg.tensor(g))
    _same(h.grad, t.grad)
    assert (h.grad.data[:, [0, 2]] == 0).all()


def test_index_fill_tensor_value_gets_the_sum_over_filled_slices():
    t, h = _pair(torch.randn(5, 2, dtype=torch.float64))
    tv, hv = _pair(torch.tensor(0.5, dtype=torch.float64))
    index = torch.tensor([3, 1, 3])
    expected = t.index_fill(0, index, tv)
    got = h.index_fill(0, hg.tensor(index), hv)
    _same(got, expected)
    g = torch.randn(5, 2, dtype=torch.float64)
    expected.backward(g)
    got.backward(hg.tensor(g))
    _same(h.grad, t.grad)
    _same(hv.grad, tv.grad, exact=False)
    assert gradcheck(lambda x, v: x.index_fill(0, hg.tensor(index), v), h.detach(),
                     hv.detach())


def test_index_fill_in_place():
    t = torch.randn(3, 4)
    h = hg.tensor(t)
    assert h.index_fill_(0, hg.tensor([1]), -1.0) is h
    _same(h, t.index_fill(0, torch.tensor([1]), -1.0))
    # in the graph: a non-leaf takes the out-of-place result's place
    t, h = _pair(torch.randn(3, 4, dtype=torch.float64))
    ty, hy = t * 2, h * 2
    ty.index_fill_(1, torch.tensor([0, 3]), 0.25)
    hy.index_fill_(1, hg.tensor([0, 3]), 0.25)
    _same(hy, ty)
    ty.sum().backward()
    hy.sum().backward()
    _same(h.grad, t.grad)
    with pytest.raises(RuntimeError, match="index_fill_: a leaf tensor that requires grad"):
        h.index_fill_(0, hg.tensor([0]), 1.0)


def test_index_fill_errors_name_the_op():
    x = hg.zeros(4, 3)
    with pytest.raises(IndexError, match="index_fill: index must be int64"):
        x.index_fill(0, hg.tensor([1.0]), 2.0)
    with pytest.raises(RuntimeError, match="index_fill: index must be a vector or a scalar"):
        x.index_fill(0, hg.tensor([[1]]), 2.0)
    with pytest.raises(RuntimeError, match="0-d tensor, got a tensor of shape \\(1,\\)"):
        x.index_fill(0, hg.tensor([1]), hg.tensor([2.0]))
    with pytest.raises(IndexError, match="index_fill"):
        x.index_fill(2, hg.tensor([1]), 2.0)
    with pytest.raises(TypeError, match="index_fill: value must be a number"):
        x.index_fill(0, hg.tensor([1]), "2")
    with pytest.raises(IndexError, match="out of bounds"):
        x.index_fill(0, hg.tensor([5]), 2.0)


# ------------------------------------------------------------------ unfold
@pytest.mark.parametrize("shape, args", [
    ((7,), (0, 3, 2)), ((4, 6), (1, 2, 2)), ((4, 6), (-2, 4, 1)), ((2, 5, 3), (1, 2, 3)),
    ((5,), (0, 0, 1)), ((), (0, 1, 1)), ((), (-1, 0, 4)), ((9,), (0, 4, 1)),
])
def test_unfold_shapes_values_and_gradient(shape, args):
    t, h = _pair(torch.randn(shape, dtype=torch.float64))
    expected, got = t.unfold(*args), h.unfold(*args)
    _same(got, expected)
    g = torch.randn(expected.shape, dtype=torch.float64)
    expected.backward(g)
    got.backward(hg.tensor(g))
    _same(h.grad, t.grad, exact=False)  # overlapping windows add in another order


def test_unfold_of_a_transposed_input():
    t, h = _pair(torch.randn(3, 8, dtype=torch.float64))
    _same(h.T.unfold(0, 3, 2), t.T.unfold(0, 3, 2))
    assert gradcheck(lambda x: x.T.unfold(0, 3, 2), h.detach())


def test_unfold_errors_as_torch():
    x = hg.zeros(5, 3)
    with pytest.raises(RuntimeError, match="unfold: maximum size for tensor at dimension 0 is 5"):
        x.unfold(0, 6, 1)
    with pytest.raises(RuntimeError, match="unfold: step is 0 but must be > 0"):
        x.unfold(0, 2, 0)
    with pytest.raises(RuntimeError, match="unfold: size is -1 but must be >= 0"):
        x.unfold(0, -1, 1)
    with pytest.raises(IndexError, match="unfold"):
        x.unfold(2, 1, 1)
    with pytest.raises(TypeError, match="unfold: size must be an int"):
        x.unfold(0, 2.0, 1)


# ------------------------------------------------------------------ normal
@pytest.mark.parametrize("form", ["tensor_tensor", "tensor_float", "float_tensor",
                                  "float_float", "mean_only"])
def test_normal_draws_as_torch_for_the_same_seed(form):
    mean = torch.linspace(-1, 1, 6).reshape(2, 3)
    std = torch.linspace(0.5, 2, 3)
    calls = {
        "tensor_tensor": lambda m, lib: lib.normal(m(mean), m(std)),
        "tensor_float": lambda m, lib: lib.normal(m(mean), 0.3),
        "float_tensor": lambda m, lib: lib.normal(2.0, m(std)),
        "float_float": lambda m, lib: lib.normal(1.0, 2.0, (4, 2)),
        "mean_only": lambda m, lib: lib.normal(mean=m(mean)),
    }
    torch.manual_seed(3)
    expected = calls[form](lambda x: x, torch)
    hg.manual_seed(3)
    got = calls[form](hg.tensor, hg)
    _same(got, expected)
    # torch.normal with handgrad tensors reaches handgrad.normal
    torch.manual_seed(3)
    via_torch = calls[form](hg.tensor, torch) if form != "float_float" else got
    _same(via_torch, expected)
    assert isinstance(via_torch, hg.Tensor)


def test_normal_generator_dtype_and_leaf_options():
    expected = torch.normal(0.0, 1.0, (3,), generator=torch.Generator().manual_seed(5),
                            dtype=torch.float64, requires_grad=True)
    got = hg.normal(0.0, 1.0, (3,), generator=hg.Generator().manual_seed(5),
                    dtype=hg.float64, requires_grad=True)
    _same(got, expected)
    assert got.requires_grad and got.is_leaf
    mean = torch.zeros(2, 2, dtype=torch.float64)
    _same(hg.normal(hg.tensor(mean), 1.0, generator=torch.Generator().manual_seed(1)),
          torch.normal(mean, 1.0, generator=torch.Generator().manual_seed(1)))


def test_normal_gradient_is_zero_as_torch():
    tm, hm = _pair(torch.zeros(2, 3, dtype=torch.float64))
    ts, hs = _pair(torch.ones(3, dtype=torch.float64))
    torch.manual_seed(0)
    expected = torch.normal(tm, ts)
    hg.manual_seed(0)
    got = hg.normal(hm, hs)
    assert got.requires_grad and expected.requires_grad
    g = torch.randn(2, 3, dtype=torch.float64)
    expected.backward(g)
    got.backward(hg.tensor(g))
    _same(hm.grad, tm.grad)
    _same(hs.grad, ts.grad)
    assert (hm.grad.data == 0).all() and (hs.grad.data == 0).all()


def test_normal_refusals():
    with pytest.raises(TypeError, match="out= is not supported"):
        hg.normal(hg.zeros(2), 1.0, out=hg.zeros(2))
    with pytest.raises(TypeError, match="give the size"):
        hg.normal(0.0, 1.0)
    with pytest.raises(TypeError, match="size must be a tuple"):
        hg.normal(0.0, 1.0, 5)
    with pytest.raises(TypeError, match="size, dtype can only be given"):
        hg.normal(hg.zeros(2), 1.0, (2,), dtype=hg.float64)
    with pytest.raises(RuntimeError, match="std >= 0"):
        hg.normal(hg.zeros(2), -1.0)


# ------------------------------------------------------------------ no sparse gradients
def test_embedding_sparse_true_is_refused_by_name():
    """docs/nn.md leaves SparseAdam out because no layer makes sparse gradients."""
    for layer, name in ((hg.nn.Embedding(5, 3, sparse=True), "embedding"),
                        (hg.nn.EmbeddingBag(5, 3, sparse=True), "embedding_bag")):
        with pytest.raises(NotImplementedError, match=f"{name}: sparse gradients are not "
                                                      "supported; use sparse=False"):
            layer(hg.tensor([[1, 2]]))
