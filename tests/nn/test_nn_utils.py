"""nn.utils.clip_grad_norm_ and clip_grad_value_ against torch.nn.utils."""

from __future__ import annotations

import math

import pytest
import torch

import handgrad as hg
from handgrad import nn


def _twins(scale=1.0, seed=0):
    """Parameters with gradients, in handgrad and in torch, with equal values."""
    gen = torch.Generator().manual_seed(seed)
    grads = [scale * torch.randn(shape, generator=gen, dtype=torch.float64)
             for shape in [(3, 4), (4,), (2, 2, 2)]]
    ours, theirs = [], []
    for g in grads:
        p = nn.Parameter(torch.zeros_like(g))
        p.grad = hg.tensor(g)
        t = torch.zeros_like(g, requires_grad=True)
        t.grad = g.clone()
        ours.append(p)
        theirs.append(t)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = _twins()
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, hg.Tensor)
    torch.testing.assert_close(total.data, expected, rtol=1e-12, atol=0)
    for p, t in zip(ours, theirs):
        torch.testing.assert_close(p.grad.data, t.grad, rtol=1e-12, atol=0)


def test_clip_grad_norm_single_tensor_no_grads_and_nonfinite():
    ours, _ = _twins()
    total = nn.utils.clip_grad_norm_(ours[0], 0.1)
    assert ours[0].grad.data.norm().item() == pytest.approx(0.1, rel=1e-5)
    assert total.item() > 0.1
    assert nn.utils.clip_grad_norm_([nn.Parameter(hg.ones(2))], 1.0).item() == 0.0
    ours[1].grad.data[0] = math.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_matches_torch():
    ours, theirs = _twins(scale=3.0)
    nn.utils.clip_grad_value_(ours, 1.5)
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, t in zip(ours, theirs):
        assert torch.equal(p.grad.data, t.grad)
    assert max(p.grad.data.abs().max().item() for p in ours) == 1.5
