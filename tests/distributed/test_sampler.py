"""DistributedSampler gives every rank exactly torch's indices (no processes needed)."""

import pytest
import torch
from torch.utils.data.distributed import DistributedSampler as TorchDistributedSampler

from handgrad.data import DistributedSampler

CASES = [  # (dataset length, replicas, shuffle, drop_last, epoch, seed)
    (10, 2, True, False, 0, 0), (10, 3, True, False, 1, 0), (10, 3, True, True, 2, 5),
    (11, 4, False, False, 0, 0), (11, 4, False, True, 0, 0), (3, 5, True, False, 3, 1),
    (2, 7, False, False, 0, 0), (100, 8, True, True, 7, 42), (17, 1, True, False, 4, 2),
]


@pytest.mark.parametrize("length, replicas, shuffle, drop_last, epoch, seed", CASES)
def test_indices_match_torch(length, replicas, shuffle, drop_last, epoch, seed):
    dataset = list(range(length))
    for rank in range(replicas):
        ours = DistributedSampler(dataset, num_replicas=replicas, rank=rank,
                                  shuffle=shuffle, seed=seed, drop_last=drop_last)
        theirs = TorchDistributedSampler(dataset, num_replicas=replicas, rank=rank,
                                         shuffle=shuffle, seed=seed, drop_last=drop_last)
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        assert list(ours) == list(theirs), (length, replicas, rank)
        assert len(ours) == len(theirs)


def test_epoch_changes_order_and_global_rng_untouched():
    sampler = DistributedSampler(list(range(50)), num_replicas=2, rank=0)
    first = list(sampler)
    state = torch.random.get_rng_state()
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert torch.equal(state, torch.random.get_rng_state())


def test_bad_rank_and_missing_process_group():
    with pytest.raises(ValueError, match="invalid rank 2"):
        DistributedSampler(list(range(4)), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(list(range(4)))
