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

What the loop accepts, and what it refuses before training anything:

* `fit(epochs)`: `epochs` is an int >= 0, the total epoch count to reach (TypeError for
  2.5 or "3", ValueError for -1). `fit(0)`, like any count already reached (after
  load_checkpoint), trains nothing: before_fit and after_fit run, the history is returned.
* a batch is a tuple or list `(x, y)` or `(x1, ..., xk, y)` (the model is called as
  `model(x1, ..., xk)`), or a dict with a "target" entry: the other entries are the
  model's keyword arguments (`{"input": x, "target": y}` calls `model(input=x)`). Any
  other batch raises a TypeError that says so.
* a train loader that yields no batch raises a ValueError that says why (its dataset
  length, batch_size and drop_last); so does a validation loader: pass `valid_dl=None`
  to train without validation, rather than an empty one that would be skipped silently.
* a metric may return a float or a 0-d handgrad / torch tensor (turned into a float);
* an optimizer none of whose parameters belongs to the model raises a ValueError when
  the Learner is built (it would train nothing).

Checkpoints (`save_checkpoint` / `load_checkpoint`, through handgrad.train.checkpoint)
hold the model, optimizer and scheduler state, the epoch and step, every random
generator and the callbacks' state (the history), so that a run of 2 epochs equals
1 epoch + save + load + 1 epoch, bit for bit on the CPU. Every tensor and the metadata
carry a checksum; loading checks the file and then the whole state
(`check_checkpoint_state`) before anything changes, so a refused load leaves the model,
optimizer, scheduler, counters and random generators as they were.

Distributed training (handgrad.train.distributed; docs/distributed.md): when
torch.distributed's default process group has more than one process, wrap the model in
nn.parallel.DistributedDataParallel and give train_dl a DistributedSampler. The Learner
then calls `set_epoch(epoch)` on the train loader's sampler before every epoch (it does
so in one process too, for any sampler that has set_epoch: the order then depends on the
epoch alone, as a resumed run needs); History sums every loss and metric and the
example counts over the ranks (an exact mean over all examples, not a mean of means),
so every rank sees the same epoch figures (EarlyStopping and ReduceLROnPlateau decide
alike); callbacks with `rank_zero_only = True` (progress bar, table, curves) run on rank
0 only; SaveCheckpoint writes on rank 0 and then holds every rank at a barrier; a
checkpoint holds the plain module's state_dict (no `module.` prefix), so every rank
loads it, and a one-process checkpoint resumes under DDP and back; `should_stop` on any
rank stops every rank after that epoch. A rank whose fit raises leaves a note for the
others: a rank whose collective fails then raises a RuntimeError that names the rank
that failed first and its error.

Left out: gradient accumulation, mixed precision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch

from handgrad.autograd import no_grad, set_grad_enabled
from handgrad.train import distributed
from handgrad.train.callbacks import DeviceCallback, History, LRSchedulerCallback, move_to
from handgrad.train.checkpoint import (
    CheckpointError,
    get_rng_state,
    load_state,
    save_state,
    set_rng_state,
)
from handgrad.train.metrics import batch_size, metric_name, metric_value

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


# --------------------------------------------------------------------------- input checks
def _check_epochs(epochs, who: str) -> int:
    """`epochs` as an int >= 0, else the TypeError / ValueError torch-style code raises."""
    if isinstance(epochs, bool) or not hasattr(type(epochs), "__index__"):
        raise TypeError(f"{who}: epochs must be an int (the number of epochs to reach), got "
                        f"{epochs!r} ({type(epochs).__name__})")
    epochs = int(epochs)
    if epochs < 0:
        raise ValueError(f"{who}: epochs must be >= 0, got {epochs}")
    return epochs


def _describe_loader(loader) -> str:
    """Why a loader may yield nothing: its dataset length, batch_size and drop_last."""
    parts = []
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and hasattr(dataset, "__len__"):
        parts.append(f"its dataset holds {len(dataset)} examples")
    size, drop_last = getattr(loader, "batch_size", None), getattr(loader, "drop_last", None)
    if size is not None:
        parts.append(f"batch_size={size}")
    if drop_last is not None:
        parts.append(f"drop_last={drop_last}")
    reason = f" ({', '.join(parts)})" if parts else ""
    hint = (" drop_last=True drops every batch smaller than batch_size: use a smaller "
            "batch_size or drop_last=False." if drop_last else "")
    return reason + hint


def _empty_loader_error(name: str, loader, who: str = "Learner") -> ValueError:
    extra = (" Pass valid_dl=None to train without validation." if name == "valid_dl"
             else "")
    return ValueError(f"{who}: {name} yields no batch{_describe_loader(loader)}; there is "
                      f"nothing to {'train on' if name == 'train_dl' else 'measure'}.{extra}")


def _split_batch(batch) -> tuple[list | dict, object]:
    """(inputs, target) of one batch: `(x1, ..., xk, y)` gives ([x1, ..., xk], y); a dict
    with a "target" entry gives (the other entries, as keyword arguments, target)."""
    if isinstance(batch, Mapping):
        if "target" not in batch:
            raise TypeError(f"Learner: a dict batch needs a 'target' entry (its other "
                            f"entries are the model's keyword arguments); this one has "
                            f"{sorted(map(str, batch))}. Rename the target's key to 'target', "
                            "or have collate_fn return (inputs, target) tuples")
        inputs = {key: value for key, value in batch.items() if key != "target"}
        return inputs, batch["target"]
    if not isinstance(batch, tuple | list) or len(batch) < 2:
        what = (f"a {type(batch).__name__} of length {len(batch)}"
                if isinstance(batch, tuple | list) else f"a {type(batch).__name__}")
        raise TypeError(f"Learner: a batch is (x, y), (x1, ..., xk, y) or a dict with a "
                        f"'target' entry; got {what}. A dataset of inputs only has no "
                        "target to compute a loss with")
    *inputs, target = batch
    return inputs, target


def _forward(model, inputs: list | dict):
    """The model on a batch's inputs: positional (a list) or keyword (a dict)."""
    return model(**inputs) if isinstance(inputs, dict) else model(*inputs)


class _FloatMetric:
    """A metric whose result is always a float (a 0-d Tensor result is converted)."""

    def __init__(self, name: str, metric: Callable):
        self.name, self.metric = name, metric
        self.__name__ = name

    def __call__(self, output, target) -> float:
        return metric_value(self.metric(output, target), self.name)

    def __repr__(self) -> str:
        return f"{self.name} ({self.metric!r})"


def _float_metrics(metrics) -> dict[str, _FloatMetric]:
    """name -> metric returning a float, from a list of metrics, a dict or one metric."""
    if isinstance(metrics, Mapping):
        named = dict(metrics)
    else:
        named = {metric_name(m): m for m in ([metrics] if callable(metrics) else metrics)}
    for name, metric in named.items():
        if not callable(metric):
            raise TypeError(f"Learner: metric {name!r} is a {type(metric).__name__}, not a "
                            "function metric(output, target) -> float")
    return {name: metric if isinstance(metric, _FloatMetric) else _FloatMetric(name, metric)
            for name, metric in named.items()}


def _check_optimizer(model, optimizer) -> None:
    """ValueError when the model has parameters and the optimizer holds none of them."""
    groups, parameters = getattr(optimizer, "param_groups", None), getattr(model, "parameters",
                                                                          None)
    if groups is None or parameters is None:
        return
    own = {id(p) for p in parameters()}
    held = [p for group in groups for p in group.get("params", ())]
    if own and held and not any(id(p) in own for p in held):
        shapes = ", ".join(str(tuple(p.shape)) for p in held[:4]) + (
            ", ..." if len(held) > 4 else "")
        raise ValueError(
            f"Learner: none of the optimizer's {len(held)} parameters ({shapes}) belongs to "
            f"the model {type(model).__name__} ({len(own)} parameters); training would "
            f"change nothing. Build the optimizer from this model's parameters, e.g. "
            f"{type(optimizer).__name__}(model.parameters(), ...)")


# --------------------------------------------------------------------------- fit()
def fit(model, train_dl, valid_dl, loss_fn, optimizer, epochs: int, scheduler=None,
        metric: Callable | None = None) -> list[dict]:
    """Train `model` for `epochs` epochs, the plain way. Returns one dict per epoch.

    `scheduler`, if given, is stepped after every batch (as OneCycleLR wants);
    `metric(output, target) -> float` (e.g. metrics.accuracy) is averaged over the
    validation set. Everything else (progress bars, plots, checkpoints, early stopping)
    is what `Learner` adds around this same loop.
    """
    epochs = _check_epochs(epochs, "fit")
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
            train_loss += loss.item() * batch_size(y)   # for the epoch's mean loss
            train_count += batch_size(y)
        if train_count == 0:
            raise _empty_loader_error("train_dl", train_dl, who="fit")
        model.eval()                             # dropout off, batch norm running stats
        total_loss, total_metric, count = 0.0, 0.0, 0
        with no_grad():                          # no graph needed to measure
            for x, y in valid_dl:
                output = model(x)
                total_loss += loss_fn(output, y).item() * batch_size(y)
                if metric:
                    total_metric += metric_value(metric(output, y)) * batch_size(y)
                count += batch_size(y)
        if count == 0:
            raise _empty_loader_error("valid_dl", valid_dl, who="fit")
        record = {"epoch": epoch + 1, "train_loss": train_loss / train_count,
                  "valid_loss": total_loss / count}
        if metric:
            record[f"valid_{getattr(metric, '__name__', 'metric')}"] = total_metric / count
        print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in record.items()))
        history.append(record)
    return history


# --------------------------------------------------------------------------- Learner
class Learner:
    """Trains a model with ordered callbacks; see the module docstring for the events.

    Args:
        model: a handgrad nn.Module (anything with __call__, parameters(), train(),
            eval(), state_dict() and load_state_dict()).
        train_dl, valid_dl: iterables of batches `(x, y)` (or `(x1, ..., xk, y)`: the
            model is called as `model(x1, ..., xk)`; or dicts with a "target" entry,
            the others passed as keyword arguments); valid_dl may be None (no
            validation), never empty.
        loss_fn: `loss_fn(output, y)` -> a scalar Tensor (e.g. nn.CrossEntropyLoss()).
        optimizer: a handgrad optimizer over (some of) the model's parameters.
        scheduler: an LR scheduler or None. Stepped after every batch when
            `scheduler_interval` is "batch" (the default for OneCycleLR), else after
            every epoch (ReduceLROnPlateau gets the validation loss).
        metrics: functions `metric(output, y) -> float` (or a 0-d Tensor; see
            metrics.py), or a dict name -> function; logged for train and valid as
            `train_<name>`, `valid_<name>`.
        callbacks: more callbacks (see callbacks.py).
        device: move the model and every batch to this device (adds a DeviceCallback).

    During `fit`, callbacks can read: `epoch` (0-based index of the running epoch),
    `epochs` (the target), `epochs_done`, `step` (optimizer steps so far), `training`,
    `batch_index`, `num_batches`, `batch`, `inputs` (a list, or a dict for dict batches),
    `target`, `output`, `loss`, and
    `history` (the History callback: `history.epochs` is a list of dicts).
    """

    def __init__(self, model, train_dl, valid_dl, loss_fn, optimizer, scheduler=None,
                 metrics: Iterable | Mapping = (), callbacks: Iterable = (), *,
                 scheduler_interval: str | None = None, device=None):
        _check_optimizer(model, optimizer)
        self.model, self.train_dl, self.valid_dl = model, train_dl, valid_dl
        self.loss_fn, self.optimizer, self.scheduler = loss_fn, optimizer, scheduler
        self.device = torch.device(device) if device is not None else None
        self.history = History(_float_metrics(metrics))
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
        self.rank, self.world_size = 0, 1  # of the distributed run (set by fit)

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
        """Call `event` on every callback that defines it, in order (on a rank other than
        0 of a distributed run, callbacks with `rank_zero_only = True` are skipped)."""
        others = self.rank != 0
        for callback in self.callbacks:
            if others and getattr(callback, "rank_zero_only", False):
                continue
            method = getattr(callback, event, None)
            if method is not None:
                method(self)

    # ------------------------------------------------------------------ the loop
    def fit(self, epochs: int, callbacks: Iterable = ()) -> History:
        """Train until `epochs` epochs are done in total (after load_checkpoint, the
        epochs already done count; a count already reached, 0 included, trains nothing).
        `callbacks` are added for this fit only."""
        epochs = _check_epochs(epochs, "Learner.fit")
        for name in ("train_dl", "valid_dl"):
            loader = getattr(self, name)
            if loader is not None and hasattr(loader, "__len__") and len(loader) == 0 \
                    and epochs > self.epochs_done:
                raise _empty_loader_error(name, loader)
        extra = list(callbacks)
        self.add_callbacks(*extra)
        self.epochs, self.should_stop = epochs, False
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        try:
            self.callback("before_fit")
            for epoch in range(self.epochs_done, epochs):
                self.epoch = epoch
                self._one_epoch()
                if self.world_size > 1:  # one rank's stop stops every rank
                    self.should_stop = distributed.any_rank(
                        self.should_stop, "Learner: all-reduce of should_stop")
                if self.should_stop:
                    break
        except CancelFitException:
            pass
        except Exception as error:
            if self.world_size > 1:
                self._distributed_failure(error)
            raise
        finally:
            try:
                self.callback("after_fit")
            finally:
                self.remove_callbacks(*extra)
        return self.history

    def _distributed_failure(self, error: Exception) -> None:
        """A distributed fit raised: when another rank failed first (its note is in the
        process group's store), raise an error naming it; else leave this rank's note."""
        peer = distributed.failure_of_peer()
        if peer is not None and not peer.startswith(f"rank {self.rank} "):
            raise RuntimeError(
                f"Learner.fit: {peer}; rank {self.rank} of {self.world_size} stops too "
                f"({type(error).__name__} at {self._where()}). Fix the error of the rank "
                "that failed first; resume from the last checkpoint with "
                "load_checkpoint.") from error
        distributed.report_failure(error, self._where())

    def _where(self) -> str:
        phase = "training" if self.training else "validation"
        return f"epoch {self.epoch + 1}, {phase} batch {self.batch_index + 1}"

    def _set_sampler_epochs(self) -> None:
        """`set_epoch(epoch)` on the train loader's sampler (and its batch sampler's
        sampler), where it has one, e.g. a DistributedSampler: a new order each epoch."""
        loader = self.train_dl
        batch_sampler = getattr(loader, "batch_sampler", None)
        seen = []
        for sampler in (getattr(loader, "sampler", None),
                        getattr(batch_sampler, "sampler", None)):
            if callable(getattr(sampler, "set_epoch", None)) and not any(
                    sampler is s for s in seen):
                sampler.set_epoch(self.epoch)
                seen.append(sampler)

    def _one_epoch(self) -> None:
        self._set_sampler_epochs()
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
        seen = 0
        try:
            with set_grad_enabled(training):
                for index, batch in enumerate(batches):
                    self.batch_index, self.batch, seen = index, batch, index + 1
                    try:
                        self._one_batch()
                    except CancelBatchException:
                        pass
            if seen == 0:  # a loader without __len__ that yielded nothing
                raise _empty_loader_error("train_dl" if training else "valid_dl", batches)
        except CancelEpochException:
            pass
        self.callback(f"after_{phase}")

    def _one_batch(self) -> None:
        self.callback("before_batch")
        self.inputs, self.target = _split_batch(self.batch)
        self.output = _forward(self.model, self.inputs)
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
                inputs, target = _split_batch(batch)
                outputs.append(_forward(self.model, inputs).data.cpu())
                targets.append(getattr(target, "data", target).cpu())
        if not outputs:
            raise ValueError(f"Learner.predict: the batches yield no batch"
                             f"{_describe_loader(batches)}")
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
                inputs, target = _split_batch(batch)
                output = _forward(self.model, inputs)
                n = batch_size(target)
                values = {"loss": self.loss_fn(output, target).item()}
                values.update((name, fn(output, target))
                              for name, fn in self.history.metrics.items())
                for name, value in values.items():
                    totals[name] = totals.get(name, 0.0) + value * n
                count += n
        if count == 0:
            raise ValueError(f"Learner.evaluate: the batches yield no example"
                             f"{_describe_loader(batches)}; there is nothing to measure")
        return {name: total / count for name, total in totals.items()}

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
            "model": distributed.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "optimizer_kind": type(self.optimizer).__name__,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scheduler_kind": (type(self.scheduler).__name__ if self.scheduler is not None
                               else None),
            "epoch": self.epochs_done,
            "step": self.step,
            "rng": get_rng_state(),
            "generators": generators,
            "callbacks": {name: cb.state_dict()
                          for name, cb in self._stateful_callbacks().items()},
            "config": dict(config) if config is not None else None,
        }

    def save_checkpoint(self, path: str | Path, config: Mapping | None = None) -> Path:
        """Write a checkpoint (one safetensors file, atomically, with checksums) to `path`.

        `config` (JSON: numbers, strings, lists, dicts) is stored alongside, so a run can
        be rebuilt from its checkpoint. In a distributed run every rank holds the same
        state: write it from rank 0 only (SaveCheckpoint does, then waits for every rank)."""
        return save_state(path, self.state_dict(config))

    def load_checkpoint(self, path: str | Path, *, strict: bool = True) -> dict:
        """Restore a checkpoint written by `save_checkpoint`; the next `fit(epochs)`
        continues after its last completed epoch. Returns the whole saved state (its
        "config" is what was passed to save_checkpoint).

        All or nothing: the file's checksums, then the whole state (the model's keys and
        shapes, the optimizer's and scheduler's kind, groups, options and buffers, the
        epoch and step, every RNG state) are checked before anything is changed. A
        CheckpointError says what is wrong, and the model, optimizer, scheduler, counters,
        generators and callbacks are left exactly as they were; should loading still
        fail half-way, everything but the model (loaded last) is put back."""
        state = load_state(path)
        self.check_checkpoint_state(state, source=str(path), strict=strict)
        saved = self._snapshot()
        part = "the optimizer"
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            part = "the scheduler"
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            part = "the random generators"
            self.epochs_done, self.step = state["epoch"], state["step"]
            set_rng_state(state["rng"])
            generators = self.data_generators()
            for name, generator_state in (state.get("generators") or {}).items():
                if name in generators:
                    generators[name].set_state(getattr(generator_state, "data",
                                                       generator_state).cpu())
            saved_callbacks = state.get("callbacks") or {}
            for name, callback in self._stateful_callbacks().items():
                if name in saved_callbacks:
                    part = f"callback {name}"
                    callback.load_state_dict(saved_callbacks[name])
            part = "the model"
            distributed.unwrap(self.model).load_state_dict(state["model"], strict=strict)
        except Exception as error:
            self._restore(saved)
            restored = ("the optimizer, scheduler, counters, generators and callbacks were "
                        "put back; the model may be partly loaded" if part == "the model"
                        else "the learner was put back as it was")
            raise CheckpointError(f"Learner.load_checkpoint: loading {part} from {path} "
                                  f"failed ({type(error).__name__}: {error}); "
                                  f"{restored}") from error
        except BaseException:
            self._restore(saved)
            raise
        return state

    def check_checkpoint_state(self, state: Mapping, source: str = "the checkpoint",
                               strict: bool = True) -> None:
        """Raise a CheckpointError naming the first thing in `state` (what
        `state_dict()` returns, as loaded from a file) that this learner cannot take:
        a missing entry, another model (keys, shapes), another optimizer or scheduler
        kind, other parameter groups, an option of the wrong type or range (a negative
        lr), buffers for no parameter or of another shape, a negative epoch or step,
        RNG or generator states that cannot be restored. Changes nothing."""
        from handgrad.train.checkpoint import check_rng_state

        def refuse(problem: str):
            raise CheckpointError(f"Learner.load_checkpoint: {source}: {problem}; nothing "
                                  f"was loaded (the learner is unchanged)")

        if not isinstance(state, Mapping):
            refuse(f"the checkpoint holds a {type(state).__name__}, not a dict")
        for key in ("model", "optimizer", "epoch", "step", "rng"):
            if key not in state:
                raise CheckpointError(f"Learner.load_checkpoint: {source} has no {key!r} "
                                      f"entry; it was not written by Learner.save_checkpoint")
        if not isinstance(state["model"], Mapping):
            refuse(f"'model' is a {type(state['model']).__name__}, not a state dict")
        check_state_dict(distributed.unwrap(self.model), state["model"], source=source,
                         strict=strict)
        for key in ("epoch", "step"):
            value = state[key]
            if type(value) is not int or value < 0:
                refuse(f"{key!r} is {value!r}; a count of 0 or more is expected")
        problem = _optimizer_problem(self.optimizer, state["optimizer"],
                                     state.get("optimizer_kind"))
        if problem:
            refuse(problem)
        if self.scheduler is not None and state.get("scheduler") is not None:
            problem = _scheduler_problem(self.scheduler, state["scheduler"],
                                         state.get("scheduler_kind"),
                                         len(self.optimizer.param_groups))
            if problem:
                refuse(problem)
        check_rng_state(state["rng"], source=f"Learner.load_checkpoint: {source}")
        saved_generators = state.get("generators") or {}
        if not isinstance(saved_generators, Mapping):
            refuse(f"'generators' is a {type(saved_generators).__name__}, not a dict")
        for name, generator in self.data_generators().items():
            if name in saved_generators:
                raw = getattr(saved_generators[name], "data", saved_generators[name])
                expected = generator.get_state()
                if (not isinstance(raw, torch.Tensor) or raw.dtype != torch.uint8
                        or raw.shape != expected.shape):
                    refuse(f"generator {name!r} has a state that is not a uint8 tensor of "
                           f"shape {tuple(expected.shape)}")
        saved_callbacks = state.get("callbacks") or {}
        if not isinstance(saved_callbacks, Mapping) or not all(
                isinstance(saved_callbacks[name], Mapping)
                for name in self._stateful_callbacks() if name in saved_callbacks):
            refuse("'callbacks' is not a dict of each callback's state dict")
        if state.get("config") is not None and not isinstance(state["config"], Mapping):
            refuse(f"'config' is a {type(state['config']).__name__}, not a dict")

    def _snapshot(self) -> dict:
        """What load_checkpoint changes besides the model, to put back if it fails."""
        from handgrad.train.callbacks import _clone_state

        optimizer, scheduler = self.optimizer, self.scheduler
        return {
            "optimizer": (dict(optimizer.__dict__),
                          [(group, dict(group)) for group in optimizer.param_groups]),
            "scheduler": (None if scheduler is None else
                          (dict(scheduler.__dict__), _clone_state(scheduler.state_dict()))),
            "counters": (self.epochs_done, self.step),
            "rng": get_rng_state(),
            "generators": {name: g.get_state() for name, g in self.data_generators().items()},
            "callbacks": {name: _clone_state(cb.state_dict())
                          for name, cb in self._stateful_callbacks().items()},
        }

    def _restore(self, saved: dict) -> None:
        attributes, groups = saved["optimizer"]
        self.optimizer.__dict__.clear()
        self.optimizer.__dict__.update(attributes)
        for group, contents in groups:
            group.clear()
            group.update(contents)
        if saved["scheduler"] is not None:
            attributes, scheduler_state = saved["scheduler"]
            self.scheduler.__dict__.clear()
            self.scheduler.__dict__.update(attributes)
            self.scheduler.load_state_dict(scheduler_state)  # nested and lambda state too
        self.epochs_done, self.step = saved["counters"]
        set_rng_state(saved["rng"])
        for name, generator in self.data_generators().items():
            generator.set_state(saved["generators"][name])
        for name, callback in self._stateful_callbacks().items():
            callback.load_state_dict(saved["callbacks"][name])


def check_state_dict(model, state_dict: Mapping, source: str = "the state dict",
                     strict: bool = True) -> None:
    """Raise a CheckpointError listing every missing key, unexpected key and shape
    mismatch between `model` and `state_dict` (missing/unexpected only when strict),
    or the entries that are not tensors."""
    not_tensors = [f"{k} ({type(v).__name__})" for k, v in state_dict.items()
                   if not isinstance(getattr(v, "shape", None), torch.Size | tuple)]
    if not_tensors:
        raise CheckpointError(f"cannot load {source} into {type(model).__name__}: these "
                              f"entries are not tensors: {', '.join(not_tensors)}")
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


# ----------------------------------------------------------------------------- checks
def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _family(value) -> str | None:
    """The kind of value an option or attribute is, for comparing saved and live ones."""
    if isinstance(value, bool):
        return "a bool"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a dict"
    return None  # None, tensors, objects: not compared


def _bad_number(value) -> bool:
    import math

    return not _is_number(value) or not math.isfinite(value) or value < 0


# Keys that LR schedulers add to an optimizer's param groups (not the optimizer's own).
_SCHEDULER_GROUP_KEYS = {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}


def _optimizer_problem(optimizer, saved, kind) -> str | None:
    """What makes `saved` (an optimizer state_dict) unfit for `optimizer`, or None."""
    ours = type(optimizer).__name__
    if kind is not None and kind != ours:
        return (f"its optimizer is a {kind}, this learner's is a {ours}; build the learner "
                f"with a {kind} to resume this run")
    if not isinstance(saved, Mapping) or not isinstance(saved.get("state"), Mapping) \
            or not isinstance(saved.get("param_groups"), list):
        return "'optimizer' is not a state dict ({'state': {...}, 'param_groups': [...]})"
    groups = saved["param_groups"]
    if len(groups) != len(optimizer.param_groups):
        return (f"the optimizer state has {len(groups)} parameter groups, this learner's "
                f"{ours} has {len(optimizer.param_groups)}")
    shapes: dict = {}
    for i, (group, saved_group) in enumerate(zip(optimizer.param_groups, groups)):
        if not isinstance(saved_group, Mapping) or not isinstance(saved_group.get("params"),
                                                                  list):
            return f"optimizer parameter group {i} is not a dict with a 'params' list"
        indices = saved_group["params"]
        if len(indices) != len(group["params"]):
            return (f"optimizer parameter group {i} has {len(indices)} parameters in the "
                    f"checkpoint, {len(group['params'])} in this learner's {ours}")
        for index, p in zip(indices, group["params"]):
            if type(index) is not int or index in shapes:
                return f"optimizer parameter group {i} has a bad parameter index {index!r}"
            shapes[index] = tuple(p.shape)
        options = {k: v for k, v in saved_group.items() if k not in ("params", "param_names")}
        foreign = sorted(set(options) - set(optimizer.defaults) - set(group)
                         - _SCHEDULER_GROUP_KEYS)
        absent = sorted(set(optimizer.defaults) - set(options))
        if kind is None and foreign and absent:  # older checkpoints name no kind
            return (f"optimizer parameter group {i} has options {foreign} and lacks "
                    f"{absent}: it was saved from another kind of optimizer than {ours}")
        if "lr" in options and _bad_number(options["lr"]):
            return f"optimizer parameter group {i} has lr {options['lr']!r}; 0 or more expected"
        for key, default in optimizer.defaults.items():
            if key not in options:
                continue
            value, family = options[key], _family(default)
            if family is not None and _family(value) != family:
                return (f"optimizer parameter group {i} has {key} {value!r}, which is not "
                        f"{family} like this {ours}'s {default!r}")
            numbers = [value] if family == "a number" else (
                list(value) if family == "a list" and all(map(_is_number, default)) else [])
            if any(_bad_number(v) for v in numbers):
                return (f"optimizer parameter group {i} has {key} {value!r}; finite numbers "
                        f"of 0 or more expected")
    for key, buffers in saved["state"].items():
        if key not in shapes:
            return (f"the optimizer state has buffers for parameter {key!r}, which matches "
                    f"no parameter of this learner's {ours} (indices {sorted(shapes)})")
        if not isinstance(buffers, Mapping):
            return f"the optimizer state of parameter {key} is not a dict of buffers"
        for name, value in buffers.items():
            raw = getattr(value, "data", value)
            if name == "step":
                step = raw.item() if isinstance(raw, torch.Tensor) and raw.numel() == 1 else raw
                if _bad_number(step):
                    return f"the optimizer state of parameter {key} has step {value!r}"
            elif isinstance(raw, torch.Tensor) and tuple(raw.shape) != shapes[key]:
                return (f"the optimizer buffer {name!r} of parameter {key} has shape "
                        f"{tuple(raw.shape)}, the parameter {shapes[key]}")
    return None


def _scheduler_problem(scheduler, saved, kind, group_count: int) -> str | None:
    """What makes `saved` (an LR scheduler state_dict) unfit for `scheduler`, or None."""
    ours = type(scheduler).__name__
    if kind is not None and kind != ours:
        return (f"its LR scheduler is a {kind}, this learner's is a {ours}; build the "
                f"learner with a {kind} to resume this run")
    if not isinstance(saved, Mapping):
        return f"'scheduler' is a {type(saved).__name__}, not a state dict"
    own = scheduler.state_dict()
    if set(saved) != set(own):
        return (f"the LR scheduler state has entries {sorted(set(saved) - set(own))} that a "
                f"{ours} lacks and lacks {sorted(set(own) - set(saved))}: it was saved from "
                f"another kind of scheduler")
    last_epoch = saved.get("last_epoch", -1)
    if type(last_epoch) is not int or last_epoch < -1:
        return f"the LR scheduler's last_epoch is {last_epoch!r}; -1 or more expected"
    for key in ("base_lrs", "_last_lr"):
        if key in saved:
            value = saved[key]
            if not isinstance(value, list | tuple) or len(value) != group_count \
                    or any(_bad_number(v) for v in value):
                return (f"the LR scheduler's {key} is {value!r}; {group_count} learning "
                        f"rates of 0 or more expected")
    for key, value in own.items():
        family = _family(value)
        if family is not None and saved[key] is not None and _family(saved[key]) != family:
            return (f"the LR scheduler's {key} is {saved[key]!r}, which is not {family} like "
                    f"this {ours}'s {value!r}")
    return None
