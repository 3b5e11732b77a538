"""The learning-rate finder (Smith, 2015; fastai's lr_find): train for a few batches with
the learning rate growing exponentially, record the loss, and plot loss against rate.

    result = lr_find(learner, path="runs/lr_find.png")
    result.suggestion      # the rate at the lowest smoothed loss, divided by 10

The loss first stays flat (rate too small to matter), then falls (the useful range),
then shoots up (too large). A good rate sits on the falling slope, about ten times
below the minimum: that is the suggestion. `lr_find` puts the model's weights, the
optimizer's state and every random generator (the DataLoaders' own too) back
afterwards, so the training that follows is the same as without it.

Left out: the "steepest slope" and "valley" suggestions of fastai.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from handgrad.train.callbacks import Callback, _clone_state
from handgrad.train.checkpoint import get_rng_state, set_rng_state
from handgrad.train.learner import CancelFitException, Learner

__all__ = ["LRFinder", "LRFindResult", "lr_find"]


class LRFinder(Callback):
    """Set the learning rate of batch i to start_lr * (end_lr / start_lr) ** (i / (n-1))
    and record the exponentially smoothed training loss; end the fit after `num_iter`
    batches, or once the smoothed loss exceeds `diverge` times its minimum."""

    order = 15

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_iter: int = 100,
                 smoothing: float = 0.98, diverge: float = 4.0):
        if not 0 < start_lr < end_lr:
            raise ValueError(f"LRFinder: need 0 < start_lr < end_lr, got {start_lr}, {end_lr}")
        if num_iter < 2:
            raise ValueError(f"LRFinder: num_iter must be at least 2, got {num_iter}")
        self.start_lr, self.end_lr, self.num_iter = start_lr, end_lr, num_iter
        self.smoothing, self.diverge = smoothing, diverge
        self.lrs: list[float] = []
        self.losses: list[float] = []

    def before_fit(self, learner) -> None:
        self.lrs, self.losses = [], []
        self._average, self._best = 0.0, math.inf

    def before_batch(self, learner) -> None:
        if not learner.training:
            return
        i = len(self.lrs)
        lr = self.start_lr * (self.end_lr / self.start_lr) ** (i / (self.num_iter - 1))
        for group in learner.optimizer.param_groups:
            group["lr"] = lr
        self.lrs.append(lr)

    def after_batch(self, learner) -> None:
        if not learner.training:
            return
        loss = learner.loss.item()
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smoothed = self._average / (1 - self.smoothing ** len(self.lrs))  # bias-corrected
        self.losses.append(smoothed)
        self._best = min(self._best, smoothed)
        if (len(self.lrs) >= self.num_iter or not math.isfinite(smoothed)
                or smoothed > self.diverge * self._best):
            raise CancelFitException


@dataclass
class LRFindResult:
    """What lr_find measured: the rates tried, the smoothed losses, the suggestion."""

    lrs: list[float] = field(default_factory=list)  # learning rate of each batch
    losses: list[float] = field(default_factory=list)  # smoothed training loss after it
    suggestion: float = float("nan")  # the rate at the minimum loss / 10
    path: Path | None = None  # the plot, when one was written


def lr_find(learner: Learner, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_iter: int = 100, path: str | Path | None = None) -> LRFindResult:
    """Run the LR finder on `learner`'s model, data, loss and optimizer, then restore
    the model, the optimizer and the random generators. Saves the plot to `path`."""
    model_state = _clone_state(dict(learner.model.state_dict()))
    optimizer_state = _clone_state(learner.optimizer.state_dict())
    rng_state = get_rng_state()
    generator_states = {name: g.get_state() for name, g in learner.data_generators().items()}
    finder = LRFinder(start_lr, end_lr, num_iter)
    probe = Learner(learner.model, learner.train_dl, None, learner.loss_fn, learner.optimizer,
                    callbacks=[finder], device=learner.device)
    batches = len(learner.train_dl) if hasattr(learner.train_dl, "__len__") else num_iter
    try:
        probe.fit(math.ceil(num_iter / max(1, batches)))
    finally:
        learner.model.load_state_dict(model_state)
        learner.optimizer.load_state_dict(optimizer_state)
        set_rng_state(rng_state)
        for name, generator in learner.data_generators().items():
            generator.set_state(generator_states[name])  # the batch order, as it was
    result = LRFindResult(finder.lrs[:len(finder.losses)], finder.losses)
    if result.losses:
        best = min(range(len(result.losses)), key=result.losses.__getitem__)
        result.suggestion = result.lrs[best] / 10
    if path is not None and result.losses:
        from handgrad.train.plots import plot_lr_find

        result.path = plot_lr_find(result.lrs, result.losses, path, result.suggestion)
    return result
