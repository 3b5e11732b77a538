"""pixel_shuffle and pixel_unshuffle: moving values between the channel dim and the two
spatial dims, with torch's semantics. Each is a reshape, a permute and a reshape (views
and one copy, all proven ops with their own backward), so neither has a Function.

    pixel_shuffle:   (*, C r^2, H, W) -> (*, C, H r, W r)
        out[..., c, h r + i, w r + j] = x[..., c r^2 + i r + j, h, w]
    pixel_unshuffle: the inverse, (*, C, H r, W r) -> (*, C r^2, H, W)

Left out: the modules (handgrad/nn/pixelshuffle.py).
"""

from __future__ import annotations

from handgrad.autograd import HandgradError

__all__ = ["pixel_shuffle", "pixel_unshuffle"]


def _check(op: str, input, factor, name: str) -> None:
    if not isinstance(factor, int) or isinstance(factor, bool):
        raise TypeError(f"{op}(): argument '{name}' (position 2) must be int, not "
                        f"{type(factor).__name__}")
    if factor <= 0:
        raise HandgradError(f"{op} expects a positive {name}, but got {factor}")
    if input.ndim < 3:
        raise HandgradError(f"{op} expects input to have at least 3 dimensions, but got "
                            f"input with {input.ndim} dimension(s) (shape "
                            f"{tuple(input.shape)}); give it as (*, C, H, W)")


def pixel_shuffle(input, upscale_factor: int):
    """(*, C r^2, H, W) -> (*, C, H r, W r) with r = upscale_factor, as torch's."""
    r = upscale_factor
    _check("pixel_shuffle", input, r, "upscale_factor")
    *batch, channels, height, width = input.shape
    if channels % (r * r):
        raise HandgradError(
            f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the "
            f"square of upscale_factor, but input.size(-3)={channels} is not divisible by "
            f"{r * r}")
    n = len(batch)
    x = input.reshape(*batch, channels // (r * r), r, r, height, width)  # (*, C, r, r, H, W)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)  # (*, C, H, r, W, r)
    return x.reshape(*batch, channels // (r * r), height * r, width * r)


def pixel_unshuffle(input, downscale_factor: int):
    """(*, C, H r, W r) -> (*, C r^2, H, W) with r = downscale_factor, as torch's."""
    r = downscale_factor
    _check("pixel_unshuffle", input, r, "downscale_factor")
    *batch, channels, height, width = input.shape
    for dim, size in (("height", height), ("width", width)):
        if size % r:
            index = -2 if dim == "height" else -1
            raise HandgradError(
                f"pixel_unshuffle expects {dim} to be divisible by downscale_factor, but "
                f"input.size({index})={size} is not divisible by {r}")
    n = len(batch)
    x = input.reshape(*batch, channels, height // r, r, width // r, r)  # (*, C, H, r, W, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)  # (*, C, r, r, H, W)
    return x.reshape(*batch, channels * r * r, height // r, width // r)
