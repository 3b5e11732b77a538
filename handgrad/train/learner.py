"""The training loop: a plain `fit()` to read first, then `Learner`, the same loop with callbacks.

`fit()` is the whole idea in twenty lines: for each epoch, train on every batch
(forward, loss, zero_grad, backward, step), then measure the loss on the validation set.

`Learner` runs the same loop and calls its callbacks at fixed points, in this order::

    before_fit
      before_epoch                       (once per epoch)
        before_train                     (training phase: model.train(), grad on)
          before_batch                   (each batch; `learner.batch` may be changed here)
            [forward, loss]
            before_backward              (learner.loss is known; nothing changed yet)
            [optimizer.zero_grad(); loss.backward()]
            after_backward               (gradients are in p.grad: clip them here)
            before_step
            [optimizer.step()]
            after_step                   (per-batch LR schedules step here)
          after_batch
        after_train
        before_validate                  (validation phase: model.eval(), no_grad)
          before_batch, [forward, loss], after_batch   (for each validation batch)
        after_validate
      after_epoch                        (learner.history.epochs[-1] holds the epoch's figures)
    after_fit                            (always runs, even after an error)

A callback is any object with some of these methods, each taking the learner; the
callbacks run in the order of their `order` attribute (smaller first; see callbacks.py
for the built-ins and their orders). Three exceptions steer the loop from a callback:
`CancelBatchException` (skip the rest of this batch), `CancelEpochException` (end the
current phase of this epoch now; what follows it still runs) and
`CancelFitException` (end the fit now; after_fit still runs). Setting
`learner.should_stop = True` ends the fit after the current epoch.

Checkpoints (`save_checkpoint` / `load_checkpoint`, through handgrad.train.checkpoint)
hold the model, optimizer and scheduler state, the epoch and step, every random
generator and the callbacks' state (the history), so that a run of 2 epochs equals
1 epoch + save + load + 1 epoch, bit for bit on the CPU.

Left out: gradient accumulation, mixed precision, distributed training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch

from handgrad.autograd import no_grad, set_grad_enabled
from handgrad.train.callbacks import DeviceCallback, History, LRSchedulerCallback, move_to
from handgrad.train.checkpoint import (
    CheckpointError,
    get_rng_state,
    load_state,
    save_state,
    set_rng_state,
)

__all__ = [
    "fit", "Learner", "CancelBatchException", "CancelEpochException", "CancelFitException",
    "EVENTS",
]

# The events, in the order they first fire (see the module docstring for the nesting).
EVENTS = (
    "before_fit", "before_epoch", "before_train", "before_batch", "before_backward",
    "after_backward", "before_step", "after_step", "after_batch", "after_train",
    "before_validate", "after_validate", "after_epoch", "after_fit",
)


class CancelBatchException(Exception):
    """Raised by a callback: skip the rest of this batch (after_batch does not run)."""


class CancelEpochException(Exception):
    """Raised by a callback: end the current phase (training or validation) of this
    epoch now; after_train/after_validate, the next phase and after_epoch still run."""


class CancelFitException(Exception):
    """Raised by a callback: end the fit now; after_fit still runs."""


# --------------------------------------------------------------------------- fit()
def fit(model, train_dl, valid_dl, loss_fn, optimizer, epochs: int, scheduler=None,
        metric: Callable | None = None) -> list[dict]:
    """Train `model` for `epochs` epochs, the plain way. Returns one dict per epoch.

    `scheduler`, if given, is stepped after every batch (as OneCycleLR wants);
    `metric(output, target) -> float` (e.g. metrics.accuracy) is averaged over the
    validation set. Everything else (progress bars, plots, checkpoints, early stopping)
    is what `Learner` adds around this same loop.
    """
    history = []
    for epoch in range(epochs):
        model.train()                            # dropout on, batch norm batch statistics
        train_loss, train_count = 0.0, 0
        for x, y in train_dl:
            loss = loss_fn(model(x), y)          # forward
            optimizer.zero_grad()                # forget the previous batch's gradients
            loss.backward()                      # d loss / d parameter into p.grad
            optimizer.step()                     # update the parameters
            if scheduler is not None:
                scheduler.step()
            train_loss += loss.item() * len(y)   # for the epoch's mean loss
            train_count += len(y)
        model.eval()                             # dropout off, batch norm running stats
        total_loss, total_metric, count = 0.0, 0.0, 0
        with no_grad():                          # no graph needed to measure
            for x, y in valid_dl:
                output = model(x)
                total_loss += loss_fn(output, y).item() * len(y)
                if metric:
                    total_metric += metric(output, y) * len(y)
                count += len(y)
        record = {"epoch": epoch + 1, "train_loss": train_loss / train_count,
                  "valid_loss": total_loss / count}
        if metric:
            record[f"valid_{getattr(metric, '__name__', 'metric')}"] = total_metric / count
        print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in record.items()))
        history.append(record)
    return history


# --------------------------------------------------------------------------- Learner
def _batch_size(target) -> int:
    shape = getattr(target, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(target)


class Learner:
    """Trains a model with ordered callbacks; see the module docstring for the events.

    Args:
        model: a handgrad nn.Module (anything with __call__, parameters(), train(),
            eval(), state_dict() and load_state_dict()).
        train_dl, valid_dl: iterables of batches `(x, y)` (or `(x1, ..., xk, y)`: the
            model is called as `model(x1, ..., xk)`); valid_dl may be None.
        loss_fn: `loss_fn(output, y)` -> a scalar Tensor (e.g. nn.CrossEntropyLoss()).
        optimizer: a handgrad optimizer.
        scheduler: an LR scheduler or None. Stepped after every batch when
            `scheduler_interval` is "batch" (the default for OneCycleLR), else after
            every epoch (ReduceLROnPlateau gets the validation loss).
        metrics: functions `metric(output, y) -> float` (see metrics.py), or a dict
            name -> function; logged for train and valid as `train_<name>`, `valid_<name>`.
        callbacks: more callbacks (see callbacks.py).
        device: move the model and every batch to this device (adds a DeviceCallback).

    During `fit`, callbacks can read: `epoch` (0-based index of the running epoch),
    `epochs` (the target), `epochs_done`, `step` (optimizer steps so far), `training`,
    `batch_index`, `num_batches`, `batch`, `inputs`, `target`, `output`, `loss`, and
    `history` (the History callback: `history.epochs` is a list of dicts).
    """

    def __init__(self, model, train_dl, valid_dl, loss_fn, optimizer, scheduler=None,
                 metrics: Iterable | Mapping = (), callbacks: Iterable = (), *,
                 scheduler_interval: str | None = None, device=None):
        self.model, self.train_dl, self.valid_dl = model, train_dl, valid_dl
        self.loss_fn, self.optimizer, self.scheduler = loss_fn, optimizer, scheduler
        self.device = torch.device(device) if device is not None else None
        self.history = History(metrics)
        self.callbacks: list = []
        self.add_callbacks(self.history, *callbacks)
        if scheduler is not None:
            self.add_callbacks(LRSchedulerCallback(scheduler, interval=scheduler_interval))
        if self.device is not None:
            self.add_callbacks(DeviceCallback(self.device))
        self.epoch = 0  # index of the epoch running (0-based)
        self.epochs = 0  # the epoch count fit() was asked to reach
        self.epochs_done = 0  # epochs completed (restored by load_checkpoint)
        self.step = 0  # optimizer steps taken (restored by load_checkpoint)
        self.training = False
        self.should_stop = False
        self.batch_index, self.num_batches = 0, 0
        self.batch = self.inputs = self.target = self.output = self.loss = None

    # ------------------------------------------------------------------ callbacks
    def add_callbacks(self, *callbacks) -> None:
        """Add callbacks and keep the list sorted by `order` (stable for equal orders)."""
        for callback in callbacks:
            if not any(hasattr(callback, event) for event in EVENTS):
                raise TypeError(f"Learner: {callback!r} has none of the callback methods "
                                f"({', '.join(EVENTS)})")
            self.callbacks.append(callback)
        self.callbacks.sort(key=lambda c: getattr(c, "order", 0))

    def remove_callbacks(self, *callbacks) -> None:
        for callback in callbacks:
            self.callbacks.remove(callback)

    def callback(self, event: str) -> None:
        """Call `event` on every callback that defines it, in order."""
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if method is not None:
                method(self)

    # ------------------------------------------------------------------ the loop
    def fit(self, epochs: int, callbacks: Iterable = ()) -> History:
        """Train until `epochs` epochs are done in total (after load_checkpoint, the
        epochs already done count). `callbacks` are added for this fit only."""
        extra = list(callbacks)
        self.add_callbacks(*extra)
        self.epochs, self.should_stop = epochs, False
        try:
            self.callback("before_fit")
            for epoch in range(self.epochs_done, epochs):
                self.epoch = epoch
                self._one_epoch()
                if self.should_stop:
                    break
        except CancelFitException:
            pass
        finally:
            try:
                self.callback("after_fit")
            finally:
                self.remove_callbacks(*extra)
        return self.history

    def _one_epoch(self) -> None:
        self.callback("before_epoch")
        self._run_phase(self.train_dl, training=True)
        if self.valid_dl is not None:
            self._run_phase(self.valid_dl, training=False)
        self.epochs_done = self.epoch + 1
        self.callback("after_epoch")

    def _run_phase(self, batches, training: bool) -> None:
        """One pass over `batches`: training (model.train(), gradients, steps) or
        validation (model.eval(), no graph)."""
        self.training = training
        self.model.train(training)
        self.num_batches = len(batches) if hasattr(batches, "__len__") else 0
        phase = "train" if training else "validate"
        self.callback(f"before_{phase}")
        try:
            with set_grad_enabled(training):
                for index, batch in enumerate(batches):
                    self.batch_index, self.batch = index, batch
                    try:
                        self._one_batch()
                    except CancelBatchException:
                        pass
        except CancelEpochException:
            pass
        self.callback(f"after_{phase}")

    def _one_batch(self) -> None:
        self.callback("before_batch")
        *self.inputs, self.target = self.batch
        self.output = self.model(*self.inputs)
        self.loss = self.loss_fn(self.output, self.target)
        if self.training:
            self.callback("before_backward")
            self.optimizer.zero_grad()
            self.loss.backward()
            self.callback("after_backward")
            self.callback("before_step")
            self.optimizer.step()
            self.step += 1
            self.callback("after_step")
        self.callback("after_batch")

    # ------------------------------------------------------------------ evaluation
    def predict(self, batches) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, targets) over `batches`, concatenated, as torch tensors on the CPU
        (model in eval mode, no graph)."""
        outputs, targets = [], []
        self.model.eval()
        with no_grad():
            for batch in batches:
                if self.device is not None:
                    batch = move_to(batch, self.device)
                *inputs, target = batch
                outputs.append(self.model(*inputs).data.cpu())
                targets.append(getattr(target, "data", target).cpu())
        return torch.cat(outputs), torch.cat(targets)

    def evaluate(self, batches) -> dict[str, float]:
        """{"loss": ..., <metric name>: ...} over `batches`, each the mean over every
        example (the model in eval mode, no graph); nothing is recorded in the history."""
        totals: dict[str, float] = {}
        count = 0
        self.model.eval()
        with no_grad():
            for batch in batches:
                if self.device is not None:
                    batch = move_to(batch, self.device)
                *inputs, target = batch
                output = self.model(*inputs)
                n = _batch_size(target)
                values = {"loss": self.loss_fn(output, target).item()}
                values.update((name, fn(output, target))
                              for name, fn in self.history.metrics.items())
                for name, value in values.items():
                    totals[name] = totals.get(name, 0.0) + value * n
                count += n
        return {name: total / max(count, 1) for name, total in totals.items()}

    # ------------------------------------------------------------------ checkpoints
    def _stateful_callbacks(self) -> dict[str, object]:
        named, seen = {}, {}
        for callback in self.callbacks:
            if hasattr(callback, "state_dict") and hasattr(callback, "load_state_dict"):
                name = type(callback).__name__
                seen[name] = seen.get(name, 0) + 1
                named[name if seen[name] == 1 else f"{name}.{seen[name] - 1}"] = callback
        return named

    def data_generators(self) -> dict[str, torch.Generator]:
        """The torch.Generators that decide the order of the data, by name: each
        DataLoader's `generator` ("train_dl") and a sampler's own one ("train_dl.sampler",
        e.g. RandomSampler(generator=...), or "train_dl.batch_sampler.sampler"). Each
        generator is listed once. Checkpoints and lr_find save and restore them."""
        found: dict[str, torch.Generator] = {}
        for name in ("train_dl", "valid_dl"):
            loader = getattr(self, name, None)
            batch_sampler = getattr(loader, "batch_sampler", None)
            owners = (("", loader), (".sampler", getattr(loader, "sampler", None)),
                      (".batch_sampler.sampler", getattr(batch_sampler, "sampler", None)))
            for suffix, owner in owners:
                generator = getattr(owner, "generator", None)
                if isinstance(generator, torch.Generator) and not any(
                        generator is g for g in found.values()):
                    found[name + suffix] = generator
        return found

    def state_dict(self, config: Mapping | None = None) -> dict:
        """Everything a checkpoint holds (tensors are the live ones, not copies)."""
        generators = {name: generator.get_state()
                      for name, generator in self.data_generators().items()}
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epochs_done,
            "step": self.step,
            "rng": get_rng_state(),
            "generators": generators,
            "callbacks": {name: cb.state_dict()
                          for name, cb in self._stateful_callbacks().items()},
            "config": dict(config) if config is not None else None,
        }

    def save_checkpoint(self, path: str | Path, config: Mapping | None = None) -> Path:
        """Write a checkpoint (one safetensors file, atomically) to `path`.

        `config` (JSON: numbers, strings, lists, dicts) is stored alongside, so a run can
        be rebuilt from its checkpoint."""
        return save_state(path, self.state_dict(config))

    def load_checkpoint(self, path: str | Path, *, strict: bool = True) -> dict:
        """Restore a checkpoint written by `save_checkpoint`; the next `fit(epochs)`
        continues after its last completed epoch. Returns the whole saved state (its
        "config" is what was passed to save_checkpoint).

        The model's parameters are checked before anything is changed: a checkpoint of
        another architecture raises a CheckpointError that lists the missing and
        unexpected keys and the mismatched shapes."""
        state = load_state(path)
        for key in ("model", "optimizer", "epoch", "step", "rng"):
            if key not in state:
                raise CheckpointError(f"Learner.load_checkpoint: {path} has no {key!r} entry; "
                                      f"it was not written by Learner.save_checkpoint")
        check_state_dict(self.model, state["model"], source=str(path), strict=strict)
        self.model.load_state_dict(state["model"], strict=strict)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epochs_done, self.step = int(state["epoch"]), int(state["step"])
        set_rng_state(state["rng"])
        generators = self.data_generators()
        for name, generator_state in (state.get("generators") or {}).items():
            if name in generators:
                generators[name].set_state(getattr(generator_state, "data",
                                                   generator_state).cpu())
        saved_callbacks = state.get("callbacks") or {}
        for name, callback in self._stateful_callbacks().items():
            if name in saved_callbacks:
                callback.load_state_dict(saved_callbacks[name])
        return state


def check_state_dict(model, state_dict: Mapping, source: str = "the state dict",
                     strict: bool = True) -> None:
    """Raise a CheckpointError listing every missing key, unexpected key and shape
    mismatch between `model` and `state_dict` (missing/unexpected only when strict)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict] if strict else []
    unexpected = [k for k in state_dict if k not in own] if strict else []
    mismatched = [f"{k}: checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[k].shape)}"
                  for k in own if k in state_dict
                  and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or mismatched):
        return
    lines = [f"cannot load {source} into {type(model).__name__}: it was saved from a "
             f"different model."]
    if missing:
        lines.append(f"  missing keys (in the model, not in the checkpoint): {', '.join(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys (in the checkpoint, not in the model): "
                     f"{', '.join(unexpected)}")
    if mismatched:
        lines.append("  mismatched shapes: " + "; ".join(mismatched))
    lines.append("  Build the model with the configuration the checkpoint was saved with "
                 "(its 'config' entry), or pass strict=False to load the matching keys only.")
    raise CheckpointError("\n".join(lines))
