"""The `handgrad train translator` command, and `train(config, out)`, the whole run it performs.

    handgrad train translator                                # the reference recipe
    handgrad train translator --epochs 10 --d-model 128 --out runs/small
    handgrad train translator --dataset ~/data/fra.txt --min-frequency 2
    handgrad train translator --resume runs/translator-tatoeba-5k/checkpoint.safetensors

The model, data, decoding and scores are models/translator.py's. The run goes through
the Learner with teacher forcing (batches of (src, <bos> y, y <eos>)), label-smoothed
cross-entropy, a per-step warm-up + cosine schedule and gradient clipping; `valid_loss`
is the teacher-forced loss on the validation pairs, and every `eval_every` epochs
`ValidationScore` translates the validation sentences greedily and records their chrF
(`valid_chrf`). After training the test sentences are translated greedily and with the
beam (config.beam) and scored with sacrebleu against all their references.

Writes into --out: `loss.png`, `checkpoint.safetensors` (weights, optimizer, schedule,
RNG, history, the config and both tokenizers as JSON, so `handgrad translate` needs the
checkpoint only; written after every epoch) and `results.json` (config, test and
validation BLEU / chrF / exact match, unknown-word counts, example translations, history,
time). Ctrl-C prints the command that resumes from the last checkpoint (exit status 130).

Left out: the `handgrad translate` command (models/translate.py).
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from dataclasses import fields
from pathlib import Path

import torch

from handgrad.models import translator as tr
from handgrad.models.options import add_common_arguments, resolve_device, set_threads
from handgrad.train.callbacks import SaveCheckpoint

__all__ = ["add_arguments", "run", "train", "config_from_args", "ValidationScore",
           "SaveTranslatorCheckpoint"]

# config field -> help of its flag (--field-name); booleans get --x / --no-x
_HELP = {
    "data_seed": "seed of the split by English sentence (default 0: the documented split)",
    "valid_fraction": "share of the English sentences held out for validation",
    "test_fraction": "share of the English sentences held out for the final score",
    "case": "tokenizer case rule: keep, lower, truecase (lower a sentence's first word "
            "only when it is mostly lower-case elsewhere)",
    "min_frequency": "words seen fewer times in the training split become <unk>",
    "d_model": "width of the embeddings and of every layer",
    "heads": "attention heads",
    "encoder_layers": "Transformer encoder layers",
    "decoder_layers": "Transformer decoder layers",
    "feedforward": "hidden width of each layer's feed-forward block",
    "dropout": "dropout in the layers and after the embeddings",
    "norm_first": "pre-norm layers (--no-norm-first: post-norm, the original)",
    "tie_embeddings": "the output projection shares the target embedding matrix",
    "max_positions": "the longest sentence, in tokens (size of the position table)",
    "batch_size": "sentence pairs per optimizer step",
    "optimizer": "the optimizer (betas 0.9, 0.98)",
    "lr": "peak learning rate (after the warm-up)",
    "weight_decay": "weight decay (decoupled for adamw, L2 for adam)",
    "scheduler": "after the warm-up: cosine to 0, or none (constant)",
    "warmup_steps": "steps of linear warm-up",
    "label_smoothing": "cross-entropy label smoothing (0: none)",
    "clip_grad": "clip the gradients' joint norm to this (0: off)",
    "epochs": "passes over the training pairs",
    "beam": "beam size of the final test translations (1: greedy only)",
    "length_penalty": "alpha of the beam's length penalty ((5 + len) / 6) ** alpha",
    "eval_every": "greedy chrF on the validation split every N epochs (0: never)",
}
_CHOICES = {"case": ("keep", "lower", "truecase"), "optimizer": tr.OPTIMIZERS,
            "scheduler": tr.SCHEDULERS}
_RESUMABLE = ("beam", "length_penalty", "eval_every")  # may change when resuming


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(_model="translator")
    parser.add_argument("--dataset", metavar="NAME_OR_FILE",
                        help=f"what to train on (default tatoeba-5k: "
                             f"{tr.DATASETS['tatoeba-5k'].note})")
    defaults = tr.TranslatorConfig()
    for field in fields(tr.TranslatorConfig):
        if field.name not in _HELP:
            continue
        default = getattr(defaults, field.name)
        help_text = f"{_HELP[field.name]} (default {default})"
        if isinstance(default, bool):
            parser.add_argument(_flag(field.name), action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        elif field.name in _CHOICES:
            parser.add_argument(_flag(field.name), choices=_CHOICES[field.name],
                                help=help_text)
        else:
            parser.add_argument(_flag(field.name), type=type(default), help=help_text)
    add_common_arguments(parser, seed=None,
                         seed_help="seed of the initial weights, batch order and dropout")
    add_common_arguments(parser, device="where to train: cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--out", metavar="DIR",
                        help="folder for the curves, checkpoint and results.json (default "
                             "runs/translator-DATASET)")
    parser.add_argument("--resume", metavar="CKPT",
                        help="continue the run saved in this checkpoint (its settings are "
                             "used; --epochs may raise the epoch count with --scheduler none)")
    parser.add_argument("--data-root", metavar="DIR",
                        help="folder with eng-fra-tatoeba-5k.tsv or fra.txt (default "
                             "$HANDGRAD_DATA, then ~/.cache/handgrad)")
    add_common_arguments(parser, threads=1)
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG files")


def config_from_args(args: argparse.Namespace, saved: dict | None = None):
    """The saved config when resuming (flags may change only the evaluation settings and,
    with --scheduler none, --epochs), else the reference recipe with the flags applied."""
    names = ("dataset", "seed", *_HELP)
    given = {name: getattr(args, name) for name in names if getattr(args, name, None)
             is not None}
    if saved is None:
        return tr.TranslatorConfig.from_dict({**tr.REFERENCE_CONFIGS["tatoeba-5k"].to_dict(),
                                              **given})
    config = tr.TranslatorConfig.from_dict(saved)
    conflicts = [f"{_flag(k)} {v} (the checkpoint has {getattr(config, k)})"
                 for k, v in given.items()
                 if k not in (*_RESUMABLE, "epochs") and getattr(config, k) != v]
    if "epochs" in given and given["epochs"] != config.epochs and config.scheduler != "none":
        conflicts.append(f"--epochs {given['epochs']}: the cosine schedule was planned for "
                         f"{config.epochs} epochs")
    if conflicts:
        raise ValueError("--resume continues the saved run, whose settings cannot change: "
                         + "; ".join(conflicts) + ". Leave these flags out, or start a new "
                         "run without --resume.")
    return tr.TranslatorConfig.from_dict({**config.to_dict(), **given})


# ---------------------------------------------------------------------------- callbacks
class ValidationScore:
    """Every `every` epochs (and after the last): greedy translations of the validation
    sentences, their chrF / BLEU / exact match recorded as valid_chrf, valid_bleu,
    valid_exact in the epoch's history."""

    order = -5  # after the History wrote the epoch's record, before the table and checkpoint

    def __init__(self, split, source_tokenizer, target_tokenizer, every: int, print_fn=None):
        self.split, self.every, self.print_fn = split, every, print_fn
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer

    def after_epoch(self, learner) -> None:
        if not self.every or (learner.epochs_done % self.every
                              and learner.epochs_done != learner.epochs):
            return
        hypotheses = tr.translate(learner.model, self.source_tokenizer, self.target_tokenizer,
                                  self.split.sources, device=learner.device)
        scores = tr.score_translations(hypotheses, [self.split.references[s]
                                                    for s in self.split.sources])
        learner.history.last.update(valid_chrf=scores["chrf"], valid_bleu=scores["bleu"],
                                    valid_exact=scores["exact_match"])
        if self.print_fn is not None:
            self.print_fn(f"epoch {learner.epochs_done}: validation (greedy) chrF "
                          f"{scores['chrf']:.2f}, BLEU {scores['bleu']:.2f}, exact match "
                          f"{scores['exact_match']:.1%}")
        learner.model.train()


class SaveTranslatorCheckpoint(SaveCheckpoint):
    """SaveCheckpoint that also stores both tokenizers (JSON) beside the run's config, so
    `handgrad translate` needs the checkpoint only."""

    def __init__(self, path, config, source_tokenizer, target_tokenizer):
        super().__init__(path, config=config)
        self.tokenizers = {"source": source_tokenizer.to_dict(),
                           "target": target_tokenizer.to_dict()}

    def after_epoch(self, learner) -> None:
        from handgrad.train.checkpoint import save_state

        save_state(self.path, {**learner.state_dict(self.config),
                               "tokenizers": self.tokenizers})


def _print(line: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stdout)


def _scores(model, data, split, *, beam: int, length_penalty: float, device) -> tuple:
    sentences = split.sources
    hypotheses = tr.translate(model, data.source_tokenizer, data.target_tokenizer, sentences,
                              beam=beam, length_penalty=length_penalty, device=device)
    references = [split.references[s] for s in sentences]
    return tr.score_translations(hypotheses, references), hypotheses, references


# ---------------------------------------------------------------------------- the run
def train(config: tr.TranslatorConfig, out: str | Path, *, device: str = "cpu",
          resume: str | None = None, data_root=None, pairs=None,
          progress: bool | None = None, table: bool = True, plots: bool = True,
          callbacks=(), log=print) -> dict:
    """Train the translator of `config`, score it on the test split and write its curve,
    checkpoint and results.json into `out`; returns the results. `pairs` replaces reading
    the dataset (tests)."""
    from handgrad.models.cli import _seed_everything
    from handgrad.models.tokenizer import WordTokenizer
    from handgrad.train import (
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
    _seed_everything(config.seed)
    tokenizers = None
    if resume is not None:
        saved = load_state(resume).get("tokenizers") or {}
        tokenizers = (WordTokenizer.from_dict(saved.get("source")),
                      WordTokenizer.from_dict(saved.get("target")))
    data = tr.prepare_data(config, data_root, pairs=pairs, tokenizers=tokenizers)
    model = tr.build_model(config, data).to(device)
    optimizer = tr.build_optimizer(config, model)
    batches = {name: tr.PairBatches(part.pairs, data.source_tokenizer, data.target_tokenizer,
                                    config.batch_size, max_positions=config.max_positions,
                                    shuffle=name == "train", device=device,
                                    generator=torch.Generator().manual_seed(config.seed))
               for name, part in (("train", data.splits.train), ("valid", data.splits.valid))}
    scheduler = tr.build_scheduler(config, optimizer, steps_per_epoch=len(batches["train"]))
    checkpoint = out / "checkpoint.safetensors"
    callbacks = [NaNGuard(),
                 ValidationScore(data.splits.valid, data.source_tokenizer,
                                 data.target_tokenizer, config.eval_every,
                                 _print if table else None),
                 SaveTranslatorCheckpoint(checkpoint, config.to_dict(), data.source_tokenizer,
                                          data.target_tokenizer), *callbacks]
    if config.clip_grad > 0:
        callbacks.append(GradientClipping(config.clip_grad))
    if progress is not False:
        callbacks.append(ProgressBar(disable=None if progress is None else False))
    if table:
        callbacks.append(EpochTable())
    if plots:
        callbacks.append(LearningCurves(out, title=f"{tr.describe(config)} on "
                                                   f"{Path(config.dataset).name}"))
    learner = Learner(model, batches["train"], batches["valid"], tr.build_loss(config),
                      optimizer, scheduler, callbacks=callbacks, scheduler_interval="batch",
                      device=device)
    if resume is not None:
        learner.load_checkpoint(resume)
        log(f"resumed from {resume} after epoch {learner.epochs_done} (step {learner.step})")
    fit_start, first_epoch, first_step = time.perf_counter(), learner.epochs_done, learner.step
    learner.fit(config.epochs)
    fit_seconds = time.perf_counter() - fit_start

    evaluation_start = time.perf_counter()
    test = data.splits.test
    greedy, hypotheses, references = _scores(model, data, test, beam=1, length_penalty=0.0,
                                             device=device)
    figures = greedy
    if config.beam > 1:
        figures, hypotheses, references = _scores(model, data, test, beam=config.beam,
                                                  length_penalty=config.length_penalty,
                                                  device=device)
    valid, _, _ = _scores(model, data, data.splits.valid, beam=config.beam,
                          length_penalty=config.length_penalty, device=device)
    steps = learner.step - first_step
    results = {
        "model": "translator",
        "network": tr.describe(config),
        "dataset": config.dataset,
        "description": data.description,
        "vocabulary": {"english": len(data.source_tokenizer),
                       "french": len(data.target_tokenizer)},
        "sizes": {name: {"pairs": len(part), "sentences": len(part.sources)}
                  for name, part in zip(("train", "valid", "test"), data.splits)},
        "unknown_english_words": data.unknown,
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": config.to_dict(),
        "test": {**figures, "beam": config.beam, "length_penalty": config.length_penalty},
        "test_greedy": greedy,
        "valid": valid,
        "examples": [{"english": s, "translation": h, "references": r,
                      "unknown_words": data.source_tokenizer.unknown_words(s)}
                     for s, h, r in list(zip(test.sources, hypotheses, references))[:8]],
        "final_epoch": learner.history.last,
        "epochs_done": learner.epochs_done,
        "epochs_this_run": learner.epochs_done - first_epoch,
        "steps": learner.step,
        "steps_this_run": steps,
        "fit_seconds": fit_seconds,
        "evaluation_seconds": time.perf_counter() - evaluation_start,
        "total_seconds": time.perf_counter() - start,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "checkpoint": str(checkpoint),
        "history": learner.history.epochs,
    }
    results["files"] = [str(p) for cb in callbacks if isinstance(cb, LearningCurves)
                        for p in cb.paths]
    write_json_atomic(out / "results.json", results)
    return results


def _summary(results: dict) -> str:
    test, greedy = results["test"], results["test_greedy"]
    parts = [f"test ({test['sentences']} English sentences, {test['references']} references): "
             f"chrF {test['chrf']:.2f}, BLEU {test['bleu']:.2f}, exact match "
             f"{test['exact_match']:.1%} (beam {test['beam']}; greedy: chrF {greedy['chrf']:.2f}, "
             f"BLEU {greedy['bleu']:.2f}, exact {greedy['exact_match']:.1%})"]
    done, this_run = results["epochs_done"], results["epochs_this_run"]
    if this_run == 0:
        parts.append(f"no epochs left: the run was complete after {done} epochs")
    else:
        parts.append(f"{this_run} epochs ({results['steps_this_run']} steps) in "
                     f"{results['fit_seconds']:.1f}s")
    return ", ".join(parts)


def _resume_hint(args: argparse.Namespace, out: Path) -> str:
    checkpoint = out / "checkpoint.safetensors"
    if not checkpoint.is_file():
        return "interrupted before the first epoch ended; no checkpoint to resume from"
    command = ["handgrad", "train", "translator", "--resume", str(checkpoint)]
    for flag, value, default in (("--epochs", args.epochs, None), ("--device", args.device, "cpu"),
                                 ("--threads", args.threads, 1),
                                 ("--data-root", args.data_root, None), ("--out", args.out, None)):
        if value != default:
            command += [flag, str(value)]
    command += [flag for flag, on in (("--quiet", args.quiet), ("--no-plots", args.no_plots))
                if on]
    return f"interrupted; resume from the last checkpoint with: {shlex.join(command)}"


def run(args: argparse.Namespace) -> int:
    from handgrad.data.datasets._files import DataFileError
    from handgrad.train import CheckpointError, NonFiniteLossError, load_state

    command = "handgrad train translator"
    saved = None
    try:
        set_threads(args.threads)
        if args.resume:
            state = load_state(args.resume)
            saved = state.get("config")
            if saved is None or "tokenizers" not in state:
                raise CheckpointError(f"{args.resume} holds no translator config and "
                                      f"tokenizers: it was not written by `{command}`")
        config = config_from_args(args, saved)
        resolve_device(args.device)
    except (ValueError, FileNotFoundError) as error:  # CheckpointError is a ValueError
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
    elif args.resume:
        out = Path(args.resume).parent
    else:
        out = Path(f"runs/translator-{Path(config.dataset).stem}")
    print(f"training {tr.describe(config)} on {config.dataset} ({config.optimizer}, lr "
          f"{config.lr:g}, warm-up {config.warmup_steps} then {config.scheduler}, "
          f"{config.epochs} epochs, batch {config.batch_size}, label smoothing "
          f"{config.label_smoothing:g}) on {args.device}; writing to {out}/")
    try:
        results = train(config, out, device=args.device, resume=args.resume,
                        data_root=args.data_root, progress=False if args.quiet else None,
                        table=not args.quiet, plots=not args.no_plots)
    except NonFiniteLossError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, DataFileError, CheckpointError, ValueError) as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: {_resume_hint(args, out)}", file=sys.stderr)
        return 130
    print(_summary(results))
    for example in results["examples"]:
        unknown = (f"; <unk>: {', '.join(example['unknown_words'])}"
                   if example["unknown_words"] else "")
        print(f"  {example['english']}  ->  {example['translation']}   "
              f"(references: {' | '.join(example['references'])}{unknown})")
    written = [Path(f).name for f in results["files"]] + ["checkpoint.safetensors",
                                                          "results.json"]
    print(f"wrote {', '.join(written)} to {out}/")
    return 0
