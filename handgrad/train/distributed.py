"""What the Learner needs to know about a distributed run, in one place.

When torch.distributed's default process group is initialised with a world size above 1,
the Learner (learner.py) uses these helpers:

    world_size(), rank(), is_distributed()   the run's shape (1, 0, False without a group)
    rank_zero()                              whether this process writes files
    all_reduce_sums(values)                  exact sums over the ranks of a list of floats
    barrier(what)                            every rank waits here (an all-reduce of one
                                             number, so a dead peer gives comm's clear error)
    any_rank(flag)                           True on every rank when one rank says True
    unwrap(model)                            the module inside a DistributedDataParallel
    report_failure(error) / failure_of_peer()
                                             a rank whose fit raises leaves a note in the
                                             process group's key-value store; a rank whose
                                             collective then fails reads it, so its error
                                             names the rank that failed first and why

A callback with `rank_zero_only = True` (ProgressBar, EpochTable, LearningCurves) runs on
rank 0 only; SaveCheckpoint runs everywhere: rank 0 writes, then every rank waits at a
barrier, so no rank goes on (or reads the file) before it is complete.

Left out: gathering per-step figures (History.steps holds each rank's own batches), and
process-group setup (the caller's torch.distributed.init_process_group, or
`handgrad train ... --nproc N`, which does it).
"""

from __future__ import annotations

import torch

from handgrad.nn.parallel import comm

__all__ = ["world_size", "rank", "is_distributed", "rank_zero", "all_reduce_sums",
           "barrier", "any_rank", "unwrap", "report_failure", "failure_of_peer"]

_FAILURE_KEY = "handgrad/learner_failure"


def world_size() -> int:
    """The number of processes of the default group (1 without one)."""
    return comm.get_world_size()


def rank() -> int:
    """This process's rank in the default group (0 without one)."""
    return comm.get_rank()


def is_distributed() -> bool:
    """Whether this is one process of several joined by torch.distributed."""
    return world_size() > 1


def rank_zero() -> bool:
    """Whether this process is the one that prints and writes files (rank 0, or the only
    process)."""
    return rank() == 0


def _device() -> torch.device:
    """Where collective tensors live: the current CUDA device for NCCL, else the CPU."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sums(values: list[float], what: str) -> list[float]:
    """`values` summed over every rank (float64, so sums of counts stay exact); every
    rank must call it with a list of the same length."""
    tensor = torch.tensor(values, dtype=torch.float64, device=_device())
    comm.all_reduce(tensor, what)
    return tensor.cpu().tolist()


def barrier(what: str) -> None:
    """Wait until every rank gets here; a rank that died makes this a RuntimeError
    naming `what`."""
    all_reduce_sums([0.0], what)


def any_rank(flag: bool, what: str) -> bool:
    """True on every rank when `flag` is True on at least one."""
    return all_reduce_sums([1.0 if flag else 0.0], what)[0] > 0


def unwrap(model):
    """The plain module of a DistributedDataParallel wrapper (its `module`), else `model`:
    checkpoints hold the plain module's state_dict, without the `module.` prefix."""
    from handgrad.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def _store():
    """The key-value store of the default process group, or None (torch keeps it private:
    any failure to reach it only makes the error message less precise)."""
    try:
        import torch.distributed.distributed_c10d as c10d

        return c10d._get_default_store()
    except Exception:  # noqa: BLE001  (best effort: a message, not a result, depends on it)
        return None


def report_failure(error: BaseException, where: str) -> None:
    """Leave a note for the other ranks: this rank's fit raised `error` at `where`."""
    store = _store()
    if store is None:
        return
    note = f"rank {rank()} of {world_size()} raised {type(error).__name__} at {where}: {error}"
    try:
        store.set(_FAILURE_KEY, note[:2000])
    except Exception:  # noqa: BLE001  (the peer may be gone already; the error goes on)
        pass


def failure_of_peer() -> str | None:
    """The note another rank left with report_failure, or None (none was left, or the
    store is gone with the rank that held it)."""
    store = _store()
    if store is None:
        return None
    try:
        if store.check([_FAILURE_KEY]):
            return store.get(_FAILURE_KEY).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001
        return None
    return None
