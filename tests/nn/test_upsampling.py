"""F.interpolate and the upsampling modules against torch: mode 'nearest' (1-d and 2-d;
indices exact, over a sweep of input / output sizes and scale factors, given or
recomputed), 'linear' and 'bilinear' with align_corners True and False (up and down,
size or scale_factor), float32 and float64, input gradients for a random upstream,
random shapes, non-contiguous and channels-last inputs; nn.Upsample,
nn.UpsamplingNearest2d and nn.UpsamplingBilinear2d (outputs, gradients, repr); torch's
errors for the same bad calls; CUDA against CPU.

Left out: finite differences and the fused-vs-composed proof (the interpolate_* entries
in handgrad/testing/registry/vision.py, `handgrad gradcheck --op 'interpolate*'`).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from handgrad.testing import gradcheck
from tests.torch_compare import assert_close, compare_modules


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _against_torch(x, dtype, exact=False, **options):
    """F.interpolate vs TF.interpolate on the same input (same strides): the output
    (bit for bit when `exact`: nearest copies values), then the input gradient."""
    x = x.to(dtype)
    theirs = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
    ours = hg.Tensor(x.detach().clone(memory_format=torch.preserve_format),
                     requires_grad=True)
    out, expected = F.interpolate(ours, **options), TF.interpolate(theirs, **options)
    if exact:
        assert out.shape == expected.shape and torch.equal(out.data, expected), \
            f"{options}: values differ from torch's for input {tuple(x.shape)}"
    assert_close(out, expected, dtype, f"output {options}")
    upstream = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64).to(dtype)
    out.backward(upstream)
    expected.backward(upstream)
    assert_close(ours.grad, theirs.grad, dtype, f"input gradient {options}")


SCALES = [0.3, 1 / 3, 0.5, 0.77, 1.0, 1.3, 1.5, 2.0, 2.1, 2.5, 3.0, 3.7]


# ======================================================================= nearest
@pytest.mark.parametrize("size_in", [1, 2, 3, 5, 7, 10])
def test_nearest_1d_sizes_sweep_exact(size_in):
    x = _randn(2, 3, size_in)
    for size_out in range(1, 23):
        _against_torch(x, torch.float64, exact=True, size=size_out)


def _torch_1d_backward_disagrees(size_in, scale, recompute):
    """torch's 1-d nearest backward takes the out == in / out == 2 in shortcuts that its
    forward does not (handgrad/nn/functional/upsampling.py)."""
    size_out = int(size_in * scale)
    return not recompute and size_out in (size_in, 2 * size_in) and scale not in (1.0, 2.0)


def _check_transposed_gradient(x, **options):
    """The input gradient is the transpose of torch's forward: each output's upstream
    added onto the input it copied (the copied index read off an arange input)."""
    source = TF.interpolate(torch.arange(x.shape[-1], dtype=torch.float64).view(1, 1, -1),
                            **options).view(-1).long()
    leaf = hg.Tensor(x.clone(), requires_grad=True)
    out = F.interpolate(leaf, **options)
    assert torch.equal(out.data, x[..., source])
    upstream = _randn(*out.shape, seed=2)
    out.backward(upstream)
    expected = torch.zeros_like(x).index_add_(-1, source, upstream)
    torch.testing.assert_close(leaf.grad.data, expected)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("recompute", [None, True])
def test_nearest_scale_factor_exact(scale, recompute, dtype):
    """The given scale factor drives the indices (unless recomputed from the sizes)."""
    for size_in in (3, 5, 7, 11):
        if int(size_in * scale) < 1:
            continue
        if _torch_1d_backward_disagrees(size_in, scale, recompute):
            _check_transposed_gradient(_randn(2, 2, size_in), scale_factor=scale)
        else:
            _against_torch(_randn(2, 2, size_in), dtype, exact=True, scale_factor=scale,
                           recompute_scale_factor=recompute)
        _against_torch(_randn(1, 2, size_in, 4), dtype, exact=True,
                       scale_factor=(scale, 1.5), recompute_scale_factor=recompute)


def test_nearest_1d_shortcut_cases_follow_torch_forward_not_its_backward():
    """scale 1.1 on 5 values gives 5 outputs reading [0, 0, 1, 2, 3] in torch's forward,
    while torch's backward sends output i's gradient to input i; handgrad's gradient is
    the transpose of the forward (finite differences agree with it, not with torch)."""
    x = torch.arange(5, dtype=torch.float64).view(1, 1, 5).requires_grad_()
    out = TF.interpolate(x, scale_factor=1.1)
    assert out.flatten().tolist() == [0, 0, 1, 2, 3]
    out.backward(torch.ones_like(out))
    assert x.grad.flatten().tolist() == [1, 1, 1, 1, 1]  # torch's (inconsistent) gradient
    _check_transposed_gradient(x.detach(), scale_factor=1.1)  # ours: [2, 1, 1, 1, 0]
    _check_transposed_gradient(_randn(2, 3, 5), scale_factor=2.1)
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=1.1),
                     hg.Tensor(_randn(1, 2, 5), requires_grad=True))


@pytest.mark.parametrize("size", [(7, 3), (10, 8), (5, 4), (1, 1), 6])
def test_nearest_2d_sizes_exact(size, dtype):
    _against_torch(_randn(2, 3, 5, 4), dtype, exact=True, size=size)


# ========================================================== linear and bilinear
@pytest.mark.parametrize("align_corners", [False, True, None])
@pytest.mark.parametrize("size_in", [1, 2, 4, 7])
def test_linear_sizes_sweep(align_corners, size_in, dtype):
    x = _randn(2, 3, size_in)
    for size_out in range(1, 16):
        _against_torch(x, dtype, size=size_out, mode="linear", align_corners=align_corners)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("recompute", [None, True])
def test_linear_and_bilinear_scale_factor(align_corners, scale, recompute, dtype):
    for size_in in (3, 6):
        if int(size_in * scale) < 1:
            continue
        _against_torch(_randn(2, 2, size_in), dtype, scale_factor=scale, mode="linear",
                       align_corners=align_corners, recompute_scale_factor=recompute)
        _against_torch(_randn(2, 2, size_in, 5), dtype, scale_factor=(scale, 0.8),
                       mode="bilinear", align_corners=align_corners,
                       recompute_scale_factor=recompute)


@pytest.mark.parametrize("size", [(9, 11), (3, 2), (1, 6), (4, 4), 8])
@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_sizes(size, align_corners, dtype):
    _against_torch(_randn(2, 3, 4, 5), dtype, size=size, mode="bilinear",
                   align_corners=align_corners)


# ================================================================ layouts, shapes
@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last"])
@pytest.mark.parametrize("options", [{"scale_factor": 2}, {"size": (7, 3)},
                                     {"size": (7, 9), "mode": "bilinear"},
                                     {"scale_factor": 1.5, "mode": "bilinear",
                                      "align_corners": True}], ids=str)
def test_strided_and_channels_last_inputs(layout, options, dtype):
    base = _randn(2, 3, 5, 4)
    x = {"transposed": base.transpose(-1, -2).contiguous().transpose(-1, -2),
         "sliced": base.repeat_interleave(2, -1)[..., ::2],
         "channels_last": base.contiguous(memory_format=torch.channels_last)}[layout]
    _against_torch(x, dtype, **options)


@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6),
       out_h=st.integers(1, 9), out_w=st.integers(1, 9),
       mode=st.sampled_from(["nearest", "bilinear-false", "bilinear-true"]),
       seed=st.integers(0, 99))
def test_random_shapes(n, c, h, w, out_h, out_w, mode, seed):
    options = {"size": (out_h, out_w)}
    if mode != "nearest":
        options.update(mode="bilinear", align_corners=mode.endswith("true"))
    _against_torch(_randn(n, c, h, w, seed=seed), torch.float64, **options)


# ======================================================================== modules
MODULES = [("Upsample", {"scale_factor": 2}), ("Upsample", {"size": (7, 5)}),
           ("Upsample", {"scale_factor": 1.5, "mode": "bilinear"}),
           ("Upsample", {"size": (6, 9), "mode": "bilinear", "align_corners": True}),
           ("Upsample", {"scale_factor": (2, 3), "mode": "nearest"}),
           ("Upsample", {"scale_factor": 2.5, "mode": "bilinear",
                         "recompute_scale_factor": True}),
           ("UpsamplingNearest2d", {"scale_factor": 3}),
           ("UpsamplingNearest2d", {"size": (4, 6)}),
           ("UpsamplingBilinear2d", {"scale_factor": 2}),
           ("UpsamplingBilinear2d", {"size": (5, 7)})]


@pytest.mark.parametrize("cls, options", MODULES, ids=str)
def test_modules_match_torch(cls, options, dtype):
    ours, theirs = getattr(nn, cls)(**options), getattr(torch.nn, cls)(**options)
    compare_modules(ours, theirs, _randn(2, 3, 4, 3), dtype=dtype)
    assert repr(ours) == repr(theirs)
    assert ours.state_dict() == {} and dict(theirs.state_dict()) == {}


def test_upsample_linear_module_on_sequences(dtype):
    ours = nn.Upsample(scale_factor=2, mode="linear")
    theirs = torch.nn.Upsample(scale_factor=2, mode="linear")
    compare_modules(ours, theirs, _randn(2, 3, 5), dtype=dtype)


# ========================================================================= errors
BAD_CALLS = [
    ("both size and scale", (2, 2, 3, 3), {"size": 4, "scale_factor": 2},
     ValueError, "only one of size or scale_factor"),
    ("neither", (2, 2, 3, 3), {}, ValueError, "either size or scale_factor"),
    ("align_corners with nearest", (2, 2, 3, 3), {"size": 4, "align_corners": True},
     ValueError, "align_corners option can only be set"),
    ("align_corners=False with nearest", (2, 2, 3, 3), {"size": 4, "align_corners": False},
     ValueError, "align_corners option can only be set"),
    ("recompute with size", (2, 2, 3, 3), {"size": 4, "recompute_scale_factor": True},
     ValueError, "recompute_scale_factor is not meaningful"),
    ("size of the wrong length", (2, 2, 3, 3), {"size": (4, 4, 4)}, ValueError,
     "same number of spatial dimensions"),
    ("scale of the wrong length", (2, 2, 3, 3), {"scale_factor": (2,)}, ValueError,
     "same number of spatial dimensions"),
    ("non-integer size", (2, 2, 3, 3), {"size": (4.5, 4)}, TypeError, "expected size"),
    ("2-d input", (2, 3), {"size": 4}, NotImplementedError, "got 2D"),
    ("bilinear on 3-d input", (2, 2, 3), {"size": 4, "mode": "bilinear"},
     NotImplementedError, "Got 3D input, but bilinear mode needs 4D input"),
    ("linear on 4-d input", (2, 2, 3, 3), {"size": 4, "mode": "linear"},
     NotImplementedError, "Got 4D input, but linear mode needs 3D input"),
]


@pytest.mark.parametrize("name, shape, options, error, message", BAD_CALLS,
                         ids=[c[0] for c in BAD_CALLS])
def test_errors_match_torch(name, shape, options, error, message):
    with pytest.raises(error, match=message):
        F.interpolate(hg.randn(*shape), **options)
    with pytest.raises(error):  # torch refuses the same call the same way
        TF.interpolate(torch.randn(shape), **options)


def test_what_handgrad_leaves_out_says_so():
    with pytest.raises(NotImplementedError, match="mode 'bicubic' is not implemented"):
        F.interpolate(hg.randn(1, 1, 3, 3), size=4, mode="bicubic")
    with pytest.raises(NotImplementedError, match="3D and 4D"):
        F.interpolate(hg.randn(1, 1, 2, 2, 2), size=3)
    with pytest.raises(NotImplementedError, match="antialias"):
        F.interpolate(hg.randn(1, 1, 3, 3), size=2, mode="bilinear", antialias=True)
    with pytest.raises(RuntimeError, match="greater than 0"):
        F.interpolate(hg.randn(1, 1, 3, 3), scale_factor=0.2)
    with warnings.catch_warnings(), pytest.raises(RuntimeError):
        warnings.simplefilter("ignore")
        TF.interpolate(torch.randn(1, 1, 3, 3), scale_factor=0.2)


# =========================================================================== CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("options", [{"scale_factor": 2}, {"size": (7, 3)},
                                     {"size": (9, 7), "mode": "bilinear"},
                                     {"scale_factor": 1.5, "mode": "bilinear",
                                      "align_corners": True}], ids=str)
def test_cuda_matches_cpu_and_torch(options):
    x, upstream = _randn(2, 3, 5, 4), None
    results = {}
    for device in ("cpu", "cuda"):
        leaf = hg.Tensor(x.to(device), requires_grad=True)
        out = F.interpolate(leaf, **options)
        if upstream is None:
            upstream = _randn(*out.shape, seed=3)
        out.backward(upstream.to(device))
        results[device] = (out.data.cpu(), leaf.grad.data.cpu())
        _against_torch(x.to(device), torch.float32, **options)
    for got, want in zip(results["cuda"], results["cpu"]):
        torch.testing.assert_close(got, want)


def test_a_fractional_size_is_refused_not_truncated():
    """torch refuses size=3.7 (a TypeError); int(3.7) would silently give 3."""
    with pytest.raises(TypeError, match="interpolate: expected size"):
        F.interpolate(hg.randn(1, 1, 4, 4), size=3.7)
