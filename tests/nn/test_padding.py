"""F.pad against torch.nn.functional.pad in every mode (constant with a value and with
negative amounts, reflect, replicate, circular; 1, 2 and 3 padded dims, batched and
unbatched; float32 and float64 values and gradients for a random upstream gradient;
strided and channels-last inputs) and its errors; the padding layers (ZeroPad,
ConstantPad, ReflectionPad, ReplicationPad, CircularPad) against torch.nn with their
repr; and nn.Unflatten, the other layer a decoder needs to go from vectors to images.

Left out: finite differences (the registry entries in handgrad/testing/registry/padding.py,
run by tests/tensor/test_ops.py and `handgrad gradcheck --op 'pad_*'`), the convs'
padding modes (tests/nn/test_conv.py, through F.pad).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from tests.nn.test_conv import _against_torch, _randn, _same_error
from tests.torch_compare import assert_close, compare_modules

CASES = [  # (input shape, pad, mode, value)
    ((2, 3, 4), (1, 2), "constant", None),
    ((2, 3, 4), (1, -2, -1, 2, 0, 1), "constant", 0.5),  # crops, 3 dims
    ((4, 5), (-1, -1, -2, 0), "constant", -1.0),
    ((2, 3, 6), (2, 5), "reflect", None),
    ((3, 6), (3, 1), "reflect", None),  # unbatched
    ((2, 2, 4, 5), (1, 4, 3, 2), "reflect", None),
    ((2, 4, 5), (-1, 2, 3, -2), "reflect", None),
    ((1, 2, 3, 4, 5), (1, 2, 2, 1, 1, 2), "reflect", None),
    ((2, 3, 4), (5, 1), "replicate", None),
    ((2, 2, 3, 4), (2, 0, -1, 3), "replicate", None),
    ((2, 3, 4, 5), (1, 2, 3, 1, 1, 1), "replicate", None),
    ((2, 3, 5), (5, 2), "circular", None),
    ((2, 2, 4, 5), (2, -1, -2, 1), "circular", None),
    ((3, 4, 5), (3, 4, 1, 2), "circular", None),
    ((2, 3, 4), (0, 0), "reflect", 0.0),  # nothing to pad; a zero value is allowed
]


@pytest.mark.parametrize("shape,amounts,mode,value", CASES,
                         ids=[f"{m}{p}{list(s)}" for s, p, m, _ in CASES])
def test_pad_matches_torch(shape, amounts, mode, value, dtype):
    _against_torch(lambda x: F.pad(x, amounts, mode=mode, value=value),
                   lambda x: TF.pad(x, amounts, mode=mode, value=value), _randn(*shape),
                   dtype=dtype)


@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last"])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_strided_inputs(layout, mode, dtype):
    base = _randn(2, 4, 6, 7)
    x = {"transposed": base.transpose(2, 3),
         "sliced": base[:, ::2, 1::2, :],
         "channels_last": base.contiguous(memory_format=torch.channels_last)}[layout]
    assert not x.is_contiguous()
    amounts = (2, 1, 1, 2)
    _against_torch(lambda x: F.pad(x, amounts, mode), lambda x: TF.pad(x, amounts, mode), x,
                   dtype=dtype)


def test_pad_errors_are_torchs():
    x = _randn(2, 3)
    hx = hg.Tensor(x)
    for amounts, mode, value, match in [
        ((1,), "constant", None, "divisible by 2"),
        ((1, 1, 1, 1, 1, 1), "constant", None, "padding length 6 and input of dimension 2"),
        ((3, 3), "reflect", None, r"padding \(3, 3\) at dimension 1 of input \[2, 3\]"),
        ((4, 3), "circular", None, "wrapping around more than once"),
        ((1, 1, 1, 1), "reflect", None, "Padding size 4 is not supported for 2D input"),
        ((1, 1), "replicate", 1.0, "doesn't take in value argument"),
        ((1, 1), "mirror", None, "Unrecognised padding mode mirror"),
    ]:
        _same_error(lambda a=amounts, m=mode, v=value: F.pad(hx, a, m, v),
                    lambda a=amounts, m=mode, v=value: TF.pad(x, a, m, v), match)
    _same_error(lambda: F.pad(hg.Tensor(_randn(3)), (1, 1), "reflect"),
                lambda: TF.pad(_randn(3), (1, 1), "reflect"), "1D input")
    _same_error(lambda: F.pad(hx, [1.5, 1]), lambda: TF.pad(x, [1.5, 1]), "tuple of ints")
    with pytest.raises(RuntimeError, match="negative output size.*dimension 1"):
        F.pad(hx, (-2, -2))


# ==================================================================== the modules
LAYERS = [  # (class name, args, input shape)
    ("ZeroPad1d", (2,), (2, 3, 4)),
    ("ZeroPad2d", ((1, 0, 2, 3),), (2, 3, 4, 5)),
    ("ConstantPad1d", ((1, 3), 1.5), (3, 4)),
    ("ConstantPad2d", (1, -0.5), (2, 3, 4, 5)),
    ("ReflectionPad1d", (3,), (2, 3, 4)),
    ("ReflectionPad2d", ((1, 2, 3, 0),), (3, 4, 5)),
    ("ReplicationPad1d", ((4, 1),), (2, 3, 4)),
    ("ReplicationPad2d", (2,), (2, 3, 4, 5)),
    ("CircularPad1d", ((1, 4),), (2, 3, 4)),
    ("CircularPad2d", (2,), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("name,args,shape", LAYERS, ids=[n for n, _, _ in LAYERS])
def test_padding_layers_match_torch(name, args, shape, dtype):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    assert ours.padding == theirs.padding
    compare_modules(ours, theirs, _randn(*shape), dtype=dtype)


def test_unflatten_matches_torch():
    for dim, sizes in [(1, (3, 2, 2)), (-1, [2, -1]), (0, (2, 2))]:
        ours, theirs = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
        assert repr(ours) == repr(theirs)
        x = _randn(4, 12)
        compare_modules(ours, theirs, x)
    decoder = nn.Sequential(nn.Linear(8, 12), nn.Unflatten(1, (3, 2, 2)),
                            nn.ConvTranspose2d(3, 1, 2, stride=2))
    assert decoder(hg.Tensor(_randn(5, 8).float())).shape == (5, 1, 4, 4)
    _same_error(lambda: nn.Unflatten(1, 3), lambda: torch.nn.Unflatten(1, 3),
                "must be tuple of ints, but found type int")
    _same_error(lambda: nn.Unflatten(1, (2.0, 6)), lambda: torch.nn.Unflatten(1, (2.0, 6)),
                "element of type float at pos 0")
    with pytest.raises(RuntimeError, match=r"Unflatten\(dim=1"):
        nn.Unflatten(1, (5, 2))(hg.Tensor(_randn(4, 12)))


def test_conv_padding_modes_go_through_f_pad():
    """nn.Conv2d's reflect padding is F.pad's: the same values as padding by hand."""
    layer = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect", dtype=torch.float64)
    x = hg.Tensor(_randn(2, 2, 5, 6))
    by_hand = F.conv2d(F.pad(x, (2, 2, 1, 1), "reflect"), layer.weight, layer.bias)
    assert_close(layer(x), by_hand.data, torch.float64)
