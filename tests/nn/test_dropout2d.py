"""Channel dropout (F.dropout1d, F.dropout2d, nn.Dropout1d, nn.Dropout2d) against torch's
rules. Random masks cannot match torch's draws, so the tests check what must hold for
any mask: whole channels are zero or kept, the kept ones scaled by 1 / (1 - p), the
fraction dropped near p, the gradient = mask * upstream; eval and p=0 are the identity,
p=1 zeroes everything; torch's handling of unbatched and other-rank inputs (and its
warnings and errors); non-contiguous and channels-last inputs; a generator makes the
mask reproducible; CUDA follows the same rules.

Left out: finite differences and the fused-vs-composed proof (the registry entries
dropout1d* / dropout2d* in handgrad/testing/registry/vision.py).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn


def _positive(*shape, dtype=torch.float64, seed=0):
    """Values in [0.5, 1.5): never zero, so a zero in the output means a dropped entry."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5).to(dtype)


def _check_channel_dropout(fn, x, p, channel_dims):
    """fn(x) zeroes whole channels (the entries sharing the leading `channel_dims` indices)
    and scales the kept ones by 1 / (1 - p); the gradient is mask * upstream. Returns the
    (channels,) kept-mask."""
    leaf = hg.Tensor(x.clone(), requires_grad=True)
    out = fn(leaf)
    assert out.shape == x.shape and out.dtype == x.dtype
    per_channel = out.data.reshape(*x.shape[:channel_dims], -1)
    kept = per_channel.ne(0).all(-1)
    dropped = per_channel.eq(0).all(-1)
    assert bool((kept | dropped).all()), "a channel is partly dropped"
    mask = kept.to(x.dtype).reshape(*x.shape[:channel_dims], *(1,) * (x.ndim - channel_dims))
    torch.testing.assert_close(out.data, x * mask / (1 - p))
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1),
                           dtype=x.dtype).to(x.device)
    out.backward(upstream)
    torch.testing.assert_close(leaf.grad.data, upstream * mask / (1 - p))
    return kept


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout2d_drops_whole_channels_with_probability_p(p, dtype):
    hg.manual_seed(0)
    kept = _check_channel_dropout(lambda x: F.dropout2d(x, p), _positive(100, 80, 3, 2,
                                                                         dtype=dtype), p, 2)
    assert abs(1 - kept.double().mean().item() - p) < 0.02  # 8000 draws: std 0.0056


def test_dropout1d_batched_and_unbatched(dtype):
    hg.manual_seed(1)
    kept = _check_channel_dropout(lambda x: F.dropout1d(x, 0.3), _positive(60, 50, 4,
                                                                           dtype=dtype), 0.3, 2)
    assert abs(1 - kept.double().mean().item() - 0.3) < 0.04
    kept = _check_channel_dropout(lambda x: F.dropout1d(x, 0.3), _positive(500, 4,
                                                                           dtype=dtype), 0.3, 1)
    assert abs(1 - kept.double().mean().item() - 0.3) < 0.06  # rows of (C, L) are channels


@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last"])
def test_dropout2d_strided_and_channels_last_inputs(layout):
    base = _positive(6, 5, 4, 3)
    x = {"transposed": base.transpose(-1, -2).contiguous().transpose(-1, -2),
         "sliced": torch.zeros(6, 5, 4, 6, dtype=torch.float64)[..., ::2],
         "channels_last": base.contiguous(memory_format=torch.channels_last)}[layout]
    if layout == "sliced":
        x.copy_(base)
    hg.manual_seed(2)
    _check_channel_dropout(lambda t: F.dropout2d(t, 0.4), x, 0.4, 2)


def test_eval_and_p0_are_the_identity_and_p1_zeroes(dtype):
    x = _positive(3, 4, 2, 2, dtype=dtype)
    for module in (nn.Dropout2d(0.7), nn.Dropout1d(0.7)):
        module.eval()
        inp = x if isinstance(module, nn.Dropout2d) else x[:, :, 0]
        assert torch.equal(module(hg.Tensor(inp)).data, inp)
    assert torch.equal(F.dropout2d(hg.Tensor(x), 0.7, training=False).data, x)
    assert torch.equal(F.dropout2d(hg.Tensor(x), 0.0).data, x)
    leaf = hg.Tensor(x.clone(), requires_grad=True)
    out = F.dropout2d(leaf, 1.0)
    assert torch.equal(out.data, TF.dropout2d(x, 1.0))
    out.backward(torch.ones_like(x))
    assert torch.equal(leaf.grad.data, torch.zeros_like(x))


def test_modules_train_mode_and_repr():
    hg.manual_seed(3)
    kept = _check_channel_dropout(nn.Dropout2d(0.25), _positive(40, 30, 2, 2), 0.25, 2)
    assert 0.15 < 1 - kept.double().mean().item() < 0.35
    _check_channel_dropout(nn.Dropout1d(0.25), _positive(8, 30, 5), 0.25, 2)
    for p, inplace in [(0.5, False), (0.1, True)]:
        assert repr(nn.Dropout2d(p, inplace)) == repr(torch.nn.Dropout2d(p, inplace))
        assert repr(nn.Dropout1d(p, inplace)) == repr(torch.nn.Dropout1d(p, inplace))
    assert nn.Dropout2d().state_dict() == {} and torch.nn.Dropout2d().state_dict() == {}


def test_a_generator_makes_the_mask_reproducible():
    x = hg.Tensor(_positive(4, 6, 3, 3))
    first = F.dropout2d(x, 0.5, generator=torch.Generator().manual_seed(7))
    again = F.dropout2d(x, 0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first.data, again.data)


def test_other_ranks_follow_torch():
    x = _positive(4, 5, 6)
    # 3-d input to dropout2d: read as (N, C, L), with torch's warning
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        out = F.dropout2d(hg.Tensor(x), 0.5)
    per_channel = out.data
    assert bool((per_channel.ne(0).all(-1) | per_channel.eq(0).all(-1)).all())
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        TF.dropout2d(x.clone(), 0.5)
    # 2-d and 5-d inputs: torch's deprecation warning; a 2-d input drops single entries
    for shape in [(30, 40), (2, 3, 2, 2, 2)]:
        with pytest.warns(UserWarning, match=f"Received a {len(shape)}-D input to dropout2d"):
            hg.manual_seed(4)
            _check_channel_dropout(lambda t: F.dropout2d(t, 0.5), _positive(*shape), 0.5, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="at least 2 dimensions"):
            F.dropout2d(hg.randn(5), 0.5)
        with pytest.raises(RuntimeError):
            TF.dropout2d(torch.randn(5), 0.5)
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received "
                                           "a 4D input"):
        F.dropout1d(hg.randn(2, 3, 4, 5))
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
        TF.dropout1d(torch.randn(2, 3, 4, 5))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_probability_out_of_range(p):
    for call in (lambda: F.dropout2d(hg.randn(2, 3, 2, 2), p),
                 lambda: F.dropout1d(hg.randn(2, 3, 2), p),
                 lambda: nn.Dropout2d(p), lambda: nn.Dropout1d(p),
                 lambda: torch.nn.Dropout2d(p)):
        with pytest.raises(ValueError, match="between 0 and 1"):
            call()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_follows_the_same_rules():
    x = _positive(50, 40, 3, 3).cuda()
    hg.manual_seed(5)
    kept = _check_channel_dropout(lambda t: F.dropout2d(t, 0.3), x, 0.3, 2)
    assert kept.device.type == "cuda"
    assert abs(1 - kept.double().mean().item() - 0.3) < 0.03
    first = F.dropout2d(hg.Tensor(x), 0.5, generator=torch.Generator("cuda").manual_seed(7))
    again = F.dropout2d(hg.Tensor(x), 0.5, generator=torch.Generator("cuda").manual_seed(7))
    assert torch.equal(first.data, again.data)
