"""Samplers: the order in which a DataLoader visits a dataset's indices.

SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler and
BatchSampler, with PyTorch's arguments and PyTorch's draws from the random generator:
with the same ``torch.Generator`` seed they give exactly torch's orders, so a handgrad
run and a torch run can be compared batch for batch. That is why the draws below are
written the way they are (``randperm`` per pass; ``randint`` in chunks of 32 with
replacement; a fresh generator seeded from the global one when none is given).

Distributed sharding of indices is left to the distributed-training code.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence, Sized

import torch


class Sampler:
    """Base class: a sampler is iterable over dataset indices (or lists of indices for a
    batch sampler). Subclasses define ``__iter__`` and usually ``__len__``."""

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``, always in that order."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


def _fresh_generator() -> torch.Generator:
    """A new generator seeded by one draw from torch's global generator (as torch does
    when a sampler has no generator: each pass then depends on ``torch.manual_seed``)."""
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


class RandomSampler(Sampler):
    """Indices in random order.

    Without replacement: a random permutation (``num_samples`` may exceed the dataset
    size, giving whole permutations one after another, the last one cut short). With
    replacement: ``num_samples`` independent uniform draws. ``generator`` is a
    ``torch.Generator``; without one, each pass seeds a fresh generator from the global
    one.
    """

    def __init__(self, data_source: Sized, replacement: bool = False,
                 num_samples: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean value, but got "
                            f"replacement={replacement}")
        if (not isinstance(self.num_samples, int) or isinstance(self.num_samples, bool)
                or self.num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples should be a positive integer value, "
                             f"but got num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        # The dataset may grow or shrink between epochs; its length is read each time.
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        generator = self.generator if self.generator is not None else _fresh_generator()
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from torch.randint(n, (32,), dtype=torch.int64,
                                         generator=generator).tolist()
            yield from torch.randint(n, (self.num_samples % 32,), dtype=torch.int64,
                                     generator=generator).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from torch.randperm(n, generator=generator).tolist()
            yield from torch.randperm(n, generator=generator).tolist()[:self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in random order (without replacement)."""

    def __init__(self, indices: Sequence[int],
                 generator: torch.Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        for i in torch.randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn from ``0 .. len(weights) - 1`` with probability
    proportional to ``weights`` (with or without replacement), via ``torch.multinomial``.
    Useful to balance classes: weight each example by ``1 / count(its class)``."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: torch.Generator | None = None) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"WeightedRandomSampler: num_samples should be a positive integer "
                             f"value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"WeightedRandomSampler: replacement should be a boolean value, "
                             f"but got replacement={replacement}")
        weights_tensor = torch.as_tensor(_maybe_raw(weights), dtype=torch.double)
        if weights_tensor.dim() != 1:
            raise ValueError(f"WeightedRandomSampler: weights should be a 1d sequence but "
                             f"given weights have shape {tuple(weights_tensor.shape)}")
        self.weights = weights_tensor
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        drawn = torch.multinomial(self.weights, self.num_samples, self.replacement,
                                  generator=self.generator)
        yield from drawn.tolist()

    def __len__(self) -> int:
        return self.num_samples


def _maybe_raw(weights):
    """Weights given as a handgrad Tensor are read through its torch tensor."""
    data = getattr(weights, "data", None)
    return data if isinstance(data, torch.Tensor) else weights


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``; the last, shorter
    list is dropped when ``drop_last``."""

    def __init__(self, sampler: Sampler | Iterable[int], batch_size: int,
                 drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer value, "
                             f"but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
