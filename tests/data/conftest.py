"""Shared helpers for the data tests: compare handgrad batches with torch's batches."""

import pytest
import torch

from handgrad._tensor import Tensor


def assert_same_batch(ours, theirs, where="batch"):
    """``ours`` (handgrad Tensors at the leaves) equals ``theirs`` (torch's loader output):
    same structure, same dtypes, same shapes, same values."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, Tensor), f"{where}: expected a handgrad Tensor, got {type(ours)}"
        assert ours.data.dtype == theirs.dtype, f"{where}: {ours.data.dtype} vs {theirs.dtype}"
        assert ours.data.shape == theirs.shape, f"{where}: {ours.data.shape} vs {theirs.shape}"
        assert torch.equal(ours.data, theirs), f"{where}: values differ"
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), where
        for key in theirs:
            assert_same_batch(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, list | tuple):
        assert type(ours) is type(theirs), f"{where}: {type(ours)} vs {type(theirs)}"
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_batch(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs, f"{where}: {ours!r} vs {theirs!r}"


def assert_same_batches(ours, theirs):
    ours, theirs = list(ours), list(theirs)
    assert len(ours) == len(theirs), f"{len(ours)} batches vs torch's {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_same_batch(a, b, f"batch {i}")


@pytest.fixture
def same_batches():
    return assert_same_batches


@pytest.fixture
def same_batch():
    return assert_same_batch
