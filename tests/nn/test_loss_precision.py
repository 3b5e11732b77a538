"""The losses keep their precision where the logits are huge or all equal and very
negative: cross-entropy (class indices and probabilities, every option), nll_loss and
binary_cross_entropy_with_logits, value and gradients against torch.nn.functional in
float16, float32 and float64, and BCE-with-logits against the exact (float64) loss.

Left out: the ordinary-range comparisons with every option (test_nn_losses.py).
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as F

DTYPES = [torch.float16, torch.float32, torch.float64]
TOLERANCES = {torch.float16: dict(atol=2e-3, rtol=2e-3),
              torch.float32: dict(atol=1e-5, rtol=1e-5),
              torch.float64: dict(atol=1e-10, rtol=1e-10)}
HUGE = {torch.float16: 1e4, torch.float32: 1e6, torch.float64: 1e15}
MOST_NEGATIVE = {torch.float16: -6e4, torch.float32: -3e38, torch.float64: -1.7e308}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _logits(case, shape, dtype):
    """Logits of one of the hard kinds: 'huge' (every row near HUGE, spread by a few
    units, with one row all equal) or 'most_negative' (rows of all-equal, most negative
    values, next to ordinary rows)."""
    x = torch.randn(shape, generator=_gen(), dtype=torch.float64) * 3
    if case == "huge":
        x = x + HUGE[dtype]
        x[0] = HUGE[dtype]
    else:
        x[::2] = MOST_NEGATIVE[dtype]
    return x.to(dtype)


def _agree(ours, theirs, x, *others, dtype):
    """Value and input gradient (random upstream gradient) of ours and torch's."""
    x_t = x.clone().requires_grad_()
    x_h = hg.tensor(x, requires_grad=True)
    out_t = theirs(x_t, *others)
    out_h = ours(x_h, *(hg.tensor(o) if isinstance(o, torch.Tensor) else o for o in others))
    tolerance = TOLERANCES[dtype]
    torch.testing.assert_close(out_h.data, out_t.detach(), **tolerance,
                               msg=lambda m: f"loss value: {m}")
    upstream = torch.rand(out_t.shape, generator=_gen(1), dtype=torch.float64).to(dtype)
    out_t.backward(upstream)
    out_h.backward(hg.tensor(upstream))
    torch.testing.assert_close(x_h.grad.data, x_t.grad, **tolerance,
                               msg=lambda m: f"input gradient: {m}")


CLASS_OPTIONS = list(itertools.product(("mean", "sum", "none"), (0.0, 0.1), (False, True),
                                       (-100, 1)))


@pytest.mark.parametrize("reduction, label_smoothing, weighted, ignore_index",
                         CLASS_OPTIONS)
@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 3)], ids=["NC", "NCd"])
@pytest.mark.parametrize("case", ["huge", "most_negative"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cross_entropy_class_indices_keeps_precision(dtype, case, shape, reduction,
                                                     label_smoothing, weighted,
                                                     ignore_index):
    x = _logits(case, shape, dtype)
    target = torch.randint(0, shape[1], shape[:1] + shape[2:], generator=_gen(2))
    target.view(-1)[-1] = ignore_index if ignore_index >= 0 else target.view(-1)[-1]
    weight = torch.rand(shape[1], generator=_gen(3), dtype=torch.float64).to(dtype) + 0.5 \
        if weighted else None
    options = dict(weight=weight, ignore_index=ignore_index, reduction=reduction,
                   label_smoothing=label_smoothing)
    _agree(lambda x, t: F.cross_entropy(x, t, **{**options, "weight": hg.tensor(weight)
                                                 if weighted else None}),
           lambda x, t: TF.cross_entropy(x, t, **options), x, target, dtype=dtype)


@pytest.mark.parametrize("reduction, label_smoothing, weighted",
                         list(itertools.product(("mean", "sum", "none"), (0.0, 0.1),
                                                (False, True))))
@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 3)], ids=["NC", "NCd"])
@pytest.mark.parametrize("case", ["huge", "most_negative"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cross_entropy_probabilities_keeps_precision(dtype, case, shape, reduction,
                                                     label_smoothing, weighted):
    x = _logits(case, shape, dtype)
    target = torch.rand(shape, generator=_gen(2), dtype=torch.float64)
    target = (target / target.sum(1, keepdim=True)).to(dtype)
    weight = torch.rand(shape[1], generator=_gen(3), dtype=torch.float64).to(dtype) + 0.5 \
        if weighted else None
    options = dict(reduction=reduction, label_smoothing=label_smoothing)
    _agree(lambda x, t: F.cross_entropy(x, t, weight=hg.tensor(weight) if weighted else None,
                                        **options),
           lambda x, t: TF.cross_entropy(x, t, weight=weight, **options), x, target,
           dtype=dtype)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype, row", [(torch.float32, [1e6, 1e6 - 1, 1e6 - 3.5, 0.0]),
                                        (torch.float16, [1e4] * 4),
                                        (torch.float32, [-3e38] * 4)], ids=str)
def test_the_cases_of_the_issue(dtype, row, label_smoothing):
    """float32 logits near 1e6 were off by 2e-2, float16 [1e4]*4 gave 0 instead of
    log 4, and smoothing on a row of all -3e38 gave nan."""
    x, target = torch.tensor([row], dtype=dtype), torch.tensor([1])
    expected = TF.cross_entropy(x, target, label_smoothing=label_smoothing)
    ours = F.cross_entropy(hg.tensor(x), hg.tensor(target), label_smoothing=label_smoothing)
    assert ours.item() == expected.item()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", ["huge", "most_negative"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nll_loss_keeps_precision(dtype, case, reduction):
    """nll_loss adds no arithmetic of its own: log-probabilities in, -w x[y] out."""
    x = _logits(case, (4, 5, 3), dtype)
    log_probabilities = TF.log_softmax(x.double(), 1).to(dtype)
    target = torch.randint(0, 5, (4, 3), generator=_gen(2))
    target[0, 0] = 2
    weight = torch.rand(5, generator=_gen(3), dtype=torch.float64).to(dtype) + 0.5
    _agree(lambda x, t: F.nll_loss(x, t, weight=hg.tensor(weight), ignore_index=2,
                                   reduction=reduction),
           lambda x, t: TF.nll_loss(x, t, weight=weight, ignore_index=2,
                                    reduction=reduction),
           log_probabilities, target, dtype=dtype)


@pytest.mark.parametrize("pos_weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bce_with_logits_keeps_precision_for_very_negative_logits(dtype, pos_weighted):
    """(1 - t) x + softplus(-x) cancels where x << 0; the loss must stay within an ulp
    or two of the exact one (torch's own does not: in float16 -6e4 with t = 1e-3 gives
    64 instead of 60.02; -30 with t = 0 is 1.3% off even in float64)."""
    big = 6e4 if dtype == torch.float16 else 1e6
    x = torch.tensor([-30.0, -20.0, -big, -3000.0, 5000.0, 17.3, 0.0, -1.5], dtype=dtype)
    t = torch.tensor([0.0, 0.01, 1e-3, 0.3, 0.7, 0.9, 0.5, 1.0], dtype=dtype)
    pos_weight = torch.tensor([3.0], dtype=dtype) if pos_weighted else None
    x64, t64 = x.double(), t.double()  # exact: -(pw t log s(x) + (1 - t) log s(-x))
    pw64 = 1.0 if pos_weight is None else pos_weight.double()
    exact = -(pw64 * t64 * TF.logsigmoid(x64) + (1 - t64) * TF.logsigmoid(-x64))
    ours = F.binary_cross_entropy_with_logits(
        hg.tensor(x), hg.tensor(t), reduction="none",
        pos_weight=None if pos_weight is None else hg.tensor(pos_weight))
    rtol = {torch.float16: 2e-3, torch.float32: 1e-6, torch.float64: 1e-12}[dtype]
    atol = 1e-7 if dtype == torch.float16 else 1e-30  # float16 e**-30 underflows to 0
    torch.testing.assert_close(ours.data.double(), exact, rtol=rtol, atol=atol)
    if dtype != torch.float16:  # elsewhere torch's value is close enough to compare
        _agree(lambda x, t: F.binary_cross_entropy_with_logits(
                   x, t, pos_weight=None if pos_weight is None else hg.tensor(pos_weight)),
               lambda x, t: TF.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight),
               x, t, dtype=dtype)
