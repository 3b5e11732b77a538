"""Pooling against torch: F.max_pool1d/2d (values, indices, input gradients), F.avg_pool1d/2d,
F.adaptive_avg_pool1d/2d and F.adaptive_max_pool2d over a grid of kernel, stride, padding,
dilation, ceil_mode, count_include_pad and divisor_override (float32 and float64, a random
upstream gradient), inputs full of ties (integer-valued floats: the first maximum of a
window gets the gradient, as in torch), max pooling's tiling path (stride = kernel) and
its NaN fall-back, non-contiguous and channels-last inputs, unbatched inputs, the modules
against torch.nn (outputs, gradients, repr), the errors, and (skipped without a GPU) CUDA.

Left out: finite differences and the fused-vs-composed proof (the registry entries in
handgrad/testing/registry/pooling.py, run by tests/tensor/test_ops.py and
`handgrad gradcheck --op '*pool*'`).
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from tests.torch_compare import assert_close, compare_modules


def _against_torch(ours_fn, torch_fn, x, dtype):
    """ours_fn on a handgrad leaf vs torch_fn on a torch leaf (same strides): the output
    (and indices, exactly), then the input gradient for the same random upstream."""
    x = x.to(dtype)
    theirs = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
    ours = hg.Tensor(x.detach().clone(memory_format=torch.preserve_format),
                     requires_grad=True)
    out, expected = ours_fn(ours), torch_fn(theirs)
    if isinstance(expected, tuple):
        (out, indices), (expected, expected_indices) = out, expected
        assert torch.equal(indices.data, expected_indices), "indices differ from torch's"
    assert_close(out, expected, dtype, "output")
    gen = torch.Generator().manual_seed(1)
    upstream = torch.randn(expected.shape, generator=gen, dtype=torch.float64).to(dtype)
    out.backward(upstream)
    expected.backward(upstream)
    assert_close(ours.grad, theirs.grad, dtype, "input gradient")


def _ties(*shape, seed=0):
    """Integer-valued floats in 0..2: most windows hold their maximum more than once."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, shape, generator=gen).to(torch.float64)


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _grid(kernels, strides, paddings, dilations, ceil_modes):
    """Every combination torch accepts (padding at most half the kernel)."""
    cases = []
    for k, s, p, d, c in itertools.product(kernels, strides, paddings, dilations, ceil_modes):
        kernel = (k, k) if isinstance(k, int) else k
        if all(pad <= size // 2 for pad, size in zip((p, p), kernel)):
            cases.append({"kernel_size": k, "stride": s, "padding": p, "dilation": d,
                          "ceil_mode": c})
    return cases


def _ids(cases):
    return ["-".join(f"{key[0]}{value}" for key, value in case.items()) for case in cases]


# ===================================================================== max pooling
MAX_CASES = _grid([1, 2, 3, (3, 2)], [None, 1, 2], [0, 1], [1, 2], [False, True])


@pytest.mark.parametrize("options", MAX_CASES, ids=_ids(MAX_CASES))
def test_max_pool2d_matches_torch_with_ties(options, dtype):
    _against_torch(lambda x: F.max_pool2d(x, **options, return_indices=True),
                   lambda x: TF.max_pool2d(x, **options, return_indices=True),
                   _ties(2, 3, 7, 6), dtype)


@pytest.mark.parametrize("options", MAX_CASES[::2], ids=_ids(MAX_CASES[::2]))
def test_max_pool1d_matches_torch_with_ties(options, dtype):
    options = {**options, "kernel_size": options["kernel_size"]
               if isinstance(options["kernel_size"], int) else 3}
    _against_torch(lambda x: F.max_pool1d(x, **options, return_indices=True),
                   lambda x: TF.max_pool1d(x, **options, return_indices=True),
                   _ties(2, 3, 9), dtype)


def test_max_pool_on_distinct_values_and_without_indices(dtype):
    _against_torch(lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: TF.max_pool2d(x, 3, 2, 1),
                   _randn(2, 3, 8, 7), dtype)
    _against_torch(lambda x: F.max_pool1d(x, 2), lambda x: TF.max_pool1d(x, 2),
                   _randn(2, 3, 8), dtype)



@pytest.mark.parametrize("options", [
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (3, 2), "stride": 1, "padding": 1, "dilation": (2, 1), "ceil_mode": True},
    {"kernel_size": 17, "stride": 1, "padding": 8},  # 289 offsets: the window-copy path
], ids=str)
def test_max_pool_all_minus_inf_windows_report_an_index_inside(options):
    """A window of only -inf keeps torch's index, its first position inside the input
    (not its first offset, which lies in the padding), and backward sends the gradient
    there."""
    x = torch.full((2, 2, 8, 9), float("-inf"), dtype=torch.float64)
    x[:, :, 3:, 4:] = _randn(2, 2, 5, 5)
    _against_torch(lambda x: F.max_pool2d(x, **options, return_indices=True),
                   lambda x: TF.max_pool2d(x, **options, return_indices=True), x,
                   torch.float64)


@pytest.mark.parametrize("options", [
    {"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (3, 2), "stride": 1, "padding": 1, "dilation": 2},
    {"kernel_size": 5, "stride": 2},
], ids=str)
def test_max_pool_nan_windows_pick_torchs_index(options):
    """A NaN wins its window (torch's CPU rule: larger or NaN replaces), however many."""
    x = _randn(2, 3, 9, 11)
    x[x > 1.2] = float("nan")
    x[0, 0, :3] = float("nan")
    values, indices = F.max_pool2d(hg.Tensor(x), **options, return_indices=True)
    theirs, their_indices = TF.max_pool2d(x, **options, return_indices=True)
    torch.testing.assert_close(values.data, theirs, equal_nan=True)
    assert torch.equal(indices.data, their_indices)

@pytest.mark.parametrize("n, shape, options", [
    (2, (2, 3, 8, 6), {"kernel_size": 2}),
    (2, (2, 3, 9, 7), {"kernel_size": (3, 2), "stride": (3, 2)}),  # rows and a column left
    (2, (3, 5, 4), {"kernel_size": (1, 2)}),  # unbatched, 2 offsets
    (2, (2, 2, 6, 5), {"kernel_size": (2, 1), "ceil_mode": True}),  # ceil changes nothing
    (1, (2, 3, 9), {"kernel_size": 3}),
], ids=str)
def test_max_pool_tiling_windows_match_torch(n, shape, options, dtype):
    """Windows that tile the input (stride = kernel, no padding, dilation 1) take the
    blocks path: ties, -inf windows, indices or none, and backward as torch's."""
    x = _ties(*shape)
    x[..., :2] = float("-inf")
    pool, theirs = (F.max_pool2d, TF.max_pool2d) if n == 2 else (F.max_pool1d, TF.max_pool1d)
    _against_torch(lambda x: pool(x, **options, return_indices=True),
                   lambda x: theirs(x, **options, return_indices=True), x, dtype)
    _against_torch(lambda x: pool(x, **options), lambda x: theirs(x, **options), x, dtype)


def test_max_pool_tiling_windows_with_a_nan_keep_torchs_gradient():
    """One NaN sends the tiling path back to the offset scan (the last NaN of a window
    wins in torch): values, indices and the input gradient still match."""
    x = _ties(2, 3, 8, 8)
    x[1, 2, 3, 4] = x[1, 2, 2, 5] = float("nan")
    ours = hg.Tensor(x.clone(), requires_grad=True)
    theirs = x.clone().requires_grad_()
    (values, indices), (expected, expected_indices) = (
        F.max_pool2d(ours, 2, return_indices=True),
        TF.max_pool2d(theirs, 2, return_indices=True))
    torch.testing.assert_close(values.data, expected, equal_nan=True)
    assert torch.equal(indices.data, expected_indices)
    upstream = _randn(*expected.shape, seed=2)
    values.backward(upstream)
    expected.backward(upstream)
    torch.testing.assert_close(ours.grad.data, theirs.grad, equal_nan=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("options", [{"kernel_size": 2}, {"kernel_size": 2,
                                                         "return_indices": True},
                                     {"kernel_size": 3, "stride": 2, "padding": 1}], ids=str)
def test_max_pool_on_cuda_matches_torch(options):
    """The tiling path (with and without indices) and the offset scan on the GPU: values,
    indices and the input gradient equal torch's CUDA kernel's."""
    x = _ties(2, 3, 9, 8).cuda()
    ours = hg.Tensor(x.clone(), requires_grad=True)
    theirs = x.clone().requires_grad_()
    out, expected = F.max_pool2d(ours, **options), TF.max_pool2d(theirs, **options)
    if isinstance(expected, tuple):
        (out, indices), (expected, expected_indices) = out, expected
        assert torch.equal(indices.data, expected_indices)
    torch.testing.assert_close(out.data, expected)
    upstream = _randn(*expected.shape, seed=3).cuda()
    out.backward(upstream)
    expected.backward(upstream)
    torch.testing.assert_close(ours.grad.data, theirs.grad)


# ================================================================= average pooling
AVG_CASES = [  # average pooling has no dilation
    {**{key: value for key, value in case.items() if key != "dilation"},
     "count_include_pad": include}
    for case in _grid([1, 2, 3, (3, 2)], [None, 1, 2], [0, 1], [1], [False, True])
    for include in (True, False)
]


@pytest.mark.parametrize("divisor_override", [None, 5], ids=["window", "override5"])
@pytest.mark.parametrize("options", AVG_CASES, ids=_ids(AVG_CASES))
def test_avg_pool2d_matches_torch(options, divisor_override, dtype):
    _against_torch(lambda x: F.avg_pool2d(x, **options, divisor_override=divisor_override),
                   lambda x: TF.avg_pool2d(x, **options, divisor_override=divisor_override),
                   _randn(2, 3, 7, 6), dtype)


@pytest.mark.parametrize("options", AVG_CASES, ids=_ids(AVG_CASES))
def test_avg_pool1d_matches_torch(options, dtype):
    options = {**options, "kernel_size": options["kernel_size"]
               if isinstance(options["kernel_size"], int) else 4}
    if options["padding"] > options["kernel_size"] // 2:
        options["padding"] = 0
    _against_torch(lambda x: F.avg_pool1d(x, **options),
                   lambda x: TF.avg_pool1d(x, **options), _randn(2, 3, 10), dtype)


# ======================================================== adaptive average pooling
@pytest.mark.parametrize("output_size", [1, 2, 3, 5, 7, 9, (3, None), (None, 2), (4, 6)],
                         ids=str)
def test_adaptive_avg_pool2d_matches_torch(output_size, dtype):
    _against_torch(lambda x: F.adaptive_avg_pool2d(x, output_size),
                   lambda x: TF.adaptive_avg_pool2d(x, output_size), _randn(2, 3, 7, 5),
                   dtype)


@pytest.mark.parametrize("output_size", [1, 3, 4, 10, 13], ids=str)
def test_adaptive_avg_pool1d_matches_torch(output_size, dtype):
    _against_torch(lambda x: F.adaptive_avg_pool1d(x, output_size),
                   lambda x: TF.adaptive_avg_pool1d(x, output_size), _randn(2, 3, 10),
                   dtype)


@pytest.mark.parametrize("output_size", [1, 2, 3, 5, 7, 9, (3, None), (None, 2), (4, 6)],
                         ids=str)
def test_adaptive_max_pool2d_matches_torch_with_ties(output_size, dtype):
    _against_torch(lambda x: F.adaptive_max_pool2d(x, output_size, return_indices=True),
                   lambda x: TF.adaptive_max_pool2d(x, output_size, return_indices=True),
                   _ties(2, 3, 7, 5), dtype)


def test_adaptive_pools_to_an_empty_output_as_torch():
    """torch allows an output size of 0 (its own backward then refuses the empty grad)."""
    x = _randn(2, 3, 4, 4)
    for ours, theirs in [(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d),
                         (F.adaptive_max_pool2d, TF.adaptive_max_pool2d)]:
        assert ours(hg.Tensor(x), (2, 0)).shape == theirs(x, (2, 0)).shape == (2, 3, 2, 0)


# ============================================== layouts, unbatched inputs, one node
POOLS_2D = {
    "max": (lambda f: lambda x: f.max_pool2d(x, 3, 2, 1, ceil_mode=True,
                                            return_indices=True)),
    "avg": (lambda f: lambda x: f.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                            count_include_pad=False)),
    "adaptive": (lambda f: lambda x: f.adaptive_avg_pool2d(x, (3, 4))),
    "adaptive_max": (lambda f: lambda x: f.adaptive_max_pool2d(x, (3, 4), True)),
}
POOLS_1D = {
    "max": (lambda f: lambda x: f.max_pool1d(x, 3, 2, 1, ceil_mode=True,
                                            return_indices=True)),
    "avg": (lambda f: lambda x: f.avg_pool1d(x, 3, 2, 1, ceil_mode=True)),
    "adaptive": (lambda f: lambda x: f.adaptive_avg_pool1d(x, 4)),
    "adaptive_max": (lambda f: lambda x: f.max_pool1d(x, 2)),  # (no adaptive_max_pool1d)
}


@pytest.mark.parametrize("pool", POOLS_2D)
@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last", "unbatched"])
def test_strided_and_unbatched_inputs(layout, pool, dtype):
    """Inputs that are not contiguous (a transposed view, a strided slice, channels-last)
    and unbatched (C, H, W) inputs give torch's values, indices and gradients."""
    base = _ties(2, 4, 8, 9)
    x = {"transposed": base.transpose(2, 3),
         "sliced": base[:, ::2, 1::2, :],
         "channels_last": base.contiguous(memory_format=torch.channels_last),
         "unbatched": base[0]}[layout]
    assert layout == "unbatched" or not x.is_contiguous()
    _against_torch(POOLS_2D[pool](F), POOLS_2D[pool](TF), x, dtype)
    line = base[:, 0].transpose(0, 1) if layout != "unbatched" else base[0, 0]  # 1-d
    _against_torch(POOLS_1D[pool](F), POOLS_1D[pool](TF), line, dtype)


def test_pooling_is_one_graph_node():
    x = hg.Tensor(_randn(1, 2, 6, 6), requires_grad=True)
    assert type(F.max_pool2d(x, 2)._ctx) is F.MaxPool
    assert type(F.avg_pool2d(x, 2)._ctx) is F.AvgPool
    assert type(F.adaptive_avg_pool2d(x, 3)._ctx) is F.AdaptiveAvgPool
    assert type(F.adaptive_max_pool2d(x, 3)._ctx) is F.AdaptiveMaxPool
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    assert indices.dtype == torch.int64 and not indices.requires_grad


# ======================================================================== modules
MODULES = [  # (class name, args, kwargs, input shape)
    ("MaxPool1d", (3,), {}, (2, 3, 9)),
    ("MaxPool1d", (2, 1, 1), {"dilation": 2, "ceil_mode": True}, (3, 8)),
    ("MaxPool2d", (2,), {}, (2, 3, 6, 5)),
    ("MaxPool2d", ((3, 2), (2, 1), 1), {"ceil_mode": True}, (2, 2, 7, 6)),
    ("AvgPool1d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}, (2, 3, 9)),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (2, 2, 7, 6)),
    ("AvgPool2d", (2,), {"divisor_override": 3}, (3, 6, 6)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 10)),
    ("AdaptiveAvgPool2d", ((2, None),), {}, (2, 3, 7, 5)),
    ("AdaptiveAvgPool2d", (1,), {}, (2, 3, 7, 5)),
    ("AdaptiveMaxPool2d", ((3, None),), {}, (2, 3, 7, 5)),
    ("AdaptiveMaxPool2d", (2,), {}, (3, 5, 5)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", MODULES,
                         ids=[f"{m[0]}{m[1]}{m[2]}" for m in MODULES])
def test_modules_match_torch(name, args, kwargs, shape, dtype):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    compare_modules(ours, theirs, _ties(*shape) if "Max" in name else _randn(*shape),
                    dtype=dtype)


def test_max_pool_module_returns_indices():
    x = _ties(2, 3, 6, 6)
    values, indices = nn.MaxPool2d(3, 2, 1, return_indices=True)(hg.Tensor(x))
    expected, expected_indices = torch.nn.MaxPool2d(3, 2, 1, return_indices=True)(x)
    assert torch.equal(values.data, expected) and torch.equal(indices.data, expected_indices)


# ========================================================================= errors
ERRORS = [  # (function name, input shape, kwargs, words of the message)
    ("max_pool2d", (1, 1, 4, 4), {"kernel_size": 2, "padding": 2}, "at most half"),
    ("max_pool1d", (1, 1, 4), {"kernel_size": 2, "padding": 2}, "at most half"),
    ("avg_pool2d", (1, 1, 4, 4), {"kernel_size": 3, "padding": 2}, "at most half"),
    ("max_pool2d", (1, 1, 3, 3), {"kernel_size": 5}, "too small"),
    ("avg_pool1d", (1, 1, 3), {"kernel_size": 5}, "too small"),
    ("max_pool2d", (1, 1, 3, 3), {"kernel_size": 2, "stride": 0}, "stride"),
    ("max_pool2d", (3, 3), {"kernel_size": 2}, "3D or 4D"),
    ("max_pool1d", (2, 2, 2, 3), {"kernel_size": 2}, "2D or 3D"),
    ("avg_pool2d", (1, 1, 4, 4), {"kernel_size": 2, "divisor_override": 0}, "divisor"),
    ("adaptive_max_pool2d", (1, 1, 4, 4), {"output_size": (2, -1)}, "greater than"),
    ("adaptive_avg_pool2d", (1, 1, 4, 4), {"output_size": (2, 2, 2)}, "output_size"),
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
