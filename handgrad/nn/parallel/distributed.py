"""DistributedDataParallel: data-parallel training over several processes.

Each process holds a replica of the module and runs its own batch; during backward the
gradients are averaged across the processes so that every replica takes the same
optimizer step. The scheme is torch's:

- at construction, rank 0's parameters and buffers are broadcast to every process;
- the parameters are grouped into buckets, in reverse order of `module.parameters()`
  (roughly the order in which backward produces their gradients), the first bucket up to
  1 MiB and the next ones up to `bucket_cap_mb`; one bucket holds one dtype and device;
- a hook on each parameter (handgrad's `Tensor.register_hook`, which sees the
  parameter's complete gradient of this backward) copies `grad / world_size` into the
  parameter's slot of its bucket's flat buffer; when a bucket is full its all-reduce
  (sum) starts asynchronously (`async_op=True`), so communication overlaps the rest of
  backward; buckets start in order, the same order on every process;
- the hook of the last parameter to become ready waits for every bucket and writes the
  averaged gradients into `.grad`, so they are in place when `backward()` returns;
- inside `no_sync()` the hooks do nothing: gradients accumulate locally, and the next
  synchronised backward averages the accumulated `.grad`;
- with `broadcast_buffers`, rank 0's buffers (BatchNorm running statistics) are
  broadcast at the start of every forward in training mode;
- `find_unused_parameters=True` walks the graph of the forward's output and marks the
  parameters it does not reach as ready at once (their slot holds their current
  gradient, or zeros), so a model with a branch unused in some step does not hang; a
  parameter no process used keeps `.grad` None. Without it, a parameter that got no
  gradient leaves the reduction unfinished and the next forward raises, as torch does.

The state_dict of the wrapper has the `module.` prefix (`ddp.module.state_dict()` is the
plain model's). What this module leaves out: torch's rebuilding of buckets in the order
of the first backward, communication hooks, `static_graph`, joining uneven inputs
(`join`), several devices per process, and autograd.grad() through the wrapper.
"""

from __future__ import annotations

import contextlib

import torch

from handgrad.autograd.function import Function
from handgrad.autograd.grad_mode import is_grad_enabled
from handgrad.nn.module import Module
from handgrad.nn.parallel import comm

__all__ = ["DistributedDataParallel"]

_FIRST_BUCKET_BYTES = 1024 * 1024  # torch's first bucket is small, so it starts early


class _Bucket:
    """A flat buffer for the gradients of some parameters, and its all-reduce."""

    __slots__ = ("index", "params", "offsets", "buffer", "pending", "work")

    def __init__(self, index: int, params: list):
        self.index = index
        self.params = params
        self.offsets, total = [], 0
        for p in params:
            self.offsets.append(total)
            total += p.data.numel()
        self.buffer = torch.zeros(total, dtype=params[0].data.dtype,
                                  device=params[0].data.device)
        self.pending = len(params)  # parameters whose gradient is not in the buffer yet
        self.work = None

    def view(self, slot: int) -> torch.Tensor:
        p = self.params[slot]
        start = self.offsets[slot]
        return self.buffer[start:start + p.data.numel()].view(p.data.shape)


def _bucket_assignment(params: list, bucket_cap_mb: float) -> list[list]:
    """Parameters grouped into buckets: reverse order, by dtype and device, each bucket
    closed once it holds at least its limit (1 MiB first, then bucket_cap_mb)."""
    cap = int(bucket_cap_mb * 1024 * 1024)
    open_buckets: dict = {}  # (dtype, device) -> [params, bytes, limit]
    buckets = []
    for p in reversed(params):
        key = (p.data.dtype, p.data.device)
        current = open_buckets.get(key)
        if current is None:
            current = open_buckets[key] = [[], 0, min(_FIRST_BUCKET_BYTES, cap)]
        current[0].append(p)
        current[1] += p.data.numel() * p.data.element_size()
        if current[1] >= current[2]:
            buckets.append(current[0])
            open_buckets[key] = [[], 0, cap]
    buckets.extend(entry[0] for entry in open_buckets.values() if entry[0])
    return buckets


def _reachable_leaves(outputs) -> set:
    """The ids of the leaf tensors that the graph of `outputs` reaches."""
    stack, seen, leaves = [], set(), set()

    def collect(value):
        if isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif hasattr(value, "_ctx"):
            if value._ctx is not None:
                stack.append(value._ctx)
            else:
                leaves.add(id(value))

    collect(outputs)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for parent in node.parents:
            if isinstance(parent, Function):
                stack.append(parent)
            elif parent is not None:
                leaves.add(id(parent))  # a leaf tensor that needs a gradient
    return leaves


class DistributedDataParallel(Module):
    """Data parallelism over torch.distributed, with torch's DistributedDataParallel's
    arguments and behaviour (see the module docstring for how gradients move).

    `module` is the model (already on this process's device); torch.distributed's default
    process group (or `process_group`) must be initialised. Train as usual: the loss of
    each process's batch, `loss.backward()` (gradients come back averaged over the
    processes), `optimizer.step()` on `ddp.parameters()`.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False):
        super().__init__()
        if not comm.is_initialized():
            raise RuntimeError(
                "DistributedDataParallel: torch.distributed's default process group is "
                "not initialised; call torch.distributed.init_process_group(backend, "
                "rank=..., world_size=...) in every process first.")
        if device_ids is not None and len(device_ids) > 1:
            raise ValueError(
                f"DistributedDataParallel: device_ids={device_ids} names several devices; "
                "give one device per process (device_ids=[rank]) or None.")
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError(
                "DistributedDataParallel is not needed when a module doesn't have any "
                "parameter that requires a gradient.")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.process_group = process_group
        self.bucket_cap_mb = 25 if bucket_cap_mb is None else bucket_cap_mb
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        self.world_size = comm.get_world_size(process_group)
        self._sync_module_states()
        self._params = params
        names = {id(p): name for name, p in module.named_parameters()}
        self._names = [names.get(id(p), "?") for p in params]
        self._buckets = [_Bucket(i, group) for i, group in
                         enumerate(_bucket_assignment(params, self.bucket_cap_mb))]
        self._where = {}  # id(param) -> (bucket, slot)
        for bucket in self._buckets:
            for slot, p in enumerate(bucket.params):
                self._where[id(p)] = (bucket, slot)
        self._ready: set = set()  # ids of parameters whose gradient is in a bucket
        self._used: torch.Tensor | None = None  # 1 where this process used the param
        self._next_bucket = 0
        self._expecting = False  # a synchronised backward is under way
        self._handles = [p.register_hook(self._make_hook(p)) for p in params]

    # ------------------------------------------------------------------- construction
    def _sync_module_states(self) -> None:
        """Every process starts from rank 0's parameters and buffers."""
        for name, tensor in list(self.module.state_dict().items()):
            raw = tensor.data if hasattr(tensor, "data") else tensor
            comm.broadcast(raw, 0, f"DistributedDataParallel: broadcast of '{name}'",
                           self.process_group)

    # -------------------------------------------------------------------------- forward
    def forward(self, *inputs, **kwargs):
        if self._expecting and self._ready:
            missing = [name for p, name in zip(self._params, self._names)
                       if id(p) not in self._ready]
            raise RuntimeError(
                "DistributedDataParallel: expected to have finished reduction in the prior "
                "iteration before starting a new one. This error indicates that your "
                "module has parameters that were not used in producing loss: "
                f"{', '.join(missing)} received no gradient on rank "
                f"{comm.get_rank(self.process_group)}. Pass find_unused_parameters=True to "
                "DistributedDataParallel, or make sure every forward output takes part in "
                "the loss.")
        if self.broadcast_buffers and self.module.training:
            for name, buffer in self.module.named_buffers():
                comm.broadcast(buffer.data, 0,
                               f"DistributedDataParallel: broadcast of buffer '{name}'",
                               self.process_group)
        output = self.module(*inputs, **kwargs)
        self._prepare(output)
        return output

    def _prepare(self, output) -> None:
        """Get the buckets ready for this forward's backward."""
        self._ready = set()
        self._next_bucket = 0
        for bucket in self._buckets:
            bucket.pending = len(bucket.params)
            bucket.work = None
        self._expecting = is_grad_enabled() and self.require_backward_grad_sync
        if not self._expecting:
            return
        self._used = torch.ones(len(self._params), dtype=torch.int32)
        if self.find_unused_parameters:
            reached = _reachable_leaves(output)
            for i, p in enumerate(self._params):
                if id(p) not in reached:
                    self._used[i] = 0
                    grad = p._grad.data if p._grad is not None else None
                    self._mark_ready(p, grad)
            if len(self._ready) == len(self._params):
                self._finish(None)

    # ---------------------------------------------------------------------- reduction
    def _make_hook(self, p):
        def reduce_gradient_hook(grad):
            if not self._expecting:  # no_sync(), eval without grad, or no forward first
                return None
            total = grad.data if p._grad is None else p._grad.data + grad.data
            if id(p) in self._ready:
                raise RuntimeError(
                    f"DistributedDataParallel: parameter '{self._names[self._index(p)]}' "
                    "was marked ready twice in one backward (a second backward through the "
                    "same forward, or a parameter used again after its gradient was "
                    "reduced); run forward again before each backward.")
            self._mark_ready(p, total)
            if len(self._ready) == len(self._params):
                return self._finish(p)
            return None
        return reduce_gradient_hook

    def _index(self, p) -> int:
        return next(i for i, q in enumerate(self._params) if q is p)

    def _mark_ready(self, p, grad) -> None:
        bucket, slot = self._where[id(p)]
        view = bucket.view(slot)
        if grad is None:
            view.zero_()
        else:
            torch.mul(grad, 1.0 / self.world_size, out=view)
        self._ready.add(id(p))
        bucket.pending -= 1
        while (self._next_bucket < len(self._buckets)
               and self._buckets[self._next_bucket].pending == 0):
            ready = self._buckets[self._next_bucket]
            ready.work = comm.all_reduce(ready.buffer, self._what(ready), self.process_group,
                                         async_op=True)
            self._next_bucket += 1

    def _what(self, bucket) -> str:
        return (f"DistributedDataParallel: all-reduce of gradient bucket {bucket.index} "
                f"({len(bucket.params)} parameters)")

    def _finish(self, last):
        """Wait for every bucket and put the averaged gradients into `.grad`. `last` is
        the parameter whose hook is running: its gradient is returned (the engine puts
        it into `.grad` after the hook)."""
        self._expecting = False
        for bucket in self._buckets:
            comm.wait(bucket.work, self._what(bucket), self.process_group)
        used = None
        if self.find_unused_parameters:
            used = self._used.clone()
            comm.all_reduce(used, "DistributedDataParallel: all-reduce of the used "
                            "parameters", self.process_group)
        result = None
        for i, p in enumerate(self._params):
            bucket, slot = self._where[id(p)]
            averaged = bucket.view(slot)
            if p is last:
                p._grad = None  # the engine stores the returned gradient as .grad
                result = p._result_type._make(averaged, False, None)
            elif used is not None and int(used[i]) == 0:
                continue  # no process used it: .grad stays as it was
            elif p._grad is None:
                p._grad = p._result_type._make(averaged.clone(), False, None)
            else:
                p._grad.data.copy_(averaged)
        return result

    # --------------------------------------------------------------------- no_sync
    @contextlib.contextmanager
    def no_sync(self):
        """Inside this context, backward accumulates gradients locally without
        averaging them; the first backward after it averages the accumulated ones."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def extra_repr(self) -> str:
        return f"world_size={self.world_size}, buckets={len(self._buckets)}"
