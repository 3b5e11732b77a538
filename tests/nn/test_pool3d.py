"""3-d pooling against torch: F.max_pool3d (values, indices, input gradients) and
F.avg_pool3d over a grid of kernel, stride, padding, dilation, ceil_mode,
count_include_pad and divisor_override (float32 and float64, a random upstream gradient),
volumes full of ties (the first maximum of a window gets the gradient, as in torch),
each path of max pooling (tiling blocks, the offset scan, the window copy past 255
offsets), NaN and -inf windows, non-contiguous, channels-last-3d and unbatched inputs,
nn.MaxPool3d / nn.AvgPool3d against torch.nn (outputs, gradients, repr) and the errors.

Left out: finite differences and the fused-vs-composed proof (the max_pool3d* and
avg_pool3d* entries in handgrad/testing/registry/pooling.py, run by
tests/tensor/test_ops.py and `handgrad gradcheck --op '*pool3d*'`).
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from tests.nn.test_pooling import _against_torch, _randn, _ties
from tests.torch_compare import compare_modules

pytestmark = pytest.mark.usefixtures("one_thread")


def _grid(kernels, strides, paddings, dilations, ceil_modes):
    """Every combination torch accepts (padding at most half the kernel)."""
    cases = []
    for k, s, p, d, c in itertools.product(kernels, strides, paddings, dilations, ceil_modes):
        kernel = (k,) * 3 if isinstance(k, int) else k
        if all(p <= size // 2 for size in kernel):
            cases.append({"kernel_size": k, "stride": s, "padding": p, "dilation": d,
                          "ceil_mode": c})
    return cases


def _ids(cases):
    return ["-".join(f"{key[0]}{value}" for key, value in case.items()) for case in cases]


# ===================================================================== max pooling
MAX_CASES = _grid([2, 3, (3, 2, 2)], [None, (1, 2, 1), 2], [0, 1], [1, (2, 1, 1)],
                  [False, True])


@pytest.mark.parametrize("options", MAX_CASES, ids=_ids(MAX_CASES))
def test_max_pool3d_matches_torch_with_ties(options, dtype):
    _against_torch(lambda x: F.max_pool3d(x, **options, return_indices=True),
                   lambda x: TF.max_pool3d(x, **options, return_indices=True),
                   _ties(2, 2, 6, 7, 5), dtype)


@pytest.mark.parametrize("shape,options", [
    ((2, 3, 4, 6, 4), {"kernel_size": 2}),
    ((2, 2, 7, 5, 6), {"kernel_size": (3, 2, 3)}),  # rows left over on every axis
    ((3, 4, 5, 6), {"kernel_size": (2, 1, 3)}),  # unbatched
], ids=str)
def test_max_pool3d_tiling_windows_match_torch(shape, options, dtype):
    """Windows that tile the volume take the blocks path: ties, -inf windows, indices or
    none, and backward as torch's."""
    x = _ties(*shape)
    x[..., :2] = float("-inf")
    _against_torch(lambda x: F.max_pool3d(x, **options, return_indices=True),
                   lambda x: TF.max_pool3d(x, **options, return_indices=True), x, dtype)
    _against_torch(lambda x: F.max_pool3d(x, **options), lambda x: TF.max_pool3d(x, **options),
                   x, dtype)


@pytest.mark.parametrize("options", [
    {"kernel_size": (7, 7, 6), "stride": 1},  # 294 offsets: the window-copy path
    {"kernel_size": (7, 7, 7), "stride": 2, "padding": 3, "ceil_mode": True},
], ids=str)
def test_max_pool3d_kernels_past_the_offset_scan(options, dtype):
    _against_torch(lambda x: F.max_pool3d(x, **options, return_indices=True),
                   lambda x: TF.max_pool3d(x, **options, return_indices=True),
                   _ties(1, 2, 8, 9, 8), dtype)


@pytest.mark.parametrize("options", [
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (3, 2, 2), "stride": 1, "padding": 1, "dilation": (2, 1, 1)},
    {"kernel_size": 7, "stride": 1, "padding": 3},  # 343 offsets
], ids=str)
def test_max_pool3d_all_minus_inf_windows_report_an_index_inside(options):
    x = torch.full((1, 2, 7, 8, 7), float("-inf"), dtype=torch.float64)
    x[:, :, 3:, 4:, 2:] = _randn(1, 2, 4, 4, 5)
    _against_torch(lambda x: F.max_pool3d(x, **options, return_indices=True),
                   lambda x: TF.max_pool3d(x, **options, return_indices=True), x,
                   torch.float64)


@pytest.mark.parametrize("options", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2,
                                                         "padding": 1}], ids=str)
def test_max_pool3d_nan_windows_pick_torchs_index(options):
    """A NaN wins its window (the last NaN, torch's CPU rule), the tiling path handing a
    volume with NaN to the offset scan."""
    x = _randn(2, 2, 6, 7, 6)
    x[x > 1.2] = float("nan")
    values, indices = F.max_pool3d(hg.Tensor(x), **options, return_indices=True)
    theirs, their_indices = TF.max_pool3d(x, **options, return_indices=True)
    torch.testing.assert_close(values.data, theirs, equal_nan=True)
    assert torch.equal(indices.data, their_indices)


# ================================================================= average pooling
AVG_CASES = [
    {**{key: value for key, value in case.items() if key != "dilation"},
     "count_include_pad": include}
    for case in _grid([2, 3, (3, 2, 2)], [None, (1, 2, 1), 2], [0, 1], [1], [False, True])
    for include in (True, False)
]


@pytest.mark.parametrize("divisor_override", [None, 5], ids=["window", "override5"])
@pytest.mark.parametrize("options", AVG_CASES, ids=_ids(AVG_CASES))
def test_avg_pool3d_matches_torch(options, divisor_override, dtype):
    _against_torch(lambda x: F.avg_pool3d(x, **options, divisor_override=divisor_override),
                   lambda x: TF.avg_pool3d(x, **options, divisor_override=divisor_override),
                   _randn(2, 2, 6, 7, 5), dtype)


@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last_3d", "unbatched"])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_strided_and_unbatched_inputs(layout, pool, dtype):
    base = _ties(2, 3, 8, 7, 9)
    x = {"transposed": base.transpose(2, 4),
         "sliced": base[:, ::2, 1::2, :, ::2],
         "channels_last_3d": base.contiguous(memory_format=torch.channels_last_3d),
         "unbatched": base[1]}[layout]
    options = {"kernel_size": (3, 2, 2), "stride": (2, 1, 2), "padding": 1}
    ours, theirs = (F.max_pool3d, TF.max_pool3d) if pool == "max" else (F.avg_pool3d,
                                                                        TF.avg_pool3d)
    _against_torch(lambda x: ours(x, **options), lambda x: theirs(x, **options), x, dtype)


def test_pooling3d_is_one_graph_node():
    x = hg.Tensor(_randn(1, 2, 4, 4, 4), requires_grad=True)
    assert type(F.max_pool3d(x, 2)._ctx) is F.MaxPool
    assert type(F.avg_pool3d(x, 2)._ctx) is F.AvgPool


# ======================================================================== modules
MODULES = [  # (class name, args, kwargs, input shape)
    ("MaxPool3d", (2,), {}, (2, 3, 6, 5, 4)),
    ("MaxPool3d", ((3, 2, 2), (2, 1, 2), 1), {"ceil_mode": True, "dilation": (1, 2, 1)},
     (2, 2, 7, 6, 5)),
    ("MaxPool3d", (3,), {"stride": 1, "padding": 1}, (2, 5, 4, 5)),  # unbatched
    ("AvgPool3d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (2, 2, 7, 6, 5)),
    ("AvgPool3d", ((2, 3, 2),), {"padding": (1, 1, 0), "count_include_pad": False},
     (2, 2, 5, 6, 4)),
    ("AvgPool3d", (2,), {"divisor_override": 3}, (3, 6, 6, 4)),  # unbatched
]


@pytest.mark.parametrize("name,args,kwargs,shape", MODULES,
                         ids=[f"{m[0]}{m[1]}{m[2]}" for m in MODULES])
def test_modules_match_torch(name, args, kwargs, shape, dtype):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    compare_modules(ours, theirs, _ties(*shape) if "Max" in name else _randn(*shape),
                    dtype=dtype)


def test_max_pool3d_module_returns_indices():
    x = _ties(2, 3, 6, 6, 5)
    values, indices = nn.MaxPool3d(3, 2, 1, return_indices=True)(hg.Tensor(x))
    expected, expected_indices = torch.nn.MaxPool3d(3, 2, 1, return_indices=True)(x)
    assert torch.equal(values.data, expected) and torch.equal(indices.data, expected_indices)


# ========================================================================= errors
ERRORS = [  # (function name, input shape, kwargs, words of the message)
    ("max_pool3d", (1, 1, 4, 4, 4), {"kernel_size": 2, "padding": 2}, "at most half"),
    ("avg_pool3d", (1, 1, 4, 4, 4), {"kernel_size": 3, "padding": 2}, "at most half"),
    ("max_pool3d", (1, 1, 3, 3, 3), {"kernel_size": (2, 5, 2)}, "too small"),
    ("avg_pool3d", (1, 1, 3, 3, 3), {"kernel_size": 5}, "too small"),
    ("max_pool3d", (1, 1, 3, 3, 3), {"kernel_size": 2, "stride": 0}, "stride"),
    ("max_pool3d", (1, 1, 3, 3, 3), {"kernel_size": (2, 2)}, "tuple of 3"),
    ("max_pool3d", (3, 3, 3), {"kernel_size": 2}, r"4D or 5D.*\(N, C, D, H, W\)"),
    ("avg_pool3d", (1, 1, 2, 3, 3, 3), {"kernel_size": 2}, "4D or 5D"),
    ("avg_pool3d", (1, 1, 4, 4, 4), {"kernel_size": 2, "divisor_override": 0}, "divisor"),
]


@pytest.mark.parametrize("name,shape,kwargs,words", ERRORS,
                         ids=[f"{e[0]}-{e[3]}" for e in ERRORS])
def test_errors_are_torchs_kind_and_say_why(name, shape, kwargs, words):
    x = torch.randn(shape)
    with pytest.raises(RuntimeError):
        getattr(TF, name)(x, **kwargs)
    with pytest.raises(RuntimeError, match=words) as error:
        getattr(F, name)(hg.Tensor(x), **kwargs)
    assert name in str(error.value)


# ========================================================================= CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("pool,options", [
    ("max", {"kernel_size": 2}), ("max", {"kernel_size": 2, "return_indices": True}),
    ("max", {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True}),
    ("avg", {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
], ids=str)
def test_pool3d_on_cuda_matches_torch(pool, options):
    """Each path on the GPU: values, indices and the input gradient equal torch's CUDA
    kernel's."""
    x = (_ties if pool == "max" else _randn)(2, 3, 6, 7, 6).cuda()
    ours_fn, theirs_fn = (F.max_pool3d, TF.max_pool3d) if pool == "max" else (F.avg_pool3d,
                                                                              TF.avg_pool3d)
    ours = hg.Tensor(x.clone(), requires_grad=True)
    theirs = x.clone().requires_grad_()
    out, expected = ours_fn(ours, **options), theirs_fn(theirs, **options)
    if isinstance(expected, tuple):
        (out, indices), (expected, expected_indices) = out, expected
        assert torch.equal(indices.data, expected_indices)
    torch.testing.assert_close(out.data, expected)
    upstream = _randn(*expected.shape, seed=3).cuda()
    out.backward(upstream)
    expected.backward(upstream)
    torch.testing.assert_close(ours.grad.data, theirs.grad)
