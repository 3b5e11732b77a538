"""Tensors behave where users put them: NumPy on the left of an operator, assigned
`.grad`, exception types as torch's, integer tensors, and the torch spellings
where(cond), sum(dtype=), softmax(dtype=)."""

import numpy as np
import pytest
import torch

import handgrad as hg

# ---------------------------------------------------------------------- NumPy operands
_NUMPY_CASES = [  # (handgrad with NumPy on the left, the same with torch operands)
    ("np-scalar*", lambda t: np.float64(0.5) * t, lambda t: 0.5 * t),
    ("np.sqrt*", lambda t: np.sqrt(2.0) * t, lambda t: 2.0 ** 0.5 * t),
    ("ndarray+", lambda t: np.ones(3) + t, lambda t: torch.ones(3, dtype=torch.float64) + t),
    ("ndarray-", lambda t: np.ones(3) - t, lambda t: torch.ones(3, dtype=torch.float64) - t),
    ("ndarray/", lambda t: np.full(3, 2.0) / t, lambda t: torch.full((3,), 2.0,
                                                                     dtype=torch.float64) / t),
    ("np-scalar**", lambda t: np.float32(3) ** t, lambda t: 3.0 ** t),
    ("np.exp", lambda t: np.exp(t), lambda t: torch.exp(t)),
    ("np.maximum", lambda t: np.maximum(np.zeros(3, np.float32), t),
     lambda t: torch.maximum(torch.zeros(3), t)),
    ("*np-scalar", lambda t: t * np.float64(2), lambda t: t * 2.0),
    ("ndarray@", lambda t: np.ones((2, 3), np.float32) @ t, lambda t: torch.ones(2, 3) @ t),
]


@pytest.mark.parametrize("ours_fn, theirs_fn", [c[1:] for c in _NUMPY_CASES],
                         ids=[c[0] for c in _NUMPY_CASES])
def test_numpy_on_the_left_keeps_the_graph_and_matches_torch(ours_fn, theirs_fn):
    values = [0.5, 1.5, 2.0]
    ours = hg.tensor(values, requires_grad=True)
    theirs = torch.tensor(values, requires_grad=True)
    out, expected = ours_fn(ours), theirs_fn(theirs)
    assert isinstance(out, hg.Tensor) and out.requires_grad
    assert out.dtype == expected.dtype, (out.dtype, expected.dtype)
    torch.testing.assert_close(out.data, expected.detach())
    g = torch.rand(expected.shape, dtype=expected.dtype)
    out.backward(hg.tensor(g))
    expected.backward(g)
    torch.testing.assert_close(ours.grad.data, theirs.grad)


def test_numpy_without_a_handgrad_op_works_on_plain_data_and_refuses_lost_gradients():
    plain = hg.tensor([1.0, 2.0, 3.0])
    assert np.cumsum(plain).tolist() == [1.0, 3.0, 6.0]
    assert np.asarray(plain).tolist() == [1.0, 2.0, 3.0]
    graph = hg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy\.arctan.*gradient would be lost.*detach"):
        np.arctan(graph)
    with pytest.raises(RuntimeError, match="requires grad.*detach"):
        np.asarray(graph)  # as torch: .numpy() of a tensor that requires grad is refused


# ---------------------------------------------------------------------- assigned .grad
def test_assigning_grad_is_checked_as_torch_checks_it():
    p = hg.zeros(3, requires_grad=True)
    for wrong, what in [(hg.zeros(1), "different size"),
                        (hg.zeros(3, dtype=hg.float64), "different type"),
                        (hg.zeros(3, device="meta"), "different device")]:
        with pytest.raises(RuntimeError, match=f"assigned grad has data (of a|located on a) "
                                               f"{what}"):
            p.grad = wrong
        with pytest.raises(RuntimeError):  # torch refuses the same assignment
            torch.zeros(3, requires_grad=True).grad = torch.zeros_like(wrong.data)
    with pytest.raises(TypeError, match="Tensor or None"):
        p.grad = [0.0, 0.0, 0.0]
    assert p.grad is None
    p.grad = hg.ones(3)
    p.grad = torch.full((3,), 2.0)  # a torch tensor is taken as the gradient's data
    assert isinstance(p.grad, hg.Tensor) and p.grad.tolist() == [2.0, 2.0, 2.0]
    p.grad = None
    assert p.grad is None


def test_an_optimizer_never_sees_a_broadcast_grad():
    p = hg.nn.Parameter(hg.zeros(3))
    with pytest.raises(RuntimeError, match="different size"):
        p.grad = hg.ones(1)


# ---------------------------------------------------------------------- exception types
_T = torch.ones(2, 3)
_H = hg.ones(2, 3)
_MISTAKES = [
    ("index out of range", lambda x: x[5]),
    ("dim out of range", lambda x: x.sum(4)),
    ("transpose dim", lambda x: x.transpose(0, 3)),
    ("softmax dim", lambda x: x.softmax(3)),
    ("squeeze dim", lambda x: x.squeeze(5)),
    ("unsqueeze dim", lambda x: x.unsqueeze(5)),
    ("flatten dim", lambda x: x.flatten(0, 4)),
    ("negative step", lambda x: x[::-1]),
    ("bad view", lambda x: x.view(4)),
    ("no broadcast", lambda x: x + x[:, :2]),
    ("matmul sizes", lambda x: x @ x),
    ("clamp without bounds", lambda x: x.clamp()),
    ("narrow past the end", lambda x: x.narrow(1, 2, 5)),
    ("split sizes", lambda x: x.split([1, 1], dim=1)),
    ("split by 0", lambda x: x.split(0)),
    ("chunk 0", lambda x: x.chunk(0)),
    ("gather index", lambda x: x.gather(1, torch.tensor([[7]]) if isinstance(x, torch.Tensor)
                                        else hg.tensor([[7]]))),
    ("index_select float", lambda x: x.index_select(0, x[0])),
    ("expand", lambda x: x.expand(4, 4)),
    ("permute", lambda x: x.permute(0)),
]


@pytest.mark.parametrize("call", [c for _, c in _MISTAKES], ids=[n for n, _ in _MISTAKES])
def test_errors_have_the_type_torch_raises(call):
    with pytest.raises(Exception) as theirs:
        call(_T)
    with pytest.raises(Exception) as ours:
        call(_H)
    assert isinstance(ours.value, type(theirs.value)), (
        f"torch raises {type(theirs.value).__name__}, handgrad {type(ours.value).__name__}: "
        f"{ours.value}")


def test_except_index_error_keeps_working_with_handgrad_messages():
    try:
        hg.ones(3)[7]
    except IndexError as error:
        assert "getitem" in str(error) and "(3,)" in str(error)
    else:
        pytest.fail("no IndexError")


# ---------------------------------------------------------------------- integer tensors
def test_requires_grad_on_an_integer_tensor_is_refused_every_way():
    with pytest.raises(RuntimeError, match="floating-point"):
        hg.tensor([1, 2], requires_grad=True)
    t = hg.tensor([1, 2])
    with pytest.raises(RuntimeError, match="floating-point"):
        t.requires_grad = True
    with pytest.raises(RuntimeError, match="floating-point"):
        t.requires_grad_()
    assert not t.requires_grad


@pytest.mark.parametrize("name", ["gelu", "elu", "silu", "softplus", "leaky_relu",
                                  "softmax", "log_softmax"])
def test_activations_of_integer_tensors_raise_as_torch(name):
    args = (0,) if "softmax" in name else ()
    reference = getattr(torch.nn.functional, name)
    with pytest.raises(NotImplementedError):
        reference(torch.tensor([1, -2]), *args)
    with pytest.raises(NotImplementedError, match=f"{name}.*int64.*float"):
        getattr(hg.tensor([1, -2]), name)(*args)


def test_activations_torch_computes_for_integers_give_torchs_dtype():
    ints = [1, -2, 3]
    for name in ["relu", "sigmoid", "tanh", "exp", "abs"]:
        ours = getattr(hg.tensor(ints), name)()
        theirs = getattr(torch.tensor(ints), name)()
        assert ours.dtype == theirs.dtype and torch.allclose(ours.data, theirs), name


# ---------------------------------------------------------------------- torch spellings
def test_where_with_one_argument_gives_the_indices_as_torch():
    cond = [[1, 0, 2], [0, 0, 3]]
    ours, theirs = hg.where(hg.tensor(cond)), torch.where(torch.tensor(cond))
    assert len(ours) == len(theirs)
    assert all(torch.equal(a.data, b) for a, b in zip(ours, theirs))
    picked = hg.where(hg.tensor([True, False]), 1.0, 0.0)  # two numbers, as torch
    assert picked.tolist() == [1.0, 0.0] and picked.dtype == torch.float32


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_reductions_take_dtype_as_torch(op):
    x = hg.tensor([1e4, 1.5, -2.0], dtype=hg.float16, requires_grad=True)
    t = torch.tensor([1e4, 1.5, -2.0], dtype=torch.float16, requires_grad=True)
    ours, theirs = getattr(x, op)(dtype=hg.float64), getattr(t, op)(dtype=torch.float64)
    assert ours.dtype == theirs.dtype == torch.float64
    torch.testing.assert_close(ours.data, theirs.detach())
    ours.backward()
    theirs.backward()
    assert x.grad.dtype == torch.float16
    torch.testing.assert_close(x.grad.data, t.grad)
    assert hg.sum(hg.tensor([1, 2]), dtype=hg.float32).dtype == torch.float32


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_takes_dtype_as_torch(op):
    values = [[3.0, 1.0, -2.0], [0.5, 0.25, 8.0]]
    x = hg.tensor(values, dtype=hg.float16, requires_grad=True)
    t = torch.tensor(values, dtype=torch.float16, requires_grad=True)
    ours = getattr(hg.nn.functional, op)(x, dim=1, dtype=hg.float32)
    theirs = getattr(torch.nn.functional, op)(t, dim=1, dtype=torch.float32)
    assert ours.dtype == theirs.dtype == torch.float32
    assert getattr(x, op)(1, dtype=hg.float32).dtype == torch.float32
    torch.testing.assert_close(ours.data, theirs.detach())
    g = torch.rand(2, 3)
    ours.backward(hg.tensor(g))
    theirs.backward(g)
    torch.testing.assert_close(x.grad.data, t.grad)
