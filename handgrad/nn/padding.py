"""The padding layers, named, argued and printed as torch.nn's: ZeroPad1d/2d,
ConstantPad1d/2d, ReflectionPad1d/2d, ReplicationPad1d/2d, CircularPad1d/2d.

Each holds `padding` as torch does (an int repeated into 2 or 4 amounts, last dim first:
(left, right[, top, bottom])) and its forward is F.pad in its mode, which holds the
checks and their messages.

Left out: the 3-d padding layers (ZeroPad3d, ReflectionPad3d, ...); F.pad itself pads
3 dims in every mode.
"""

from __future__ import annotations

from handgrad.nn import functional as F
from handgrad.nn.module import Module

__all__ = [
    "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d",
    "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d",
    "CircularPad2d",
]


class _PadNd(Module):
    """What every padding layer shares: padding as 2 n ints, F.pad in one mode."""

    spatial_dims = 0
    mode = "constant"

    def __init__(self, padding):
        super().__init__()
        self.padding = ((padding,) * (2 * self.spatial_dims) if isinstance(padding, int)
                        else tuple(padding))

    def forward(self, input):
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dim with `value`: (left, right)."""

    spatial_dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last two dims with `value`: (left, right, top, bottom)."""

    spatial_dims = 2


class ZeroPad1d(ConstantPad1d):
    """Pads the last dim with zeros: (left, right)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pads the last two dims with zeros: (left, right, top, bottom)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Mirrors the last dim without repeating the edge: each amount below its size."""

    spatial_dims, mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Mirrors the last two dims without repeating the edge."""

    spatial_dims, mode = 2, "reflect"


class ReplicationPad1d(_PadNd):
    """Repeats the edge values of the last dim."""

    spatial_dims, mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Repeats the edge values of the last two dims."""

    spatial_dims, mode = 2, "replicate"


class CircularPad1d(_PadNd):
    """Wraps the last dim around: each amount at most its size."""

    spatial_dims, mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Wraps the last two dims around."""

    spatial_dims, mode = 2, "circular"
