"""Built-in callbacks of the Learner, each a small class with a few event methods.

A callback is any object with some of the Learner's event methods (`before_fit`,
`before_epoch`, `before_train`, `before_batch`, `before_backward`, `after_backward`,
`before_step`, `after_step`, `after_batch`, `after_train`, `before_validate`,
`after_validate`, `after_epoch`, `after_fit`), each called with the learner. They run
in the order of their `order` attribute, smaller first; the built-ins use:

    order  callback               what it does
    -----  ---------------------  ---------------------------------------------------------
     -20   DeviceCallback         moves the model (before_fit) and each batch to a device
     -15   NaNGuard               stops with a clear error when the loss is nan or inf
     -10   History                averages loss and metrics per epoch; per-step loss and lr
       0   GradientClipping       clip_grad_norm_ between backward and step
      10   LRSchedulerCallback    scheduler.step() after each batch or each epoch
      20   EarlyStopping          stops when a monitored figure stops improving
      50   ProgressBar            a tqdm bar per epoch with the running loss
      60   EpochTable             prints one row per epoch
      70   LearningCurves         writes loss and metric PNGs (train vs valid) after the fit
      80   SaveCheckpoint         writes a checkpoint after each epoch

History runs before the others at after_epoch, so they all see the finished epoch in
`learner.history.epochs[-1]`; SaveCheckpoint runs last, after the scheduler has
stepped. A callback with `state_dict()` / `load_state_dict()` has its state saved in
checkpoints (History and EarlyStopping do).

In a distributed run (more than one process in torch.distributed's default group), a
callback with `rank_zero_only = True` runs on rank 0 only: ProgressBar, EpochTable and
LearningCurves set it. History sums its figures over the ranks at the end of each epoch
(every rank gets the same exact means); SaveCheckpoint writes on rank 0, then every rank
waits at a barrier.

The LR finder lives in lr_finder.py. Left out: mixed precision, gradient accumulation,
logging to external services.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch

from handgrad.train import distributed
from handgrad.train.metrics import batch_size, metric_name

__all__ = [
    "Callback", "DeviceCallback", "NaNGuard", "NonFiniteLossError", "History",
    "GradientClipping", "LRSchedulerCallback", "EarlyStopping", "ProgressBar", "EpochTable",
    "LearningCurves", "SaveCheckpoint", "move_to",
]


class Callback:
    """Optional base class: documents the interface; every event method is optional.

    Subclasses define any of the event methods, e.g. `def after_batch(self, learner):`,
    and may set `order` (default 0) and `rank_zero_only` (default False: True runs the
    callback on rank 0 only in a distributed run, for callbacks that print or write)."""

    order = 0
    rank_zero_only = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# --------------------------------------------------------------------------- device
def move_to(batch, device):
    """`batch` (a Tensor, or a tuple/list/dict of them) with every tensor on `device`."""
    if hasattr(batch, "to") and hasattr(batch, "device"):
        return batch.to(device)
    if isinstance(batch, tuple | list):
        return type(batch)(move_to(b, device) for b in batch)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    return batch


class DeviceCallback(Callback):
    """Put the model (and any optimizer state) on `device` before the fit, and every
    batch on it before the forward pass."""

    order = -20

    def __init__(self, device):
        self.device = torch.device(device)

    def before_fit(self, learner) -> None:
        learner.model.to(self.device)
        for state in getattr(learner.optimizer, "state", {}).values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.ndim > 0:
                    state[key] = value.to(self.device)
                elif hasattr(getattr(value, "data", None), "device") and value.ndim > 0:
                    value.data = value.data.to(self.device)

    def before_batch(self, learner) -> None:
        learner.batch = move_to(learner.batch, self.device)

    def __repr__(self) -> str:
        return f"DeviceCallback({str(self.device)!r})"


# --------------------------------------------------------------------------- NaN guard
class NonFiniteLossError(RuntimeError):
    """The loss became nan or inf; the message says at which epoch, batch and step."""


class NaNGuard(Callback):
    """Stop the fit with a NonFiniteLossError when the loss is nan or inf.

    The training loss is checked before backward, so the parameters are still those
    that produced it (the last checkpoint is good). With `check_gradients=True` the
    gradients are checked after backward too, and the first parameter with a
    non-finite gradient is named."""

    order = -15

    def __init__(self, check_gradients: bool = False):
        self.check_gradients = check_gradients

    def _where(self, learner) -> str:
        phase = "training" if learner.training else "validation"
        where = (f"epoch {learner.epoch + 1}, {phase} batch {learner.batch_index + 1}"
                 + (f" of {learner.num_batches}" if learner.num_batches else ""))
        if learner.training:
            lr = learner.optimizer.param_groups[0]["lr"]
            where += f" (optimizer step {learner.step + 1}, learning rate {lr:.3g})"
        return where

    def _check_loss(self, learner) -> None:
        value = learner.loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"NaNGuard: the {'training' if learner.training else 'validation'} loss is "
                f"{value} at {self._where(learner)}. Training stopped before this batch "
                "changed the parameters. Try a lower learning rate, gradient clipping "
                "(GradientClipping / --clip-grad), or check the inputs for nan/inf.")

    def before_backward(self, learner) -> None:
        self._check_loss(learner)

    def after_backward(self, learner) -> None:
        if not self.check_gradients:
            return
        for name, p in learner.model.named_parameters():
            if p.grad is not None and not bool(torch.isfinite(p.grad.data).all()):
                raise NonFiniteLossError(
                    f"NaNGuard: the gradient of {name} (shape {tuple(p.shape)}) holds nan or "
                    f"inf at {self._where(learner)}. Try a lower learning rate or gradient "
                    "clipping.")

    def after_batch(self, learner) -> None:
        if not learner.training:
            self._check_loss(learner)


# --------------------------------------------------------------------------- history
class History(Callback):
    """Loss and metrics per epoch, and the loss and learning rate of every step.

    `epochs`: one dict per epoch: `epoch` (1-based count), `train_loss`,
    `train_<metric>`, `valid_loss`, `valid_<metric>`, `lr` (of the epoch's last step)
    and `time` (seconds). Each figure is the mean over the epoch's examples (training
    figures are measured on the fly, in training mode, as the weights change).
    `steps`: one dict per optimizer step: `step`, `epoch`, `loss`, `lr`.

    In a distributed run the epoch figures are over every rank's examples: the sums and
    counts are all-reduced at after_epoch (on every rank, before any other callback sees
    the epoch); `steps` holds this rank's own batches.

    Every Learner has one, as `learner.history`."""

    order = -10

    def __init__(self, metrics: Iterable | Mapping = ()):
        if isinstance(metrics, Mapping):
            self.metrics = dict(metrics)
        else:
            self.metrics = {metric_name(m): m for m in metrics}
        self.epochs: list[dict] = []
        self.steps: list[dict] = []
        self._sums: dict[str, dict[str, float]] = {}
        self._counts: dict[str, int] = {}
        self._lr = float("nan")
        self._start = 0.0

    def before_epoch(self, learner) -> None:
        self._sums = {"train": {}, "valid": {}}
        self._counts = {"train": 0, "valid": 0}
        self._start = time.perf_counter()

    def before_step(self, learner) -> None:
        self._lr = learner.optimizer.param_groups[0]["lr"]

    def after_batch(self, learner) -> None:
        phase = "train" if learner.training else "valid"
        n = batch_size(learner.target)
        loss = learner.loss.item()
        values = {"loss": loss}
        for name, metric in self.metrics.items():
            values[name] = metric(learner.output, learner.target)
        sums = self._sums[phase]
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value * n
        self._counts[phase] += n
        if learner.training:
            self.steps.append({"step": learner.step, "epoch": learner.epoch + 1,
                               "loss": loss, "lr": self._lr})

    def running(self, name: str = "loss", phase: str = "train") -> float:
        """The mean of `name` over the batches of this epoch so far."""
        count = self._counts.get(phase, 0)
        return self._sums[phase].get(name, float("nan")) / count if count else float("nan")

    def _all_reduce(self) -> None:
        """Sums and counts of both phases summed over the ranks (same names everywhere:
        the loss and every metric, 0 where this rank saw no batch)."""
        names = ["loss", *self.metrics]
        local = []
        for phase in ("train", "valid"):
            local.append(float(self._counts.get(phase, 0)))
            local += [self._sums.get(phase, {}).get(name, 0.0) for name in names]
        total = distributed.all_reduce_sums(local, "History: all-reduce of the epoch's "
                                                   "loss and metric sums")
        for i, phase in enumerate(("train", "valid")):
            row = total[i * (len(names) + 1):(i + 1) * (len(names) + 1)]
            self._counts[phase] = int(row[0])
            self._sums[phase] = dict(zip(names, row[1:])) if row[0] else {}

    def after_epoch(self, learner) -> None:
        if distributed.is_distributed():
            self._all_reduce()
        record: dict = {"epoch": learner.epochs_done}
        for phase in ("train", "valid"):
            if self._counts.get(phase):
                for name in self._sums[phase]:
                    record[f"{phase}_{name}"] = self.running(name, phase)
        record["lr"] = self._lr
        record["time"] = time.perf_counter() - self._start
        self.epochs.append(record)

    @property
    def last(self) -> dict:
        """The figures of the last epoch ({} before the first one ends)."""
        return self.epochs[-1] if self.epochs else {}

    def state_dict(self) -> dict:
        return {"epochs": self.epochs, "steps": self.steps}

    def load_state_dict(self, state: Mapping) -> None:
        self.epochs = [dict(e) for e in state.get("epochs", [])]
        self.steps = [dict(s) for s in state.get("steps", [])]

    def __repr__(self) -> str:
        return f"History(metrics={list(self.metrics)}, epochs={len(self.epochs)})"


# --------------------------------------------------------------------------- gradients
class GradientClipping(Callback):
    """Scale the gradients so their joint norm is at most `max_norm`, after backward
    (nn.utils.clip_grad_norm_). `last_norm` keeps the norm before clipping (a Tensor)."""

    def __init__(self, max_norm: float, norm_type: float = 2.0):
        self.max_norm, self.norm_type = float(max_norm), float(norm_type)
        self.last_norm = None

    def after_backward(self, learner) -> None:
        from handgrad.nn.utils import clip_grad_norm_  # train sits above nn

        self.last_norm = clip_grad_norm_(learner.model.parameters(), self.max_norm,
                                         self.norm_type)

    def __repr__(self) -> str:
        return f"GradientClipping(max_norm={self.max_norm})"


# --------------------------------------------------------------------------- LR schedules
_PER_BATCH_SCHEDULERS = {"OneCycleLR", "CyclicLR"}


class LRSchedulerCallback(Callback):
    """Step an LR scheduler after every optimizer step (`interval="batch"`) or after
    every epoch (`interval="epoch"`). The default interval is "batch" for OneCycleLR
    (its total_steps counts batches) and "epoch" for the rest. ReduceLROnPlateau gets
    `monitor` from the history (default: valid_loss, or train_loss without validation).

    The Learner adds one for its `scheduler` argument."""

    order = 10

    def __init__(self, scheduler, interval: str | None = None, monitor: str | None = None):
        if interval is None:
            interval = "batch" if type(scheduler).__name__ in _PER_BATCH_SCHEDULERS else "epoch"
        if interval not in ("batch", "epoch"):
            raise ValueError(f"LRSchedulerCallback: interval must be 'batch' or 'epoch', "
                             f"got {interval!r}")
        self.scheduler, self.interval, self.monitor = scheduler, interval, monitor
        self.needs_metric = type(scheduler).__name__ == "ReduceLROnPlateau"

    def after_step(self, learner) -> None:
        if self.interval == "batch":
            self.scheduler.step()

    def after_epoch(self, learner) -> None:
        if self.interval != "epoch":
            return
        if self.needs_metric:
            record = learner.history.last
            monitor = self.monitor or ("valid_loss" if "valid_loss" in record else "train_loss")
            if monitor not in record:
                raise KeyError(f"LRSchedulerCallback: ReduceLROnPlateau monitors {monitor!r}, "
                               f"but the history has only {sorted(record)}")
            self.scheduler.step(record[monitor])
        else:
            self.scheduler.step()

    def __repr__(self) -> str:
        return f"LRSchedulerCallback({type(self.scheduler).__name__}, interval={self.interval!r})"


# --------------------------------------------------------------------------- early stopping
class EarlyStopping(Callback):
    """End the fit when `monitor` (a key of the history, e.g. "valid_loss" or
    "valid_accuracy") has not improved by more than `min_delta` for `patience` epochs.
    `mode` is "min" (losses) or "max" (accuracies). With `restore_best=True` the
    model's weights of the best epoch are put back after the fit (kept in memory: a
    checkpoint saves the best figure and the patience count, not those weights)."""

    order = 20

    def __init__(self, monitor: str = "valid_loss", mode: str = "min", patience: int = 5,
                 min_delta: float = 0.0, restore_best: bool = False, verbose: bool = True):
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best, self.verbose = min_delta, restore_best, verbose
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch, self.wait, self.stopped_epoch = 0, 0, None
        self._best_weights = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def after_epoch(self, learner) -> None:
        record = learner.history.last
        if self.monitor not in record:
            raise KeyError(f"EarlyStopping: {self.monitor!r} is not in the history (it has "
                           f"{sorted(record)}); monitor one of those")
        value = record[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, record["epoch"], 0
            if self.restore_best:
                self._best_weights = {k: v.data.clone()
                                      for k, v in learner.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            learner.should_stop = True
            self.stopped_epoch = record["epoch"]
            if self.verbose and distributed.rank_zero():  # it runs on every rank
                print(f"early stopping after epoch {record['epoch']}: {self.monitor} has not "
                      f"improved for {self.patience} epochs (best {self.best:.4g} at epoch "
                      f"{self.best_epoch})")

    def after_fit(self, learner) -> None:
        if self.restore_best and self._best_weights is not None:
            learner.model.load_state_dict(self._best_weights)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: Mapping) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


# --------------------------------------------------------------------------- display
class ProgressBar(Callback):
    """A tqdm bar over each epoch's training batches, showing the running mean loss.

    `disable=None` (the default) hides it when the output is not a terminal, as tqdm
    does; `disable=False` always shows it."""

    order = 50
    rank_zero_only = True

    def __init__(self, disable: bool | None = None, leave: bool = False, file=None):
        self.disable, self.leave, self.file = disable, leave, file
        self.bar = None

    def before_train(self, learner) -> None:
        from tqdm.auto import tqdm

        total = learner.num_batches or (len(learner.train_dl)
                                        if hasattr(learner.train_dl, "__len__") else None)
        self.bar = tqdm(total=total, desc=f"epoch {learner.epoch + 1}/{learner.epochs}",
                        unit="batch", leave=self.leave, disable=self.disable,
                        file=self.file or sys.stderr, dynamic_ncols=True)

    def after_batch(self, learner) -> None:
        if self.bar is not None and learner.training:
            # The postfix first: the redraw that update() triggers then shows this batch.
            self.bar.set_postfix(loss=f"{learner.history.running('loss'):.4f}", refresh=False)
            self.bar.update(1)

    def after_train(self, learner) -> None:
        self._close()

    def after_fit(self, learner) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _format(value) -> str:
    if isinstance(value, float):
        if value != value or value in (math.inf, -math.inf):
            return str(value)
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.3e}"
    return str(value)


class EpochTable(Callback):
    """Print one row per epoch: epoch, losses, metrics, learning rate, time.

    `print_fn` receives each line (default: print to stdout, through tqdm so an open
    progress bar is not broken)."""

    order = 60
    rank_zero_only = True

    def __init__(self, print_fn: Callable[[str], None] | None = None):
        self.print_fn = print_fn
        self._columns: list[str] | None = None

    def _print(self, line: str) -> None:
        if self.print_fn is not None:
            self.print_fn(line)
        else:
            from tqdm.auto import tqdm

            tqdm.write(line, file=sys.stdout)

    def before_fit(self, learner) -> None:
        self._columns = None

    def after_epoch(self, learner) -> None:
        record = learner.history.last
        if self._columns is None:
            self._columns = list(record)
            self._widths = [max(len(c), 10) for c in self._columns]
            self._print("  ".join(c.rjust(w) for c, w in zip(self._columns, self._widths)))
        cells = []
        for column, width in zip(self._columns, self._widths):
            value = record.get(column, "")
            if column == "epoch":
                text = f"{value}/{learner.epochs}"
            elif column == "time":
                text = f"{value:.2f}s" if value < 10 else f"{value:.1f}s"
            elif column == "lr":
                text = f"{value:.2e}"
            else:
                text = _format(value)
            cells.append(text.rjust(width))
        self._print("  ".join(cells))


# --------------------------------------------------------------------------- plots
class LearningCurves(Callback):
    """After the fit, write the learning curves into `directory`: `loss.png` (per-step
    training loss, per-epoch train and valid loss) and one PNG per metric (train vs
    valid). `paths` lists the files written."""

    order = 70
    rank_zero_only = True

    def __init__(self, directory: str | Path, title: str = ""):
        self.directory, self.title = Path(directory), title
        self.paths: list[Path] = []

    def after_fit(self, learner) -> None:
        if not learner.history.epochs:
            return
        from handgrad.train.plots import plot_learning_curves

        self.paths = plot_learning_curves(learner.history, self.directory, title=self.title)


# --------------------------------------------------------------------------- checkpoints
class SaveCheckpoint(Callback):
    """Write `learner.save_checkpoint(path, config)` after every `every` epochs and
    after the last one, so an interrupted run can be resumed with load_checkpoint.

    In a distributed run rank 0 writes (every rank holds the same state) and then every
    rank waits at a barrier: none goes on before the file is complete."""

    order = 80

    def __init__(self, path: str | Path, config: Mapping | None = None, every: int = 1):
        self.path, self.config, self.every = Path(path), config, max(1, int(every))

    def after_epoch(self, learner) -> None:
        if learner.epochs_done % self.every == 0 or learner.epochs_done == learner.epochs \
                or learner.should_stop:
            if distributed.rank_zero():
                learner.save_checkpoint(self.path, config=self.config)
            if distributed.is_distributed():
                distributed.barrier("SaveCheckpoint: barrier after rank 0 wrote "
                                    f"{self.path}")

    def __repr__(self) -> str:
        return f"SaveCheckpoint({str(self.path)!r}, every={self.every})"


def _clone_state(value):
    """A deep copy of nested state, with tensors cloned (used by the LR finder)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    data = getattr(value, "data", None)
    if isinstance(data, torch.Tensor):
        clone = copy.copy(value)
        clone.data = data.clone()
        return clone
    if isinstance(value, dict):
        return {k: _clone_state(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_clone_state(v) for v in value)
    return copy.deepcopy(value)
