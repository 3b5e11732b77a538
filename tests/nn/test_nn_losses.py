"""Losses: the modules against torch.nn with every option (value, input and target
gradients, float32 and float64); the messages for bad targets.

(The functional forms are checked by the op registry: against torch, finite differences
and, for each fused Function, the same math composed from primitives.)
"""

from __future__ import annotations

import itertools

import pytest
import torch

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from handgrad.autograd import HandgradError
from tests.torch_compare import assert_close


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64)


def compare_loss(ours, theirs, input, target, dtype, target_grad=False, seed=1):
    """Value and gradients (of the input, and of the target if float) of a loss module
    against torch's, with a random upstream gradient for reduction='none'."""
    x_t = input.to(dtype).clone().requires_grad_()
    t_t = target.to(dtype) if target.is_floating_point() else target
    if target_grad:
        t_t = t_t.clone().requires_grad_()
    x_h = hg.tensor(x_t.detach(), requires_grad=True)
    t_h = hg.tensor(t_t.detach(), requires_grad=target_grad)
    out_h, out_t = ours(x_h, t_h), theirs(x_t, t_t)
    assert_close(out_h, out_t, dtype, "loss value")
    upstream = torch.randn(out_t.shape, generator=_gen(seed), dtype=torch.float64).to(dtype)
    out_h.backward(upstream)
    out_t.backward(upstream)
    assert_close(x_h.grad, x_t.grad, dtype, "input gradient")
    if target_grad:
        assert_close(t_h.grad, t_t.grad, dtype, "target gradient")


def _classes(shape, classes, seed=0, ignore=None):
    target = torch.randint(0, classes, shape, generator=_gen(seed))
    if ignore is not None:
        target[torch.rand(shape, generator=_gen(seed + 1)) < 0.3] = ignore
        target.view(-1)[0] = 0
    return target


# ------------------------------------------------------------------ cross-entropy
CE_OPTIONS = [dict(zip(("reduction", "label_smoothing", "weighted", "ignore_index"), v))
              for v in itertools.product(("mean", "sum", "none"), (0.0, 0.15), (False, True),
                                         (-100, 2))]


@pytest.mark.parametrize("options", CE_OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
@pytest.mark.parametrize("shape", [(7, 5), (3, 5, 4), (5,), (2, 5, 2, 3)])
def test_cross_entropy_class_indices(dtype, options, shape):
    options = dict(options)
    weight = 0.5 + torch.rand(5, generator=_gen(3), dtype=torch.float64) \
        if options.pop("weighted") else None
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = _classes(target_shape, 5, ignore=options["ignore_index"])
    ours = nn.CrossEntropyLoss(None if weight is None else hg.tensor(weight.to(dtype)),
                               **options)
    theirs = torch.nn.CrossEntropyLoss(None if weight is None else weight.to(dtype),
                                       **options)
    compare_loss(ours, theirs, _randn(*shape), target, dtype)


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2, "reduction": "sum"},
                                     {"weighted": True, "reduction": "none"},
                                     {"weighted": True, "label_smoothing": 0.1}])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3), (4,)])
def test_cross_entropy_probability_targets(dtype, options, shape):
    options = dict(options)
    weight = _randn(4, seed=5).abs() if options.pop("weighted", False) else None
    probabilities = _randn(*shape, seed=2).softmax(dim=0 if len(shape) == 1 else 1)
    ours = nn.CrossEntropyLoss(None if weight is None else hg.tensor(weight.to(dtype)),
                               **options)
    theirs = torch.nn.CrossEntropyLoss(None if weight is None else weight.to(dtype),
                                       **options)
    compare_loss(ours, theirs, _randn(*shape), probabilities, dtype, target_grad=True)


@pytest.mark.parametrize("options", [{}, {"reduction": "sum"}, {"reduction": "none"},
                                     {"weighted": True, "ignore_index": 1}])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3), (4,)])
def test_nll_loss(dtype, options, shape):
    options = dict(options)
    weight = _randn(4, seed=5).abs() if options.pop("weighted", False) else None
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    ours = nn.NLLLoss(None if weight is None else hg.tensor(weight.to(dtype)), **options)
    theirs = torch.nn.NLLLoss(None if weight is None else weight.to(dtype), **options)
    log_probabilities = _randn(*shape).log_softmax(dim=0 if len(shape) == 1 else 1)
    compare_loss(ours, theirs, log_probabilities,
                 _classes(target_shape, 4, ignore=options.get("ignore_index")), dtype)


# ------------------------------------------------------------------ regression, binary
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name, options", [("MSELoss", {}), ("L1Loss", {}),
                                           ("SmoothL1Loss", {}), ("SmoothL1Loss", {"beta": 0.4}),
                                           ("SmoothL1Loss", {"beta": 0.0})])
def test_regression_losses(dtype, reduction, name, options):
    ours = getattr(nn, name)(reduction=reduction, **options)
    theirs = getattr(torch.nn, name)(reduction=reduction, **options)
    compare_loss(ours, theirs, _randn(5, 3), _randn(5, 3, seed=1), dtype, target_grad=True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_loss(dtype, reduction, weighted):
    weight = _randn(3, seed=4).abs() if weighted else None
    ours = nn.BCELoss(None if weight is None else hg.tensor(weight.to(dtype)),
                      reduction=reduction)
    theirs = torch.nn.BCELoss(None if weight is None else weight.to(dtype), reduction=reduction)
    probabilities = _randn(5, 3).sigmoid()
    targets = torch.rand(5, 3, generator=_gen(2), dtype=torch.float64)
    compare_loss(ours, theirs, probabilities, targets, dtype, target_grad=True)


def test_bce_loss_clamps_the_log_like_torch():
    p = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    t = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    expected = torch.nn.functional.binary_cross_entropy(p, t, reduction="none")
    assert torch.equal(F.binary_cross_entropy(hg.tensor(p), hg.tensor(t),
                                              reduction="none").data, expected)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted, pos_weighted", [(False, False), (True, False),
                                                    (False, True), (True, True)])
def test_bce_with_logits_loss(dtype, reduction, weighted, pos_weighted):
    weight = _randn(3, seed=4).abs() if weighted else None
    pos_weight = _randn(3, seed=6).abs() + 0.5 if pos_weighted else None

    def wrap(t, cast):
        return None if t is None else cast(t.to(dtype))

    ours = nn.BCEWithLogitsLoss(wrap(weight, hg.tensor), reduction=reduction,
                                pos_weight=wrap(pos_weight, hg.tensor))
    theirs = torch.nn.BCEWithLogitsLoss(wrap(weight, torch.as_tensor), reduction=reduction,
                                        pos_weight=wrap(pos_weight, torch.as_tensor))
    logits = 4 * _randn(5, 3)  # large ones too: the stable form must not overflow
    targets = torch.rand(5, 3, generator=_gen(2), dtype=torch.float64)
    compare_loss(ours, theirs, logits, targets, dtype, target_grad=True)


def test_bce_with_logits_is_stable_for_huge_logits():
    x = hg.tensor([1000.0, -1000.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, hg.tensor([0.0, 1.0]))
    loss.backward()
    assert loss.item() == pytest.approx(1000.0)
    assert torch.equal(x.grad.data, torch.tensor([0.5, -0.5]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_hinge_loss(dtype, reduction):
    scores = _randn(8)
    labels = torch.tensor([1, -1, 1, 1, -1, -1, 1, -1], dtype=torch.float64)

    def reference(s, y):
        loss = torch.clamp(0.5 - y * s, min=0)
        return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]

    loss = nn.HingeLoss(margin=0.5, reduction=reduction)
    assert repr(loss) == "HingeLoss(margin=0.5)"
    compare_loss(loss, reference, scores, labels, dtype, target_grad=True)


def test_losses_share_state_dict_keys_with_torch():
    weight = torch.rand(4)
    ours = nn.CrossEntropyLoss(weight=hg.tensor(weight))
    assert list(ours.state_dict()) == list(torch.nn.CrossEntropyLoss(weight).state_dict())
    ours = nn.BCEWithLogitsLoss(pos_weight=hg.tensor(weight))
    assert list(ours.state_dict()) == \
        list(torch.nn.BCEWithLogitsLoss(pos_weight=weight).state_dict())


def test_legacy_size_average_and_reduce_map_to_reduction():
    with pytest.warns(UserWarning, match="deprecated"):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning):
        assert nn.L1Loss(reduce=False).reduction == "none"
    with pytest.raises(ValueError, match="reduction must be"):
        nn.MSELoss(reduction="average")


# ------------------------------------------------------------------ bad input
def test_cross_entropy_target_out_of_range_says_so():
    x = hg.randn(3, 5)
    with pytest.raises(HandgradError, match=r"class indices in \[0, 5\).*got 7"):
        F.cross_entropy(x, hg.tensor([1, 7, 2]))
    with pytest.raises(HandgradError, match=r"got -1"):
        nn.CrossEntropyLoss()(x, hg.tensor([1, -1, 2]))
    F.cross_entropy(x, hg.tensor([1, -100, 2]))  # ignore_index is fine


def test_cross_entropy_target_of_the_wrong_dtype_or_shape_says_so():
    x = hg.randn(3, 5)
    with pytest.raises(HandgradError, match=r"must be integers.*float32.*target.long\(\)"):
        F.cross_entropy(x, hg.tensor([1.0, 0.0, 2.0]))
    with pytest.raises(HandgradError, match=r"needs a target of shape \(3,\), got \(3, 1\) int64"):
        F.cross_entropy(x, hg.tensor([[1], [0], [2]]))
    with pytest.raises(HandgradError, match="must be integers"):
        F.nll_loss(x, hg.tensor([True, False, True]))


def test_binary_losses_refuse_mismatched_shapes_and_bad_probabilities():
    with pytest.raises(ValueError, match="target size"):
        F.binary_cross_entropy_with_logits(hg.randn(3, 2), hg.rand(3))
    with pytest.raises(HandgradError, match="between 0 and 1"):
        F.binary_cross_entropy(hg.tensor([0.5, 1.5]), hg.tensor([0.0, 1.0]))


def test_mse_warns_when_it_broadcasts_like_torch():
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(hg.randn(3, 2), hg.randn(3, 1))


@pytest.mark.parametrize("name, options", [
    ("CrossEntropyLoss", {}), ("CrossEntropyLoss", {"label_smoothing": 0.1}),
    ("CrossEntropyLoss", {"weighted": True, "label_smoothing": 0.1}), ("NLLLoss", {}),
    ("NLLLoss", {"weighted": True}),
], ids=["ce", "ce-smoothing", "ce-weighted-smoothing", "nll", "nll-weighted"])
def test_every_target_ignored_gives_nan_loss_and_zero_gradient_like_torch(name, options):
    """'mean' over no counted position is 0/0 = nan, as in torch; the gradient is 0 (no
    position contributes), not nan, so one all-padding batch cannot poison the weights."""
    options = dict(options)
    weight = _randn(4, seed=5).abs() if options.pop("weighted", False) else None
    ours = getattr(nn, name)(None if weight is None else hg.tensor(weight), ignore_index=1,
                             **options)
    theirs = getattr(torch.nn, name)(weight, ignore_index=1, **options)
    x_t = _randn(3, 4).log_softmax(1).requires_grad_()
    x_h = hg.tensor(x_t.detach(), requires_grad=True)
    target = torch.tensor([1, 1, 1])
    out_h, out_t = ours(x_h, hg.tensor(target)), theirs(x_t, target)
    assert out_h.data.isnan() and out_t.isnan()
    out_h.backward()
    out_t.backward()
    assert torch.equal(x_h.grad.data, x_t.grad) and not x_t.grad.any()


@pytest.mark.parametrize("weight_shape", [(5,), (3,), (4, 1)])
@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_class_weight_of_the_wrong_shape_is_refused(loss, weight_shape):
    with pytest.raises(HandgradError, match=r"weight must hold one per class \(4: .*got shape"):
        loss(hg.randn(3, 4), hg.tensor([0, 1, 2]), weight=hg.ones(*weight_shape))


@pytest.mark.parametrize("loss, extra", [
    (F.binary_cross_entropy, {}), (F.binary_cross_entropy_with_logits, {}),
    (F.binary_cross_entropy_with_logits, {"pos_weight": "big"}),
])
def test_binary_weights_that_would_grow_the_loss_are_refused(loss, extra):
    """torch refuses a weight that broadcasts to more than the input's shape; it would
    silently average over the copies."""
    x, t = hg.rand(4, 3), hg.rand(4, 3)
    big = hg.ones(2, 4, 3)
    kwargs = {"pos_weight": big} if extra else {"weight": big}
    with pytest.raises(HandgradError, match=r"(pos_)?weight of shape \(2, 4, 3\).*\(4, 3\)"):
        loss(x, t, **kwargs)
    # weights that broadcast to the input's shape are fine
    loss(x, t, weight=hg.ones(3))
    loss(x, t, weight=hg.ones(4, 1))


def test_hinge_loss_refuses_zero_labels():
    """0/1 labels are the usual slip: with them the loss is silently wrong (a 0 label
    contributes margin and no gradient)."""
    scores = hg.randn(4)
    with pytest.raises(HandgradError,
                       match=r"hinge_loss: labels must be -1 or \+1, got 0.*2 \* y - 1"):
        nn.HingeLoss()(scores, hg.tensor([1, 0, 1, 0]))
    nn.HingeLoss()(scores, hg.tensor([1, -1, 1, -1]))  # int labels are fine
    nn.HingeLoss()(scores, hg.tensor([1.0, -1.0, 1.0, -1.0]))
