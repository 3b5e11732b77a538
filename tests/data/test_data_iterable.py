"""Iterable-style datasets: IterableDataset, ChainDataset, and the DataLoader over them,
in one process and in workers -- compared batch for batch with torch.utils.data.

Each stream is written once as a mixin and made a dataset of both frameworks
(``make(Stream, hd)`` / ``make(Stream, tud)``), so ``get_worker_info`` inside a worker is
the framework's own."""

import gc
import math
import multiprocessing
import os
import random
import time
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

from handgrad import data as hd

# 3 workers on this 2-core machine: both loaders warn that it is more than the CPUs.
pytestmark = [pytest.mark.filterwarnings("ignore:.*worker processes in total"),
              pytest.mark.filterwarnings("ignore:DataLoader. num_workers=\\d+ is more than")]


def make(stream_class, framework, *args, **kwargs):
    """An instance of ``stream_class`` as an IterableDataset of ``framework`` (hd or tud)."""
    cls = type(stream_class.__name__, (stream_class, framework.IterableDataset),
               {"worker_info": staticmethod(framework.get_worker_info)})
    return cls(*args, **kwargs)


def both(stream_class, *args, **kwargs):
    return make(stream_class, hd, *args, **kwargs), make(stream_class, tud, *args, **kwargs)


def item(i):
    return {"x": torch.tensor([i, i * i]), "y": i, "name": f"item{i}"}


class Count:
    """Items 0 .. n-1, the same in every worker (no sharding)."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return (item(i) for i in range(self.n))


class RecipeShards:
    """torch's documented recipe: items start .. end-1 cut into num_workers contiguous
    shards of ceil(n / num_workers); the last shard is shorter."""

    def __init__(self, start, end):
        self.start, self.end = start, end

    def __iter__(self):
        info = self.worker_info()
        if info is None:
            low, high = self.start, self.end
        else:
            per_worker = math.ceil((self.end - self.start) / info.num_workers)
            low = self.start + info.id * per_worker
            high = min(low + per_worker, self.end)
        return (item(i) for i in range(low, high))


class UnevenShards:
    """Worker w reads ``lengths[w]`` items, numbered from 100 * w: shards of very
    different lengths, so workers run out at different rounds (an empty one too)."""

    def __init__(self, lengths):
        self.lengths = lengths

    def __iter__(self):
        info = self.worker_info()
        worker = 0 if info is None else info.id
        return (item(100 * worker + i) for i in range(self.lengths[worker]))


class Sized(Count):
    """Count that reports ``claimed`` as its length (which may be wrong)."""

    def __init__(self, n, claimed):
        super().__init__(n)
        self.claimed = claimed

    def __len__(self):
        return self.claimed


class FailsAt:
    """Worker 1 (or the main process) raises KeyError at its item ``at``."""

    def __init__(self, n, at):
        self.n, self.at = n, at

    def __iter__(self):
        info = self.worker_info()
        worker = 0 if info is None else info.id
        for i in range(self.n):
            if i == self.at and (info is None or worker == 1):
                raise KeyError(f"no record {i} in worker {worker}")
            yield 10 * i + worker


class FailsToOpen:
    def __iter__(self):
        raise FileNotFoundError("shard-0001.txt")


class RandomDraws:
    """Draws from every generator a worker seeds, and what get_worker_info says."""

    def __iter__(self):
        info = self.worker_info()
        for _ in range(4):
            yield {"python": random.random(), "numpy": np.random.rand(),
                   "torch": torch.rand(()).item(), "id": info.id, "seed": info.seed,
                   "num_workers": info.num_workers, "same_dataset": info.dataset is self,
                   "pid": os.getpid()}


class Configured:
    """Reads start .. end-1; torch's second recipe sets start and end per worker in
    worker_init_fn through get_worker_info().dataset."""

    def __init__(self, start, end):
        self.start, self.end = start, end

    def __iter__(self):
        return iter(range(self.start, self.end))


def split_in_init(get_worker_info):
    def init(worker_id):
        info = get_worker_info()
        dataset = info.dataset  # this worker's copy
        per_worker = math.ceil((dataset.end - dataset.start) / info.num_workers)
        dataset.start = dataset.start + worker_id * per_worker
        dataset.end = min(dataset.start + per_worker, dataset.end)
    return init


# ---------------------------------------------------------------- the datasets

def test_iterable_dataset_and_chain_dataset():
    assert hd.get_worker_info() is None
    with pytest.raises(TypeError, match="abstract"):
        hd.IterableDataset()
    a, b = make(Count, hd, 2), make(Sized, hd, 3, 3)
    chained = a + b
    assert isinstance(chained, hd.ChainDataset) and isinstance(chained, hd.IterableDataset)
    assert [x["y"] for x in chained] == [0, 1, 0, 1, 2]
    assert len(hd.ChainDataset([b, b])) == 6
    with pytest.raises(TypeError):
        len(chained)  # Count has no length, like torch's
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        list(hd.ChainDataset([a, [1, 2]]))
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        hd.ConcatDataset([a, hd.TensorDataset(torch.zeros(2))])
    with pytest.raises(NotImplementedError):
        a[0]


# ---------------------------------------------------------------- one process

@pytest.mark.parametrize("batch_size, drop_last", [(1, False), (3, False), (3, True),
                                                    (5, True), (None, False)])
def test_single_process_batches_equal_torchs(batch_size, drop_last, same_batches):
    ours, theirs = both(Count, 11)
    same_batches(hd.DataLoader(ours, batch_size=batch_size, drop_last=drop_last),
                 tud.DataLoader(theirs, batch_size=batch_size, drop_last=drop_last))
    ours, theirs = both(Count, 0)
    same_batches(hd.DataLoader(ours, batch_size=batch_size, drop_last=drop_last),
                 tud.DataLoader(theirs, batch_size=batch_size, drop_last=drop_last))


def test_collate_fn_and_a_fresh_pass_each_epoch(same_batches):
    ours, theirs = both(Count, 7)

    def collate(samples):
        return [sample["name"] for sample in samples]

    loader = hd.DataLoader(ours, batch_size=3, collate_fn=collate)
    for _epoch in range(2):
        assert list(loader) == list(tud.DataLoader(theirs, batch_size=3, collate_fn=collate))
    assert list(hd.DataLoader(ours, batch_size=None, collate_fn=collate_names)) == \
        [f"item{i}" for i in range(7)]


def collate_names(sample):
    return sample["name"]


def test_arguments_torch_rejects_with_an_iterable_dataset():
    ours, theirs = both(Count, 4)
    for kwargs in ({"shuffle": True}, {"sampler": [0, 1]}, {"batch_sampler": [[0, 1]]},
                   {"sampler": [0], "shuffle": True}):
        with pytest.raises(ValueError) as torch_error:
            tud.DataLoader(theirs, **kwargs)
        with pytest.raises(ValueError) as our_error:
            hd.DataLoader(ours, **kwargs)
        assert str(our_error.value) == str(torch_error.value)
    loader = hd.DataLoader(ours, shuffle=False)  # allowed, as in torch
    assert [b["y"].data.tolist() for b in loader] == [[0], [1], [2], [3]]


@pytest.mark.parametrize("batch_size, drop_last", [(1, False), (4, False), (4, True),
                                                    (None, False)])
def test_len_follows_the_datasets_len(batch_size, drop_last):
    ours, theirs = both(Sized, 10, 10)
    assert len(hd.DataLoader(ours, batch_size=batch_size, drop_last=drop_last)) == \
        len(tud.DataLoader(theirs, batch_size=batch_size, drop_last=drop_last))
    ours, theirs = both(Count, 10)
    with pytest.raises(TypeError) as torch_error:
        len(tud.DataLoader(theirs, batch_size=batch_size))
    with pytest.raises(TypeError) as our_error:
        len(hd.DataLoader(ours, batch_size=batch_size))
    assert str(our_error.value) == str(torch_error.value)


def _warned_at(loader, call_len):
    """Which batches (1-based) come with a warning about the dataset's length."""
    if call_len:
        len(loader)
    warned = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for number, _batch in enumerate(loader, start=1):
            messages = [str(w.message) for w in caught]
            caught.clear()
            warned += [(number, m) for m in messages if m.startswith("Length of IterableDataset")]
    return warned


@pytest.mark.parametrize("batch_size, num_workers", [(None, 0), (1, 0), (3, 0), (3, 2)])
def test_warning_when_more_come_than_len_said(batch_size, num_workers):
    """Like torch: once len(loader) was asked, every batch past the dataset's len warns.
    torch counts batches against the dataset's number of items (not len(loader)), so
    with batch_size=3 and len 5 the warning starts at the 6th batch; handgrad does the
    same. Without a len(loader) call there is no warning."""
    ours, theirs = both(Sized, 20, 5)
    kwargs = {"batch_size": batch_size, "num_workers": num_workers}
    our_warnings = _warned_at(hd.DataLoader(ours, **kwargs), call_len=True)
    their_warnings = _warned_at(tud.DataLoader(theirs, **kwargs), call_len=True)
    assert [n for n, _ in our_warnings] == [n for n, _ in their_warnings]
    assert our_warnings and all(f"was reported to be 5(when accessing len(dataloader)), but "
                                f"{n} samples have been fetched" in m for n, m in our_warnings)
    if num_workers:
        assert all("IterableDataset replica at each worker" in m for _, m in our_warnings)
    assert _warned_at(hd.DataLoader(ours, **kwargs), call_len=False) == []


def test_error_in_the_stream_single_process():
    ours, theirs = both(FailsAt, 6, 4)
    iterator = iter(hd.DataLoader(ours, batch_size=3))
    assert next(iterator).data.tolist() == [0, 10, 20]
    with pytest.raises(KeyError, match="no record 4"):
        next(iterator)


# ---------------------------------------------------------------- workers

def outcomes(loader):
    """Every batch the loader yields, with raised exceptions in place, until it ends."""
    results, iterator = [], iter(loader)
    while True:
        try:
            results.append(next(iterator))
        except StopIteration:
            return results
        except Exception as error:  # noqa: BLE001 -- compared with torch's
            results.append(type(error).__name__)


@pytest.mark.parametrize("num_workers, batch_size, drop_last", [
    (2, 3, False), (2, 3, True), (3, 4, False), (3, 4, True), (2, None, False),
    (3, 1, False),
])
def test_sharding_recipe_in_workers_equals_torch(num_workers, batch_size, drop_last,
                                                 same_batches):
    ours, theirs = both(RecipeShards, 3, 20)  # shards of 9, 8 (2 workers); 6, 6, 5 (3)
    kwargs = {"batch_size": batch_size, "drop_last": drop_last, "num_workers": num_workers}
    same_batches(hd.DataLoader(ours, **kwargs), tud.DataLoader(theirs, **kwargs))


@pytest.mark.parametrize("lengths, batch_size, drop_last, prefetch_factor", [
    ((7, 2), 2, False, 2), ((7, 2), 2, True, 1), ((9, 0, 4), 2, False, 2),
    ((1, 10, 5), 3, True, 2), ((5, 10, 1), 3, False, 3), ((0, 0), 2, False, 2),
])
def test_uneven_shards_round_robin_equals_torch(lengths, batch_size, drop_last,
                                                prefetch_factor, same_batches):
    """Batches come from the workers in turn; a worker that runs out is skipped while
    the others go on -- the same batches in the same order as torch."""
    ours, theirs = both(UnevenShards, lengths)
    kwargs = {"batch_size": batch_size, "drop_last": drop_last,
              "num_workers": len(lengths), "prefetch_factor": prefetch_factor}
    same_batches(hd.DataLoader(ours, **kwargs), tud.DataLoader(theirs, **kwargs))


def test_without_sharding_every_worker_yields_every_item(same_batches):
    ours, theirs = both(Count, 5)
    batches = list(hd.DataLoader(ours, batch_size=2, num_workers=2))
    assert [b["y"].data.tolist() for b in batches] == [[0, 1], [0, 1], [2, 3], [2, 3], [4], [4]]
    same_batches(batches, tud.DataLoader(theirs, batch_size=2, num_workers=2))


def test_worker_info_seeds_and_worker_init_fn(same_batches):
    """Inside a worker get_worker_info() gives id, num_workers, seed and the worker's own
    copy of the dataset; python, numpy and torch draws equal torch's workers' draws."""
    ours, theirs = both(RandomDraws)
    generator = torch.Generator().manual_seed(5)
    batches = list(hd.DataLoader(ours, batch_size=2, num_workers=2, generator=generator))
    pids = {pid for b in batches for pid in b.pop("pid").data.tolist()}
    assert len(pids) == 2 and os.getpid() not in pids
    their_batches = list(tud.DataLoader(theirs, batch_size=2, num_workers=2,
                                        generator=torch.Generator().manual_seed(5)))
    same_batches(batches, [{k: v for k, v in b.items() if k != "pid"} for b in their_batches])
    assert [b["id"].data.tolist() for b in batches] == [[0, 0], [1, 1]] * 2
    assert all(b["same_dataset"].data.all() for b in batches)

    ours, theirs = both(Configured, 3, 14)
    loader = hd.DataLoader(ours, batch_size=2, num_workers=3,
                           worker_init_fn=split_in_init(hd.get_worker_info))
    same_batches(loader, tud.DataLoader(theirs, batch_size=2, num_workers=3,
                                        worker_init_fn=split_in_init(tud.get_worker_info)))
    assert (ours.start, ours.end) == (3, 14)  # the main process's copy is untouched


def test_error_in_a_worker_comes_back_with_its_traceback(same_batch):
    ours, theirs = both(FailsAt, 6, 2)
    iterator = iter(hd.DataLoader(ours, batch_size=2, num_workers=2))
    assert [next(iterator).data.tolist() for _ in range(3)] == [[0, 10], [1, 11], [20, 30]]
    with pytest.raises(KeyError, match=r"(?s)in DataLoader worker process 1.*"
                                       r"Traceback.*in __iter__.*no record 2 in worker 1"):
        next(iterator)
    # As in torch: the failed stream has ended, the other worker goes on.
    ours_after, theirs_after = (outcomes(hd.DataLoader(ours, batch_size=2, num_workers=2)),
                                outcomes(tud.DataLoader(theirs, batch_size=2, num_workers=2)))
    assert len(ours_after) == len(theirs_after) == 5
    for a, b in zip(ours_after, theirs_after):
        same_batch(a, b)

    loader = hd.DataLoader(make(FailsToOpen, hd), num_workers=2)
    with pytest.raises(FileNotFoundError, match="(?s)in DataLoader worker process 0.*shard-0001"):
        list(loader)
    # Each worker reports its failed __iter__ once and has ended. (torch 2.13 reports it
    # once too, then UnboundLocalError for every further batch, for ever.)
    assert outcomes(loader) == ["FileNotFoundError", "FileNotFoundError"]
    with pytest.raises(FileNotFoundError, match="shard-0001"):
        iter(hd.DataLoader(make(FailsToOpen, hd)))  # in one process: when iteration starts

    def init(worker_id):
        raise ValueError(f"no shard for worker {worker_id}")

    with pytest.raises(ValueError, match="(?s)worker_init_fn.*no shard for worker"):
        list(hd.DataLoader(make(Count, hd, 4), num_workers=2, worker_init_fn=init))


def test_workers_stop_at_the_end_and_when_abandoned():
    loader = hd.DataLoader(make(UnevenShards, hd, (30, 3)), batch_size=2, num_workers=2)
    iterator = iter(loader)
    next(iterator)
    processes = list(iterator._pool.processes)
    assert len(list(iterator)) == 15 + 2 - 1
    assert all(_gone(p) for p in processes)
    with pytest.raises(StopIteration):
        next(iterator)

    iterator = iter(loader)
    next(iterator)  # a break: the iterator is dropped with tasks in flight
    processes = list(iterator._pool.processes)
    del iterator
    gc.collect()
    assert all(_gone(p) for p in processes)


def _gone(process, seconds=20.0):
    deadline = time.monotonic() + seconds
    while process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process.is_alive()


def test_persistent_workers_start_each_epoch_afresh(same_batches):
    ours, theirs = both(UnevenShards, (5, 1, 8))
    kwargs = {"batch_size": 2, "num_workers": 3, "persistent_workers": True}
    our_loader, their_loader = hd.DataLoader(ours, **kwargs), tud.DataLoader(theirs, **kwargs)
    pids = None
    for _epoch in range(3):
        same_batches(our_loader, their_loader)
        now = [p.pid for p in our_loader._iterator._pool.processes]
        assert pids is None or now == pids
        pids = now
    # An epoch abandoned half-way: the next one reads every stream from its start.
    iterator = iter(our_loader)
    next(iterator)
    next(iterator)
    same_batches(our_loader, their_loader)
    our_loader._iterator._shutdown()
    assert not [p for p in multiprocessing.active_children() if p.pid in pids]
