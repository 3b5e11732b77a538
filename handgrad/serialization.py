"""handgrad.save / handgrad.load: torch's two names, on handgrad's checkpoint format
(safetensors for the tensors, JSON for the rest, one file), never pickle.

This is the safe default for saving: loading never runs code from the file (a pickle
can run anything it holds), every tensor and the metadata are checked against sha256
checksums before anything is returned, writing is atomic (a crash leaves the old file
or the new one), and any safetensors tool reads the weights.

What it holds: a tensor (handgrad or torch), a state_dict, and nested dicts (string,
int, float, bool, None or tuple keys), lists, tuples, ints, floats, strs, bools, None
and numpy arrays. What it leaves out: anything else (Modules, optimizers, functions:
save their state_dict()), and the autograd state of a tensor: tensors come back as
leaves that do not require grad, as a state_dict holds them. The format and its checks
are handgrad.train.checkpoint's (save_state / load_state); this module only gives them
torch's names and arguments. For torch.save / torch.load on handgrad tensors (pickle),
see Tensor.__reduce_ex__.
"""

from __future__ import annotations

import importlib
import os

import torch

__all__ = ["save", "load"]


def _checkpoint():
    # The format lives in handgrad.train.checkpoint (it imports nothing above tensors).
    return importlib.import_module("handgrad.train.checkpoint")


def save(obj, f: str | os.PathLike) -> None:
    """Write `obj` (a tensor, a state_dict, nested containers of those and plain values)
    to the path `f`, atomically, as safetensors + JSON with checksums; never pickle.
    Like torch.save's, but `f` must be a path (the write is atomic only for a file of
    its own) and the objects are the ones listed in the module docstring."""
    if not isinstance(f, str | os.PathLike):
        raise TypeError(f"handgrad.save: f must be a path (str or os.PathLike), got "
                        f"{type(f).__name__}; handgrad writes files atomically, which a "
                        f"file object does not allow")
    _checkpoint().save_state(f, obj)


def load(f: str | os.PathLike, map_location=None, *, weights_only: bool = True):
    """What handgrad.save wrote to `f`, tensors as handgrad Tensors on `map_location`
    (a device or its name; None: the CPU). Every checksum is verified first, and nothing
    is ever unpickled (so weights_only=False is refused: use torch.load for pickles you
    trust). A torch.save (pickle) file is refused with an error that says so."""
    if not weights_only:
        raise ValueError("handgrad.load: weights_only=False would mean unpickling, which "
                         "handgrad never does; use torch.load(f, weights_only=False) for "
                         "a pickle file you trust")
    if map_location is None:
        map_location = "cpu"
    if not isinstance(map_location, str | torch.device):
        raise TypeError(f"handgrad.load: map_location must be a device or its name (e.g. "
                        f"'cpu', 'cuda:0'), got {type(map_location).__name__}")
    return _checkpoint().load_state(f, device=map_location)
