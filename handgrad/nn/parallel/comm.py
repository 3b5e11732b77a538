"""The few collective moves DistributedDataParallel and SyncBatchNorm make, over
torch.distributed (which only moves tensors: it computes no gradient).

Each helper takes raw torch tensors and an optional process group, and turns a failed
collective (a peer that raised or died, a timeout) into a RuntimeError that names this
process's rank and what it was doing, so a broken run stops with a readable message
instead of hanging. What this module leaves out: process-group setup (the caller's
``torch.distributed.init_process_group``), NCCL-specific tuning.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["all_reduce", "broadcast", "get_rank", "get_world_size", "is_initialized",
           "wait"]


def is_initialized() -> bool:
    """Whether the default torch.distributed process group exists."""
    return dist.is_available() and dist.is_initialized()


def get_world_size(group=None) -> int:
    """The number of processes in `group` (1 when torch.distributed is not initialised)."""
    return dist.get_world_size(group) if is_initialized() else 1


def get_rank(group=None) -> int:
    """This process's rank in `group` (0 when torch.distributed is not initialised)."""
    return dist.get_rank(group) if is_initialized() else 0


def _failed(what: str, group, error: BaseException) -> RuntimeError:
    return RuntimeError(
        f"{what} failed on rank {get_rank(group)} of {get_world_size(group)}: {error}. "
        "Another process probably raised an error or exited (look at its output); this "
        "process stops instead of waiting for it.")


def wait(work, what: str, group=None) -> None:
    """Wait for an async collective `work`, turning a failure into a clear error."""
    try:
        work.wait()
    except RuntimeError as error:  # gloo raises RuntimeError (or a subclass) on timeout
        raise _failed(what, group, error) from error


def broadcast(tensor: torch.Tensor, src: int, what: str, group=None) -> None:
    """Overwrite `tensor` in place with the value of rank `src` (a group rank)."""
    try:
        dist.broadcast(tensor, src if group is None else dist.get_global_rank(group, src),
                       group=group)
    except RuntimeError as error:
        raise _failed(what, group, error) from error


def all_reduce(tensor: torch.Tensor, what: str, group=None, async_op: bool = False):
    """Sum `tensor` in place over the processes of `group`; with async_op, return the
    work handle to give to `wait` later."""
    try:
        return dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group, async_op=async_op)
    except RuntimeError as error:
        raise _failed(what, group, error) from error
