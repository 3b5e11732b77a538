"""Linear (the fully connected layer), Bilinear, Identity, Flatten and Unflatten: with
the activations, what an MLP is made of (and Unflatten what turns a vector back into an
image, in a decoder).

Linear's weight is (out_features, in_features), initialised as torch does it:
W ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with a = sqrt(5)), and the same range
for the bias. Bilinear's weight is (out_features, in1_features, in2_features), weight and
bias ~ U(-1/sqrt(in1), 1/sqrt(in1)), as torch's.

Left out: LazyLinear, Unflatten over named dims (handgrad has no named
tensors).
"""

from __future__ import annotations

import math

import torch

from handgrad.nn import init
from handgrad.nn.functional.linear import bilinear, linear
from handgrad.nn.module import Module, Parameter

__all__ = ["Linear", "Bilinear", "Identity", "Flatten", "Unflatten"]


class Identity(Module):
    """Returns its input unchanged (any constructor arguments are ignored)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b for x of shape (*, in_features): one fused graph node.

    forward is F.linear (as torch's), which holds the checks and their message."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        options = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.empty((out_features, in_features), **options))
        if bias:
            self.bias = Parameter(torch.empty(out_features, **options))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: W ~ U(-1/sqrt(in), 1/sqrt(in)) and b likewise."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Bilinear(Module):
    """y = x1^T A x2 + b for x1 of shape (*, in1_features) and x2 of shape
    (*, in2_features): y[..., o] = sum_ij x1[..., i] A[o, i, j] x2[..., j] + b[o].

    forward is F.bilinear (as torch's), which holds the checks."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        options = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.empty((out_features, in1_features, in2_features),
                                            **options))
        if bias:
            self.bias = Parameter(torch.empty(out_features, **options))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: A and b ~ U(-1/sqrt(in1), 1/sqrt(in1))."""
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one (default: everything but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim `dim` into `unflattened_size` (one entry may be -1), the inverse of
    Flatten: (N, 12) with Unflatten(1, (3, 2, 2)) -> (N, 3, 2, 2). A view (Reshape)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if isinstance(dim, str):
            raise TypeError(f"Unflatten: dim={dim!r} names a dim, but handgrad has no "
                            "named tensors; give the dim as an int")
        if not isinstance(unflattened_size, tuple | list):
            raise TypeError("Unflatten: unflattened_size must be tuple of ints, but found "
                            f"type {type(unflattened_size).__name__}")
        for i, size in enumerate(unflattened_size):
            if not isinstance(size, int):
                raise TypeError(
                    f"Unflatten: unflattened_size must be tuple of ints, but found element "
                    f"of type {type(size).__name__} at pos {i}")
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
