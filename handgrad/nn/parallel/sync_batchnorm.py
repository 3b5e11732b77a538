"""SyncBatchNorm: batch normalisation whose statistics pool the batches of every process
of a group, as torch.nn.SyncBatchNorm.

Holds the module `SyncBatchNorm` (with `convert_sync_batchnorm`), the fused Function
`SyncBatchNormFunction` and its functional form `sync_batch_norm`. In training, with
torch.distributed initialised and more than one process in the group, each channel's
mean and (biased) variance are those of the whole global batch: every process's values
of the channel, however many each holds (unequal batch sizes, even an empty one, are
fine). The running statistics take the global mean and the global unbiased variance,
so they are equal on every process. In evaluation, and on a single process (no process
group initialised, or a group of one), it is exactly BatchNorm (F.batch_norm), as in
torch, and nothing is communicated.

torch.distributed (gloo on CPU, NCCL on GPU) only moves the per-channel sums (comm.py);
every statistic and gradient is computed here. Unlike torch's, this one works on CPU
tensors too (torch's refuses non-GPU inputs when distributed), since gloo moves them.

Left out: channels-last fast paths, mixed-precision statistics (the sums are in the
input's dtype), torch's qconfig copy in convert_sync_batchnorm.
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function, HandgradError
from handgrad.nn import functional as F
from handgrad.nn.normalization import _BatchNorm, _InstanceNorm
from handgrad.nn.parallel import comm

__all__ = ["SyncBatchNorm", "SyncBatchNormFunction", "sync_batch_norm"]


def _reduce(tensor: torch.Tensor, what: str, group, world_size: int) -> torch.Tensor:
    """Sum `tensor` in place over the group (nothing to do on one process)."""
    if world_size > 1:
        comm.all_reduce(tensor, f"SyncBatchNorm: all-reduce of {what}", group)
    return tensor


class SyncBatchNormFunction(Function):
    """Batch normalisation of x: (N_r, C, *) on each process r of a group, per channel c,
    with the statistics of all processes' values together: n = sum_r N_r prod(*) values
    per channel,
        mean = (1/n) sum_all x,   var = (1/n) sum_all (x - mean)^2   (biased),
        x_hat = (x - mean) / sqrt(var + eps),   y = weight x_hat + bias.
    Forward communicates twice (sum and count, then the sum of squared deviations from
    the global mean): the two-pass variance is as exact as batch norm's own, where one
    all-reduce of sum(x^2) would lose digits to cancellation. The running statistics,
    when given, are updated in place with the global ones (the same on every process):
        running_mean = (1 - momentum) running_mean + momentum mean,
        running_var  = (1 - momentum) running_var + momentum var n / (n - 1).

    Backward. Every x_j of every process enters mean and var, so for x_i on this
    process, with rstd = (var + eps)^(-1/2) and d mean / d x_i = 1/n,
    d var / d x_i = (2/n)(x_i - mean):
        d x_hat_j / d x_i = rstd (delta_ij - 1/n - x_hat_i x_hat_j / n).
    Summing g_j weight d x_hat_j / d x_i over all j (all processes), with g = dL/dy:
        dx_i = weight rstd (g_i - (1/n) sum_all g - x_hat_i (1/n) sum_all g x_hat).
    So backward all-reduces the two per-channel sums (sum g, sum g x_hat) once, then dx
    is elementwise. The parameters are replicas on each process, so their gradients are
    this process's share, dweight = sum_local g x_hat, dbias = sum_local g; summed over
    the processes (DistributedDataParallel averages them) they are the whole batch's.
    Forward and backward are collectives: every process of the group must run them (a
    process that skips this layer's backward leaves the others waiting), as in torch.
    """

    name = "sync_batch_norm"

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight=None, bias=None, momentum=0.1,
                eps=1e-5, process_group=None, world_size=1):
        channels = x.shape[1]
        shape = (1, -1) + (1,) * (x.ndim - 2)  # a per-channel vector, broadcastable
        dims = (0, *range(2, x.ndim))
        local_count = x.numel() // channels
        totals = torch.empty(channels + 1, dtype=x.dtype, device=x.device)
        torch.sum(x, dims, out=totals[:channels])  # zeros for an empty local batch
        totals[channels] = local_count
        _reduce(totals, "the batch sums and counts", process_group, world_size)
        count = int(round(float(totals[channels])))
        if count <= 1:
            raise ValueError(
                f"SyncBatchNorm: expected more than 1 value per channel when training, got "
                f"{count} over the {world_size} processes (this one's input has shape "
                f"{tuple(x.shape)})")
        mean = totals[:channels] / count
        centred = x - mean.view(shape)
        squares = (centred * centred).sum(dims)
        var = _reduce(squares, "the squared deviations", process_group, world_size) / count
        rstd = (var + eps).rsqrt_()
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
        if running_var is not None:
            running_var.mul_(1 - momentum).add_(var, alpha=momentum * count / (count - 1))
        rstd = rstd.view(shape)
        x_hat = centred.mul_(rstd)
        w = None if weight is None else weight.view(shape)
        ctx.save_for_backward(x_hat, rstd, w)
        ctx.reduce = (dims, count, process_group, world_size)
        y = x_hat if w is None else x_hat * w
        return y if bias is None else y + bias.view(shape)

    @staticmethod
    def backward(ctx, g):
        x_hat, rstd, w = ctx.saved_tensors
        dims, count, process_group, world_size = ctx.reduce
        need_x, _, _, need_w, need_b = ctx.needs_input_grad[:5]
        channels = g.shape[1]
        sums = torch.empty(2 * channels, dtype=g.dtype, device=g.device)
        torch.sum(g, dims, out=sums[:channels])  # sum g
        torch.sum(g * x_hat, dims, out=sums[channels:])  # sum g x_hat
        dweight = sums[channels:].clone() if need_w else None
        dbias = sums[:channels].clone() if need_b else None
        dx = None
        if need_x:
            _reduce(sums, "the gradient sums", process_group, world_size)
            shape = rstd.shape
            mean_g = sums[:channels].view(shape) / count
            mean_gx = sums[channels:].view(shape) / count
            scale = rstd if w is None else rstd * w
            dx = torch.addcmul(g - mean_g, x_hat, mean_gx, value=-1).mul_(scale)
        return dx, None, None, dweight, dbias, None, None, None, None


def _check_channels(op: str, input, vectors: dict) -> None:
    for name, vector in vectors.items():
        if vector is not None and tuple(vector.shape) != (input.shape[1],):
            raise HandgradError(
                f"{op}: expected {name} to be a vector of size equal to the number of "
                f"channels in input ({input.shape[1]}), but got {name} of shape "
                f"{tuple(vector.shape)} and input of shape {tuple(input.shape)}")


def sync_batch_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                    momentum=0.1, eps=1e-5, process_group=None):
    """Batch normalisation of an (N, C, *) input with the batch statistics of every
    process of `process_group` (torch.distributed's default group when None), folding
    them into running_mean / running_var when given. Without an initialised process
    group it is F.batch_norm(..., training=True) computed on this process alone."""
    if input.ndim < 2:
        raise ValueError(f"sync_batch_norm: expected at least 2D input (got {input.ndim}D "
                         f"input of shape {tuple(input.shape)})")
    if eps <= 0.0:
        raise ValueError(f"sync_batch_norm: eps must be positive during training, but got "
                         f"{eps}")
    _check_channels("sync_batch_norm", input, {"running_mean": running_mean,
                                               "running_var": running_var,
                                               "weight": weight, "bias": bias})
    world_size = comm.get_world_size(process_group)
    return SyncBatchNormFunction.apply(input, running_mean, running_var, weight, bias,
                                       momentum, eps, process_group, world_size)


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation of (N, C, *) inputs (any rank from 2 up), per channel C, with
    the statistics of the global batch of every process of `process_group` while
    training (torch.distributed's default group when None); BatchNorm otherwise (see
    the module docstring). Arguments, parameters, buffers and state_dict as torch's."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)
        self.process_group = process_group

    def forward(self, input):
        if input.ndim < 2:  # torch: ValueError
            raise ValueError(f"SyncBatchNorm: expected at least 2D input (got {input.ndim}D "
                             f"input of shape {tuple(input.shape)})")
        if input.shape[1] == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")
        if input.shape[1] != self.num_features:
            raise HandgradError(
                f"SyncBatchNorm: expected {self.num_features} channels on dim 1 "
                f"(num_features), got input of shape {tuple(input.shape)}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data.add_(1)
            if self.momentum is None:  # cumulative average
                factor = 1.0 / float(self.num_batches_tracked.data)
        # Batch statistics while training, and in evaluation when no running ones exist.
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        # The running statistics are passed where they are updated or used.
        use_running = not self.training or self.track_running_stats
        running_mean = self.running_mean if use_running else None
        running_var = self.running_var if use_running else None
        world_size = 1
        if batch_stats and self.training and comm.is_initialized():
            world_size = comm.get_world_size(self.process_group)
        if world_size == 1:  # no synchronisation needed: plain batch norm, as torch
            return F.batch_norm(input, running_mean, running_var, self.weight, self.bias,
                                batch_stats, factor, self.eps)
        return sync_batch_norm(input, running_mean, running_var, self.weight, self.bias,
                               factor, self.eps, self.process_group)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """`module` with every BatchNorm layer in it (BatchNorm1d, BatchNorm2d, at any
        depth) replaced by a SyncBatchNorm that shares its parameters and buffers and
        keeps its training flag, as torch's. The containers are changed in place and
        returned; a BatchNorm given itself comes back as a new SyncBatchNorm."""
        output = module
        if isinstance(module, _BatchNorm) and not isinstance(module, _InstanceNorm):
            output = cls(module.num_features, module.eps, module.momentum, module.affine,
                         module.track_running_stats, process_group,
                         bias=module.bias is not None)
            if module.affine:
                output.weight = module.weight
                output.bias = module.bias
            output.running_mean = module.running_mean
            output.running_var = module.running_var
            output.num_batches_tracked = module.num_batches_tracked
            output.training = module.training
        for name, child in module.named_children():
            output.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return output
