"""Neuron, Layer, MLP: parameters, zero_grad, reprs, errors, and the two examples' goals."""

from __future__ import annotations

import random

import pytest
import torch

from handgrad.scalar import MLP, Layer, Neuron, Value
from handgrad.scalar.train import moons_loss, train_lecture, train_moons


def test_parameters_counts_and_order():
    model = MLP(2, [16, 16, 1])
    assert len(model.parameters()) == (2 + 1) * 16 + (16 + 1) * 16 + (16 + 1) * 1 == 337
    neuron = Neuron(3)
    assert neuron.parameters() == [*neuron.w, neuron.b]
    layer = Layer(3, 4)
    assert layer.parameters() == [p for n in layer.neurons for p in n.parameters()]
    assert len({id(p) for p in model.parameters()}) == 337  # no parameter listed twice


def test_forward_matches_the_formula():
    neuron = Neuron(3, nonlin="tanh", rng=random.Random(0))
    x = [0.5, -1.0, 2.0]
    expected = torch.tanh(torch.tensor([w.data for w in neuron.w], dtype=torch.float64)
                          @ torch.tensor(x, dtype=torch.float64) + neuron.b.data)
    assert neuron(x).data == pytest.approx(expected.item(), rel=1e-12)
    assert isinstance(Layer(3, 1)(x), Value)  # one neuron: a Value, as in micrograd
    assert len(Layer(3, 2)(x)) == 2


def test_an_mlp_with_a_one_neuron_hidden_layer():
    model = MLP(2, [1, 3])  # micrograd fails here: its 1-neuron layer returns a bare Value
    assert len(model([1.0, 2.0])) == 3


@pytest.mark.parametrize("nonlin, expected", [
    ("relu", lambda a: max(a, 0.0)), ("linear", lambda a: a), (True, lambda a: max(a, 0.0)),
    (False, lambda a: a), ("sigmoid", lambda a: torch.sigmoid(torch.tensor(a)).item()),
    ("leaky_relu", lambda a: a if a > 0 else 0.01 * a),
])
def test_nonlinearities(nonlin, expected):
    neuron = Neuron(1, nonlin=nonlin)
    neuron.w[0].data, neuron.b.data = 1.0, 0.0
    for a in (-2.0, 3.0):
        assert neuron([a]).data == pytest.approx(expected(a))


def test_zero_grad_resets_every_parameter():
    model = MLP(3, [4, 1], nonlin="tanh", rng=random.Random(0))
    out = model([1.0, 2.0, 3.0])
    (out * out).backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_reprs_are_readable():
    model = MLP(3, [4, 4, 1], nonlin="tanh", output_nonlin="tanh")
    assert repr(model) == ("MLP(\n  (0): Layer(3 -> 4, tanh)\n  (1): Layer(4 -> 4, tanh)\n"
                           "  (2): Layer(4 -> 1, tanh)\n)")
    assert repr(Neuron(2)) == "Neuron(2, relu)"
    assert repr(MLP(2, [16, 1]).layers[-1]) == "Layer(16 -> 1, linear)"


def test_misuse_is_a_clear_error():
    with pytest.raises(ValueError, match="expects 3"):
        Neuron(3)([1.0, 2.0])  # micrograd's zip would silently drop a weight
    with pytest.raises(ValueError, match="unknown nonlin 'gelu'"):
        Neuron(3, nonlin="gelu")
    with pytest.raises(ValueError, match=r"Layer\(2, 0\).*at least 1"):
        Layer(2, 0)  # would return an empty list
    with pytest.raises(ValueError, match=r"MLP\(2, \[\]\).*at least one layer"):
        MLP(2, [])  # would return its input unchanged
    with pytest.raises(ValueError, match=r"MLP\(2, \[4, 0, 1\]\).*at least 1"):
        MLP(2, [4, 0, 1])
    with pytest.raises(ValueError, match=r"Neuron\(-1\).*0 or more"):
        Neuron(-1)


def test_seeded_models_are_reproducible():
    a = MLP(2, [3, 1], rng=random.Random(7))
    b = MLP(2, [3, 1], rng=random.Random(7))
    assert [p.data for p in a.parameters()] == [p.data for p in b.parameters()]
    assert all(-1 <= p.data <= 1 for p in a.parameters())
    assert all(n.b.data == 0.0 for layer in a.layers for n in layer.neurons)


def test_lecture_example_goes_below_1e_4_within_100_steps():
    model, losses = train_lecture(steps=100)
    assert losses[-1] < 1e-4 and len(losses) <= 100
    assert losses[0] > 1.0


def test_moons_loss_matches_torch():
    """The demo's hinge + L2 loss and its gradients, against the same net in torch."""
    model = MLP(2, [3, 1], rng=random.Random(3))
    xs = [[0.5, -0.2], [1.5, 0.3], [-0.7, 0.9], [0.1, 0.1]]
    ys = [1.0, -1.0, 1.0, -1.0]
    loss, accuracy = moons_loss(model, xs, ys)
    model.zero_grad()
    loss.backward()

    def t(values):
        return torch.tensor(values, dtype=torch.float64, requires_grad=True)

    hidden, out = model.layers
    w1 = t([[w.data for w in n.w] for n in hidden.neurons])
    b1 = t([n.b.data for n in hidden.neurons])
    w2 = t([[w.data for w in n.w] for n in out.neurons])
    b2 = t([n.b.data for n in out.neurons])
    x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
    scores = ((x @ w1.T + b1).relu() @ w2.T + b2).squeeze(1)
    expected = (1 - y * scores).relu().mean() + 1e-4 * sum((p * p).sum() for p in (w1, b1, w2, b2))
    expected.backward()
    assert loss.data == pytest.approx(expected.item(), rel=1e-12)
    assert accuracy == ((scores > 0) == (y > 0)).double().mean().item()
    grads = [[w.grad for w in n.w] for n in hidden.neurons]
    assert torch.tensor(grads, dtype=torch.float64).allclose(w1.grad, rtol=1e-10)
    assert torch.tensor([n.b.grad for n in out.neurons]).allclose(b2.grad.float(), rtol=1e-6)


@pytest.mark.slow
def test_moons_demo_reaches_100_percent_training_accuracy():
    model, xs, ys, history = train_moons(steps=100)  # about 10 s on a laptop core
    loss, accuracy = history[-1]
    assert accuracy == 1.0
    assert loss < history[0][0] / 10


def test_moons_demo_learns_in_a_few_steps():
    _, _, _, history = train_moons(steps=5, n_samples=30)
    assert history[-1][0] < history[0][0]
