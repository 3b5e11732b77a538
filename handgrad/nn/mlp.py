"""MLP: the multi-layer perceptron builder of the from-scratch tutorials.

    MLP(784, [256, 256], 10)
    = Sequential(Linear(784, 256), ReLU(), Linear(256, 256), ReLU(), Linear(256, 10))

Each hidden block is Linear -> [BatchNorm1d] -> activation -> [Dropout]; the output
layer is a bare Linear (the loss applies softmax or sigmoid). An MLP is a Sequential,
so its state_dict keys ("0.weight", "2.bias", ...) are those of the same PyTorch
Sequential, and weights move between the two.

Left out: per-layer activations or widths of dropout; residual connections.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from handgrad.nn.activation import ReLU
from handgrad.nn.container import Sequential
from handgrad.nn.dropout import Dropout
from handgrad.nn.linear import Linear
from handgrad.nn.module import Module
from handgrad.nn.normalization import BatchNorm1d

__all__ = ["MLP"]


class MLP(Sequential):
    """A stack of fully connected layers with an activation between them.

    Args:
        in_features: size of each input sample.
        hidden_sizes: widths of the hidden layers (an int for one hidden layer).
        out_features: size of each output (e.g. the number of classes).
        activation: a Module class or factory called once per hidden layer (default
            nn.ReLU), or a Module instance, copied for each layer.
        batch_norm: put a BatchNorm1d after each hidden Linear.
        dropout: dropout probability after each hidden activation (0: none).
    """

    def __init__(self, in_features: int, hidden_sizes: int | Sequence[int], out_features: int,
                 activation: Callable[[], Module] | Module = ReLU, batch_norm: bool = False,
                 dropout: float = 0.0):
        if isinstance(hidden_sizes, int):
            hidden_sizes = [hidden_sizes]
        layers: list[Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers.append(Linear(width, hidden))
            if batch_norm:
                layers.append(BatchNorm1d(hidden))
            layers.append(copy.deepcopy(activation) if isinstance(activation, Module)
                          else activation())
            if dropout > 0:
                layers.append(Dropout(dropout))
            width = hidden
        layers.append(Linear(width, out_features))
        super().__init__(*layers)
        self.in_features = in_features
        self.hidden_sizes = tuple(hidden_sizes)
        self.out_features = out_features
