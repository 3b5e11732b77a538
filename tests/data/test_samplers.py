"""Samplers and datasets against torch's: same seed, same order; same errors."""

import pytest
import torch
import torch.utils.data as tud

from handgrad import data as hd
from handgrad._tensor import Tensor


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("n", [1, 7, 100])
def test_sequential(n):
    assert list(hd.SequentialSampler(range(n))) == list(tud.SequentialSampler(range(n)))
    assert len(hd.SequentialSampler(range(n))) == n


@pytest.mark.parametrize("n, replacement, num_samples", [
    (10, False, None), (10, False, 25), (10, False, 3), (1, False, None),
    (10, True, None), (10, True, 100), (5, True, 31), (5, True, 32), (5, True, 33),
])
def test_random_sampler_matches_torch_with_generator(n, replacement, num_samples):
    ours = hd.RandomSampler(range(n), replacement, num_samples, generator=gen(3))
    theirs = tud.RandomSampler(range(n), replacement, num_samples, generator=gen(3))
    for _ in range(3):  # successive passes keep drawing from the same generator
        assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


@pytest.mark.parametrize("replacement", [False, True])
def test_random_sampler_without_generator_follows_global_seed(replacement):
    torch.manual_seed(11)
    ours = [list(hd.RandomSampler(range(20), replacement)) for _ in range(2)]
    torch.manual_seed(11)
    theirs = [list(tud.RandomSampler(range(20), replacement)) for _ in range(2)]
    assert ours == theirs
    assert ours[0] != ours[1]


def test_random_sampler_errors():
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        hd.RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        hd.RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        hd.RandomSampler([], num_samples=None)


def test_subset_random_sampler():
    indices = [3, 9, 4, 17, 5]
    assert list(hd.SubsetRandomSampler(indices, generator=gen(1))) == \
        list(tud.SubsetRandomSampler(indices, generator=gen(1)))
    torch.manual_seed(5)
    ours = list(hd.SubsetRandomSampler(indices))
    torch.manual_seed(5)
    assert ours == list(tud.SubsetRandomSampler(indices))
    assert sorted(ours) == sorted(indices)


@pytest.mark.parametrize("replacement, num_samples", [(True, 50), (False, 4)])
def test_weighted_random_sampler(replacement, num_samples):
    weights = [0.1, 0.9, 0.4, 0.7, 3.0, 0.6]
    ours = hd.WeightedRandomSampler(weights, num_samples, replacement, generator=gen(2))
    theirs = tud.WeightedRandomSampler(weights, num_samples, replacement, generator=gen(2))
    assert list(ours) == list(theirs)
    assert len(ours) == num_samples
    as_tensor = hd.WeightedRandomSampler(Tensor(torch.tensor(weights)), num_samples,
                                         replacement, generator=gen(2))
    assert list(as_tensor) == list(tud.WeightedRandomSampler(weights, num_samples,
                                                              replacement, generator=gen(2)))


def test_weighted_random_sampler_errors():
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="num_samples should be a positive integer"):
            hd.WeightedRandomSampler([1.0, 2.0], bad)
    with pytest.raises(ValueError, match="replacement should be a boolean"):
        hd.WeightedRandomSampler([1.0, 2.0], 2, replacement=0)
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        hd.WeightedRandomSampler([[1.0, 2.0]], 2)


@pytest.mark.parametrize("n, batch_size, drop_last", [
    (10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False), (2, 5, True), (0, 2, False),
])
def test_batch_sampler(n, batch_size, drop_last):
    ours = hd.BatchSampler(hd.SequentialSampler(range(n)), batch_size, drop_last)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


def test_batch_sampler_over_random_sampler_and_plain_iterable():
    ours = hd.BatchSampler(hd.RandomSampler(range(23), generator=gen(4)), 5, False)
    theirs = tud.BatchSampler(tud.RandomSampler(range(23), generator=gen(4)), 5, False)
    assert list(ours) == list(theirs)
    assert list(hd.BatchSampler([4, 2, 7], 2, False)) == [[4, 2], [7]]


def test_batch_sampler_errors():
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="batch_size should be a positive integer"):
            hd.BatchSampler(range(3), bad, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        hd.BatchSampler(range(3), 2, 1)


# ---------------------------------------------------------------- datasets

def test_tensor_dataset_items_and_errors():
    x, y = torch.randn(5, 2), torch.arange(5)
    ds = hd.TensorDataset(Tensor(x), y)
    assert len(ds) == 5
    a, b = ds[3]
    assert isinstance(a, Tensor) and torch.equal(a.data, x[3]) and b.data.item() == 3
    with pytest.raises(ValueError, match="Size mismatch between tensors"):
        hd.TensorDataset(x, torch.arange(4))
    with pytest.raises(ValueError, match="at least one tensor"):
        hd.TensorDataset()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.bool, torch.int16])
def test_tensor_dataset_collated_batch_equals_default_collate(dtype):
    ds = hd.TensorDataset(torch.randn(9, 2, 3).to(dtype), torch.arange(9),
                          torch.randn(3, 9).t())  # a non-contiguous one too
    for index in ([4, 0, 8, 8], [-1, 2], torch.tensor([3, -2])):
        fast = ds.collated_batch(index)
        slow = hd.default_collate([ds[i] for i in index])
        for a, b in zip(fast, slow):
            assert a.data.dtype == b.data.dtype and torch.equal(a.data, b.data)
            assert a.data.is_contiguous()


def test_subset_and_concat():
    base = list(range(10))
    sub = hd.Subset(base, [7, 2, 5])
    assert [sub[i] for i in range(len(sub))] == [7, 2, 5]
    cat = hd.ConcatDataset([hd.Subset(base, [0, 1]), [10, 11, 12]])
    theirs = tud.ConcatDataset([tud.Subset(base, [0, 1]), [10, 11, 12]])
    assert len(cat) == len(theirs) == 5
    assert [cat[i] for i in range(-5, 5)] == [theirs[i] for i in range(-5, 5)]
    assert cat.cumulative_sizes == theirs.cumulative_sizes
    with pytest.raises(ValueError, match="out of range"):
        cat[-6]
    with pytest.raises(IndexError):
        cat[5]
    with pytest.raises(ValueError, match="should not be an empty"):
        hd.ConcatDataset([])
    added = hd.TensorDataset(torch.arange(2)) + hd.TensorDataset(torch.arange(3))
    assert isinstance(added, hd.ConcatDataset) and len(added) == 5


@pytest.mark.parametrize("lengths", [[3, 7], [0.5, 0.5], [0.3, 0.3, 0.4], [0.8, 0.1, 0.1],
                                     [1.0]])
def test_random_split_matches_torch(lengths):
    data = list(range(10))
    ours = hd.random_split(data, lengths, generator=gen(7))
    theirs = tud.random_split(data, lengths, generator=gen(7))
    assert [list(s.indices) for s in ours] == [list(s.indices) for s in theirs]
    torch.manual_seed(1)
    ours = hd.random_split(data, lengths)
    torch.manual_seed(1)
    theirs = tud.random_split(data, lengths)
    assert [list(s.indices) for s in ours] == [list(s.indices) for s in theirs]


def test_random_split_errors():
    with pytest.raises(ValueError, match="does not equal the length"):
        hd.random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="not between 0 and 1"):
        hd.random_split(range(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match="split at index 1 is 0"):
        hd.random_split(range(3), [0.9, 0.1])
