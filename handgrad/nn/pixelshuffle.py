"""PixelShuffle and PixelUnshuffle: the sub-pixel convolution rearrangement (channels to
space and back), built and printed like torch.nn's. Each forward is the functional form
(handgrad/nn/functional/pixelshuffle.py), which holds the checks.

Left out: nothing of torch's two layers.
"""

from __future__ import annotations

from handgrad.nn.functional.pixelshuffle import pixel_shuffle, pixel_unshuffle
from handgrad.nn.module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle"]


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r) with r = upscale_factor."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W) with r = downscale_factor."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
