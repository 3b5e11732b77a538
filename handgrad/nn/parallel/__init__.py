"""handgrad.nn.parallel: training over several processes, as torch.nn.parallel.

    distributed.py  DistributedDataParallel (gradients averaged across processes in
                    buckets, all-reduced asynchronously during backward)
    sync_batchnorm.py  SyncBatchNorm (batch statistics over every process of a group,
                    hand-written backward that all-reduces two per-channel sums)
    comm.py         the collectives used (broadcast, all-reduce) with errors that name
                    the rank

torch.distributed moves the tensors (gloo on CPU, NCCL on GPU); it computes no gradient.
Left out: DataParallel (one process, several devices).
"""

from handgrad.nn.parallel.distributed import DistributedDataParallel
from handgrad.nn.parallel.sync_batchnorm import SyncBatchNorm

__all__ = ["DistributedDataParallel", "SyncBatchNorm"]
