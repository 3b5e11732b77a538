"""Samplers: the order in which a DataLoader visits a dataset's indices.

SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler,
BatchSampler and DistributedSampler, with PyTorch's arguments and PyTorch's draws from
the random generator: with the same ``torch.Generator`` seed they give exactly torch's
orders, so a handgrad run and a torch run can be compared batch for batch. That is why
the draws below are written the way they are (``randperm`` per pass; ``randint`` in
chunks of 32 with replacement; a fresh generator seeded from the global one when none is given).

DistributedSampler shards the indices between the processes of a distributed run, with
torch's padding and permutation, so each rank sees exactly torch's indices.
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


class DistributedSampler(Sampler):
    """The share of ``dataset``'s indices that one process of a distributed run visits.

    Each of ``num_replicas`` processes (default: the world size of the default
    ``torch.distributed`` process group) gets ``num_samples`` indices, the positions
    ``rank, rank + num_replicas, ...`` of one common order. That order is
    ``torch.randperm(len(dataset))`` drawn from a generator seeded with ``seed + epoch``
    when ``shuffle`` (every process draws the same permutation), else ``0 .. len - 1``.
    To make it divide evenly, the order is padded by repeating its start
    (``drop_last=False``) or its tail is cut off (``drop_last=True``). Call
    ``set_epoch(epoch)`` before each epoch for a new permutation. The indices are exactly
    those of ``torch.utils.data.distributed.DistributedSampler``.
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None,
                 rank: int | None = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            import torch.distributed as dist
            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError(
                    "DistributedSampler: num_replicas and rank default to the world size "
                    "and rank of torch.distributed's default process group, which is not "
                    "initialised; call torch.distributed.init_process_group(...) first or "
                    "pass num_replicas= and rank=.")
            if num_replicas is None:
                num_replicas = dist.get_world_size()
            if rank is None:
                rank = dist.get_rank()
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in "
                             f"the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = seed
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            # Cut the tail so that every process gets the same number of whole samples.
            self.num_samples = -(-(n - num_replicas) // num_replicas)
        else:
            self.num_samples = -(-n // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=generator).tolist()
        else:
            order = list(range(n))
        if self.drop_last:
            order = order[:self.total_size]
        else:
            missing = self.total_size - len(order)
            if missing > 0:
                # Repeat the order from its start as often as needed to fill the gap.
                repeats = -(-missing // len(order))
                order += (order * repeats)[:missing]
        if len(order) != self.total_size:
            raise RuntimeError(f"DistributedSampler: built {len(order)} indices, expected "
                               f"{self.total_size}")
        share = order[self.rank:self.total_size:self.num_replicas]
        return iter(share)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of epoch ``epoch`` (seed ``seed + epoch``) from now on;
        call it at the start of every epoch, on every process, with the same value."""
        self.epoch = epoch
