"""Pooling layers, named, argued and printed as torch.nn's: MaxPool1d, MaxPool2d,
MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d, AdaptiveAvgPool1d, AdaptiveAvgPool2d,
AdaptiveMaxPool2d, MaxUnpool1d, MaxUnpool2d. They hold
no parameters; each forward is the functional form (handgrad/nn/functional/pooling.py),
which holds the checks.

Left out: adaptive pooling of volumes (AdaptiveAvgPool3d, AdaptiveMaxPool3d), LPPool,
FractionalMaxPool, AdaptiveMaxPool1d, MaxUnpool3d.
"""

from __future__ import annotations

from handgrad.nn import functional as F
from handgrad.nn.module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxUnpool1d",
           "MaxUnpool2d"]


def _single(value) -> tuple[int, ...]:
    """torch's _single: an int as a 1-tuple."""
    return (value,) if isinstance(value, int) else tuple(value)


class _MaxPoolNd(Module):
    functional = staticmethod(F.max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return self.functional(input, self.kernel_size, self.stride, self.padding,
                               self.dilation, ceil_mode=self.ceil_mode,
                               return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding="
                f"{self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """The max of each window of (N, C, L) or (C, L) input."""

    functional = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """The max of each window of (N, C, H, W) or (C, H, W) input."""

    functional = staticmethod(F.max_pool2d)


class MaxPool3d(_MaxPoolNd):
    """The max of each window of (N, C, D, H, W) or (C, D, H, W) input."""

    functional = staticmethod(F.max_pool3d)


class AvgPool1d(Module):
    """The mean of each window of (N, C, L) or (C, L) input. As torch, it keeps its sizes
    as 1-tuples (its repr reads kernel_size=(3,))."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding,
                            self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AvgPoolNd(Module):
    """What AvgPool2d and AvgPool3d share: the sizes kept as given (torch's repr reads
    kernel_size=2), divisor_override."""

    functional = staticmethod(F.avg_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return self.functional(input, self.kernel_size, self.stride, self.padding,
                               self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """The mean of each window of (N, C, H, W) or (C, H, W) input (or the sum divided by
    divisor_override)."""

    functional = staticmethod(F.avg_pool2d)


class AvgPool3d(_AvgPoolNd):
    """The mean of each window of (N, C, D, H, W) or (C, D, H, W) input (or the sum divided
    by divisor_override)."""

    functional = staticmethod(F.avg_pool3d)


class _AdaptiveAvgPoolNd(Module):
    functional = staticmethod(F.adaptive_avg_pool2d)

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return self.functional(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Average pooling of (N, C, L) or (C, L) input to output_size positions, windows
    chosen as torch's (floor(i L / out) .. ceil((i + 1) L / out))."""

    functional = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average pooling of (N, C, H, W) or (C, H, W) input to output_size (an int, or a
    pair whose None entries keep the input's size)."""

    functional = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveMaxPool2d(Module):
    """Max pooling of (N, C, H, W) or (C, H, W) input to output_size over torch's adaptive
    windows; with return_indices, also each window's argmax (a flat index into H W)."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _MaxUnpoolNd(Module):
    """max_pool's partial inverse; as torch, it keeps its sizes as n-tuples (the repr
    reads kernel_size=(2, 2)) and takes output_size at call time."""

    n = 2
    functional = staticmethod(F.max_unpool2d)

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()

        def expand(value):
            return (value,) * self.n if isinstance(value, int) else tuple(value)

        self.kernel_size = expand(kernel_size)
        self.stride = expand(stride if stride is not None else kernel_size)
        self.padding = expand(padding)

    def forward(self, input, indices, output_size=None):
        return self.functional(input, indices, self.kernel_size, self.stride, self.padding,
                               output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """(N, C, L) or (C, L) values written at max_pool1d's indices into a zero output."""

    n = 1
    functional = staticmethod(F.max_unpool1d)


class MaxUnpool2d(_MaxUnpoolNd):
    """(N, C, H, W) or (C, H, W) values written at max_pool2d's indices into a zero
    output."""

    n = 2
    functional = staticmethod(F.max_unpool2d)
