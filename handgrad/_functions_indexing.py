"""Free functions of the indexing family, as torch's (`handgrad.f(x, ...)`); they
delegate to the Tensor methods (handgrad/_tensor_indexing.py) and the ops.

repeat_interleave also takes torch's one-argument form: repeat_interleave(repeats), a
1-d int tensor, gives 0 repeated repeats[0] times, 1 repeated repeats[1] times, ...
"""

from __future__ import annotations

import torch

from handgrad._tensor import Tensor

__all__ = [
    "scatter", "scatter_add", "index_add", "index_put", "index_put_", "index_fill",
    "masked_select",
    "take_along_dim", "nonzero", "argwhere", "repeat_interleave", "tile", "roll",
    "unique", "multinomial", "unbind", "narrow", "movedim", "moveaxis", "swapaxes",
    "swapdims",
]


def _method(name: str):
    def function(x, *args, **kwargs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a handgrad Tensor, got {type(x).__name__}")
        return getattr(x, name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"handgrad.{name}(x, ...) = x.{name}(...), as torch.{name}."
    return function


scatter = _method("scatter")
scatter_add = _method("scatter_add")
index_add = _method("index_add")
index_put = _method("index_put")
index_put_ = _method("index_put_")
index_fill = _method("index_fill")
masked_select = _method("masked_select")
take_along_dim = _method("take_along_dim")
nonzero = _method("nonzero")
argwhere = _method("argwhere")
tile = _method("tile")
roll = _method("roll")
unique = _method("unique")
multinomial = _method("multinomial")
unbind = _method("unbind")
narrow = _method("narrow")
movedim = _method("movedim")
moveaxis = _method("moveaxis")
swapaxes = _method("swapaxes")
swapdims = _method("swapdims")


def repeat_interleave(x, repeats=None, dim=None, *, output_size=None):
    """x.repeat_interleave(repeats, dim); with repeats left out, x holds the repeats
    and the result repeats 0, 1, ... that many times (int64, no gradient)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"repeat_interleave: expected a handgrad Tensor, got "
                        f"{type(x).__name__}")
    if repeats is None:
        data = torch.repeat_interleave(x.data, output_size=output_size)
        return Tensor._make(data, False, None)
    return x.repeat_interleave(repeats, dim, output_size=output_size)
