"""What the registry entries of handgrad/ops/trig.py and bernoulli.py do not show:
torch's aliases and free functions, atan2's zero gradient at the origin, an exact GELU
written with erf, bernoulli's draws, bernoulli_ and the number-p form (whose backward
torch refuses), and count_nonzero."""

import math

import pytest
import torch

import handgrad as hg
import handgrad.nn.functional as HF


def test_aliases_and_free_functions_are_torchs():
    t = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64)
    x = hg.tensor(t)
    for name in ("asin", "acos", "atan", "arcsin", "arccos", "arctan", "sinh", "cosh",
                 "erf"):
        assert torch.equal(getattr(hg, name)(x).data, getattr(torch, name)(t)), name
        assert torch.equal(getattr(x, name)().data, getattr(t, name)()), name
    assert torch.equal(hg.arctan2(x, x.flip(0)).data, torch.arctan2(t, t.flip(0)))


def test_atan2_at_the_origin_has_torchs_zero_gradient():
    y, x = (hg.tensor([0.0, 1.0], requires_grad=True) for _ in range(2))
    ty, tx = (torch.tensor([0.0, 1.0], requires_grad=True) for _ in range(2))
    hg.atan2(y, x).sum().backward()
    torch.atan2(ty, tx).sum().backward()
    torch.testing.assert_close(y.grad.data, ty.grad, equal_nan=True)
    torch.testing.assert_close(x.grad.data, tx.grad, equal_nan=True)


def test_gelu_written_with_erf_matches_f_gelu():
    t = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    x = hg.tensor(t.detach(), requires_grad=True)
    mine = 0.5 * x * (1 + hg.erf(x / math.sqrt(2)))
    mine.sum().backward()
    torch.nn.functional.gelu(t).sum().backward()
    torch.testing.assert_close(mine.data, HF.gelu(hg.tensor(t.detach())).data)
    torch.testing.assert_close(x.grad.data, t.grad)


def test_bernoulli_draws_what_torch_draws():
    probs = torch.rand(4, 5)
    hg.manual_seed(3)
    ours = [hg.bernoulli(hg.tensor(probs)), hg.tensor(probs).bernoulli(0.25)]
    torch.manual_seed(3)
    theirs = [torch.bernoulli(probs), probs.bernoulli(0.25)]
    for a, b in zip(ours, theirs):
        assert torch.equal(a.data, b)
    gen = hg.Generator().manual_seed(4)
    assert torch.equal(hg.bernoulli(hg.tensor(probs), generator=gen).data,
                       torch.bernoulli(probs, generator=torch.Generator().manual_seed(4)))
    filled = hg.zeros(6, 3)
    hg.manual_seed(5)
    filled.bernoulli_(0.4)
    torch.manual_seed(5)
    assert torch.equal(filled.data, torch.zeros(6, 3).bernoulli_(0.4))
    torch.manual_seed(6)
    expected = torch.zeros(6, 3).bernoulli_(probs[:1, :3])
    hg.manual_seed(6)
    assert torch.equal(filled.bernoulli_(hg.tensor(probs[:1, :3])).data, expected)


def test_bernoulli_gradients_as_torch():
    p = hg.full((3,), 0.5, requires_grad=True)
    sample = hg.bernoulli(p)
    assert sample.requires_grad
    sample.sum().backward()
    assert p.grad.tolist() == [0.0, 0.0, 0.0]  # torch defines it as 0
    with pytest.raises(RuntimeError, match="number p"):
        p.bernoulli(0.3).sum().backward()
    with pytest.raises(RuntimeError, match="bernoulli_"):
        hg.zeros(3, requires_grad=True).bernoulli_(0.5)


def test_count_nonzero_matches_torch():
    t = torch.tensor([[0, 1, 2], [0, 0, 3]])
    x = hg.tensor(t)
    for dim in (None, 0, 1, (0, 1)):
        assert torch.equal(hg.count_nonzero(x, dim=dim).data, torch.count_nonzero(t, dim=dim))
    assert not x.float().requires_grad_().count_nonzero().requires_grad


def test_the_percent_operator_keeps_the_graph_as_torchs():
    # `x % m` used to leave the graph silently (no gradient for x, none for m)
    t, tm = torch.tensor([-3.5, 2.5, 0.7], requires_grad=True), torch.tensor([2.0, 1.5, -0.4],
                                                                            requires_grad=True)
    x, m = (hg.tensor(v.detach(), requires_grad=True) for v in (t, tm))
    ((x % m) * x + x % 2 + hg.remainder(x, 0.3)).sum().backward()
    ((t % tm) * t + t % 2 + torch.remainder(t, 0.3)).sum().backward()
    torch.testing.assert_close(x.grad.data, t.grad)
    torch.testing.assert_close(m.grad.data, tm.grad)
    assert torch.equal((7 % hg.tensor([3, -4])).data, 7 % torch.tensor([3, -4]))
    with pytest.raises(RuntimeError, match="no derivative"):
        (3.0 % m).sum().backward()  # torch: derivative for aten::remainder not implemented


@pytest.mark.parametrize("name", ["abs", "neg", "sqrt", "square", "log", "sin", "cos", "tanh",
                                  "sigmoid", "relu"])
def test_inplace_unary_forms_match_torch(name):
    t = torch.rand(3, 4, dtype=torch.float64) + 0.1
    x = hg.tensor(t.clone())
    assert getattr(x, f"{name}_")() is x
    assert torch.equal(x.data, getattr(t.clone(), f"{name}_")())
    # in the graph: recorded as the out-of-place op, gradients as torch's
    leaf_t = t.clone().requires_grad_()
    leaf = hg.tensor(t.clone(), requires_grad=True)
    y_t, y = leaf_t * 1.5, leaf * 1.5
    getattr(y_t, f"{name}_")()
    getattr(y, f"{name}_")()
    (y_t * torch.arange(12.0).reshape(3, 4)).sum().backward()
    (y * hg.arange(12.0).reshape(3, 4)).sum().backward()
    torch.testing.assert_close(leaf.grad.data, leaf_t.grad)
    with pytest.raises(RuntimeError, match=f"{name}_: a leaf tensor"):
        getattr(hg.tensor(t.clone(), requires_grad=True), f"{name}_")()


def test_pow_inplace_aliases_and_free_functions():
    t = torch.rand(2, 3, dtype=torch.float64) + 0.5
    x = hg.tensor(t.clone())
    assert torch.equal(x.pow_(2).data, t.clone().pow_(2))
    leaf = hg.tensor(t.clone(), requires_grad=True)
    y = leaf * 1.0
    y.pow_(3)
    y.sum().backward()
    torch.testing.assert_close(leaf.grad.data, 3 * t ** 2)
    x = hg.tensor(t)
    assert torch.equal(x.absolute().data, t.absolute())
    assert torch.equal(x.true_divide(2).data, t.true_divide(2))
    assert torch.equal(hg.true_divide(x, x).data, torch.true_divide(t, t))
    assert x.ravel().shape == (6,) and hg.ravel(x.t()).tolist() == t.t().ravel().tolist()
    assert (x.nbytes, x.itemsize) == (t.nbytes, t.itemsize)
    assert torch.equal(hg.sign(x - 1).data, torch.sign(t - 1))
    assert torch.equal(hg.clip(x, 0.6, 0.9).data, torch.clip(t, 0.6, 0.9))
    assert torch.equal(hg.t(x).data, torch.t(t)) and torch.equal(hg.absolute(x).data, t.abs())
    previous = hg.get_float32_matmul_precision()
    hg.set_float32_matmul_precision("high")
    assert torch.get_float32_matmul_precision() == "high"
    hg.set_float32_matmul_precision(previous)


@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("sizes", [(2, 3), (4,), (2, 3, 4), (1, 0)])
def test_meshgrid_values_and_gradients_match_torch(indexing, sizes):
    ts = [torch.randn(n, dtype=torch.float64, requires_grad=True) for n in sizes]
    xs = [hg.tensor(t.detach(), requires_grad=True) for t in ts]
    expected = torch.meshgrid(*ts, indexing=indexing)
    got = hg.meshgrid(xs, indexing=indexing)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and torch.equal(g.data, e.detach())
    weights = [torch.randn(e.shape, dtype=torch.float64) for e in expected]
    sum((e * w).sum() for e, w in zip(expected, weights)).backward()
    sum((g * hg.tensor(w)).sum() for g, w in zip(got, weights)).backward()
    for x, t in zip(xs, ts):
        torch.testing.assert_close(x.grad.data, t.grad)


def test_meshgrid_warns_without_indexing_and_refuses_matrices_as_torch():
    with pytest.warns(UserWarning, match="indexing argument"):
        a, _ = hg.meshgrid(hg.arange(2), hg.arange(3))
    assert a.shape == (2, 3)
    with pytest.raises(RuntimeError, match="0D or 1D"):
        hg.meshgrid(hg.ones(2, 2), indexing="ij")


def test_broadcast_tensors_indices_and_bincount_match_torch():
    t1 = torch.randn(3, 1, dtype=torch.float64, requires_grad=True)
    x1 = hg.tensor(t1.detach(), requires_grad=True)
    a, b = hg.broadcast_tensors(x1, hg.ones(4))
    ta, tb = torch.broadcast_tensors(t1, torch.ones(4))
    assert a.shape == ta.shape == b.shape == tb.shape
    (a * hg.arange(12.0).reshape(3, 4)).sum().backward()
    (ta * torch.arange(12.0).reshape(3, 4)).sum().backward()
    torch.testing.assert_close(x1.grad.data, t1.grad)
    assert hg.broadcast_shapes((3, 1), (4,)) == (3, 4)
    for offset in (-1, 0, 2):
        assert torch.equal(hg.tril_indices(4, 3, offset).data, torch.tril_indices(4, 3, offset))
        assert torch.equal(hg.triu_indices(3, 5, offset).data, torch.triu_indices(3, 5, offset))
    labels, w = torch.tensor([0, 2, 2, 5]), torch.rand(4)
    assert torch.equal(hg.bincount(hg.tensor(labels)).data, torch.bincount(labels))
    assert torch.equal(hg.tensor(labels).bincount(hg.tensor(w), minlength=8).data,
                       labels.bincount(w, minlength=8))
    with pytest.raises(RuntimeError, match="no derivative"):
        hg.bincount(hg.tensor(labels), weights=hg.tensor(w, requires_grad=True))
