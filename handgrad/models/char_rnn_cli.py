"""The `handgrad train char-rnn` command, and `train(config, out)`, the whole run of any
character-level language model (char-RNN here, GPT through models/gpt_cli.py).

    handgrad train char-rnn                                  # the reference LSTM recipe
    handgrad train char-rnn --cell gru --hidden 256 --layers 2 --seq-len 128 --epochs 4
    handgrad train char-rnn --dataset my_text.txt --hidden 128 --out runs/mine
    handgrad train char-rnn --resume runs/char-rnn-lstm/checkpoint.safetensors

The model, data and TBPTT batching are models/char_rnn.py's. The run goes through the
Learner: `CarryState` carries the hidden state from chunk to chunk (detached) and resets
it at each epoch start; `StreamValidation` measures nats per character over the whole
validation part after each epoch (the `valid_loss` of the table and curves). A GPT run
(a GPTConfig) goes through the same `train`: random windows (gpt.RandomWindows) instead
of streams, no state carried, and gpt.window_nats over the whole validation part;
`EpochSample` prints a sample from a generator of its own, seeded by (seed, epoch), so
the samples leave the run's random numbers alone. Since every epoch starts from a zero
state and the checkpoint (written after each epoch) holds every random generator, a
resumed run equals the uninterrupted one bit for bit on the CPU.

Writes into --out: `loss.png` (train per step and epoch, valid per epoch),
`checkpoint.safetensors` (weights, optimizer, schedule, RNG, history, the config and
the vocabulary as JSON metadata) and `results.json` (config, validation nats / bits per
character and perplexity, history, the last sample, time).

`run(args)` serves both commands (`args._model`: char-rnn or gpt).

Left out: the sampling and evaluation commands (models/sample.py, models/evaluate.py).
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from handgrad.models import char_rnn as lm
from handgrad.models.cli import _seed_everything, config_from_args
from handgrad.models.options import (
    add_common_arguments,
    add_run_arguments,
    resolve_device,
    set_threads,
)
from handgrad.train.callbacks import SaveCheckpoint

__all__ = ["add_arguments", "run", "train", "StreamValidation", "EpochSample",
           "SaveLMCheckpoint"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(_model="char-rnn")
    parser.add_argument("--dataset", metavar="NAME_OR_FILE",
                        help=f"what to train on (default tiny-shakespeare: "
                             f"{lm.DATASETS['tiny-shakespeare'].note})")
    parser.add_argument("--valid-fraction", type=float, metavar="F",
                        help="the text's last part held out for validation (default 0.1)")
    parser.add_argument("--cell", choices=lm.CELLS,
                        help="the recurrent layer: rnn (tanh), lstm or gru (default lstm; "
                             "defaults of every flag: the reference recipe)")
    parser.add_argument("--embedding", type=int, metavar="E",
                        help="character embedding size (0: one-hot input)")
    parser.add_argument("--hidden", type=int, metavar="H", help="hidden size of each layer")
    parser.add_argument("--layers", type=int, metavar="N", help="stacked recurrent layers")
    parser.add_argument("--dropout", type=float, metavar="P",
                        help="dropout between recurrent layers and before the head (0: none)")
    parser.add_argument("--seq-len", type=int, metavar="T",
                        help="characters per chunk (the truncation of backprop through time)")
    parser.add_argument("--batch-size", type=int, metavar="B",
                        help="parallel streams over the text (chunks per step)")
    parser.add_argument("--optimizer", choices=lm.OPTIMIZERS, help="the optimizer")
    parser.add_argument("--lr", type=float, help="learning rate (peak rate for onecycle)")
    parser.add_argument("--weight-decay", type=float,
                        help="weight decay (decoupled for adamw, L2 for the others)")
    parser.add_argument("--momentum", type=float, help="momentum for sgd and rmsprop")
    parser.add_argument("--scheduler", choices=lm.SCHEDULERS,
                        help="learning rate per step: cosine (to 0), onecycle, none")
    parser.add_argument("--clip-grad", type=float, metavar="MAX_NORM",
                        help="clip the gradients' joint norm to MAX_NORM (0: off)")
    parser.add_argument("--epochs", type=int, help="passes over the training text")
    add_common_arguments(parser, seed=None,
                         seed_help="seed of the initial weights, dropout and the samples")
    parser.add_argument("--sample-length", type=int, metavar="N",
                        help="characters sampled after each epoch (0: none)")
    parser.add_argument("--sample-prompt", metavar="TEXT",
                        help="what each epoch's sample starts from (default a newline)")
    parser.add_argument("--temperature", type=float, help="temperature of the epoch samples")
    add_common_arguments(parser, device="where to train: cpu, cuda or cuda:N (default cpu)")
    add_run_arguments(parser, default_out="runs/char-rnn-CELL")


# ---------------------------------------------------------------------------- callbacks
class StreamValidation:
    """After each epoch: nats per character over the whole validation text, recorded as
    the epoch's `valid_loss`: char_rnn.stream_nats, or `score(model, ids, device)` ->
    (total nats, count) when given (the GPT's window_nats)."""

    order = -5  # after the History wrote the epoch's record, before the table and checkpoint

    def __init__(self, ids, batch_size: int = 32, seq_len: int = 256, score=None):
        self.ids, self.batch_size, self.seq_len, self.score = ids, batch_size, seq_len, score

    def after_epoch(self, learner) -> None:
        if self.score is not None:
            total, count = self.score(learner.model, self.ids, learner.device)
        else:
            total, count = lm.stream_nats(learner.model, self.ids, self.batch_size,
                                          self.seq_len, device=learner.device)
        learner.history.last["valid_loss"] = total / count


class EpochSample:
    """After each epoch: `length` characters sampled after `prompt`, printed, from a
    generator seeded by (seed, epoch) (the run's own random numbers are not touched)."""

    order = -4

    def __init__(self, vocabulary, prompt: str, length: int, temperature: float, seed: int,
                 print_fn=None):
        self.vocabulary, self.prompt, self.length = vocabulary, prompt, length
        self.temperature, self.seed, self.print_fn = temperature, seed, print_fn
        self.last = ""

    def after_epoch(self, learner) -> None:
        generator = torch.Generator().manual_seed(self.seed * 1000 + learner.epochs_done)
        self.last = self.prompt + "".join(lm.generate(
            learner.model, self.vocabulary, self.prompt, self.length, self.temperature,
            generator=generator, device=learner.device))
        if self.print_fn is not None:
            self.print_fn(f"--- sample after epoch {learner.epochs_done} "
                          f"(temperature {self.temperature:g}) ---\n{self.last}\n---")


class SaveLMCheckpoint(SaveCheckpoint):
    """SaveCheckpoint that also stores the vocabulary ({"chars": [...]}, JSON) and the
    model's kind ("char-rnn" or "gpt") beside the run's config, so sample / evaluate need
    the checkpoint only (decoding.load_language_model reads the kind)."""

    def __init__(self, path, config, vocabulary, kind: str = "char-rnn"):
        super().__init__(path, config=config)
        self.vocabulary, self.kind = vocabulary, kind

    def after_epoch(self, learner) -> None:
        from handgrad.train.checkpoint import save_state

        save_state(self.path, {**learner.state_dict(self.config),
                               "vocabulary": self.vocabulary.to_json(), "kind": self.kind})


def _print(line: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stdout)


# ---------------------------------------------------------------------------- the run
def _is_gpt(config) -> bool:
    return type(config).__name__ == "GPTConfig"


def _model_module(config):
    """models/gpt.py for a GPTConfig, models/char_rnn.py for a CharRNNConfig."""
    if _is_gpt(config):
        from handgrad.models import gpt

        return gpt
    return lm


def _score(config):
    """(model, ids, device) -> (total nats, count) over the validation text: the GPT's
    window_nats (windows every eval_stride characters) or the char-RNN's stream_nats."""
    if _is_gpt(config):
        from handgrad.models.gpt import window_nats

        return lambda model, ids, device: window_nats(
            model, ids, config.block_size, config.eval_stride or None, device=device)
    return lambda model, ids, device: lm.stream_nats(model, ids, config.batch_size,
                                                     config.seq_len, device=device)


def _train_batches(config, data, device):
    """The GPT's random windows (steps_per_epoch batches, from a generator seeded by the
    run's seed and saved in the checkpoint) or the char-RNN's TBPTT streams."""
    if _is_gpt(config):
        from handgrad.models.gpt import RandomWindows

        return RandomWindows(data.train, config.batch_size, config.block_size,
                             config.steps_per_epoch,
                             generator=torch.Generator().manual_seed(config.seed),
                             device=device)
    return lm.StreamBatches(data.train, config.batch_size, config.seq_len, device=device)


def train(config, out: str | Path, *, device: str = "cpu",
          resume: str | None = None, data_root=None, download: bool = False,
          text: str | None = None, progress: bool | None = None, table: bool = True,
          samples: bool = True, plots: bool = True, callbacks=(), log=print) -> dict:
    """Train the language model of `config` (a CharRNNConfig or a GPTConfig) and write its
    curves, checkpoint and results.json into `out`; returns the results. `text` replaces
    reading the dataset."""
    from handgrad.train import (
        CheckpointError,
        EpochTable,
        GradientClipping,
        Learner,
        LearningCurves,
        NaNGuard,
        ProgressBar,
        load_state,
    )
    from handgrad.train.checkpoint import write_json_atomic

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(str(device))
    module, kind = _model_module(config), "gpt" if _is_gpt(config) else "char-rnn"
    _seed_everything(config.seed)
    data = module.prepare_data(config, data_root, download, text=text)
    if resume is not None:
        saved = lm.Vocabulary.from_json(load_state(resume).get("vocabulary"))
        if saved != data.vocabulary:
            raise CheckpointError(f"{resume}: its vocabulary ({len(saved)} characters) is not "
                                  f"that of {config.dataset} ({len(data.vocabulary)}): the "
                                  f"text changed since the run began")
    model = module.build_model(config, data).to(device)
    optimizer = module.build_optimizer(config, model)
    train_batches = _train_batches(config, data, device)
    scheduler = module.build_scheduler(config, optimizer, steps_per_epoch=len(train_batches))
    checkpoint = out / "checkpoint.safetensors"
    sampler = EpochSample(data.vocabulary, config.sample_prompt, config.sample_length,
                          config.temperature, config.seed, _print if samples else None)
    score = _score(config)
    callbacks = [NaNGuard(), *([] if kind == "gpt" else [lm.CarryState()]),
                 StreamValidation(data.valid, score=score),
                 SaveLMCheckpoint(checkpoint, config.to_dict(), data.vocabulary, kind),
                 *callbacks]
    if config.sample_length:
        callbacks.append(sampler)
    if config.clip_grad > 0:
        callbacks.append(GradientClipping(config.clip_grad))
    if progress is not False:
        callbacks.append(ProgressBar(disable=None if progress is None else False))
    if table:
        callbacks.append(EpochTable())
    if plots:
        callbacks.append(LearningCurves(out, title=f"{module.describe(config)} on "
                                                   f"{Path(config.dataset).name}"))
    learner = Learner(model, train_batches, None, module.build_loss(), optimizer, scheduler,
                      callbacks=callbacks, scheduler_interval="batch", device=device)
    if resume is not None:
        learner.load_checkpoint(resume)
        log(f"resumed from {resume} after epoch {learner.epochs_done} (step {learner.step})")
    fit_start, first_epoch, first_step = time.perf_counter(), learner.epochs_done, learner.step
    learner.fit(config.epochs)
    fit_seconds = time.perf_counter() - fit_start

    last = learner.history.last
    total, count = score(model, data.valid, device)
    steps = learner.step - first_step
    results = {
        "model": kind,
        "network": module.describe(config),
        "dataset": config.dataset,
        "description": data.description,
        "vocabulary_size": len(data.vocabulary),
        "sizes": {"train": int(data.train.shape[0]), "valid": int(data.valid.shape[0])},
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": config.to_dict(),
        "valid": lm.figures(total, count),
        "final_epoch": last,
        "epochs_done": learner.epochs_done,
        "epochs_this_run": learner.epochs_done - first_epoch,
        "steps": learner.step,
        "steps_this_run": steps,
        "steps_per_second": steps / fit_seconds if fit_seconds > 0 and steps else None,
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - start,
        "sample": sampler.last,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "checkpoint": str(checkpoint),
        "history": learner.history.epochs,
    }
    if kind == "gpt":
        results["valid_scoring"] = (f"every validation character once, in windows of "
                                    f"{config.block_size} starting every "
                                    f"{config.eval_stride or config.block_size} characters")
    files = [str(p) for cb in callbacks if isinstance(cb, LearningCurves) for p in cb.paths]
    results["files"] = files
    write_json_atomic(out / "results.json", results)
    return results


def _summary(results: dict) -> str:
    valid = results["valid"]
    parts = [f"validation: {valid['nats_per_char']:.4f} nats/char "
             f"({valid['bits_per_char']:.4f} bits/char, perplexity {valid['perplexity']:.2f}) "
             f"over {valid['chars']:,} characters"]
    done, this_run = results["epochs_done"], results["epochs_this_run"]
    if this_run == 0:
        parts.append(f"no epochs left: the run was complete after {done} epochs")
    else:
        epochs = f"{done} epochs" if done == this_run else f"epochs {done - this_run + 1}-{done}"
        parts.append(f"{epochs} ({results['steps_this_run']} steps) in "
                     f"{results['fit_seconds']:.1f}s")
    return ", ".join(parts)


def _resume_hint(args: argparse.Namespace, out: Path) -> str:
    checkpoint = out / "checkpoint.safetensors"
    if not checkpoint.is_file():
        return "interrupted before the first epoch ended; no checkpoint to resume from"
    command = ["handgrad", "train", getattr(args, "_model", "char-rnn"), "--resume",
               str(checkpoint)]
    for flag, value, default in (("--epochs", args.epochs, None), ("--device", args.device, "cpu"),
                                 ("--threads", args.threads, 1),
                                 ("--data-root", args.data_root, None), ("--out", args.out, None)):
        if value != default:
            command += [flag, str(value)]
    command += [flag for flag, on in (("--quiet", args.quiet), ("--no-plots", args.no_plots))
                if on]
    return f"interrupted; resume from the last checkpoint with: {shlex.join(command)}"


def _char_rnn_plan(config, args, out: Path) -> str:
    return (f"training {lm.describe(config)} on {config.dataset} ({config.optimizer}, lr "
            f"{config.lr:g}, {config.scheduler}, {config.epochs} epochs, {config.batch_size} "
            f"streams x {config.seq_len} characters) on {args.device}; losses are nats per "
            f"character; writing to {out}/")


def run(args: argparse.Namespace, *, make_config=config_from_args, default_out=None,
        plan=_char_rnn_plan) -> int:
    """The command of `args._model` (char-rnn, or gpt from models/gpt_cli.py, which gives
    its own `make_config(args, saved, name)`, `default_out(config)` and `plan` line)."""
    from handgrad.data.datasets._files import DataFileError
    from handgrad.train import CheckpointError, NonFiniteLossError, load_state

    name = getattr(args, "_model", "char-rnn")
    command = f"handgrad train {name}"
    saved = None
    try:
        set_threads(args.threads)
        if args.resume:
            saved = load_state(args.resume).get("config")
            if saved is None:
                raise CheckpointError(f"{args.resume} holds no run config: it was not written "
                                      f"by `{command}`")
        config = make_config(args, saved, name)
        resolve_device(args.device)
    except (ValueError, FileNotFoundError) as error:  # CheckpointError is a ValueError
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
    elif args.resume:
        out = Path(args.resume).parent
    elif default_out is not None:
        out = Path(default_out(config))
    else:
        out = Path(f"runs/char-rnn-{config.cell}")
    print(plan(config, args, out))
    try:
        results = train(config, out, device=args.device, resume=args.resume,
                        data_root=args.data_root, download=args.download,
                        progress=False if args.quiet else None, table=not args.quiet,
                        samples=not args.quiet, plots=not args.no_plots)
    except NonFiniteLossError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, DataFileError, CheckpointError) as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: {_resume_hint(args, out)}", file=sys.stderr)
        return 130
    print(_summary(results))
    written = [Path(f).name for f in results["files"]] + ["checkpoint.safetensors",
                                                          "results.json"]
    print(f"wrote {', '.join(written)} to {out}/")
    return 0
