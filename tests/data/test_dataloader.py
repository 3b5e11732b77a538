"""DataLoader against torch's: order, batching, drop_last, samplers, collate, seeds and the
errors for contradictory arguments (single process; workers are in test_dataloader_workers)."""

import numpy as np
import pytest
import torch
import torch.utils.data as tud

from handgrad import data as hd
from handgrad._tensor import Tensor
from handgrad.data.dataloader import IndexTypeError

X = torch.randn(23, 3)
Y = torch.arange(23)


class DictDataset:
    """Map-style dataset of dict samples with mixed leaves (works for both loaders)."""

    def __len__(self):
        return 11

    def __getitem__(self, i):
        return {"x": np.full((2,), i, dtype=np.float32), "y": i, "name": f"item{i}",
                "t": (torch.tensor([i, -i]), float(i))}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def both(ours_dataset, torch_dataset, **kwargs):
    """(our loader, torch's loader) with the same arguments; ``generator=seed`` gives each
    loader its own generator seeded with ``seed``."""
    ours, theirs = dict(kwargs), dict(kwargs)
    if "generator" in kwargs:
        ours["generator"], theirs["generator"] = gen(kwargs["generator"]), gen(kwargs["generator"])
    return hd.DataLoader(ours_dataset, **ours), tud.DataLoader(torch_dataset, **theirs)


@pytest.mark.parametrize("batch_size", [1, 4, 23, 50])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_tensor_dataset_batches_match_torch(batch_size, drop_last, shuffle, same_batches):
    ours, theirs = both(hd.TensorDataset(X, Y), tud.TensorDataset(X, Y), batch_size=batch_size,
                        drop_last=drop_last, shuffle=shuffle, generator=5)
    assert len(ours) == len(theirs)
    for _epoch in range(2):  # the second epoch continues the generator like torch's
        same_batches(ours, theirs)


def test_handgrad_tensors_in_tensor_dataset(same_batches):
    ours, theirs = both(hd.TensorDataset(Tensor(X), Tensor(Y)), tud.TensorDataset(X, Y),
                        batch_size=5)
    same_batches(ours, theirs)


def test_subset_of_tensor_dataset_and_custom_dataset(same_batches):
    ours, theirs = both(hd.Subset(hd.TensorDataset(X, Y), [5, 1, 9, 22, 0]),
                        tud.Subset(tud.TensorDataset(X, Y), [5, 1, 9, 22, 0]), batch_size=2)
    same_batches(ours, theirs)
    ours, theirs = both(DictDataset(), DictDataset(), batch_size=3, shuffle=True, generator=1)
    same_batches(ours, theirs)


def test_shuffle_without_generator_follows_global_seed(same_batches):
    torch.manual_seed(123)
    ours = [list(hd.DataLoader(DictDataset(), batch_size=4, shuffle=True)) for _ in range(2)]
    torch.manual_seed(123)
    theirs = [list(tud.DataLoader(DictDataset(), batch_size=4, shuffle=True)) for _ in range(2)]
    same_batches(ours[0] + ours[1], theirs[0] + theirs[1])


def test_loader_draws_from_global_rng_like_torch():
    # Even a sequential loader draws its int64 base seed; after an epoch the global
    # generator must be where torch's leaves it.
    torch.manual_seed(0)
    list(hd.DataLoader(range(5), batch_size=2))
    ours = torch.rand(3)
    torch.manual_seed(0)
    list(tud.DataLoader(range(5), batch_size=2))
    assert torch.equal(ours, torch.rand(3))


@pytest.mark.parametrize("make_sampler", [
    lambda: (hd.SequentialSampler(range(23)), tud.SequentialSampler(range(23))),
    lambda: (hd.RandomSampler(range(23), True, 40, generator=gen(2)),
             tud.RandomSampler(range(23), True, 40, generator=gen(2))),
    lambda: (hd.SubsetRandomSampler([1, 5, 7, 9], generator=gen(3)),
             tud.SubsetRandomSampler([1, 5, 7, 9], generator=gen(3))),
    lambda: (hd.WeightedRandomSampler([1.0] * 20 + [5.0] * 3, 30, generator=gen(4)),
             tud.WeightedRandomSampler([1.0] * 20 + [5.0] * 3, 30, generator=gen(4))),
    lambda: ([22, 0, 21, 1], [22, 0, 21, 1]),  # any iterable of indices is a sampler
])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_argument(make_sampler, drop_last, same_batches):
    ours_sampler, torch_sampler = make_sampler()
    ours = hd.DataLoader(hd.TensorDataset(X, Y), batch_size=3, sampler=ours_sampler,
                         drop_last=drop_last)
    theirs = tud.DataLoader(tud.TensorDataset(X, Y), batch_size=3, sampler=torch_sampler,
                            drop_last=drop_last)
    same_batches(ours, theirs)
    assert len(ours) == len(theirs)


def test_batch_sampler_argument(same_batches):
    batches = [[3, 1], [0], [22, 21, 20, 19]]
    ours = hd.DataLoader(hd.TensorDataset(X, Y), batch_sampler=batches)
    theirs = tud.DataLoader(tud.TensorDataset(X, Y), batch_sampler=batches)
    same_batches(ours, theirs)
    as_tensors = [torch.tensor(b) for b in batches]  # index tensors work too
    same_batches(hd.DataLoader(hd.Subset(hd.TensorDataset(X, Y), torch.arange(23)),
                               batch_sampler=as_tensors), theirs)
    ours = hd.DataLoader(DictDataset(), batch_sampler=hd.BatchSampler(range(11), 4, True))
    theirs = tud.DataLoader(DictDataset(), batch_sampler=tud.BatchSampler(range(11), 4, True))
    same_batches(ours, theirs)


def test_batch_size_none_converts_items(same_batches):
    ours, theirs = both(DictDataset(), DictDataset(), batch_size=None)
    same_batches(ours, theirs)
    ours, theirs = both(hd.TensorDataset(X, Y), tud.TensorDataset(X, Y), batch_size=None,
                        shuffle=True, generator=9)
    same_batches(ours, theirs)


def test_custom_collate_fn(same_batches):
    def collate(samples):
        return len(samples), [s["y"] for s in samples]

    ours, theirs = both(DictDataset(), DictDataset(), batch_size=4, collate_fn=collate)
    assert list(ours) == list(theirs)


def test_dataset_with_getitems_is_used():
    class Batched(DictDataset):
        calls = 0

        def __getitems__(self, indices):
            Batched.calls += 1
            return [self[i] for i in indices]

    assert len(list(hd.DataLoader(Batched(), batch_size=4))) == 3
    assert Batched.calls == 3


@pytest.mark.filterwarnings("ignore:'pin_memory' argument")
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_pin_memory_is_harmless_without_cuda(same_batches):
    with pytest.warns(UserWarning, match="pin_memory=True but CUDA is not available"):
        ours, theirs = both(hd.TensorDataset(X, Y), tud.TensorDataset(X, Y), batch_size=8,
                            pin_memory=True)
    same_batches(ours, theirs)


# ---------------------------------------------------------------- contradictory arguments

BAD_ARGUMENTS = [
    dict(num_workers=-1),
    dict(timeout=-1),
    dict(prefetch_factor=2),
    dict(num_workers=2, prefetch_factor=-1),
    dict(persistent_workers=True),
    dict(sampler=[0, 1], shuffle=True),
    dict(batch_sampler=[[0, 1]], batch_size=2),
    dict(batch_sampler=[[0, 1]], shuffle=True),
    dict(batch_sampler=[[0, 1]], sampler=[0, 1]),
    dict(batch_sampler=[[0, 1]], drop_last=True),
    dict(batch_size=None, drop_last=True),
    dict(multiprocessing_context="spawn"),
    dict(num_workers=2, multiprocessing_context="no-such-method"),
    dict(num_workers=2, multiprocessing_context=5),
    dict(batch_size=0),
    dict(batch_size=-3),
    dict(drop_last=1),
]


@pytest.mark.parametrize("kwargs", BAD_ARGUMENTS, ids=[str(k) for k in BAD_ARGUMENTS])
def test_contradictory_arguments_raise_torchs_errors(kwargs):
    with pytest.raises(Exception) as torch_error:
        tud.DataLoader(range(4), **kwargs)
    with pytest.raises(Exception) as our_error:
        hd.DataLoader(range(4), **kwargs)
    assert our_error.type is torch_error.type
    # Same message (the sampler classes name themselves first in ours).
    assert str(torch_error.value) in str(our_error.value)


def test_signature_is_torchs():
    """Every argument of torch's DataLoader, by the same name, kind and default, so code
    written for torch's loader runs unchanged."""
    import inspect

    def params(cls):
        return [(p.name, p.kind, p.default)
                for p in inspect.signature(cls.__init__).parameters.values()]

    assert params(hd.DataLoader) == params(tud.DataLoader)


def test_in_order_false_and_pin_memory_device_are_accepted(same_batches):
    """in_order=False lets torch yield batches out of order; in order is one valid answer.
    pin_memory_device is torch's (deprecated) companion of pin_memory."""
    ours = hd.DataLoader(hd.TensorDataset(X, Y), batch_size=5, num_workers=2,
                         in_order=False, pin_memory_device="")
    same_batches(ours, tud.DataLoader(tud.TensorDataset(X, Y), batch_size=5))


def test_attributes_are_frozen_after_init():
    loader = hd.DataLoader(range(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3
    loader.timeout = 1  # not one of the frozen ones


def test_too_many_workers_warns():
    import os

    with pytest.warns(UserWarning, match="more than the"):
        hd.DataLoader(range(4), num_workers=len(os.sched_getaffinity(0)) + 1)


# ------------------------------------------------ indices: integers in, never truncated
class HalfSteps(hd.Sampler):
    """A sampler that yields floats, the mistake (torch.rand-based orders do it)."""

    def __iter__(self):
        return iter([0, 1.5])

    def __len__(self):
        return 2


REFUSED = [1.5, 2.0, np.float64(1.5), np.float32(2.0), torch.tensor(1.5), torch.tensor(2.0),
           True, np.bool_(False), torch.tensor(True)]
WAYS = {"sampler": lambda i: dict(sampler=[0, i], batch_size=2),
        "batch_sampler": lambda i: dict(batch_sampler=[[0, i]]),
        "batch_size=None": lambda i: dict(sampler=[i], batch_size=None)}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("index", REFUSED, ids=repr)
def test_float_and_bool_indices_are_refused_not_truncated(index, way):
    """torch's dataset indexing refuses float indices (IndexError) and takes a bool as a
    mask; handgrad refuses both with one error, a TypeError that is an IndexError too,
    naming the sampler, the value and what to do. (Before, 1.5 silently became 1.)"""
    loader = hd.DataLoader(hd.TensorDataset(X, Y), **WAYS[way](index))
    source = "batch_sampler list" if way == "batch_sampler" else "sampler list"
    with pytest.raises(IndexTypeError,
                       match=rf"DataLoader: the {source} yielded the index .*integer indices"
                             r".*Have the sampler yield ints") as info:
        list(loader)
    assert isinstance(info.value, TypeError) and isinstance(info.value, IndexError)
    assert repr(index)[:5] in str(info.value)
    as_mask = isinstance(index, bool) or getattr(index, "dtype", None) == torch.bool
    if not as_mask:
        with pytest.raises(IndexError):  # torch refuses them too
            list(tud.DataLoader(tud.TensorDataset(X, Y), **WAYS[way](index)))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_refused_index_comes_in_its_batch_turn_and_names_the_sampler(num_workers):
    loader = hd.DataLoader(hd.TensorDataset(X, Y), sampler=HalfSteps(), batch_size=1,
                           num_workers=num_workers)
    batches = iter(loader)
    assert next(batches)[1].tolist() == [0]
    with pytest.raises(TypeError, match=r"the sampler HalfSteps yielded the index 1\.5 "
                                        r"\(float\) in the batch \[1\.5\]"):
        next(batches)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("index", [3, np.int64(3), np.int32(3), np.uint8(3), torch.tensor(3),
                                   torch.tensor(3, dtype=torch.int32)], ids=repr)
def test_integer_indices_of_every_kind_keep_working_like_torch(index, way, same_batches):
    same_batches(*both(hd.TensorDataset(X, Y), tud.TensorDataset(X, Y), **WAYS[way](index)))


def test_non_integer_keys_of_a_custom_dataset_pass_through():
    """A map-style dataset may define its own keys; only floats and bools are refused."""
    table = {"a": 1, "b": 2}
    loader = hd.DataLoader(table, sampler=["b", "a"], batch_size=2)
    assert [batch.tolist() for batch in loader] == [[2, 1]]
