"""Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d and ConvTranspose3d: the
convolution layers, named, laid out and initialised as torch.nn's.

A conv's weight is (out_channels, in_channels / groups, *kernel_size), a transposed
conv's (in_channels, out_channels / groups, *kernel_size) (it is the adjoint of the conv
the other way round); the bias is (out_channels,). Both start as torch's
reset_parameters: kaiming_uniform_(a = sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))
with fan_in = weight.shape[1] * prod(kernel), and the same range for the bias. forward
is the functional form, which holds the checks. padding_mode 'zeros' pads inside the
fused conv; 'reflect', 'replicate' and 'circular' pad first with F.pad, then run the
conv unpadded, as torch does. The transposed convs take only 'zeros' (as torch) and an
`output_size=` in forward that picks the output_padding.

Left out: LazyConv*, LazyConvTranspose*.
"""

from __future__ import annotations

import math

import torch

from handgrad.nn import functional as F
from handgrad.nn import init
from handgrad.nn.module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


class _ConvNd(Module):
    """What the convs share: arguments, parameters, init, padding modes, repr."""

    spatial_dims = 0
    transposed = False  # the weight is (in, out / groups, *k) when True
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
        # F.pad's amounts for the padding modes other than zeros (torch's name): the
        # last dim first, (lo, hi) each; 'same' puts the odd one out on the high side
        if self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            pairs = [(t // 2, t - t // 2) for t in totals]
        elif self.padding == "valid":
            pairs = [(0, 0)] * n
        else:
            pairs = [(p, p) for p in self.padding]
        self._reversed_padding_repeated_twice = [a for pair in reversed(pairs) for a in pair]
        options = {"device": device, "dtype": dtype}
        channels = ((in_channels, out_channels // groups) if self.transposed
                    else (out_channels, in_channels // groups))
        self.weight = Parameter(torch.empty((*channels, *self.kernel_size), **options))
        if bias:
            self.bias = Parameter(torch.empty(out_channels, **options))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and b likewise, with
        fan_in = weight.shape[1] * prod(kernel_size)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        if self.padding_mode == "zeros":
            return self.functional(input, self.weight, self.bias, self.stride, self.padding,
                                   self.dilation, self.groups)
        padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
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
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
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


class Conv3d(_ConvNd):
    """3-D convolution over (N, C_in, D, H, W) or (C_in, D, H, W): one fused graph node
    (the ConvNd of Conv2d over three spatial dims)."""

    spatial_dims = 3
    functional = staticmethod(F.conv3d)


class _ConvTransposeNd(_ConvNd):
    """What the transposed convs share: torch's argument order (groups,
    bias, then dilation), output_padding, padding_mode 'zeros' only, `output_size=`."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, output_padding=0, groups: int = 1, bias: bool = True,
                 dilation=1, padding_mode: str = "zeros", device=None, dtype=None):
        name = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {name}, got '
                             f"padding_mode={padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding strings ({padding!r}) are not supported "
                             "by the transposed convolution; give the padding as ints")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        self.output_padding = _tuple(output_padding, self.spatial_dims)

    def _output_padding(self, input, output_size) -> tuple[int, ...]:
        """torch's rule: output_size (spatial, or with the batch / channel dims in front)
        fixes output_padding = size - smallest size, the size within [smallest,
        smallest + stride - 1]."""
        if output_size is None:
            return self.output_padding
        n, name = self.spatial_dims, type(self).__name__
        non_spatial = 2 if input.ndim == n + 2 else 1
        output_size = [int(s) for s in output_size]
        if len(output_size) == non_spatial + n:
            output_size = output_size[non_spatial:]
        if len(output_size) != n:
            raise ValueError(
                f"{name}: for {input.ndim}D input, output_size must have {n} or "
                f"{non_spatial + n} elements (got {len(output_size)})")
        smallest = [(input.shape[non_spatial + d] - 1) * self.stride[d] - 2 * self.padding[d]
                    + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(n)]
        largest = [low + s - 1 for low, s in zip(smallest, self.stride)]
        for size, low, high in zip(output_size, smallest, largest):
            if not low <= size <= high:
                raise ValueError(
                    f"{name}: requested an output size of {output_size}, but valid sizes "
                    f"range from {smallest} to {largest} (for an input of "
                    f"{list(input.shape[non_spatial:])})")
        return tuple(size - low for size, low in zip(output_size, smallest))

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return self.functional(input, self.weight, self.bias, self.stride, self.padding,
                               output_padding, self.groups, self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over (N, C_in, L) or (C_in, L): one fused graph node."""

    spatial_dims = 1
    functional = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over (N, C_in, H, W) or (C_in, H, W): one fused graph
    node."""

    spatial_dims = 2
    functional = staticmethod(F.conv_transpose2d)


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution over (N, C_in, D, H, W) or (C_in, D, H, W): one fused
    graph node."""

    spatial_dims = 3
    functional = staticmethod(F.conv_transpose3d)
