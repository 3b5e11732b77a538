"""The `handgrad train gpt` command: the character-level GPT (models/gpt.py) on
tiny-shakespeare or any text.

    handgrad train gpt                                       # the reference recipe
    handgrad train gpt --n-layer 2 --n-embd 64 --block-size 64 --epochs 2 --out runs/small
    handgrad train gpt --dataset my_text.txt --steps-per-epoch 100
    handgrad train gpt --resume runs/gpt/checkpoint.safetensors

The run itself is the char-RNN's (models/char_rnn_cli.py: train(config, out) takes a
GPTConfig too): the same vocabulary and 90 / 10 split, the Learner with gradient
clipping, a per-step warm-up + cosine schedule, an "epoch" of `--steps-per-epoch` random
batches, the validation nats per character over the whole validation part after each
epoch (gpt.window_nats), a sample, the checkpoint (with every generator, so a resumed
run draws the batches the uninterrupted one would have) and results.json; the run flags
(--out, --resume, --data-root, --download, --threads, --quiet, --no-plots) are
models/options.py's.

Flags left out take the reference recipe (gpt.REFERENCE_CONFIGS); with --resume, the
checkpoint's settings are used and only --epochs may change (with --scheduler none).

Left out: sampling and evaluation (`handgrad sample` / `handgrad evaluate` read GPT
checkpoints too), multi-process training.
"""

from __future__ import annotations

import argparse

from handgrad.models import char_rnn_cli
from handgrad.models.options import add_common_arguments, add_run_arguments

__all__ = ["add_arguments", "run", "config_from_args"]

# command-line flag (dest) -> config field; every one of them is a GPTConfig field
_FLAGS = ("dataset", "valid_fraction", "block_size", "n_layer", "n_head", "n_embd",
          "dropout", "bias", "batch_size", "steps_per_epoch", "epochs", "optimizer", "lr",
          "min_lr", "warmup_steps", "scheduler", "weight_decay", "beta1", "beta2",
          "clip_grad", "eval_stride", "seed", "sample_length", "sample_prompt", "temperature")
_RESUMABLE = ("epochs",)  # what may change when resuming


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from handgrad.models import gpt

    parser.set_defaults(_model="gpt")
    parser.add_argument("--dataset", metavar="NAME_OR_FILE",
                        help=f"what to train on (default tiny-shakespeare: "
                             f"{gpt.DATASETS['tiny-shakespeare'].note})")
    parser.add_argument("--valid-fraction", type=float, metavar="F",
                        help="the text's last part held out for validation (default 0.1; "
                             "defaults of every flag: the reference recipe)")
    parser.add_argument("--block-size", type=int, metavar="T",
                        help="context length: the most characters the model looks at")
    parser.add_argument("--n-layer", type=int, metavar="N", help="Transformer blocks")
    parser.add_argument("--n-head", type=int, metavar="H", help="attention heads per block")
    parser.add_argument("--n-embd", type=int, metavar="C",
                        help="width of the residual stream (a multiple of --n-head)")
    parser.add_argument("--dropout", type=float, metavar="P",
                        help="dropout on embeddings, attention weights, residual branches")
    parser.add_argument("--bias", action=argparse.BooleanOptionalAction, default=None,
                        help="biases in the Linears and LayerNorms (--no-bias: none)")
    parser.add_argument("--batch-size", type=int, metavar="B",
                        help="random windows of --block-size characters per step")
    parser.add_argument("--steps-per-epoch", type=int, metavar="S",
                        help="steps between two validations (an 'epoch' of this model)")
    parser.add_argument("--epochs", type=int,
                        help="validation intervals: epochs x steps-per-epoch steps in all")
    parser.add_argument("--optimizer", choices=gpt.OPTIMIZERS,
                        help="adamw (decoupled weight decay) or adam (L2 decay)")
    parser.add_argument("--lr", type=float, help="peak learning rate (after the warm-up)")
    parser.add_argument("--min-lr", type=float, help="where the cosine schedule ends")
    parser.add_argument("--warmup-steps", type=int, metavar="N",
                        help="linear warm-up steps from lr / N to lr")
    parser.add_argument("--scheduler", choices=gpt.SCHEDULERS,
                        help="after the warm-up: cosine (lr to min-lr) or none (constant)")
    parser.add_argument("--weight-decay", type=float,
                        help="weight decay of the Linear and Embedding weights")
    parser.add_argument("--beta1", type=float, help="Adam's first-moment decay")
    parser.add_argument("--beta2", type=float, help="Adam's second-moment decay")
    parser.add_argument("--clip-grad", type=float, metavar="MAX_NORM",
                        help="clip the gradients' joint norm to MAX_NORM (0: off)")
    parser.add_argument("--eval-stride", type=int, metavar="S",
                        help="validation windows start every S characters (0: block size, "
                             "consecutive windows; smaller: more context per character)")
    add_common_arguments(parser, seed=None,
                         seed_help="seed of the initial weights, batches, dropout, samples")
    parser.add_argument("--sample-length", type=int, metavar="N",
                        help="characters sampled after each epoch (0: none)")
    parser.add_argument("--sample-prompt", metavar="TEXT",
                        help="what each epoch's sample starts from (default a newline)")
    parser.add_argument("--temperature", type=float, help="temperature of the epoch samples")
    add_common_arguments(parser, device="where to train: cpu, cuda or cuda:N (default cpu)")
    add_run_arguments(parser, default_out="runs/gpt")


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def config_from_args(args: argparse.Namespace, saved: dict | None = None,
                     model: str | None = None):
    """The run's GPTConfig: the saved one when resuming (only --epochs may change, and
    only with --scheduler none), else the dataset's reference recipe; flags given on the
    command line replace its fields."""
    from handgrad.models import gpt

    given = {key: getattr(args, key) for key in _FLAGS if getattr(args, key, None) is not None}
    if saved is None:
        base = gpt.reference_config(given.get("dataset", "tiny-shakespeare"))
        return gpt.GPTConfig.from_dict({**base.to_dict(), **given})
    try:
        config = gpt.GPTConfig.from_dict(saved)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the checkpoint's run config does not fit GPTConfig ({error}): it "
                         f"was written by another `handgrad train` model; resume it with the "
                         f"command that wrote it") from None
    conflicts = [f"{_flag(key)} {value} (the checkpoint has {getattr(config, key)})"
                 for key, value in given.items()
                 if key not in _RESUMABLE and value != getattr(config, key)]
    epochs = given.get("epochs", config.epochs)
    if epochs != config.epochs and config.scheduler != "none":
        conflicts.append(f"--epochs {epochs}: the {config.scheduler} schedule was planned for "
                         f"{config.epochs} epochs")
    if conflicts:
        raise ValueError("--resume continues the saved run, whose settings cannot change: "
                         + "; ".join(conflicts) + ". Leave these flags out, or start a new "
                         "run without --resume.")
    return gpt.GPTConfig.from_dict({**config.to_dict(), **given})


def _plan(config, args, out) -> str:
    from handgrad.models.gpt import describe

    after = (f"cosine to {config.min_lr:g}" if config.scheduler == "cosine" else "constant")
    return (f"training {describe(config)} on {config.dataset} ({config.optimizer}, lr "
            f"{config.lr:g}, warm-up {config.warmup_steps}, {after}, {config.epochs} epochs "
            f"of {config.steps_per_epoch} steps, "
            f"{config.batch_size} windows x {config.block_size} characters) on "
            f"{args.device}; losses are nats per character; writing to {out}/")


def run(args: argparse.Namespace) -> int:
    return char_rnn_cli.run(args, make_config=config_from_args,
                            default_out=lambda config: "runs/gpt", plan=_plan)
