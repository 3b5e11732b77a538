"""The two toy datasets of the scalar examples, in the standard library only.

`LECTURE_XS`, `LECTURE_YS`: the four 3-D points and targets of the lecture that made
micrograd famous ("The spelled-out intro to neural networks and backpropagation").

`make_moons`: two interleaving half circles, the same math as scikit-learn's
`sklearn.datasets.make_moons` (same points, order and labels before shuffling and
noise; the test suite checks that), written with `random.Random` so that
`handgrad.scalar` needs neither numpy nor scikit-learn. The shuffle and the noise come
from Python's generator, so a seed gives different (equally distributed) points than
the same seed in scikit-learn.

What it leaves out: any other dataset (see `handgrad.data` for the tensor engine).
"""

from __future__ import annotations

import math
import random

__all__ = ["LECTURE_XS", "LECTURE_YS", "make_moons"]

LECTURE_XS = [
    [2.0, 3.0, -1.0],
    [3.0, -1.0, 0.5],
    [0.5, 1.0, 1.0],
    [1.0, 1.0, -1.0],
]
LECTURE_YS = [1.0, -1.0, -1.0, 1.0]


def _linspace_pi(n: int) -> list[float]:
    # numpy.linspace(0, pi, n)
    if n == 1:
        return [0.0]
    return [math.pi * i / (n - 1) for i in range(n)]


def make_moons(n_samples: int = 100, noise: float | None = None, shuffle: bool = True,
               random_state: int | random.Random | None = None
               ) -> tuple[list[list[float]], list[int]]:
    """Two half circles: n_samples points [x, y] and their labels 0 (outer) / 1 (inner).

    The outer moon is (cos t, sin t), the inner one (1 - cos t, 0.5 - sin t), t in
    [0, pi]; then the points are shuffled (if `shuffle`) and Gaussian noise with standard
    deviation `noise` is added to every coordinate, as in scikit-learn.
    """
    if n_samples < 2:
        raise ValueError(f"make_moons: n_samples must be at least 2, got {n_samples}")
    rng = random_state if isinstance(random_state, random.Random) else random.Random(random_state)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    points = [[math.cos(t), math.sin(t)] for t in _linspace_pi(n_out)]
    points += [[1.0 - math.cos(t), 1.0 - math.sin(t) - 0.5] for t in _linspace_pi(n_in)]
    labels = [0] * n_out + [1] * n_in
    if shuffle:
        order = list(range(n_samples))
        rng.shuffle(order)
        points = [points[i] for i in order]
        labels = [labels[i] for i in order]
    if noise:
        points = [[x + rng.gauss(0.0, noise), y + rng.gauss(0.0, noise)] for x, y in points]
    return points, labels
