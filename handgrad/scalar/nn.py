"""A tiny neural-network library on top of `Value`: Neuron, Layer, MLP.

Neuron(nin) computes nonlin(w . x + b) with one `Value.sum` node for the dot product
plus bias; Layer is a list of Neurons fed the same input; MLP is a stack of Layers.
Each module lists its `parameters()` and can `zero_grad()` them. Weights start uniform
in [-1, 1] and biases at 0, as in micrograd, drawn from `rng` (a `random.Random`) or
from the `random` module when none is given, so `random.seed(...)` makes a run repeatable.

What it leaves out: optimizers (update `p.data -= lr * p.grad` yourself; that loop is
the point), batching, and everything else in the tensor engine's `handgrad.nn`.
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Sequence
from operator import mul

from handgrad.scalar.engine import Value

__all__ = ["Module", "Neuron", "Layer", "MLP"]

# Activation name -> the Value method that applies it ("linear": none).
NONLINEARITIES = {
    "relu": Value.relu,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "leaky_relu": Value.leaky_relu,
    "linear": None,
}


def _nonlin_name(nonlin: str | bool) -> str:
    if nonlin is True or nonlin is False:  # micrograd's spelling: True = relu, False = linear
        return "relu" if nonlin else "linear"
    if nonlin not in NONLINEARITIES:
        raise ValueError(f"Neuron: unknown nonlin {nonlin!r}; choose one of "
                         f"{', '.join(map(repr, NONLINEARITIES))} (or True/False for relu/linear)")
    return nonlin


class Module:
    """Base class: a module lists its parameters and can reset their gradients."""

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        """Set every parameter's grad to 0 (gradients accumulate across backward calls)."""
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """nonlin(w . x + b) for an input x of `nin` numbers or Values."""

    def __init__(self, nin: int, nonlin: str | bool = "relu", rng: random.Random | None = None,
                 label: str = "") -> None:
        if not isinstance(nin, numbers.Integral) or nin < 0:
            raise ValueError(f"Neuron({nin!r}): nin is the number of inputs, an int 0 or more")
        uniform = (rng or random).uniform
        self.nin = nin
        self.nonlin = _nonlin_name(nonlin)
        self._activation = NONLINEARITIES[self.nonlin]
        self.w = [Value(uniform(-1, 1), label=f"{label}w{i}") for i in range(nin)]
        self.b = Value(0.0, label=f"{label}b")

    def __call__(self, x: Sequence[Value | float]) -> Value:
        if len(x) != self.nin:  # zip would silently drop the extra weights or inputs
            raise ValueError(f"Neuron({self.nin}) got an input of {len(x)} numbers; "
                             f"it expects {self.nin}")
        act = Value.sum((self.b, *map(mul, self.w, x)))  # b + w0*x0 + w1*x1 + ...
        return self._activation(act) if self._activation else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"Neuron({self.nin}, {self.nonlin})"


class Layer(Module):
    """`nout` Neurons that all read the same input.

    Returns a list of `nout` Values, or a single Value when nout == 1 (as micrograd does,
    so `loss = (model(x) - y) ** 2` reads naturally).
    """

    def __init__(self, nin: int, nout: int, nonlin: str | bool = "relu",
                 rng: random.Random | None = None, label: str = "") -> None:
        if not isinstance(nout, numbers.Integral) or nout < 1:
            raise ValueError(f"Layer({nin!r}, {nout!r}): nout is the number of neurons, "
                             "an int of at least 1")
        self.nin, self.nout = nin, nout
        self.neurons = [Neuron(nin, nonlin, rng, label=f"{label}n{j}.") for j in range(nout)]
        self.nonlin = self.neurons[0].nonlin

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer({self.nin} -> {self.nout}, {self.nonlin})"


class MLP(Module):
    """Layers of sizes nin -> nouts[0] -> ... -> nouts[-1].

    Hidden layers use `nonlin`; the last layer uses `output_nonlin`. The defaults (relu
    hidden, linear output) are micrograd's; the lecture's net is tanh throughout:
    `MLP(3, [4, 4, 1], nonlin="tanh", output_nonlin="tanh")`.
    """

    def __init__(self, nin: int, nouts: Sequence[int], nonlin: str | bool = "relu",
                 output_nonlin: str | bool = "linear", rng: random.Random | None = None) -> None:
        nouts = list(nouts)
        if not nouts:
            raise ValueError(f"MLP({nin!r}, []): give at least one layer size, "
                             "as in MLP(2, [16, 16, 1])")
        if not all(isinstance(n, numbers.Integral) and n >= 1 for n in nouts):
            raise ValueError(f"MLP({nin!r}, {nouts!r}): every layer size must be an int of "
                             "at least 1")
        sizes = [nin, *nouts]
        self.layers = [
            Layer(sizes[i], sizes[i + 1], nonlin if i < len(nouts) - 1 else output_nonlin, rng,
                  label=f"L{i}.")
            for i in range(len(nouts))
        ]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        for layer in self.layers:
            x = [n(x) for n in layer.neurons]  # a list even for one neuron, to feed the next
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        lines = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"MLP({lines}\n)"
