"""F.grid_sample and F.affine_grid against torch: every mode x padding_mode x
align_corners combination on 4-d (bilinear, nearest, bicubic) and 5-d input (trilinear,
nearest), float32 and float64, contiguous and
strided (channels-last input, a transposed grid view), the output and the gradients to
input and grid for a random upstream; points on the kinks (exact pixel centres, the
edges, the nearest mode's half-way points), non-finite coordinates, empty batches;
affine_grid's values and gradient to theta, and a spatial transformer (affine_grid
then grid_sample) end to end; torch's warnings and errors for the same calls.

Left out: finite differences and the fused-vs-composed proof (the grid_sample_* and
affine_grid_* entries in handgrad/testing/registry/grid_sample.py, `handgrad gradcheck
--op 'grid_sample*'`).
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as F
from handgrad.autograd import HandgradError
from tests.torch_compare import assert_close

PADDINGS = ("zeros", "border", "reflection")
COMBOS = list(itertools.product(("bilinear", "nearest", "bicubic"), PADDINGS, (False, True)))
COMBOS_5D = list(itertools.product(("bilinear", "nearest"), PADDINGS, (False, True)))


def _draw(*shape, low=None, high=None, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    if low is None:
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    return (low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)).to(dtype)


def _against_torch(x, grid, dtype, **options):
    """grid_sample on the same input and grid (same strides, kept by preserve_format) in
    handgrad and torch: the output, then both gradients for a random upstream."""
    def leaf(t):
        return t.detach().to(dtype).clone(memory_format=torch.preserve_format)

    tx, tg = leaf(x).requires_grad_(), leaf(grid).requires_grad_()
    hx, hgrid = hg.Tensor(leaf(x), requires_grad=True), hg.Tensor(leaf(grid),
                                                                  requires_grad=True)
    assert hgrid.data.stride() == grid.stride() and hx.data.stride() == x.stride()
    expected = TF.grid_sample(tx, tg, **options)
    out = F.grid_sample(hx, hgrid, **options)
    assert_close(out, expected, dtype, f"output {options}")
    upstream = _draw(*expected.shape, seed=1, dtype=dtype)
    out.backward(upstream)
    expected.backward(upstream)
    assert_close(hx.grad, tx.grad, dtype, f"input gradient {options}")
    assert_close(hgrid.grad, tg.grad, dtype, f"grid gradient {options}")


# ======================================================================= grid_sample
@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("mode,padding_mode,align_corners", COMBOS)
def test_grid_sample_4d_matches_torch(mode, padding_mode, align_corners, strided, dtype):
    x = _draw(2, 3, 5, 4)
    grid = _draw(2, 4, 3, 2, low=-1.6, high=1.6, seed=2)
    if strided:
        x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels last
        grid = grid.transpose(1, 2).contiguous().transpose(1, 2)
    _against_torch(x, grid, dtype, mode=mode, padding_mode=padding_mode,
                   align_corners=align_corners)


@pytest.mark.parametrize("mode,padding_mode,align_corners", COMBOS_5D)
def test_grid_sample_5d_matches_torch(mode, padding_mode, align_corners, dtype):
    x = _draw(2, 2, 3, 4, 3)
    grid = _draw(2, 2, 2, 3, 3, low=-2.2, high=2.2, seed=3)
    _against_torch(x, grid, dtype, mode=mode, padding_mode=padding_mode,
                   align_corners=align_corners)


@pytest.mark.parametrize("mode,padding_mode,align_corners", COMBOS)
def test_grid_sample_on_the_kinks_matches_torch(mode, padding_mode, align_corners):
    """The identity grid (exact pixel centres with align_corners, integer positions),
    the edges and points beyond them at exact reflection points, and the nearest mode's
    half-way points: the same one-sided derivatives as torch's."""
    x = _draw(1, 2, 4, 5)
    identity = torch.tensor([[[1.0, 0, 0], [0, 1, 0]]], dtype=torch.float64)
    grid = TF.affine_grid(identity, (1, 2, 4, 5), align_corners=align_corners)
    _against_torch(x, grid, torch.float64, mode=mode, padding_mode=padding_mode,
                   align_corners=align_corners)
    # x = 2.5 / (0.5 + k) on the half-way points, edges at +-1, beyond at +-1.5, +-3
    points = torch.tensor([-3.0, -1.5, -1.0, -0.75, -0.25, 0.0, 0.25, 0.75, 1.0, 1.5, 3.0],
                          dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(points, points[::2], indexing="xy"), dim=-1)[None]
    _against_torch(x, grid, torch.float64, mode=mode, padding_mode=padding_mode,
                   align_corners=align_corners)


def test_grid_sample_nearest_grid_gradient_is_zeros():
    grid = hg.Tensor(_draw(1, 3, 3, 2, low=-1, high=1), requires_grad=True)
    F.grid_sample(hg.Tensor(_draw(1, 2, 4, 4)), grid, mode="nearest",
                  align_corners=False).sum().backward()
    assert grid.grad is not None and torch.equal(grid.grad.data, torch.zeros(1, 3, 3, 2,
                                                                             dtype=torch.float64))


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
def test_grid_sample_non_finite_coordinates_as_torch(mode, padding_mode):
    """NaN and infinite coordinates: 'border' and 'reflection' read the first pixel
    (torch's clip), 'zeros' reads 0 (nearest) or NaN (bilinear); bicubic reads NaN, as
    torch on 4-d input."""
    x = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(1, 1, 3, 3)
    nan, inf = float("nan"), float("inf")
    grid = torch.tensor([[[[nan, 0.2], [inf, 0.1], [-inf, 0.1], [0.3, nan], [1e30, 0.2]]]],
                        dtype=torch.float64)
    options = {"mode": mode, "padding_mode": padding_mode, "align_corners": False}
    out = F.grid_sample(hg.Tensor(x), hg.Tensor(grid), **options)
    assert_close(out, TF.grid_sample(x, grid, **options), torch.float64, f"{options}")


@pytest.mark.parametrize("x_shape,grid_shape", [((0, 3, 4, 5), (0, 2, 3, 2)),
                                                ((2, 0, 4, 5), (2, 2, 3, 2)),
                                                ((2, 3, 4, 5), (2, 0, 3, 2))])
def test_grid_sample_empty_tensors(x_shape, grid_shape):
    x, grid = torch.zeros(x_shape), torch.zeros(grid_shape)
    hx, hgrid = hg.Tensor(x.clone(), requires_grad=True), hg.Tensor(grid.clone(),
                                                                    requires_grad=True)
    out = F.grid_sample(hx, hgrid, align_corners=False)
    assert out.shape == TF.grid_sample(x, grid, align_corners=False).shape
    out.sum().backward()
    assert hx.grad.shape == x.shape and hgrid.grad.shape == grid.shape


def test_align_corners_none_warns_as_torch_and_means_false():
    x, grid = _draw(1, 2, 3, 4), _draw(1, 2, 2, 2, low=-1, high=1)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        out = F.grid_sample(hg.Tensor(x), hg.Tensor(grid))
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        TF.grid_sample(x, grid)
    assert_close(out, TF.grid_sample(x, grid, align_corners=False), torch.float64)
    theta = _draw(1, 2, 3)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        out = F.affine_grid(hg.Tensor(theta), (1, 2, 3, 4))
    assert_close(out, TF.affine_grid(theta, (1, 2, 3, 4), align_corners=False), torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.grid_sample(hg.Tensor(x), hg.Tensor(grid), align_corners=False)


X4, G4 = (2, 3, 4, 5), (2, 3, 3, 2)
GRID_SAMPLE_ERRORS = [  # (input shape, grid shape, options, handgrad error, message)
    (X4, G4, {"mode": "cubic"}, ValueError, "expected mode to be 'bilinear'"),
    (X4, G4, {"padding_mode": "wrap"}, ValueError, "expected padding_mode"),
    (X4, (1, 3, 3, 2), {}, HandgradError, "same batch size"),
    (X4, (2, 3, 3, 3), {}, HandgradError, "size 2 in last dimension"),
    (X4, (2, 3, 3, 1, 2), {}, HandgradError, "4D or 5D input and grid"),
    ((3, 4, 5), (3, 3, 2), {}, HandgradError, "4D or 5D input and grid"),
    ((2, 3, 0, 5), G4, {}, HandgradError, "non-empty spatial dimensions"),
    ((2, 2, 2, 4, 5), (2, 1, 3, 3, 3), {"mode": "bicubic"}, HandgradError,
     "bicubic interpolation only supports 4D"),
]


@pytest.mark.parametrize("x_shape,grid_shape,options,error,message", GRID_SAMPLE_ERRORS)
def test_grid_sample_errors_as_torch(x_shape, grid_shape, options, error, message):
    x, grid = torch.zeros(x_shape), torch.zeros(grid_shape)
    options = {"align_corners": False, **options}
    with pytest.raises(error, match=message):
        F.grid_sample(hg.Tensor(x), hg.Tensor(grid), **options)
    with pytest.raises(error if error is ValueError else RuntimeError):
        TF.grid_sample(x, grid, **options)  # torch refuses the same call


def test_grid_sample_refuses_mixed_dtypes():
    x, grid = torch.zeros(X4), torch.zeros(G4)
    with pytest.raises(HandgradError, match="same floating point dtype"):
        F.grid_sample(hg.Tensor(x), hg.Tensor(grid.double()), align_corners=False)
    with pytest.raises(RuntimeError):
        TF.grid_sample(x, grid.double(), align_corners=False)


# ======================================================================= affine_grid
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 1, 6), (2, 2, 3, 4, 5), (2, 1, 2, 1, 3)])
def test_affine_grid_matches_torch(size, align_corners, dtype):
    theta = _draw(2, *((2, 3) if len(size) == 4 else (3, 4)), seed=4, dtype=dtype)
    theta = theta.transpose(1, 2).contiguous().transpose(1, 2)  # strided
    ours, theirs = hg.Tensor(theta.clone(), requires_grad=True), theta.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unit-size grids with align_corners warn in both
        out = F.affine_grid(ours, torch.Size(size), align_corners=align_corners)
        expected = TF.affine_grid(theirs, torch.Size(size), align_corners=align_corners)
    assert_close(out, expected, dtype, f"affine_grid {size}")
    upstream = _draw(*expected.shape, seed=5, dtype=dtype)
    out.backward(upstream)
    expected.backward(upstream)
    assert_close(ours.grad, theirs.grad, dtype, "theta gradient")


def test_affine_grid_unit_size_warns_as_torch():
    theta = _draw(1, 2, 3)
    with pytest.warns(UserWarning, match="unit-size grids"):
        F.affine_grid(hg.Tensor(theta), (1, 1, 1, 3), align_corners=True)


AFFINE_ERRORS = [  # (theta shape, theta dtype, size, handgrad error, message)
    ((2, 3, 3), torch.float32, (2, 3, 4, 5), ValueError, "shape Nx2x3"),
    ((2, 2, 3), torch.float32, (2, 3, 4, 4, 5), ValueError, "shape Nx3x4"),
    ((2, 2, 3), torch.int64, (2, 3, 4, 5), ValueError, "floating point type"),
    ((2, 2, 3), torch.float32, (2, 3, 4), NotImplementedError, "4D and 5D sizes"),
    ((2, 2, 3), torch.float32, (2, 3, 0, 5), ValueError, "non-zero, positive output size"),
    ((2, 2, 3), torch.float32, (3, 3, 4, 5), HandgradError, "one matrix per sample"),
]


@pytest.mark.parametrize("shape,theta_dtype,size,error,message", AFFINE_ERRORS)
def test_affine_grid_errors_as_torch(shape, theta_dtype, size, error, message):
    theta = torch.zeros(shape, dtype=theta_dtype)
    with pytest.raises(error, match=message):
        F.affine_grid(hg.Tensor(theta), size, align_corners=False)
    with pytest.raises(RuntimeError if error is HandgradError else error):
        TF.affine_grid(theta, size, align_corners=False)


def test_spatial_transformer_end_to_end_matches_torch():
    """theta -> affine_grid -> grid_sample -> a loss: gradients to theta and the image."""
    image = _draw(2, 3, 6, 5)
    theta = torch.tensor([[[0.9, -0.3, 0.1], [0.25, 1.1, -0.2]],
                          [[1.2, 0.1, -0.3], [-0.2, 0.8, 0.15]]], dtype=torch.float64)
    h_image, h_theta = hg.Tensor(image.clone(), requires_grad=True), hg.Tensor(
        theta.clone(), requires_grad=True)
    t_image, t_theta = image.clone().requires_grad_(), theta.clone().requires_grad_()
    ours = F.grid_sample(h_image, F.affine_grid(h_theta, (2, 3, 4, 4), align_corners=False),
                         padding_mode="border", align_corners=False)
    theirs = TF.grid_sample(t_image, TF.affine_grid(t_theta, (2, 3, 4, 4), align_corners=False),
                            padding_mode="border", align_corners=False)
    assert_close(ours, theirs, torch.float64, "transformed image")
    (ours * ours).sum().backward()
    (theirs * theirs).sum().backward()
    assert_close(h_theta.grad, t_theta.grad, torch.float64, "theta gradient")
    assert_close(h_image.grad, t_image.grad, torch.float64, "image gradient")
