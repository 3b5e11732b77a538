"""DataSplits (train / valid / test) and the seeded shuffle-and-split every dataset uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from handgrad.data.dataset import TensorDataset


@dataclass
class DataSplits:
    """Three datasets that feed a DataLoader directly, plus what they hold.

    ``train, valid, test = splits`` unpacks them; ``splits.train.tensors`` gives the raw
    ``(features, targets)`` of a TensorDataset (handy to plot)."""

    train: object  # the training examples
    valid: object  # held out for model selection and early stopping
    test: object  # held out for the final figure
    classes: list[str] | None = None  # class names by label, for classification data
    description: str = ""  # what the data is, its shapes and where it came from
    info: dict = field(default_factory=dict)  # anything else (e.g. the file paths read)

    def __iter__(self):
        return iter((self.train, self.valid, self.test))

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(getattr(self, name))}"
                          for name in ("train", "valid", "test"))
        return f"DataSplits({sizes}; {self.description})"


def split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Counts for ``(train, valid, test)`` fractions: valid and test get
    ``round(n * fraction)``, train the rest."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers (train, valid, test) "
                         f"that sum to 1, got {tuple(fractions)}")
    n_valid, n_test = round(n * fractions[1]), round(n * fractions[2])
    return n - n_valid - n_test, n_valid, n_test


def seeded_permutation(n: int, seed: int) -> torch.Tensor:
    """``torch.randperm(n)`` from a generator seeded with ``seed`` (the same on every
    machine and run)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def shuffle_split(features: torch.Tensor, targets: torch.Tensor, fractions: Sequence[float],
                  seed: int, **extra) -> DataSplits:
    """Shuffle the rows with ``seed``, then cut them into train / valid / test
    TensorDatasets of the given fractions. Floating-point tensors become float32 (whatever
    torch's default dtype is)."""
    features, targets = (t.float() if t.is_floating_point() else t for t in (features, targets))
    n_train, n_valid, _ = split_counts(features.shape[0], fractions)
    order = seeded_permutation(features.shape[0], seed)
    parts = order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:]
    train, valid, test = (TensorDataset(features[p], targets[p]) for p in parts)
    return DataSplits(train, valid, test, **extra)
