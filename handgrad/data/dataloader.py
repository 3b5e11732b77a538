"""DataLoader: batches from a map-style or iterable-style dataset, in one process or with
worker processes.

``DataLoader(dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
worker_init_fn=None, multiprocessing_context=None, generator=None, *,
prefetch_factor=None, persistent_workers=False, pin_memory_device="", in_order=True)``
(torch's signature) gives every argument PyTorch's
meaning, raises PyTorch's errors for contradictory arguments, and draws from the random
generator in PyTorch's order (one int64 "base seed" per iterator, then the sampler), so
with the same ``torch.Generator`` seed it yields the same batches as torch.

How the pieces fit::

    batch_sampler --indices--> fetch (dataset[i] for i, then collate_fn) --> batch
    iterable dataset: iter(dataset) --next batch_size items--> collate_fn --> batch

Indices into a map-style dataset are checked as the sampler yields them: a float or bool
(Python, numpy or tensor) raises ``IndexTypeError`` (a TypeError and an IndexError)
naming the sampler and the value, where it would otherwise be truncated (1.5 -> 1) or
taken as a mask; ints, numpy ints, 0-d integer tensors and other keys go through.

With ``num_workers=0`` the fetch runs in this process. With ``num_workers=N > 0`` it
runs in N worker processes (the ``fork`` start method on Linux: the dataset is
inherited, not pickled; pass ``multiprocessing_context="spawn"`` for a fresh
interpreter). Each worker has its own task pipe and result pipe. Batch ``k`` goes to
worker ``k % N``; since a worker answers its tasks in order, reading worker
``k % N``'s pipe gives batch ``k``: the order is the sampler's order, with no reordering
buffer. ``prefetch_factor`` batches per worker are kept in flight. Tensors travel
through shared memory (torch's pickling hooks); results are pickled in the worker, so a
batch that cannot be pickled is reported, not lost. Like torch, each worker is seeded
with ``base_seed + worker_id`` (``random``, ``torch``, and ``numpy`` through the same
SeedSequence derivation torch uses), runs torch with one thread, and can be inspected
with ``get_worker_info()``.

An ``IterableDataset`` has no indices: as in torch, its sampler is an endless stream of
``None`` and a batch is the next ``batch_size`` items of ``iter(dataset)`` (the last one
shorter, or dropped with ``drop_last``); ``shuffle``, ``sampler`` and ``batch_sampler``
are refused. With workers, each worker iterates over its own copy of the dataset (read
``get_worker_info()`` in ``__iter__`` to take a share; otherwise every item comes once
per worker). Batches are taken from the workers in turn, 0, 1, ..., N-1, 0, ...; a
worker whose stream has ended is skipped while the others go on, and the epoch ends when
all have ended -- torch's order exactly. Each epoch calls ``iter(dataset)`` afresh in
every worker (persistent workers too). ``len(loader)`` is computed from
``len(dataset)`` when the dataset has one, and a warning comes when more batches arrive
than ``len(dataset)`` said (torch compares the count of batches with the count of items,
and so does handgrad).

Workers stop when the epoch ends, when the iterator is garbage-collected (a ``break``
out of the loop), at interpreter exit, and by themselves when the parent process dies.
A worker that dies (killed, out of memory) is reported with its pid and exit code.

Left out: out-of-order batches (``in_order=False`` is accepted and still yields in
order), distributed sharding, torch's DataPipes.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import random
import sys
import time
import traceback
import warnings
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from handgrad.data._tensors import is_handgrad_tensor, wrap
from handgrad.data.collate import default_collate, default_convert
from handgrad.data.dataset import IterableDataset, Subset, TensorDataset
from handgrad.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

# How often a waiting process wakes to check that its peer is still alive (seconds).
_STATUS_CHECK_INTERVAL = 1.0
# How long shutdown waits for a worker to exit by itself before terminating it.
_JOIN_TIMEOUT = 5.0


# ---------------------------------------------------------------- worker information

@dataclass(frozen=True)
class WorkerInfo:
    """What a worker process knows about itself (see ``get_worker_info``)."""

    id: int  # this worker's index, 0 .. num_workers - 1
    num_workers: int  # how many workers the DataLoader started
    seed: int  # the seed of this worker's random, torch and numpy generators
    dataset: object  # this process's copy of the dataset


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker: its ``WorkerInfo``; in the main process: None.

    Use it in ``worker_init_fn``, ``__getitem__`` or an iterable dataset's ``__iter__``,
    e.g. to read only this worker's shard of a stream, to open one file handle per
    worker, or to seed a library that handgrad does not seed for you."""
    return _worker_info


def _numpy_seed(base_seed: int, worker_id: int) -> list[int]:
    """Four 32-bit words for ``np.random.seed``: numpy's SeedSequence over
    ``[worker_id, low 32 bits of base_seed, high 32 bits, 0]``, which is the derivation
    torch's workers use, so numpy draws in a worker equal torch's."""
    mask = 0xFFFFFFFF
    sequence = np.random.SeedSequence([worker_id, base_seed & mask, base_seed >> 32, 0])
    return [int(word) for word in sequence.generate_state(4)]


# ---------------------------------------------------------------- fetching one batch

def _fetch(dataset, index, auto_collation: bool, collate_fn):
    """One batch: ``collate_fn([dataset[i] for i in index])``, or one converted item
    when automatic batching is off. A TensorDataset (or a Subset of one) with the default
    collate is gathered in one indexing call per tensor; the result is the same."""
    if not auto_collation:
        return collate_fn(dataset[index])
    if collate_fn is default_collate:
        base, positions = dataset, index
        while isinstance(base, Subset):
            positions = [base.indices[i] for i in positions]
            base = base.dataset
        if type(base) is TensorDataset and len(positions) > 0:
            return base.collated_batch(positions)
    getitems = getattr(dataset, "__getitems__", None)
    samples = getitems(index) if getitems else [dataset[i] for i in index]
    return collate_fn(samples)


class IndexTypeError(TypeError, IndexError):
    """A sampler yielded a float or bool where a map-style dataset needs an integer index.

    A TypeError (a float is the wrong type of index, as Python's own ``[1, 2][1.5]``
    says) and also an IndexError, what torch's tensor indexing raises for one, so code
    that catches either catches it."""


def _refused_index(i) -> bool:
    """Whether ``i`` is a float, complex or bool index (Python, numpy or a tensor): what
    torch's dataset indexing refuses or, for bools, takes as a mask. Anything else goes
    to the dataset as it is (ints, numpy ints, 0-d integer tensors, and the non-integer
    keys a map-style dataset may define)."""
    if isinstance(i, bool | float | complex | np.bool_ | np.inexact):
        return True
    if is_handgrad_tensor(i):
        i = i.data
    if isinstance(i, torch.Tensor | np.ndarray):
        return i.dtype.kind in "fcb" if isinstance(i, np.ndarray) else (
            i.dtype.is_floating_point or i.dtype.is_complex or i.dtype == torch.bool)
    return False


def _checked_indices(index_iter, loader):
    """The indices (or batches of them) of ``index_iter``, as they come, with every float
    or bool index refused by an IndexTypeError that names the sampler that yielded it.
    Never truncated: numpy's int64 conversion would make 1.5 into 1 without a word."""
    batched = loader._auto_collation
    for index in index_iter:
        if not batched:
            if type(index) is not int and _refused_index(index):
                _refuse(loader, index, None)
        elif isinstance(index, torch.Tensor | np.ndarray) or is_handgrad_tensor(index):
            if _refused_index(index):
                _refuse(loader, index, index)
        else:
            for i in index:
                if type(i) is not int and _refused_index(i):
                    _refuse(loader, i, index)
        yield index


def _refuse(loader, value, batch):
    batch_sampler = loader.batch_sampler
    if batch is None or type(batch_sampler) is BatchSampler:
        source = "sampler " + type(batch_sampler.sampler if batch is not None
                                   else loader.sampler).__name__
    else:
        source = "batch_sampler " + type(batch_sampler).__name__
    where = "" if batch is None or batch is value else f" in the batch {batch!r:.80}"
    kind = (f"{type(value).__name__} of dtype {value.dtype}"
            if hasattr(value, "dtype") and not isinstance(value, np.generic)
            else type(value).__name__)
    raise IndexTypeError(
        f"DataLoader: the {source} yielded the index {value!r:.80} ({kind}){where}; a "
        "map-style dataset takes integer indices (int, numpy integer or 0-d integer "
        "tensor), not floats or bools, and handgrad never truncates one. Have the sampler "
        "yield ints (e.g. int(i) for a whole float, torch.randperm(n).tolist() for an "
        "order).")


class _InfiniteConstantSampler(Sampler):
    """The sampler of an iterable dataset (as in torch): ``None`` for ever. An iterable
    dataset has no indices; batched, these only count how many items make a batch."""

    def __iter__(self):
        while True:
            yield None


class _StreamFetcher:
    """Batches from one pass over an iterable dataset (torch's ``_IterableDatasetFetcher``):
    ``fetch(index)`` takes the next ``len(index)`` items and collates them, or one item
    without automatic batching; raises StopIteration when the stream has nothing more
    (or, with ``drop_last``, only a short batch)."""

    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool) -> None:
        self.dataset_iter = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.dataset_iter))
        items = []
        for _ in index:
            try:
                items.append(next(self.dataset_iter))
            except StopIteration:
                self.ended = True
                break
        if not items or (self.drop_last and len(items) < len(index)):
            raise StopIteration
        return self.collate_fn(items)


class _WorkerStream:
    """A worker's pass over its copy of an iterable dataset, started afresh (``iter``)
    at the first task of each epoch."""

    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool) -> None:
        self.arguments = (dataset, auto_collation, collate_fn, drop_last)
        self.epoch = None
        self.fetcher = None

    def fetch(self, epoch: int, index):
        if epoch != self.epoch:
            self.epoch, self.fetcher = epoch, None
            self.fetcher = _StreamFetcher(*self.arguments)  # an error here is this task's
        if self.fetcher is None:  # iter(dataset) failed this epoch: the stream has ended
            raise StopIteration
        return self.fetcher.fetch(index)


# ---------------------------------------------------------------- moving batches between processes

class _RawTensor:
    """A handgrad Tensor on its way between processes: only the torch tensor travels."""

    __slots__ = ("data",)

    def __init__(self, data: torch.Tensor) -> None:
        self.data = data


def _pack(obj):
    """Replace handgrad Tensors by their raw torch tensors in common containers."""
    if is_handgrad_tensor(obj):
        return _RawTensor(obj.data)
    if isinstance(obj, list):
        return [_pack(x) for x in obj]
    if isinstance(obj, tuple):
        packed = [_pack(x) for x in obj]
        return type(obj)(*packed) if hasattr(obj, "_fields") else tuple(packed)
    if type(obj) is dict:
        return {key: _pack(value) for key, value in obj.items()}
    return obj


def _unpack(obj):
    """The inverse of ``_pack``."""
    if isinstance(obj, _RawTensor):
        return wrap(obj.data)
    if isinstance(obj, list):
        return [_unpack(x) for x in obj]
    if isinstance(obj, tuple):
        unpacked = [_unpack(x) for x in obj]
        return type(obj)(*unpacked) if hasattr(obj, "_fields") else tuple(unpacked)
    if type(obj) is dict:
        return {key: _unpack(value) for key, value in obj.items()}
    return obj


def _pin(obj):
    """Page-locked copies of the batch's tensors (for faster, asynchronous copies to a GPU)."""
    if is_handgrad_tensor(obj):
        return wrap(obj.data.pin_memory())
    if isinstance(obj, torch.Tensor):
        return obj.pin_memory()
    if isinstance(obj, list):
        return [_pin(x) for x in obj]
    if isinstance(obj, tuple):
        pinned = [_pin(x) for x in obj]
        return type(obj)(*pinned) if hasattr(obj, "_fields") else tuple(pinned)
    if type(obj) is dict:
        return {key: _pin(value) for key, value in obj.items()}
    return obj


class _WorkerError:
    """An exception raised in a worker, carried to the main process and raised there."""

    def __init__(self, where: str) -> None:
        exc_type = sys.exc_info()[0]
        try:
            pickle.dumps(exc_type)
        except Exception:  # an exception class the main process could not rebuild
            exc_type = RuntimeError
        self.exc_type = exc_type
        self.message = f"Caught {exc_type.__name__} {where}.\nOriginal {traceback.format_exc()}"

    def reraise(self):
        try:
            error = self.exc_type(self.message)
        except Exception:  # its constructor wants other arguments
            error = RuntimeError(self.message)
        raise error


# Result messages from a worker: (kind, epoch, task_id, payload). _END: this worker's
# pass over an iterable dataset has ended (it answers no more tasks of that epoch).
_OK, _ERROR, _INIT_ERROR, _END = "ok", "error", "init_error", "end"


def _worker_loop(dataset, task_conn, result_conn, epoch_value, auto_collation, collate_fn,
                 drop_last, iterable, worker_id, num_workers, base_seed, worker_init_fn,
                 parent_pid) -> None:
    """Body of one worker process: seed, run worker_init_fn, then answer fetch tasks in
    the order they arrive until told to stop (None), or until the parent is gone."""
    global _worker_info
    stream = _WorkerStream(dataset, auto_collation, collate_fn, drop_last) if iterable else None
    ended_epoch = None  # the epoch whose stream this worker has finished
    try:
        torch.set_num_threads(1)
        seed = base_seed + worker_id
        random.seed(seed)
        torch.manual_seed(seed)
        np.random.seed(_numpy_seed(base_seed, worker_id))
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                                  dataset=dataset)
        try:
            if worker_init_fn is not None:
                worker_init_fn(worker_id)
        except Exception:
            where = f"in DataLoader worker process {worker_id} (in worker_init_fn)"
            result_conn.send((_INIT_ERROR, -1, -1, _WorkerError(where)))
            return
        while True:
            if not task_conn.poll(_STATUS_CHECK_INTERVAL):
                if os.getppid() != parent_pid:  # the main process died: stop quietly
                    return
                continue
            task = task_conn.recv()
            if task is None:
                return
            epoch, task_id, index = task
            if epoch != epoch_value.value or epoch == ended_epoch:  # stale, or nothing left
                continue
            try:
                if stream is None:
                    batch = _fetch(dataset, index, auto_collation, collate_fn)
                else:
                    try:
                        batch = stream.fetch(epoch, index)
                    except StopIteration:
                        ended_epoch = epoch
                        result_conn.send((_END, epoch, task_id, None))
                        continue
                result_conn.send((_OK, epoch, task_id, _pack(batch)))
            except Exception:
                where = f"in DataLoader worker process {worker_id}"
                result_conn.send((_ERROR, epoch, task_id, _WorkerError(where)))
    except (KeyboardInterrupt, BrokenPipeError, EOFError):
        pass  # Ctrl-C reaches the whole process group; the main process reports it


class _WorkerPool:
    """N worker processes with a task pipe and a result pipe each."""

    def __init__(self, loader: DataLoader, base_seed: int) -> None:
        context = loader.multiprocessing_context or _default_context()
        self.epoch_value = context.RawValue("q", 0)
        self.processes, self.task_conns, self.result_conns = [], [], []
        for worker_id in range(loader.num_workers):
            task_reader, task_writer = context.Pipe(duplex=False)
            result_reader, result_writer = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker_loop,
                args=(loader.dataset, task_reader, result_writer, self.epoch_value,
                      loader._auto_collation, loader.collate_fn, loader.drop_last,
                      loader._iterable, worker_id, loader.num_workers, base_seed,
                      loader.worker_init_fn, os.getpid()),
                daemon=True)
            process.start()
            task_reader.close()  # the worker's ends live in the worker now
            result_writer.close()
            self.processes.append(process)
            self.task_conns.append(task_writer)
            self.result_conns.append(result_reader)
        self._options = {"force": False}
        self._finalizer = weakref.finalize(self, _shutdown_workers, self.processes,
                                           self.task_conns, self.result_conns,
                                           self.epoch_value, self._options, os.getpid())

    @property
    def alive(self) -> bool:
        return self._finalizer.alive

    def shutdown(self, force: bool = False) -> None:
        """Stop the workers; ``force`` terminates them at once instead of letting them
        finish the item they are on (after an error or a timeout)."""
        self._options["force"] = force
        self._finalizer()

    def receive(self, worker_id: int, timeout: float):
        """The next message from worker ``worker_id``; raises if the worker died or
        nothing came within ``timeout`` seconds (0: wait for ever)."""
        conn, process = self.result_conns[worker_id], self.processes[worker_id]
        deadline = time.monotonic() + timeout if timeout > 0 else None
        while True:
            wait_s = _STATUS_CHECK_INTERVAL
            if deadline is not None:
                wait_s = min(wait_s, deadline - time.monotonic())
                if wait_s <= 0:
                    self.shutdown(force=True)
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds waiting "
                                       f"for a batch from worker {worker_id}")
            ready = multiprocessing.connection.wait([conn, process.sentinel], wait_s)
            if conn in ready:
                try:
                    return conn.recv()
                except (EOFError, OSError):
                    pass  # the pipe closed: the worker is gone, reported below
            if process.sentinel in ready or conn in ready:
                process.join(0.1)
                code = process.exitcode
                self.shutdown(force=True)
                raise RuntimeError(
                    f"DataLoader worker {worker_id} (pid {process.pid}) exited unexpectedly "
                    f"with exit code {code}"
                    + (f" (killed by signal {-code})" if code is not None and code < 0 else "")
                    + ". If it ran out of memory, lower batch_size or num_workers; run with "
                      "num_workers=0 to see the error in the main process.")


def _default_context():
    """``fork`` where it exists (Linux, macOS): workers inherit the dataset instantly."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _shutdown_workers(processes, task_conns, result_conns, epoch_value, options,
                      owner_pid: int) -> None:
    """Stop the workers: skip queued tasks, send each a stop message, wait, terminate
    stragglers, close the pipes. Runs once (weakref.finalize), and only in the process
    that started them: a process forked later (another loader's worker) inherits this
    pool in its copy of memory, and may collect it there if it was unreachable garbage."""
    if os.getpid() != owner_pid:
        return
    epoch_value.value = -1  # every queued task is now stale and is skipped
    if options["force"]:
        for process in processes:
            if process.is_alive():
                process.terminate()
    for conn in task_conns:
        try:
            conn.send(None)
        except (OSError, ValueError):  # the worker is already gone
            pass
    deadline = time.monotonic() + _JOIN_TIMEOUT
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():  # stuck in a long __getitem__ or a full pipe
            process.terminate()
            process.join(1.0)
    for conn in itertools.chain(task_conns, result_conns):
        conn.close()


# ---------------------------------------------------------------- iterators

def _draw_base_seed(generator: torch.Generator | None) -> int:
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


class _SingleProcessIterator:
    """Fetches each batch in this process, when asked for it."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._index_iter = _checked_indices(iter(loader._index_sampler), loader)
        # Drawn (and unused) as torch draws it, so the generator advances the same way.
        self._base_seed = _draw_base_seed(loader.generator)

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        loader = self._loader
        index = next(self._index_iter)
        batch = _fetch(loader.dataset, index, loader._auto_collation, loader.collate_fn)
        return _pin(batch) if loader._pin else batch


class _PoolIterator:
    """What both worker-process iterators share: the pool, epochs on the same workers
    (persistent_workers=True), receiving a worker's next result of this epoch, and
    handing a batch out. Subclasses say which worker is asked for what, and when."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        index_iter = iter(loader._index_sampler)
        self._pool = _WorkerPool(loader, _draw_base_seed(loader.generator))
        self._epoch = 0
        self._start_epoch(index_iter)

    def _start_epoch(self, index_iter) -> None:
        raise NotImplementedError

    def _reset(self) -> None:
        """Start a new epoch on the same workers (persistent_workers=True)."""
        self._epoch += 1
        self._start_epoch(iter(self._loader._index_sampler))

    def _receive(self, worker_id: int):
        """(kind, task_id, payload) of the worker's next result of this epoch."""
        while True:
            kind, epoch, task_id, payload = self._pool.receive(worker_id,
                                                               self._loader.timeout)
            if kind == _INIT_ERROR:
                self._pool.shutdown()
                payload.reraise()
            if epoch == self._epoch:  # otherwise: a result of an abandoned epoch, dropped
                return kind, task_id, payload

    def _batch(self, payload):
        batch = _unpack(payload)
        return _pin(batch) if self._loader._pin else batch

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def _shutdown(self) -> None:
        self._pool.shutdown()


class _MultiProcessIterator(_PoolIterator):
    """Hands batches out to a worker pool, keeps ``prefetch_factor * num_workers`` in
    flight, and yields them in the sampler's order."""

    def _start_epoch(self, index_iter) -> None:
        self._index_iter = _checked_indices(index_iter, self._loader)
        self._send_id = 0  # next task to hand out
        self._receive_id = 0  # next task to yield
        self._exhausted = False
        self._refused = None  # the IndexTypeError of a refused index, raised in its turn
        self._pool.epoch_value.value = self._epoch
        for _ in range(self._loader.prefetch_factor * self._loader.num_workers):
            self._send_next()

    def _send_next(self) -> None:
        if self._exhausted:
            return
        try:
            index = next(self._index_iter)
        except StopIteration:
            self._exhausted = True
            return
        except IndexTypeError as error:  # raised when its batch's turn comes
            self._exhausted = True
            self._refused = error
            return
        worker_id = self._send_id % self._loader.num_workers
        try:
            self._pool.task_conns[worker_id].send((self._epoch, self._send_id, index))
        except OSError:
            pass  # the worker died; receiving its batch reports it
        self._send_id += 1

    def __next__(self):
        if not self._pool.alive:
            raise StopIteration
        if self._receive_id == self._send_id:  # nothing in flight: the epoch is over
            if not self._loader.persistent_workers:
                self._pool.shutdown()
            if self._refused is not None:
                error, self._refused = self._refused, None
                raise error
            raise StopIteration
        kind, task_id, payload = self._receive(self._receive_id % self._loader.num_workers)
        assert task_id == self._receive_id, (task_id, self._receive_id)
        self._receive_id += 1
        self._send_next()
        if kind == _ERROR:
            payload.reraise()
        return self._batch(payload)


class _LengthCheck:
    """torch's warning when an iterable dataset yields more than its ``len`` said: once
    ``len(loader)`` was asked, every batch past ``len(dataset)`` warns. Like torch, it
    counts batches against the dataset's number of items."""

    def __init__(self, loader: DataLoader) -> None:
        self.dataset = loader.dataset
        self.reported = loader._reported_length  # None unless len(loader) was called
        self.num_workers = loader.num_workers
        self.yielded = 0

    def count(self) -> None:
        self.yielded += 1
        if self.reported is not None and self.yielded > self.reported:
            message = (f"Length of IterableDataset {self.dataset} was reported to be "
                       f"{self.reported}(when accessing len(dataloader)), but {self.yielded} "
                       f"samples have been fetched. ")
            if self.num_workers > 0:
                message += ("For multiprocessing data-loading, this could be caused by not "
                            "properly configuring the IterableDataset replica at each worker. "
                            "See 'Iterable-style datasets' in handgrad's docs/data.md for "
                            "examples.")
            warnings.warn(message, stacklevel=3)


class _SingleProcessStreamIterator:
    """Reads an iterable dataset in this process: one ``iter(dataset)`` per iterator."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._index_iter = iter(loader._index_sampler)
        self._base_seed = _draw_base_seed(loader.generator)  # as torch draws it
        self._fetcher = _StreamFetcher(loader.dataset, loader._auto_collation,
                                       loader.collate_fn, loader.drop_last)
        self._length_check = _LengthCheck(loader)

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        batch = self._fetcher.fetch(next(self._index_iter))
        self._length_check.count()
        return _pin(batch) if self._loader._pin else batch


class _MultiProcessStreamIterator(_PoolIterator):
    """Reads an iterable dataset in worker processes, each over its own copy.

    Batches are taken from the workers in turn (0, 1, ..., N-1, 0, ...); a worker whose
    stream has ended is dropped from the turn, and the epoch ends when none is left.
    That is torch's order: torch hands batch k to the next worker still running and
    yields batches in k order, which comes to the same turn. Each worker keeps
    ``prefetch_factor`` batches in flight."""

    def _start_epoch(self, index_iter) -> None:
        self._index_iter = index_iter
        self._running = list(range(self._loader.num_workers))  # workers in turn order
        self._turn = 0  # position in self._running of the worker whose batch is next
        self._task_id = 0
        self._length_check = _LengthCheck(self._loader)
        self._pool.epoch_value.value = self._epoch
        for worker_id in self._running:
            for _ in range(self._loader.prefetch_factor):
                self._send(worker_id)

    def _send(self, worker_id: int) -> None:
        task = (self._epoch, self._task_id, next(self._index_iter))
        try:
            self._pool.task_conns[worker_id].send(task)
        except OSError:
            pass  # the worker died; receiving from it reports it
        self._task_id += 1

    def __next__(self):
        if not self._pool.alive:
            raise StopIteration
        while self._running:
            self._turn %= len(self._running)
            worker_id = self._running[self._turn]
            kind, _task_id, payload = self._receive(worker_id)
            if kind == _END:
                del self._running[self._turn]  # the next worker takes this turn
                continue
            self._turn += 1
            self._send(worker_id)
            if kind == _ERROR:
                payload.reraise()
            self._length_check.count()
            return self._batch(payload)
        if not self._loader.persistent_workers:
            self._pool.shutdown()
        raise StopIteration


# ---------------------------------------------------------------- the loader

class DataLoader:
    """Iterate over ``dataset`` in batches (see the module docstring for the arguments).

    - ``batch_size=None`` turns automatic batching off: each item is converted
      (``default_convert``) and yielded alone.
    - ``shuffle=True`` uses a ``RandomSampler(dataset, generator=generator)``; otherwise
      a ``SequentialSampler``. ``sampler`` and ``batch_sampler`` replace those.
    - ``collate_fn`` defaults to ``default_collate`` (``default_convert`` without
      batching).
    - ``num_workers > 0`` loads in that many worker processes; ``timeout`` (seconds,
      0 = no limit) bounds the wait for one batch; ``worker_init_fn(worker_id)`` runs in
      each worker after seeding; ``prefetch_factor`` (default 2) batches per worker are
      loaded ahead; ``persistent_workers`` keeps the workers between epochs.
    - ``pin_memory`` pins batches in page-locked memory when CUDA is available
      (``pin_memory_device``, deprecated in torch, is accepted and ignored).
    - ``in_order=False`` allows torch to yield batches out of order; handgrad always
      yields them in the sampler's order, which that setting permits.
    - An ``IterableDataset`` is read in its own order: ``shuffle=True``, ``sampler`` and
      ``batch_sampler`` raise torch's ValueErrors; ``len(loader)`` needs
      ``len(dataset)``. With workers, each reads its own copy (see the module docstring).
    """

    _INITIALIZED_ATTRIBUTES = ("batch_size", "batch_sampler", "sampler", "drop_last",
                               "dataset", "persistent_workers")

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, multiprocessing_context=None,
                 generator: torch.Generator | None = None, *,
                 prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True) -> None:
        self._initialized = False
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 "
                             "to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing.let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        elif num_workers > 0 and prefetch_factor == 0:
            raise ValueError("prefetch_factor must be greater than 0 when num_workers > 0 "
                             "(each worker needs at least one batch in flight)")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None:
            multiprocessing_context = _check_context(multiprocessing_context, num_workers)

        iterable = isinstance(dataset, IterableDataset)
        if iterable:  # torch's checks, in torch's order, with torch's messages
            if shuffle not in {False, None}:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            if iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self._iterable = iterable
        self._reported_length = None  # len(dataset) when len(loader) was last asked
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order
        self._pin = pin_memory and torch.cuda.is_available()
        if pin_memory and pin_memory_device:
            warnings.warn(f"DataLoader: pin_memory_device is deprecated (as in torch) and "
                          f"ignored; pinned memory serves CUDA (pin_memory_device="
                          f"{pin_memory_device!r})", stacklevel=2)
        if pin_memory and not self._pin:
            warnings.warn("DataLoader: pin_memory=True but CUDA is not available; batches are "
                          "not pinned", stacklevel=2)
        self._iterator = None  # the one iterator kept with persistent workers
        self._initialized = True
        _warn_if_too_many_workers(num_workers)

    def __setattr__(self, name: str, value) -> None:
        if getattr(self, "_initialized", False) and name in self._INITIALIZED_ATTRIBUTES:
            raise ValueError(f"{name} attribute should not be set after "
                             f"{type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        """What the iterator draws from: lists of indices (batch sampler) or indices."""
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        if not self._iterable:
            return len(self._index_sampler)
        # As torch: from the dataset's own len (a TypeError when it has none), remembered
        # for the warning when more batches than that come.
        length = self._reported_length = len(self.dataset)
        if self.batch_size is None:
            return length
        if self.drop_last:
            return length // self.batch_size
        return math.ceil(length / self.batch_size)

    def __iter__(self):
        if self.num_workers == 0:
            if self._iterable:
                return _SingleProcessStreamIterator(self)
            return _SingleProcessIterator(self)
        iterator_class = _MultiProcessStreamIterator if self._iterable else _MultiProcessIterator
        if not self.persistent_workers:
            return iterator_class(self)
        if self._iterator is None or not self._iterator._pool.alive:
            self._iterator = iterator_class(self)
        else:
            self._iterator._reset()
        return self._iterator


def _check_context(context, num_workers: int):
    if num_workers == 0:
        raise ValueError("multiprocessing_context can only be used with multi-process "
                         f"loading (num_workers > 0), but got num_workers={num_workers}")
    if isinstance(context, str):
        methods = multiprocessing.get_all_start_methods()
        if context not in methods:
            raise ValueError(f"multiprocessing_context option should specify a valid start "
                             f"method in {methods!r}, but got "
                             f"multiprocessing_context={context!r}")
        return multiprocessing.get_context(context)
    if not isinstance(context, multiprocessing.context.BaseContext):
        raise TypeError("multiprocessing_context option should be a valid context object or "
                        f"a string specifying the start method, but got "
                        f"multiprocessing_context={context}")
    return context


def _warn_if_too_many_workers(num_workers: int) -> None:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if num_workers > cpus:
        warnings.warn(f"DataLoader: num_workers={num_workers} is more than the {cpus} CPUs "
                      f"this process may use; the extra workers compete for the same cores "
                      f"and may slow loading down", stacklevel=3)
