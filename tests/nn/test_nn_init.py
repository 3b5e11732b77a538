"""nn.init against torch.nn.init (same draws for the same seed, so exact equality), the
statistics each scheme promises, and the default initialisation of every layer."""

from __future__ import annotations

import math

import pytest
import torch

import handgrad as hg
from handgrad import nn


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None),
])
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == \
        torch.nn.init.calculate_gain(nonlinearity, param)


SCHEMES = [
    ("uniform_", {"a": -0.3, "b": 0.7}), ("normal_", {"mean": 1.0, "std": 0.5}),
    ("trunc_normal_", {"std": 0.02}), ("trunc_normal_", {"mean": 0.5, "a": 0.0, "b": 1.0}),
    ("trunc_normal_", {"mean": 0.0, "std": 1.0, "a": 1.0, "b": 3.0}),
    ("constant_", {"val": 0.25}), ("ones_", {}), ("zeros_", {}),
    ("xavier_uniform_", {}), ("xavier_uniform_", {"gain": 2.0}), ("xavier_normal_", {}),
    ("kaiming_uniform_", {}), ("kaiming_uniform_", {"a": math.sqrt(5)}),
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", {}), ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "tanh"}),
]


@pytest.mark.parametrize("name, kwargs", SCHEMES, ids=[f"{n}{k}" for n, k in SCHEMES])
@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 2, 2)])
def test_schemes_draw_exactly_what_torch_draws(name, kwargs, shape):
    ours, theirs = nn.Parameter(hg.empty(*shape)), torch.empty(*shape)
    hg.manual_seed(0)
    assert getattr(nn.init, name)(ours, **kwargs) is ours
    torch.manual_seed(0)
    getattr(torch.nn.init, name)(theirs, **kwargs)
    assert torch.equal(ours.data, theirs)
    assert ours.requires_grad and ours.is_leaf  # filled without recording anything


def test_generator_argument():
    draws = [nn.init.kaiming_normal_(hg.empty(3, 4), generator=torch.Generator().manual_seed(1))
             for _ in range(2)]
    assert torch.equal(draws[0].data, draws[1].data)


def test_statistics():
    w = nn.init.kaiming_normal_(hg.empty(400, 500), nonlinearity="relu")
    assert w.data.std().item() == pytest.approx(math.sqrt(2 / 500), rel=0.02)
    w = nn.init.kaiming_uniform_(hg.empty(400, 500), mode="fan_out")
    bound = math.sqrt(3) * nn.init.calculate_gain("leaky_relu", 0) / math.sqrt(400)
    assert w.data.abs().max().item() <= bound
    assert w.data.abs().max().item() > 0.99 * bound
    w = nn.init.xavier_normal_(hg.empty(300, 500))
    assert w.data.std().item() == pytest.approx(math.sqrt(2 / 800), rel=0.02)
    w = nn.init.xavier_uniform_(hg.empty(300, 500))
    assert w.data.abs().max().item() <= math.sqrt(6 / 800)
    w = nn.init.trunc_normal_(hg.empty(200, 200), std=1.0, a=-0.5, b=1.0)
    assert -0.5 <= w.data.min().item() and w.data.max().item() <= 1.0


def test_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(hg.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        nn.init.kaiming_uniform_(hg.empty(2, 2), mode="fan_avg")
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        nn.init.calculate_gain("gelu")


# ------------------------------------------------------------------ default initialisation
LAYERS = [
    ("Linear", (7, 3), {}), ("Linear", (7, 3), {"bias": False}), ("BatchNorm1d", (4,), {}),
    ("BatchNorm2d", (4,), {"affine": False}), ("LayerNorm", ((2, 5),), {}),
    ("Embedding", (6, 3), {}), ("Embedding", (6, 3), {"padding_idx": 2}),
]


@pytest.mark.parametrize("name, args, kwargs", LAYERS, ids=[f"{n}{k}" for n, _, k in LAYERS])
def test_default_initialisation_is_torchs(name, args, kwargs):
    """Same seed, same parameters and buffers, same shapes, dtypes and keys."""
    hg.manual_seed(3)
    ours = getattr(nn, name)(*args, **kwargs)
    torch.manual_seed(3)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in theirs_state.items():
        assert ours_state[key].dtype == value.dtype, key
        assert torch.equal(ours_state[key].data, value), key


def test_linear_default_bounds():
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) gives exactly this bound
    for p in (layer.weight, layer.bias):
        assert p.data.abs().max().item() <= bound
        assert p.data.abs().max().item() > 0.95 * bound
    assert layer.weight.shape == (300, 400) and layer.bias.shape == (300,)


def test_layers_take_device_and_dtype():
    layer = nn.Linear(3, 2, dtype=torch.float64, device="cpu")
    assert layer.weight.dtype == torch.float64 and layer.bias.device.type == "cpu"
    norm = nn.BatchNorm1d(3, dtype=torch.float64)
    assert norm.running_mean.dtype == torch.float64
    assert norm.num_batches_tracked.dtype == torch.int64
