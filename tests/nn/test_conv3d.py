"""3-d convolution against torch: F.conv3d and F.conv_transpose3d over a grid of stride,
padding (ints, tuples, 'same' with an even kernel, 'valid'), dilation and groups, each
layout of conv_strategy reached by a volume (float32 and float64; values and the
gradients of input, weight and bias for a random upstream gradient; unbatched,
non-contiguous and channels-last-3d inputs), nn.Conv3d / nn.ConvTranspose3d against
their torch.nn twins (weights copied, every padding mode, `output_size=`), state_dicts
both ways, torch's init and repr, and the errors.

Left out: finite differences and the fused-vs-composed proof (the conv3d* and
conv_transpose3d* entries in handgrad/testing/registry/conv.py and conv_transpose.py,
run by tests/tensor/test_ops.py and `handgrad gradcheck --op 'conv*3d*'`).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from handgrad.nn.functional.conv import conv_strategy
from tests.nn.test_conv import _against_torch, _randn, _same_error
from tests.torch_compare import assert_close, compare_modules

pytestmark = pytest.mark.usefixtures("one_thread")

# ===================================================================== F.conv3d
CONV3D_CASES = [  # (x shape, weight shape, options, the layout conv_strategy picks)
    ((2, 3, 4, 5, 4), (4, 3, 3, 2, 3), {}, "grouped"),
    ((2, 3, 5, 6, 5), (4, 3, 3, 3, 2), {"stride": 2, "padding": 1}, "grouped"),
    ((2, 2, 6, 5, 7), (3, 2, 2, 3, 2),
     {"stride": (1, 2, 3), "padding": (2, 0, 1), "dilation": (2, 1, 2)}, "grouped"),
    ((2, 4, 4, 4, 4), (6, 2, 3, 3, 3), {"groups": 2, "padding": 1, "dilation": (1, 2, 1)},
     "grouped"),
    ((2, 3, 4, 5, 4), (6, 1, 3, 2, 2), {"groups": 3, "padding": "same"}, "grouped"),
    ((1, 2, 4, 4, 5), (2, 2, 4, 4, 5), {"padding": "valid"}, "grouped"),  # kernel = input
    ((3, 4, 5, 4), (2, 3, 3, 1, 2), {"padding": (1, 0, 0)}, "grouped"),  # unbatched
    # 256+ outputs per volume: "columns"; with stride 1, 16+ channels and a padded grid
    # under 1.5 times the outputs: "shift" (a 3x3x3 kernel padded by 1 needs 14^3)
    ((2, 3, 8, 8, 6), (4, 3, 3, 3, 3), {"padding": 1}, "columns"),
    ((1, 4, 8, 9, 8), (3, 4, 3, 2, 3), {"padding": "same", "dilation": (2, 1, 1)},
     "columns"),
    ((2, 16, 6, 6, 8), (3, 16, 1, 1, 1), {}, "columns"),  # 1x1x1: the columns are x
    ((2, 16, 8, 8, 8), (3, 16, 3, 3, 3), {"padding": 1}, "columns"),  # grid 1.95x: waste
    ((2, 16, 14, 14, 14), (3, 16, 3, 3, 3), {"padding": 1}, "shift"),
    ((1, 16, 8, 8, 8), (2, 16, 2, 1, 2), {"padding": (0, 0, 1), "dilation": (2, 1, 1)},
     "shift"),
    ((16, 6, 8, 8), (2, 16, 2, 2, 1), {}, "shift"),  # unbatched
    # 8+ volumes of under 256 outputs, 2+ channels per group: "batch_inner"
    ((8, 3, 4, 4, 3), (4, 3, 3, 2, 2), {"padding": "same", "dilation": (1, 2, 1)},
     "batch_inner"),
    ((8, 4, 5, 4, 4), (6, 2, 3, 3, 2), {"stride": (2, 1, 2), "padding": 1, "groups": 2},
     "batch_inner"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("x_shape,w_shape,options,layout", CONV3D_CASES,
                         ids=[f"{layout}{o}" for *_, o, layout in CONV3D_CASES])
def test_conv3d_matches_torch(x_shape, w_shape, options, layout, bias, dtype):
    x, w = _randn(*x_shape), _randn(*w_shape, seed=1)
    b = _randn(w_shape[0], seed=2) if bias else None
    picked = []

    def ours(x, w, b):
        out = F.conv3d(x, w, b, **options)
        picked.append(out._ctx.strategy)
        return out

    _against_torch(ours, lambda x, w, b: TF.conv3d(x, w, b, **options), x, w, b, dtype=dtype)
    assert picked == [layout]


@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last_3d"])
@pytest.mark.parametrize("x_shape", [(2, 4, 6, 8, 7), (8, 4, 4, 6, 5)],
                         ids=["grouped", "batch_inner"])
def test_conv3d_strided_inputs(x_shape, layout, dtype):
    """Inputs that are not contiguous (a transposed view, a strided slice, channels-last
    3d) give torch's values and gradients."""
    base = _randn(*x_shape)
    x = {"transposed": base.transpose(2, 4),
         "sliced": base[:, ::2, 1::2, :, ::2],
         "channels_last_3d": base.contiguous(memory_format=torch.channels_last_3d)}[layout]
    w = _randn(6, x.shape[1], 3, 2, 2, seed=1).transpose(2, 4).contiguous().transpose(2, 4)
    assert not x.is_contiguous() and not w.is_contiguous()
    _against_torch(lambda x, w, b: F.conv3d(x, w, b, padding=1, stride=(1, 2, 1)),
                   lambda x, w, b: TF.conv3d(x, w, b, padding=1, stride=(1, 2, 1)),
                   x, w, _randn(6, seed=2), dtype=dtype)


@pytest.mark.parametrize("x_shape,layout", [((2, 3, 8, 8, 6), "columns"),
                                            ((1, 16, 14, 14, 14), "shift"),
                                            ((8, 3, 4, 4, 4), "batch_inner")],
                         ids=["columns", "shift", "batch_inner"])
@pytest.mark.parametrize("wanted", ["x", "w", "b"])
def test_layouts_with_some_gradients(x_shape, layout, wanted):
    """Each ungrouped layout with only one of the gradients wanted: the wanted gradient
    is torch's, the others are not computed."""
    x = _randn(*x_shape).contiguous(memory_format=torch.channels_last_3d)
    w, b = _randn(4, x_shape[1], 3, 3, 3, seed=1), _randn(4, seed=2)
    ours = [hg.Tensor(t.clone(), requires_grad=name == wanted)
            for name, t in zip("xwb", (x, w, b))]
    theirs = [t.clone().requires_grad_(name == wanted) for name, t in zip("xwb", (x, w, b))]
    out, expected = F.conv3d(*ours, padding=1), TF.conv3d(*theirs, padding=1)
    assert out._ctx.strategy == layout
    assert_close(out.data, expected, what="output")
    g = _randn(*expected.shape, seed=3)
    out.backward(hg.Tensor(g))
    expected.backward(g)
    for name, mine, reference in zip("xwb", ours, theirs):
        if name == wanted:
            assert_close(mine.grad, reference.grad, what=f"d{name}")
        else:
            assert mine.grad is None


def test_conv3d_is_one_graph_node_and_an_empty_batch_works():
    x = hg.Tensor(_randn(1, 2, 3, 4, 3), requires_grad=True)
    out = F.conv3d(x, hg.Tensor(_randn(3, 2, 2, 2, 2), requires_grad=True))
    assert type(out._ctx) is F.ConvNd
    empty = hg.Tensor(_randn(0, 2, 4, 4, 4), requires_grad=True)
    w = hg.Tensor(_randn(3, 2, 3, 3, 3), requires_grad=True)
    out = F.conv3d(empty, w, padding=1)
    assert out.shape == TF.conv3d(empty.data, w.data, padding=1).shape
    out.sum().backward()
    assert empty.grad.shape == empty.shape and float(w.grad.data.abs().sum()) == 0.0


def test_strategies_for_volumes():
    """conv_strategy applies its 2-d rules to volumes: the product of the output's sizes
    and of the padded grid's decides, so "shift" needs larger volumes in 3-d."""
    pad1 = ((1, 1),) * 3
    assert conv_strategy((4, 32, 8, 8, 8), (32, 32, 3, 3, 3), (1,) * 3, pad1, (1,) * 3,
                         1) == "columns"  # 10^3 grid for 8^3 outputs: 1.95x
    assert conv_strategy((4, 32, 16, 16, 16), (32, 32, 3, 3, 3), (1,) * 3, pad1, (1,) * 3,
                         1) == "shift"  # 18^3 / 16^3 = 1.42
    assert conv_strategy((16, 8, 4, 4, 4), (8, 8, 3, 3, 3), (1,) * 3, pad1, (1,) * 3,
                         1) == "batch_inner"
    assert conv_strategy((2, 8, 4, 4, 4), (8, 1, 3, 3, 3), (1,) * 3, pad1, (1,) * 3,
                         8) == "grouped"  # depthwise


@pytest.mark.parametrize("name", ["conv3d", "conv3d_columns", "conv3d_shift", "conv3d_groups",
                                  "conv3d_batchinner"])
def test_the_registry_reaches_every_layout(name):
    """The op registry's conv3d entries (finite differences, composed reference) run each
    layout that their name says ("conv3d": small volumes, grouped)."""
    from handgrad.testing.registry import by_name

    expected = name.split("_")[1] if "_" in name else "grouped"
    expected = {"groups": "grouped", "batchinner": "batch_inner"}.get(expected, expected)
    for shapes in by_name(name).shapes:
        out = by_name(name).fn(*(hg.Tensor(_randn(*shape), requires_grad=True)
                                 for shape in shapes))
        assert out._ctx.strategy == expected, (name, shapes)


# ============================================================ F.conv_transpose3d
CONV_TRANSPOSE3D_CASES = [  # (x shape, weight shape (C_in, C_out / groups, *k), options)
    ((2, 3, 3, 4, 3), (3, 4, 3, 2, 3), {}),
    ((2, 3, 3, 4, 3), (3, 2, 3, 3, 2), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((2, 4, 3, 3, 4), (4, 3, 2, 3, 2), {"stride": (2, 3, 1), "padding": (1, 0, 1),
                                        "output_padding": (0, 2, 1), "dilation": (1, 2, 2),
                                        "groups": 2}),
    ((2, 4, 3, 4, 3), (4, 1, 3, 3, 3), {"groups": 4, "stride": 2, "padding": 1}),
    ((1, 2, 2, 2, 2), (2, 3, 4, 4, 4), {"stride": 2, "padding": 1}),  # 2x upsampler
    ((3, 3, 4, 2), (3, 2, 2, 3, 2), {"stride": (1, 2, 2), "padding": (1, 0, 0)}),  # unbatched
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("x_shape,w_shape,options", CONV_TRANSPOSE3D_CASES,
                         ids=[str(o) or "default" for *_, o in CONV_TRANSPOSE3D_CASES])
def test_conv_transpose3d_matches_torch(x_shape, w_shape, options, bias, dtype):
    x, w = _randn(*x_shape), _randn(*w_shape, seed=1)
    b = _randn(w_shape[1] * options.get("groups", 1), seed=2) if bias else None
    _against_torch(lambda x, w, b: F.conv_transpose3d(x, w, b, **options),
                   lambda x, w, b: TF.conv_transpose3d(x, w, b, **options), x, w, b,
                   dtype=dtype)


def test_conv_transpose3d_strided_inputs(dtype):
    base = _randn(2, 4, 4, 5, 3)
    x = base.contiguous(memory_format=torch.channels_last_3d).transpose(2, 3)
    w = _randn(4, 3, 3, 2, 2, seed=1).contiguous(memory_format=torch.channels_last_3d)
    assert not x.is_contiguous() and not w.is_contiguous()
    options = {"stride": (2, 1, 2), "padding": 1, "output_padding": (1, 0, 0)}
    _against_torch(lambda x, w, b: F.conv_transpose3d(x, w, b, **options),
                   lambda x, w, b: TF.conv_transpose3d(x, w, b, **options),
                   x, w, _randn(3, seed=2), dtype=dtype)


def test_conv_transpose3d_is_the_adjoint_of_conv3d():
    """<conv3d(y, W), x> = <y, conv_transpose3d(x, W)>."""
    options = {"stride": (2, 1, 2), "padding": 1, "dilation": (1, 2, 1), "groups": 2}
    w = _randn(4, 3, 3, 2, 2, seed=1)  # conv: 6 -> 4 channels; transposed: 4 -> 6
    x = _randn(2, 4, 3, 3, 4, seed=2)
    y_shape = F.conv_transpose3d(hg.Tensor(x), hg.Tensor(w), **options).shape
    y = _randn(*y_shape, seed=3)
    left = (F.conv3d(hg.Tensor(y), hg.Tensor(w), **options).data * x).sum()
    right = (y * F.conv_transpose3d(hg.Tensor(x), hg.Tensor(w), **options).data).sum()
    torch.testing.assert_close(left, right)


# ==================================================================== the modules
MODULES = [  # (class name, args, options, input shape)
    ("Conv3d", (3, 4, 3), {}, (2, 3, 5, 4, 5)),
    ("Conv3d", (4, 6, (3, 2, 1)), {"stride": 2, "padding": 1, "groups": 2}, (2, 4, 5, 6, 3)),
    ("Conv3d", (4, 4, 3), {"groups": 4, "padding": "same", "bias": False}, (2, 4, 4, 3, 4)),
    ("Conv3d", (2, 3, (2, 3, 2)), {"padding": "same", "dilation": 2}, (1, 2, 5, 6, 5)),
    ("Conv3d", (3, 2, 3), {"padding": (1, 2, 0), "padding_mode": "reflect"}, (2, 3, 4, 5, 4)),
    ("Conv3d", (3, 2, 3), {"padding": 2, "padding_mode": "replicate"}, (2, 3, 3, 4, 3)),
    ("Conv3d", (3, 2, 2), {"padding": "same", "padding_mode": "circular"}, (3, 4, 3, 5)),
    ("ConvTranspose3d", (3, 4, 3), {}, (2, 3, 3, 4, 3)),
    ("ConvTranspose3d", (4, 6, (3, 2, 2)), {"stride": 2, "padding": 1, "output_padding": 1,
                                            "groups": 2}, (2, 4, 3, 3, 2)),
    ("ConvTranspose3d", (4, 4, 2), {"groups": 4, "bias": False, "dilation": 2},
     (4, 3, 2, 3)),  # unbatched
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("name,args,options,shape", MODULES,
                         ids=[f"{n}{o}" for n, _, o, _ in MODULES])
def test_module_matches_torch(name, args, options, shape, dtype):
    ours = getattr(nn, name)(*args, **options)
    theirs = getattr(torch.nn, name)(*args, **options)
    assert repr(ours) == repr(theirs)
    assert ours.weight.shape == theirs.weight.shape
    compare_modules(ours, theirs, _randn(*shape), dtype=dtype, steps=2)


def test_conv3d_module_on_the_shift_layout():
    """nn.Conv3d on a volume that runs "shift", in float64 (in float32 its weight gradient
    sums 2744 products per element: measured 9.7e-5 off the float64 value where the
    largest is 199, torch's own float32 8.1e-5, beyond compare_modules' fixed atol)."""
    ours, theirs = nn.Conv3d(16, 2, 3, padding=1), torch.nn.Conv3d(16, 2, 3, padding=1)
    x = _randn(1, 16, 14, 14, 14)
    compare_modules(ours, theirs, x, dtype=torch.float64)
    assert ours(hg.Tensor(x))._ctx.strategy == "shift"


@pytest.mark.parametrize("output_size", [(7, 9, 7), (8, 10, 8), (2, 6, 8, 9, 7)])
def test_conv_transpose3d_output_size_picks_output_padding(output_size):
    theirs = torch.nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1).double()
    ours = nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1, dtype=torch.float64)
    ours.load_state_dict(theirs.state_dict())
    x = _randn(2, 4, 4, 5, 4)
    out = ours(hg.Tensor(x), output_size=output_size)
    assert_close(out, theirs(x, output_size=output_size), torch.float64)
    assert tuple(out.shape[-3:]) == tuple(output_size[-3:])


@pytest.mark.parametrize("name", ["Conv3d", "ConvTranspose3d"])
def test_state_dict_moves_both_ways(name):
    theirs = getattr(torch.nn, name)(3, 4, 3, stride=2).double()
    ours = getattr(nn, name)(3, 4, 3, stride=2, dtype=torch.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    ours.load_state_dict(theirs.state_dict())
    x = _randn(2, 3, 5, 4, 5)
    assert_close(ours(hg.Tensor(x)), theirs(x), torch.float64)
    back = getattr(torch.nn, name)(3, 4, 3, stride=2).double()
    back.load_state_dict({k: v.data for k, v in ours.state_dict().items()})
    assert_close(ours(hg.Tensor(x)), back(x), torch.float64)


@pytest.mark.parametrize("name,args,options", [("Conv3d", (6, 4, (3, 2, 2)), {"groups": 2}),
                                               ("ConvTranspose3d", (4, 6, (2, 3, 2)),
                                                {"groups": 2})])
def test_init_is_torchs(name, args, options):
    """The same seed gives torch's weights: kaiming_uniform_(a=sqrt(5)) then the bias's
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1] * kd kh kw."""
    torch.manual_seed(0)
    ours = getattr(nn, name)(*args, **options)
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **options)
    fan_in = ours.weight.shape[1] * math.prod(ours.weight.shape[2:])
    assert ours.bias.data.abs().max() <= 1 / math.sqrt(fan_in)
    assert ours.weight.data.abs().max() <= 1 / math.sqrt(fan_in)
    for key in ("weight", "bias"):
        assert_close(ours.state_dict()[key], theirs.state_dict()[key], what=key)


# ======================================================================= errors
def test_functional_errors_are_torchs():
    x, w = _randn(2, 3, 5, 5, 5), _randn(4, 3, 3, 3, 3)
    hx, hw = hg.Tensor(x), hg.Tensor(w)
    _same_error(lambda: F.conv3d(hx, hg.Tensor(_randn(4, 2, 3, 3, 3))),
                lambda: TF.conv3d(x, _randn(4, 2, 3, 3, 3)),
                r"conv3d.*weight of size \[4, 2, 3, 3, 3\].*input\[2, 3, 5, 5, 5\]")
    _same_error(lambda: F.conv3d(hx, hg.Tensor(_randn(3, 1, 3, 3, 3)), groups=2),
                lambda: TF.conv3d(x, _randn(3, 1, 3, 3, 3), groups=2),
                r"groups=2.*\[3, 1, 3, 3, 3\].*multiples of groups")
    _same_error(lambda: F.conv3d(hx, hg.Tensor(_randn(4, 3, 6, 3, 3))),
                lambda: TF.conv3d(x, _randn(4, 3, 6, 3, 3)), r"Kernel size: \(6 x 3 x 3\)")
    _same_error(lambda: F.conv3d(hx, hw, padding="same", stride=2),
                lambda: TF.conv3d(x, w, padding="same", stride=2), "strided convolutions")
    _same_error(lambda: F.conv3d(hx, hw, stride=(1, 2)),
                lambda: TF.conv3d(x, w, stride=(1, 2)), "list of 3 values")
    _same_error(lambda: F.conv3d(hg.Tensor(_randn(3, 5, 5)), hw),
                lambda: TF.conv3d(_randn(3, 5, 5), w),
                r"4D \(unbatched\) or 5D.*\[3, 5, 5\].*pass \(N, C, D, H, W\)")
    _same_error(lambda: F.conv_transpose3d(hx, hg.Tensor(_randn(3, 2, 3, 3, 3)),
                                           output_padding=(0, 1, 0)),
                lambda: TF.conv_transpose3d(x, _randn(3, 2, 3, 3, 3), output_padding=(0, 1, 0)),
                "output padding must be smaller than either stride or dilation")
    _same_error(lambda: F.conv_transpose3d(hx, hw),
                lambda: TF.conv_transpose3d(x, w), r"expected input\[2, 3, 5, 5, 5\] to have 4")
    _same_error(lambda: F.conv_transpose3d(hg.Tensor(_randn(5, 5, 5)), hw),
                lambda: TF.conv_transpose3d(_randn(5, 5, 5), w), r"4D \(unbatched\) or 5D")


def test_module_errors_are_torchs():
    _same_error(lambda: nn.Conv3d(3, 4, 3, groups=2), lambda: torch.nn.Conv3d(3, 4, 3, groups=2),
                "Conv3d: in_channels must be divisible by groups")
    _same_error(lambda: nn.Conv3d(4, 3, 3, stride=2, padding="same"),
                lambda: torch.nn.Conv3d(4, 3, 3, stride=2, padding="same"),
                "Conv3d: padding='same' is not supported for strided")
    _same_error(lambda: nn.ConvTranspose3d(4, 3, 3, padding_mode="reflect"),
                lambda: torch.nn.ConvTranspose3d(4, 3, 3, padding_mode="reflect"),
                'Only "zeros" padding mode is supported for ConvTranspose3d')
    layer = nn.Conv3d(3, 4, 3)
    with pytest.raises(RuntimeError,
                       match=r"conv3d.*expected input\[2, 5, 6, 6, 6\] to have 3.*in Conv3d\("):
        layer(hg.Tensor(_randn(2, 5, 6, 6, 6).float()))
    layer, reference = nn.ConvTranspose3d(4, 6, 3, stride=2), torch.nn.ConvTranspose3d(
        4, 6, 3, stride=2)
    x = _randn(2, 4, 5, 5, 5).float()
    _same_error(lambda: layer(hg.Tensor(x), output_size=(14, 12, 11)),
                lambda: reference(x, output_size=(14, 12, 11)),
                r"valid sizes range from \[11, 11, 11\] to \[12, 12, 12\]")
    _same_error(lambda: layer(hg.Tensor(x), output_size=(12, 11)),
                lambda: reference(x, output_size=(12, 11)), "3 or 5 elements")


# ========================================================================= CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("x_shape,w_shape,groups,layout", [
    ((2, 3, 8, 8, 6), (4, 3, 3, 3, 3), 1, "columns"),
    ((1, 16, 14, 14, 14), (4, 16, 3, 3, 3), 1, "shift"),
    ((8, 4, 4, 4, 4), (6, 2, 3, 3, 3), 2, "batch_inner"),
    ((2, 4, 4, 4, 4), (4, 1, 3, 3, 3), 4, "grouped"),
], ids=["columns", "shift", "batch_inner", "grouped"])
def test_cuda_layouts_match_cpu(x_shape, w_shape, groups, layout):
    """Each layout on the GPU for volumes, and conv_transpose3d: values and every
    gradient equal the CPU's."""
    x, w, b = _randn(*x_shape), _randn(*w_shape, seed=1), _randn(w_shape[0], seed=2)
    results = []
    for device in ("cpu", "cuda"):
        leaves = [hg.Tensor(t.to(device), requires_grad=True) for t in (x, w, b)]
        out = F.conv3d(*leaves, padding=1, groups=groups)
        assert out._ctx.strategy == layout
        out.backward(hg.Tensor(_randn(*out.shape, seed=3).to(device)))
        upsampler = hg.Tensor(_randn(x_shape[1], 2, 2, 3, 2, seed=4).to(device))
        transposed = F.conv_transpose3d(leaves[0], upsampler, stride=2, padding=(1, 0, 0))
        results.append([out.data.cpu(), transposed.data.cpu()]
                       + [t.grad.data.cpu() for t in leaves])
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda, cpu)
