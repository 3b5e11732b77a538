"""The math breadth beyond the registry's checks: einsum on random equations (repeated,
broadcast and one-operand letters) against torch autograd, torch's errors and their
types (einsum, mm, bmm, mv, dot, norms), prod's gradient at exact zeros, addmm with
beta=0 ignoring nan, allclose, clone's memory formats and strides, the norm rules of
torch.norm / torch.linalg.norm, the gradient of the 2-norm at 0, sum / softmax dtype=,
and torch.einsum / torch.norm / torch.linalg.* called on handgrad Tensors."""

from __future__ import annotations

import random

import pytest
import torch

import handgrad as hg
from handgrad.testing import gradcheck

INF = float("inf")


def _pair(t: torch.Tensor):
    t = t.detach().to(torch.float64)
    return t.clone().requires_grad_(True), hg.tensor(t.clone(), requires_grad=True)


def _same_gradients(torch_out, hg_out, torch_inputs, hg_inputs, seed=0):
    assert torch.allclose(hg_out.data, torch_out.detach(), atol=1e-10), \
        f"{tuple(hg_out.shape)} vs {tuple(torch_out.shape)}"
    g = torch.randn(torch_out.shape, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed))
    expected = torch.autograd.grad(torch_out, torch_inputs, g, allow_unused=True)
    hg_out.backward(hg.tensor(g))
    for e, h in zip(expected, hg_inputs):
        want = torch.zeros_like(h.data) if e is None else e
        assert torch.allclose(h.grad.data, want, atol=1e-10), (h.grad, want)


def _random_equation(rng: random.Random):
    """Operands of 0-4 letters over 'abcB' (repeats allowed), sizes 1 now and then for
    broadcasting, an explicit output of distinct letters or the implicit one."""
    sizes = {c: rng.choice([2, 3, 4]) for c in "abcB"}
    n = rng.randint(1, 3)
    subs = ["".join(rng.choice("abcB") for _ in range(rng.randint(0, 4))) for _ in range(n)]
    shapes = []
    for s in subs:  # one size per letter within an operand; now and then 1 (broadcast)
        own = {c: sizes[c] if rng.random() > 0.15 else 1 for c in s}
        shapes.append(tuple(own[c] for c in s))
    letters = sorted(set("".join(subs)))
    if rng.random() < 0.3:
        return ",".join(subs), shapes
    out = "".join(c for c in letters if rng.random() < 0.5)
    return ",".join(subs) + "->" + "".join(rng.sample(out, len(out))), shapes


def test_einsum_random_equations_match_torch_autograd():
    rng = random.Random(12)
    checked = 0
    for _ in range(120):
        equation, shapes = _random_equation(rng)
        operands = [torch.randn(s, dtype=torch.float64) for s in shapes]
        try:
            expected = torch.einsum(equation, *operands)
        except RuntimeError:
            continue  # a size-1 letter against itself that torch refuses; skip it
        pairs = [_pair(x) for x in operands]
        t_in, h_in = [p[0] for p in pairs], [p[1] for p in pairs]
        out = hg.einsum(equation, *h_in)
        assert out.shape == expected.shape, equation
        _same_gradients(torch.einsum(equation, *t_in), out, t_in, h_in, checked)
        checked += 1
    assert checked > 80


def test_einsum_gradcheck_with_diagonal_and_broadcast():
    a = hg.randn(3, 3, 2, dtype=hg.float64, requires_grad=True)
    b = hg.randn(1, 2, dtype=hg.float64, requires_grad=True)
    assert gradcheck(lambda a, b: hg.einsum("iij,kj->ik", a, b), a, b)


@pytest.mark.parametrize("equation, shapes", [
    ("ij,jk->ik", [(2, 3)]),            # too few operands
    ("ij->i", [(2, 3, 4)]),             # subscripts do not match the dims
    ("ij,jk->ik", [(2, 3), (4, 5)]),    # j of different sizes
    ("ij->ii", [(2, 2)]),               # repeated output letter
    ("ij->k", [(2, 3)]),                # output letter in no input
    ("i1->i", [(2, 3)]),                # not a letter
])
def test_einsum_errors_are_torchs_type(equation, shapes):
    operands = [torch.randn(s) for s in shapes]
    with pytest.raises(RuntimeError):
        torch.einsum(equation, *operands)
    with pytest.raises(RuntimeError, match="einsum"):
        hg.einsum(equation, *(hg.tensor(x) for x in operands))


def test_torch_functions_reach_the_handgrad_ops():
    t, h = _pair(torch.randn(3, 4))
    for call in (lambda m, x: m.einsum("ij,kj->ik", x, x),
                 lambda m, x: m.norm(x, dim=1),
                 lambda m, x: m.norm(x, p=1),
                 lambda m, x: m.linalg.vector_norm(x, -INF, 0),
                 lambda m, x: m.linalg.matrix_norm(x, 1),
                 lambda m, x: m.linalg.norm(x, INF),
                 lambda m, x: m.prod(x, 1),
                 lambda m, x: m.trace(x),
                 lambda m, x: m.addcmul(x, x, x, value=0.5)):
        t.grad = None
        h.grad = None
        torch_out, via_torch = call(torch, t), call(torch, h)
        assert isinstance(via_torch, hg.Tensor)
        _same_gradients(torch_out, via_torch, [t], [h])


@pytest.mark.parametrize("call", [
    lambda m, a, b: m.mm(a, a),
    lambda m, a, b: m.mm(a.reshape(-1), b),
    lambda m, a, b: m.bmm(a, b),
    lambda m, a, b: m.bmm(a.unsqueeze(0), b.unsqueeze(0).expand(2, 4, 5)),
    lambda m, a, b: m.mv(a, b[0]),
    lambda m, a, b: m.dot(a[0], b[0]),
    lambda m, a, b: m.dot(a, b),
    lambda m, a, b: m.outer(a, b[0]),
    lambda m, a, b: m.trace(a.unsqueeze(0)),
    lambda m, a, b: m.diag(a.unsqueeze(0)),
    lambda m, a, b: m.mm(a.T, b.double()),
])
def test_product_errors_are_torchs_type(call):
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    with pytest.raises(RuntimeError) as expected:
        call(torch, a, b)
    with pytest.raises(type(expected.value)):
        call(hg, hg.tensor(a), hg.tensor(b))


def test_addmm_with_beta_zero_ignores_nan_in_input():
    x = torch.full((3, 5), float("nan"))
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    expected = torch.addmm(x, a, b, beta=0, alpha=2)
    got = hg.addmm(hg.tensor(x), hg.tensor(a), hg.tensor(b), beta=0, alpha=2)
    assert torch.allclose(got.data, expected)
    with pytest.raises(RuntimeError):
        hg.addmm(hg.zeros(2, 2), hg.tensor(a), hg.tensor(b))


@pytest.mark.parametrize("name", ["addmm", "baddbmm", "addmv", "addbmm", "addr"])
def test_beta_zero_gives_input_a_zero_gradient_as_torch(name):
    shapes = {"addmm": ((3, 5), (3, 4), (4, 5)), "baddbmm": ((2, 3, 5), (2, 3, 4), (2, 4, 5)),
              "addmv": ((3,), (3, 4), (4,)), "addbmm": ((3, 5), (2, 3, 4), (2, 4, 5)),
              "addr": ((3, 5), (3,), (5,))}[name]
    x, m1, m2 = (torch.randn(s, dtype=torch.float64) for s in shapes)
    x[0] = float("nan")
    tx = x.clone().requires_grad_()
    getattr(torch, name)(tx, m1, m2, beta=0).sum().backward()
    hx = hg.tensor(x, requires_grad=True)
    out = getattr(hg, name)(hx, hg.tensor(m1), hg.tensor(m2), beta=0)
    assert not out.isnan().any().item()
    out.sum().backward()
    assert torch.equal(hx.grad.data, tx.grad)  # zeros, as torch's


@pytest.mark.parametrize("values", [
    [[1.0, 0.0, 3.0], [2.0, 5.0, -1.0]],       # one zero in a row
    [[0.0, 0.0, 3.0], [2.0, 0.0, -1.0]],       # two zeros in a row, one in the other
    [[0.0, 0.0, 0.0], [0.0, 4.0, 0.0]],        # all zeros
])
@pytest.mark.parametrize("dim", [None, 0, 1])
def test_prod_gradient_at_exact_zeros(values, dim):
    t, h = _pair(torch.tensor(values))
    expected = t.prod() if dim is None else t.prod(dim)
    got = h.prod() if dim is None else h.prod(dim)
    _same_gradients(expected, got, [t], [h])
    assert gradcheck(lambda x: x.prod() if dim is None else x.prod(dim), h.detach())


def test_prod_dtypes_and_errors_like_torch():
    ints = torch.arange(1, 7, dtype=torch.int32).reshape(2, 3)
    assert hg.prod(hg.tensor(ints)).dtype == torch.prod(ints).dtype == torch.int64
    assert hg.tensor(ints).prod(1, dtype=hg.float64).dtype == torch.float64
    assert torch.equal(hg.tensor(ints).prod(0, keepdim=True).data, ints.prod(0, keepdim=True))
    with pytest.raises(IndexError):
        hg.tensor(ints).prod(2)


def test_allclose_like_torch():
    a = torch.tensor([1.0, float("nan"), 3.0])
    b = a + 1e-7
    for kwargs in ({}, {"equal_nan": True}, {"rtol": 0.0, "atol": 0.0, "equal_nan": True}):
        assert hg.allclose(hg.tensor(a), hg.tensor(b), **kwargs) == torch.allclose(a, b,
                                                                                 **kwargs)
    assert torch.allclose(hg.tensor(a[[0, 2]]), hg.tensor(b[[0, 2]]))


@pytest.mark.parametrize("memory_format", [torch.preserve_format, torch.contiguous_format,
                                           torch.channels_last])
def test_clone_memory_format_strides_like_torch(memory_format):
    base = torch.randn(2, 3, 4, 5).permute(0, 2, 3, 1)  # non-contiguous but dense
    t, h = _pair(base)
    h = hg.tensor(base.detach().clone().double(), requires_grad=True).permute(0, 2, 3, 1)
    t = base.double().requires_grad_(True).permute(0, 2, 3, 1)
    expected, got = t.clone(memory_format=memory_format), hg.clone(h,
                                                                   memory_format=memory_format)
    assert got.data.stride() == expected.stride()
    assert got.grad_fn is not None and torch.equal(got.data, expected.detach())
    with pytest.raises(RuntimeError):
        torch.randn(2, 3).clone(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError):
        hg.randn(2, 3).clone(memory_format=hg.channels_last)


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, INF, -INF, 0, -1, -2.5, "fro", None])
@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
def test_tensor_norm_orders_like_torch(p, dim):
    values = torch.tensor([[1.5, -0.5, 2.0], [-3.0, 0.25, 1.0]])
    t, h = _pair(values)
    _same_gradients(t.norm(p, dim), h.norm(p, dim), [t], [h])


@pytest.mark.parametrize("call", [
    lambda m, x: m.linalg.norm(x),
    lambda m, x: m.linalg.norm(x, 1),
    lambda m, x: m.linalg.norm(x, -INF),
    lambda m, x: m.linalg.norm(x, "fro"),
    lambda m, x: m.linalg.norm(x, 3, dim=1, keepdim=True),
    lambda m, x: m.linalg.norm(x[0], -1),
    lambda m, x: m.linalg.norm(x, dim=(0, 1)),
    lambda m, x: m.linalg.matrix_norm(x, -1, keepdim=True),
    lambda m, x: m.linalg.vector_norm(x, 0.5, (0, 1)),
    lambda m, x: m.linalg.vector_norm(x, 2, dtype=torch.float64),
    lambda m, x: m.linalg.norm(x, "nuc"),
    lambda m, x: m.linalg.matrix_norm(x, 2),
    lambda m, x: m.linalg.matrix_norm(x, -2, keepdim=True),
    lambda m, x: m.norm(x, "nuc"),
])
def test_linalg_norms_like_torch(call):
    values = torch.tensor([[1.5, -0.5, 2.0], [-3.0, 0.25, 1.0]])
    t, h = _pair(values)
    _same_gradients(call(torch, t), call(hg, h), [t], [h])


@pytest.mark.parametrize("call", [
    lambda m, x: m.linalg.vector_norm(x.long()),
    lambda m, x: m.linalg.matrix_norm(x[0]),
    lambda m, x: m.linalg.matrix_norm(x, "abc"),
    lambda m, x: m.linalg.norm(x.unsqueeze(0), 1),
    lambda m, x: m.norm(x, "abc"),
    lambda m, x: m.norm(x.unsqueeze(0), "nuc"),
    lambda m, x: m.linalg.matrix_norm(x[0], "nuc"),
])
def test_norm_errors_are_torchs_type(call):
    x = torch.randn(2, 3)
    with pytest.raises(RuntimeError):
        call(torch, x)
    with pytest.raises(RuntimeError):
        call(hg, hg.tensor(x))


@pytest.mark.parametrize("p", [0.5, -1.0, 1.5, 3])
def test_norm_gradient_at_a_zero_entry_like_torch(p):
    t, h = _pair(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, -1.0]]))
    _same_gradients(t.norm(p) + t.norm(p, dim=1).sum(), h.norm(p) + h.norm(p, dim=1).sum(),
                    [t], [h])


def test_two_norm_gradient_at_zero_is_zero_as_torch():
    t, h = _pair(torch.zeros(2, 3))
    _same_gradients(t.norm() + t.norm(dim=1).sum() + torch.linalg.vector_norm(t, 2, 0).sum(),
                    h.norm() + h.norm(dim=1).sum() + hg.linalg.vector_norm(h, 2, 0).sum(),
                    [t], [h])
    assert not torch.isnan(h.grad.data).any()


def test_sum_softmax_dtype_like_torch():
    ints = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    assert hg.tensor(ints).sum().dtype == ints.sum().dtype == torch.int64
    assert hg.sum(hg.tensor(ints), 1, dtype=hg.float32).dtype == torch.float32
    half = torch.randn(2, 3).half()
    for name in ("softmax", "log_softmax"):
        expected = getattr(half, name)(1, dtype=torch.float32)
        got = getattr(hg.tensor(half), name)(1, dtype=hg.float32)
        assert got.dtype == torch.float32 and torch.allclose(got.data, expected)


def test_lerp_log1p_expm1_small_values():
    x = torch.tensor([1e-10, -1e-12, 1e-8], dtype=torch.float64)
    assert torch.equal(hg.log1p(hg.tensor(x)).data, torch.log1p(x))
    assert torch.equal(hg.expm1(hg.tensor(x)).data, torch.expm1(x))
    t, h = _pair(torch.randn(3))
    e, he = _pair(torch.randn(3))
    w, hw = _pair(torch.rand(3))
    _same_gradients(torch.lerp(t, e, w), hg.lerp(h, he, hw), [t, e, w], [h, he, hw])


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round"])
def test_roundings_give_a_zero_gradient_and_keep_integers(name):
    t, h = _pair(torch.tensor([-1.5, -0.2, 0.5, 2.7]))
    _same_gradients(getattr(torch, name)(t), getattr(hg, name)(h), [t], [h])
    ints = torch.tensor([-3, 4])
    got = getattr(hg.tensor(ints), name)()
    assert got.dtype == getattr(ints, name)().dtype and torch.equal(got.data, ints)


def test_exp_in_place_like_torch():
    leaf = hg.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="exp_"):
        leaf.exp_()
    t, h = _pair(torch.randn(3))
    expected, got = (t * 2).exp_(), (h * 2).exp_()
    _same_gradients(expected, got, [t], [h])
    plain = hg.zeros(2)
    assert plain.exp_() is plain and torch.equal(plain.data, torch.ones(2))


def test_isinf_fmod_diff_like_torch():
    x = torch.tensor([1.0, INF, -INF, float("nan")])
    for name in ("isinf", "isposinf", "isneginf"):
        assert torch.equal(getattr(hg, name)(hg.tensor(x)).data, getattr(torch, name)(x))
    ints = torch.tensor([-7, 7, 5])
    assert torch.equal(hg.fmod(hg.tensor(ints), 3).data, torch.fmod(ints, 3))
    with pytest.raises(RuntimeError):
        torch.diff(torch.randn(3), prepend=torch.tensor(1.0))
    with pytest.raises(RuntimeError):
        hg.diff(hg.randn(3), prepend=hg.tensor(1.0))
    with pytest.raises(RuntimeError):
        hg.diff(hg.tensor(2.0))


def test_median_ties_nan_and_fields_like_torch():
    for values in ([1.0, 2.0, 2.0, 3.0], [2.0, 2.0, 2.0], [1.0, float("nan"), 2.0, 3.0]):
        t, h = _pair(torch.tensor(values))
        expected, got = t.median(), h.median()
        assert torch.equal(expected.isnan(), got.data.isnan())
        expected.backward()
        got.backward()
        assert torch.allclose(h.grad.data, t.grad)
    t, h = _pair(torch.tensor([[3.0, 1.0, 2.0, 2.0], [0.0, 5.0, 4.0, 1.0]]))
    expected, got = torch.median(t, 1, keepdim=True), hg.median(h, 1, keepdim=True)
    assert torch.equal(got.indices.data, expected.indices)
    _same_gradients(expected.values, got.values, [t], [h])


def test_tensordot_inner_multi_dot_through_torch_and_their_errors():
    t, h = _pair(torch.randn(2, 3, 4))
    for call in (lambda m, x: m.tensordot(x, x, dims=([0, 1], [0, 1])),
                 lambda m, x: m.tensordot(x, x, 0).sum(),
                 lambda m, x: m.inner(x, x[0]),
                 lambda m, x: m.linalg.multi_dot([x[0], x[1].T, x[1]])):
        t.grad = h.grad = None
        _same_gradients(call(torch, t), call(torch, h), [t], [h])
    for call in (lambda m, x: m.tensordot(x, x, -1),
                 lambda m, x: m.tensordot(x, x, ([0], [1])),
                 lambda m, x: m.tensordot(x, x, ([0, 1], [0])),
                 lambda m, x: m.inner(x, x[0].T),
                 lambda m, x: m.linalg.multi_dot([x[0]]),
                 lambda m, x: m.linalg.multi_dot([x[0], x, x[0]])):
        with pytest.raises(RuntimeError):
            call(torch, t.detach())
        with pytest.raises(RuntimeError):
            call(hg, h.detach())


def test_linalg_matrix_exp_and_solve_match_torch():
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(2, 3, 3, dtype=torch.float64, generator=gen)
    b = torch.randn(2, 3, 2, dtype=torch.float64, generator=gen)
    g = torch.randn(2, 3, 3, dtype=torch.float64, generator=gen)
    ha, hb = hg.tensor(a, requires_grad=True), hg.tensor(b, requires_grad=True)
    ta, tb = a.clone().requires_grad_(), b.clone().requires_grad_()
    out, ref = hg.linalg.matrix_exp(ha), torch.linalg.matrix_exp(ta)
    assert torch.allclose(out.data, ref.detach(), atol=1e-12)
    (out * hg.tensor(g)).sum().backward()
    (ref * g).sum().backward()
    assert torch.allclose(ha.grad.data, ta.grad, atol=1e-10)
    ha.grad = None
    ta.grad = None
    x, ref = torch.linalg.solve(ha, hb), torch.linalg.solve(ta, tb)  # routed to handgrad
    assert isinstance(x, hg.Tensor) and torch.allclose(x.data, ref.detach(), atol=1e-10)
    x.sum().backward()
    ref.sum().backward()
    assert torch.allclose(ha.grad.data, ta.grad, atol=1e-9)
    assert torch.allclose(hb.grad.data, tb.grad, atol=1e-9)
    with pytest.raises(RuntimeError, match=r"linalg\.solve: B of shape \(2, 3\) is a vector"):
        hg.linalg.solve(ha, hg.zeros(2, 3))


def test_floor_divide_stays_in_the_graph_with_a_zero_gradient():
    a = hg.tensor([1.5, -2.5, 7.0], requires_grad=True)
    b = hg.tensor([0.7, 0.6, 2.0], requires_grad=True)
    out = a // b + 3 // a + a.floor_divide(2) + hg.floor_divide(a, b)
    assert out.requires_grad and out.grad_fn is not None  # not silently cut from the graph
    ref = torch.floor_divide(a.data, b.data) + torch.floor_divide(3, a.data) \
        + torch.floor_divide(a.data, 2) + torch.floor_divide(a.data, b.data)
    assert torch.equal(out.data, ref)
    (out + a * b).sum().backward()
    assert torch.equal(a.grad.data, b.data) and torch.equal(b.grad.data, a.data)
    ints = hg.tensor([7, -7, 5])
    assert (ints // 2).tolist() == [3, -4, 2] and (9 // ints).tolist() == [1, -2, 1]
