"""Datasets: map-style (Dataset, TensorDataset, Subset, ConcatDataset, random_split,
TransformDataset) and iterable-style (IterableDataset, ChainDataset).

A map-style dataset is anything with ``__len__`` and ``__getitem__(i)`` (a plain list
works too). An iterable-style dataset is an ``IterableDataset`` subclass with
``__iter__``: a stream (lines of files, generated samples, a database cursor) read in
order, with no indices; ``__len__`` is optional. The classes here follow PyTorch's names
and meanings, so code written against torch's datasets reads the same. How an iterable
dataset is split between DataLoader workers (``get_worker_info``) is described in
``dataloader.py`` and docs/data.md.

``TensorDataset`` keeps raw torch tensors inside and hands out rows wrapped as handgrad
Tensors; it also offers ``collated_batch(indices)``, which the DataLoader uses to build a
whole batch with one gather instead of ``batch_size`` row lookups and a stack.
``TransformDataset(dataset, transform, target_transform)`` applies a transform (such as
those of ``transforms.py``) to each item's input and target as it is read, so random
augmentation runs per sample, in the DataLoader's workers when there are any.
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from handgrad.data._tensors import to_torch, wrap


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and ``__len__``.

    ``a + b`` concatenates two datasets (a ``ConcatDataset``), as in torch.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset, Iterable):
    """Base class of iterable-style datasets: subclasses define ``__iter__`` (and may
    define ``__len__``); ``IterableDataset`` itself cannot be instantiated.

    A DataLoader reads the items in the order ``__iter__`` gives them (no sampler, no
    shuffle). With ``num_workers > 0`` each worker iterates over its own copy, so every
    item comes once per worker unless ``__iter__`` uses ``get_worker_info()`` to read
    only its share. ``a + b`` chains two iterable datasets (a ``ChainDataset``), as in
    torch.
    """

    @abstractmethod  # as in torch: IterableDataset() itself is a TypeError
    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other) -> ChainDataset:
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Several iterable datasets one after another, read lazily; ``len`` is the sum
    (when every part has one)."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self) -> Iterator:
        for dataset in self.datasets:
            _check_iterable(dataset)
            yield from dataset

    def __len__(self) -> int:
        total = 0
        for dataset in self.datasets:
            _check_iterable(dataset)
            total += len(dataset)
        return total


def _check_iterable(dataset) -> None:
    if not isinstance(dataset, IterableDataset):  # torch's check and its AssertionError
        raise AssertionError(f"ChainDataset only supports IterableDataset, got "
                             f"{type(dataset).__name__}")


class TensorDataset(Dataset):
    """Rows of equal-length tensors: item ``i`` is ``(t[i] for t in tensors)``.

    Accepts handgrad Tensors and torch tensors (stored as the raw torch tensors in
    ``self.tensors``); items are handgrad Tensors. Every tensor must have the same size
    along dimension 0.
    """

    def __init__(self, *tensors) -> None:
        raw = tuple(to_torch(t) for t in tensors)
        if not raw:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = [t.shape[0] if t.dim() > 0 else None for t in raw]
        if any(s is None for s in sizes) or len(set(sizes)) != 1:
            shapes = [tuple(t.shape) for t in raw]
            raise ValueError(
                f"Size mismatch between tensors: TensorDataset needs the same size along "
                f"dimension 0 in every tensor, got shapes {shapes}")
        self.tensors = raw

    def __getitem__(self, index):
        return tuple(wrap(t[index]) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def collated_batch(self, indices: Sequence[int]) -> list:
        """``default_collate([self[i] for i in indices])`` computed with one gather per
        tensor: a list of handgrad Tensors of shape ``(len(indices), *row_shape)``."""
        return [wrap(_gather_rows(t, indices)) for t in self.tensors]


def _gather_rows(t: torch.Tensor, indices) -> torch.Tensor:
    """``t[indices]`` along dimension 0, as a new contiguous tensor.

    On the CPU the gather is numpy's fancy indexing, a plain single-threaded copy: torch's
    ``index_select`` splits even a 64-row gather over its intra-op threads, which costs
    little on an idle machine but up to 40x more when the cores are busy (measured: an
    MNIST-sized epoch of 938 batches took 2.7 s with index_select on a loaded 2-core
    machine, 0.07 s with numpy). Other devices and dtypes numpy lacks (bfloat16) use
    torch's indexing."""
    if t.device.type == "cpu":
        try:
            array = t.numpy()
        except (TypeError, RuntimeError):  # a dtype numpy does not have
            array = None
        if array is not None:
            return torch.from_numpy(array[np.asarray(indices, dtype=np.int64)])
    return t[torch.as_tensor(indices, dtype=torch.int64, device=t.device)]


class Subset(Dataset):
    """The items of ``dataset`` at positions ``indices``, in that order."""

    def __init__(self, dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class TransformDataset(Dataset):
    """The items of ``dataset`` with ``transform`` applied to the input (the first
    element of a tuple item, or the whole item otherwise) and ``target_transform`` to the
    target (the second element), each time an item is read: the ``transform=`` /
    ``target_transform=`` arguments of torchvision's datasets, for any dataset.

    Random transforms draw from torch's global generator, which DataLoader workers seed
    per worker (``base_seed + worker_id``), so augmentation differs between workers and
    epochs and repeats exactly for a seeded run."""

    def __init__(self, dataset, transform=None, target_transform=None) -> None:
        for name, value in (("transform", transform), ("target_transform", target_transform)):
            if value is not None and not callable(value):
                raise TypeError(f"TransformDataset: {name} must be callable (or None), got "
                                f"{type(value).__name__}")
        self.dataset = dataset
        self.transform = transform
        self.target_transform = target_transform

    def __getitem__(self, index):
        item = self.dataset[index]
        if not isinstance(item, tuple | list):
            return self.transform(item) if self.transform is not None else item
        item = list(item)
        if self.transform is not None and item:
            item[0] = self.transform(item[0])
        if self.target_transform is not None and len(item) > 1:
            item[1] = self.target_transform(item[1])
        return tuple(item)

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({type(self.dataset).__name__} of {len(self)}, "
                f"transform={self.transform!r}, target_transform={self.target_transform!r})")


class ConcatDataset(Dataset):
    """Several datasets one after another: ``len`` is the sum, negative indices work."""

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for dataset in self.datasets:
            if isinstance(dataset, IterableDataset):  # torch's check and its AssertionError
                raise AssertionError("ConcatDataset does not support IterableDataset; chain "
                                     "iterable datasets with ChainDataset (or a + b)")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        if index < 0:
            if -index > len(self):
                raise ValueError(
                    f"ConcatDataset: index {index} is out of range for length {len(self)}")
            index = len(self) + index
        dataset_index = bisect.bisect_right(self.cumulative_sizes, index)
        if dataset_index == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {index} is out of range for length "
                             f"{len(self)}")
        start = 0 if dataset_index == 0 else self.cumulative_sizes[dataset_index - 1]
        return self.datasets[dataset_index][index - start]


def random_split(dataset, lengths: Sequence[int | float],
                 generator: torch.Generator | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (each
    gets ``floor(n * fraction)`` items, and the remainder is handed out one by one from
    the first split on). The permutation is ``torch.randperm(n, generator=generator)``
    (torch's global generator when None), so with the same seed the splits equal torch's.
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = []
        for i, fraction in enumerate(lengths):
            if fraction < 0 or fraction > 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1")
            counts.append(int(math.floor(n * fraction)))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; this "
                              f"split will be empty", stacklevel=2)
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths {sum(lengths)} does not equal "
                         f"the length of the input dataset ({n})")
    permutation = torch.randperm(n, generator=generator).tolist()
    return [Subset(dataset, permutation[end - length:end])
            for end, length in zip(itertools.accumulate(lengths), lengths)]
