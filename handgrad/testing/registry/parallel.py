"""Registry entries for the Functions of handgrad.nn.parallel: SyncBatchNorm's fused
Function, on one process (no process group initialised, so nothing is communicated and
it must be exactly batch norm in training), against torch.nn.functional.batch_norm.

The composed reference spells the statistics as the Function gathers them, sums over a
channel divided by its count. Left out: several processes (tests/distributed/
test_sync_batchnorm.py runs them over gloo against one process with the whole batch).
"""

from __future__ import annotations

import torch.nn.functional as TF

from handgrad.nn.parallel.sync_batchnorm import SyncBatchNormFunction, sync_batch_norm
from handgrad.testing.registry import register


def _composed_sync_batch_norm(x, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * w + b per channel (dim 1), with mean = sum x / n
    and var = sum (x - mean)^2 / n over the n values of a channel."""
    dims = (0, *range(2, x.ndim))
    count = x.numel() // x.shape[1]
    channel = (1, -1) + (1,) * (x.ndim - 2)
    centred = x - x.sum(dim=dims, keepdim=True) / count
    var = (centred * centred).sum(dim=dims, keepdim=True) / count
    out = centred * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(channel) + bias.reshape(channel)
    return out


register(
    "sync_batch_norm_single_process",
    fn=lambda x, w, b: sync_batch_norm(x, None, None, w, b),
    ref=lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
    composed=lambda x, w, b: _composed_sync_batch_norm(x, w, b),
    shapes=[((6, 3), (3,), (3,)), ((4, 3, 5), (3,), (3,)), ((2, 3, 2, 2), (3,), (3,)),
            ((2, 2, 3, 2, 2), (2,), (2,))],
    covers=(SyncBatchNormFunction,),
)
register(
    "sync_batch_norm_single_process_no_affine",
    fn=lambda x: sync_batch_norm(x, None, None, eps=1e-3),
    ref=lambda x: TF.batch_norm(x, None, None, training=True, eps=1e-3),
    composed=lambda x: _composed_sync_batch_norm(x, eps=1e-3),
    shapes=[((6, 3),), ((4, 3, 5),)],
    covers=(SyncBatchNormFunction,),
)
