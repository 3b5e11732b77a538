"""Losses: the modules against torch.nn with every option (value, input and target
gradients, float32 and float64); each fused Function against the same loss composed
from handgrad's primitives; the messages for bad targets.

(The functional forms are also checked by the op registry, with finite differences.)
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


# ------------------------------------------------------------------ fused vs composed
def _grads_agree(fused, composed, *inputs):
    """The fused and the composed handgrad computation give the same values and input
    gradients (float64, random upstream)."""
    leaves = [[hg.tensor(x, requires_grad=x.is_floating_point()) for x in inputs]
              for _ in range(2)]
    outs = [fn(*xs) for fn, xs in zip((fused, composed), leaves)]
    assert_close(outs[0], outs[1].data, torch.float64, "fused vs composed value")
    upstream = torch.randn(outs[0].shape, generator=_gen(9), dtype=torch.float64)
    for out in outs:
        out.backward(upstream)
    for a, b in zip(*leaves):
        if a.requires_grad:
            assert_close(a.grad, b.grad.data, torch.float64, "fused vs composed gradient")


def _composed_cross_entropy(x, y, weight, ignore_index, smoothing):
    log_p = x.log_softmax(1)
    valid = (y != ignore_index)
    safe = hg.where(valid, y, 0)
    w_y = weight.index_select(0, safe.reshape(-1)).reshape(safe.shape) * valid
    nll = -log_p.gather(1, safe.unsqueeze(1)).squeeze(1) * w_y
    smooth = -(log_p * weight.reshape(1, -1)).sum(1) * valid
    classes = x.shape[1]
    return ((1 - smoothing) * nll + smoothing / classes * smooth).sum() / w_y.sum()


def test_fused_cross_entropy_matches_its_composition():
    x, y = _randn(6, 4), _classes((6,), 4, ignore=3)
    weight = hg.tensor(_randn(4, seed=2).abs())
    _grads_agree(lambda x, y: F.cross_entropy(x, y, weight=weight, ignore_index=3,
                                              label_smoothing=0.1),
                 lambda x, y: _composed_cross_entropy(x, y, weight, 3, 0.1), x, y)


def test_fused_cross_entropy_with_probabilities_matches_its_composition():
    weight = hg.tensor(_randn(4, seed=2).abs())

    def composed(x, t):  # q = w ((1 - eps) t + eps / C), l = -sum_c q log p, mean over N
        q = ((1 - 0.2) * t + 0.2 / 4) * weight.reshape(1, -1, 1)
        return -(q * x.log_softmax(1)).sum(1).mean()

    _grads_agree(lambda x, t: F.cross_entropy(x, t, weight=weight, label_smoothing=0.2),
                 composed, _randn(5, 4, 3), _randn(5, 4, 3, seed=1).softmax(1))


def test_fused_nll_loss_matches_its_composition():
    weight = hg.tensor(_randn(4, seed=2).abs())

    def composed(x, y):
        valid = y != 3
        safe = hg.where(valid, y, 0)
        w_y = weight.index_select(0, safe.reshape(-1)).reshape(safe.shape) * valid
        return -(x.gather(1, safe.unsqueeze(1)).squeeze(1) * w_y).sum() / w_y.sum()

    _grads_agree(lambda x, y: F.nll_loss(x, y, weight=weight, ignore_index=3), composed,
                 _randn(6, 4, 2), _classes((6, 2), 4, ignore=3))


@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_matches_its_composition(bias):
    if bias:
        _grads_agree(F.linear, lambda x, w, b: x @ w.T + b, _randn(2, 3, 5), _randn(4, 5),
                     _randn(4))
    else:
        _grads_agree(F.linear, lambda x, w: x @ w.T, _randn(2, 3, 5), _randn(4, 5))


def test_linear_module_and_function_share_one_check_and_message():
    """nn.Linear.forward is F.linear (torch's shape): one check, naming the layer, the
    expected features, both shapes and what to do."""
    layer = nn.Linear(5, 4)
    for call in (lambda x: layer(x), lambda x: F.linear(x, layer.weight, layer.bias)):
        with pytest.raises(HandgradError, match=r"Linear: expected an input with 5 features "
                           r"in its last dim, got shape \(2, 3\) \(weight of shape \(4, 5\)\)"
                           r"\. Reshape the input"):
            call(hg.randn(2, 3))
        with pytest.raises(HandgradError, match=r"got shape \(\)"):
            call(hg.tensor(1.0))
    x = hg.randn(2, 5)
    assert torch.equal(layer(x).data, F.linear(x, layer.weight, layer.bias).data)


def test_fused_batch_norm_matches_its_composition():
    def composed(x, w, b):
        mean = x.mean(dim=(0, 2), keepdim=True)
        var = x.var(dim=(0, 2), keepdim=True, correction=0)
        return (x - mean) / (var + 1e-5).sqrt() * w.reshape(1, -1, 1) + b.reshape(1, -1, 1)

    _grads_agree(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), composed,
                 _randn(4, 3, 5), _randn(3), _randn(3))


def test_fused_batch_norm_in_evaluation_matches_its_composition():
    mean, var = hg.tensor(_randn(3, seed=3)), hg.tensor(_randn(3, seed=4).abs() + 0.5)

    def composed(x, w, b):
        scale = (var + 1e-5).rsqrt() * w
        return (x - mean.reshape(1, -1, 1)) * scale.reshape(1, -1, 1) + b.reshape(1, -1, 1)

    _grads_agree(lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False), composed,
                 _randn(4, 3, 5), _randn(3), _randn(3))


def test_fused_layer_norm_matches_its_composition():
    def composed(x, w, b):
        mean = x.mean(dim=(-2, -1), keepdim=True)
        var = x.var(dim=(-2, -1), keepdim=True, correction=0)
        return (x - mean) * (var + 1e-5).rsqrt() * w + b

    _grads_agree(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), composed,
                 _randn(2, 3, 4), _randn(3, 4), _randn(3, 4))


@pytest.mark.parametrize("fused, composed", [
    (F.mse_loss, lambda x, t: ((x - t) ** 2).mean()),
    (F.l1_loss, lambda x, t: (x - t).abs().mean()),
    (lambda x, t: F.smooth_l1_loss(x, t, beta=0.5),
     lambda x, t: hg.where((x - t).abs() < 0.5, 0.5 * (x - t) ** 2 / 0.5,
                           (x - t).abs() - 0.25).mean()),
    (F.binary_cross_entropy_with_logits,
     lambda x, t: -(t * x.sigmoid().log() + (1 - t) * (1 - x.sigmoid()).log()).mean()),
    (lambda x, t: F.binary_cross_entropy(x.sigmoid(), t),
     lambda x, t: -(t * x.sigmoid().log() + (1 - t) * (1 - x.sigmoid()).log()).mean()),
], ids=["mse", "l1", "smooth_l1", "bce_with_logits", "bce"])
def test_fused_losses_match_their_composition(fused, composed):
    _grads_agree(fused, composed, _randn(4, 3), _randn(4, 3, seed=1).sigmoid())


def test_fused_bce_with_logits_and_both_weights_matches_its_composition():
    weight, pos_weight = hg.tensor(_randn(3, seed=2).abs()), hg.tensor(_randn(3, seed=3).abs())

    def composed(x, t):  # -w (pos_weight t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))
        return -(weight * (pos_weight * t * x.sigmoid().log()
                           + (1 - t) * (1 - x.sigmoid()).log())).mean()

    _grads_agree(lambda x, t: F.binary_cross_entropy_with_logits(x, t, weight=weight,
                                                                 pos_weight=pos_weight),
                 composed, _randn(4, 3), _randn(4, 3, seed=1).sigmoid())


def test_fused_hinge_loss_matches_its_composition():
    labels = torch.randint(0, 2, (4, 3), generator=_gen(1)).double() * 2 - 1
    _grads_agree(F.hinge_loss, lambda s, y: (1 - y * s).relu().mean(), _randn(4, 3), labels)


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
    with pytest.raises(HandgradError, match=r"needs a target of shape \(3,\), got shape \(3, 1\)"):
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
