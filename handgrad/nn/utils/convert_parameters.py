"""nn.utils.parameters_to_vector and vector_to_parameters (torch.nn.utils' names and
meaning): all of a model's parameters as one flat vector, and back.

    vec = parameters_to_vector(model.parameters())   # differentiable, one cat of views
    vector_to_parameters(vec, model.parameters())    # each p.data = a view of vec

As in torch, vector_to_parameters does not copy: each parameter's `.data` becomes a view
of its slice of `vec` (so the parameters share `vec`'s storage afterwards), and nothing
is recorded for backward. Unlike torch, a vector longer than the parameters is refused
rather than silently cut (handgrad does not truncate silently); a shorter one is refused
as torch's view refuses it, with a message that says how many elements were needed.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from handgrad._functions import cat
from handgrad._tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _typename(value) -> str:
    """torch.typename's spelling: 'list', 'numpy.ndarray'."""
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else \
        f"{kind.__module__}.{kind.__qualname__}"


def _check_param_device(param, device: torch.device | None) -> torch.device:
    """The device every parameter must share (torch refuses a mix with a TypeError)."""
    if device is not None and param.device != device:
        raise TypeError("Found two parameters on different devices, this is currently not "
                        "supported.")
    return param.device


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """One 1-D tensor holding every parameter's elements, in iteration order (each
    parameter flattened in row-major order). It is a graph node: gradients flow back
    to the parameters."""
    device, pieces = None, []
    for param in parameters:
        device = _check_param_device(param, device)
        pieces.append(param.reshape(-1))
    if not pieces:  # torch's cat refuses an empty list with this error
        raise ValueError("torch.cat(): expected a non-empty list of Tensors "
                         "(parameters_to_vector got no parameters)")
    return cat(pieces)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Make each parameter's `.data` the next slice of `vec`, viewed in the parameter's
    shape (no copy, no autograd record, as torch's `param.data = ...`)."""
    if isinstance(vec, Tensor):
        raw = vec.data
    elif isinstance(vec, torch.Tensor):
        raw = vec.detach()
    else:
        raise TypeError(f"expected torch.Tensor, but got: {_typename(vec)} (pass a handgrad "
                        "Tensor, e.g. the result of parameters_to_vector)")
    if raw.ndim != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-D (as parameters_to_vector "
                         f"makes it), got shape {tuple(raw.shape)}")
    device, pointer = None, 0
    for param in parameters:
        device = _check_param_device(param, device)
        count = param.numel()
        if pointer + count > raw.numel():
            raise RuntimeError(
                f"vector_to_parameters: vec has {raw.numel()} elements, fewer than the "
                f"parameters need (parameter of shape {tuple(param.shape)} needs elements "
                f"{pointer}..{pointer + count - 1}); pass parameters_to_vector of the same "
                "parameters")
        param.data = raw[pointer:pointer + count].view_as(param.data)
        pointer += count
    if pointer != raw.numel():
        raise RuntimeError(
            f"vector_to_parameters: vec has {raw.numel()} elements but the parameters hold "
            f"{pointer}; the extra elements would be ignored. Pass parameters_to_vector of "
            "the same parameters")
