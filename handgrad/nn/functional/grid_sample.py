"""Spatial transformers: F.affine_grid (a sampling grid from a batch of affine matrices)
and F.grid_sample (read an image at arbitrary, normalised positions), as torch's.

affine_grid has no Function of its own: the base grid of the output's pixel centres,
(x, y, 1) or (x, y, z, 1) in [-1, 1] (torch's linspace, scaled by (n - 1) / n unless
align_corners), is a constant, and the grid is one handgrad matmul with theta^T, so its
gradient to theta is the matmul's.

grid_sample is one fused Function, GridSample, for 4-d input (N, C, H, W) with a grid
(N, Ho, Wo, 2) and 5-d input (N, C, D, H, W) with a grid (N, Do, Ho, Wo, 3); the grid's
last axis holds (x, y[, z]): x indexes W, y indexes H, z indexes D. Per spatial axis of
size n, a grid coordinate g becomes a source position (torch's rule):
    unnormalise:  s = (g + 1) (n - 1) / 2        (align_corners=True)
                  s = (g + 1) n / 2 - 1/2        (align_corners=False)
    'border':     s = clip(s, 0, n - 1)
    'reflection': s reflected about the image's edges (the corner pixels' centres with
                  align_corners, else the image borders -1/2 and n - 1/2) until it falls
                  inside, then clipped as for 'border'.
'bilinear' (trilinear for 5-d input) reads the 2^d neighbours i = floor(s) + b, b in
{0, 1} per axis, with weights prod over axes of (s - floor(s)) for b = 1 and
(floor(s) + 1 - s) for b = 0; 'nearest' reads round(s) (half to even, as torch's
nearbyint); 'bicubic' (4-d input only) reads the 4 x 4 taps floor(s) - 1 + k, k = 0..3,
with torch's cubic-convolution weights (A = -0.75) of t = s - floor(s), and, as torch,
applies 'border' or 'reflection' to each tap's integer position rather than to s. A
neighbour outside the image reads 0 (with 'zeros'; the other modes never leave it
except by a weight of 0). Non-finite coordinates: 'border' and
'reflection' take NaN (and a reflected infinity) to 0, as torch; with 'zeros', nearest
reads 0 and bilinear NaN (torch's 4-d CPU kernel; its 5-d kernel reads 0 there).

Gather and scatter-add on the flattened spatial axis do all the work; no loop runs over
pixels, only over the 2^d neighbours (16 taps for bicubic).

Left out: the modules (torch has none for these).
"""

from __future__ import annotations

import itertools
import math
import warnings

import torch

from handgrad._tensor import Tensor
from handgrad.autograd import Function, HandgradError

__all__ = ["GridSample", "affine_grid", "grid_sample"]

MODES = ("bilinear", "nearest", "bicubic")
PADDING_MODES = ("zeros", "border", "reflection")
_DEFAULT_WARNING = ("Default grid_sample and affine_grid behavior has changed to "
                    "align_corners=False since 1.3.0. Please specify align_corners=True if "
                    "the old behavior is desired. See the documentation of grid_sample for "
                    "details.")


# ------------------------------------------------------------------ source positions
def _clip(s, size):
    """clip(s, 0, n - 1) and its derivative: 1 strictly inside, 0 on and beyond the
    edges (torch counts the edges as outside for the gradient)."""
    clipped = torch.where(s.isnan(), 0.0, s.clamp(0, size - 1))  # NaN -> 0, as torch
    return clipped, ((s > 0) & (s < size - 1)).to(s.dtype)


def _reflect(s, twice_low, twice_high):
    """Reflect s about low and high until it lies in [low, high], and ds'/ds (+-1).

    With m = low, span = high - low, a = |s - m| = k span + e (k = floor(a / span)):
    s' = m + e for even k, m + span - e for odd k. Hence ds'/ds = sign(s - m) for even k
    and -sign(s - m) for odd k (sign(0) taken as +1, as torch)."""
    if twice_low == twice_high:  # a single pixel with align_corners: always its centre
        return torch.zeros_like(s), torch.zeros_like(s)
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    shifted = s - low
    distance = shifted.abs()
    flips = (distance / span).floor()
    extra = distance - flips * span
    even = flips.remainder(2) == 0
    reflected = torch.where(even, extra + low, span - extra + low)
    sign = torch.where(shifted < 0, -1.0, 1.0).to(s.dtype)
    return reflected, torch.where(even, sign, -sign)


def _source(g, size, padding_mode, align_corners):
    """(source position s, ds/dg) for grid coordinates g along an axis of `size`
    (module docstring; torch's CPU kernel's arithmetic)."""
    if align_corners:
        scale = (size - 1) / 2
        s = (g + 1) * scale
    else:
        scale = size / 2
        s = (g + 1) * scale - 0.5
    s, derivative = _source_padding(s, size, padding_mode, align_corners)
    return s, derivative * scale


def _source_padding(s, size, padding_mode, align_corners):
    """(s after 'border' or 'reflection', its derivative); 'zeros' leaves s alone."""
    derivative = torch.ones_like(s)
    if padding_mode == "reflection":
        if align_corners:
            s, d = _reflect(s, 0, 2 * (size - 1))
        else:
            s, d = _reflect(s, -1, 2 * size - 1)
        derivative = derivative * d
    if padding_mode in ("border", "reflection"):
        s, d = _clip(s, size)
        derivative = derivative * d
    return s, derivative


def _flat_index(indices, sizes):
    """(linear index into the flattened spatial axes, in-bounds mask) for one neighbour:
    indices[d] (float, along the axis of sizes[d], x first) -> z H W + y W + x."""
    inside = torch.ones_like(indices[0], dtype=torch.bool)
    flat = torch.zeros_like(indices[0], dtype=torch.long)
    stride = 1
    for index, size in zip(indices, sizes):
        within = (index >= 0) & (index <= size - 1)  # False for NaN and infinities
        inside &= within
        flat += torch.where(within, index, 0.0).long() * stride
        stride *= size
    return flat, inside


def _neighbours(x, grid, mode, padding_mode, align_corners):
    """For every sampled point: [(flat index, weight with the out-of-bounds zeroed,
    [d weight / d s_axis per axis] or None)] per neighbour, and ds/dg per axis.
    Indices and weights are (N, P) with P the number of sampled points."""
    dims = grid.shape[-1]
    sizes = list(reversed(x.shape[2:]))  # x first: W, H[, D]
    points = grid.reshape(grid.shape[0], math.prod(grid.shape[1:-1]), dims)  # (N, P, dims)
    sources, derivatives = zip(*(_source(points[..., d], sizes[d], padding_mode,
                                         align_corners) for d in range(dims)))
    if mode == "nearest":
        flat, inside = _flat_index([s.round() for s in sources], sizes)
        return [(flat, inside.to(x.dtype), None)], derivatives
    if mode == "bicubic":
        return _bicubic_taps(x, points, sizes, padding_mode, align_corners)
    floors = [s.floor() for s in sources]
    # weights of the low (b = 0) and high (b = 1) neighbour along each axis
    low = [f + 1 - s for f, s in zip(floors, sources)]
    high = [s - f for f, s in zip(floors, sources)]
    corners = []
    for corner in range(2 ** dims):
        bits = [(corner >> d) & 1 for d in range(dims)]
        factors = [high[d] if b else low[d] for d, b in enumerate(bits)]
        flat, inside = _flat_index([f + b for f, b in zip(floors, bits)], sizes)
        mask = inside.to(x.dtype)
        weight = math.prod(factors[1:], start=factors[0]) * mask
        # d weight / d s_d: the other axes' factors, times +1 (b = 1) or -1 (b = 0)
        slopes = []
        for d, b in enumerate(bits):
            others = [factors[e] for e in range(dims) if e != d]
            slope = math.prod(others[1:], start=others[0]) * mask
            slopes.append(slope if b else -slope)
        corners.append((flat, weight, slopes))
    return corners, derivatives


A_CUBIC = -0.75  # torch's cubic convolution constant


def _cubic_weights(t):
    """The four cubic-convolution weights of taps at offsets -1, 0, 1, 2 from floor(s),
    t = s - floor(s), and their derivatives d/dt:
        k1(u) = ((A + 2) u - (A + 3)) u^2 + 1      for |u| <= 1,
        k2(u) = ((A u - 5 A) u + 8 A) u - 4 A      for 1 < |u| < 2,
    weights k2(t + 1), k1(t), k1(1 - t), k2(2 - t); with k1'(u) = 3 (A + 2) u^2 -
    2 (A + 3) u and k2'(u) = 3 A u^2 - 10 A u + 8 A, the derivatives are k2'(t + 1),
    k1'(t), -k1'(1 - t), -k2'(2 - t)."""
    a = A_CUBIC

    def k1(u):
        return ((a + 2) * u - (a + 3)) * u * u + 1

    def k2(u):
        return ((a * u - 5 * a) * u + 8 * a) * u - 4 * a

    def dk1(u):
        return (3 * (a + 2) * u - 2 * (a + 3)) * u

    def dk2(u):
        return (3 * a * u - 10 * a) * u + 8 * a

    weights = [k2(t + 1), k1(t), k1(1 - t), k2(2 - t)]
    slopes = [dk2(t + 1), dk1(t), -dk1(1 - t), -dk2(2 - t)]
    return weights, slopes


def _bicubic_taps(x, points, sizes, padding_mode, align_corners):
    """Bicubic (4-d input only): 16 taps floor(s) - 1 + (0..3) per axis around the
    unnormalised (not yet padded) position s; as torch, the padding mode acts on each
    tap's integer position (clipped or reflected; outside reads 0 with 'zeros'), so
    ds/dg is the unnormalisation's scale alone."""
    sources, derivatives = zip(*(_source(points[..., d], sizes[d], "zeros", align_corners)
                                 for d in range(2)))
    floors = [s.floor() for s in sources]
    tables = [_cubic_weights(s - f) for s, f in zip(sources, floors)]
    taps = []
    for j, i in itertools.product(range(4), range(4)):  # j along y, i along x
        positions = []
        for d, k in enumerate((i, j)):
            position = floors[d] - 1 + k
            if padding_mode != "zeros":
                position, _ = _source_padding(position, sizes[d], padding_mode, align_corners)
            positions.append(position)
        flat, inside = _flat_index(positions, sizes)
        mask = inside.to(x.dtype)
        (wx, sx), (wy, sy) = ((tables[0][0][i], tables[0][1][i]),
                              (tables[1][0][j], tables[1][1][j]))
        taps.append((flat, wx * wy * mask, [sx * wy * mask, wx * sy * mask]))
    return taps, derivatives


class GridSample(Function):
    """out[n, c, p] = sum over neighbours k of w_k(s(g[n, p])) x[n, c, i_k(g[n, p])]: the
    input read at the grid's source positions s (module docstring), weights w_k the
    bilinear (trilinear) products, or one neighbour of weight 1 for 'nearest'.

    Backward, for upstream G[n, c, p]:
      * to x, the map is linear in x: its transpose adds each output's gradient times
        each neighbour's weight onto the pixel it read,
            dx[n, c, i_k] += w_k G[n, c, p]         (scatter_add per neighbour);
      * to the grid, only the weights depend on g. With w_k = prod_a f_a(b_a), where
        f_a(1) = s_a - floor(s_a) and f_a(0) = floor(s_a) + 1 - s_a, so that
        d f_a(b) / d s_a = +1 for b = 1 and -1 for b = 0 (floor is piecewise constant):
            dL/ds_a[n, p] = sum_k (+-1) prod_{e != a} f_e(b_e) sum_c G[n, c, p] x[n, c, i_k]
        (the spatial derivative of the interpolant), and by the chain rule
            dL/dg_a = dL/ds_a * ds_a/dg_a,
        ds/dg = (n - 1)/2 (align_corners) or n/2 (the unnormalisation), times 0 where
        'border' clipped (or where 'reflection' clipped after reflecting), times -1 or
        +1 for each reflection (the sign of the reflected distance, flipped on odd
        reflections). A neighbour outside the image (with 'zeros') reads 0 and adds
        nothing to either gradient.
      * 'nearest': the output is piecewise constant in g, so dL/dg = 0; dx as above with
        weight 1 at round(s).
      * 'bicubic': w_k = c_i(t_x) c_j(t_y) for tap (i, j), t = s - floor(s), so
            dL/ds_x = sum_k c_i'(t_x) c_j(t_y) sum_c G x[i_k]   (and alike for y),
        c' from _cubic_weights; the padding acts on the taps' integer positions, which
        are piecewise constant in g, so ds/dg is the unnormalisation's scale alone.
    """

    name = "grid_sample"

    @staticmethod
    def forward(ctx, x, grid, mode, padding_mode, align_corners):
        ctx.options = (mode, padding_mode, align_corners)
        ctx.save_for_backward(x, grid)
        batch, channels = x.shape[:2]
        flat_x = x.reshape(batch, channels, math.prod(x.shape[2:]))
        corners, _ = _neighbours(x, grid, mode, padding_mode, align_corners)
        out = None
        for flat, weight, _ in corners:
            index = flat.unsqueeze(1).expand(batch, channels, flat.shape[1])
            part = flat_x.gather(2, index) * weight.unsqueeze(1)
            out = part if out is None else out + part
        return out.reshape(batch, channels, *grid.shape[1:-1])

    @staticmethod
    def backward(ctx, g):
        x, grid = ctx.saved_tensors
        mode, padding_mode, align_corners = ctx.options
        corners, derivatives = _neighbours(x, grid, mode, padding_mode, align_corners)
        batch, channels = x.shape[:2]
        g = g.reshape(batch, channels, math.prod(grid.shape[1:-1]))
        flat_x = x.reshape(batch, channels, math.prod(x.shape[2:]))
        dx = flat_x.new_zeros(flat_x.shape) if ctx.needs_input_grad[0] else None
        dims = grid.shape[-1]
        ds = [None] * dims
        for flat, weight, slopes in corners:
            index = flat.unsqueeze(1).expand(batch, channels, flat.shape[1])
            if dx is not None:
                dx.scatter_add_(2, index, g * weight.unsqueeze(1))
            if ctx.needs_input_grad[1] and slopes is not None:
                read = (g * flat_x.gather(2, index)).sum(1)  # (N, P): sum_c G x[i_k]
                for a in range(dims):
                    term = read * slopes[a]
                    ds[a] = term if ds[a] is None else ds[a] + term
        dgrid = None
        if ctx.needs_input_grad[1]:
            if mode == "nearest":
                dgrid = torch.zeros_like(grid)
            else:
                dgrid = torch.stack([s * d for s, d in zip(ds, derivatives)], dim=-1)
                dgrid = dgrid.reshape(grid.shape)
        return (None if dx is None else dx.reshape(x.shape)), dgrid, None, None, None


# ------------------------------------------------------------------ the functional API
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """PyTorch's nn.functional.grid_sample for 4-d input (N, C, H, W) with a grid
    (N, Ho, Wo, 2), and 5-d input (N, C, D, H, W) with a grid (N, Do, Ho, Wo, 3):
    mode 'bilinear' (trilinear on 5-d), 'nearest' or 'bicubic' (4-d); padding_mode
    'zeros', 'border' or 'reflection'; align_corners None (warns as torch, then False),
    False or True. Output (N, C, Ho, Wo) or (N, C, Do, Ho, Wo)."""
    if mode not in MODES:
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', "
                         f"'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
                         f"'border', or 'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        warnings.warn(_DEFAULT_WARNING, stacklevel=2)
        align_corners = False
    shapes = f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise HandgradError(f"grid_sampler(): expected 4D or 5D input and grid with same "
                            f"number of dimensions, but got {shapes}; give input as "
                            f"(N, C, H, W) with grid (N, Ho, Wo, 2), or (N, C, D, H, W) "
                            f"with grid (N, Do, Ho, Wo, 3)")
    if input.device != grid.device:
        raise HandgradError(f"grid_sampler(): expected input and grid to be on same device, "
                            f"but input is on {input.device} and grid is on {grid.device}")
    if not input.dtype.is_floating_point or input.dtype != grid.dtype:
        raise HandgradError(f"grid_sampler(): expected input and grid to have the same "
                            f"floating point dtype, but input is {input.dtype} and grid is "
                            f"{grid.dtype}; convert one with .to(other.dtype)")
    if input.shape[0] != grid.shape[0]:
        raise HandgradError(f"grid_sampler(): expected grid and input to have same batch "
                            f"size, but got {shapes}")
    spatial = input.ndim - 2
    if grid.shape[-1] != spatial:
        raise HandgradError(f"grid_sampler(): expected grid to have size {spatial} in last "
                            f"dimension, but got grid with sizes {list(grid.shape)}")
    for dim in range(2, input.ndim):
        if input.shape[dim] == 0:
            raise HandgradError(f"grid_sampler(): expected input to have non-empty spatial "
                                f"dimensions, but input has sizes {list(input.shape)} with "
                                f"dimension {dim} being empty")
    if mode == "bicubic" and spatial != 2:
        raise HandgradError("grid_sampler(): bicubic interpolation only supports 4D input")
    return GridSample.apply(input, grid, mode, padding_mode, bool(align_corners))


def _base_axis(steps, align_corners, dtype, device):
    """torch's linspace_from_neg_one: the pixel centres' normalised positions."""
    if steps <= 1:
        return torch.zeros(1, dtype=dtype, device=device)
    axis = torch.linspace(-1, 1, steps, dtype=dtype, device=device)
    return axis if align_corners else axis * (steps - 1) / steps


def affine_grid(theta, size, align_corners=None):
    """PyTorch's nn.functional.affine_grid: theta (N, 2, 3) and size (N, C, H, W) give the
    grid (N, H, W, 2); theta (N, 3, 4) and size (N, C, D, H, W) give (N, D, H, W, 3).
    grid[n, ..., :] = theta[n] @ (x, y[, z], 1) at each output pixel's centre."""
    if align_corners is None:
        warnings.warn(_DEFAULT_WARNING, stacklevel=2)
        align_corners = False
    if not theta.dtype.is_floating_point:
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = list(size)
    if len(size) == 4:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (2, 3):
            raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size "
                             f"{tuple(size)}. Got {tuple(theta.shape)}.")
    elif len(size) == 5:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (3, 4):
            raise ValueError(f"Expected a batch of 3D affine matrices of shape Nx3x4 for size "
                             f"{tuple(size)}. Got {tuple(theta.shape)}.")
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D "
                                  f"affine transforms, respectively. Got size {tuple(size)}.")
    spatial_size = size[2:]
    if align_corners and min(spatial_size) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size "
                      "grids when align_corners=True. This is not an intended use case of "
                      "affine_grid. See the documentation of affine_grid for details.",
                      stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {tuple(size)}")
    if theta.shape[0] != size[0]:
        raise HandgradError(f"affine_grid: theta holds {theta.shape[0]} matrices (shape "
                            f"{tuple(theta.shape)}) but size asks for a batch of {size[0]} "
                            f"({tuple(size)}); give one matrix per sample")
    dtype, device = theta.dtype, theta.device
    axes = [_base_axis(n, align_corners, dtype, device) for n in reversed(spatial_size)]
    mesh = torch.meshgrid(*reversed(axes), indexing="ij")  # each (D, H, W) or (H, W)
    ones = torch.ones(mesh[0].shape, dtype=dtype, device=device)
    base = torch.stack([*reversed(mesh), ones], dim=-1)  # (..., x, y[, z], 1)
    base = Tensor(base.reshape(-1, len(spatial_size) + 1))  # (P, d + 1)
    grid = base @ theta.transpose(1, 2)  # (N, P, d)
    return grid.reshape(size[0], *spatial_size, len(spatial_size))
