"""Pictures of a training run, saved as PNG files: learning curves, confusion matrix,
a grid of misclassified images, regression fit, decision boundary, LR finder.

matplotlib is imported when a function here is called, never when handgrad is imported,
and only through its object-oriented API with the Agg canvas (no pyplot, no window, no
global backend switch), so plotting works on a server and inside tests.

Each function takes plain data (lists, torch tensors or numpy arrays), writes one file
and returns its path. Left out: interactive display (open the PNGs), per-layer
statistics (activations, gradient histograms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "plot_learning_curves", "plot_confusion_matrix", "plot_misclassified", "plot_regression_fit",
    "plot_decision_boundary", "plot_lr_find",
]

_TRAIN, _VALID = "#1f77b4", "#d62728"


def _figure(width: float = 6.4, height: float = 4.4):
    """A matplotlib Figure drawn by the Agg canvas (no pyplot state involved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def _numpy(x) -> np.ndarray:
    data = getattr(x, "data", x)
    if hasattr(data, "detach"):
        data = data.detach().cpu().numpy()
    return np.asarray(data)


def plot_learning_curves(history, directory: str | Path, title: str = "") -> list[Path]:
    """Write `loss.png` and one `<metric>.png` per metric into `directory`.

    `history` is a History (train.callbacks) or its `epochs` list of dicts. The loss
    plot shows the loss of every training step (faint), and the per-epoch train and
    valid means; metric plots show train vs valid per epoch."""
    epochs = getattr(history, "epochs", history)
    steps = getattr(history, "steps", [])
    directory = Path(directory)
    names = []
    for record in epochs:
        for key in record:
            for phase in ("train_", "valid_"):
                if key.startswith(phase) and key[len(phase):] not in names:
                    names.append(key[len(phase):])
    paths = []
    x = [r["epoch"] for r in epochs]
    for name in names:
        figure = _figure()
        ax = figure.subplots()
        if name == "loss" and steps:
            per_epoch: dict[int, int] = {}
            for s in steps:
                per_epoch[s["epoch"]] = per_epoch.get(s["epoch"], 0) + 1
            seen: dict[int, int] = {}
            positions = []  # step k of epoch e (1-based) at e - 1 + k / steps in epoch e
            for s in steps:
                seen[s["epoch"]] = seen.get(s["epoch"], 0) + 1
                positions.append(s["epoch"] - 1 + seen[s["epoch"]] / per_epoch[s["epoch"]])
            ax.plot(positions, [s["loss"] for s in steps], color=_TRAIN, alpha=0.25,
                    linewidth=0.8, label="train (each step)")
        for phase, color in (("train", _TRAIN), ("valid", _VALID)):
            key = f"{phase}_{name}"
            points = [(e, r[key]) for e, r in zip(x, epochs) if key in r]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, color=color,
                        label=f"{phase} (epoch mean)")
        if name == "loss" and all(r.get("train_loss", 1) > 0 for r in epochs):
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel=name, title=f"{title} {name}".strip())
        ax.grid(alpha=0.3)
        ax.legend()
        paths.append(_save(figure, directory / f"{name}.png"))
    return paths


def plot_confusion_matrix(matrix, path: str | Path, classes: Sequence[str] | None = None,
                          title: str = "confusion matrix") -> Path:
    """A (C, C) count matrix (rows: true class, columns: predicted) as a heat map with
    the counts written in the cells."""
    matrix = _numpy(matrix)
    n = matrix.shape[0]
    classes = list(classes) if classes is not None else [str(i) for i in range(n)]
    size = max(4.0, 0.5 * n + 2)
    figure = _figure(size + 1, size)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set(xticks=range(n), yticks=range(n), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title=title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > threshold else "black")
    return _save(figure, path)


def plot_misclassified(images, targets, predicted, path: str | Path,
                       classes: Sequence[str] | None = None, limit: int = 36,
                       title: str = "misclassified test images") -> Path:
    """A grid of the first `limit` images whose predicted class differs from the target,
    each titled "true -> predicted". `images` is (N, C, H, W) or (N, H, W) (one channel
    shown in grey, three as colour; values are scaled per image to the full range, so
    standardised inputs show as they are); `targets` and `predicted` are (N,) class
    indices. With nothing misclassified the figure says so."""
    images, targets, predicted = _numpy(images), _numpy(targets), _numpy(predicted)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    wrong = np.flatnonzero(targets != predicted)[:limit]
    names = list(classes) if classes is not None else None

    def name(index) -> str:
        return names[int(index)] if names is not None else str(int(index))

    columns = max(1, min(6, len(wrong)))
    rows = max(1, -(-len(wrong) // columns))
    figure = _figure(1.6 * columns + 0.4, 1.7 * rows + 0.6)
    axes = np.atleast_1d(figure.subplots(rows, columns)).reshape(-1)
    for ax in axes:
        ax.set_axis_off()
    for ax, i in zip(axes, wrong):
        image = images[i].astype(np.float64)
        low, high = image.min(), image.max()
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
        ax.imshow(image, cmap="gray_r" if image.ndim == 2 else None, interpolation="nearest")
        ax.set_title(f"{name(targets[i])} -> {name(predicted[i])}", fontsize=9)
    if len(wrong) == 0:
        axes[0].text(0.5, 0.5, "none misclassified", ha="center", va="center")
    total = int((targets != predicted).sum())
    figure.suptitle(f"{title} ({min(total, limit)} of {total} shown, true -> predicted)",
                    fontsize=10)
    return _save(figure, path)


def plot_regression_fit(x, y, path: str | Path, curve_x=None, curve_y=None,
                        predicted=None, title: str = "fit") -> Path:
    """For one input feature: the points (x, y) and the model's curve (curve_x,
    curve_y). Otherwise (`predicted` given): predicted against true values, with the
    diagonal where a perfect model would put them."""
    figure = _figure()
    ax = figure.subplots()
    y = _numpy(y).reshape(-1)
    if curve_x is not None:
        ax.scatter(_numpy(x).reshape(-1), y, s=10, alpha=0.6, color=_TRAIN, label="data")
        order = np.argsort(_numpy(curve_x).reshape(-1))
        ax.plot(_numpy(curve_x).reshape(-1)[order], _numpy(curve_y).reshape(-1)[order],
                color=_VALID, linewidth=2, label="model")
        ax.set(xlabel="x", ylabel="y")
    else:
        predicted = _numpy(predicted).reshape(-1)
        ax.scatter(y, predicted, s=10, alpha=0.6, color=_TRAIN)
        low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
        ax.plot([low, high], [low, high], color="gray", linestyle="--", label="y = x")
        ax.set(xlabel="true", ylabel="predicted")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(figure, path)


def plot_decision_boundary(predict: Callable[[np.ndarray], np.ndarray], x, y,
                           path: str | Path, title: str = "decision boundary",
                           resolution: int = 200) -> Path:
    """For 2-D inputs: the plane coloured by the predicted class, the points on top.

    `predict(points)` maps an (M, 2) float32 array to M class indices."""
    x, y = _numpy(x), _numpy(y).reshape(-1)
    margin = 0.5
    (x0, y0), (x1, y1) = x.min(axis=0) - margin, x.max(axis=0) + margin
    grid_x, grid_y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)
    classes = _numpy(predict(points)).reshape(grid_x.shape)
    n_classes = int(max(classes.max(), y.max())) + 1
    figure = _figure(5.6, 5.0)
    ax = figure.subplots()
    ax.contourf(grid_x, grid_y, classes, levels=np.arange(n_classes + 1) - 0.5,
                cmap="tab10", vmin=0, vmax=9, alpha=0.3)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="tab10", vmin=0, vmax=9, s=12,
               edgecolors="black", linewidths=0.3)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), title=title)
    return _save(figure, path)


def plot_lr_find(lrs: Sequence[float], losses: Sequence[float], path: str | Path,
                 suggestion: float | None = None) -> Path:
    """The LR finder's smoothed loss against the learning rate (log scale), with the
    suggested learning rate marked."""
    figure = _figure()
    ax = figure.subplots()
    ax.plot(lrs, losses, color=_TRAIN)
    ax.set_xscale("log")
    if suggestion is not None:
        ax.axvline(suggestion, color=_VALID, linestyle="--",
                   label=f"suggested lr {suggestion:.2e}")
        ax.legend()
    ax.set(xlabel="learning rate", ylabel="loss (smoothed)", title="LR finder")
    ax.grid(alpha=0.3)
    return _save(figure, path)
