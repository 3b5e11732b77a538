"""handgrad.autograd.functional against torch.autograd.functional: the same function
written once (it uses only operations both libraries have, as methods), the same
inputs, the same nesting of results and the same values."""

import pytest
import torch

import handgrad as hg
from handgrad.autograd import functional as F

FUNCTIONS = {
    "one_to_one": (lambda x: (x * x).tanh() * 3, [(3, 2)]),
    "scalar_out": (lambda x: (x.exp() * x).sum(), [(4,)]),
    "two_to_one": (lambda x, y: x.matmul(y).sigmoid(), [(2, 3), (3, 2)]),
    "two_to_two": (lambda x, y: (x * y.sum(), (x + 1).log()), [(3,), (2,)]),
    "unused_input": (lambda x, y: x.sin(), [(3,), (2,)]),
}


def _inputs(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    raw = [torch.rand(*s, dtype=torch.float64, generator=gen) + 0.5 for s in shapes]
    return tuple(raw), tuple(hg.tensor(r) for r in raw)


def _raw(value):
    if isinstance(value, tuple):
        return tuple(_raw(v) for v in value)
    assert isinstance(value, hg.Tensor), type(value)
    return value.data


def _assert_same(ours, theirs):
    assert isinstance(ours, tuple) == isinstance(theirs, tuple), (ours, theirs)
    if isinstance(theirs, tuple):
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            _assert_same(o, t)
    else:
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs)


def _call_forms(shapes):
    """The inputs as a lone tensor when there is one (torch's two calling forms)."""
    raw, ours = _inputs(shapes)
    return (raw[0], ours[0]) if len(shapes) == 1 else (raw, ours)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_jacobian_matches_torch(name):
    func, shapes = FUNCTIONS[name]
    raw, ours = _call_forms(shapes)
    _assert_same(_raw(F.jacobian(func, ours)), torch.autograd.functional.jacobian(func, raw))
    _assert_same(_raw(F.jacobian(func, ours, vectorize=True)),
                 torch.autograd.functional.jacobian(func, raw, vectorize=True))


def _like_outputs(func, raw, seed):
    out = func(*raw) if isinstance(raw, tuple) else func(raw)
    gen = torch.Generator().manual_seed(seed)
    if isinstance(out, tuple):
        vs = tuple(torch.randn(o.shape, dtype=o.dtype, generator=gen) for o in out)
        return vs, tuple(hg.tensor(v) for v in vs)
    v = torch.randn(out.shape, dtype=out.dtype, generator=gen)
    return v, hg.tensor(v)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_vjp_matches_torch(name):
    func, shapes = FUNCTIONS[name]
    raw, ours = _call_forms(shapes)
    v_raw, v_ours = _like_outputs(func, raw, seed=1)
    _assert_same(_raw(F.vjp(func, ours, v_ours)),
                 torch.autograd.functional.vjp(func, raw, v_raw))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_jvp_matches_torch(name):
    func, shapes = FUNCTIONS[name]
    raw, ours = _call_forms(shapes)
    _, v_ours = _call_forms(shapes)
    v_raw = _raw(v_ours)
    _assert_same(_raw(F.jvp(func, ours, v_ours)),
                 torch.autograd.functional.jvp(func, raw, v_raw))


def test_v_may_be_left_out_for_a_scalar_output_only():
    func, shapes = FUNCTIONS["scalar_out"]
    raw, ours = _call_forms(shapes)
    _assert_same(_raw(F.vjp(func, ours)), torch.autograd.functional.vjp(func, raw))
    with pytest.raises(RuntimeError, match="v can only be None"):
        F.vjp(FUNCTIONS["one_to_one"][0], hg.ones(3, 2))


def test_strict_mode_refuses_an_independent_output_as_torch_does():
    func, shapes = FUNCTIONS["unused_input"]
    raw, ours = _call_forms(shapes)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.jacobian(func, ours, strict=True)
    with pytest.raises(RuntimeError):
        torch.autograd.functional.jacobian(func, raw, strict=True)


def test_the_inputs_keep_no_graph_and_no_grad():
    x = hg.ones(3, requires_grad=True)
    jac = F.jacobian(lambda t: t * 2, x)
    assert x.grad is None and not jac.requires_grad
    out, _ = F.vjp(lambda t: t * 2, x, hg.ones(3))
    assert not out.requires_grad


def test_second_order_and_create_graph_say_why_they_are_not_supported():
    f = FUNCTIONS["scalar_out"][0]
    for second_order in (F.hessian, F.hvp, F.vhp):
        with pytest.raises(NotImplementedError, match="second-order gradients"):
            second_order(f, hg.ones(4)) if second_order is F.hessian else \
                second_order(f, hg.ones(4), hg.ones(4))
    with pytest.raises(NotImplementedError, match="create_graph"):
        F.jacobian(f, hg.ones(4), create_graph=True)
    with pytest.raises(NotImplementedError, match="vectorize=True"):
        F.jacobian(f, hg.ones(4), strategy="forward-mode")


def test_inputs_that_are_not_tensors_are_a_type_error():
    with pytest.raises(TypeError, match="index 1"):
        F.jacobian(lambda a, b: a, (hg.ones(2), 3))
    with pytest.raises(TypeError, match="outputs of the user-provided function"):
        F.vjp(lambda a: 3, hg.ones(2))
