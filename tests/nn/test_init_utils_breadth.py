"""nn.init.orthogonal_ / eye_ / dirac_ / sparse_, nn.utils.parameters_to_vector /
vector_to_parameters, nn.utils.parametrize, nn.utils.parametrizations.weight_norm /
spectral_norm / orthogonal and the old hook-based nn.utils.weight_norm / spectral_norm
against torch: the same seed gives torch's values exactly, torch's error
types and messages, torch's state_dict keys and class names, and the gradients that reach
the stored originals equal torch autograd's."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.utils.parametrizations as torch_parametrizations
import torch.nn.utils.parametrize as torch_parametrize

import handgrad as hg
from handgrad import nn
from handgrad.nn.utils import parametrizations, parametrize


def _raises_like_torch(ours, theirs):
    """Both calls raise the same exception type; handgrad's message is torch's (perhaps
    followed by what to do; the test's torch twins of a class are named Torch<Name>)."""
    with pytest.raises(Exception) as expected:
        theirs()
    with pytest.raises(type(expected.value)) as got:
        ours()
    message, torch_message = str(got.value), str(expected.value).replace("Torch", "")
    assert message.startswith(torch_message), (message, torch_message)


# ------------------------------------------------------------------ nn.init
INITS = [
    ("orthogonal_", (6, 4), {}), ("orthogonal_", (3, 7), {"gain": 2.0}),
    ("orthogonal_", (4, 2, 3), {"gain": 0.5}), ("eye_", (3, 5), {}), ("eye_", (4, 2), {}),
    ("dirac_", (4, 3, 5), {}), ("dirac_", (6, 2, 3, 3), {"groups": 2}),
    ("dirac_", (4, 4, 3, 2, 3), {"groups": 2}), ("sparse_", (8, 5), {"sparsity": 0.3}),
    ("sparse_", (5, 3), {"sparsity": 0.9, "std": 2.0}),
]


@pytest.mark.parametrize("name, shape, kwargs", INITS,
                         ids=[f"{n}{s}{k}" for n, s, k in INITS])
def test_init_draws_exactly_what_torch_draws(name, shape, kwargs):
    ours, theirs = nn.Parameter(hg.empty(*shape)), torch.empty(*shape)
    hg.manual_seed(0)
    assert getattr(nn.init, name)(ours, **kwargs) is ours
    torch.manual_seed(0)
    getattr(torch.nn.init, name)(theirs, **kwargs)
    assert torch.equal(ours.data, theirs)
    assert ours.requires_grad and ours.is_leaf  # filled without recording anything


def test_init_generator_argument():
    def draw(init, shape, **kwargs):
        return init(torch.empty(*shape), generator=torch.Generator().manual_seed(4), **kwargs)

    torch.manual_seed(1)  # sparse_ takes its permutations from the global generator
    theirs = draw(torch.nn.init.sparse_, (6, 3), sparsity=0.5)
    torch.manual_seed(1)
    assert torch.equal(draw(nn.init.sparse_, (6, 3), sparsity=0.5), theirs)
    assert torch.equal(draw(nn.init.orthogonal_, (5, 3)), draw(torch.nn.init.orthogonal_, (5, 3)))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 3, 2)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    w = nn.init.orthogonal_(hg.empty(*shape, dtype=torch.float64), gain=1.5).data
    w = w.reshape(shape[0], -1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    torch.testing.assert_close(gram, 1.5 ** 2 * torch.eye(gram.shape[0], dtype=torch.float64))


def test_sparse_zeros_per_column_and_empty_orthogonal():
    w = nn.init.sparse_(hg.empty(10, 6), sparsity=0.25).data
    assert ((w == 0).sum(0) == math.ceil(0.25 * 10)).all()
    empty = hg.empty(0, 3)
    assert nn.init.orthogonal_(empty) is empty


ERRORS = [("orthogonal_", (3,), ()), ("eye_", (2, 2, 2), ()), ("dirac_", (3, 3), ()),
          ("dirac_", (3, 2, 3), (2,)), ("sparse_", (3, 3, 3), (0.1,))]


@pytest.mark.parametrize("name, shape, args", ERRORS, ids=[f"{n}{s}" for n, s, _ in ERRORS])
def test_init_errors_are_torchs(name, shape, args):
    _raises_like_torch(lambda: getattr(nn.init, name)(hg.empty(*shape), *args),
                       lambda: getattr(torch.nn.init, name)(torch.empty(*shape), *args))


# ------------------------------------------------------------------ parameters <-> vector
def _twin_linears(seed=0):
    hg.manual_seed(seed)
    ours = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    torch.manual_seed(seed)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    return ours, theirs


def test_parameters_to_vector_matches_torch_and_is_differentiable():
    ours, theirs = _twin_linears()
    vec = nn.utils.parameters_to_vector(ours.parameters())
    expected = torch.nn.utils.parameters_to_vector(theirs.parameters())
    assert torch.equal(vec.data, expected)
    upstream = torch.randn(expected.shape)
    (vec * hg.tensor(upstream)).sum().backward()
    (expected * upstream).sum().backward()
    for p, t in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(p.grad.data, t.grad)


def test_vector_to_parameters_makes_views_of_the_vector_as_torch():
    ours, theirs = _twin_linears()
    values = torch.randn(sum(p.numel() for p in theirs.parameters()))
    vec = hg.tensor(values.clone())
    nn.utils.vector_to_parameters(vec, ours.parameters())
    torch_vec = values.clone()
    torch.nn.utils.vector_to_parameters(torch_vec, theirs.parameters())
    for (name, p), t in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.equal(p.data, t.detach()), name
        assert p.is_leaf and p.requires_grad and p.grad is None
    vec.data[0] = 100.0  # the parameters share the vector's storage, as in torch
    torch_vec[0] = 100.0
    assert ours[0].weight.data[0, 0].item() == theirs[0].weight[0, 0].item() == 100.0


def test_vector_to_parameters_errors():
    ours, theirs = _twin_linears()
    _raises_like_torch(lambda: nn.utils.vector_to_parameters([1.0], ours.parameters()),
                       lambda: torch.nn.utils.vector_to_parameters([1.0], theirs.parameters()))
    count = sum(p.numel() for p in ours.parameters())
    with pytest.raises(RuntimeError, match="fewer than the parameters need"):
        nn.utils.vector_to_parameters(hg.zeros(count - 1), ours.parameters())
    # torch ignores the extra elements; handgrad refuses to truncate silently
    with pytest.raises(RuntimeError, match=f"{count + 2} elements but the parameters hold "
                                           f"{count}"):
        nn.utils.vector_to_parameters(hg.zeros(count + 2), ours.parameters())
    with pytest.raises(ValueError, match="must be 1-D"):
        nn.utils.vector_to_parameters(hg.zeros(1, count), ours.parameters())
    with pytest.raises(ValueError, match="non-empty list"):
        nn.utils.parameters_to_vector([])


# ------------------------------------------------------------------ parametrize
class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(0, 1)

    def right_inverse(self, A):
        return A.triu()


class TorchSymmetric(torch.nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(0, 1)

    def right_inverse(self, A):
        return A.triu()


class Scale(nn.Module):  # no right_inverse: assigning to the weight is refused
    def forward(self, X):
        return 2 * X


class TorchScale(torch.nn.Module):
    def forward(self, X):
        return 2 * X


class SplitSum(nn.Module):  # two originals: W = A + B, right_inverse W -> (W/2, W/2)
    def forward(self, A, B):
        return A + B

    def right_inverse(self, W):
        return W / 2, W / 2


class TorchSplitSum(torch.nn.Module):
    def forward(self, A, B):
        return A + B

    def right_inverse(self, W):
        return W / 2, W / 2


def _parametrized_twins(ours_parametrizations, theirs_parametrizations, features=3):
    hg.manual_seed(0)
    ours = nn.Linear(features, features)
    torch.manual_seed(0)
    theirs = torch.nn.Linear(features, features)
    for p in ours_parametrizations:
        parametrize.register_parametrization(ours, "weight", p)
    for p in theirs_parametrizations:
        torch_parametrize.register_parametrization(theirs, "weight", p)
    return ours, theirs


def _assert_same_state(ours, theirs):
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in theirs_state.items():
        torch.testing.assert_close(ours_state[key].data, value, rtol=1e-6, atol=1e-7,
                                   msg=key)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def _assert_same_gradients(ours, theirs, x):
    upstream = torch.randn(x.shape[0], theirs.out_features)
    (ours(hg.tensor(x)) * hg.tensor(upstream)).sum().backward()
    (theirs(x) * upstream).sum().backward()
    for (name, p), t in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad.data, t.grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("chain", [1, 2])
def test_register_parametrization_is_torchs(chain):
    ours, theirs = _parametrized_twins([Symmetric(), Scale()][:chain],
                                       [TorchSymmetric(), TorchScale()][:chain])
    assert type(ours).__name__ == type(theirs).__name__ == "ParametrizedLinear"
    assert isinstance(ours, nn.Linear)
    assert parametrize.type_before_parametrizations(ours) is nn.Linear
    assert parametrize.is_parametrized(ours) and parametrize.is_parametrized(ours, "weight")
    assert not parametrize.is_parametrized(ours, "bias")
    assert "weight" not in ours._parameters
    assert list(ours.state_dict()) == ["bias", "parametrizations.weight.original"]
    _assert_same_state(ours, theirs)
    torch.testing.assert_close(ours.weight.data, theirs.weight.detach())
    assert repr(ours).replace("Torch", "") == repr(theirs).replace("Torch", "")
    _assert_same_gradients(ours, theirs, torch.randn(4, 3))


def test_assignment_goes_through_right_inverse_and_keeps_the_parameter():
    ours, theirs = _parametrized_twins([Symmetric()], [TorchSymmetric()])
    original = ours.parametrizations.weight.original
    value = torch.randn(3, 3)
    ours.weight = hg.tensor(value)
    theirs.weight = value
    assert ours.parametrizations.weight.original is original
    _assert_same_state(ours, theirs)
    scaled, torch_scaled = _parametrized_twins([Scale()], [TorchScale()])
    _raises_like_torch(lambda: setattr(scaled, "weight", hg.zeros(3, 3)),
                       lambda: setattr(torch_scaled, "weight", torch.zeros(3, 3)))
    _raises_like_torch(lambda: setattr(scaled, "weight", nn.Parameter(hg.zeros(3, 3))),
                       lambda: setattr(torch_scaled, "weight",
                                       torch.nn.Parameter(torch.zeros(3, 3))))


def test_right_inverse_returning_a_tuple_makes_original0_original1():
    ours, theirs = _parametrized_twins([SplitSum()], [TorchSplitSum()])
    assert list(ours.state_dict()) == ["bias", "parametrizations.weight.original0",
                                       "parametrizations.weight.original1"]
    _assert_same_state(ours, theirs)
    assert isinstance(ours.parametrizations.weight.original1, nn.Parameter)
    _assert_same_gradients(ours, theirs, torch.randn(5, 3))
    value = torch.randn(3, 3)
    ours.weight = hg.tensor(value)
    theirs.weight = value
    _assert_same_state(ours, theirs)


def test_load_state_dict_from_torch_and_optimizer_on_the_original():
    ours, theirs = _parametrized_twins([Symmetric()], [TorchSymmetric()])
    with torch.no_grad():
        theirs.parametrizations.weight.original.mul_(3)
    ours.load_state_dict(theirs.state_dict())
    _assert_same_state(ours, theirs)
    optimizer = hg.optim.SGD(ours.parameters(), lr=0.1)
    torch_optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1)
    x = torch.randn(4, 3)
    for _ in range(2):
        optimizer.zero_grad()
        torch_optimizer.zero_grad()
        _assert_same_gradients(ours, theirs, x)
        optimizer.step()
        torch_optimizer.step()
    _assert_same_state(ours, theirs)


def test_cached_computes_each_parametrized_tensor_once():
    ours, _ = _parametrized_twins([Symmetric()], [])
    assert ours.weight is not ours.weight
    with parametrize.cached():
        first = ours.weight
        with parametrize.cached():
            assert ours.weight is first
        assert ours.weight is first
        (ours.weight.sum() + ours.weight.sum()).backward()
    assert ours.weight is not first
    grad = ours.parametrizations.weight.original.grad.data
    torch.testing.assert_close(grad, 2 * (torch.ones(3, 3).triu() + torch.ones(3, 3).triu(1)))


@pytest.mark.parametrize("leave_parametrized", [True, False])
def test_remove_parametrizations_is_torchs(leave_parametrized):
    ours, theirs = _parametrized_twins([Symmetric()], [TorchSymmetric()])
    original = ours.parametrizations.weight.original
    assert parametrize.remove_parametrizations(ours, "weight", leave_parametrized) is ours
    torch_parametrize.remove_parametrizations(theirs, "weight", leave_parametrized)
    assert type(ours) is nn.Linear and not parametrize.is_parametrized(ours)
    assert "parametrizations" not in ours._modules
    assert ours.weight is original  # the Parameter keeps its identity (optimizers)
    _assert_same_state(ours, theirs)
    assert list(ours.state_dict()) == ["bias", "weight"]


def test_remove_parametrizations_of_a_tuple_and_of_one_of_two():
    ours, theirs = _parametrized_twins([SplitSum()], [TorchSplitSum()])
    parametrize.register_parametrization(ours, "bias", Scale())
    torch_parametrize.register_parametrization(theirs, "bias", TorchScale())
    _raises_like_torch(lambda: parametrize.remove_parametrizations(ours, "weight", False),
                       lambda: torch_parametrize.remove_parametrizations(theirs, "weight",
                                                                         False))
    parametrize.remove_parametrizations(ours, "weight")
    torch_parametrize.remove_parametrizations(theirs, "weight")
    assert type(ours).__name__ == "ParametrizedLinear"
    assert isinstance(ours.weight, nn.Parameter)
    _assert_same_state(ours, theirs)


def test_buffer_parametrization():
    ours, theirs = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    parametrize.register_parametrization(ours, "running_var", Scale())
    torch_parametrize.register_parametrization(theirs, "running_var", TorchScale())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert torch.equal(ours.running_var.data, theirs.running_var)


class WrongShape(nn.Module):
    def forward(self, X):
        return X[:1]


class TorchWrongShape(torch.nn.Module):
    def forward(self, X):
        return X[:1]


def test_parametrize_errors_are_torchs():
    hg.manual_seed(0)
    ours = nn.Linear(3, 3)
    theirs = torch.nn.Linear(3, 3)
    _raises_like_torch(lambda: parametrize.register_parametrization(ours, "weight",
                                                                    WrongShape()),
                       lambda: torch_parametrize.register_parametrization(theirs, "weight",
                                                                          TorchWrongShape()))
    parametrize.register_parametrization(ours, "weight", Symmetric())
    torch_parametrize.register_parametrization(theirs, "weight", TorchSymmetric())
    _raises_like_torch(lambda: parametrize.register_parametrization(ours, "weight",
                                                                    WrongShape()),
                       lambda: torch_parametrize.register_parametrization(theirs, "weight",
                                                                          TorchWrongShape()))
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a "
                                         "parametrized element with name 'kernel'"):
        parametrize.register_parametrization(ours, "kernel", Symmetric())
    with pytest.raises(ValueError, match="does not have a parametrization on bias"):
        parametrize.remove_parametrizations(ours, "bias")
    # unsafe=True lets the shape change, as in torch
    unsafe = parametrize.register_parametrization(nn.Linear(3, 3), "weight", WrongShape(),
                                                  unsafe=True)
    assert unsafe.weight.shape == (1, 3)


# ------------------------------------------------------------------ weight_norm
WEIGHT_NORM = [("Linear", (4, 3), 0), ("Linear", (4, 3), 1), ("Linear", (4, 3), None),
               ("Conv2d", (2, 3, 3), 0), ("Conv2d", (2, 3, 3), 2)]


@pytest.mark.parametrize("name, args, dim", WEIGHT_NORM,
                         ids=[f"{n}-dim{d}" for n, _, d in WEIGHT_NORM])
def test_weight_norm_is_torchs(name, args, dim):
    hg.manual_seed(0)
    ours = parametrizations.weight_norm(getattr(nn, name)(*args), dim=dim)
    torch.manual_seed(0)
    theirs = torch_parametrizations.weight_norm(getattr(torch.nn, name)(*args), dim=dim)
    assert type(ours).__name__ == f"Parametrized{name}"
    assert list(ours.state_dict()) == ["bias", "parametrizations.weight.original0",
                                       "parametrizations.weight.original1"]
    _assert_same_state(ours, theirs)
    g = ours.parametrizations.weight.original0
    assert g.shape == theirs.parametrizations.weight.original0.shape
    x = torch.randn(2, *((4,) if name == "Linear" else (2, 5, 5)))
    with torch.no_grad():  # move g away from ||v|| so its gradient is not special
        theirs.parametrizations.weight.original0.mul_(1.5)
    ours.load_state_dict(theirs.state_dict())
    out, expected = ours(hg.tensor(x)), theirs(x)
    torch.testing.assert_close(out.data, expected, rtol=1e-5, atol=1e-6)
    upstream = torch.randn(expected.shape)
    (out * hg.tensor(upstream)).sum().backward()
    (expected * upstream).sum().backward()
    for (key, p), t in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad.data, t.grad, rtol=1e-5, atol=1e-6, msg=key)


# ------------------------------------------------------------------ spectral_norm
def _spectral_twins(name, args, **kwargs):
    hg.manual_seed(0)
    ours = parametrizations.spectral_norm(getattr(nn, name)(*args), **kwargs)
    torch.manual_seed(0)
    theirs = torch_parametrizations.spectral_norm(getattr(torch.nn, name)(*args), **kwargs)
    return ours, theirs


SPECTRAL = [("Linear", (5, 3), {}), ("Linear", (5, 3), {"n_power_iterations": 3}),
            ("Conv2d", (2, 4, 3), {"dim": 1, "eps": 1e-6}), ("ConvTranspose2d", (2, 3, 3), {})]


@pytest.mark.parametrize("name, args, kwargs", SPECTRAL,
                         ids=[f"{n}{k}" for n, _, k in SPECTRAL])
def test_spectral_norm_is_torchs(name, args, kwargs):
    ours, theirs = _spectral_twins(name, args, **kwargs)
    assert list(ours.state_dict()) == ["bias", "parametrizations.weight.original",
                                       "parametrizations.weight.0._u",
                                       "parametrizations.weight.0._v"]
    _assert_same_state(ours, theirs)  # same seed, same draws, same 15 power iterations
    # from torch's own buffers, moved away from where they converged
    with torch.no_grad():
        for buffer in (theirs.parametrizations.weight[0]._u,
                       theirs.parametrizations.weight[0]._v):
            buffer.copy_(torch.nn.functional.normalize(torch.randn(buffer.shape), dim=0))
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, *((5,) if name == "Linear" else (2, 5, 5)))
    for step in range(3):  # each training-mode access runs n_power_iterations more
        for module in (ours, theirs):
            for p in module.parameters():
                p.grad = None
        out, expected = ours(hg.tensor(x)), theirs(x)
        torch.testing.assert_close(out.data, expected, rtol=1e-5, atol=1e-6, msg=str(step))
        upstream = torch.randn(expected.shape)
        (out * hg.tensor(upstream)).sum().backward()
        (expected * upstream).sum().backward()
        for (key, p), t in zip(ours.named_parameters(), theirs.parameters()):
            torch.testing.assert_close(p.grad.data, t.grad, rtol=1e-5, atol=1e-6, msg=key)
        _assert_same_state(ours, theirs)
    ours.eval()
    theirs.eval()
    u = ours.parametrizations.weight[0]._u.data.clone()
    torch.testing.assert_close(ours(hg.tensor(x)).data, theirs(x), rtol=1e-5, atol=1e-6)
    assert torch.equal(ours.parametrizations.weight[0]._u.data, u)  # no update in eval


def test_spectral_norm_bounds_the_largest_singular_value_and_vectors():
    ours, _ = _spectral_twins("Linear", (6, 4), n_power_iterations=20)
    assert torch.linalg.matrix_norm(ours.weight.data, 2).item() == pytest.approx(1.0, rel=1e-4)
    vector = parametrize.register_parametrization(
        nn.Linear(3, 4), "bias", parametrizations._SpectralNorm(hg.zeros(4)))
    torch.testing.assert_close(vector.bias.data.norm().item(), 1.0)


@pytest.mark.parametrize("kwargs", [{"dim": 2}, {"dim": -3}, {"n_power_iterations": 0}])
def test_spectral_norm_errors_are_torchs(kwargs):
    _raises_like_torch(lambda: parametrizations.spectral_norm(nn.Linear(3, 2), **kwargs),
                       lambda: torch_parametrizations.spectral_norm(torch.nn.Linear(3, 2),
                                                                    **kwargs))
    with pytest.raises(ValueError, match="has no parameter or buffer with name 'kernel'"):
        parametrizations.spectral_norm(nn.Linear(3, 2), "kernel")


# ------------------------------------------------------------------ old hook-based forms
def _check_forward_and_gradients(ours, theirs, x, steps=2):
    for _ in range(steps):
        for module in (ours, theirs):
            for p in module.parameters():
                p.grad = None
        out, expected = ours(hg.tensor(x)), theirs(x)
        torch.testing.assert_close(out.data, expected, rtol=1e-5, atol=1e-6)
        upstream = torch.randn(expected.shape)
        (out * hg.tensor(upstream)).sum().backward()
        (expected * upstream).sum().backward()
        for (key, p), t in zip(ours.named_parameters(), theirs.parameters()):
            torch.testing.assert_close(p.grad.data, t.grad, rtol=1e-5, atol=1e-6, msg=key)
        _assert_same_state(ours, theirs)


@pytest.mark.parametrize("dim", [0, 1, None])
def test_old_weight_norm_is_torchs(dim):
    hg.manual_seed(0)
    with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
        ours = nn.utils.weight_norm(nn.Conv1d(2, 3, 3), dim=dim)
    torch.manual_seed(0)
    with pytest.warns(FutureWarning):
        theirs = torch.nn.utils.weight_norm(torch.nn.Conv1d(2, 3, 3), dim=dim)
    assert list(ours.state_dict()) == ["bias", "weight_g", "weight_v"]
    _assert_same_state(ours, theirs)
    with torch.no_grad():
        theirs.weight_g.mul_(1.5)
    ours.load_state_dict(theirs.state_dict())
    _check_forward_and_gradients(ours, theirs, torch.randn(2, 2, 6))
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks on the "
                                           "same parameter weight"), \
            pytest.warns(FutureWarning):
        nn.utils.weight_norm(ours, dim=dim)
    assert nn.utils.remove_weight_norm(ours) is ours
    torch.nn.utils.remove_weight_norm(theirs)
    assert isinstance(ours.weight, nn.Parameter)
    _assert_same_state(ours, theirs)
    _raises_like_torch(lambda: nn.utils.remove_weight_norm(ours),
                       lambda: torch.nn.utils.remove_weight_norm(theirs))


@pytest.mark.parametrize("name, args, kwargs", [("Linear", (4, 3), {}),
                                                ("ConvTranspose2d", (2, 3, 3), {}),
                                                ("Linear", (4, 3), {"n_power_iterations": 3})])
def test_old_spectral_norm_is_torchs(name, args, kwargs):
    hg.manual_seed(0)
    ours = nn.utils.spectral_norm(getattr(nn, name)(*args), **kwargs)
    torch.manual_seed(0)
    theirs = torch.nn.utils.spectral_norm(getattr(torch.nn, name)(*args), **kwargs)
    assert list(ours.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    _assert_same_state(ours, theirs)  # same seed, same draws of u and v
    x = torch.randn(2, 4) if name == "Linear" else torch.randn(1, 2, 4, 4)
    _check_forward_and_gradients(ours, theirs, x)
    ours.eval()
    theirs.eval()
    _check_forward_and_gradients(ours, theirs, x, steps=1)
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        nn.utils.spectral_norm(ours)
    nn.utils.remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # bias, weight
    _assert_same_state(ours, theirs)
    _raises_like_torch(lambda: nn.utils.remove_spectral_norm(ours),
                       lambda: torch.nn.utils.remove_spectral_norm(theirs))


# ------------------------------------------------------------------ orthogonal
ORTHOGONAL = [(features, orthogonal_map, trivialization)
              for features in [(3, 3), (3, 5), (5, 3)]
              for orthogonal_map in ["matrix_exp", "cayley", "householder", None]
              for trivialization in [True, False]]


@pytest.mark.parametrize("features, orthogonal_map, use_trivialization", ORTHOGONAL)
def test_orthogonal_is_torchs(features, orthogonal_map, use_trivialization):
    hg.manual_seed(0)
    ours = nn.Linear(*features)
    torch.manual_seed(0)
    theirs = torch.nn.Linear(*features)
    for module, orthogonal in ((ours, parametrizations.orthogonal),
                               (theirs, torch_parametrizations.orthogonal)):
        torch.manual_seed(1)  # a tall base is completed with random columns
        orthogonal(module, orthogonal_map=orthogonal_map,
                   use_trivialization=use_trivialization)
    _assert_same_state(ours, theirs)  # keys (base among them) and values
    weight = ours.weight.data.double()
    small = min(features)
    gram = weight @ weight.T if weight.shape[0] == small else weight.T @ weight
    torch.testing.assert_close(gram, torch.eye(small, dtype=torch.float64), atol=1e-5, rtol=0)
    with torch.no_grad():  # move the original away from the point the map starts at
        original = theirs.parametrizations.weight.original
        original.add_(0.3 * torch.randn(original.shape))
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, features[0])
    out, expected = ours(hg.tensor(x)), theirs(x)
    torch.testing.assert_close(out.data, expected, rtol=1e-5, atol=1e-6)
    upstream = torch.randn(expected.shape)
    (out * hg.tensor(upstream)).sum().backward()
    (expected * upstream).sum().backward()
    for (key, p), t in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad.data, t.grad, rtol=1e-5, atol=1e-5, msg=key)


def test_orthogonal_assignment_and_errors():
    ours = parametrizations.orthogonal(nn.Linear(4, 4))
    target = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float32))[0]
    ours.weight = hg.tensor(target)  # an orthogonal value becomes the base, kept exactly
    torch.testing.assert_close(ours.weight.data, target)
    _raises_like_torch(lambda: setattr(ours, "weight", hg.zeros(3, 4)),
                       lambda: setattr(torch_parametrizations.orthogonal(torch.nn.Linear(4, 4)),
                                       "weight", torch.zeros(3, 4)))
    plain = parametrizations.orthogonal(nn.Linear(3, 3), use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        plain.weight = hg.eye(3)
    layer, torch_layer = nn.Linear(3, 3), torch.nn.Linear(3, 3)
    _raises_like_torch(lambda: parametrizations.orthogonal(layer, "bias"),
                       lambda: torch_parametrizations.orthogonal(torch_layer, "bias"))
    _raises_like_torch(lambda: parametrizations.orthogonal(layer, orthogonal_map="qr"),
                       lambda: torch_parametrizations.orthogonal(torch_layer,
                                                                 orthogonal_map="qr"))


def test_householder_product_is_torchs():
    reflectors = torch.randn(2, 5, 3, dtype=torch.float64)
    tau = torch.rand(2, 3, dtype=torch.float64) + 0.5
    ours = parametrizations._householder_product(hg.tensor(reflectors), hg.tensor(tau))
    torch.testing.assert_close(ours.data, torch.linalg.householder_product(reflectors, tau))
