"""The `handgrad train mlp` and `handgrad train cnn` commands, and `train(config, out)`,
the whole run they perform.

    handgrad train mlp --dataset mnist5k
    handgrad train mlp --dataset digits --hidden 512,256 --dropout 0.2 --epochs 40 --out runs/d
    handgrad train mlp --resume runs/mlp-mnist5k/checkpoint.safetensors --epochs 40
    handgrad train cnn --model lenet --dataset mnist5k
    handgrad train cnn --model resnet --dataset digits --no-augment --epochs 10
    handgrad train mlp --dataset digits --nproc 2          (2 processes, DDP)

One command module serves every model of the registry (models/registry.py): the
subcommand's name picks the entry, whose model module gives the config dataclass, the
datasets, the recipes and the builders; the flags are the shared ones (data, optimizer,
schedule, run) plus the model's own (_MODEL_ARGUMENTS). Each flag left out takes the
reference recipe of the dataset (and, for the CNN, of --model).

A run prints a progress bar, one table row per epoch and the final figures, and writes
into --out: `loss.png` and the metric's curve (train vs valid),
`confusion_matrix.png` (classification; `decision_boundary.png` too for 2-D inputs,
`misclassified.png` for images: a grid of wrongly classified test images) or `fit.png`
(regression), `checkpoint.safetensors` (after every epoch) and `results.json` (config,
final train / valid / test figures, history, time).

The test split is used once, after training, for the final figure; the per-epoch
table shows the validation split. `--resume CKPT` writes into the checkpoint's own
folder unless --out says otherwise, so the resumed run keeps one checkpoint and one
results.json. Ctrl-C stops the run with one line that gives the exact command to resume
from the last checkpoint (exit status 130), not a traceback.

`--nproc N` trains data-parallel in N local processes started through torch's elastic
launcher (torch.distributed.launcher, as torchrun): each runs this same command with
DistributedDataParallel and a DistributedSampler (gloo on the CPU, NCCL with --device
cuda, one GPU per process), --batch-size examples a process (N x batch size a step);
rank 0 alone prints and writes. Run under torchrun (RANK and WORLD_SIZE set), the
command joins the process group itself, so `torchrun --nnodes 2 --nproc-per-node N ...
-m handgrad train mlp ...` trains over several machines (docs/distributed.md).

The char-rnn entry has a command module of its own (models/char_rnn_cli.py: a language
model's run carries state between batches and reports nats per character); it shares
config_from_args and the flag tables here.

Left out: hyper-parameter search; the attention models (not yet written).
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from handgrad.models.options import add_common_arguments, resolve_device, set_threads
from handgrad.models.registry import MODELS, entry_for, get_entry

__all__ = ["add_arguments", "run", "train", "config_from_args", "resolve_device"]

# command-line flag -> config field, shared by every model (flags left out keep the
# recipe's value), and each model's own
_SHARED_FLAGS = ("dataset", "data_seed", "optimizer", "lr", "weight_decay", "momentum",
                 "scheduler", "epochs", "batch_size", "clip_grad", "seed")
_MODEL_FLAGS = {
    "mlp": ("hidden", "activation", "batch_norm", "dropout"),
    "cnn": ("model", "widths", "blocks", "dropout", "augment", "rotate", "translate", "scale",
            "label_smoothing", "num_workers"),
    "char-rnn": ("valid_fraction", "cell", "embedding", "hidden", "layers", "dropout",
                 "seq_len", "sample_length", "sample_prompt", "temperature"),
}
# what may change when resuming (the rest must match the checkpoint's run)
_RESUMABLE = ("epochs",)
# the optimizers that use --momentum (each model module's build_optimizer)
_MOMENTUM_OPTIMIZERS = {"mlp": ("sgd", "rmsprop"), "cnn": ("sgd",),
                        "char-rnn": ("sgd", "rmsprop")}


def _widths(text: str, flag: str = "--hidden") -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.replace(" ", "").split(",") if w)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{flag} wants comma-separated integers such as 256,256, got {text!r}") from None
    if not widths or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"{flag} wants positive widths, got {text!r}")
    return widths


def _stage_widths(text: str) -> tuple[int, ...]:
    return _widths(text, "--widths")


def _flag(value) -> str:
    """A config value as it is written on the command line (256,256 for widths)."""
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def _add_mlp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=_widths, metavar="W1,W2,...",
                        help="hidden layer widths, e.g. 256,256 (default: the dataset's "
                             "reference recipe, as for every flag below)")
    from handgrad.models.mlp import ACTIVATIONS

    parser.add_argument("--activation", choices=ACTIVATIONS,
                        help="nonlinearity after each hidden layer")
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                        help="BatchNorm1d after each hidden Linear (--no-batch-norm: none)")
    parser.add_argument("--dropout", type=float, metavar="P",
                        help="dropout probability after each hidden activation (0: none)")


def _add_cnn_arguments(parser: argparse.ArgumentParser) -> None:
    from handgrad.models.cnn import MODELS as NETWORKS

    parser.add_argument("--model", choices=NETWORKS,
                        help="the network: lenet (LeNet-5) or resnet (a small ResNet) "
                             "(default lenet; flags left out take the recipe of this model "
                             "and dataset)")
    parser.add_argument("--widths", type=_stage_widths, metavar="W1,W2,...",
                        help="resnet: channels of each stage, e.g. 16,32,64")
    parser.add_argument("--blocks", type=int, metavar="N", help="resnet: BasicBlocks per stage")
    parser.add_argument("--dropout", type=float, metavar="P",
                        help="lenet: dropout probability in the classifier (0: none)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="random rotation / shift / scale of the training images "
                             "(--no-augment: none)")
    parser.add_argument("--rotate", type=float, metavar="DEGREES",
                        help="augmentation: largest rotation, in degrees")
    parser.add_argument("--translate", type=float, metavar="FRACTION",
                        help="augmentation: largest shift, as a fraction of the image side")
    parser.add_argument("--scale", type=float, metavar="FRACTION",
                        help="augmentation: zoom uniform in [1 - FRACTION, 1 + FRACTION]")
    parser.add_argument("--label-smoothing", type=float, metavar="EPS",
                        help="cross-entropy label smoothing (0: none)")
    parser.add_argument("--workers", dest="num_workers", type=int, metavar="N",
                        help="DataLoader worker processes for the augmentation (0: in the "
                             "training process; changes the random draws, so it is part of "
                             "the recipe)")


_MODEL_ARGUMENTS = {"mlp": _add_mlp_arguments, "cnn": _add_cnn_arguments}
_SCHEDULER_HELP = {
    "mlp": "learning-rate schedule: onecycle (per batch), cosine, step, exponential (per "
           "epoch), plateau (on the validation loss), none",
    "cnn": "learning-rate schedule: onecycle (per batch), cosine (per epoch), none",
}


def _model_of(parser: argparse.ArgumentParser) -> str:
    """The registry entry a parser is for: the last word of its prog (`handgrad train
    cnn`), else mlp (a bare parser, as in the tests)."""
    word = parser.prog.split()[-1] if parser.prog else ""
    return word if word in MODELS else "mlp"


def add_arguments(parser: argparse.ArgumentParser, model: str | None = None) -> None:
    """The flags of `handgrad train MODEL` (MODEL: `model`, else the parser's own name)."""
    name = model or _model_of(parser)
    entry = get_entry(name)
    module = entry.load()
    parser.set_defaults(_model=name)
    datasets = "; ".join(f"{key}: {spec.note}" for key, spec in module.DATASETS.items())
    parser.add_argument("--dataset", choices=list(module.DATASETS), default=None,
                        help=f"what to train on (default {entry.default_dataset}). {datasets}")
    _MODEL_ARGUMENTS[name](parser)
    momentum = " and ".join(_MOMENTUM_OPTIMIZERS[name])
    parser.add_argument("--optimizer", choices=module.OPTIMIZERS, help="the optimizer")
    parser.add_argument("--lr", type=float, help="learning rate (peak rate for onecycle)")
    parser.add_argument("--weight-decay", type=float,
                        help="weight decay (decoupled for adamw, L2 for the others)")
    parser.add_argument("--momentum", type=float, help=f"momentum for {momentum}")
    parser.add_argument("--scheduler", choices=module.SCHEDULERS, help=_SCHEDULER_HELP[name])
    parser.add_argument("--epochs", type=int, help="passes over the training split")
    parser.add_argument("--batch-size", type=int, help="examples per optimizer step")
    parser.add_argument("--clip-grad", type=float, metavar="MAX_NORM",
                        help="clip the gradients' joint norm to MAX_NORM (0: off)")
    add_common_arguments(parser, seed=None,
                         seed_help="seed of the initial weights, batch order and dropout"
                                   + (" and augmentation" if name == "cnn" else ""))
    parser.add_argument("--data-seed", type=int,
                        help="seed of the train/valid/test split (default 0: the split "
                             "behind the documented figures)")
    add_common_arguments(parser, device="where to train: cpu, cuda or cuda:N (default cpu)")
    default_out = "runs/cnn-MODEL-DATASET" if name == "cnn" else f"runs/{name}-DATASET"
    parser.add_argument("--out", metavar="DIR",
                        help=f"folder for the plots, checkpoint and results.json "
                             f"(default {default_out})")
    parser.add_argument("--resume", metavar="CKPT",
                        help="continue the run saved in this checkpoint (its settings are "
                             "used; --epochs may raise the total epoch count)")
    parser.add_argument("--lr-find", action="store_true",
                        help="run the LR finder first and save its plot as lr_find.png")
    parser.add_argument("--data-root", metavar="DIR",
                        help="folder with the MNIST IDX files (default $HANDGRAD_DATA, "
                             "then ~/.cache/handgrad)")
    parser.add_argument("--download", action="store_true",
                        help="MNIST only: download the four IDX files (about 11 MB) when "
                             "they are not found")
    add_common_arguments(parser, threads=1)
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train data-parallel in N local processes (torch's launcher; "
                             "gloo on the CPU, NCCL with --device cuda); --batch-size is "
                             "per process, so a step sees N x batch size examples; "
                             "--threads applies to each process (default 1)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar and no per-epoch table")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG files")


def config_from_args(args: argparse.Namespace, saved: dict | None = None,
                     model: str | None = None):
    """The run's config (of the model `model`, else the one the parser was built for):
    the saved one when resuming, else the reference recipe of the dataset (and
    variant); flags given on the command line replace its fields."""
    name = model or getattr(args, "_model", "mlp")
    entry = get_entry(name)
    config_class = entry.config_class
    given = {key: getattr(args, key) for key in (*_SHARED_FLAGS, *_MODEL_FLAGS[name])
             if getattr(args, key, None) is not None}
    if saved is not None:
        try:
            config = config_class.from_dict(saved)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the checkpoint's run config does not fit {config_class.__name__} "
                             f"({error}): it was written by another `handgrad train` model; "
                             f"resume it with the command that wrote it") from None
        conflicts = [f"--{_flag_name(key)} {_flag(value)} (the checkpoint has "
                     f"{_flag(getattr(config, key))})" for key, value in given.items()
                     if key not in _RESUMABLE
                     and config_class.from_dict({**saved, key: value}) != config]
        epochs = given.get("epochs", config.epochs)
        if epochs != config.epochs and config.scheduler not in ("none", "plateau"):
            conflicts.append(f"--epochs {epochs}: the {config.scheduler} schedule was planned "
                             f"for {config.epochs} epochs")
        if conflicts:
            raise ValueError("--resume continues the saved run, whose settings cannot change: "
                             + "; ".join(conflicts) + ". Leave these flags out, or start a "
                             "new run without --resume.")
        return config_class.from_dict({**config.to_dict(), **given})
    base = entry.recipe(given.get("dataset", entry.default_dataset),
                        given.get("model"))  # the default recipe
    config = config_class.from_dict({**base.to_dict(), **given})
    momentum = _MOMENTUM_OPTIMIZERS[name]
    if "momentum" in given and config.optimizer not in momentum:
        raise ValueError(f"--momentum applies to {' and '.join(momentum)} only; "
                         f"{config.optimizer} would ignore it. Leave it out, or add "
                         f"--optimizer sgd")
    return config


def _flag_name(field_name: str) -> str:
    return {"num_workers": "workers"}.get(field_name, field_name).replace("_", "-")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(config, out: str | Path, *, device: str = "cpu", resume: str | None = None,
          data_root: str | None = None, download: bool = False,
          progress: bool | None = None, table: bool = True, plots: bool = True,
          find_lr: bool = False, callbacks=(), log=print) -> dict:
    """Train the model of `config` (an MLPConfig, a CNNConfig: any registered model's
    config) as it says and write plots, checkpoint and results.json into `out`. Returns
    the results (what results.json holds). `progress=None` shows the bar only on a
    terminal; `callbacks` are added to the Learner's own."""
    from handgrad.data import DataLoader, DistributedSampler, Subset, TensorDataset
    from handgrad.nn.parallel import DistributedDataParallel
    from handgrad.train import (
        EpochTable,
        GradientClipping,
        Learner,
        LearningCurves,
        NaNGuard,
        ProgressBar,
        SaveCheckpoint,
        accuracy,
        confusion_matrix,
        distributed,
        lr_find,
        mae,
    )
    from handgrad.train.checkpoint import write_json_atomic

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(str(device))
    entry = entry_for(config)
    module = entry.load()
    _seed_everything(config.seed)
    data = module.prepare_data(config, data_root, download)
    if device.type != "cpu":  # keep the whole (small) dataset on the device once
        for name in ("train", "valid", "test"):
            if isinstance(getattr(data, name), TensorDataset):  # augmented: moved per batch
                x, y = getattr(data, name).tensors
                setattr(data, name, TensorDataset(x.to(device), y.to(device)))
    model = module.build_model(config, data).to(device)
    rank, world = distributed.rank(), distributed.world_size()
    if world > 1:  # rank 0's initial weights are broadcast; gradients averaged each step
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    takes_config = len(inspect.signature(module.build_loss).parameters) > 1
    loss_fn = module.build_loss(data, config) if takes_config else module.build_loss(data)
    optimizer = module.build_optimizer(config, model)
    workers = getattr(config, "num_workers", 0)
    if world > 1:  # each process its share of the examples, batch_size a process
        train_dl = DataLoader(data.train, batch_size=config.batch_size,
                              sampler=DistributedSampler(data.train, seed=config.seed),
                              num_workers=workers, persistent_workers=workers > 0)
        # validation shards without padding (History sums over the ranks: exact figures)
        valid_dl = DataLoader(Subset(data.valid, range(rank, len(data.valid), world)),
                              batch_size=1024)
    else:
        train_dl = DataLoader(data.train, batch_size=config.batch_size, shuffle=True,
                              num_workers=workers, persistent_workers=workers > 0)
        valid_dl = DataLoader(data.valid, batch_size=1024)
    test_dl = DataLoader(data.test, batch_size=1024)
    scheduler = module.build_scheduler(config, optimizer, steps_per_epoch=len(train_dl))
    title = (f"{module.describe(config)} on {config.dataset}" if hasattr(module, "describe")
             else config.dataset)
    classification = data.task == "classification"
    checkpoint = out / "checkpoint.safetensors"
    callbacks = [NaNGuard(), SaveCheckpoint(checkpoint, config=config.to_dict()), *callbacks]
    if config.clip_grad > 0:
        callbacks.append(GradientClipping(config.clip_grad))
    if progress is not False:
        callbacks.append(ProgressBar(disable=None if progress is None else False))
    if table:
        callbacks.append(EpochTable())
    if plots:
        callbacks.append(LearningCurves(out, title=title))
    learner = Learner(model, train_dl, valid_dl, loss_fn, optimizer, scheduler,
                      metrics=[accuracy] if classification else [mae],
                      callbacks=callbacks, device=device)
    if world > 1 and find_lr:
        raise ValueError("the LR finder runs in one process: leave out --lr-find with "
                         "--nproc (or torchrun), or run it first without")
    if rank != 0:
        def log(*_):  # only rank 0 reports
            pass
    if resume is not None:
        learner.load_checkpoint(resume)  # on every rank: the same state everywhere
        log(f"resumed from {resume} after epoch {learner.epochs_done} "
            f"(step {learner.step})")
    files = []
    if find_lr:
        found = lr_find(learner, path=out / "lr_find.png" if plots else None)
        log(f"LR finder: suggested learning rate {found.suggestion:.2e}"
            + (f" (plot: {found.path})" if found.path else ""))
        files += [found.path] if found.path else []
    fit_start, first_epoch = time.perf_counter(), learner.epochs_done
    learner.fit(config.epochs)
    fit_seconds = time.perf_counter() - fit_start
    if rank != 0:  # rank 0 measures the test split and writes the results
        distributed.barrier("handgrad train: barrier at the end of the run")
        return {"rank": rank, "world_size": world, "epochs_done": learner.epochs_done}

    test = learner.evaluate(test_dl)
    last = learner.history.last
    key = "accuracy" if classification else "mse"
    if not classification:
        test["mse"] = test["loss"]  # the loss is the mean squared error
    results = {
        "model": entry.name,
        "dataset": config.dataset,
        "task": data.task,
        "description": data.description,
        "sizes": {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)},
        "config": config.to_dict(),
        "test": test,
        "final_epoch": last,
        "epochs_done": learner.epochs_done,
        "epochs_this_run": learner.epochs_done - first_epoch,
        "metric": key,
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - start,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "world_size": world,  # processes; each took batch_size examples a step
        "python": platform.python_version(),
        "torch": torch.__version__,
        "checkpoint": str(checkpoint),
        "history": learner.history.epochs,
    }
    if plots:
        files += [str(p) for cb in callbacks if isinstance(cb, LearningCurves) for p in cb.paths]
        files += _result_plots(learner, data, test_dl, out, title, confusion_matrix)
    results["files"] = [str(f) for f in files]
    write_json_atomic(out / "results.json", results)
    if world > 1:
        distributed.barrier("handgrad train: barrier at the end of the run")
    return results


def _result_plots(learner, data, test_dl, out: Path, title: str, confusion_matrix) -> list:
    """confusion_matrix.png (+ decision_boundary.png for 2-D inputs), or fit.png."""
    from handgrad._tensor import Tensor
    from handgrad.autograd import no_grad
    from handgrad.train import plots

    outputs, targets = learner.predict(test_dl)
    x_test = data.test.tensors[0].cpu()
    paths = []
    if data.task == "classification":
        matrix = confusion_matrix(outputs, targets, data.out_features)
        paths.append(plots.plot_confusion_matrix(
            matrix, out / "confusion_matrix.png", classes=data.classes,
            title=f"{title}: test confusion matrix"))
        if x_test.dim() == 4:  # images (N, C, H, W)
            paths.append(plots.plot_misclassified(
                x_test, targets, outputs.argmax(dim=1), out / "misclassified.png",
                classes=data.classes, title=f"{title}: misclassified test images"))
        if data.in_features == 2:
            model, device = learner.model, learner.device or torch.device("cpu")

            def predict(points: np.ndarray) -> np.ndarray:
                model.eval()
                with no_grad():
                    scores = model(Tensor(torch.from_numpy(points).to(device)))
                return scores.data.argmax(dim=1).cpu().numpy()

            paths.append(plots.plot_decision_boundary(
                predict, x_test, targets, out / "decision_boundary.png",
                title=f"{title}: decision regions, test points"))
    elif data.in_features == 1:
        mean, std = data.mean[0], data.std[0]
        grid = torch.linspace(float(x_test.min()), float(x_test.max()), 300).reshape(-1, 1)
        model, device = learner.model, learner.device or torch.device("cpu")
        model.eval()
        with no_grad():
            curve = model(Tensor(grid.to(device))).data.cpu()
        paths.append(plots.plot_regression_fit(
            x_test * std + mean, targets, out / "fit.png", curve_x=grid * std + mean,
            curve_y=curve, title=f"{title}: test points and the model"))
    else:
        paths.append(plots.plot_regression_fit(None, targets, out / "fit.png",
                                               predicted=outputs, title=title))
    return [str(p) for p in paths]


def _summary(results: dict) -> str:
    test = results["test"]
    if results["metric"] == "accuracy":
        figure = f"test accuracy {test['accuracy']:.2%}"
    else:
        figure = f"test MSE {test['mse']:.4f} (MAE {test['mae']:.4f})"
    last = results["final_epoch"]
    parts = [f"{results['dataset']}: {figure} on {results['sizes']['test']} held-out examples",
             f"test loss {test['loss']:.4f}"]
    if "train_loss" in last:
        parts.append(f"final train loss {last['train_loss']:.4f}")
    done, this_run = results["epochs_done"], results["epochs_this_run"]
    if this_run == 0:
        parts.append(f"no epochs left: the run was complete after {done} epochs")
    else:
        epochs = f"{done} epochs" if done == this_run else f"epochs {done - this_run + 1}-{done}"
        parts.append(f"{epochs} in {results['fit_seconds']:.2f}s")
    return ", ".join(parts)


def _resume_hint(args: argparse.Namespace, out: Path) -> str:
    """The one line Ctrl-C prints: the exact command that resumes from the last checkpoint
    (the settings are in the checkpoint; the flags it does not hold are repeated)."""
    checkpoint = out / "checkpoint.safetensors"
    if not checkpoint.is_file():
        return "interrupted before the first epoch ended; no checkpoint to resume from"
    name = getattr(args, "_model", "mlp")
    command = ["handgrad", "train", name, "--resume", str(checkpoint)]
    if args.epochs is not None:
        command += ["--epochs", str(args.epochs)]
    for flag, value, default in (("--device", args.device, "cpu"),
                                 ("--threads", args.threads, 1),
                                 ("--nproc", getattr(args, "_launched_nproc", 1), 1),
                                 ("--data-root", args.data_root, None)):
        if value != default:
            command += [flag, str(value)]
    if args.out:
        command += ["--out", args.out]
    command += [flag for flag, on in (("--quiet", args.quiet), ("--no-plots", args.no_plots))
                if on]
    return f"interrupted; resume from the last checkpoint with: {shlex.join(command)}"


def _environment_world_size() -> int:
    """WORLD_SIZE when a launcher (torchrun, --nproc) started this process, else 1."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 1
    return int(os.environ["WORLD_SIZE"])


def _join_process_group(device: str) -> str:
    """Join the process group a launcher set up through the environment (RANK,
    WORLD_SIZE, MASTER_ADDR, MASTER_PORT): NCCL with one GPU per local rank for cuda,
    else gloo. Returns the device this process trains on."""
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if resolve_device(device).type == "cuda":
        device = f"cuda:{local_rank}" if resolve_device(device).index is None else device
        torch.cuda.set_device(torch.device(device))
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return device


def _launched_worker(args: argparse.Namespace) -> int:
    """What each process started by --nproc runs (top level, so spawn can import it)."""
    return run(args)


def _launch(args: argparse.Namespace, command: str) -> int:
    """--nproc N: run this command in N local processes through torch's elastic launcher
    (the machinery behind torchrun --standalone); each process joins the group from its
    environment. The exit status is the worst of the processes'."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    child = argparse.Namespace(**vars(args))
    child.nproc, child._launched_nproc = 1, args.nproc
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=args.nproc,
                          run_id=f"handgrad-{os.getpid()}", rdzv_backend="c10d",
                          rdzv_endpoint="127.0.0.1:0", max_restarts=0,
                          monitor_interval=0.1, start_method="spawn")
    if args.threads:  # the processes' OpenMP pools start at --threads, as torchrun's do
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    try:
        statuses = elastic_launch(config, _launched_worker)(child)
    except ChildFailedError as error:
        for rank, failure in sorted(error.failures.items()):
            message = failure.message if isinstance(failure.message, str) else (
                (failure.message or {}).get("message", ""))
            first_line = (message or "").strip().splitlines()[:1]
            print(f"{command}: rank {rank} of {args.nproc} failed (exit code "
                  f"{failure.exitcode}){': ' + first_line[0] if first_line else ''}; the "
                  "other processes were stopped (their output is above)", file=sys.stderr)
        return 1
    return max(int(status or 0) for status in statuses.values())


def run(args: argparse.Namespace) -> int:
    from handgrad.train import CheckpointError, NonFiniteLossError, load_checkpoint

    name = getattr(args, "_model", "mlp")
    command = f"handgrad train {name}"
    saved = None
    launched = _environment_world_size()
    nproc = getattr(args, "nproc", 1)
    try:
        if nproc < 1:
            raise ValueError(f"--nproc must be 1 or more, got {nproc}")
        if nproc > 1 and launched > 1:
            raise ValueError(f"--nproc {nproc} starts processes of its own, but this one "
                             f"was started by a launcher (WORLD_SIZE={launched}); leave "
                             "--nproc out under torchrun")
        if (nproc > 1 or launched > 1) and args.lr_find:
            raise ValueError("the LR finder runs in one process: run it first without "
                             "--nproc (or torchrun), then train with the rate it suggests")
        set_threads(args.threads)
        if args.resume:
            _, meta = load_checkpoint(args.resume)
            saved = ((meta.get("state") or {}).get("config"))
            if saved is None:
                raise CheckpointError(f"{args.resume} holds no run config: it was not written "
                                      f"by `{command}`")
        config = config_from_args(args, saved, name)
        if (args.download or args.data_root) and config.dataset != "mnist":
            raise ValueError(f"--download and --data-root apply to --dataset mnist only (the "
                             f"only dataset read from files); {config.dataset} needs neither")
        resolve_device(args.device)
    except (ValueError, FileNotFoundError) as error:  # CheckpointError is a ValueError
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    if nproc > 1:
        return _launch(args, command)
    device, rank = args.device, 0
    if launched > 1:
        device = _join_process_group(args.device)
        rank = int(os.environ["RANK"])
    if args.out:
        out = Path(args.out)
    elif args.resume:  # the resumed run goes on in its own folder
        out = Path(args.resume).parent
    else:
        out = Path(f"runs/{name}-{config.dataset}" if name != "cnn"
                   else f"runs/cnn-{config.model}-{config.dataset}")
    if name == "cnn":
        from handgrad.models.cnn import describe

        network = describe(config) + (" (augmented)" if config.augment else "")
    else:
        network = f"MLP{list(config.hidden)}"
    processes = (f" in {launched} processes (batch {config.batch_size} each)"
                 if launched > 1 else "")
    if rank == 0:
        print(f"training {network} on {config.dataset} "
              f"({config.optimizer}, lr {config.lr:g}, {config.scheduler}, {config.epochs} "
              f"epochs, batch {config.batch_size}) on {args.device}{processes}; writing to "
              f"{out}/", flush=True)
    try:
        results = train(config, out, device=device, resume=args.resume,
                        data_root=args.data_root, download=args.download,
                        progress=False if args.quiet else None,
                        table=not args.quiet, plots=not args.no_plots, find_lr=args.lr_find)
    except NonFiniteLossError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 1
    except FileNotFoundError as error:  # e.g. MNIST files not found: the message says where
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if rank == 0:
            print(f"{command}: {_resume_hint(args, out)}", file=sys.stderr)
        return 130
    finally:
        if launched > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    if rank != 0:
        return 0
    print(_summary(results))
    written = [Path(f).name for f in results["files"]] + ["checkpoint.safetensors",
                                                          "results.json"]
    print(f"wrote {', '.join(written)} to {out}/")
    return 0
