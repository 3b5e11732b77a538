"""Group, instance and 2-d batch normalisation against torch: F.group_norm and
F.instance_norm (outputs, input / weight / bias gradients for a random upstream,
float32 and float64, random shapes, non-contiguous and channels-last inputs), the
modules nn.GroupNorm, nn.InstanceNorm1d/2d and nn.BatchNorm2d against torch.nn over
their options (running statistics over several steps, momentum=None,
track_running_stats=False, eval, unbatched inputs), state_dicts both ways, repr, the
errors and warnings, and CUDA against CPU.

Left out: finite differences and the fused-vs-composed proof (the registry entries in
handgrad/testing/registry/vision.py and nn.py, run by tests/tensor/test_ops.py and
`handgrad gradcheck --op 'group_norm*' --op 'instance_norm*'`).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from tests.torch_compare import assert_close, compare_modules, to_torch_state

LAYOUTS = ["contiguous", "transposed", "sliced", "channels_last"]


def _laid_out(x, layout):
    """x (4-d) as a tensor of the same values in the given memory layout."""
    if layout == "transposed":
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "sliced":
        wide = torch.zeros(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _against_torch(ours_fn, torch_fn, x, weight, bias, dtype, layout="contiguous"):
    """ours_fn(x, w, b) on handgrad leaves vs torch_fn on torch leaves: the output, then
    the gradients of x, weight and bias (when given) for the same random upstream."""
    raw = [_laid_out(x.to(dtype), layout)] + [None if t is None else t.to(dtype)
                                              for t in (weight, bias)]
    theirs = [None if t is None else t.detach().clone(memory_format=torch.preserve_format)
              .requires_grad_() for t in raw]
    ours = [None if t is None else hg.Tensor(
        t.detach().clone(memory_format=torch.preserve_format), requires_grad=True)
        for t in raw]
    out, expected = ours_fn(*ours), torch_fn(*theirs)
    assert_close(out, expected, dtype, "output")
    upstream = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64).to(dtype)
    out.backward(upstream)
    expected.backward(upstream)
    for name, a, e in zip(("input", "weight", "bias"), ours, theirs):
        if e is not None:
            assert_close(a.grad, e.grad, dtype, f"gradient of {name}")


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


# ==================================================================== group norm
GROUP_CASES = [((2, 6, 4, 5), 3), ((2, 6, 4, 5), 1), ((2, 6, 4, 5), 6), ((3, 4, 7), 2),
               ((4, 6), 3), ((1, 8, 3, 3), 4)]


@pytest.mark.parametrize("shape, groups", GROUP_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(shape, groups, affine, dtype):
    c = shape[1]
    weight, bias = (_randn(c, seed=1), _randn(c, seed=2)) if affine else (None, None)
    _against_torch(lambda x, w, b: F.group_norm(x, groups, w, b, eps=1e-4),
                   lambda x, w, b: TF.group_norm(x, groups, w, b, eps=1e-4),
                   _randn(*shape), weight, bias, dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_group_norm_strided_and_channels_last_inputs(layout, dtype):
    _against_torch(lambda x, w, b: F.group_norm(x, 2, w, b),
                   lambda x, w, b: TF.group_norm(x, 2, w, b),
                   _randn(2, 4, 5, 3), _randn(4, seed=1), _randn(4, seed=2), dtype, layout)


@given(n=st.integers(1, 3), groups=st.integers(1, 3), per_group=st.integers(1, 3),
       spatial=st.lists(st.integers(1, 4), min_size=0, max_size=2), seed=st.integers(0, 99))
def test_group_norm_random_shapes(n, groups, per_group, spatial, seed):
    shape = (n, groups * per_group, *spatial)
    if n * per_group * max(1, torch.Size(spatial).numel()) == 1:
        return  # one value per group: refused, as in torch (tested below)
    c = shape[1]
    _against_torch(lambda x, w, b: F.group_norm(x, groups, w, b),
                   lambda x, w, b: TF.group_norm(x, groups, w, b),
                   _randn(*shape, seed=seed), _randn(c, seed=seed + 1),
                   _randn(c, seed=seed + 2), torch.float64)


def test_group_norm_module_matches_torch(dtype):
    ours, theirs = nn.GroupNorm(2, 6, eps=1e-3), torch.nn.GroupNorm(2, 6, eps=1e-3)
    with torch.no_grad():
        ours.weight.data.copy_(_randn(6, seed=3))
        ours.bias.data.copy_(_randn(6, seed=4))
    compare_modules(ours, theirs, _randn(3, 6, 4, 4), dtype=dtype)
    assert repr(ours) == repr(theirs)
    compare_modules(nn.GroupNorm(3, 3, affine=False), torch.nn.GroupNorm(3, 3, affine=False),
                    _randn(2, 3, 5), dtype=dtype)
    assert repr(nn.GroupNorm(1, 4, bias=False)) == repr(torch.nn.GroupNorm(1, 4, bias=False))


def test_group_norm_state_dict_moves_both_ways():
    theirs = torch.nn.GroupNorm(2, 4)
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    ours = nn.GroupNorm(2, 4)
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    back = torch.nn.GroupNorm(2, 4)
    back.load_state_dict(to_torch_state(ours))
    for key, value in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[key], value)


def test_group_norm_errors():
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by num_gro"):
        nn.GroupNorm(2, 5)
    with pytest.raises(RuntimeError, match="divisible by num_groups.*shape \\(2, 5, 3\\)"):
        F.group_norm(hg.randn(2, 5, 3), 2)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        F.group_norm(hg.randn(6), 2)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.group_norm(hg.randn(1, 4, 1), 4)
    with pytest.raises(RuntimeError, match="weight.*shape \\(3,\\).*input of shape"):
        F.group_norm(hg.randn(2, 4, 3), 2, hg.ones(3))
    with pytest.raises(RuntimeError):  # the same inputs torch refuses
        TF.group_norm(torch.randn(2, 4, 3), 2, torch.ones(3))


# ================================================================= instance norm
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 2, 7), (1, 4, 2, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_matches_torch_and_updates_running_stats(shape, affine, dtype):
    c = shape[1]
    weight, bias = (_randn(c, seed=1), _randn(c, seed=2)) if affine else (None, None)
    stats = {side: (_randn(c, seed=5).to(dtype), _randn(c, seed=6).abs().to(dtype) + 0.5)
             for side in ("ours", "theirs")}
    _against_torch(
        lambda x, w, b: F.instance_norm(x, hg.Tensor(stats["ours"][0]),
                                        hg.Tensor(stats["ours"][1]), w, b, momentum=0.3),
        lambda x, w, b: TF.instance_norm(x, *stats["theirs"], w, b, momentum=0.3),
        _randn(*shape), weight, bias, dtype)
    for ours, theirs in zip(stats["ours"], stats["theirs"]):
        assert_close(ours, theirs, dtype, "running statistic")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_instance_norm_strided_channels_last_and_running_inputs(layout, dtype):
    x, w, b = _randn(2, 3, 4, 5), _randn(3, seed=1), _randn(3, seed=2)
    _against_torch(lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                   lambda x, w, b: TF.instance_norm(x, weight=w, bias=b),
                   x, w, b, dtype, layout)
    mean, var = _randn(3, seed=3).to(dtype), _randn(3, seed=4).abs().to(dtype) + 0.5
    _against_torch(
        lambda x, w, b: F.instance_norm(x, hg.Tensor(mean), hg.Tensor(var), w, b,
                                        use_input_stats=False),
        lambda x, w, b: TF.instance_norm(x, mean, var, w, b, use_input_stats=False),
        x, w, b, dtype, layout)


INSTANCE_OPTIONS = [{}, {"affine": True}, {"track_running_stats": True},
                    {"affine": True, "track_running_stats": True, "momentum": 0.3},
                    {"track_running_stats": True, "momentum": None}]


@pytest.mark.parametrize("options", INSTANCE_OPTIONS, ids=str)
@pytest.mark.parametrize("cls, shape", [("InstanceNorm2d", (3, 4, 5, 3)),
                                        ("InstanceNorm2d", (4, 5, 3)),
                                        ("InstanceNorm1d", (3, 4, 6)),
                                        ("InstanceNorm1d", (4, 6))])
def test_instance_norm_modules_match_torch(cls, shape, options, dtype):
    ours, theirs = getattr(nn, cls)(4, **options), getattr(torch.nn, cls)(4, **options)
    if ours.affine:
        with torch.no_grad():
            ours.weight.data.copy_(_randn(4, seed=3))
            ours.bias.data.copy_(_randn(4, seed=4))
    x = _randn(*shape)
    compare_modules(ours, theirs, x, dtype=dtype, steps=3)  # training: running stats move
    compare_modules(ours, theirs, x * 2 + 1, dtype=dtype, train=False)  # evaluation
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_instance_norm_state_dict_moves_both_ways():
    theirs = torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    theirs(torch.randn(2, 3, 4, 4))
    ours = nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                       "num_batches_tracked"]
    back = torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    back.load_state_dict(to_torch_state(ours))
    for key, value in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert list(nn.InstanceNorm2d(3).state_dict()) == []


def test_instance_norm_errors_and_warnings():
    with pytest.raises(ValueError, match="expected 3D or 4D input \\(got 2D input"):
        nn.InstanceNorm2d(3)(hg.randn(3, 4))
    with pytest.raises(ValueError, match="expected 2D or 3D input \\(got 4D input"):
        nn.InstanceNorm1d(3)(hg.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="size at dim=1 to match num_features \\(3\\)"):
        nn.InstanceNorm2d(3, affine=True)(hg.randn(2, 4, 3, 3))
    with pytest.warns(UserWarning, match="does not match num_features"):
        nn.InstanceNorm2d(3)(hg.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(hg.randn(2, 3, 1, 1))
    with pytest.raises(RuntimeError, match="running_mean and running_var to be defined"):
        F.instance_norm(hg.randn(2, 3, 4), use_input_stats=False)
    with pytest.raises(RuntimeError, match="running_mean.*shape \\(2,\\)"):
        F.instance_norm(hg.randn(2, 3, 4), hg.zeros(2), hg.ones(2))


# ================================================================== batch norm 2d
BATCH_OPTIONS = [{}, {"momentum": None}, {"momentum": 0.4, "eps": 1e-3},
                 {"track_running_stats": False}, {"affine": False}, {"bias": False}]


@pytest.mark.parametrize("options", BATCH_OPTIONS, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_batch_norm_2d_matches_torch(options, layout, dtype):
    ours, theirs = nn.BatchNorm2d(3, **options), torch.nn.BatchNorm2d(3, **options)
    if ours.affine:
        with torch.no_grad():
            ours.weight.data.copy_(_randn(3, seed=3))
            if ours.bias is not None:
                ours.bias.data.copy_(_randn(3, seed=4))
    x = _laid_out(_randn(4, 3, 5, 4), layout)
    compare_modules(ours, theirs, x, dtype=dtype, steps=3)  # running stats over 3 batches
    compare_modules(ours, theirs, x * 3 - 1, dtype=dtype, train=False)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_batch_norm_2d_cumulative_average_with_momentum_none():
    ours = nn.BatchNorm2d(2, momentum=None, dtype=torch.float64)
    theirs = torch.nn.BatchNorm2d(2, momentum=None, dtype=torch.float64)
    for seed in range(4):
        x = _randn(3, 2, 3, 3, seed=seed) * (seed + 1)
        ours(hg.Tensor(x))
        theirs(x)
    assert int(ours.num_batches_tracked.data) == 4
    assert_close(ours.running_mean, theirs.running_mean.detach(), torch.float64)
    assert_close(ours.running_var, theirs.running_var.detach(), torch.float64)


def test_batch_norm_2d_wrong_rank_is_a_value_error_as_in_torch():
    with pytest.raises(ValueError, match="expected 4D input \\(got 3D input"):
        nn.BatchNorm2d(3)(hg.randn(2, 3, 4))
    with pytest.raises(ValueError):
        torch.nn.BatchNorm2d(3)(torch.randn(2, 3, 4))
    with pytest.raises(RuntimeError, match="expected 3 channels"):
        nn.BatchNorm2d(3)(hg.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="eps must be positive during training"):
        F.batch_norm(hg.randn(2, 3, 2, 2), None, None, training=True, eps=0.0)
    with pytest.raises(ValueError, match="eps must be non-negative"):
        F.batch_norm(hg.randn(2, 3, 2, 2), hg.zeros(3), hg.ones(3), eps=-1.0)


# ========================================================================== CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("which", ["group", "instance", "instance_running", "batch2d"])
def test_cuda_matches_cpu(which):
    x, w, b = _randn(3, 4, 5, 6), _randn(4, seed=1), _randn(4, seed=2)
    upstream = _randn(3, 4, 5, 6, seed=7)
    results = {}
    for device in ("cpu", "cuda"):
        leaves = [hg.Tensor(t.to(device), requires_grad=True) for t in (x, w, b)]
        stats = [hg.Tensor(torch.zeros(4, dtype=torch.float64, device=device)),
                 hg.Tensor(torch.ones(4, dtype=torch.float64, device=device))]
        if which == "group":
            out = F.group_norm(leaves[0], 2, leaves[1], leaves[2])
        elif which == "instance":
            out = F.instance_norm(leaves[0], None, None, leaves[1], leaves[2])
        elif which == "instance_running":
            out = F.instance_norm(leaves[0], *stats, leaves[1], leaves[2])
        else:
            out = F.batch_norm(leaves[0], *stats, leaves[1], leaves[2], training=True)
        out.backward(upstream.to(device))
        results[device] = [out.data, *(leaf.grad.data for leaf in leaves),
                           *(s.data for s in stats)]
    for name, got, want in zip(["output", "dx", "dw", "db", "mean", "var"], results["cuda"],
                               results["cpu"]):
        torch.testing.assert_close(got.cpu(), want, msg=lambda m, n=name: f"{n}: {m}")


def test_batch_norm_refuses_a_statistic_of_the_wrong_size():
    """torch: "running_mean should contain 4 elements not 1"; a (1,) vector must not
    broadcast over 4 channels."""
    x = hg.randn(2, 4, 3, 3)
    with pytest.raises(RuntimeError, match=r"batch_norm: expected running_mean .* \(4\)"):
        F.batch_norm(x, hg.zeros(1), hg.ones(4), training=False)
    with pytest.raises(RuntimeError, match=r"batch_norm: expected weight"):
        F.batch_norm(x, hg.zeros(4), hg.ones(4), weight=hg.ones(3), training=True)
