"""Metrics: plain functions `metric(output, target) -> float`, the batch's mean.

A metric takes the model's output and the target of one batch and returns a Python
float: the mean over the batch's examples. The Learner weights each batch by its size,
so the figure for an epoch is the exact mean over every example (for accuracy, MSE and
MAE: the same number a single pass over the whole set gives).

    accuracy(logits, labels)            share of argmax predictions equal to the label
    top_k_accuracy(5)                   a metric: label among the k largest outputs
    mse(output, target)                 mean squared error
    mae(output, target)                 mean absolute error
    confusion_matrix(pred, labels, C)   (C, C) counts, rows = true class, columns = predicted

Metrics read the raw torch data (no graph is recorded) and accept handgrad Tensors or
torch tensors. A metric of your own may return a 0-d handgrad or torch tensor instead of a
float: `metric_value` (which the Learner applies) turns it into a float, and refuses
anything that is not one number. `batch_size(target)` is how many examples a batch holds
(the weight of its figures). Left out: metrics that do not average over examples (F1, AUC, R^2);
compute those from the predictions with `predict()` in learner.py.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["accuracy", "top_k_accuracy", "mse", "mae", "confusion_matrix", "metric_name",
           "metric_value", "batch_size"]

Metric = Callable[[object, object], float]


def _raw(x) -> torch.Tensor:
    """The torch tensor inside a handgrad Tensor (or x itself, as a tensor)."""
    from handgrad._tensor import to_torch

    data = to_torch(x)
    return data if isinstance(data, torch.Tensor) else torch.as_tensor(data)


def _predicted_classes(output: torch.Tensor) -> torch.Tensor:
    """Class indices from scores: argmax over the last dim, or `score > 0` for a single
    logit per example (binary classification with BCEWithLogitsLoss)."""
    if output.ndim == 1 or output.shape[-1] == 1:
        return (output.reshape(output.shape[0]) > 0).long()
    return output.argmax(dim=-1)


def accuracy(output, target) -> float:
    """Share of examples whose predicted class (argmax of `output` (N, C), or
    `output > 0` for one logit) equals `target` (N,) class indices."""
    output, target = _raw(output), _raw(target)
    predicted = _predicted_classes(output)
    target = target.reshape(predicted.shape)
    return (predicted == target).double().mean().item()


def top_k_accuracy(k: int = 5) -> Metric:
    """A metric: the share of examples whose label is among the `k` largest outputs.

    `metrics=[top_k_accuracy(5)]` logs it as "top5_accuracy"."""
    if k < 1:
        raise ValueError(f"top_k_accuracy: k must be at least 1, got {k}")

    def metric(output, target) -> float:
        output, target = _raw(output), _raw(target)
        if output.ndim != 2:
            raise ValueError(f"top{k}_accuracy: expects outputs of shape (N, C), got "
                             f"{tuple(output.shape)}")
        top = output.topk(min(k, output.shape[-1]), dim=-1).indices  # (N, k)
        return (top == target.reshape(-1, 1)).any(dim=-1).double().mean().item()

    metric.__name__ = f"top{k}_accuracy"
    return metric


def _same_shape(output: torch.Tensor, target: torch.Tensor, name: str):
    if output.shape != target.shape:
        if output.numel() != target.numel():
            raise ValueError(f"{name}: output has shape {tuple(output.shape)} and target "
                             f"{tuple(target.shape)}; they must hold as many values")
        target = target.reshape(output.shape)  # (N, 1) against (N,): compare per example
    return output.double(), target.double()


def mse(output, target) -> float:
    """Mean squared error: mean((output - target)^2) over every value."""
    output, target = _same_shape(_raw(output), _raw(target), "mse")
    return ((output - target) ** 2).mean().item()


def mae(output, target) -> float:
    """Mean absolute error: mean(|output - target|) over every value."""
    output, target = _same_shape(_raw(output), _raw(target), "mae")
    return (output - target).abs().mean().item()


def confusion_matrix(predicted, target, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts: row = true class, column = predicted.

    `predicted` may be class indices (N,) or scores (N, C) (then argmax is taken)."""
    predicted, target = _raw(predicted), _raw(target).reshape(-1).long()
    if predicted.ndim > 1:
        predicted = _predicted_classes(predicted)
    predicted = predicted.reshape(-1).long()
    flat = target.cpu() * num_classes + predicted.cpu()
    counts = torch.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def metric_name(metric) -> str:
    """The name a metric is logged under: its `name` attribute, else its `__name__`."""
    return getattr(metric, "name", None) or getattr(metric, "__name__", type(metric).__name__)


def metric_value(value, name: str = "metric") -> float:
    """`value`, what a metric returned, as a Python float: a float or int, a numpy scalar,
    or a handgrad / torch tensor holding one number (its `.item()`). Anything else raises
    a TypeError naming the metric, since an epoch's figure is the mean of these numbers."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    data = getattr(value, "data", value)
    if isinstance(data, torch.Tensor):
        if data.numel() != 1:
            raise TypeError(f"metric {name!r} returned a tensor of shape {tuple(data.shape)}; "
                            f"a metric returns one number, the batch's mean (e.g. "
                            f"`.mean()` of the per-example values)")
        return float(data.item())
    try:
        return float(value)  # numpy scalars, Fractions, ...
    except (TypeError, ValueError):
        raise TypeError(f"metric {name!r} returned a {type(value).__name__}; a metric returns "
                        f"one number (a float or a 0-d tensor), the batch's mean") from None


def batch_size(target) -> int:
    """How many examples a batch holds: the first dimension of its target (a handgrad or
    torch tensor, or anything with a shape), else `len(target)` (a list of labels)."""
    shape = getattr(target, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(target)
