"""The less common activations against torch: the modules (repr, attributes, outputs and
gradients with torch.nn's twin, float32 and float64; PReLU's weight moving both ways
through state_dict), torch's subgradients at every kink, the in-place forms (values,
gradients through the graph, the refused leaf), integer inputs, one_hot, and the errors
with torch's exception types.

Left out: the functions on random inputs, finite differences and the composed references
(the registry: handgrad/testing/registry/activation_breadth.py, run by
tests/tensor/test_ops.py).
"""

from __future__ import annotations

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
MODULES = [
    ("Softmin", (1,), {}), ("Softmin", (), {"dim": -1}), ("LogSigmoid", (), {}),
    ("Hardtanh", (), {}), ("Hardtanh", (-0.5, 0.7), {}), ("ReLU6", (), {}),
    ("Hardswish", (), {}), ("Hardsigmoid", (), {}), ("Mish", (), {}), ("GLU", (), {}),
    ("GLU", (0,), {}), ("SELU", (), {}), ("CELU", (), {}), ("CELU", (0.6,), {}),
    ("Softsign", (), {}), ("Tanhshrink", (), {}), ("Threshold", (0.3, -1.5), {}),
    ("PReLU", (), {}), ("PReLU", (4,), {"init": 0.1}),
]
# torch's backward of these rounds a constant to float32 in every dtype (hardsigmoid's
# 1/6, celu's 1/alpha): handgrad's float64 gradients are the exact ones, compared with
# torch's to float32's precision in test_float32_constants_of_torchs_backward.
FLOAT32_CONSTANTS = {"Hardsigmoid", "CELU(0.6,)"}


@pytest.mark.parametrize("name, args, kwargs", MODULES,
                         ids=[f"{n}{a or ''}{k or ''}" for n, a, k in MODULES])
def test_module_matches_torch(dtype, name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert _public(ours) == _public(theirs)
    x = 3 * _randn(4, 4, 2)  # wide enough to reach every piece (hardswish's +-3, relu6's 6)
    x = x + 0.05 * torch.sign(x)
    if dtype == torch.float64 and f"{name}{args or ''}" in FLOAT32_CONSTANTS:
        dtype = torch.float32
    compare_modules(ours, theirs, x, dtype=dtype)


@pytest.mark.parametrize("ours, theirs, exact", [
    (lambda x: F.hardsigmoid(x), TF.hardsigmoid, lambda x: ((x > -3) & (x < 3)).double() / 6),
    (lambda x: F.celu(x, 0.6), lambda x: TF.celu(x, 0.6),
     lambda x: torch.where(x > 0, 1.0, torch.exp(x / 0.6))),
], ids=["hardsigmoid", "celu"])
def test_float32_constants_of_torchs_backward(ours, theirs, exact):
    x = 3 * _randn(50)
    leaf, torch_leaf = hg.tensor(x, requires_grad=True), x.clone().requires_grad_()
    ours(leaf).sum().backward()
    theirs(torch_leaf).sum().backward()
    assert_close(ours(hg.tensor(x)), theirs(x), torch.float64, "the values")
    assert_close(leaf.grad, exact(x), torch.float64, "handgrad: the exact derivative")
    torch.testing.assert_close(leaf.grad.data, torch_leaf.grad, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("name, args", [("Hardtanh", (-2.0, 3.0)), ("ReLU6", ()),
                                        ("Hardswish", ()), ("Hardsigmoid", ()), ("Mish", ()),
                                        ("SELU", ()), ("CELU", (2.0,)),
                                        ("Threshold", (0.1, 20.0))])
def test_module_reprs_and_inplace_modules(name, args, inplace):
    ours = getattr(nn, name)(*args, inplace=inplace)
    theirs = getattr(torch.nn, name)(*args, inplace=inplace)
    assert repr(ours) == repr(theirs)
    assert _public(ours) == _public(theirs)
    x = 4 * _randn(3, 5)
    ours_in, theirs_in = hg.tensor(x.clone()), x.clone()
    out_ours, out_theirs = ours(ours_in), theirs(theirs_in)
    assert_close(out_ours, out_theirs, torch.float64)
    assert (out_ours is ours_in) == inplace
    assert_close(ours_in, theirs_in, torch.float64, "the input after the call")


def test_prelu_weight_state_dict_both_ways(dtype):
    ours, theirs = nn.PReLU(3, init=0.3, dtype=dtype), torch.nn.PReLU(3, init=0.3, dtype=dtype)
    assert list(ours.state_dict()) == ["weight"]
    assert [n for n, _ in ours.named_parameters()] == ["weight"]
    assert_close(ours.weight, theirs.weight, dtype, "the initial weight")
    theirs.weight.data.copy_(torch.tensor([0.1, -0.2, 0.5], dtype=dtype))
    ours.load_state_dict(theirs.state_dict())
    assert_close(ours.weight, theirs.weight, dtype, "torch -> handgrad")
    with hg.no_grad():
        ours.weight.data.uniform_(-1, 1)
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    assert_close(ours.weight, theirs.weight, dtype, "handgrad -> torch")
    compare_modules(ours, theirs, _randn(2, 3, 4), dtype=dtype)
    assert nn.PReLU(2, device="cpu").weight.device.type == "cpu"


def test_prelu_one_slope_on_any_rank_and_per_channel_on_images(dtype):
    for shape in [(), (5,), (2, 3), (2, 3, 4, 4)]:
        compare_modules(nn.PReLU(), torch.nn.PReLU(), _randn(*shape), dtype=dtype)
    compare_modules(nn.PReLU(3), torch.nn.PReLU(3), _randn(2, 3, 4, 4), dtype=dtype)


# ------------------------------------------------------------------ kinks
KINKS = [
    ("relu6", lambda f: f.relu6, [0.0, 6.0, -1.0, 3.0, 7.0]),
    ("hardtanh", lambda f: f.hardtanh, [-1.0, 1.0, 0.0, 2.0]),
    ("hardtanh_bounds", lambda f: lambda x: f.hardtanh(x, -0.5, 0.25), [-0.5, 0.25, 0.0]),
    ("threshold", lambda f: lambda x: f.threshold(x, 0.5, -2.0), [0.5, 0.6, 0.4]),
    ("hardswish", lambda f: f.hardswish, [-3.0, 3.0, 0.0, -4.0, 4.0]),
    ("hardsigmoid", lambda f: f.hardsigmoid, [-3.0, 3.0, 0.0, -4.0, 4.0]),
    ("selu", lambda f: f.selu, [0.0, -1.0, 1.0]),
    ("celu", lambda f: lambda x: f.celu(x, 2.0), [0.0, -1.0, 1.0]),
    ("softsign", lambda f: f.softsign, [0.0, -1.0, 1.0]),
    ("prelu", lambda f: lambda x: f.prelu(x, x.new_tensor([0.25]) if hasattr(x, "new_tensor")
                                         and isinstance(x, torch.Tensor)
                                         else hg.tensor([0.25], dtype=x.dtype)),
     [0.0, -1.0, 1.0]),
    ("mish", lambda f: f.mish, [0.0, -30.0, 30.0]),
    ("logsigmoid", lambda f: f.logsigmoid, [0.0, -800.0, 800.0, -30.0]),
]


@pytest.mark.parametrize("name, function, values", KINKS, ids=[k[0] for k in KINKS])
def test_kinks_and_extremes_take_torchs_gradients(name, function, values):
    for dtype in (torch.float32, torch.float64):
        same_as_torch(function(F), values, ref=function(TF), dtype=dtype)


def test_logsigmoid_is_finite_far_out():
    x = hg.tensor([-1e4, -100.0, 100.0, 1e4], requires_grad=True)
    out = F.log_sigmoid(x)
    assert torch.isfinite(out.data).all()
    out.sum().backward()
    assert_close(x.grad, torch.tensor([1.0, 1.0, 0.0, 0.0]))


# ------------------------------------------------------------------ in place
INPLACE = [
    ("hardtanh", lambda f, x: f.hardtanh(x, -0.5, 0.5, inplace=True),
     lambda f, x: f.hardtanh_(x, -0.5, 0.5)),
    ("relu6", lambda f, x: f.relu6(x, inplace=True), None),
    ("hardswish", lambda f, x: f.hardswish(x, inplace=True), None),
    ("hardsigmoid", lambda f, x: f.hardsigmoid(x, inplace=True), None),
    ("mish", lambda f, x: f.mish(x, inplace=True), None),
    ("selu", lambda f, x: f.selu(x, inplace=True), lambda f, x: f.selu_(x)),
    ("celu", lambda f, x: f.celu(x, 1.5, inplace=True), lambda f, x: f.celu_(x, 1.5)),
    ("threshold", lambda f, x: f.threshold(x, 0.2, -3.0, inplace=True),
     lambda f, x: f.threshold_(x, 0.2, -3.0)),
]


@pytest.mark.parametrize("name, call, underscore", INPLACE, ids=[i[0] for i in INPLACE])
def test_inplace_forms_change_the_input_as_torch(name, call, underscore):
    x = 4 * _randn(3, 4)
    for form in [call] + ([underscore] if underscore else []):
        # no graph: the input itself is returned, holding the result
        ours, theirs = hg.tensor(x.clone()), x.clone()
        out_ours, out_theirs = form(F, ours), form(TF, theirs)
        assert out_ours is ours and out_theirs is theirs
        assert_close(ours, theirs, torch.float64, f"{name} in place")
        # inside a graph: the changed tensor takes the result's place, gradients as torch
        ours_leaf = hg.tensor(x.clone(), requires_grad=True)
        theirs_leaf = x.clone().requires_grad_()
        ours_mid, theirs_mid = ours_leaf * 2, theirs_leaf * 2
        assert form(F, ours_mid) is ours_mid
        form(TF, theirs_mid)
        assert_close(ours_mid, theirs_mid, torch.float64, f"{name} in place, in a graph")
        upstream = _randn(3, 4, seed=1)
        (ours_mid * hg.tensor(upstream)).sum().backward()
        (theirs_mid * upstream).sum().backward()
        torch.testing.assert_close(ours_leaf.grad.data, theirs_leaf.grad, rtol=1e-6,
                                   atol=1e-12)  # hardsigmoid, celu: torch's float32 constants
        # a leaf that requires grad is refused, as torch refuses it
        with pytest.raises(RuntimeError, match="leaf"):
            form(TF, x.clone().requires_grad_())
        with pytest.raises(RuntimeError, match="leaf"):
            form(F, hg.tensor(x.clone(), requires_grad=True))
        # under no_grad a leaf may change in place, as in torch
        leaf = hg.tensor(x.clone(), requires_grad=True)
        with hg.no_grad():
            form(F, leaf)
        assert_close(leaf, form(TF, x.clone()), torch.float64, f"{name} under no_grad")


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("name, call", [
    ("hardtanh", lambda f, x: f.hardtanh(x, -1, 2)), ("relu6", lambda f, x: f.relu6(x)),
    ("threshold", lambda f, x: f.threshold(x, 1, -7)), ("softsign", lambda f, x: f.softsign(x)),
    ("tanhshrink", lambda f, x: f.tanhshrink(x)),
])
def test_integer_inputs_as_torch(name, call):
    x = torch.arange(-3, 9)
    out, expected = call(F, hg.tensor(x)), call(TF, x)
    assert out.dtype == expected.dtype
    assert_close(out, expected)


@pytest.mark.parametrize("call", [F.mish, F.hardswish, F.hardsigmoid, F.selu, F.celu,
                                  F.logsigmoid], ids=lambda f: f.__name__)
def test_integer_inputs_refused_as_torch(call):
    with pytest.raises(NotImplementedError):
        getattr(TF, call.__name__)(torch.arange(3))
    with pytest.raises(NotImplementedError):
        call(hg.arange(3))


def test_softmin_dtype_and_legacy_dim():
    x = _randn(2, 3).float()
    out = F.softmin(hg.tensor(x), 1, dtype=torch.float64)
    assert_close(out, TF.softmin(x, 1, dtype=torch.float64), torch.float64)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = nn.Softmin()(hg.tensor(x))
    with pytest.warns(UserWarning):
        expected = torch.nn.Softmin()(x)
    assert_close(out, expected, torch.float32)


# ------------------------------------------------------------------ one_hot
@pytest.mark.parametrize("values, num_classes", [
    ([0, 2, 1], -1), ([[0, 3], [1, 1]], 5), (3, -1), (3, 6), ([], 4), ([[]], 2),
])
def test_one_hot_as_torch(values, num_classes):
    target = torch.tensor(values, dtype=torch.int64)
    out = F.one_hot(hg.tensor(target), num_classes)
    expected = TF.one_hot(target, num_classes)
    assert isinstance(out, hg.Tensor) and not out.requires_grad
    assert out.dtype == torch.int64 and out.shape == expected.shape
    assert torch.equal(out.data, expected)


# ------------------------------------------------------------------ errors
def _same_error(ours, theirs, match=None):
    """Both calls raise, ours with the exception type torch raises."""
    with pytest.raises(Exception) as torch_error:
        theirs()
    with pytest.raises(type(torch_error.value), match=match):
        ours()


ERRORS = [
    ("one_hot float", lambda f, t: f.one_hot(t([1.0, 2.0]))),
    ("one_hot int32", lambda f, t: f.one_hot(t([1, 2]).int())),
    ("one_hot negative", lambda f, t: f.one_hot(t([-1, 2]))),
    ("one_hot negative with classes", lambda f, t: f.one_hot(t([-1, 2]), 3)),
    ("one_hot too large", lambda f, t: f.one_hot(t([1, 2]), 2)),
    ("one_hot empty infer", lambda f, t: f.one_hot(t([0, 1])[:0])),
    ("glu odd", lambda f, t: f.glu(t([[1.0, 2.0, 3.0]]))),
    ("glu scalar", lambda f, t: f.glu(t(1.0))),
    ("glu dim", lambda f, t: f.glu(t([1.0, 2.0]), 2)),
    ("prelu count", lambda f, t: f.prelu(t([[1.0, 2.0, 3.0]]), t([0.1, 0.2]))),
    ("prelu 1d input", lambda f, t: f.prelu(t([1.0, 2.0, 3.0]), t([0.1, 0.2, 0.3]))),
    ("prelu weight ndim", lambda f, t: f.prelu(t([[1.0, 2.0]]), t([[0.1], [0.2]]))),
    ("celu alpha 0", lambda f, t: f.celu(t([1.0]), 0.0)),
    ("hardtanh bounds", lambda f, t: f.hardtanh(t([1.0]), 2.0, 1.0)),
    ("threshold_ leaf", lambda f, t: f.threshold_(t([1.0]).requires_grad_(), 0.0, 1.0)),
]


@pytest.mark.parametrize("name, call", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_as_torch(name, call):
    _same_error(lambda: call(F, hg.tensor), lambda: call(TF, torch.tensor))


def test_error_messages_say_what_to_do():
    with pytest.raises(RuntimeError, match="channel size = 3.*PReLU\\(num_parameters=3\\)"):
        F.prelu(hg.randn(2, 3), hg.randn(2))
    with pytest.raises(RuntimeError, match="dimension 1 is size 3.*even-sized"):
        F.glu(hg.randn(2, 3))
    with pytest.raises(RuntimeError, match="LongTensor.*long\\(\\)"):
        F.one_hot(hg.tensor([1, 2], dtype=torch.int32))
    with pytest.raises(AssertionError):
        torch.nn.Hardtanh(1.0, 1.0)
    with pytest.raises(AssertionError, match="max_val"):
        nn.Hardtanh(1.0, 1.0)
