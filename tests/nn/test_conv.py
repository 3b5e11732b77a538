"""Convolution against torch: F.conv1d / F.conv2d / F.unfold / F.fold over a grid of
stride, padding, dilation and groups (float32 and float64; values and the gradients of
input, weight and bias for a random upstream gradient; non-contiguous and channels-last
inputs), nn.Conv1d / nn.Conv2d against their torch.nn twins (weights copied, every
padding mode), state_dicts moved both ways, torch's init and repr, the errors, and a
learner's loop-based conv2d against the fast one.

Left out: finite differences and the fused-vs-composed proof (the registry entries in
handgrad/testing/registry/conv.py, run by tests/tensor/test_ops.py and
`handgrad gradcheck --op 'conv*'`).
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
from tests.torch_compare import assert_close, compare_modules


def _against_torch(ours_fn, torch_fn, *inputs, dtype):
    """ours_fn on handgrad leaves vs torch_fn on torch leaves (same strides): the output,
    then every input's gradient for the same random upstream gradient."""
    inputs = [x.to(dtype) if x is not None else None for x in inputs]
    theirs = [x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
              if x is not None else None for x in inputs]
    ours = [hg.Tensor(x.detach().clone(memory_format=torch.preserve_format),
                      requires_grad=True) if x is not None else None for x in inputs]
    out, expected = ours_fn(*ours), torch_fn(*theirs)
    assert_close(out, expected, dtype, "output")
    gen = torch.Generator().manual_seed(1)
    upstream = torch.randn(expected.shape, generator=gen, dtype=torch.float64).to(dtype)
    out.backward(upstream)
    expected.backward(upstream)
    for i, (a, e) in enumerate(zip(ours, theirs)):
        if e is not None:
            _assert_gradient_close(a.grad, e.grad, dtype, f"gradient of input {i}")


def _assert_gradient_close(actual, expected, dtype, what):
    """As assert_close, but in float32 the absolute tolerance scales with the gradient's
    largest magnitude: a weight gradient sums N L products, and torch's float32 kernels
    round at that scale too (measured: torch 3.4e-5 off the float64 value where the
    largest element is 60, handgrad 5.7e-6)."""
    if dtype != torch.float32:
        return assert_close(actual, expected, dtype, what)
    scale = max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(actual.data, expected, atol=1e-5 * scale, rtol=1e-4,
                               msg=lambda m: f"{what}: {m}")


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


# ================================================================ F.conv2d / F.conv1d
CONV2D_CASES = [  # (x shape, weight shape, options)
    ((2, 3, 7, 6), (4, 3, 3, 3), {}),
    ((2, 3, 7, 6), (4, 3, 3, 2), {"stride": 2, "padding": 1}),
    ((2, 3, 8, 7), (4, 3, 2, 3), {"stride": (2, 3), "padding": (2, 0), "dilation": (1, 2)}),
    ((2, 4, 6, 6), (6, 2, 3, 3), {"groups": 2, "padding": 1, "dilation": 2}),
    ((2, 4, 6, 5), (4, 1, 3, 3), {"groups": 4, "padding": "same"}),  # depthwise
    ((2, 4, 6, 5), (8, 1, 2, 2), {"groups": 4, "stride": 2}),  # depthwise, multiplier 2
    ((2, 2, 6, 7), (3, 2, 2, 4), {"padding": "same", "dilation": (2, 1)}),  # even kernel
    ((1, 3, 5, 5), (2, 3, 5, 5), {"padding": "valid"}),  # kernel = input
    ((3, 6, 5), (4, 3, 3, 1), {}),  # unbatched
    # 256+ outputs per image: conv_strategy's "columns", with stride 1 and 16+ input
    # channels "shift" (the padded grid)
    ((2, 3, 16, 17), (4, 3, 3, 3), {"padding": 1, "stride": (1, 1)}),
    ((2, 16, 16, 16), (5, 16, 3, 2), {"padding": "same", "dilation": (2, 1)}),
    ((16, 16, 16), (3, 16, 3, 3), {"padding": 1}),  # unbatched
    ((2, 16, 16, 16), (4, 16, 1, 1), {}),  # 1x1 on "columns": no copy of x
    # 8+ images of under 256 outputs: "batch_inner" (the batch innermost in the columns)
    ((8, 3, 7, 6), (4, 3, 3, 2), {"padding": "same", "dilation": (2, 1)}),
    ((8, 4, 7, 6), (6, 2, 3, 3), {"stride": (2, 1), "padding": 1, "groups": 2}),
    ((9, 2, 5, 5), (3, 2, 5, 5), {}),  # kernel = input
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("x_shape,w_shape,options", CONV2D_CASES,
                         ids=[str(o) or "default" for *_, o in CONV2D_CASES])
def test_conv2d_matches_torch(x_shape, w_shape, options, bias, dtype):
    x, w = _randn(*x_shape), _randn(*w_shape, seed=1)
    b = _randn(w_shape[0], seed=2) if bias else None
    _against_torch(lambda x, w, b: F.conv2d(x, w, b, **options),
                   lambda x, w, b: TF.conv2d(x, w, b, **options), x, w, b, dtype=dtype)


@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last"])
def test_conv2d_strided_inputs(layout, dtype):
    """Inputs that are not contiguous (a transposed view, a strided slice, channels-last)
    give torch's values and gradients."""
    base = _randn(2, 4, 8, 9)
    x = {"transposed": base.transpose(2, 3),
         "sliced": base[:, ::2, 1::2, :],
         "channels_last": base.contiguous(memory_format=torch.channels_last)}[layout]
    w = _randn(6, x.shape[1], 3, 2, seed=1).transpose(2, 3).contiguous().transpose(2, 3)
    assert not x.is_contiguous() and not w.is_contiguous()
    _against_torch(lambda x, w, b: F.conv2d(x, w, b, padding=1, stride=(1, 2)),
                   lambda x, w, b: TF.conv2d(x, w, b, padding=1, stride=(1, 2)),
                   x, w, _randn(6, seed=2), dtype=dtype)


CONV1D_CASES = [
    ((2, 3, 9), (4, 3, 3), {}),
    ((2, 3, 10), (6, 1, 3), {"stride": 2, "padding": 2, "dilation": 2, "groups": 3}),
    ((2, 2, 8), (3, 2, 4), {"padding": "same"}),
    ((2, 4, 7), (4, 1, 2), {"groups": 4, "padding": "valid", "stride": 3}),
    ((3, 9), (2, 3, 3), {"padding": 1}),  # unbatched
    ((2, 3, 300), (4, 3, 3), {"stride": 1}),  # columns
    ((2, 16, 256), (4, 16, 3), {"padding": 1}),  # shift
    ((8, 4, 9), (4, 2, 3), {"stride": 2, "dilation": 2, "padding": 2, "groups": 2}),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("x_shape,w_shape,options", CONV1D_CASES,
                         ids=[str(o) or "default" for *_, o in CONV1D_CASES])
def test_conv1d_matches_torch(x_shape, w_shape, options, dtype):
    x, w, b = _randn(*x_shape), _randn(*w_shape, seed=1), _randn(w_shape[0], seed=2)
    _against_torch(lambda x, w, b: F.conv1d(x, w, b, **options),
                   lambda x, w, b: TF.conv1d(x, w, b, **options), x, w, b, dtype=dtype)
    _against_torch(lambda x, w: F.conv1d(x.transpose(-1, -2).transpose(-1, -2), w,
                                         **options),
                   lambda x, w: TF.conv1d(x, w, **options), x, w, dtype=dtype)


def test_conv2d_is_one_graph_node():
    x = hg.Tensor(_randn(1, 2, 5, 5), requires_grad=True)
    w = hg.Tensor(_randn(3, 2, 3, 3), requires_grad=True)
    out = F.conv2d(x, w, hg.Tensor(_randn(3), requires_grad=True))
    assert type(out._ctx) is F.ConvNd


def test_strategies_cover_the_benchmark_layers():
    """conv_strategy picks the layout each bench cnn layer was measured with."""
    one = ((1, 1), (1, 1))
    assert conv_strategy((64, 1, 28, 28), (6, 1, 5, 5), (1, 1), ((2, 2),) * 2, (1, 1),
                         1) == "columns"
    assert conv_strategy((64, 6, 14, 14), (16, 6, 5, 5), (1, 1), ((0, 0),) * 2, (1, 1),
                         1) == "batch_inner"  # 10x10 outputs: per-image products too small
    assert conv_strategy((4, 6, 14, 14), (16, 6, 5, 5), (1, 1), ((0, 0),) * 2, (1, 1),
                         1) == "grouped"  # a few images: runs of N floats would be short
    assert conv_strategy((32, 32, 16, 16), (32, 1, 3, 3), (1, 1), one, (1, 1),
                         32) == "grouped"  # depthwise: one channel per group
    assert conv_strategy((32, 64, 32, 32), (64, 64, 3, 3), (1, 1), one, (1, 1), 1) == "shift"
    assert conv_strategy((32, 3, 32, 32), (32, 3, 3, 3), (1, 1), one, (1, 1), 1) == "columns"
    assert conv_strategy((32, 64, 32, 32), (64, 64, 3, 3), (2, 2), one, (1, 1), 1) == "columns"
    assert conv_strategy((32, 64, 32, 32), (64, 64, 1, 1), (1, 1), ((0, 0),) * 2, (1, 1),
                         1) == "columns"  # 1x1: the columns are a view of x
    assert conv_strategy((32, 64, 20, 20), (64, 64, 5, 5), (1, 1), ((0, 0),) * 2, (1, 1),
                         1) == "columns"  # the padded grid would compute 1.56x the outputs
    assert conv_strategy((32, 64, 32, 32), (64, 32, 3, 3), (1, 1), one, (1, 1),
                         2) == "batch_inner"


@pytest.mark.parametrize("name", ["conv2d", "conv2d_columns", "conv2d_columns_dilation_same",
                                  "conv2d_columns_1x1",
                                  "conv2d_shift", "conv2d_shift_dilation_same", "conv1d",
                                  "conv1d_columns", "conv1d_shift", "conv2d_groups",
                                  "conv2d_batchinner", "conv2d_batchinner_stride_groups",
                                  "conv1d_batchinner"])
def test_the_registry_reaches_every_layout(name):
    """The op registry's entries (finite differences, composed reference) run each
    layout of conv_strategy that their name says ("conv2d": small images, grouped)."""
    from handgrad.testing.registry import by_name

    expected = name.split("_")[1] if "_" in name else "grouped"
    expected = {"groups": "grouped", "batchinner": "batch_inner"}.get(expected, expected)
    for shapes in by_name(name).shapes:
        out = by_name(name).fn(*(hg.Tensor(_randn(*shape), requires_grad=True)
                                 for shape in shapes))
        assert out._ctx.strategy == expected, (name, shapes)


@pytest.mark.parametrize("x_shape,layout", [((2, 3, 16, 16), "columns"),
                                            ((2, 16, 16, 16), "shift"),
                                            ((8, 3, 6, 6), "batch_inner")],
                         ids=["columns", "shift", "batch_inner"])
@pytest.mark.parametrize("wanted", ["x", "w", "b"])
def test_layouts_with_some_gradients_and_channels_last(x_shape, layout, wanted, dtype):
    """Each ungrouped layout with only one of the gradients wanted, on channels-last
    input: the wanted gradient is torch's, the others are not computed."""
    channels = x_shape[1]
    x = _randn(*x_shape).to(dtype).contiguous(memory_format=torch.channels_last)
    w, b = _randn(4, channels, 3, 3, seed=1).to(dtype), _randn(4, seed=2).to(dtype)
    ours = [hg.Tensor(t.clone(), requires_grad=name == wanted)
            for name, t in zip("xwb", (x, w, b))]
    theirs = [t.clone().requires_grad_(name == wanted) for name, t in zip("xwb", (x, w, b))]
    out, expected = F.conv2d(*ours, padding=1), TF.conv2d(*theirs, padding=1)
    assert out._ctx.strategy == layout
    assert_close(out.data, expected, what="output")
    g = _randn(*expected.shape, seed=3).to(dtype)
    out.backward(hg.Tensor(g))
    expected.backward(g)
    for name, mine, reference in zip("xwb", ours, theirs):
        if name == wanted:
            _assert_gradient_close(mine.grad, reference.grad, dtype, f"d{name}")
        else:
            assert mine.grad is None


@pytest.mark.parametrize("options", [{"padding": 1}, {"stride": 2}, {"groups": 2}], ids=str)
def test_an_empty_batch_gives_an_empty_output_as_torch(options):
    x, w = _randn(0, 4, 8, 8), _randn(6, 4 // options.get("groups", 1), 3, 3, seed=1)
    ours_x, ours_w = hg.Tensor(x, requires_grad=True), hg.Tensor(w, requires_grad=True)
    out = F.conv2d(ours_x, ours_w, **options)
    assert out.shape == TF.conv2d(x, w, **options).shape
    out.sum().backward()
    assert ours_x.grad.shape == x.shape and float(ours_w.grad.data.abs().sum()) == 0.0


@pytest.mark.parametrize("x_shape", [(8, 3, 6, 6), (2, 3, 16, 16)],
                         ids=["batch_inner", "columns"])
def test_reused_column_buffers_are_never_shared(x_shape):
    """The column buffers kept between calls (CPU) are not handed out while a graph
    still holds them: two forwards of one geometry before either backward, one graph
    run twice (retain_graph), then a third call, all give torch's gradients."""
    w = hg.Tensor(_randn(4, 3, 3, 3, seed=1), requires_grad=True)
    xs = [hg.Tensor(_randn(*x_shape, seed=s), requires_grad=True) for s in (3, 4, 5)]
    w_ref = w.data.clone().requires_grad_()
    outs = [F.conv2d(xs[0], w, padding=1), F.conv2d(xs[1], w, padding=1)]
    outs[0].sum().backward(retain_graph=True)
    outs[1].sum().backward()
    outs[0].sum().backward()  # its columns were not overwritten by the second forward
    F.conv2d(xs[2], w, padding=1).sum().backward()
    for x, times in zip(xs, (2, 1, 1)):
        x_ref = x.data.clone().requires_grad_()
        (times * TF.conv2d(x_ref, w_ref, padding=1).sum()).backward()
        assert_close(x.grad, x_ref.grad, what="dx")
    assert outs[0]._ctx.strategy == {6: "batch_inner", 16: "columns"}[x_shape[-1]]
    assert_close(w.grad, w_ref.grad, what="dw")


def test_only_needed_gradients_are_computed():
    x = hg.Tensor(_randn(1, 2, 5, 5))  # no gradient wanted for x
    w = hg.Tensor(_randn(3, 2, 3, 3), requires_grad=True)
    out = F.conv2d(x, w)
    assert out._ctx.needs_input_grad[:3] == (False, True, False)
    out.sum().backward()
    assert x.grad is None and w.grad is not None


# ================================================================ F.unfold / F.fold
FOLD_CASES = [  # (input image shape, options)
    ((2, 3, 5, 4), {"kernel_size": 2}),
    ((2, 2, 7, 6), {"kernel_size": (3, 2), "dilation": (1, 2), "padding": 1, "stride": 2}),
    ((1, 2, 6, 6), {"kernel_size": 3, "padding": (2, 1), "stride": (3, 1)}),
    ((3, 5, 4), {"kernel_size": (2, 1), "stride": 2}),  # unbatched
]


@pytest.mark.parametrize("shape,options", FOLD_CASES, ids=[str(o) for _, o in FOLD_CASES])
def test_unfold_and_fold_match_torch(shape, options, dtype):
    x = _randn(*shape)
    _against_torch(lambda x: F.unfold(x, **options), lambda x: TF.unfold(x, **options),
                   x, dtype=dtype)
    _against_torch(lambda x: F.unfold(x, **options), lambda x: TF.unfold(x, **options),
                   x.transpose(-1, -2).contiguous().transpose(-1, -2), dtype=dtype)
    cols = _randn(*TF.unfold(x, **options).shape, seed=3)
    _against_torch(lambda c: F.fold(c, shape[-2:], **options),
                   lambda c: TF.fold(c, shape[-2:], **options), cols, dtype=dtype)
    _against_torch(lambda c: F.fold(c.transpose(-1, -2).transpose(-1, -2), shape[-2:],
                                    **options),
                   lambda c: TF.fold(c, shape[-2:], **options), cols, dtype=dtype)


def test_fold_is_the_adjoint_of_unfold():
    """<unfold(x), c> = <x, fold(c)>: why each one's backward is the other."""
    x, options = _randn(2, 3, 6, 5), {"kernel_size": (2, 3), "padding": 1, "stride": 2}
    cols = F.unfold(hg.Tensor(x), **options)
    c = _randn(*cols.shape, seed=1)
    left = (cols.data * c).sum()
    right = (x * F.fold(hg.Tensor(c), (6, 5), **options).data).sum()
    torch.testing.assert_close(left, right)


# =============================================================== a learner's conv2d
def _loop_conv2d(x, w, b, stride=1, padding=0):
    """The conv as a learner writes it first: a dot product at every output pixel."""
    x = TF.pad(x, (padding,) * 4)
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = torch.zeros(n, o, oh, ow, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = torch.einsum("nchw,ochw->no", patch, w) + b
    return out


def test_the_fast_conv_equals_a_loop_over_pixels():
    x, w, b = _randn(2, 3, 7, 6), _randn(4, 3, 3, 2, seed=1), _randn(4, seed=2)
    fast = F.conv2d(hg.Tensor(x), hg.Tensor(w), hg.Tensor(b), stride=2, padding=1)
    assert_close(fast, _loop_conv2d(x, w, b, stride=2, padding=1), torch.float64)


# ==================================================================== the modules
MODULES = [  # (class name, args, options, input shape)
    ("Conv2d", (3, 4, 3), {}, (2, 3, 6, 5)),
    ("Conv2d", (4, 6, (3, 2)), {"stride": 2, "padding": 1, "groups": 2}, (2, 4, 7, 6)),
    ("Conv2d", (4, 4, 3), {"groups": 4, "padding": "same", "bias": False}, (2, 4, 5, 5)),
    ("Conv2d", (2, 3, (2, 3)), {"padding": "same", "dilation": 2}, (1, 2, 6, 7)),
    ("Conv2d", (3, 2, 3), {"padding": (1, 2), "padding_mode": "reflect"}, (2, 3, 5, 6)),
    ("Conv2d", (3, 2, 3), {"padding": 2, "padding_mode": "replicate"}, (2, 3, 5, 4)),
    ("Conv2d", (3, 2, 2), {"padding": "same", "padding_mode": "circular"}, (3, 5, 4)),
    ("Conv1d", (3, 4, 3), {}, (2, 3, 8)),
    ("Conv1d", (4, 8, 2), {"stride": 2, "groups": 4, "dilation": 2}, (2, 4, 9)),
    ("Conv1d", (2, 3, 4), {"padding": "same", "padding_mode": "reflect"}, (2, 2, 7)),
    ("Conv1d", (2, 3, 3), {"padding": 1, "padding_mode": "circular"}, (2, 7)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("name,args,options,shape", MODULES,
                         ids=[f"{n}{o}" for n, _, o, _ in MODULES])
def test_module_matches_torch(name, args, options, shape, dtype):
    ours = getattr(nn, name)(*args, **options)
    theirs = getattr(torch.nn, name)(*args, **options)
    assert repr(ours) == repr(theirs)
    compare_modules(ours, theirs, _randn(*shape), dtype=dtype, steps=2)


def test_state_dict_moves_both_ways():
    theirs = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    ours = nn.Conv2d(3, 4, 3, padding=1, dtype=torch.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    ours.load_state_dict(theirs.state_dict())
    x = _randn(2, 3, 5, 5)
    assert_close(ours(hg.Tensor(x)), theirs(x), torch.float64)
    back = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    back.load_state_dict({k: v.data for k, v in ours.state_dict().items()})
    assert_close(ours(hg.Tensor(x)), back(x), torch.float64)


@pytest.mark.parametrize("name,args,options", [("Conv2d", (6, 4, (3, 2)), {"groups": 2}),
                                               ("Conv1d", (3, 5, 4), {})])
def test_init_is_torchs(name, args, options):
    """The same seed gives torch's weights: kaiming_uniform_(a=sqrt(5)) then the bias's
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn in the same order."""
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
def _same_error(ours, theirs, match):
    """torch raises an error of some type; ours raises the same type, naming `match`."""
    with pytest.raises(Exception) as expected:
        theirs()
    with pytest.raises(expected.type, match=match):
        ours()


def test_functional_errors_are_torchs():
    x, w = _randn(2, 3, 5, 5), _randn(4, 3, 3, 3)
    hx, hw = hg.Tensor(x), hg.Tensor(w)
    _same_error(lambda: F.conv2d(hx, hg.Tensor(_randn(4, 2, 3, 3))),
                lambda: TF.conv2d(x, _randn(4, 2, 3, 3)),
                r"conv2d.*weight of size \[4, 2, 3, 3\].*input\[2, 3, 5, 5\].*in_channels")
    _same_error(lambda: F.conv2d(hx, hg.Tensor(_randn(3, 1, 3, 3)), groups=2),
                lambda: TF.conv2d(x, _randn(3, 1, 3, 3), groups=2),
                r"groups=2.*\[3, 1, 3, 3\].*\[2, 3, 5, 5\].*multiples of groups")
    _same_error(lambda: F.conv2d(hx, hg.Tensor(_randn(4, 1, 3, 3)), groups=4),
                lambda: TF.conv2d(x, _randn(4, 1, 3, 3), groups=4), r"4 channels.*got 3")
    _same_error(lambda: F.conv2d(hx, hg.Tensor(_randn(4, 3, 6, 3))),
                lambda: TF.conv2d(x, _randn(4, 3, 6, 3)),
                r"Kernel size: \(6 x 3\).*\[2, 3, 5, 5\].*more padding")
    _same_error(lambda: F.conv2d(hx, hw, dilation=3),
                lambda: TF.conv2d(x, w, dilation=3), r"padded input size.*\(5 x 5\)")
    _same_error(lambda: F.conv2d(hx, hw, padding="same", stride=2),
                lambda: TF.conv2d(x, w, padding="same", stride=2), "strided convolutions")
    _same_error(lambda: F.conv2d(hx, hw, padding="full"),
                lambda: TF.conv2d(x, w, padding="full"), "Invalid padding string")
    _same_error(lambda: F.conv2d(hg.Tensor(_randn(3, 5)), hw),
                lambda: TF.conv2d(_randn(3, 5), w),
                r"3D \(unbatched\) or 4D.*\[3, 5\].*\[4, 3, 3, 3\].*pass \(N, C, H, W\)")
    _same_error(lambda: F.conv1d(hg.Tensor(_randn(2, 3, 4, 5)), hg.Tensor(_randn(4, 3, 2))),
                lambda: TF.conv1d(_randn(2, 3, 4, 5), _randn(4, 3, 2)), r"2D \(unbatched\)")
    _same_error(lambda: F.conv1d(hg.Tensor(_randn(2, 3, 5)), hg.Tensor(_randn(4, 3, 2)),
                                 stride=(1, 2)),
                lambda: TF.conv1d(_randn(2, 3, 5), _randn(4, 3, 2), stride=(1, 2)), "stride")
    _same_error(lambda: F.fold(hg.Tensor(_randn(2, 12, 10)), (5, 4), 2),
                lambda: TF.fold(_randn(2, 12, 10), (5, 4), 2), "sliding blocks")


def test_module_errors_are_torchs():
    _same_error(lambda: nn.Conv2d(3, 4, 3, groups=2), lambda: torch.nn.Conv2d(3, 4, 3, groups=2),
                "in_channels must be divisible by groups")
    _same_error(lambda: nn.Conv2d(4, 3, 3, groups=2), lambda: torch.nn.Conv2d(4, 3, 3, groups=2),
                "out_channels must be divisible by groups")
    _same_error(lambda: nn.Conv1d(4, 3, 3, stride=2, padding="same"),
                lambda: torch.nn.Conv1d(4, 3, 3, stride=2, padding="same"),
                "strided convolutions")
    _same_error(lambda: nn.Conv1d(4, 3, 3, padding_mode="mirror"),
                lambda: torch.nn.Conv1d(4, 3, 3, padding_mode="mirror"), "padding_mode")
    layer = nn.Conv2d(3, 4, 3)
    with pytest.raises(RuntimeError,
                       match=r"conv2d.*expected input\[2, 5, 6, 6\] to have 3.*in Conv2d\("):
        layer(hg.Tensor(_randn(2, 5, 6, 6).float()))


# ========================================================================= CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("x_shape,w_shape,groups,layout", [
    ((2, 3, 16, 16), (4, 3, 3, 3), 1, "columns"),
    ((2, 16, 16, 16), (4, 16, 3, 3), 1, "shift"),
    ((8, 4, 6, 6), (6, 2, 3, 3), 2, "batch_inner"),
    ((2, 4, 6, 6), (4, 1, 3, 3), 4, "grouped"),
], ids=["columns", "shift", "batch_inner", "grouped"])
def test_cuda_layouts_match_cpu(x_shape, w_shape, groups, layout):
    """Each layout on the GPU (no reused buffers there): values and every gradient equal
    the CPU's."""
    x, w, b = _randn(*x_shape), _randn(*w_shape, seed=1), _randn(w_shape[0], seed=2)
    results = []
    for device in ("cpu", "cuda"):
        leaves = [hg.Tensor(t.to(device), requires_grad=True) for t in (x, w, b)]
        out = F.conv2d(*leaves, padding=1, groups=groups)
        assert out._ctx.strategy == layout
        out.backward(hg.Tensor(_randn(*out.shape, seed=3).to(device)))
        results.append([out.data.cpu()] + [t.grad.data.cpu() for t in leaves])
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda, cpu)
