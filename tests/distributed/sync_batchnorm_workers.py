"""What each process of tests/distributed/test_sync_batchnorm.py runs, and the data both
sides build from one seed. (Its own file, not workers.py, so that work on DDP's workers
and on these never touches the same lines.)

Every case cuts one global batch into per-rank slices of the sizes it names (unequal,
and one rank empty); the test compares what the ranks computed with one process running
the whole batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

import handgrad.nn.functional as F
from handgrad import nn, optim
from handgrad._tensor import Tensor
from handgrad.nn.parallel import DistributedDataParallel, comm

# name -> (shape of one sample, per-rank batch sizes, SyncBatchNorm keyword arguments)
CASES = {
    "2d_unequal": ((3,), (5, 3), {}),
    "3d_cumulative": ((3, 5), (4, 4), {"momentum": None}),
    "4d_unequal_no_bias": ((3, 2, 3), (3, 2), {"bias": False, "eps": 1e-3}),
    "5d_empty_rank": ((2, 2, 2, 2), (3, 0), {}),
    "no_affine_no_running": ((3,), (2, 4), {"affine": False, "track_running_stats": False}),
}
STEPS = 2  # training steps per case, then one evaluation step


def case_data(name: str, step: int):
    """The global batch of `step` (input, upstream gradient), and the affine parameters."""
    sample, sizes, _ = CASES[name]
    g = torch.Generator().manual_seed(100 * step + len(name))
    total = sum(sizes)
    x = 3 * torch.randn(total, *sample, generator=g, dtype=torch.float64) + 1.5
    upstream = torch.randn(total, *sample, generator=g, dtype=torch.float64)
    weight = torch.rand(sample[0], generator=g, dtype=torch.float64) + 0.5
    bias = torch.randn(sample[0], generator=g, dtype=torch.float64)
    return x, upstream, weight, bias


def rank_slice(sizes, rank: int) -> slice:
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def _count_collectives():
    """Record the `what` of every all-reduce comm makes (SyncBatchNorm's included)."""
    calls, original = [], comm.all_reduce

    def counting(tensor, what, group=None, async_op=False):
        calls.append(what)
        return original(tensor, what, group, async_op)

    comm.all_reduce = counting
    return calls, lambda: setattr(comm, "all_reduce", original)


def _run_case(name: str, rank: int, calls: list, process_group=None) -> dict:
    sample, sizes, options = CASES[name]
    _, _, weight, bias = case_data(name, 0)
    layer = nn.SyncBatchNorm(sample[0], process_group=process_group, **options).double()
    if layer.weight is not None:
        layer.weight.data.copy_(weight)
    if layer.bias is not None:
        layer.bias.data.copy_(bias)
    part = rank_slice(sizes, rank)
    steps = []
    for step in range(STEPS):
        x, upstream, _, _ = case_data(name, step)
        layer.zero_grad()
        x_local = Tensor(x[part].clone(), requires_grad=True)
        before = len(calls)
        y = layer(x_local)
        forward_calls = len(calls) - before
        y.backward(Tensor(upstream[part]))
        steps.append({
            "y": y.data.clone(), "dx": x_local.grad.data.clone(),
            "dweight": None if layer.weight is None else layer.weight.grad.data.clone(),
            "dbias": None if layer.bias is None else layer.bias.grad.data.clone(),
            "collectives": (forward_calls, len(calls) - before - forward_calls),
        })
    layer.eval()
    x, _, _, _ = case_data(name, STEPS)
    before = len(calls)
    y_eval = layer(Tensor(x[part])).data.clone()
    buffers = {k: v.data.clone() for k, v in layer.named_buffers()}
    return {"steps": steps, "eval": y_eval, "eval_collectives": len(calls) - before,
            "buffers": buffers}


class SmallConvNet(nn.Module):
    """conv -> batch norm -> relu -> linear, on (N, 1, 4, 4) images, 3 classes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))

    def forward(self, x):
        return self.head(self.norm(self.conv(x)))


def conv_batch(step: int, size: int):
    g = torch.Generator().manual_seed(500 + step)
    return (torch.randn(size, 1, 4, 4, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (size,), generator=g))


CONV_PER_RANK, CONV_STEPS = 4, 3


def _ddp_conv_net(rank: int, world_size: int) -> dict:
    """DDP over the converted conv net (built from another seed on rank 1: DDP
    broadcasts rank 0's), CONV_STEPS SGD steps, each rank on its part of the batch."""
    torch.manual_seed(rank)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(SmallConvNet().double())
    kinds = {name: type(m).__name__ for name, m in model.named_modules()}
    ddp = DistributedDataParallel(model)
    optimizer = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    part = slice(rank * CONV_PER_RANK, (rank + 1) * CONV_PER_RANK)
    for step in range(CONV_STEPS):
        x, y = conv_batch(step, world_size * CONV_PER_RANK)
        optimizer.zero_grad()
        F.cross_entropy(ddp(Tensor(x[part])), Tensor(y[part])).backward()
        optimizer.step()
    return {"kinds": kinds,
            "state": {k: v.data.clone() for k, v in ddp.module.state_dict().items()}}


def sync_batchnorm_checks(rank: int, world_size: int) -> dict:
    """Every case of CASES (one on an explicit group of both ranks), a group of rank 0
    alone, the too-small global batch, and DDP over a conv net: one launch."""
    calls, restore = _count_collectives()
    try:
        both = dist.new_group([0, 1])
        alone = dist.new_group([0])  # every rank must create every group
        results = {name: _run_case(name, rank, calls,
                                   both if name == "3d_cumulative" else None)
                   for name in CASES}
        if rank == 0:  # a group of one process: plain batch norm, nothing communicated
            results["group_of_one"] = _run_case("2d_unequal", rank, calls, alone)
        try:  # one value per channel over both ranks: every rank must raise
            nn.SyncBatchNorm(3).double()(Tensor(torch.ones(1 - rank, 3, dtype=torch.float64)))
            results["too_small"] = None
        except ValueError as error:
            results["too_small"] = str(error)
        results["ddp"] = _ddp_conv_net(rank, world_size)
        return results
    finally:
        restore()
