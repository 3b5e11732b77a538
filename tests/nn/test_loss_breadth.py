"""The losses of issue 12 as modules against torch.nn: KLDivLoss, HuberLoss,
SoftMarginLoss, MarginRankingLoss, HingeEmbeddingLoss, TripletMarginLoss,
CosineEmbeddingLoss, PoissonNLLLoss, GaussianNLLLoss, MultiMarginLoss,
MultiLabelSoftMarginLoss (and the weighted MSE / L1 / Huber of nn.functional).

Each is run in float32 and float64 for every reduction and its options: the value and
the gradient of every float input that torch differentiates, for a random upstream
gradient. Then torch's argument checks (the same exception type, for the same
mistakes), its warnings, reprs, attributes and state_dict keys.

(The functional forms are checked by the op registry: against torch, finite
differences and the same math composed from primitives; CTCLoss by tests/nn/test_ctc.py.)
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from tests.torch_compare import assert_close

pytestmark = pytest.mark.usefixtures("one_thread")

REDUCTIONS = ("mean", "sum", "none")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64)


def _rand(*shape, seed=0, low=0.0, high=1.0):
    return low + (high - low) * torch.rand(*shape, generator=_gen(seed), dtype=torch.float64)


def _signs(*shape, seed=0):
    return torch.randint(0, 2, shape, generator=_gen(seed)).to(torch.float64) * 2 - 1


def compare(ours, theirs, inputs, dtype, differentiable):
    """ours(*handgrad inputs) against theirs(*torch inputs): the value, then the
    gradients of the inputs whose index is in `differentiable`."""
    torch_in, ours_in = [], []
    for i, x in enumerate(inputs):
        x = x.to(dtype) if x.is_floating_point() else x
        grad = i in differentiable
        torch_in.append(x.clone().requires_grad_(grad))
        ours_in.append(hg.tensor(x.clone(), requires_grad=grad))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean'; compared in their own tests
        out, expected = ours(*ours_in), theirs(*torch_in)
    assert_close(out, expected.detach(), dtype, "loss value")
    upstream = torch.randn(expected.shape, generator=_gen(7), dtype=torch.float64).to(dtype)
    out.backward(upstream.clone())
    expected.backward(upstream)
    for i in differentiable:
        want = torch_in[i].grad
        got = ours_in[i].grad
        assert_close(torch.zeros_like(want) if got is None else got, want, dtype,
                     f"gradient of input {i}")


# ------------------------------------------------------------------ the modules
def _kl_inputs(log_target):
    log_p = _randn(4, 5).log_softmax(1)
    target = _randn(4, 5, seed=1).log_softmax(1)
    return [log_p, target if log_target else target.exp()]


CASES = {
    # name: (constructor options, inputs, indices of the inputs torch differentiates)
    "KLDivLoss": [({}, _kl_inputs(False), (0, 1)),
                  ({"log_target": True}, _kl_inputs(True), (0, 1)),
                  ({"reduction_": "batchmean"}, _kl_inputs(False), (0, 1))],
    "HuberLoss": [({}, [_randn(5, 3), _randn(5, 3, seed=1)], (0, 1)),
                  ({"delta": 0.4}, [_randn(5, 3), _randn(5, 3, seed=1)], (0, 1)),
                  ({"delta": 3.0}, [_randn(2, 3, 4), _randn(2, 3, 4, seed=1)], (0, 1))],
    "SoftMarginLoss": [({}, [3 * _randn(6, 2), _signs(6, 2, seed=1)], (0,))],
    "MarginRankingLoss": [({}, [_randn(7), _randn(7, seed=1), _signs(7, seed=2)], (0, 1, 2)),
                          ({"margin": 0.5}, [_randn(3, 4), _randn(3, 4, seed=1),
                                             _signs(3, 4, seed=2)], (0, 1, 2))],
    "HingeEmbeddingLoss": [({}, [_randn(8).abs(), _signs(8, seed=1)], (0,)),
                           ({"margin": 2.0}, [_randn(3, 4).abs(), _signs(3, 4, seed=1)], (0,))],
    "TripletMarginLoss": [({}, [_randn(5, 4), _randn(5, 4, seed=1), _randn(5, 4, seed=2)],
                           (0, 1, 2)),
                          ({"margin": 3.0, "p": 1.0, "swap": True},
                           [_randn(5, 4), _randn(5, 4, seed=1), _randn(5, 4, seed=2)],
                           (0, 1, 2)),
                          ({"margin": 2.0, "p": 3.0, "eps": 1e-3},
                           [_randn(4), _randn(4, seed=1), _randn(4, seed=2)], (0, 1, 2))],
    "CosineEmbeddingLoss": [({}, [_randn(6, 4), _randn(6, 4, seed=1), _signs(6, seed=2)],
                             (0, 1)),
                            ({"margin": 0.3}, [_randn(6, 4), _randn(6, 4, seed=1),
                                               _signs(6, seed=2)], (0, 1))],
    "PoissonNLLLoss": [({}, [_randn(4, 3), _rand(4, 3, seed=1, high=5)], (0, 1)),
                       ({"log_input": False, "full": True},
                        [_rand(4, 3, low=0.5, high=3), _rand(4, 3, seed=1, high=5)], (0, 1)),
                       ({"full": True, "eps": 1e-3},
                        [_randn(4, 3), _rand(4, 3, seed=1, high=5)], (0, 1))],
    "GaussianNLLLoss": [({}, [_randn(5, 3), _randn(5, 3, seed=1), _rand(5, 3, seed=2,
                                                                     low=0.2, high=2)],
                         (0, 1, 2)),
                        ({"full": True, "eps": 0.5},
                         [_randn(5, 3), _randn(5, 3, seed=1), _rand(5, 1, seed=2, high=2)],
                         (0, 1, 2)),
                        ({}, [_randn(5, 3), _randn(5, 3, seed=1), _rand(5, seed=2,
                                                                         low=0.2, high=2)],
                         (0, 1, 2))],
    "MultiMarginLoss": [({}, [_randn(6, 4), torch.tensor([0, 3, 1, 1, 2, 0])], (0,)),
                        ({"p": 2, "margin": 0.7}, [_randn(6, 4), torch.tensor([0, 3, 1, 1, 2, 0])],
                         (0,)),
                        ({"weight_": _rand(4, seed=3, low=0.5, high=2)},
                         [_randn(6, 4), torch.tensor([0, 3, 1, 1, 2, 0])], (0,)),
                        ({}, [_randn(5), torch.tensor(2)], (0,))],
    "MultiLabelSoftMarginLoss": [({}, [_randn(4, 5), _rand(4, 5, seed=1).round()], (0, 1)),
                                 ({"weight_": _rand(5, seed=3, low=0.5, high=2)},
                                  [_randn(4, 5), _rand(4, 5, seed=1)], (0, 1))],
}
PARAMS = [(name, k, options, inputs, grads) for name, cases in CASES.items()
          for k, (options, inputs, grads) in enumerate(cases)]


def _build(cls, options, dtype, reduction, wrap):
    options = dict(options)
    if "reduction_" in options:  # a reduction of its own (kl_div's batchmean)
        reduction = options.pop("reduction_")
    if "weight_" in options:
        options["weight"] = wrap(options.pop("weight_").to(dtype))
    return cls(reduction=reduction, **options)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, case, options, inputs, grads", PARAMS,
                         ids=[f"{p[0]}-{p[1]}" for p in PARAMS])
def test_module_matches_torch(name, case, options, inputs, grads, reduction, dtype):
    ours = _build(getattr(nn, name), options, dtype, reduction, hg.tensor)
    theirs = _build(getattr(torch.nn, name), options, dtype, reduction, lambda t: t)
    if "reduction_" in options and reduction != "mean":
        pytest.skip("the case fixes its own reduction")
    compare(ours, theirs, inputs, dtype, grads)


@pytest.mark.parametrize("name", list(CASES))
def test_repr_attributes_and_state_dict_keys_are_torch(name):
    options = {"weight": torch.rand(4)} if name in ("MultiMarginLoss",
                                                   "MultiLabelSoftMarginLoss") else {}
    theirs = getattr(torch.nn, name)(**options)
    ours = getattr(nn, name)(**{k: hg.tensor(v) for k, v in options.items()})
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for attribute in ("reduction", "margin", "p", "eps", "swap", "delta", "log_input",
                      "full", "log_target", "blank", "zero_infinity"):
        if hasattr(theirs, attribute):
            assert getattr(ours, attribute) == getattr(theirs, attribute), attribute


def test_legacy_size_average_and_reduce():
    with pytest.warns(UserWarning, match="deprecated"):
        assert nn.SoftMarginLoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning):
        assert nn.KLDivLoss(reduce=False).reduction == "none"
    with pytest.warns(UserWarning):
        assert nn.TripletMarginLoss(reduce=True, size_average=True).reduction == "mean"


# ------------------------------------------------------------------ functional extras
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_elementwise_weight_like_torch(name, reduction, dtype):
    """torch 2.6's weight of the input's shape: MSE / L1 'mean' divides by sum(w),
    Huber's by the number of elements; the weight gets a gradient too."""
    weight = _rand(4, 3, seed=2, low=0.2, high=2)
    compare(lambda x, t, w: getattr(F, name)(x, t, reduction=reduction, weight=w),
            lambda x, t, w: getattr(torch.nn.functional, name)(x, t, reduction=reduction,
                                                               weight=w),
            [_randn(4, 3), _randn(4, 3, seed=1), weight], dtype, (0, 1, 2))


def test_gaussian_nll_loss_var_as_float_and_clamped():
    x, t = _randn(4, 3), _randn(4, 3, seed=1)
    compare(lambda a, b: F.gaussian_nll_loss(a, b, 0.3),
            lambda a, b: torch.nn.functional.gaussian_nll_loss(a, b, 0.3), [x, t],
            torch.float64, (0, 1))
    # var below eps: clamped in value, its gradient passed through as torch does
    var = torch.tensor([[1e-9], [0.5], [2.0], [1e-7]], dtype=torch.float64)
    compare(lambda a, b, v: F.gaussian_nll_loss(a, b, v, eps=1e-3),
            lambda a, b, v: torch.nn.functional.gaussian_nll_loss(a, b, v, eps=1e-3),
            [x, t, var], torch.float64, (0, 1, 2))


def test_broadcast_targets_like_torch():
    """Targets that broadcast: the same values and gradients (huber warns, as torch)."""
    x, t = _randn(3, 4), _rand(4, seed=1, high=3)
    with pytest.warns(UserWarning, match="different to the input size"):
        F.huber_loss(hg.tensor(x), hg.tensor(t))
    for name in ("poisson_nll_loss", "kl_div", "huber_loss"):
        compare(getattr(F, name), getattr(torch.nn.functional, name), [x, t],
                torch.float64, (0, 1))
    compare(lambda a, b: F.soft_margin_loss(a, b), torch.nn.functional.soft_margin_loss,
            [x, _signs(4, seed=2)], torch.float64, (0,))
    compare(F.multilabel_soft_margin_loss, torch.nn.functional.multilabel_soft_margin_loss,
            [x, t / 3], torch.float64, (0, 1))


def test_triplet_inf_norm_and_cosine_broadcast():
    a, p, n = _randn(5, 4), _randn(1, 4, seed=1), _randn(5, 4, seed=2)
    compare(lambda *v: F.triplet_margin_loss(*v, p=math.inf, margin=2.0),
            lambda *v: torch.nn.functional.triplet_margin_loss(*v, p=math.inf, margin=2.0),
            [a, p, n], torch.float64, (0, 1, 2))
    compare(lambda x1, x2, y: F.cosine_embedding_loss(x1, x2, y, margin=0.1),
            lambda x1, x2, y: torch.nn.functional.cosine_embedding_loss(x1, x2, y, margin=0.1),
            [a, p, torch.tensor([1, -1, 1, 0, -1])], torch.float64, (0, 1))


def test_kl_div_mean_warns_like_torch_and_batchmean_does_not():
    x, t = hg.tensor(_randn(3, 4)), hg.tensor(_rand(3, 4))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(x, t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(x, t, reduction="batchmean")
        F.kl_div(x, t, reduction="sum")


# ------------------------------------------------------------------ torch's checks
def _bad_calls():
    """(id, call with a namespace of functions and a tensor maker): each must raise the
    exception type torch raises."""
    return [
        ("reduction", lambda f, T: f.soft_margin_loss(T([1.0]), T([1.0]), reduction="x")),
        ("kl reduction", lambda f, T: f.kl_div(T([1.0]), T([1.0]), reduction="avg")),
        ("huber delta", lambda f, T: f.huber_loss(T([1.0]), T([0.0]), delta=0.0)),
        ("mse weight", lambda f, T: f.mse_loss(T([1.0, 2]), T([0.0, 1]), weight=T([1.0]))),
        ("soft target", lambda f, T: f.soft_margin_loss(T([1.0]), T([[1.0], [-1.0]]))),
        ("ranking dims", lambda f, T: f.margin_ranking_loss(T([1.0]), T([1.0]), T(1.0))),
        ("triplet margin", lambda f, T: f.triplet_margin_loss(T([1.0]), T([1.0]), T([1.0]),
                                                              margin=0)),
        ("triplet dims", lambda f, T: f.triplet_margin_loss(T([[1.0]]), T([1.0]), T([[1.0]]))),
        ("cosine 2d target", lambda f, T: f.cosine_embedding_loss(
            T([[[1.0]]]), T([[[1.0]]]), T([[1.0]]))),
        ("cosine dims", lambda f, T: f.cosine_embedding_loss(T([1.0, 2]), T([1.0, 2]),
                                                             T([1.0]))),
        ("poisson reduction", lambda f, T: f.poisson_nll_loss(T([1.0]), T([1.0]),
                                                              reduction="x")),
        ("gaussian negative", lambda f, T: f.gaussian_nll_loss(T([1.0]), T([1.0]), T([-1.0]))),
        ("gaussian float negative", lambda f, T: f.gaussian_nll_loss(T([1.0]), T([1.0]), -1.0)),
        ("gaussian shape", lambda f, T: f.gaussian_nll_loss(T([[1.0, 2]]), T([[1.0, 2]]),
                                                            T([1.0, 1, 1]))),
        ("gaussian reduction", lambda f, T: f.gaussian_nll_loss(T([1.0]), T([1.0]), T([1.0]),
                                                                reduction="x")),
        ("multi p", lambda f, T: f.multi_margin_loss(T([[1.0, 2]]), T([0]), p=3)),
        ("multi weight dims", lambda f, T: f.multi_margin_loss(T([[1.0, 2]]), T([0]),
                                                               weight=T([[1.0, 1]]))),
        ("multi weight size", lambda f, T: f.multi_margin_loss(T([[1.0, 2]]), T([0]),
                                                               weight=T([1.0, 1, 1]))),
        ("multi target range", lambda f, T: f.multi_margin_loss(T([[1.0, 2]]), T([2]))),
        ("multi target dtype", lambda f, T: f.multi_margin_loss(T([[1.0, 2]]), T([0.0]))),
        ("multi target size", lambda f, T: f.multi_margin_loss(T([[1.0, 2]]), T([0, 1]))),
        ("multi 3d", lambda f, T: f.multi_margin_loss(T([[[1.0, 2]]]), T([0]))),
        ("multilabel 0d", lambda f, T: f.multilabel_soft_margin_loss(T(1.0), T(1.0))),
    ]


@pytest.mark.parametrize("call", _bad_calls(), ids=lambda c: c[0])
def test_errors_have_torch_exception_types(call):
    _, bad = call
    with pytest.raises(Exception) as theirs:
        bad(torch.nn.functional, torch.tensor)
    with pytest.raises(type(theirs.value)) as ours:
        bad(F, hg.tensor)
    assert str(ours.value), "the message must say what is wrong"


def test_module_argument_checks_are_torch_s():
    for cls in (nn, torch.nn):
        with pytest.raises(ValueError):
            cls.MultiMarginLoss(p=3)
        with pytest.raises(ValueError):
            cls.TripletMarginLoss(margin=-1.0)
