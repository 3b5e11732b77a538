"""The two conversions the data pipeline needs between handgrad and torch tensors.

Datasets may hold handgrad Tensors, torch tensors, numpy arrays or numbers. Inside the
pipeline everything is a raw torch tensor (fast to slice and stack); a batch is wrapped
into a handgrad ``Tensor`` exactly once, when it leaves the collate function. Nothing
here records autograd history: data is never part of a graph.
"""

from __future__ import annotations

import torch


def tensor_class():
    """The handgrad ``Tensor`` class, imported on first use (data sits above tensor)."""
    from handgrad._tensor import Tensor

    return Tensor


def is_handgrad_tensor(x) -> bool:
    return isinstance(x, tensor_class())


def to_torch(x) -> torch.Tensor:
    """The raw torch tensor behind a handgrad Tensor; a torch tensor is returned as is."""
    from handgrad._tensor import to_torch

    return to_torch(x, "data")


def wrap(t: torch.Tensor):
    """A handgrad Tensor (no grad) around the torch tensor ``t``."""
    return tensor_class()(t)
