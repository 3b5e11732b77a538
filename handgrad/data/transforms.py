"""Image transforms with torchvision's names, arguments and semantics, on (C, H, W) tensors.

    from handgrad.data import transforms as T
    augment = T.Compose([T.RandomCrop(28, padding=2),
                         T.RandomAffine(degrees=10, translate=(0.1, 0.1)),
                         T.Normalize((0.1307,), (0.3081,))])
    train = TransformDataset(train, transform=augment)   # applied per sample

=================  ========================================================================
ToTensor           a numpy HxW / HxWxC array (or PIL image) -> (C, H, W); uint8 -> float32
                   / 255, other dtypes keep their values and dtype (as torchvision)
Normalize          (x - mean[c]) / std[c] per channel
RandomCrop         optional padding (constant fill, edge, reflect, symmetric), then a crop
                   at a uniformly drawn position
RandomAffine       rotation, translation, scale and shear about the image centre, sampled
                   nearest or bilinear through the inverse affine grid; outside: ``fill``
Compose, Lambda    a chain of transforms; any callable as a transform
=================  ========================================================================

The tensor transforms take a torch tensor or a handgrad Tensor of shape (..., C, H, W)
and return the same kind. They are data preparation, not part of any graph: nothing
here records autograd history, and torch is used only as an array library (the affine
sampler is index arithmetic, done with numpy on the CPU where a small image costs far
less per call: the inverse matrix maps each output pixel to a source position, which is
rounded or blended from its four neighbours; no grid_sample).

Randomness, as in torchvision: every random transform draws from torch's global
generator (``torch.randint``, ``torch.empty(1).uniform_``) in torchvision's order, so
``torch.manual_seed(s)`` makes a sequence of draws reproducible, and with the same seed
the parameters equal torchvision's. DataLoader workers seed torch with ``base_seed +
worker_id`` (base_seed drawn from the loader's generator), so each worker augments
differently and a run with a seeded generator repeats exactly.

Left out: PIL-image outputs (the transforms work on tensors), colour transforms,
torchvision's v2 API (bounding boxes, masks), resizing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch

from handgrad.data._tensors import is_handgrad_tensor, to_torch, wrap

__all__ = ["Compose", "Lambda", "ToTensor", "Normalize", "RandomCrop", "RandomAffine", "affine",
           "inverse_affine_matrix"]

_PADDING_MODES = ("constant", "edge", "reflect", "symmetric")
_INTERPOLATIONS = ("nearest", "bilinear")


def _unwrap(img, name: str) -> tuple[torch.Tensor, bool]:
    """The raw torch tensor of `img` and whether it was a handgrad Tensor."""
    if is_handgrad_tensor(img):
        return to_torch(img), True
    if isinstance(img, torch.Tensor):
        return img, False
    raise TypeError(f"{name}: img should be a Tensor (torch or handgrad) of shape "
                    f"(..., C, H, W), got {type(img).__name__}; convert arrays with ToTensor()")


def _image(img, name: str) -> tuple[torch.Tensor, bool]:
    raw, wrapped = _unwrap(img, name)
    if raw.dim() < 2:
        raise ValueError(f"{name}: expected a tensor image of shape (..., H, W) or "
                         f"(..., C, H, W), got shape {tuple(raw.shape)}")
    return raw, wrapped


def _rewrap(raw: torch.Tensor, wrapped: bool):
    return wrap(raw) if wrapped else raw


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, numbers.Number):
        return int(value), int(value)
    if isinstance(value, Sequence) and len(value) == 1:
        return int(value[0]), int(value[0])
    if isinstance(value, Sequence) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise ValueError(f"{name}: please provide only two dimensions (h, w) for size, got "
                     f"{value!r}")


class Compose:
    """Apply `transforms` one after another: ``Compose([a, b])(x) == b(a(x))``."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img):
        for transform in self.transforms:
            img = transform(img)
        return img

    def __repr__(self) -> str:
        lines = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({lines}\n)"


class Lambda:
    """A user function as a transform."""

    def __init__(self, lambd: Callable) -> None:
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got "
                            f"{type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ToTensor:
    """A numpy array HxW or HxWxC (or a PIL image) -> a handgrad Tensor (C, H, W).

    uint8 values are scaled to float32 in [0, 1] (divided by 255); arrays of any other
    dtype keep their values and dtype, as torchvision's ToTensor does. A 2-d array gets
    one channel."""

    def __call__(self, pic):
        if not isinstance(pic, np.ndarray):
            if hasattr(pic, "mode") and hasattr(pic, "size"):  # a PIL image
                pic = np.array(pic)  # a writable copy, as torchvision takes
            else:
                raise TypeError(f"ToTensor: pic should be a PIL Image or numpy.ndarray, got "
                                f"{type(pic).__name__}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic should be 2 or 3 dimensional (H, W or H, W, C), "
                             f"got {pic.ndim} dimensions (shape {pic.shape})")
        if pic.ndim == 2:
            pic = pic[:, :, None]
        image = torch.from_numpy(np.ascontiguousarray(pic.transpose(2, 0, 1)))
        if image.dtype == torch.uint8:
            image = image.to(torch.float32).div(255)
        return wrap(image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normalize:
    """``(x - mean[c]) / std[c]`` for each channel c of a float (..., C, H, W) tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float],
                 inplace: bool = False) -> None:
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, tensor):
        raw, wrapped = _unwrap(tensor, "Normalize")
        if not raw.is_floating_point():
            raise TypeError(f"Normalize: input tensor should be a float tensor, got {raw.dtype}")
        if raw.dim() < 3:
            raise ValueError(f"Normalize: expected a tensor image of size (..., C, H, W), got "
                             f"tensor.size() = {tuple(raw.shape)}")
        mean = torch.as_tensor(self.mean, dtype=raw.dtype, device=raw.device)
        std = torch.as_tensor(self.std, dtype=raw.dtype, device=raw.device)
        if (std == 0).any():
            raise ValueError(f"Normalize: std evaluated to zero after conversion to "
                             f"{raw.dtype}, leading to division by zero")
        mean, std = mean.reshape(-1, 1, 1), std.reshape(-1, 1, 1)
        if self.inplace:
            return _rewrap(raw.sub_(mean).div_(std), wrapped)
        return _rewrap((raw - mean) / std, wrapped)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


# ---------------------------------------------------------------------------- padding
def _pad_indices(n: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Source index of each position of a dimension of size n padded by (before, after),
    for edge (repeat the border), reflect (mirror without the border) and symmetric
    (mirror with it)."""
    positions = torch.arange(-before, n + after)
    if mode == "edge":
        return positions.clamp(0, n - 1)
    if mode == "reflect":
        period = 2 * (n - 1)
        if period == 0:
            return torch.zeros_like(positions)
        folded = positions.remainder(period)
        return torch.where(folded < n, folded, period - folded)
    period = 2 * n  # symmetric
    folded = positions.remainder(period)
    return torch.where(folded < n, folded, period - 1 - folded)


def _pad(img: torch.Tensor, padding: Sequence[int], fill: float, mode: str) -> torch.Tensor:
    """`img` (..., H, W) padded by (left, right, top, bottom)."""
    left, right, top, bottom = padding
    if min(padding) < 0:
        raise ValueError(f"RandomCrop: padding must be non-negative, got {list(padding)}")
    height, width = img.shape[-2:]
    if mode == "constant":
        out = img.new_full((*img.shape[:-2], height + top + bottom, width + left + right),
                           fill)
        out[..., top:top + height, left:left + width] = img
        return out
    if mode == "reflect" and (max(left, right) >= width or max(top, bottom) >= height):
        raise ValueError(f"RandomCrop: reflect padding {list(padding)} must be smaller than "
                         f"the image size (H, W) = {(height, width)} on each side")
    rows = _pad_indices(height, top, bottom, mode).to(img.device)
    columns = _pad_indices(width, left, right, mode).to(img.device)
    return img.index_select(-2, rows).index_select(-1, columns)


def _parse_padding(padding) -> list[int]:
    """torchvision's padding forms: int (all sides), (lr, tb), (left, top, right, bottom)."""
    if isinstance(padding, numbers.Number):
        return [int(padding)] * 4
    if isinstance(padding, Sequence) and len(padding) in (1, 2, 4):
        values = [int(p) for p in padding]
        if len(values) == 1:
            return values * 4
        if len(values) == 2:
            return [values[0], values[0], values[1], values[1]]
        return [values[0], values[2], values[1], values[3]]  # -> left, right, top, bottom
    raise ValueError(f"RandomCrop: padding must be an int or a 1, 2 or 4 element sequence, "
                     f"got {padding!r}")


class RandomCrop:
    """Crop an (..., C, H, W) image at a random position to `size` (h, w).

    `padding` is applied first: an int pads every side, (lr, tb) left/right and
    top/bottom, (left, top, right, bottom) each side; `padding_mode` constant (with
    `fill`), edge, reflect or symmetric. `pad_if_needed` pads an image smaller than
    `size` up to it. The position is ``torch.randint(0, H - h + 1)`` then the same for
    the width, from torch's global generator, as torchvision draws it."""

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill: float = 0,
                 padding_mode: str = "constant") -> None:
        self.size = _pair(size, "RandomCrop")
        self.padding = padding
        self._padding = None if padding is None else _parse_padding(padding)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of "
                             f"{', '.join(_PADDING_MODES)}, got {padding_mode!r}")
        if not isinstance(fill, numbers.Number):
            raise TypeError(f"RandomCrop: fill must be a number for tensor images, got "
                            f"{fill!r}")
        self.pad_if_needed, self.fill, self.padding_mode = pad_if_needed, fill, padding_mode

    @staticmethod
    def get_params(img, output_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a random crop of `output_size` from `img`."""
        raw = img if isinstance(img, torch.Tensor) else _image(img, "RandomCrop")[0]
        h, w = raw.shape[-2:]
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than the "
                             f"input image size {(h, w)}; pass padding= or pad_if_needed=True")
        if w == tw and h == th:
            return 0, 0, h, w
        i = int(torch.randint(0, h - th + 1, size=(1,)).item())
        j = int(torch.randint(0, w - tw + 1, size=(1,)).item())
        return i, j, th, tw

    def __call__(self, img):
        raw, wrapped = _image(img, "RandomCrop")
        if self._padding is not None:
            raw = _pad(raw, self._padding, self.fill, self.padding_mode)
        height, width = raw.shape[-2:]
        th, tw = self.size
        if self.pad_if_needed and width < tw:
            raw = _pad(raw, [tw - width, tw - width, 0, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and height < th:
            raw = _pad(raw, [0, 0, th - height, th - height], self.fill, self.padding_mode)
        i, j, h, w = self.get_params(raw, self.size)
        return _rewrap(raw[..., i:i + h, j:j + w], wrapped)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


# ---------------------------------------------------------------------------- affine
def _range(value, name: str, center: float = 0.0) -> list[float]:
    """torchvision's ranges: a number d -> (center - d, center + d); a pair as given."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"RandomAffine: if {name} is a single number, it must be "
                             f"positive, got {value}")
        return [center - float(value), center + float(value)]
    if isinstance(value, Sequence) and len(value) == 2:
        return [float(v) for v in value]
    raise ValueError(f"RandomAffine: {name} should be a number or a sequence of 2 numbers, "
                     f"got {value!r}")


def inverse_affine_matrix(center: Sequence[float], angle: float, translate: Sequence[float],
                          scale: float, shear: Sequence[float]) -> list[float]:
    """The 2x3 matrix (row-major) that maps an output pixel back to its source position.

    The forward map is ``M = T C R S Sh C^-1`` (about `center`: rotation by `angle`
    degrees clockwise on the screen, where y points down, scale, shear in degrees, then
    a translation); its inverse is ``C Sh^-1 S^-1 R^-1 C^-1 T^-1``, torchvision's
    ``_get_inverse_affine_matrix`` term for term."""
    rot = math.radians(angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)  # [[a, b], [c, d]] = R Sh (determinant 1)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    matrix = [x / scale for x in (d, -b, 0.0, -c, a, 0.0)]  # its inverse, then 1 / scale
    matrix[2] += matrix[0] * (-cx - tx) + matrix[1] * (-cy - ty)
    matrix[5] += matrix[3] * (-cx - tx) + matrix[4] * (-cy - ty)
    matrix[2] += cx
    matrix[5] += cy
    return matrix


def affine(img, angle: float, translate: Sequence[float], scale: float,
           shear: Sequence[float], interpolation: str = "nearest", fill=0,
           center: Sequence[float] | None = None):
    """One affine transform of an (..., C, H, W) image, as torchvision's
    ``F.affine(img, angle, translate, scale, shear, interpolation, fill, center)``.

    Pixel (i, j) of the output, in coordinates centred on the image, x = j - (W - 1) / 2,
    y = i - (H - 1) / 2, takes the value at (x', y') = M^-1 (x, y, 1) of the input:
    nearest rounds half to even and reads `fill` outside the image; bilinear blends the
    four neighbours, each outside one reading 0, and then mixes in `fill` by the
    interpolated in-bounds mask m as torchvision does (``v m + fill (1 - m)``)."""
    raw, wrapped = _image(img, "RandomAffine")
    interpolation = getattr(interpolation, "value", interpolation)
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"RandomAffine: interpolation must be one of "
                         f"{', '.join(_INTERPOLATIONS)}, got {interpolation!r}")
    height, width = raw.shape[-2:]
    center_f = [0.0, 0.0] if center is None else [
        float(c) - s * 0.5 for c, s in zip(center, (width, height))]
    matrix = inverse_affine_matrix(center_f, angle, [float(t) for t in translate], scale,
                                   shear)
    work = raw if raw.is_floating_point() else raw.to(torch.float32)
    # numpy does the index arithmetic: on a 28x28 image its per-call cost is a tenth of
    # torch's, and augmentation runs once per training sample
    image = work.detach().cpu().numpy()
    dtype = image.dtype
    flat = image.reshape(-1, height * width)  # (B, H W): every leading plane shares the map
    channels = image.shape[-3] if image.ndim >= 3 else 1
    fills = np.asarray(fill if isinstance(fill, Sequence) else [fill], dtype=dtype).ravel()
    if fills.size not in (1, channels):
        raise ValueError(f"RandomAffine: fill has {fills.size} values for an image of "
                         f"{channels} channels; give one value or one per channel")
    fill_plane = np.tile(fills, flat.shape[0] // fills.size).reshape(-1, 1)  # (B, 1)
    m = np.asarray(matrix, dtype=dtype)
    y = (np.arange(height, dtype=dtype) - dtype.type((height - 1) / 2))[:, None]  # (H, 1)
    x = np.arange(width, dtype=dtype) - dtype.type((width - 1) / 2)  # (W,)
    src_x = (m[0] * x + m[1] * y + m[2] + dtype.type((width - 1) / 2)).ravel()  # (H W,)
    src_y = (m[3] * x + m[4] * y + m[5] + dtype.type((height - 1) / 2)).ravel()

    def corner(rows: np.ndarray, columns: np.ndarray):
        """The pixels at integer (rows, columns), 0 outside, and the in-bounds mask."""
        inside = (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)
        index = np.clip(rows, 0, height - 1) * width + np.clip(columns, 0, width - 1)
        return np.where(inside, flat[:, index], 0).astype(dtype), inside.astype(dtype)

    if interpolation == "nearest":  # rint: half to even, as grid_sample's nearbyint
        values, inside = corner(np.rint(src_y).astype(np.int64),
                                np.rint(src_x).astype(np.int64))
        out = np.where(inside > 0.5, values, fill_plane)
    else:
        x0, y0 = np.floor(src_x), np.floor(src_y)
        wx, wy = src_x - x0, src_y - y0
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        out = np.zeros_like(flat)
        mask = np.zeros_like(wx)
        for dy, dx, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                               (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
            values, inside = corner(y0 + dy, x0 + dx)
            out += weight * values
            mask += weight * inside
        out = out * mask + (1 - mask) * fill_plane
    out = torch.from_numpy(np.ascontiguousarray(out, dtype=dtype).reshape(image.shape))
    out = out.to(raw.device)
    if not raw.is_floating_point():
        out = out.round().to(raw.dtype)
    return _rewrap(out, wrapped)


class RandomAffine:
    """A random affine transform about the image centre, as torchvision's RandomAffine.

    degrees: d (angle uniform in [-d, d]) or (min, max), clockwise; translate: (a, b),
    shifts uniform in [-a W, a W] and [-b H, b H] pixels, rounded; scale: (min, max);
    shear: s, (min, max) along x, or (xmin, xmax, ymin, ymax), degrees; interpolation
    "nearest" (default) or "bilinear"; fill: the value (or one per channel) outside the
    source image; center: (x, y) in pixels (default the image centre). The draws come
    from torch's global generator in torchvision's order: angle, tx, ty, scale, shear."""

    def __init__(self, degrees, translate=None, scale=None, shear=None,
                 interpolation: str = "nearest", fill=0, center=None) -> None:
        self.degrees = _range(degrees, "degrees")
        if translate is not None:
            if not (isinstance(translate, Sequence) and len(translate) == 2):
                raise ValueError(f"RandomAffine: translate should be a sequence of 2 "
                                 f"values, got {translate!r}")
            if any(not 0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"RandomAffine: translation values should be between 0 and "
                                 f"1, got {translate!r}")
        if scale is not None:
            if not (isinstance(scale, Sequence) and len(scale) == 2):
                raise ValueError(f"RandomAffine: scale should be a sequence of 2 values, "
                                 f"got {scale!r}")
            if any(s <= 0 for s in scale):
                raise ValueError(f"RandomAffine: scale values should be positive, got "
                                 f"{scale!r}")
        if shear is not None:
            if isinstance(shear, Sequence) and len(shear) == 4:
                shear = [float(s) for s in shear]
            else:
                shear = _range(shear, "shear")
        interpolation = getattr(interpolation, "value", interpolation)
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"RandomAffine: interpolation must be one of "
                             f"{', '.join(_INTERPOLATIONS)}, got {interpolation!r}")
        if center is not None and not (isinstance(center, Sequence) and len(center) == 2):
            raise ValueError(f"RandomAffine: center should be a sequence of 2 values, got "
                             f"{center!r}")
        self.translate, self.scale, self.shear = translate, scale, shear
        self.interpolation, self.fill, self.center = interpolation, fill, center

    @staticmethod
    def get_params(degrees, translate, scale_ranges, shears, img_size):
        """(angle, (tx, ty), scale, (shear_x, shear_y)) drawn as torchvision draws them;
        `img_size` is (width, height)."""
        angle = float(torch.empty(1).uniform_(float(degrees[0]), float(degrees[1])).item())
        if translate is not None:
            max_dx, max_dy = float(translate[0] * img_size[0]), float(translate[1] * img_size[1])
            tx = int(round(torch.empty(1).uniform_(-max_dx, max_dx).item()))
            ty = int(round(torch.empty(1).uniform_(-max_dy, max_dy).item()))
            translations = (tx, ty)
        else:
            translations = (0, 0)
        scale = 1.0
        if scale_ranges is not None:
            scale = float(torch.empty(1).uniform_(scale_ranges[0], scale_ranges[1]).item())
        shear_x = shear_y = 0.0
        if shears is not None:
            shear_x = float(torch.empty(1).uniform_(shears[0], shears[1]).item())
            if len(shears) == 4:
                shear_y = float(torch.empty(1).uniform_(shears[2], shears[3]).item())
        return angle, translations, scale, (shear_x, shear_y)

    def __call__(self, img):
        raw, _ = _image(img, "RandomAffine")
        height, width = raw.shape[-2:]
        params = self.get_params(self.degrees, self.translate, self.scale, self.shear,
                                 [width, height])
        return affine(img, *params, interpolation=self.interpolation, fill=self.fill,
                      center=self.center)

    def __repr__(self) -> str:
        parts = [f"degrees={self.degrees}"]
        for name in ("translate", "scale", "shear"):
            if getattr(self, name) is not None:
                parts.append(f"{name}={getattr(self, name)}")
        parts.append(f"interpolation={self.interpolation}")
        if self.fill != 0:
            parts.append(f"fill={self.fill}")
        return f"{type(self).__name__}({', '.join(parts)})"
