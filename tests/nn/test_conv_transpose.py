"""Transposed convolution against torch: F.conv_transpose1d / F.conv_transpose2d over a
grid of stride, padding, output_padding, dilation and groups (float32 and float64;
values and the gradients of input, weight and bias for a random upstream gradient;
unbatched, non-contiguous and channels-last inputs), random shapes, the adjoint identity
with conv, nn.ConvTranspose1d / nn.ConvTranspose2d against their torch.nn twins
(weights copied, `output_size=`), state_dicts both ways, torch's init and repr, the
errors, and CUDA against CPU.

Left out: finite differences and the fused-vs-composed proof (the registry entries in
handgrad/testing/registry/conv_transpose.py, run by tests/tensor/test_ops.py and
`handgrad gradcheck --op 'conv_transpose*'`).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from tests.nn.test_conv import _against_torch, _randn, _same_error
from tests.torch_compare import assert_close, compare_modules

# ====================================================== F.conv_transpose2d / 1d
CASES_2D = [  # (x shape, weight shape (C_in, C_out / groups, *k), options)
    ((2, 3, 4, 5), (3, 4, 3, 3), {}),
    ((2, 3, 4, 5), (3, 2, 3, 2), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((2, 4, 3, 4), (4, 3, 2, 3), {"stride": (2, 3), "padding": (1, 0),
                                  "output_padding": (0, 2), "dilation": (1, 2), "groups": 2}),
    ((2, 4, 3, 3), (4, 2, 2, 2), {"output_padding": 1, "dilation": 2, "groups": 2}),
    ((2, 4, 5, 4), (4, 1, 3, 3), {"groups": 4, "stride": 2, "padding": 1}),  # depthwise
    ((1, 2, 2, 2), (2, 3, 4, 4), {"stride": 2, "padding": 1}),  # the usual 2x upsampler
    ((3, 4, 5), (3, 2, 3, 2), {"stride": (1, 2), "padding": (2, 0)}),  # unbatched
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("x_shape,w_shape,options", CASES_2D,
                         ids=[str(o) or "default" for *_, o in CASES_2D])
def test_conv_transpose2d_matches_torch(x_shape, w_shape, options, bias, dtype):
    x, w = _randn(*x_shape), _randn(*w_shape, seed=1)
    b = _randn(w_shape[1] * options.get("groups", 1), seed=2) if bias else None
    _against_torch(lambda x, w, b: F.conv_transpose2d(x, w, b, **options),
                   lambda x, w, b: TF.conv_transpose2d(x, w, b, **options), x, w, b,
                   dtype=dtype)


@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last"])
def test_conv_transpose2d_strided_inputs(layout, dtype):
    """Inputs that are not contiguous (a transposed view, a strided slice, channels-last)
    give torch's values and gradients."""
    base = _randn(2, 4, 6, 7)
    x = {"transposed": base.transpose(2, 3),
         "sliced": base[:, ::2, 1::2, :],
         "channels_last": base.contiguous(memory_format=torch.channels_last)}[layout]
    w = _randn(x.shape[1], 3, 3, 2, seed=1).contiguous(memory_format=torch.channels_last)
    assert not x.is_contiguous() and not w.is_contiguous()
    options = {"stride": (2, 1), "padding": 1, "output_padding": (1, 0)}
    _against_torch(lambda x, w, b: F.conv_transpose2d(x, w, b, **options),
                   lambda x, w, b: TF.conv_transpose2d(x, w, b, **options),
                   x, w, _randn(3, seed=2), dtype=dtype)


CASES_1D = [
    ((2, 3, 5), (3, 4, 3), {}),
    ((2, 4, 5), (4, 1, 3), {"stride": 3, "padding": 2, "output_padding": 1, "dilation": 2,
                            "groups": 2}),
    ((2, 2, 6), (2, 3, 4), {"stride": 2, "padding": 1}),
    ((3, 5), (3, 2, 2), {"stride": 2, "output_padding": 1}),  # unbatched
]


@pytest.mark.parametrize("x_shape,w_shape,options", CASES_1D,
                         ids=[str(o) or "default" for *_, o in CASES_1D])
def test_conv_transpose1d_matches_torch(x_shape, w_shape, options, dtype):
    x, w = _randn(*x_shape), _randn(*w_shape, seed=1)
    b = _randn(w_shape[1] * options.get("groups", 1), seed=2)
    _against_torch(lambda x, w, b: F.conv_transpose1d(x, w, b, **options),
                   lambda x, w, b: TF.conv_transpose1d(x, w, b, **options), x, w, b,
                   dtype=dtype)
    _against_torch(lambda x, w: F.conv_transpose1d(x.transpose(-1, -2).transpose(-1, -2), w,
                                                   **options),
                   lambda x, w: TF.conv_transpose1d(x, w, **options), x, w, dtype=dtype)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_conv_transpose2d_random_shapes(data):
    """Random geometry: batch, channels, groups, kernel, stride, padding, output_padding
    and dilation drawn within what torch accepts."""
    draw = data.draw
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    # at most half the kernel's reach, so that even a 1-pixel input has an output
    padding = tuple(draw(st.integers(0, d * (k - 1) // 2)) for d, k in zip(dilation, kernel))
    size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    options = {"stride": stride, "padding": padding, "output_padding": output_padding,
               "dilation": dilation, "groups": groups}
    x = _randn(draw(st.integers(1, 2)), c_in, *size)
    w = _randn(c_in, c_out // groups, *kernel, seed=1)
    _against_torch(lambda x, w, b: F.conv_transpose2d(x, w, b, **options),
                   lambda x, w, b: TF.conv_transpose2d(x, w, b, **options),
                   x, w, _randn(c_out, seed=2), dtype=torch.float64)


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(y, W), x> = <y, conv_transpose(x, W)>: the identity the forward is built on."""
    options = {"stride": 2, "padding": 1, "dilation": (1, 2), "groups": 2}
    w = _randn(4, 3, 3, 2, seed=1)  # conv: 6 -> 4 channels; transposed: 4 -> 6
    x = _randn(2, 4, 4, 3, seed=2)
    y_shape = F.conv_transpose2d(hg.Tensor(x), hg.Tensor(w), **options).shape
    y = _randn(*y_shape, seed=3)
    left = (F.conv2d(hg.Tensor(y), hg.Tensor(w), **options).data * x).sum()
    right = (y * F.conv_transpose2d(hg.Tensor(x), hg.Tensor(w), **options).data).sum()
    torch.testing.assert_close(left, right)


def test_conv_transpose2d_is_one_graph_node_and_computes_only_needed_gradients():
    x = hg.Tensor(_randn(1, 2, 3, 3))
    w = hg.Tensor(_randn(2, 3, 3, 3), requires_grad=True)
    out = F.conv_transpose2d(x, w, stride=2)
    assert type(out._ctx) is F.ConvTransposeNd
    assert out._ctx.needs_input_grad[:3] == (False, True, False)
    out.sum().backward()
    assert x.grad is None and w.grad is not None


# ==================================================================== the modules
MODULES = [  # (class name, args, options, input shape)
    ("ConvTranspose2d", (3, 4, 3), {}, (2, 3, 4, 5)),
    ("ConvTranspose2d", (4, 6, (3, 2)), {"stride": 2, "padding": 1, "output_padding": 1,
                                         "groups": 2}, (2, 4, 3, 4)),
    ("ConvTranspose2d", (4, 4, 3), {"groups": 4, "bias": False, "dilation": 2}, (2, 4, 3, 3)),
    ("ConvTranspose2d", (2, 3, 4), {"stride": 2, "padding": 1}, (2, 3, 3)),  # unbatched
    ("ConvTranspose1d", (3, 4, 3), {}, (2, 3, 6)),
    ("ConvTranspose1d", (4, 8, 2), {"stride": 3, "groups": 4, "dilation": 2,
                                    "output_padding": 1}, (2, 4, 5)),
]


@pytest.mark.parametrize("name,args,options,shape", MODULES,
                         ids=[f"{n}{o}" for n, _, o, _ in MODULES])
def test_module_matches_torch(name, args, options, shape, dtype):
    ours = getattr(nn, name)(*args, **options)
    theirs = getattr(torch.nn, name)(*args, **options)
    assert repr(ours) == repr(theirs)
    assert ours.weight.shape == theirs.weight.shape
    compare_modules(ours, theirs, _randn(*shape), dtype=dtype, steps=2)


@pytest.mark.parametrize("output_size", [(9, 11), (10, 12), (2, 6, 10, 11)])
def test_module_output_size_picks_output_padding(output_size):
    theirs = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1).double()
    ours = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, dtype=torch.float64)
    ours.load_state_dict(theirs.state_dict())
    x = _randn(2, 4, 5, 6)
    out = ours(hg.Tensor(x), output_size=output_size)
    assert_close(out, theirs(x, output_size=output_size), torch.float64)
    assert tuple(out.shape[-2:]) == tuple(output_size[-2:])


def test_state_dict_moves_both_ways():
    theirs = torch.nn.ConvTranspose2d(3, 4, 3, stride=2, groups=1).double()
    ours = nn.ConvTranspose2d(3, 4, 3, stride=2, dtype=torch.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    ours.load_state_dict(theirs.state_dict())
    x = _randn(2, 3, 4, 4)
    assert_close(ours(hg.Tensor(x)), theirs(x), torch.float64)
    back = torch.nn.ConvTranspose2d(3, 4, 3, stride=2).double()
    back.load_state_dict({k: v.data for k, v in ours.state_dict().items()})
    assert_close(ours(hg.Tensor(x)), back(x), torch.float64)


@pytest.mark.parametrize("name,args,options", [("ConvTranspose2d", (4, 6, (3, 2)),
                                                {"groups": 2}),
                                               ("ConvTranspose1d", (3, 5, 4), {})])
def test_init_is_torchs(name, args, options):
    """The same seed gives torch's weights: fan_in = weight.shape[1] * prod(kernel), i.e.
    out_channels / groups * prod(kernel) for the transposed layout."""
    torch.manual_seed(0)
    ours = getattr(nn, name)(*args, **options)
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **options)
    fan_in = ours.weight.shape[1] * math.prod(ours.weight.shape[2:])
    assert ours.bias.data.abs().max() <= 1 / math.sqrt(fan_in)
    for key in ("weight", "bias"):
        assert_close(ours.state_dict()[key], theirs.state_dict()[key], what=key)


# ======================================================================= errors
def test_functional_errors_are_torchs():
    x, w = _randn(2, 4, 5, 5), _randn(4, 3, 3, 3)
    hx, hw = hg.Tensor(x), hg.Tensor(w)
    _same_error(lambda: F.conv_transpose2d(hx, hw, output_padding=1),
                lambda: TF.conv_transpose2d(x, w, output_padding=1),
                "output padding must be smaller than either stride or dilation")
    _same_error(lambda: F.conv_transpose2d(hg.Tensor(_randn(2, 5, 5, 5)), hw),
                lambda: TF.conv_transpose2d(_randn(2, 5, 5, 5), w),
                r"weight of size \[4, 3, 3, 3\], expected input\[2, 5, 5, 5\] to have 4")
    _same_error(lambda: F.conv_transpose2d(hx, hw, groups=3),
                lambda: TF.conv_transpose2d(x, w, groups=3), "divisible by 3 at dimension 0")
    _same_error(lambda: F.conv_transpose2d(hx, hw, hg.Tensor(_randn(4))),
                lambda: TF.conv_transpose2d(x, w, _randn(4)), "bias .* 3 elements")
    _same_error(lambda: F.conv_transpose2d(hx, hw, padding=-1),
                lambda: TF.conv_transpose2d(x, w, padding=-1), "negative padding")
    _same_error(lambda: F.conv_transpose2d(hx, hw, padding="same"),
                lambda: TF.conv_transpose2d(x, w, padding="same"), "padding")
    _same_error(lambda: F.conv_transpose2d(hx, hw, stride=0),
                lambda: TF.conv_transpose2d(x, w, stride=0), "non-positive stride")
    _same_error(lambda: F.conv_transpose2d(hg.Tensor(_randn(5, 5)), hw),
                lambda: TF.conv_transpose2d(_randn(5, 5), w), r"3D \(unbatched\) or 4D")
    _same_error(lambda: F.conv_transpose1d(hg.Tensor(_randn(2, 4, 5)),
                                           hg.Tensor(_randn(4, 2, 3)), stride=(2, 1)),
                lambda: TF.conv_transpose1d(_randn(2, 4, 5), _randn(4, 2, 3), stride=(2, 1)),
                "stride")
    with pytest.raises(RuntimeError, match=r"conv_transpose2d.*Output size is too small"):
        F.conv_transpose2d(hx, hw, padding=5)


def test_module_errors_are_torchs():
    _same_error(lambda: nn.ConvTranspose2d(4, 3, 3, padding_mode="reflect"),
                lambda: torch.nn.ConvTranspose2d(4, 3, 3, padding_mode="reflect"),
                'Only "zeros" padding mode is supported for ConvTranspose2d')
    _same_error(lambda: nn.ConvTranspose2d(3, 4, 3, groups=2),
                lambda: torch.nn.ConvTranspose2d(3, 4, 3, groups=2),
                "in_channels must be divisible by groups")
    layer, reference = nn.ConvTranspose2d(4, 6, 3, stride=2), torch.nn.ConvTranspose2d(4, 6, 3,
                                                                                     stride=2)
    x = _randn(2, 4, 5, 5).float()
    _same_error(lambda: layer(hg.Tensor(x), output_size=(14, 12)),
                lambda: reference(x, output_size=(14, 12)),
                r"valid sizes range from \[11, 11\] to \[12, 12\]")
    _same_error(lambda: layer(hg.Tensor(x), output_size=(1, 2, 6, 12, 11)),
                lambda: reference(x, output_size=(1, 2, 6, 12, 11)), "2 or 4 elements")


# ========================================================================= CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    """The same Function on the GPU: values and every gradient equal the CPU's."""
    x, w, b = _randn(2, 4, 5, 6), _randn(4, 3, 3, 2, seed=1), _randn(6, seed=2)
    options = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": 1}
    results = []
    for device in ("cpu", "cuda"):
        leaves = [hg.Tensor(t.to(device), requires_grad=True) for t in (x, w, b)]
        out = F.conv_transpose2d(*leaves, **options)
        out.backward(hg.Tensor(_randn(*out.shape, seed=3).to(device)))
        results.append([out.data.cpu()] + [t.grad.data.cpu() for t in leaves])
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda, cpu)
    layer = nn.ConvTranspose1d(3, 2, 3, stride=2).to("cuda")
    assert layer(hg.Tensor(_randn(2, 3, 5).float().to("cuda"))).device.type == "cuda"
