"""ctc_loss / nn.CTCLoss against torch: random input and target lengths, blank not 0,
repeated labels, empty targets, both target layouts, unbatched inputs, impossible
alignments (inf, nan gradients, zero_infinity), float64 finite differences, torch's
argument checks.

Gradients are compared on logits through log_softmax: torch's backward returns
exp(log_probs) - posterior, which is the logits' gradient, not log_probs' own (it fails
gradcheck); handgrad returns the true gradient of log_probs. A test pins that relation
exactly, and finite differences prove handgrad's gradient.
"""

from __future__ import annotations

import pytest
import torch

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from handgrad.testing import gradcheck
from tests.torch_compare import assert_close

pytestmark = pytest.mark.usefixtures("one_thread")
TF = torch.nn.functional


def _problem(seed, frames=15, batch=5, classes=6, blank=0, longest=5):
    """Logits, padded targets (labels never blank, repeats included), lengths; one
    target empty, the first item's target as long as the padding."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.tensor([c for c in range(classes) if c != blank])
    targets = labels[torch.randint(0, len(labels), (batch, longest), generator=gen)]
    targets[0, 1:3] = targets[0, 0]  # a run of three equal labels
    target_lengths = torch.randint(1, longest + 1, (batch,), generator=gen)
    target_lengths[-1], target_lengths[0] = 0, longest
    low = (2 * target_lengths + 1).clamp(max=frames)
    input_lengths = low + (torch.rand(batch, generator=gen) * (frames + 1 - low)).long()
    input_lengths[min(1, batch - 1)] = frames
    logits = torch.randn(frames, batch, classes, generator=gen, dtype=torch.float64)
    return logits, targets, input_lengths, target_lengths


def _concatenated(targets, target_lengths):
    return torch.cat([targets[n, :target_lengths[n]] for n in range(len(target_lengths))])


def _both(logits, dtype, loss_ours, loss_torch, seed=3):
    """Values and logits' gradients of the two losses of log_softmax(logits)."""
    x_t = logits.to(dtype).clone().requires_grad_()
    x_h = hg.tensor(x_t.detach().clone(), requires_grad=True)
    out_t = loss_torch(x_t.log_softmax(-1))
    out_h = loss_ours(x_h.log_softmax(-1))
    assert_close(out_h, out_t.detach(), dtype, "loss")
    upstream = torch.randn(out_t.shape, generator=torch.Generator().manual_seed(seed),
                           dtype=torch.float64).to(dtype)
    out_t.backward(upstream)
    out_h.backward(upstream.clone())
    assert_close(x_h.grad, x_t.grad, dtype, "logits gradient")
    return out_h


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("blank", [0, 3, 5])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
def test_ctc_matches_torch(layout, blank, reduction, dtype):
    logits, targets, il, tl = _problem(blank + 7, blank=blank)
    if layout == "concatenated":
        targets = _concatenated(targets, tl)
    _both(logits, dtype,
          lambda lp: F.ctc_loss(lp, hg.tensor(targets), hg.tensor(il), hg.tensor(tl),
                                blank=blank, reduction=reduction),
          lambda lp: TF.ctc_loss(lp, targets, il, tl, blank=blank, reduction=reduction))


@pytest.mark.parametrize("seed", range(4))
def test_ctc_random_problems_match_torch(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    frames, batch, classes = (int(torch.randint(low, high, (), generator=gen))
                              for low, high in ((1, 30), (1, 7), (2, 9)))
    blank = int(torch.randint(0, classes, (), generator=gen))
    longest = int(torch.randint(0, frames + 1, (), generator=gen))
    logits, targets, il, tl = _problem(seed, frames, batch, classes, blank,
                                       max(1, longest // 2))
    il = torch.randint(0, frames + 1, (batch,), generator=gen)  # some impossible, some 0
    reduction = ("mean", "sum", "none")[seed % 3]
    module_ours = nn.CTCLoss(blank=blank, reduction=reduction, zero_infinity=True)
    module_torch = torch.nn.CTCLoss(blank=blank, reduction=reduction, zero_infinity=True)
    _both(logits, torch.float64,
          lambda lp: module_ours(lp, hg.tensor(targets), il.tolist(), tuple(tl.tolist())),
          lambda lp: module_torch(lp, targets, il.tolist(), tuple(tl.tolist())))


def test_ctc_log_probs_gradient_is_torch_s_minus_the_softmax_term():
    """torch returns exp(log_probs) h_n - posterior h_n on frames t < T_n; handgrad the
    -posterior h_n alone, the true derivative."""
    logits, targets, il, tl = _problem(1)
    log_probs = logits.log_softmax(-1)
    lp_t = log_probs.clone().requires_grad_()
    TF.ctc_loss(lp_t, targets, il, tl).backward()
    lp_h = hg.tensor(log_probs.clone(), requires_grad=True)
    F.ctc_loss(lp_h, hg.tensor(targets), il, tl).backward()
    h = 1 / (tl.clamp(min=1).double() * len(tl))  # 'mean'
    frame = torch.arange(log_probs.shape[0]).view(-1, 1, 1) < il.view(1, -1, 1)
    softmax_term = log_probs.exp() * h.view(1, -1, 1) * frame
    torch.testing.assert_close(lp_h.grad.data, lp_t.grad - softmax_term)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_ctc_finite_differences(reduction):
    """On raw log_probs (not normalised: the gradient does not rely on it)."""
    logits, targets, il, tl = _problem(2, frames=6, batch=3, classes=4, blank=2, longest=2)
    lp = hg.tensor(logits * 0.7)
    assert gradcheck(lambda x: F.ctc_loss(x, hg.tensor(targets), il, tl, blank=2,
                                          reduction=reduction), lp)


def test_ctc_unbatched_matches_torch(dtype):
    logits, targets, il, tl = _problem(4, batch=1)
    n = int(tl[0])
    for target in (targets[0, :n], targets[:1]):  # concatenated (S,), padded (1, S)
        for reduction in ("mean", "none"):
            _both(logits[:, 0], dtype,
                  lambda lp, t=target, r=reduction: F.ctc_loss(
                      lp, hg.tensor(t), hg.tensor(il[0]), hg.tensor(tl[0]), reduction=r),
                  lambda lp, t=target, r=reduction: TF.ctc_loss(lp, t, il[0], tl[0],
                                                                reduction=r))


def _impossible():
    """Item 0: 4 frames for 'a a a' (needs 5); item 1: no frames, target 'b'; item 2: no
    frames, empty target (P = 1); item 3: a possible one."""
    logits = torch.randn(6, 4, 4, generator=torch.Generator().manual_seed(5),
                         dtype=torch.float64)
    targets = torch.tensor([[1, 1, 1], [2, 0, 0], [0, 0, 0], [3, 1, 0]])
    return logits, targets, torch.tensor([4, 0, 0, 6]), torch.tensor([3, 1, 0, 2])


def test_ctc_impossible_alignments_are_inf_with_nan_gradients_like_torch():
    logits, targets, il, tl = _impossible()
    lp_t = logits.log_softmax(-1).requires_grad_()
    lp_h = hg.tensor(lp_t.detach().clone(), requires_grad=True)
    out_t = TF.ctc_loss(lp_t, targets, il, tl, reduction="none")
    out_h = F.ctc_loss(lp_h, hg.tensor(targets), il, tl, reduction="none")
    assert out_h.data.tolist()[:3] == [float("inf"), float("inf"), 0.0]
    torch.testing.assert_close(out_h.data, out_t.detach())
    out_t.sum().backward()
    out_h.sum().backward()
    nan_t = lp_t.grad.isnan().any(0).any(-1)
    nan_h = lp_h.grad.data.isnan().any(0).any(-1)
    assert nan_h.tolist() == nan_t.tolist() == [True, False, False, False]
    assert not lp_h.grad.data[:, 1:3].any()  # no frames: no gradient


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ctc_zero_infinity_like_torch(reduction, dtype):
    logits, targets, il, tl = _impossible()
    out = _both(logits, dtype,
                lambda lp: F.ctc_loss(lp, hg.tensor(targets), il, tl, reduction=reduction,
                                      zero_infinity=True),
                lambda lp: TF.ctc_loss(lp, targets, il, tl, reduction=reduction,
                                       zero_infinity=True))
    assert out.data.isfinite().all()


def test_ctc_module_repr_and_float32_on_the_module():
    assert repr(nn.CTCLoss(blank=2, zero_infinity=True)) == \
        repr(torch.nn.CTCLoss(blank=2, zero_infinity=True))
    logits, targets, il, tl = _problem(6)
    _both(logits, torch.float32,
          lambda lp: nn.CTCLoss(reduction="sum")(lp, hg.tensor(targets), il, tl),
          lambda lp: torch.nn.CTCLoss(reduction="sum")(lp, targets, il, tl))


def _bad_calls():
    lp = torch.randn(5, 2, 4).log_softmax(-1)
    good = torch.tensor([[1, 1], [1, 2]])
    five = torch.tensor([5, 5])
    two = torch.tensor([2, 2])
    return [
        ("input too long", lambda f, T: f.ctc_loss(T(lp), T(good), T([6, 5]), T(two))),
        ("negative input length", lambda f, T: f.ctc_loss(T(lp), T(good), T([-1, 5]),
                                                          T(two))),
        ("target longer than padding", lambda f, T: f.ctc_loss(T(lp), T(good), T(five),
                                                               T([3, 2]))),
        ("negative target length", lambda f, T: f.ctc_loss(T(lp), T(good), T(five),
                                                           T([-1, 2]))),
        ("blank out of range", lambda f, T: f.ctc_loss(T(lp), T(good), T(five), T(two),
                                                       blank=4)),
        ("concatenated too long", lambda f, T: f.ctc_loss(T(lp), T([1, 1, 1, 2, 3]), T(five),
                                                          T(two))),
        ("float lengths", lambda f, T: f.ctc_loss(T(lp), T(good), T([5.0, 4.0]), T(two))),
        ("lengths of another batch", lambda f, T: f.ctc_loss(T(lp), T(good), T([5, 4, 3]),
                                                             T(two))),
        ("targets of another batch", lambda f, T: f.ctc_loss(T(lp), T([[1, 1, 1, 2]]),
                                                             T(five), T(two))),
        ("4-d log_probs", lambda f, T: f.ctc_loss(T(lp[None]), T(good), T(five), T(two))),
        ("reduction", lambda f, T: f.ctc_loss(T(lp), T(good), T(five), T(two),
                                              reduction="x")),
    ]


@pytest.mark.parametrize("call", _bad_calls(), ids=lambda c: c[0])
def test_ctc_errors_have_torch_exception_types(call):
    _, bad = call
    with pytest.raises(Exception) as theirs:
        bad(TF, torch.as_tensor)
    with pytest.raises(type(theirs.value)) as ours:
        bad(F, hg.tensor)
    assert "ctc_loss" in str(ours.value)


def test_ctc_label_out_of_range_is_refused():
    """torch reads out of range without a word; handgrad says which label."""
    lp = hg.tensor(torch.randn(5, 1, 4).log_softmax(-1))
    with pytest.raises(hg.HandgradError, match=r"target labels must be in \[0, 4\).*got 7"):
        F.ctc_loss(lp, hg.tensor([[1, 7]]), [5], [2])


def test_ctc_ignores_frames_past_each_input_length():
    """Padding frames (here nan) change neither the loss nor any gradient, as in torch."""
    logits, targets, il, tl = _problem(8)
    log_probs = logits.log_softmax(-1)
    padded = log_probs.clone()
    for n, frames in enumerate(il.tolist()):
        padded[frames:, n] = torch.nan
    lp_h = hg.tensor(padded, requires_grad=True)
    lp_t = padded.clone().requires_grad_()
    out_h = F.ctc_loss(lp_h, hg.tensor(targets), il, tl, reduction="sum")
    out_t = TF.ctc_loss(lp_t, targets, il, tl, reduction="sum")
    torch.testing.assert_close(out_h.data, out_t.detach())
    out_h.backward()
    out_t.backward()
    assert not lp_h.grad.data.isnan().any()
    live = torch.arange(padded.shape[0]).view(-1, 1, 1) < il.view(1, -1, 1)
    assert not lp_h.grad.data[~live.expand_as(padded)].any()
