"""The two training examples of the scalar engine, and the `handgrad train scalar-mlp` command.

* The lecture net: `MLP(3, [4, 4, 1])`, tanh throughout, fits the four points of
  `LECTURE_XS`/`LECTURE_YS` (targets 1, -1, -1, 1) by the sum of squared errors.
* The moons demo of micrograd: `MLP(2, [16, 16, 1])` (relu, linear output) on
  `make_moons(100, noise=0.1)`, max-margin (hinge) loss plus 1e-4 L2, 100 steps of
  full-batch SGD with the learning rate going from 1.0 down to 0.1.

Each is a plain loop you can read top to bottom: forward, zero_grad, backward, update.
`plot_decision_boundary` draws what the moons net learned (matplotlib, imported only when
called). What it leaves out: optimizers as objects, minibatches, checkpoints: that is
the tensor engine's `handgrad.train`.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from handgrad.scalar.datasets import LECTURE_XS, LECTURE_YS, make_moons
from handgrad.scalar.engine import Value
from handgrad.scalar.nn import MLP

__all__ = ["train_lecture", "moons_loss", "train_moons", "plot_decision_boundary"]

StepCallback = Callable[[int, float, float], None]  # (step, loss, accuracy)


def train_lecture(steps: int = 100, lr: float = 0.07, momentum: float = 0.95, seed: int = 1337,
                  target: float = 1e-4, on_step: StepCallback | None = None
                  ) -> tuple[MLP, list[float]]:
    """Fit the lecture's four points; stop once the loss is below `target`.

    SGD with momentum (v = momentum * v + grad; p -= lr * v): plain SGD also gets
    there, but with tanh on the output it needs many more than 100 steps to go below
    1e-4. With these settings 199 of 201 seeds (0-199 and 1337) get there within 100
    steps, half of them within 11. Returns the model and the loss before each step taken.
    """
    model = MLP(3, [4, 4, 1], nonlin="tanh", output_nonlin="tanh", rng=random.Random(seed))
    params = model.parameters()
    velocity = [0.0] * len(params)
    losses = []
    for step in range(steps):
        predictions = [model(x) for x in LECTURE_XS]
        loss = Value.sum([(p - y) ** 2 for p, y in zip(predictions, LECTURE_YS)])
        losses.append(loss.data)
        if on_step:
            correct = sum((p.data > 0) == (y > 0) for p, y in zip(predictions, LECTURE_YS))
            on_step(step, loss.data, correct / len(LECTURE_YS))
        if loss.data < target:
            break
        model.zero_grad()
        loss.backward()
        for i, p in enumerate(params):
            velocity[i] = momentum * velocity[i] + p.grad
            p.data -= lr * velocity[i]
    return model, losses


def moons_loss(model: MLP, xs: Sequence[Sequence[float]], ys: Sequence[float],
               alpha: float = 1e-4) -> tuple[Value, float]:
    """micrograd's demo loss: mean hinge loss max(0, 1 - y * score) + alpha * sum(p**2).

    `ys` are -1 or +1. Returns the loss and the accuracy (share of points whose score
    has the sign of their label).
    """
    scores = [model(x) for x in xs]
    hinge = [(1 - y * score).relu() for y, score in zip(ys, scores)]
    data_loss = Value.sum(hinge) * (1.0 / len(hinge))
    reg_loss = alpha * Value.sum([p * p for p in model.parameters()])
    accuracy = sum((y > 0) == (s.data > 0) for y, s in zip(ys, scores)) / len(ys)
    return data_loss + reg_loss, accuracy


def train_moons(steps: int = 100, n_samples: int = 100, noise: float = 0.1, seed: int = 1337,
                on_step: StepCallback | None = None
                ) -> tuple[MLP, list[list[float]], list[float], list[tuple[float, float]]]:
    """micrograd's moons demo: returns the model, the data (xs, ys in -1/+1) and the
    (loss, accuracy) measured before each step, then once more after the last one."""
    xs, labels = make_moons(n_samples, noise=noise, random_state=seed)
    ys = [2.0 * label - 1.0 for label in labels]  # 0/1 -> -1/+1
    model = MLP(2, [16, 16, 1], rng=random.Random(seed))
    history = []
    for step in range(steps):
        loss, accuracy = moons_loss(model, xs, ys)
        history.append((loss.data, accuracy))
        if on_step:
            on_step(step, loss.data, accuracy)
        model.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * step / steps  # 1.0 at the start, about 0.1 at the end
        for p in model.parameters():
            p.data -= lr * p.grad
    loss, accuracy = moons_loss(model, xs, ys)
    history.append((loss.data, accuracy))
    return model, xs, ys, history


def plot_decision_boundary(model: MLP, xs: Sequence[Sequence[float]], ys: Sequence[float],
                           path: str | Path, resolution: float = 0.15) -> Path:
    """Save a PNG of the plane coloured by the sign of model(point), with the data on top.

    The model's score is computed on a grid `resolution` apart and the boundary (score 0)
    is interpolated between grid points, so a coarse grid still draws a smooth line.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: only for the plot
    from matplotlib.figure import Figure

    x_min, x_max = min(p[0] for p in xs) - 1, max(p[0] for p in xs) + 1
    y_min, y_max = min(p[1] for p in xs) - 1, max(p[1] for p in xs) + 1
    grid_x = [x_min + i * resolution for i in range(int((x_max - x_min) / resolution) + 2)]
    grid_y = [y_min + j * resolution for j in range(int((y_max - y_min) / resolution) + 2)]
    scores = [[model([gx, gy]).data for gx in grid_x] for gy in grid_y]
    low = min(min(row) for row in scores)
    high = max(max(row) for row in scores)

    figure = Figure(figsize=(6, 5))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.contourf(grid_x, grid_y, scores, levels=[min(low, -1e-9) - 1, 0, max(high, 1e-9) + 1],
                colors=["#f4a582", "#92c5de"])  # score < 0: class -1, score > 0: class +1
    ax.scatter([p[0] for p in xs], [p[1] for p in xs], s=40, edgecolors="black",
               c=["#b2182b" if y < 0 else "#2166ac" for y in ys])
    ax.set(xlim=(x_min, x_max), ylim=(y_min, y_max),
           title="handgrad.scalar: MLP(2, [16, 16, 1]) on the moons")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


# ---- the `handgrad train scalar-mlp` command ------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=["moons", "lecture"], default="moons",
                        help="moons: micrograd's demo (2-D points, MLP(2, [16, 16, 1])); "
                             "lecture: the four 3-D points, MLP(3, [4, 4, 1]) with tanh")
    parser.add_argument("--steps", type=int, default=100, help="training steps (default 100)")
    parser.add_argument("--seed", type=int, default=1337,
                        help="seed for the data and the initial weights (default 1337)")
    parser.add_argument("--out", default="moons.png",
                        help="where the moons decision-boundary plot goes (default moons.png)")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # lazy, like matplotlib: the package itself needs only the stdlib

    bar = tqdm(total=args.steps, desc=f"scalar-mlp {args.dataset}", disable=args.quiet,
               unit="step")

    def on_step(step: int, loss: float, accuracy: float) -> None:
        bar.set_postfix(loss=f"{loss:.4g}", acc=f"{accuracy:.0%}")
        bar.update(1)

    if args.dataset == "lecture":
        model, losses = train_lecture(steps=args.steps, seed=args.seed, on_step=on_step)
        bar.total = bar.n  # it stops once the loss is below 1e-4: end the bar at 100%
        bar.close()
        reached = losses[-1] < 1e-4
        print(f"lecture: loss {losses[-1]:.3g} after {len(losses) - 1} steps"
              + (" (below 1e-4)" if reached else " (not below 1e-4 yet)"))
        return 0
    model, xs, ys, history = train_moons(steps=args.steps, seed=args.seed, on_step=on_step)
    bar.close()
    loss, accuracy = history[-1]
    print(f"moons: loss {loss:.4f}, training accuracy {accuracy:.0%} after {args.steps} steps")
    if not args.no_plot:
        path = plot_decision_boundary(model, xs, ys, args.out)
        print(f"decision boundary: {path}")
    return 0
