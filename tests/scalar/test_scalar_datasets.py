"""The standard-library make_moons against scikit-learn's, and the lecture data."""

from __future__ import annotations

import random
import statistics

import pytest

from handgrad.scalar import LECTURE_XS, LECTURE_YS, make_moons

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.mark.parametrize("n", [2, 7, 100, 101])
def test_same_points_and_labels_as_sklearn_without_noise_or_shuffle(n):
    xs, ys = make_moons(n, shuffle=False)
    expected_x, expected_y = sklearn_datasets.make_moons(n, shuffle=False)
    assert ys == expected_y.tolist()
    flat = [c for point in xs for c in point]
    assert flat == pytest.approx(expected_x.ravel().tolist(), abs=1e-12)


def test_shuffle_keeps_the_pairs_and_noise_has_the_asked_spread():
    clean, labels = make_moons(200, shuffle=False)
    shuffled, shuffled_labels = make_moons(200, shuffle=True, random_state=1)
    assert sorted(zip(map(tuple, shuffled), shuffled_labels)) == sorted(
        zip(map(tuple, clean), labels))
    assert shuffled != clean

    noisy, noisy_labels = make_moons(4000, noise=0.1, shuffle=False, random_state=2)
    big_clean, _ = make_moons(4000, shuffle=False)
    offsets = [a - b for p, q in zip(noisy, big_clean) for a, b in zip(p, q)]
    assert statistics.fmean(offsets) == pytest.approx(0.0, abs=0.01)
    assert statistics.stdev(offsets) == pytest.approx(0.1, rel=0.05)


def test_seeded_and_reproducible():
    assert make_moons(50, noise=0.1, random_state=3) == make_moons(50, noise=0.1, random_state=3)
    assert make_moons(50, noise=0.1, random_state=3) != make_moons(50, noise=0.1, random_state=4)
    rng = random.Random(5)
    assert make_moons(10, noise=0.1, random_state=rng) != make_moons(10, noise=0.1,
                                                                     random_state=rng)
    with pytest.raises(ValueError, match="at least 2"):
        make_moons(1)


def test_lecture_data():
    assert len(LECTURE_XS) == 4 and all(len(x) == 3 for x in LECTURE_XS)
    assert LECTURE_YS == [1.0, -1.0, -1.0, 1.0]
