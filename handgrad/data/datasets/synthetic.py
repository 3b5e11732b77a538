"""Small synthetic problems, generated from a seed (the same numbers on every machine).

Classification in 2-D (features ``(N, 2)`` float32, labels ``(N,)`` int64):
``clusters`` (four Gaussian blobs), ``circles`` (two rings), ``moons`` (two interleaved
half-moons), ``spirals`` (K arms). Regression: ``parabola`` (``y = x^2 + noise``,
features and targets ``(N, 1)`` float32).

Each function returns ``DataSplits`` (train / valid / test TensorDatasets, split by a
seeded shuffle). Every draw comes from one ``torch.Generator`` seeded with ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from handgrad.data.datasets._splits import DataSplits, shuffle_split

Fractions = Sequence[float]
_DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clusters(n_per_cluster: int = 100, sigma: float = 0.8, *, seed: int = 0,
             fractions: Fractions = _DEFAULT_FRACTIONS) -> DataSplits:
    """Four Gaussian clusters: ``n_per_cluster`` points around each of (2, 2), (-2, 2),
    (-2, -2), (2, -2) (labels 0, 1, 2, 3) with standard deviation ``sigma``.

    Shape: features ``(4 * n_per_cluster, 2)`` float32, labels int64. With the defaults:
    400 points, 320 / 40 / 40 after the split. Source: generated."""
    g = _generator(seed)
    centers = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])
    labels = torch.arange(4).repeat_interleave(n_per_cluster)
    points = centers[labels] + sigma * torch.randn(labels.shape[0], 2, generator=g)
    return shuffle_split(points, labels, fractions, seed, classes=["(2,2)", "(-2,2)",
                                                                   "(-2,-2)", "(2,-2)"],
                         description=f"4 Gaussian clusters at (+-2, +-2), sigma {sigma}, "
                                     f"{n_per_cluster} points each")


def parabola(n: int = 200, noise: float = 0.5, *, low: float = -3.0, high: float = 3.0,
             seed: int = 0, fractions: Fractions = _DEFAULT_FRACTIONS) -> DataSplits:
    """Regression: ``x`` uniform on ``[low, high]`` (default [-3, 3]),
    ``y = x^2 + noise * N(0, 1)``.

    Shape: features ``(n, 1)`` float32, targets ``(n, 1)`` float32. Source: generated."""
    g = _generator(seed)
    x = low + (high - low) * torch.rand(n, 1, generator=g)
    y = x * x + noise * torch.randn(n, 1, generator=g)
    return shuffle_split(x, y, fractions, seed,
                         description=f"y = x^2 + {noise} * N(0, 1), x ~ U[{low}, {high}], "
                                     f"{n} points")


def circles(n: int = 400, noise: float = 0.1, factor: float = 0.5, *, seed: int = 0,
            fractions: Fractions = _DEFAULT_FRACTIONS) -> DataSplits:
    """Two concentric circles: radius 1 (label 0) and radius ``factor`` (label 1), angles
    uniform, Gaussian ``noise`` added to both coordinates (as scikit-learn's
    ``make_circles``).

    Shape: features ``(n, 2)`` float32, labels ``(n,)`` int64. Source: generated."""
    g = _generator(seed)
    n_outer = n - n // 2
    labels = torch.cat([torch.zeros(n_outer, dtype=torch.int64),
                        torch.ones(n // 2, dtype=torch.int64)])
    angle = 2 * math.pi * torch.rand(n, generator=g)
    radius = torch.where(labels == 0, 1.0, factor)
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    points = points + noise * torch.randn(n, 2, generator=g)
    return shuffle_split(points, labels, fractions, seed, classes=["outer", "inner"],
                         description=f"two circles (radii 1 and {factor}), noise {noise}, "
                                     f"{n} points")


def moons(n: int = 400, noise: float = 0.1, *, seed: int = 0,
          fractions: Fractions = _DEFAULT_FRACTIONS) -> DataSplits:
    """Two interleaved half-moons (as scikit-learn's ``make_moons``): the upper moon
    ``(cos t, sin t)`` (label 0) and the lower ``(1 - cos t, 0.5 - sin t)`` (label 1),
    ``t`` uniform on [0, pi], plus Gaussian ``noise``.

    Shape: features ``(n, 2)`` float32, labels ``(n,)`` int64. Source: generated."""
    g = _generator(seed)
    n_upper = n - n // 2
    labels = torch.cat([torch.zeros(n_upper, dtype=torch.int64),
                        torch.ones(n // 2, dtype=torch.int64)])
    t = math.pi * torch.rand(n, generator=g)
    upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    points = torch.where((labels == 0)[:, None], upper, lower)
    points = points + noise * torch.randn(n, 2, generator=g)
    return shuffle_split(points, labels, fractions, seed, classes=["upper", "lower"],
                         description=f"two moons, noise {noise}, {n} points")


def spirals(n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, *,
            seed: int = 0, fractions: Fractions = _DEFAULT_FRACTIONS) -> DataSplits:
    """``n_classes`` interleaved spiral arms (the CS231n "spiral" data): arm ``k`` has
    radius ``r`` from 0 to 1 and angle ``4 k + 4 r`` plus ``noise * N(0, 1)``, so each arm
    turns about 230 degrees.

    Shape: features ``(n_classes * n_per_class, 2)`` float32, labels int64.
    Source: generated."""
    g = _generator(seed)
    radius = torch.linspace(0.0, 1.0, n_per_class).repeat(n_classes)
    labels = torch.arange(n_classes).repeat_interleave(n_per_class)
    angle = 4.0 * labels + 4.0 * radius + noise * torch.randn(radius.shape[0], generator=g)
    points = torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=1)
    return shuffle_split(points, labels, fractions, seed,
                         classes=[f"arm {k}" for k in range(n_classes)],
                         description=f"{n_classes} spirals, noise {noise}, {n_per_class} "
                                     f"points each")
