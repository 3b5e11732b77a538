"""Names torch scripts call that need no gradient of their own: `compile` (handgrad runs
eagerly, so the model comes back unchanged), the legacy typed constructors
(`LongTensor`, `FloatTensor`, ...), `dropout` (torch.dropout, the functional form) and
`cdist` (composed of proven ops: the broadcast difference and linalg.vector_norm, so its
backward is theirs, 0 at a zero distance as torch's).
"""

from __future__ import annotations

import torch

__all__ = ["compile", "LongTensor", "FloatTensor", "DoubleTensor", "IntTensor",
           "BoolTensor", "ByteTensor", "HalfTensor", "dropout", "cdist"]


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor",  # noqa: A001
            mode=None, options=None, disable=False):
    """torch.compile's signature. handgrad has no compiler: every op runs eagerly through
    its own Function, so `compile(model)` returns `model` itself (the same results, none
    of a compiled graph's speed), and `@compile` / `compile(mode=...)` decorate likewise."""
    if model is None:
        return lambda m: m
    return model


def _typed(name: str, dtype: torch.dtype):
    def constructor(*args, device=None):
        from handgrad._creation import empty, tensor
        if len(args) == 1 and not isinstance(args[0], int):
            return tensor(args[0], dtype=dtype, device=device)
        if all(isinstance(a, int) for a in args):
            return empty(*args, dtype=dtype, device=device)  # uninitialised, as torch's
        raise TypeError(f"{name}(): expected one sequence of data or integer sizes, got "
                        f"{tuple(type(a).__name__ for a in args)}; e.g. {name}([1, 2]) or "
                        f"{name}(2, 3)")
    constructor.__name__ = constructor.__qualname__ = name
    constructor.__doc__ = (f"torch.{name}, the legacy constructor: {name}(data) is "
                           f"handgrad.tensor(data, dtype={dtype}), {name}(*sizes) is "
                           f"handgrad.empty(*sizes, dtype={dtype}).")
    return constructor


LongTensor = _typed("LongTensor", torch.int64)
FloatTensor = _typed("FloatTensor", torch.float32)
DoubleTensor = _typed("DoubleTensor", torch.float64)
IntTensor = _typed("IntTensor", torch.int32)
BoolTensor = _typed("BoolTensor", torch.bool)
ByteTensor = _typed("ByteTensor", torch.uint8)
HalfTensor = _typed("HalfTensor", torch.float16)


def dropout(input, p, train):  # noqa: A002 -- torch's argument names
    """torch.dropout(input, p, train): handgrad's functional dropout with training=train."""
    from handgrad.nn.functional import dropout as functional_dropout
    return functional_dropout(input, p, training=train)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distance between each row of x1 (..., P, M) and each row of x2
    (..., R, M): out[..., i, j] = ||x1[..., i, :] - x2[..., j, :]||_p, as torch.cdist.
    Computed as the norm of the broadcast difference (exact, where torch's mm shortcut for
    p = 2 on large inputs rounds differently); `compute_mode` is accepted and changes
    nothing."""
    from handgrad.linalg import vector_norm
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D "
                           f"(shape {tuple(x1.shape)}), X2 got: {x2.ndim}D "
                           f"(shape {tuple(x2.shape)})")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]} (shapes {tuple(x1.shape)} "
                           f"and {tuple(x2.shape)})")
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    return vector_norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), p, dim=-1)
