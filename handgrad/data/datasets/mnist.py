"""MNIST proper (60,000 training and 10,000 test digits) from its IDX files.

The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each gzip-compressed or not) are
looked for in ``root``, else in ``$HANDGRAD_DATA``, else in the cache (see ``_files``),
in each case also under ``mnist/`` and torchvision's ``MNIST/raw/``. With
``download=True`` missing files are fetched from a mirror of LeCun's site and checked
against their published sha256.

``read_idx`` parses any IDX file: a 4-byte magic (two zero bytes, a type code, the
number of dimensions), one big-endian int32 per dimension, then the values, big-endian.
A file that is truncated, corrupt or not IDX raises ``DataFileError`` naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from handgrad.data.dataset import TensorDataset
from handgrad.data.datasets._files import (
    DataFileError,
    download_dir,
    download_file,
    find_file,
    missing_data_error,
    search_dirs,
)
from handgrad.data.datasets._splits import DataSplits, seeded_permutation

# The gzip files' sha256. LeCun's site publishes none (torchvision checks md5s); these
# are the values that many independent projects pin for the same files (Bazel rules,
# Guild AI, TensorFlow-based loaders), identical everywhere they appear.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# Maintained mirrors (yann.lecun.com often refuses downloads): PyTorch's, then Google's.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_SUBDIRS = ("mnist", "MNIST/raw")

# IDX type code -> (numpy big-endian dtype, bytes per value)
_IDX_TYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (judged by its content, not its
    name)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{path}: the gzip data is corrupt or truncated ({error}). "
                            f"Delete the file and get it again.") from error


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzip or not) into a numpy array of its dtype and shape."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataFileError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'none'}; "
                            f"expected 00 00, a type code in "
                            f"{sorted(hex(c) for c in _IDX_TYPES)}, and a dimension count). "
                            f"Delete the file and get it again.")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path}: truncated IDX header ({len(raw)} bytes, expected "
                            f"{header}). Delete the file and get it again.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])  # sizes are unsigned: never negative
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataFileError(f"{path}: IDX file is {kind}: {len(raw)} bytes, expected "
                            f"{expected} for shape {shape} of {dtype.name}. Delete the file "
                            f"and get it again.")
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _locate(root, download_missing: bool, mirrors: Sequence[str]) -> dict[str, Path]:
    dirs = search_dirs(root, _SUBDIRS)
    found = {}
    for key, stem in _FILES.items():
        path = find_file([stem, stem + ".gz"], dirs)
        if path is None and download_missing:
            name = stem + ".gz"
            path = download_file([mirror + name for mirror in mirrors],
                            download_dir(root, "mnist") / name, MNIST_SHA256[name])
        if path is None:
            raise missing_data_error(
                "MNIST", [stem, stem + ".gz"], dirs,
                f"call mnist(download=True) to fetch the four files (about 11 MB) from "
                f"{mirrors[0]} into {download_dir(root, 'mnist')}, or download "
                f"{', '.join(s + '.gz' for s in _FILES.values())} yourself into one of the "
                f"directories above. Offline, datasets.mnist5k() and datasets.digits() need "
                f"no files.")
        found[key] = path
    return found


def mnist(root: str | os.PathLike | None = None, *, download: bool = False,
          valid_size: int = 10_000, seed: int = 0, flatten: bool = False,
          mirrors: Sequence[str] = MNIST_MIRRORS) -> DataSplits:
    """MNIST handwritten digits from the IDX files.

    Shape: images ``(N, 1, 28, 28)`` float32 in [0, 1] (pixel / 255), or ``(N, 784)`` with
    ``flatten=True``; labels ``(N,)`` int64. ``test`` is the official 10,000-image test
    set; ``valid`` is ``valid_size`` images taken from the 60,000 training images by a
    shuffle with ``seed``, and ``train`` the rest (50,000 by default). Source: LeCun,
    Cortes and Burges, http://yann.lecun.com/exdb/mnist/ (via ``mirrors``)."""
    paths = _locate(root, download, mirrors)
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DataFileError(
                f"MNIST {split}: images {paths[f'{split}_images']} have shape {images.shape} "
                f"and labels {paths[f'{split}_labels']} shape {labels.shape}; expected "
                f"(N, 28, 28) and (N,) with the same N")
    n_train = arrays["train_images"].shape[0]
    if not 0 <= valid_size < n_train:
        raise ValueError(f"mnist: valid_size must be in [0, {n_train}), got {valid_size}")

    def images(key):
        x = torch.from_numpy(arrays[key].astype(np.float32) / 255.0)
        return x.reshape(x.shape[0], -1) if flatten else x.unsqueeze(1)

    train_x, test_x = images("train_images"), images("test_images")
    train_y = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    test_y = torch.from_numpy(arrays["test_labels"].astype(np.int64))
    order = seeded_permutation(n_train, seed)
    valid_index, train_index = order[:valid_size], order[valid_size:]
    return DataSplits(
        TensorDataset(train_x[train_index], train_y[train_index]),
        TensorDataset(train_x[valid_index], train_y[valid_index]),
        TensorDataset(test_x, test_y),
        classes=[str(d) for d in range(10)],
        description="MNIST, 28x28, pixels / 255",
        info={key: str(path) for key, path in paths.items()})
