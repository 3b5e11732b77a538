"""Learning-rate schedules: change each parameter group's `lr` as training goes on.

Same classes, arguments and `last_epoch` semantics as PyTorch's `lr_scheduler`:

* building a scheduler records each group's `initial_lr` and does the first `step()`,
  so `optimizer.param_groups[i]['lr']` already holds the schedule's first value;
* call `scheduler.step()` once per epoch (or per batch), after `optimizer.step()`;
* `get_last_lr()` returns the rates just set; `state_dict()` / `load_state_dict()` save
  and restore everything but the optimizer (attribute names are PyTorch's, so the dicts
  move between the two libraries).

Schedules are *chainable*: each step multiplies the group's current `lr` (the
recursive form), so two schedulers can act on one optimizer, exactly as in PyTorch, and
the values agree with PyTorch's to the last bit. The closed forms (`lr` from `base_lrs`
and the epoch) are used when `step(epoch)` is given an epoch (deprecated there too).

In order: the base class, multiplicative schedules (LambdaLR, MultiplicativeLR, StepLR,
MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, CosineAnnealingLR),
schedules of schedules (SequentialLR, ChainedScheduler), the cyclic schedules stepped
per batch (CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR), and ReduceLROnPlateau,
which follows a metric instead of the epoch count.

Left out: tensor-valued learning rates, and a SequentialLR or ChainedScheduler placed
after a milestone of a SequentialLR (PyTorch cannot restart those either; handgrad says
so in its error).
"""

from __future__ import annotations

import math
import types
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from handgrad.optim.optimizer import Optimizer

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
    "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "SequentialLR",
    "ChainedScheduler", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR",
    "ReduceLROnPlateau",
]

_EPOCH_DEPRECATION = (
    "The epoch argument of scheduler.step() is deprecated (as in PyTorch); with an epoch "
    "the closed form is used instead of the chainable form. Call scheduler.step() "
    "without arguments instead.")


def _check_optimizer(optimizer) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer: LR schedulers take "
                        "a handgrad.optim optimizer (e.g. handgrad.optim.SGD).")


def _per_group(name: str, optimizer: Optimizer, value) -> list:
    """`value` for each param group: a list/tuple of one per group, or one for all."""
    if isinstance(value, list | tuple):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. {name} has "
                f"{len(value)} values, param_groups has {len(optimizer.param_groups)}.")
        return list(value)
    return [value] * len(optimizer.param_groups)


class LRScheduler:
    """Base class: subclasses define `get_lr()`, the next rates from the current ones.

    Args:
        optimizer: the optimizer whose group `lr`s this scheduler sets.
        last_epoch: index of the last epoch done; -1 (default) starts a new schedule.
            Another value resumes one and needs 'initial_lr' in every param group.
    """

    _get_lr_called_within_step = False
    _is_initial = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        # initial_lr: each group's lr when its schedule began (kept in the optimizer's
        # state_dict); a new schedule records it, a resumed one needs it there already
        resuming = last_epoch != -1
        missing = [i for i, group in enumerate(optimizer.param_groups)
                   if "initial_lr" not in group]
        if resuming and missing:
            raise KeyError(
                f"param 'initial_lr' is not specified in param_groups[{missing[0]}] when "
                f"resuming a scheduler with last_epoch={last_epoch}. Load the "
                "optimizer's state_dict first, or use last_epoch=-1 for a new run.")
        for i in missing:
            optimizer.param_groups[i]["initial_lr"] = optimizer.param_groups[i]["lr"]
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """The step done at construction: sets the schedule's first learning rate."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates for epoch `last_epoch` (called by step(); to read the
        current rates use get_last_lr())."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rate of each param group, as last set by this scheduler."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and set each group's lr; call after optimizer.step()."""
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", True):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`. Call "
                "them in the opposite order: `optimizer.step()` before "
                "`lr_scheduler.step()`; otherwise the first value of the learning rate "
                "schedule is skipped.", UserWarning, stacklevel=2)
        if epoch is not None:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        """Go to `epoch` (None: the next one) and write its rates into the groups. A jump
        to a given epoch takes the schedule's closed form where it has one, since get_lr
        is mostly written as a recurrence on the current rates."""
        if epoch is None:
            self.last_epoch, rates = self.last_epoch + 1, self.get_lr
        else:
            self.last_epoch, rates = epoch, getattr(self, "_get_closed_form_lr", self.get_lr)
        self._get_lr_called_within_step = True
        try:
            values = rates()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def _warn_outside_step(self) -> None:
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please "
                          "use `get_last_lr()`.", UserWarning, stacklevel=3)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (save the optimizer's state too)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes saved by state_dict()."""
        self.__dict__.update(state_dict)


# --------------------------------------------------------------------------- multiplicative
class _LambdaScheduler(LRScheduler):
    """Shared by LambdaLR and MultiplicativeLR: one function of the epoch per group.

    Functions and lambdas cannot be saved; callable objects save their `__dict__`."""

    def __init__(self, optimizer, lr_lambda, last_epoch):
        _check_optimizer(optimizer)
        if isinstance(lr_lambda, list | tuple):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but "
                                 f"got {len(lr_lambda)}.")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(
                    f"lr_lambda should be a function, but got {type(fn).__name__}.")
        super().__init__(optimizer, last_epoch)

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        lr_lambdas = state_dict.pop("lr_lambdas")
        self.__dict__.update(state_dict)
        for fn, saved in zip(self.lr_lambdas, lr_lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class LambdaLR(_LambdaScheduler):
    """lr = initial_lr * lr_lambda(epoch), with one function (or one per group)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list,
                 last_epoch: int = -1):
        super().__init__(optimizer, lr_lambda, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        return [base_lr * fn(self.last_epoch)
                for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class MultiplicativeLR(_LambdaScheduler):
    """lr <- lr * lr_lambda(epoch) at every step after the first."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list,
                 last_epoch: int = -1):
        super().__init__(optimizer, lr_lambda, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return self._current_lrs()
        return [group["lr"] * fn(self.last_epoch)
                for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups, strict=True)]


class StepLR(LRScheduler):
    """lr <- lr * gamma every `step_size` epochs: initial_lr * gamma^(epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr <- lr * gamma at each epoch in `milestones` (twice if listed twice)."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1):
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [lr * factor for lr in self._current_lrs()]

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.milestones = Counter(self.milestones)  # JSON checkpoints give a plain dict

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    """lr = initial_lr * factor for the first `total_iters` epochs, then initial_lr."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1):
        if factor > 1.0 or factor < 0:
            raise ValueError(f"ConstantLR: multiplicative factor {factor} expected to be "
                             "between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """The factor on initial_lr goes linearly from `start_factor` to `end_factor` over
    `total_iters` epochs, then stays (a common warm-up)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(f"LinearLR: starting multiplicative factor {start_factor} "
                             "expected to be greater than 0 and less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(f"LinearLR: ending multiplicative factor {end_factor} expected "
                             "to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        # ratio of the factor at this epoch to the factor at the previous one
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor
                               + (self.last_epoch - 1) * delta)
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr <- lr * gamma every epoch: initial_lr * gamma^epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    """lr = initial_lr * (1 - epoch / total_iters)^power, then 0 after total_iters."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1):
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        decay = ((1.0 - self.last_epoch / self.total_iters)
                 / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [lr * decay for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters)
                ** self.power for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr follows half a cosine from initial_lr down to `eta_min` over `T_max` epochs
    (and back up over the next T_max, as in PyTorch):

        lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        epoch, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and epoch > 0:  # resumed: closed form once
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(epoch * math.pi / t_max)) / 2
                    for base_lr in self.base_lrs]
        if (epoch - 1 - t_max) % (2 * t_max) == 0:  # at the bottom of the cosine
            return [lr + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base_lr, lr in zip(self.base_lrs, self._current_lrs(), strict=True)]
        ratio = ((1 + math.cos(math.pi * epoch / t_max))
                 / (1 + math.cos(math.pi * (epoch - 1) / t_max)))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


# --------------------------------------------------------------------------- combinations
def _check_schedulers(owner: str, optimizer, schedulers) -> None:
    if len(schedulers) < 1:
        raise ValueError(f"{owner} expects at least one scheduler, but got none.")
    for i, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{owner}: the scheduler at index {i} should have `optimizer` "
                            "as its attribute.")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{owner} does not support ReduceLROnPlateau (its step() needs a metric), "
                f"but got one at index {i}.")
        if optimizer is not scheduler.optimizer:
            raise ValueError(
                f"{owner} expects all schedulers to belong to the same optimizer, but the "
                f"{type(scheduler).__name__} at index {i} has another one.")


class _SchedulerOfSchedulers(LRScheduler):
    """Shared by SequentialLR and ChainedScheduler: their state holds their schedulers'."""

    _schedulers: Sequence[LRScheduler]

    def get_lr(self):
        # Reached when an outer SequentialLR restarts this one at its milestone: that
        # needs the rate at epoch 0 in closed form, which a schedule of schedules lacks.
        name = type(self).__name__
        raise NotImplementedError(
            f"A {name} cannot be restarted at a milestone of another SequentialLR: it has "
            "no learning rate of its own, only its schedulers' (PyTorch fails here too). "
            f"Put the {name}'s schedulers in the outer SequentialLR's list directly, with "
            "their milestones, or make the nested one the first in the list (it then "
            "starts at epoch 0 and is never restarted).")

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        inner = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for scheduler, saved in zip(self._schedulers, inner):
            scheduler.load_state_dict(saved)


class SequentialLR(_SchedulerOfSchedulers):
    """Run `schedulers` one after another, switching at the epochs in `milestones`
    (e.g. LinearLR warm-up for 5 epochs, then CosineAnnealingLR: milestones=[5])."""

    def __init__(self, optimizer: Optimizer, schedulers: list[LRScheduler],
                 milestones: list[int], last_epoch: int = -1):
        _check_schedulers(type(self).__name__, optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "SequentialLR expects one milestone fewer than schedulers, but got "
                f"{len(schedulers)} schedulers and {len(milestones)} milestones.")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        # Each scheduler already did its initial step when built: undo them all, then
        # do the first scheduler's initial step only.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        _step_back(self)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        """Step the scheduler whose turn it is; at a milestone, restart the next one."""
        self.last_epoch += 1
        turn = bisect_right(self._milestones, self.last_epoch)
        active = self._schedulers[turn]
        just_switched = turn > 0 and self._milestones[turn - 1] == self.last_epoch
        if just_switched:  # the new scheduler starts from its own epoch 0
            active._update_lr(0)
        else:
            active.step()
        self._last_lr = active.get_last_lr()


def _step_back(scheduler) -> None:
    """Take back the initial step of every scheduler below `scheduler` (nested ones too):
    each leaf's last_epoch goes down by one."""
    pending = [scheduler]
    while pending:
        current = pending.pop()
        if hasattr(current, "_schedulers"):
            pending.extend(current._schedulers)
        elif hasattr(current, "last_epoch"):
            current.last_epoch -= 1


class ChainedScheduler(_SchedulerOfSchedulers):
    """Step every scheduler in `schedulers` at each step (their factors multiply)."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None):
        if len(schedulers) < 1:
            raise ValueError("ChainedScheduler expects at least one scheduler, but got none.")
        optimizer = optimizer or schedulers[0].optimizer
        _check_schedulers(type(self).__name__, optimizer, schedulers)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = self._current_lrs()

    def step(self) -> None:  # type: ignore[override]
        """Step every scheduler, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = self._current_lrs()


# --------------------------------------------------------------------------- cyclic
class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter, 2017): a cosine from initial_lr down to `eta_min` over
    T_i epochs, then a restart at initial_lr with T_i <- T_i * T_mult:

        lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2

    where T_cur counts the epochs since the last restart. step() adds one epoch;
    step(epoch) jumps to any epoch, fractional ones included, so it can be called per
    batch: `scheduler.step(epoch + i / batches_per_epoch)` (not deprecated here, as in
    PyTorch). The two can be interleaved.

    Args:
        optimizer: the optimizer whose group `lr`s this scheduler sets.
        T_0: epochs until the first restart (a positive int).
        T_mult: factor by which T_i grows after each restart (an int >= 1).
        eta_min: the lowest learning rate.
        last_epoch: index of the last epoch done; -1 (default) starts a new schedule.
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1):
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, float | int):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type "
                             f"{type(eta_min)}")
        # T_i: the current cycle's length; T_cur: epochs since the last restart
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        self.T_i, self.T_cur = T_0, last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def _position_at(self, epoch: float) -> tuple[float, int]:
        """(T_cur, T_i) at an absolute epoch. Cycle k (from 0) is T_0 T_mult^k long, so
        k cycles are over once epoch >= T_0 (T_mult^k - 1) / (T_mult - 1) (k T_0 when
        T_mult = 1); T_cur is what the epoch passes the last of those boundaries by."""
        first, growth = self.T_0, self.T_mult
        if epoch < first:
            return epoch, first
        if growth == 1:
            return epoch % first, self.T_i
        cycles = int(math.log((epoch / first * (growth - 1) + 1), growth))
        return epoch - first * (growth ** cycles - 1) / (growth - 1), first * growth ** cycles

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or go to `epoch` (which may be fractional); then set the
        rates. Unlike other schedulers, this step() neither counts steps nor warns."""
        if epoch is None and self.last_epoch >= 0:
            # one epoch on: the cycle position grows by one and wraps at a restart
            since_restart, period = self.T_cur + 1, self.T_i
            if since_restart >= period:
                since_restart, period = since_restart % period, period * self.T_mult
            self.T_cur, self.T_i = since_restart, period
            epoch = self.last_epoch + 1
        else:
            epoch = 0 if epoch is None else epoch
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            self.T_cur, self.T_i = self._position_at(epoch)
        self.last_epoch = math.floor(epoch)

        self._get_lr_called_within_step = True
        try:
            values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = self._current_lrs()


def _triangle_wave(step: int, period: float, up_share: float) -> tuple[int, float]:
    """(cycle, rise) at `step`: cycles of `period` steps count from 1; within one the
    position u = step / period - (cycle - 1) runs over [0, 1), and rise goes linearly
    0 -> 1 over u in [0, up_share], then back 1 -> 0 up to u = 1."""
    cycle = math.floor(1 + step / period)
    position = 1.0 + step / period - cycle
    if position <= up_share:
        return cycle, position / up_share
    return cycle, (position - 1) / (up_share - 1)


def _flat_height(cycle: float) -> float:
    """'triangular': every cycle as high as the first."""
    return 1.0


def _halving_height(cycle: float) -> float:
    """'triangular2': 1 / 2^(cycle - 1), half as high each cycle."""
    return 1 / (2.0 ** (cycle - 1))


def _exp_range_height(gamma: float, iterations: float) -> float:
    """'exp_range': gamma^iterations, shrinking with every step."""
    return gamma ** iterations


# mode -> (height function, what it is given: the cycle number or the step count)
_CYCLIC_HEIGHTS = {"triangular": (_flat_height, "cycle"),
                   "triangular2": (_halving_height, "cycle"),
                   "exp_range": (_exp_range_height, "iterations")}


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith, 2017), stepped once per batch.

    lr goes linearly from `base_lr` up to `max_lr` over `step_size_up` steps and back
    down over `step_size_down` (default: the same), the height scaled by
    scale_fn(cycle) (cycles count from 1) or scale_fn(steps so far):

        lr = base_lr + (max_lr - base_lr) * rise * scale_fn(...)

    where `rise` goes 0 -> 1 -> 0 over each cycle. The modes are scale functions:
    'triangular' (1), 'triangular2' (halved each cycle: 1 / 2^(cycle - 1)) and
    'exp_range' (gamma^steps); a `scale_fn` given replaces the mode. With
    `cycle_momentum`, momentum (SGD, RMSprop) or beta1 (Adam, AdamW) moves the opposite
    way, from `max_momentum` down to `base_momentum` at the top of the cycle.

    Args:
        optimizer: the optimizer whose group `lr`s (and momenta) this scheduler sets.
        base_lr, max_lr: the bounds of the cycle (one, or one per group); building the
            scheduler sets each group's lr to base_lr.
        step_size_up, step_size_down: steps in the rising and falling half of a cycle.
        mode: 'triangular', 'triangular2' or 'exp_range' (ignored with scale_fn).
        gamma: the base of 'exp_range'.
        scale_fn: a function of one argument with values in [0, 1]. Functions and
            lambdas are not saved by state_dict(); callable objects save `__dict__`.
        scale_mode: 'cycle' or 'iterations': what scale_fn is given (with scale_fn only;
            the modes set it themselves).
        cycle_momentum: also cycle momentum, or beta1 where the optimizer has `betas`.
        base_momentum, max_momentum: the bounds of the momentum cycle.
        last_epoch: index of the last *batch* done; -1 (default) starts a new schedule.
    """

    def __init__(self, optimizer: Optimizer, base_lr: float | list[float],
                 max_lr: float | list[float], step_size_up: int = 2000,
                 step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable[[float], float] | None = None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.8,
                 max_momentum: float | list[float] = 0.9, last_epoch: int = -1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                group["lr"] = lr
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)

        step_size_up = float(step_size_up)
        step_size_down = float(step_size_down) if step_size_down is not None else step_size_up
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size

        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None (CyclicLR: use mode "
                             f"'triangular', 'triangular2' or 'exp_range', not {mode!r}, "
                             "or give a scale_fn)")
        self.mode, self.gamma, self.scale_mode = mode, gamma, scale_mode
        self._scale_fn_custom = scale_fn
        self._use_mode_height()

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled (CyclicLR: "
                                 f"{type(optimizer).__name__} has neither; pass "
                                 "cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:  # a new run starts at the top of the momentum cycle
                for group, high, low in zip(optimizer.param_groups, self.max_momentums,
                                            self.base_momentums, strict=True):
                    self._set_momentum(group, high)
                    group.update(max_momentum=high, base_momentum=low)
        # As in PyTorch, the initial step uses the groups' initial_lr as the lower bound
        # (the same as base_lr unless the groups had one already); base_lr from then on.
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _use_mode_height(self) -> None:
        """Without a scale_fn of the user's, take the mode's height function (kept out of
        state_dict, rebuilt on load) and the scale_mode it is written for."""
        if self._scale_fn_custom is None and self.mode in _CYCLIC_HEIGHTS:
            height, self.scale_mode = _CYCLIC_HEIGHTS[self.mode]
            self._mode_height = (partial(height, self.gamma) if self.mode == "exp_range"
                                 else height)

    def scale_fn(self, x: float) -> float:
        """The height of the cycle, relative to max_lr - base_lr, at `x` (a cycle
        number or a step count, as scale_mode says)."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        return self._mode_height(x)

    def _set_momentum(self, group: dict, momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def get_lr(self):
        self._warn_outside_step()
        cycle, rise = _triangle_wave(self.last_epoch, self.total_size, self.step_ratio)
        height = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [low + (high - low) * rise * height
               for low, high in zip(self.base_lrs, self.max_lrs, strict=True)]
        if self.cycle_momentum:  # the same wave, upside down
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums, strict=True):
                self._set_momentum(group, high - (high - low) * rise * height)
        return lrs

    def state_dict(self):
        """As LRScheduler's, less the mode's scale function; a custom scale_fn is kept
        as its `__dict__` if it is a callable object, as None if it is a function."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_mode_height")}
        user_fn = state["_scale_fn_custom"]
        saveable = user_fn is not None and not isinstance(user_fn, types.FunctionType)
        state["_scale_fn_custom"] = user_fn.__dict__.copy() if saveable else None
        return state

    def load_state_dict(self, state_dict):
        attributes = dict(state_dict)
        user_fn_state = attributes.pop("_scale_fn_custom", None)
        self.__dict__.update(attributes)
        if user_fn_state is not None:  # the callable object stays ours, its fields load
            self._scale_fn_custom.__dict__.update(user_fn_state)
        self._use_mode_height()


# --------------------------------------------------------------------------- one cycle
def _positive_int(name: str, value) -> int:
    """`value` itself when it is an int > 0; torch's ValueError otherwise."""
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"Expected positive integer {name}, but got {value}")
    return value


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018), stepped once per batch.

    lr rises from max_lr / div_factor to `max_lr` over the first `pct_start` of
    `total_steps`, then anneals (cosine or linear) to initial_lr / final_div_factor;
    with `three_phase`, it first comes back down to the initial lr symmetrically. With
    `cycle_momentum`, momentum (SGD, RMSprop) or beta1 (Adam) moves the opposite way
    between `max_momentum` and `base_momentum`.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85,
                 max_momentum: float | list[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if total_steps is not None:
            self.total_steps = _positive_int("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int("epochs", epochs)
                                * _positive_int("steps_per_epoch", steps_per_epoch))
        else:
            raise ValueError("You must define either total_steps OR (epochs AND "
                             "steps_per_epoch)")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self._anneal_func_type = anneal_strategy

        # Each phase: the step it ends at, and which group keys it anneals between.
        warm_end = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._schedule_phases = [
                _phase(warm_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                       "base_momentum", "max_momentum"),
                _phase(self.total_steps - 1, "initial_lr", "min_lr", "max_momentum",
                       "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                _phase(warm_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(self.total_steps - 1, "max_lr", "min_lr", "base_momentum",
                       "max_momentum"),
            ]

        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for group, group_max_lr in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = group_max_lr / div_factor
                group["max_lr"] = group_max_lr
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled")
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for group, m_max, m_base in zip(optimizer.param_groups, max_momentums,
                                                base_momentums):
                    self._set_momentum(group, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict, momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        self._warn_outside_step()
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total "
                             f"steps is {self.total_steps}")
        # the phase this step falls in (the last one takes any step past its end) and
        # the fraction of it done
        phase_start, phases = 0.0, self._schedule_phases
        for phase in phases[:-1]:
            if step <= phase["end_step"]:
                break
            phase_start = phase["end_step"]
        else:
            phase = phases[-1]
        done = (step - phase_start) / (phase["end_step"] - phase_start)
        lrs = []
        for group in self.optimizer.param_groups:
            lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], done))
            if self.cycle_momentum:
                self._set_momentum(group, self._anneal(group[phase["start_momentum"]],
                                                       group[phase["end_momentum"]], done))
        return lrs


def _phase(end_step, start_lr, end_lr, start_momentum, end_momentum) -> dict[str, Any]:
    return {"end_step": end_step, "start_lr": start_lr, "end_lr": end_lr,
            "start_momentum": start_momentum, "end_momentum": end_momentum}


# --------------------------------------------------------------------------- on plateau
class ReduceLROnPlateau(LRScheduler):
    """lr <- max(lr * factor, min_lr) when a metric stops improving; step(metric) after
    each evaluation.

    Args:
        optimizer: the optimizer whose rates to reduce.
        mode: 'min' (the metric should fall, e.g. a loss) or 'max' (e.g. accuracy).
        factor: multiplier of the learning rate on a reduction (< 1).
        patience: epochs without improvement tolerated before reducing; a reduction
            happens on the (patience + 1)-th bad epoch.
        threshold: smallest change that counts as an improvement.
        threshold_mode: 'rel' (best * (1 -/+ threshold)) or 'abs' (best -/+ threshold).
        cooldown: epochs to wait after a reduction before counting bad epochs again.
        min_lr: lower bound on the learning rate (one, or one per group).
        eps: reductions smaller than this are skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | list[float] = 0, eps: float = 1e-8):
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: Factor should be < 1.0 (got {factor}).")
        _check_optimizer(optimizer)
        groups = len(optimizer.param_groups)
        per_group = isinstance(min_lr, list | tuple)
        if per_group and len(min_lr) != groups:
            raise ValueError(f"expected {groups} min_lrs, got {len(min_lr)}")
        # default_min_lr: the one value that fills min_lrs again if groups are added later
        self.default_min_lr = None if per_group else min_lr
        self.min_lrs = list(min_lr) if per_group else [min_lr] * groups
        self.optimizer, self.factor, self.eps = optimizer, factor, eps
        self.patience, self.cooldown = patience, cooldown
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._set_comparison(mode, threshold, threshold_mode)
        self._start_over()

    def _start_over(self) -> None:
        """No best metric yet, no cooldown, no bad epochs."""
        self.best, self.cooldown_counter, self.num_bad_epochs = self.mode_worse, 0, 0

    def step(self, metrics, epoch=None) -> None:  # type: ignore[override]
        """Record this epoch's metric; reduce the rates after too many bad epochs."""
        current = float(metrics)  # a 0-d tensor or a number
        if epoch is not None:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        improved = self._improves(current, self.best)
        if improved:
            self.best = current
        cooling = self.in_cooldown
        if cooling:
            self.cooldown_counter -= 1
        # a bad epoch counts unless it falls in the cooldown; an improvement resets the count
        self.num_bad_epochs = 0 if improved or cooling else self.num_bad_epochs + 1
        if self.num_bad_epochs > self.patience:  # patience ran out: reduce, then cool down
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} param groups but "
                    f"min_lrs has {len(self.min_lrs)} (a group was probably added after "
                    "the scheduler was built). Set `min_lrs` to one value per group.")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, floor in zip(groups, self.min_lrs):
            current = float(group["lr"])
            reduced = max(current * self.factor, floor)
            if current - reduced > self.eps:  # skip changes too small to matter
                group["lr"] = reduced

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _improves(self, a: float, best: float) -> bool:
        """Whether metric `a` beats `best` by the threshold: below best (1 - threshold) or
        best - threshold in 'min' mode, above best (threshold + 1) or best + threshold in
        'max' mode."""
        relative = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if relative else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if relative else best + self.threshold)

    def _set_comparison(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode {mode!r} is unknown (use 'min' or "
                             "'max').")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold mode {threshold_mode!r} is "
                             "unknown (use 'rel' or 'abs').")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
        self._set_comparison(self.mode, self.threshold, self.threshold_mode)
