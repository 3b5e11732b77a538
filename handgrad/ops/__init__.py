"""Primitive Functions, each a forward with its hand-written backward, by family.

These work on raw torch tensors and never import handgrad.tensor; tensor.py wires
them into the graph.
"""

from handgrad.ops.elementwise import (  # noqa: F401
    Abs,
    Add,
    Clamp,
    Clone,
    Cos,
    Div,
    Elu,
    Exp,
    Gelu,
    LeakyRelu,
    Log,
    MaskedFill,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    Relu,
    Rsqrt,
    Sigmoid,
    Silu,
    Sin,
    Softplus,
    Sqrt,
    Sub,
    Tanh,
    To,
    Where,
)
from handgrad.ops.matmul import Matmul  # noqa: F401
from handgrad.ops.movement import (  # noqa: F401
    Cat,
    Expand,
    Flip,
    Gather,
    GetItem,
    IndexSelect,
    Pad,
    Permute,
    Repeat,
    Reshape,
    Stack,
    Transpose,
    Tril,
    Triu,
)
from handgrad.ops.reduce import (  # noqa: F401
    AmaxAmin,
    LogSoftmax,
    LogSumExp,
    MaxAll,
    MaxDim,
    Mean,
    Norm,
    Softmax,
    Std,
    Sum,
    Var,
)
