"""Image transforms (handgrad.data.transforms) and TransformDataset.

Against torchvision where it is installed (same seed, same draws, same pixels), and
against hand-computed values everywhere: a 90-degree turn, a one-pixel shift, a padded
crop. Then determinism under a seed, and per-sample augmentation in DataLoader workers,
batch for batch equal to torch's DataLoader with the same seeds.
"""

import numpy as np
import pytest
import torch
import torch.utils.data as tud

from handgrad._tensor import Tensor
from handgrad.data import DataLoader, TensorDataset, TransformDataset
from handgrad.data import transforms as T

GRID = torch.arange(16.0).reshape(1, 4, 4)  # (C, H, W) = (1, 4, 4): values 0..15


# ---------------------------------------------------------------- hand-computed values
def test_to_tensor_layout_and_scaling():
    pixels = np.array([[0, 255], [51, 102]], dtype=np.uint8)  # (H, W)
    image = T.ToTensor()(pixels)
    assert isinstance(image, Tensor) and image.data.dtype == torch.float32
    assert torch.equal(image.data, torch.tensor([[[0.0, 1.0], [0.2, 0.4]]]))
    rgb = np.random.default_rng(0).random((3, 5, 2))  # (H, W, C) float64: kept as is
    out = T.ToTensor()(rgb).data
    assert out.shape == (2, 3, 5) and out.dtype == torch.float64
    assert torch.equal(out, torch.from_numpy(rgb).permute(2, 0, 1))
    with pytest.raises(TypeError, match="ToTensor"):
        T.ToTensor()([1, 2])
    image = pytest.importorskip("PIL.Image").fromarray(pixels)  # mode L: uint8
    assert torch.equal(T.ToTensor()(image).data, torch.tensor([[[0.0, 1.0], [0.2, 0.4]]]))


def test_normalize_per_channel_and_errors():
    x = torch.ones(2, 2, 2)
    out = T.Normalize((0.5, 1.0), (0.25, 2.0))(x)
    assert torch.equal(out, torch.stack([torch.full((2, 2), 2.0), torch.zeros(2, 2)]))
    assert isinstance(T.Normalize((0.0,), (1.0,))(Tensor(x[:1])), Tensor)  # kind kept
    with pytest.raises(ValueError, match="division by zero"):
        T.Normalize((0.0,), (0.0,))(x)
    with pytest.raises(TypeError, match="float tensor"):
        T.Normalize((0.0,), (1.0,))(torch.ones(1, 2, 2, dtype=torch.int64))


def test_affine_quarter_turn_is_clockwise_and_shift_is_exact():
    turned = T.affine(GRID, angle=90, translate=(0, 0), scale=1.0, shear=(0, 0))
    assert torch.equal(turned, torch.rot90(GRID, k=-1, dims=(1, 2)))  # clockwise on screen
    shifted = T.affine(GRID, angle=0, translate=(1, 0), scale=1.0, shear=(0, 0), fill=-1)
    expected = torch.cat([torch.full((1, 4, 1), -1.0), GRID[..., :3]], dim=-1)
    assert torch.equal(shifted, expected)
    half = T.affine(torch.tensor([[[0.0, 2.0]]]), angle=0, translate=(0.5, 0), scale=1.0,
                    shear=(0, 0), interpolation="bilinear")  # blend of the neighbours
    assert torch.allclose(half, torch.tensor([[[0.0, 1.0]]]))


def test_random_crop_padding_hand_values():
    torch.manual_seed(0)
    top, left = (int(torch.randint(0, 5, (1,))) for _ in range(2))  # what RandomCrop draws
    torch.manual_seed(0)
    out = T.RandomCrop(4, padding=2, fill=-1)(GRID)
    padded = torch.full((1, 8, 8), -1.0)
    padded[:, 2:6, 2:6] = GRID
    assert torch.equal(out, padded[:, top:top + 4, left:left + 4])
    edge = T.RandomCrop(6, padding=1, padding_mode="edge")(GRID)  # the crop is all of it
    assert torch.equal(edge[0, 0], torch.tensor([0.0, 0, 1, 2, 3, 3]))
    reflect = T.RandomCrop(6, padding=1, padding_mode="reflect")(GRID)
    assert torch.equal(reflect[0, 0], torch.tensor([5.0, 4, 5, 6, 7, 6]))
    assert T.RandomCrop((5, 6), pad_if_needed=True)(GRID).shape == (1, 5, 6)
    with pytest.raises(ValueError, match="larger than the input image size"):
        T.RandomCrop(5)(GRID)


def test_compose_chains_in_order_and_keeps_handgrad_tensors():
    chain = T.Compose([T.Lambda(lambda x: x + 1), T.Normalize((1.0,), (2.0,))])
    out = chain(Tensor(GRID.clone()))
    assert isinstance(out, Tensor) and torch.equal(out.data, GRID / 2)
    assert "Normalize" in repr(chain)


def test_argument_errors_name_the_transform():
    with pytest.raises(ValueError, match="RandomAffine: if degrees"):
        T.RandomAffine(-5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        T.RandomAffine(5, translate=(0.5, 2))
    with pytest.raises(ValueError, match="interpolation"):
        T.RandomAffine(5, interpolation="bicubic")
    with pytest.raises(ValueError, match="padding_mode"):
        T.RandomCrop(3, padding_mode="wrap")


# ---------------------------------------------------------------- against torchvision
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("kwargs", [
    {"degrees": 30},
    {"degrees": (-10, 20), "translate": (0.2, 0.1)},
    {"degrees": 15, "scale": (0.8, 1.2), "shear": 10},
    {"degrees": 15, "shear": (1, 5, -3, 3), "fill": (0.1, 0.2, 0.3), "center": (3, 4)},
])
def test_random_affine_matches_torchvision(kwargs, interpolation):
    tv = pytest.importorskip("torchvision.transforms")
    mode = tv.InterpolationMode(interpolation)
    image = torch.rand(3, 13, 17, generator=torch.Generator().manual_seed(1))
    for seed in range(5):
        torch.manual_seed(seed)
        expected = tv.RandomAffine(interpolation=mode, **kwargs)(image)
        torch.manual_seed(seed)
        ours = T.RandomAffine(interpolation=interpolation, **kwargs)(image)
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kwargs", [
    {"size": 10, "padding": 2},
    {"size": (20, 12), "pad_if_needed": True, "fill": 0.3},
    {"size": 13, "padding": (1, 2, 3, 4), "padding_mode": "reflect"},
    {"size": 15, "padding": 3, "padding_mode": "symmetric"},
])
def test_random_crop_matches_torchvision(kwargs):
    tv = pytest.importorskip("torchvision.transforms")
    image = torch.rand(3, 13, 17, generator=torch.Generator().manual_seed(2))
    for seed in range(5):
        torch.manual_seed(seed)
        expected = tv.RandomCrop(**kwargs)(image)
        torch.manual_seed(seed)
        assert torch.equal(T.RandomCrop(**kwargs)(image), expected)


# ---------------------------------------------------------------- seeds and workers
AUGMENT = T.Compose([T.RandomCrop(8, padding=1),
                     T.RandomAffine(10, translate=(0.1, 0.1), interpolation="bilinear")])


def test_same_seed_same_augmentation():
    image = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(7)
    first = [AUGMENT(image) for _ in range(3)]
    torch.manual_seed(7)
    second = [AUGMENT(image) for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], first[1])  # each call draws new parameters


class _TorchImages(tud.Dataset):
    """The same images and transform, as a torch dataset for torch's DataLoader."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return AUGMENT(self.images[i]), self.labels[i]


def test_transform_dataset_in_workers_matches_torch_dataloader():
    images = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    labels = torch.arange(12)
    ours = DataLoader(TransformDataset(TensorDataset(images, labels), AUGMENT), batch_size=4,
                      shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(5))
    theirs = tud.DataLoader(_TorchImages(images, labels), batch_size=4, shuffle=True,
                            num_workers=2, generator=torch.Generator().manual_seed(5))
    batches = list(ours)
    for (x, y), (tx, ty) in zip(batches, theirs, strict=True):
        assert torch.equal(y.data, ty)
        assert torch.equal(x.data, tx)  # the same per-sample draws in the same worker
    x = torch.cat([b[0].data for b in batches])
    y = torch.cat([b[1].data for b in batches])
    assert not torch.equal(x, images[y])  # the images were augmented
    again = torch.cat([b[0].data for b in DataLoader(
        TransformDataset(TensorDataset(images, labels), AUGMENT), batch_size=4, shuffle=True,
        num_workers=2, generator=torch.Generator().manual_seed(5))])
    assert torch.equal(x, again)  # reproducible under the loader's seed


def test_transform_dataset_items_and_target_transform():
    base = TensorDataset(torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 2]))
    data = TransformDataset(base, T.Lambda(lambda x: x + 1), target_transform=lambda y: y * 10)
    x, y = data[2]
    assert len(data) == 3 and torch.equal(x.data, torch.ones(1, 2, 2)) and int(y.data) == 20
    assert "TransformDataset" in repr(data)
    with pytest.raises(TypeError, match="must be callable"):
        TransformDataset(base, transform=3)
