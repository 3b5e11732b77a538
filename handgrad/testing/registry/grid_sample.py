"""Registry entries for the spatial transformer functions
(handgrad/nn/functional/grid_sample.py): grid_sample in every mode x padding_mode x
align_corners combination on 4-d input (bilinear, nearest, bicubic), trilinear and nearest on
5-d input, a one-pixel-wide axis, and affine_grid (2-d and 3-d) with torch.nn.functional
as the reference.

Grids are drawn uniformly a little beyond [-1, 1] (further for 'reflection', so points
are reflected more than once): the padding modes matter, and a uniform draw is almost
surely away from the kinks (integer source positions, the image edges, the nearest
mode's half-way points), so finite differences see a smooth function.

The composed reference writes grid_sample with handgrad primitives: the source position
from the grid by + and *, reflection by abs, a floor taken as a constant, and where,
border clipping by clamp; the neighbours' bilinear weights (s - floor(s)) and
(floor(s) + 1 - s) multiplied, and the input read with gather on its flattened spatial
axes, out-of-bounds neighbours masked to 0; bicubic with torch's cubic-convolution
polynomials of s - floor(s) over 4 x 4 taps, the padding applied to the taps' integer
positions. Its gradients are those primitives', so
they prove GridSample's hand-derived backward to the input and to the grid.

affine_grid has no Function of its own (a constant base grid times theta^T, a Matmul);
its entries check that composition.

Left out: tests of errors and warnings (tests/nn/test_grid_sample.py).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad import ops
from handgrad.testing.registry import real, register, uniform


# ------------------------------------------------------------------ composed grid_sample
def _composed_source(g, size, padding_mode, align_corners):
    """The source position along an axis of `size` for grid coordinates g (a Tensor)."""
    if align_corners:
        s = (g + 1) * ((size - 1) / 2)
    else:
        s = (g + 1) * (size / 2) - 0.5
    if padding_mode == "reflection":
        low, span = (0.0, size - 1.0) if align_corners else (-0.5, float(size))
        if span == 0:
            return s * 0.0
        distance = (s - low).abs()
        flips = (distance / span).floor().detach()  # piecewise constant
        extra = distance - flips * span
        even = hg.Tensor(flips.data.remainder(2) == 0)
        s = hg.where(even, extra + low, (extra * -1.0) + (span + low))
    if padding_mode in ("border", "reflection"):
        s = s.clamp(0, size - 1)
    return s


def _cubic(t):
    """torch's cubic-convolution weights (A = -0.75) of taps -1, 0, 1, 2 at t in [0, 1)."""
    a = -0.75

    def near(u):  # |u| <= 1
        return ((u * (a + 2)) - (a + 3)) * u * u + 1

    def far(u):  # 1 < |u| < 2
        return ((u * a - 5 * a) * u + 8 * a) * u - 4 * a

    return [far(t + 1), near(t), near(t * -1.0 + 1), far(t * -1.0 + 2)]


def _padded_tap(position, size, padding_mode, align_corners):
    """A bicubic tap's integer position (a torch tensor) after 'border' / 'reflection'."""
    if padding_mode == "reflection":
        low, span = (0.0, size - 1.0) if align_corners else (-0.5, float(size))
        if span == 0:
            return torch.zeros_like(position)
        distance = (position - low).abs()
        flips = (distance / span).floor()
        extra = distance - flips * span
        position = torch.where(flips.remainder(2) == 0, extra + low, span - extra + low)
    if padding_mode in ("border", "reflection"):
        position = position.clamp(0, size - 1)
    return position


def _composed_grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False):
    """sum over neighbours of weight * x read with gather (module docstring)."""
    batch, channels = x.shape[:2]
    dims = grid.shape[-1]
    sizes = list(reversed(x.shape[2:]))  # W, H[, D]: the grid's x, y[, z]
    points = grid.reshape(batch, -1, dims)
    sources = [_composed_source(points[:, :, d], sizes[d], padding_mode, align_corners)
               for d in range(dims)]
    flat_x = x.reshape(batch, channels, -1)

    def read(indices):  # indices: float torch tensors (N, P), one per axis
        inside = torch.ones_like(indices[0], dtype=torch.bool)
        flat = torch.zeros_like(indices[0], dtype=torch.long)
        stride = 1
        for index, size in zip(indices, sizes):
            inside &= (index >= 0) & (index <= size - 1)
            flat += index.clamp(0, size - 1).long() * stride
            stride *= size
        index = hg.Tensor(flat.unsqueeze(1).expand(batch, channels, flat.shape[1]))
        return flat_x.gather(2, index), hg.Tensor(inside.to(x.dtype).unsqueeze(1))

    if mode == "nearest":
        values, inside = read([s.data.round() for s in sources])
        out = values * inside
    elif mode == "bicubic":  # sources unpadded; the padding acts on the taps
        sources = [_composed_source(points[:, :, d], sizes[d], "zeros", align_corners)
                   for d in range(dims)]
        floors = [s.floor().detach() for s in sources]
        weights = [_cubic(s - f) for s, f in zip(sources, floors)]
        out = None
        for j, i in itertools.product(range(4), range(4)):
            taps = [_padded_tap(f.data - 1 + k, n, padding_mode, align_corners)
                    for f, k, n in zip(floors, (i, j), sizes)]
            values, inside = read(taps)
            part = values * inside * (weights[0][i] * weights[1][j]).unsqueeze(1)
            out = part if out is None else out + part
    else:
        floors = [s.floor().detach() for s in sources]
        out = None
        for bits in itertools.product((0, 1), repeat=dims):
            factors = [(s - f) if b else (f + 1 - s)
                       for s, f, b in zip(sources, floors, bits)]
            weight = math.prod(factors[1:], start=factors[0]).unsqueeze(1)  # (N, 1, P)
            values, inside = read([f.data + b for f, b in zip(floors, bits)])
            part = values * inside * weight
            out = part if out is None else out + part
    return out.reshape(batch, channels, *grid.shape[1:-1])


# ------------------------------------------------------------------ the entries
SHAPES_2D = [((2, 3, 4, 5), (2, 3, 4, 2)), ((1, 2, 3, 3), (1, 2, 5, 2))]
SHAPES_3D = [((2, 2, 3, 4, 3), (2, 2, 3, 2, 3))]
for mode, padding_mode, align_corners in itertools.product(
        ("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection"), (False, True)):
    options = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    reach = 2.6 if padding_mode == "reflection" else 1.3
    register(
        f"grid_sample_{mode}_{padding_mode}{'_align_corners' if align_corners else ''}",
        fn=lambda x, grid, o=options: HF.grid_sample(x, grid, **o),
        ref=lambda x, grid, o=options: TF.grid_sample(x, grid, **o),
        composed=lambda x, grid, o=options: _composed_grid_sample(x, grid, **o),
        shapes=SHAPES_2D,
        domains=(real, uniform(-reach, reach)),
        covers=(HF.GridSample,),
        note="grid drawn beyond [-1, 1], away from the kinks almost surely",
    )
for mode, padding_mode, align_corners in [("bilinear", "zeros", False),
                                          ("bilinear", "reflection", True),
                                          ("bilinear", "border", False),
                                          ("nearest", "reflection", False)]:
    options = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    register(
        f"grid_sample_3d_{mode}_{padding_mode}{'_align_corners' if align_corners else ''}",
        fn=lambda x, grid, o=options: HF.grid_sample(x, grid, **o),
        ref=lambda x, grid, o=options: TF.grid_sample(x, grid, **o),
        composed=lambda x, grid, o=options: _composed_grid_sample(x, grid, **o),
        shapes=SHAPES_3D,
        domains=(real, uniform(-1.8, 1.8)),
        covers=(HF.GridSample,),
        note="5-d input: trilinear ('bilinear') and nearest",
    )
for align_corners in (False, True):
    options = {"padding_mode": "reflection", "align_corners": align_corners}
    register(
        f"grid_sample_one_pixel_axis_reflection{'_align_corners' if align_corners else ''}",
        fn=lambda x, grid, o=options: HF.grid_sample(x, grid, **o),
        ref=lambda x, grid, o=options: TF.grid_sample(x, grid, **o),
        composed=lambda x, grid, o=options: _composed_grid_sample(x, grid, **o),
        shapes=[((2, 2, 1, 4), (2, 3, 2, 2))],
        domains=(real, uniform(-1.7, 1.7)),
        covers=(HF.GridSample,),
        note="an axis of one pixel: reflection pins it to that pixel (align_corners)",
    )

AFFINE = [("affine_grid_2d", (2, 2, 3), (2, 3, 4, 5)),
          ("affine_grid_3d", (2, 3, 4), (2, 1, 2, 3, 4))]
for name, theta_shape, size in AFFINE:
    for align_corners in (False, True):
        register(
            f"{name}{'_align_corners' if align_corners else ''}",
            fn=lambda theta, s=size, a=align_corners: HF.affine_grid(theta, s, a),
            ref=lambda theta, s=size, a=align_corners: TF.affine_grid(theta, s, a),
            shapes=[(theta_shape,)],
            covers=(ops.Matmul,),
            note="a constant base grid times theta^T (no Function of its own)",
        )
