"""Conv1d and Conv2d: the convolution layers, named, laid out and initialised as torch.nn's.

The weight is (out_channels, in_channels / groups, *kernel_size), the bias
(out_channels,); both start as torch's reset_parameters: kaiming_uniform_(a = sqrt(5)),
i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels / groups * prod(kernel),
and the same range for the bias. forward is F.conv1d / F.conv2d, which hold the checks.
padding_mode 'zeros' pads inside the fused conv; 'reflect', 'replicate' and 'circular'
pad first with index_select (a primitive, so its gradient comes for free), then run the
conv unpadded, as torch does.

Left out: Conv3d, ConvTranspose*, LazyConv*.
"""

from __future__ import annotations

import math

import torch

from handgrad.nn import functional as F
from handgrad.nn import init
from handgrad.nn.module import Module, Parameter

__all__ = ["Conv1d", "Conv2d"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


def _source_index(size: int, lo: int, hi: int, mode: str, device) -> torch.Tensor:
    """For padded positions -lo .. size + hi - 1: the input position each one copies."""
    index = torch.arange(-lo, size + hi, device=device)
    if mode == "circular":
        return index % size
    if mode == "replicate":
        return index.clamp(0, size - 1)
    index = index.abs()  # reflect: -1 -> 1, size -> size - 2 (the edge is not repeated)
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def _pad(x, pads, mode: str, name: str):
    """Pads the trailing len(pads) dims of x by ((lo, hi), ...) in `mode`."""
    for axis, (lo, hi) in enumerate(pads):
        dim = x.ndim - len(pads) + axis
        size = x.shape[dim]
        most = size - 1 if mode == "reflect" else size  # replicate: any amount
        if mode != "replicate" and max(lo, hi) > most:
            raise ValueError(
                f"{name}: padding ({lo}, {hi}) of dim {dim} is too large for padding_mode="
                f"{mode!r} on an input of shape {tuple(x.shape)} (at most {most}); use "
                "less padding or padding_mode='zeros'")
        if lo or hi:
            x = x.index_select(dim, _source_index(size, lo, hi, mode, x.device))
    return x


class _ConvNd(Module):
    """What Conv1d and Conv2d share: arguments, parameters, init, padding modes, repr."""

    spatial_dims = 0
    functional = staticmethod(F.conv2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        n, name = self.spatial_dims, type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels must be divisible by groups "
                             f"(in_channels={in_channels}, groups={groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels must be divisible by groups "
                             f"(out_channels={out_channels}, groups={groups})")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {list(PADDING_MODES)}, "
                             f"but got padding_mode={padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, n)
        self.stride = _tuple(stride, n)
        self.dilation = _tuple(dilation, n)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: Invalid padding string {padding!r}, should be "
                                 "one of {'valid', 'same'}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride})")
            self.padding = padding
        else:
            self.padding = _tuple(padding, n)
        self.groups, self.padding_mode = groups, padding_mode
        self.output_padding = (0,) * n
        self.transposed = False
        # (lo, hi) per spatial dim, for the padding modes other than zeros
        if self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            self._pads = tuple((t // 2, t - t // 2) for t in totals)
        elif self.padding == "valid":
            self._pads = ((0, 0),) * n
        else:
            self._pads = tuple((p, p) for p in self.padding)
        options = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.empty(
            (out_channels, in_channels // groups, *self.kernel_size), **options))
        if bias:
            self.bias = Parameter(torch.empty(out_channels, **options))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and b likewise."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels // self.groups * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        if self.padding_mode == "zeros":
            return self.functional(input, self.weight, self.bias, self.stride, self.padding,
                                   self.dilation, self.groups)
        padded = _pad(input, self._pads, self.padding_mode, type(self).__name__)
        return self.functional(padded, self.weight, self.bias, self.stride, 0,
                               self.dilation, self.groups)

    def extra_repr(self) -> str:
        """torch's text: defaults left out."""
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * len(self.kernel_size):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) or (C_in, L): one fused graph node."""

    spatial_dims = 1
    functional = staticmethod(F.conv1d)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) or (C_in, H, W): one fused graph node."""

    spatial_dims = 2
    functional = staticmethod(F.conv2d)
