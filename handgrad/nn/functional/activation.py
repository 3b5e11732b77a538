"""Activation functions as plain functions (PyTorch's functional API's names and arguments).

Each one is a primitive of the tensor core (handgrad/ops, reached through the Tensor
method of the same name), so it is not defined again here: these wrappers only give
PyTorch's functional API's spelling. `inplace=True` is accepted for compatibility and
computes out of place (same values, same gradients).

Left out: the activations as modules (handgrad/nn/activation.py).
"""

from __future__ import annotations

import warnings


def relu(input, inplace=False):
    """max(x, 0)."""
    return input.relu()


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x if x > 0 else negative_slope * x."""
    return input.leaky_relu(negative_slope)


def elu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha (e**x - 1)."""
    return input.elu(alpha)


def gelu(input, approximate="none"):
    """x Phi(x) (approximate='tanh': the tanh approximation)."""
    return input.gelu(approximate)


def silu(input, inplace=False):
    """x sigmoid(x)."""
    return input.silu()


def sigmoid(input):
    """1 / (1 + e**-x)."""
    return input.sigmoid()


def tanh(input):
    return input.tanh()


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + e**(beta x)) / beta (x itself where beta x > threshold)."""
    return input.softplus(beta, threshold)


def _softmax_dim(name: str, ndim: int, dim):
    """torch's legacy rule when dim is not given (with its warning): 0 for 0-, 1- and
    3-D inputs, else 1."""
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the "
                  "call to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, dtype=None):
    """e**x / sum e**x along dim (the primitive Softmax node)."""
    if dtype is not None:
        input = input.to(dtype)
    return input.softmax(_softmax_dim("softmax", input.ndim, dim))


def log_softmax(input, dim=None, dtype=None):
    """x - logsumexp(x) along dim (the primitive LogSoftmax node)."""
    if dtype is not None:
        input = input.to(dtype)
    return input.log_softmax(_softmax_dim("log_softmax", input.ndim, dim))
