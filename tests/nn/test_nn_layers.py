"""Every layer against its torch.nn twin with copied weights: outputs, input and parameter
gradients, buffers; train and eval mode; float32 and float64 (the `dtype` fixture)."""

from __future__ import annotations

import pytest
import torch

import handgrad as hg
from handgrad import nn
from tests.torch_compare import assert_close, compare_modules


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape, bias", [((4, 5), True), ((2, 3, 5), True), ((5,), True),
                                         ((4, 5), False)])
def test_linear(dtype, train, shape, bias):
    compare_modules(nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias),
                    _randn(*shape), dtype=dtype, train=train)


def test_identity_and_flatten(dtype):
    x = _randn(2, 3, 4, 5)
    compare_modules(nn.Identity(7, key="ignored"), torch.nn.Identity(7, key="ignored"), x,
                    dtype=dtype)
    compare_modules(nn.Flatten(), torch.nn.Flatten(), x, dtype=dtype)
    compare_modules(nn.Flatten(0, 2), torch.nn.Flatten(0, 2), x, dtype=dtype)


ACTIVATIONS = [
    ("ReLU", (), {}), ("LeakyReLU", (0.2,), {}), ("ELU", (), {"alpha": 0.7}),
    ("GELU", (), {}), ("GELU", (), {"approximate": "tanh"}), ("SiLU", (), {}),
    ("Sigmoid", (), {}), ("Tanh", (), {}), ("Softplus", (), {"beta": 2.0, "threshold": 3.0}),
    ("Softmax", (), {"dim": 1}), ("LogSoftmax", (), {"dim": -1}),
]


@pytest.mark.parametrize("name, args, kwargs", ACTIVATIONS,
                         ids=[f"{n}{k or ''}" for n, _, k in ACTIVATIONS])
def test_activation(dtype, name, args, kwargs):
    x = _randn(4, 6)
    x = x + 0.1 * torch.sign(x)  # away from the kinks at 0
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    compare_modules(ours, theirs, x, dtype=dtype)


def test_softmax_without_dim_follows_torchs_legacy_rule():
    x = _randn(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = nn.Softmax()(hg.tensor(x))
    with pytest.warns(UserWarning):
        expected = torch.nn.Softmax()(x)
    assert_close(out, expected, torch.float64, "softmax(dim=None)")


# ------------------------------------------------------------------ batch norm
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("options", [
    {}, {"affine": False}, {"track_running_stats": False}, {"momentum": None},
    {"eps": 1e-3, "momentum": 0.3}, {"bias": False},
], ids=["default", "no-affine", "no-running-stats", "cumulative", "eps-momentum", "no-bias"])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
def test_batch_norm_1d(dtype, train, options, shape):
    ours, theirs = nn.BatchNorm1d(3, **options), torch.nn.BatchNorm1d(3, **options)
    if options.get("affine", True):  # not the default 1 and 0, so they matter
        with hg.no_grad():
            ours.weight.data.uniform_(0.5, 1.5)
            if ours.bias is not None:
                ours.bias.data.normal_()
    if ours.running_mean is not None:
        ours.running_mean.data.normal_()
        ours.running_var.data.uniform_(0.5, 2.0)
    assert repr(ours) == repr(theirs)
    x = 2 * _randn(*shape) + 1
    compare_modules(ours, theirs, x, dtype=dtype, train=train, steps=3)


def test_batch_norm_train_then_eval_uses_running_statistics(dtype):
    ours, theirs = nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4)
    compare_modules(ours, theirs, 3 * _randn(16, 4) - 1, dtype=dtype, train=True, steps=4)
    assert int(ours.num_batches_tracked.item()) == 4
    compare_modules(ours, theirs, _randn(5, 4, seed=1), dtype=dtype, train=False)
    assert int(ours.num_batches_tracked.item()) == 4


def test_batch_norm_2d(dtype):
    ours, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    compare_modules(ours, theirs, _randn(2, 3, 4, 5), dtype=dtype, train=True, steps=2)
    compare_modules(ours, theirs, _randn(2, 3, 4, 5), dtype=dtype, train=False)


def test_batch_norm_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(hg.randn(1, 3))
    nn.BatchNorm1d(3).eval()(hg.randn(1, 3))  # fine in eval mode


# ------------------------------------------------------------------ layer norm
@pytest.mark.parametrize("normalized_shape, options", [
    (6, {}), ((3, 6), {}), (6, {"elementwise_affine": False}), (6, {"bias": False}),
    ((6,), {"eps": 1e-2}),
])
def test_layer_norm(dtype, normalized_shape, options):
    ours = nn.LayerNorm(normalized_shape, **options)
    theirs = torch.nn.LayerNorm(normalized_shape, **options)
    if ours.weight is not None:
        ours.weight.data.uniform_(0.5, 1.5)
    if ours.bias is not None:
        ours.bias.data.normal_()
    assert repr(ours) == repr(theirs)
    compare_modules(ours, theirs, _randn(2, 3, 6), dtype=dtype)


# ------------------------------------------------------------------ dropout
def test_dropout_matches_torch_bit_for_bit_on_cpu_with_the_same_seed(dtype):
    ours, theirs = nn.Dropout(0.3), torch.nn.Dropout(0.3)
    x = _randn(50, 40).to(dtype)
    hg.manual_seed(7)
    xh = hg.tensor(x, requires_grad=True)
    out = ours(xh)
    torch.manual_seed(7)
    xt = x.clone().requires_grad_()
    expected = theirs(xt)
    assert torch.equal(out.data, expected)
    g = _randn(50, 40, seed=1).to(dtype)
    out.backward(g)
    expected.backward(g)
    assert torch.equal(xh.grad.data, xt.grad)
    kept = (out.data != 0).double().mean().item()
    assert 0.6 < kept < 0.8


def test_dropout_eval_and_edge_probabilities():
    x = hg.randn(4, 5, requires_grad=True)
    assert nn.Dropout(0.5).eval()(x) is x
    assert nn.Dropout(0.0)(x) is x
    zeros = nn.Dropout(1.0)(x)
    assert torch.equal(zeros.data, torch.zeros(4, 5))
    zeros.sum().backward()
    assert torch.equal(x.grad.data, torch.zeros(4, 5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_dropout_generator_makes_it_reproducible():
    x = hg.ones(100)
    masks = [nn.Dropout(0.5, generator=torch.Generator().manual_seed(3))(x).data
             for _ in range(2)]
    assert torch.equal(masks[0], masks[1])
    assert set(masks[0].unique().tolist()) == {0.0, 2.0}


# ------------------------------------------------------------------ embedding
@pytest.mark.parametrize("options", [
    {}, {"padding_idx": 2}, {"padding_idx": -1}, {"scale_grad_by_freq": True},
    {"max_norm": 1.0}, {"max_norm": 0.5, "norm_type": 1.0},
])
def test_embedding(dtype, options):
    ours, theirs = nn.Embedding(6, 4, **options), torch.nn.Embedding(6, 4, **options)
    assert repr(ours) == repr(theirs)
    indices = torch.tensor([[0, 2, 5, 2], [1, 2, 3, 5]])
    compare_modules(ours, theirs, indices, dtype=dtype, steps=2)
    if "max_norm" in options:  # the rows used were renormalised in place, as in torch
        assert_close(ours.weight, theirs.weight, dtype, "renormalised weight")


def test_embedding_padding_row_starts_at_zero_and_learns_nothing():
    emb = nn.Embedding(5, 3, padding_idx=0)
    assert torch.equal(emb.weight.data[0], torch.zeros(3))
    emb(hg.tensor([[0, 1, 0]])).sum().backward()
    assert torch.equal(emb.weight.grad.data[0], torch.zeros(3))
    assert torch.equal(emb.weight.grad.data[1], torch.ones(3))


def test_embedding_from_pretrained_is_frozen_by_default():
    table = hg.randn(4, 2)
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad
    assert torch.equal(emb(hg.tensor([3])).data, table.data[3:4])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


# ------------------------------------------------------------------ MLP
def _torch_mlp(sizes, batch_norm=False, dropout=0.0):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(torch.nn.BatchNorm1d(b))
            layers.append(torch.nn.ReLU())
            if dropout:
                layers.append(torch.nn.Dropout(dropout))
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("batch_norm, dropout", [(False, 0.0), (True, 0.0), (True, 0.2)])
def test_mlp_matches_the_same_torch_sequential(dtype, train, batch_norm, dropout):
    ours = nn.MLP(12, [16, 8], 5, batch_norm=batch_norm, dropout=dropout)
    theirs = _torch_mlp((12, 16, 8, 5), batch_norm, dropout)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours).replace("MLP", "Sequential", 1) == repr(theirs)
    x = _randn(10, 12)
    if dropout and train:  # same seed, same masks (CPU): one step, reseeded on each side
        ours.to(dtype)
        theirs.to(dtype).load_state_dict({k: v.data for k, v in ours.state_dict().items()})
        hg.manual_seed(0)
        out = ours(hg.tensor(x.to(dtype)))
        torch.manual_seed(0)
        assert_close(out, theirs(x.to(dtype)), dtype, "MLP with dropout, training")
        return
    compare_modules(ours, theirs, x, dtype=dtype, train=train, steps=2)


def test_mlp_builder_options():
    mlp = nn.MLP(4, 8, 2, activation=nn.Tanh)
    assert [type(m).__name__ for m in mlp] == ["Linear", "Tanh", "Linear"]
    mlp = nn.MLP(4, [8, 8], 2, activation=nn.LeakyReLU(0.2), dropout=0.1)
    names = [type(m).__name__ for m in mlp]
    assert names == ["Linear", "LeakyReLU", "Dropout", "Linear", "LeakyReLU", "Dropout",
                     "Linear"]
    assert mlp[1] is not mlp[4] and mlp[4].negative_slope == 0.2
    assert (mlp.in_features, mlp.hidden_sizes, mlp.out_features) == (4, (8, 8), 2)
    assert nn.MLP(3, [], 2)[0].in_features == 3  # no hidden layer: logistic regression
