"""F.pad: padding with torch's modes, semantics and errors, composed from primitives.

    pad(input, pad, mode='constant', value=None)

`pad` lists (left, right) pairs from the last dim backwards: (w_lo, w_hi, h_lo, h_hi, ...).

    constant   any number of trailing dims; a negative amount crops (a slice), a positive
               one surrounds with `value` (the Pad primitive)
    reflect    mirror without repeating the edge: [a b c d], pad 2 -> c b [a b c d] c b;
               each amount below the dim's size
    replicate  repeat the edge: a a [a b c d] d d; any amount
    circular   wrap around: c d [a b c d] a b; negative amounts crop first and the
               wrap-around then copies from what is left (torch's order), each positive
               amount at most that size
The three non-constant modes pad the last 1, 2 or 3 dims of a batched or unbatched input
(2-d or 3-d input for 1 pair, 3-d or 4-d for 2, 4-d or 5-d for 3), as torch allows.

Each of them is one index_select per padded dim: padded position q (from -lo to
size + hi - 1) copies input position source(q), e.g. reflect's |q| folded back at the
high end. The gradient comes from the primitive: index_select's backward index-adds g
back, so an input element copied m times gets the sum of its m gradients. That is why
no fused Function lives here: the composition is already one node per dim.

Left out: 'reflect' / 'replicate' / 'circular' for more than 3 dims (torch has none).
"""

from __future__ import annotations

import torch

from handgrad._functions import pad as _surround
from handgrad.autograd import HandgradError

__all__ = ["pad", "MODES"]

MODES = ("constant", "reflect", "replicate", "circular")


def _source_index(size: int, lo: int, hi: int, mode: str, device) -> torch.Tensor:
    """For padded positions -lo .. size + hi - 1: the input position each one copies."""
    index = torch.arange(-lo, size + hi, device=device)
    if mode == "circular":
        return index % size
    if mode == "replicate":
        return index.clamp(0, size - 1)
    index = index.abs()  # reflect: -1 -> 1, size -> size - 2 (the edge is not repeated)
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def _pairs(op: str, input, pad) -> list[tuple[int, int, int]]:
    """pad as [(dim, lo, hi), ...], last dim first, after torch's checks of its length."""
    if isinstance(pad, int) or not all(isinstance(p, int) for p in pad):
        raise TypeError(f"{op}(): argument 'pad' must be a tuple of ints, got {pad!r}")
    pad = tuple(pad)
    if len(pad) % 2:
        raise HandgradError(f"{op}: Padding length must be divisible by 2, got pad={pad} "
                            f"(pairs of (left, right), the last dim first)")
    if len(pad) // 2 > input.ndim:
        raise HandgradError(
            f"{op}: Padding length should be less than or equal to two times the input "
            f"dimension but got padding length {len(pad)} and input of dimension "
            f"{input.ndim} (input of shape {list(input.shape)})")
    return [(input.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]


def _constant(input, pairs, value):
    """Crop the negative amounts (a slice), then surround with value (Pad)."""
    index = [slice(None)] * input.ndim
    for dim, lo, hi in pairs:
        size = input.shape[dim]
        if size + lo + hi < 0:
            raise HandgradError(
                f"pad: the input size {size}, plus negative padding {lo} and {hi} resulted "
                f"in a negative output size, which is invalid. Check dimension {dim} of "
                f"your input (shape {list(input.shape)})")
        if lo < 0 or hi < 0:
            index[dim] = slice(max(-lo, 0), size - max(-hi, 0))
    if any(s != slice(None) for s in index):
        input = input[tuple(index)]
    positive = [amount for _, lo, hi in pairs for amount in (max(lo, 0), max(hi, 0))]
    if any(positive):
        input = _surround(input, positive, value=value)
    return input


def pad(input, pad, mode: str = "constant", value=None):
    """PyTorch's nn.functional.pad (see the module docstring for the modes)."""
    if mode not in MODES:
        raise NotImplementedError(f"pad: Unrecognised padding mode {mode}; use one of "
                                  f"{list(MODES)}")
    pairs = _pairs("pad", input, pad)
    if mode == "constant":
        return _constant(input, pairs, 0.0 if value is None else value)
    if value is not None and value != 0:
        raise HandgradError(f'pad: Padding mode "{mode}" doesn\'t take in value argument '
                            f"(got value={value}); use mode='constant' to pad with a value")
    dims = len(pairs)
    if dims not in (1, 2, 3) or input.ndim not in (dims + 1, dims + 2):
        raise NotImplementedError(
            f"pad: Padding size {2 * dims} is not supported for {input.ndim}D input tensor "
            f"(shape {list(input.shape)}) in mode {mode!r}. Supported combinations for "
            "non-constant padding: 2D or 3D input with padding size 2 (pads the last dim), "
            "3D or 4D input with 4, 4D or 5D input with 6")
    for dim, lo, hi in pairs:
        size = input.shape[dim]
        if size == 0:
            raise HandgradError(
                f"pad: mode {mode!r} needs non-zero sizes in the padded dims, got input of "
                f"shape {list(input.shape)}")
        if mode == "reflect" and (lo >= size or hi >= size):
            raise HandgradError(
                f"pad: Padding size should be less than the corresponding input dimension, "
                f"but got: padding ({lo}, {hi}) at dimension {dim} of input "
                f"{list(input.shape)} (mode 'reflect'); pad less or use 'replicate'")
        kept = size - max(-lo, 0) - max(-hi, 0)  # circular wraps what the crop keeps
        if mode == "circular" and max(lo, hi) > kept:
            raise HandgradError(
                f"pad: Padding value causes wrapping around more than once: padding "
                f"({lo}, {hi}) at dimension {dim} of input {list(input.shape)} (mode "
                f"'circular' allows at most the dim's size after cropping, {kept})")
        if size + lo + hi < 0:
            raise HandgradError(
                f"pad: the input size {size}, plus negative padding {lo} and {hi} resulted "
                f"in a negative output size, which is invalid. Check dimension {dim} of "
                f"your input (shape {list(input.shape)})")
    if mode == "circular":  # torch crops first, then wraps around what is left
        input = _constant(input, [(dim, min(lo, 0), min(hi, 0)) for dim, lo, hi in pairs], 0.0)
        pairs = [(dim, max(lo, 0), max(hi, 0)) for dim, lo, hi in pairs]
    for dim, lo, hi in pairs:
        if lo or hi:
            input = input.index_select(
                dim, _source_index(input.shape[dim], lo, hi, mode, input.device))
    return input
