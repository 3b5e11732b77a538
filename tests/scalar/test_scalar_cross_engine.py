"""The scalar engine and the tensor engine give the same gradients for the same small MLP.

The same weights go into a `handgrad.scalar.MLP` (one Value per number) and into weight
matrices of the tensor engine (`handgrad.tensor`); the same loss runs through both, and
every parameter's gradient must agree. Two nets: the lecture's (tanh throughout, squared
error) and the moons demo's (relu hidden layer, linear output, hinge loss + L2).
"""

from __future__ import annotations

import random

import pytest
import torch

import handgrad
from handgrad.scalar import LECTURE_XS, LECTURE_YS, MLP, Value, make_moons


def tensor_params(model: MLP):
    """One (W, b) pair of tensor-engine leaves per layer; W is (nin, nout), b is (nout,)."""
    params = []
    for layer in model.layers:
        w = [[n.w[i].data for n in layer.neurons] for i in range(layer.nin)]
        b = [n.b.data for n in layer.neurons]
        params.append((handgrad.tensor(torch.tensor(w, dtype=torch.float64), requires_grad=True),
                       handgrad.tensor(torch.tensor(b, dtype=torch.float64), requires_grad=True)))
    return params


def assert_same_grads(model: MLP, params) -> None:
    for layer, (w, b) in zip(model.layers, params):
        scalar_w = torch.tensor([[n.w[i].grad for n in layer.neurons] for i in range(layer.nin)],
                                dtype=torch.float64)
        scalar_b = torch.tensor([n.b.grad for n in layer.neurons], dtype=torch.float64)
        torch.testing.assert_close(w.grad.data, scalar_w, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(b.grad.data, scalar_b, rtol=1e-10, atol=1e-12)


def test_lecture_net_tanh_squared_error():
    model = MLP(3, [4, 4, 1], nonlin="tanh", output_nonlin="tanh", rng=random.Random(0))
    loss = Value.sum([(model(x) - y) ** 2 for x, y in zip(LECTURE_XS, LECTURE_YS)])
    loss.backward()

    params = tensor_params(model)
    h = handgrad.tensor(torch.tensor(LECTURE_XS, dtype=torch.float64))
    for w, b in params:
        h = (h @ w + b).tanh()
    y = handgrad.tensor(torch.tensor(LECTURE_YS, dtype=torch.float64).reshape(4, 1))
    tensor_loss = ((h - y) ** 2).sum()
    tensor_loss.backward()

    assert loss.data == pytest.approx(tensor_loss.data.item(), rel=1e-12)
    assert_same_grads(model, params)


def test_moons_net_relu_hinge_and_l2():
    xs, labels = make_moons(20, noise=0.1, random_state=0)
    ys = [2.0 * label - 1.0 for label in labels]
    model = MLP(2, [8, 8, 1], rng=random.Random(1))
    scores = [model(x) for x in xs]
    loss = (Value.sum([(1 - y * s).relu() for y, s in zip(ys, scores)]) * (1 / len(xs))
            + 1e-4 * Value.sum([p * p for p in model.parameters()]))
    loss.backward()

    params = tensor_params(model)
    h = handgrad.tensor(torch.tensor(xs, dtype=torch.float64))
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = h.relu()
    y = handgrad.tensor(torch.tensor(ys, dtype=torch.float64).reshape(-1, 1))
    reg = sum(((w * w).sum() + (b * b).sum() for w, b in params), start=0.0)
    tensor_loss = (1 - y * h).relu().sum() * (1 / len(xs)) + reg * 1e-4
    tensor_loss.backward()

    assert loss.data == pytest.approx(tensor_loss.data.item(), rel=1e-12)
    assert_same_grads(model, params)
