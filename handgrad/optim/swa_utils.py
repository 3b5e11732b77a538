"""Weight averaging, as torch.optim.swa_utils: SWA and EMA copies of a model, the SWA
learning-rate schedule, and recomputing BatchNorm statistics for averaged weights.

* `AveragedModel(model, avg_fn=, multi_avg_fn=, use_buffers=)` keeps a deep copy of the
  model; `update_parameters(model)` folds the model's current weights into it. The first
  call copies them; later calls apply the averaging function, by default the running
  (SWA) mean  avg <- avg + (p - avg) / (n + 1)  (on CUDA torch's lerp form of it), or an
  exponential moving average from `get_ema_multi_avg_fn(decay)` /
  `get_ema_avg_fn(decay)`:  ema <- decay * ema + (1 - decay) * p.
  With use_buffers=True the buffers (BatchNorm statistics) are averaged too; otherwise
  they are copied from the model. `n_averaged` counts the calls (a long buffer).
* `SWALR(optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos")` anneals each
  group's lr from its value to `swa_lr` over `anneal_epochs` steps, cosine or linear,
  then holds it.
* `update_bn(loader, model)` resets every BatchNorm's running statistics and makes one
  pass over the data in train mode with momentum=None, so they become the plain average
  over the batches (what the averaged weights need: their activations differ).

Averaging functions see raw torch tensors (the parameters' data, as optimizer buffers
are), so torch-written ones work unchanged; no graph is recorded. Same names, defaults,
order of operations and errors as torch 2.13, proven against it in
tests/optim/test_swa_utils.py.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from handgrad._tensor import Tensor
from handgrad.autograd import no_grad
from handgrad.nn.module import Module
from handgrad.nn.normalization import _BatchNorm, _InstanceNorm
from handgrad.optim.lr_scheduler import LRScheduler, _per_group
from handgrad.optim.optimizer import Optimizer

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]

# Devices where torch's default SWA average uses the multi-tensor (lerp) kernels.
_FOREACH_DEVICES = ("cuda", "xpu")


def _check_decay(decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """An EMA over lists of tensors, in place: ema <- ema + (1 - decay) * (p - ema)
    (lerp; for integer tensors decay * ema + (1 - decay) * p)."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _num_averaged) -> None:
        if torch.is_floating_point(ema_param_list[0]) or torch.is_complex(ema_param_list[0]):
            torch._foreach_lerp_(ema_param_list, current_param_list, 1 - decay)
        else:
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                p_ema.copy_(p_ema * decay + p_model * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """The running mean over lists of tensors, in place: avg <- lerp(avg, p, 1 / (n + 1))."""

    def swa_update(averaged_param_list, current_param_list, num_averaged) -> None:
        if (torch.is_floating_point(averaged_param_list[0])
                or torch.is_complex(averaged_param_list[0])):
            torch._foreach_lerp_(averaged_param_list, current_param_list,
                                 1 / (num_averaged + 1))
        else:
            diffs = torch._foreach_sub(current_param_list, averaged_param_list)
            if isinstance(num_averaged, torch.Tensor):
                torch._foreach_addcdiv_(averaged_param_list, diffs,
                                        [num_averaged + 1] * len(averaged_param_list))
            else:
                torch._foreach_add_(averaged_param_list, diffs, alpha=1.0 / (num_averaged + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """An EMA of one tensor: returns decay * ema + (1 - decay) * p."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, _num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable:
    """The running mean of one tensor: returns avg + (p - avg) / (n + 1)."""

    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


def _raw(value) -> torch.Tensor:
    return value.data if isinstance(value, Tensor) else value


class AveragedModel(Module):
    """A running average (SWA) or EMA of a model's weights (see the module docstring).

    Args:
        model: the model to average; deep-copied.
        device: where to keep the copy (default: where the model is).
        avg_fn: `avg_fn(averaged, current, n_averaged) -> new averaged`, one tensor at a
            time.
        multi_avg_fn: `multi_avg_fn(averaged_list, current_list, n_averaged)`, updating
            the lists in place (one call per device and dtype). At most one of the two.
        use_buffers: average the buffers too (True), or copy them from the model (False).
    """

    def __init__(self, model: Module, device=None, avg_fn: Callable | None = None,
                 multi_avg_fn: Callable | None = None, use_buffers: bool = False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _tracked(self, model: Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The raw tensors being averaged (ours) and the matching ones of `model` (moved to
        our devices): parameters, then buffers with use_buffers."""
        def raw(module):
            found = list(module.parameters())
            if self.use_buffers:
                found += list(module.buffers())
            return found
        ours = [t.data for t in raw(self.module)]
        theirs = [t.data.to(mine.device) for mine, t in zip(ours, raw(model))]
        return ours[:len(theirs)], theirs

    def _average_into(self, ours: list[torch.Tensor], theirs: list[torch.Tensor],
                      count: torch.Tensor) -> None:
        """One averaging update of `ours` towards `theirs`, `count` updates so far."""
        if self.avg_fn is not None and self.multi_avg_fn is None:
            for mine, other in zip(ours, theirs):
                mine.copy_(_raw(self.avg_fn(mine, other, count.to(mine.device))))
            return
        for (device, _), (mine, other) in _by_device_and_dtype(ours, theirs).items():
            here = count.to(device)
            if self.multi_avg_fn is not None:
                self.multi_avg_fn(mine, other, here)
            elif device.type in _FOREACH_DEVICES:  # torch's lerp kernels there
                get_swa_multi_avg_fn()(mine, other, here)
            else:
                running_mean = get_swa_avg_fn()
                for m, o in zip(mine, other):
                    m.copy_(_raw(running_mean(m, o, here)))

    def update_parameters(self, model: Module) -> None:
        """Fold `model`'s current weights (and buffers, with use_buffers) into the average:
        a plain copy the first time, the averaging function afterwards; without
        use_buffers the buffers are copied from `model` every time."""
        ours, theirs = self._tracked(model)
        count = self.n_averaged.data
        if bool(count == 0):
            for mine, other in zip(ours, theirs):
                mine.copy_(other)
        else:
            self._average_into(ours, theirs, count)
        if not self.use_buffers:
            kept, source = list(self.module.buffers()), list(model.buffers())
            if len(kept) != len(source):
                raise ValueError(
                    f"AveragedModel.update_parameters: the model has {len(source)} "
                    f"buffers, the averaged copy {len(kept)}; pass the model it was "
                    "built from.")
            for mine, other in zip(kept, source):
                mine.data.copy_(other.data.to(mine.data.device))
        count.add_(1)


def _by_device_and_dtype(averaged: list[torch.Tensor], current: list[torch.Tensor]) -> dict:
    """Pairs of lists grouped by the averaged tensor's (device, dtype), in first-seen order."""
    groups: dict[tuple, tuple[list, list]] = {}
    for a, c in zip(averaged, current):
        lists = groups.setdefault((a.device, a.dtype), ([], []))
        lists[0].append(a)
        lists[1].append(c)
    return groups


def update_bn(loader: Iterable[Any], model: Module, device=None) -> None:
    """Recompute the running statistics of every BatchNorm in `model` from one pass over
    `loader` (batches are tensors, or lists/tuples whose first item is the input).

    The statistics are reset and averaged with equal weight per batch (momentum=None);
    the BatchNorms' momentum and the model's train/eval mode are put back afterwards.
    InstanceNorm layers are left alone, as in torch."""
    norms = [m for m in model.modules()
             if isinstance(m, _BatchNorm) and not isinstance(m, _InstanceNorm)]
    if not norms:
        return
    saved_momentum = {norm: norm.momentum for norm in norms}
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: every batch weighs the same
    was_training = model.training
    model.train()
    with no_grad():
        for batch in loader:
            inputs = batch[0] if isinstance(batch, list | tuple) else batch
            if isinstance(inputs, torch.Tensor):
                inputs = Tensor(inputs)
            model(inputs if device is None else inputs.to(device))
    for norm, momentum in saved_momentum.items():
        norm.momentum = momentum
    model.train(was_training)


def _anneal_progress(step: int, anneal_epochs: int):
    """step / anneal_epochs kept in [0, 1] (ints stay ints, as torch's min / max leave them)."""
    return max(0, min(1, step / max(1, anneal_epochs)))


def _cosine_weight(progress):
    """w = (1 - cos(pi t)) / 2: 0 at t = 0, 1 at t = 1, flat at both ends."""
    return (1 - math.cos(math.pi * progress)) / 2


def _linear_weight(progress):
    """w = t."""
    return progress


_ANNEAL_WEIGHTS = {"cos": _cosine_weight, "linear": _linear_weight}


class SWALR(LRScheduler):
    """Anneal each group's lr to `swa_lr` over `anneal_epochs` steps, then hold it.

    At step s (s = 1 after the first scheduler.step()) with t = min(1, s / anneal_epochs)
    and alpha = (1 - cos(pi t)) / 2 ("cos") or t ("linear"):  lr = alpha * swa_lr +
    (1 - alpha) * lr_0, where lr_0 is recovered from the current lr (chainable form).

    Args:
        optimizer: the optimizer whose group lrs it sets.
        swa_lr: the final learning rate, one for all groups or one per group.
        anneal_epochs: steps of annealing (default 10; 0 jumps straight to swa_lr).
        anneal_strategy: "cos" (default) or "linear".
        last_epoch: the index of the last epoch (default -1: a new schedule).
    """

    def __init__(self, optimizer: Optimizer, swa_lr, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1):
        swa_lrs = _per_group("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got "
                             f"{anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """lr_s = w_s swa_lr + (1 - w_s) lr_0, with lr_0 = (lr_{s-1} - w_{s-1} swa_lr) /
        (1 - w_{s-1}) solved from the group's current lr (swa_lr itself once w_{s-1} = 1)."""
        self._warn_outside_step()
        step = self._step_count - 1  # steps taken since the initial one
        if self.anneal_epochs == 0:  # no annealing: swa_lr from the first step on
            step = max(step, 1)
        before = self.anneal_func(_anneal_progress(step - 1, self.anneal_epochs))
        now = self.anneal_func(_anneal_progress(step, self.anneal_epochs))
        lrs = []
        for group in self.optimizer.param_groups:
            target = group["swa_lr"]
            start = target if before == 1 else (group["lr"] - before * target) / (1 - before)
            lrs.append(target * now + start * (1 - now))
        return lrs

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = _ANNEAL_WEIGHTS[anneal_strategy]

    def state_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items()
                if key not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
