"""`handgrad demo`: the tour in one command, offline, a few minutes on a 2-core laptop CPU.

1. the scalar engine (handgrad.scalar): micrograd's MLP(2, [16, 16, 1]) on 100 moons,
   100 steps of full-batch SGD on Values, one number at a time;
2. the tensor engine: the reference MLPs of handgrad.models on four datasets, with the
   Learner (clusters, a noisy parabola, scikit-learn's 8x8 digits, 5,000 MNIST digits);
3. a convolutional network: the reference LeNet-5 on the 5,000 MNIST digits, trained on
   augmented images (models/cnn.py), with a grid of the test digits it gets wrong.
4. a recurrent network: a one-layer char-LSTM (models/char_rnn.py) on tiny-shakespeare,
   trained with truncated BPTT, its validation nats per character and a 200-character
   sample. tinyshakespeare.txt is the one file the demo cannot find offline: where it
   is not found ($HANDGRAD_DATA, the cache; `handgrad train char-rnn --download` fetches
   it), the row says "skipped" and why, and the demo goes on.
5. attention: a small character-level GPT (models/gpt.py) on the same text, its
   validation nats per character and a sample streamed through its KV cache; and an
   English -> French Transformer (models/translator.py) on the 5,000 Tatoeba pairs,
   its held-out chrF and a few translations. Each needs its file (tinyshakespeare.txt,
   eng-fra-tatoeba-5k.tsv) and is skipped, saying why, where it is not found.

It prints one table (dataset, model, result, target, time) and writes every plot
(learning curves, confusion matrices, the regression fit, decision boundaries) under
one folder, one sub-folder per dataset, with each run's checkpoint and results.json.
`--quick` trains for a moment only (for CI: it checks that everything runs, not the
figures). The full demo exits with status 1 when a result misses its target.

Left out: MNIST from the IDX files (not installed with any package; use
`handgrad train mlp --dataset mnist`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

# The tensor-engine part of the demo: (run name, what the table calls the figure,
# target). A name is a dataset of the MLP's recipes, or "lenet-DATASET" for the CNN's.
TENSOR_RUNS = (
    ("clusters", "test accuracy", ">= 98%"),
    ("regression", "test MSE", "< 0.375 (1.5 x noise variance 0.25)"),
    ("digits", "test accuracy", ">= 97.5% (359 held out, 20%)"),
    ("mnist5k", "test accuracy", ">= 93.5% (1,000 held out)"),
    ("lenet-mnist5k", "test accuracy", ">= 98.0% (1,000 held out)"),
)
_TARGETS = {"clusters": lambda r: r >= 0.98, "regression": lambda r: r < 0.375,
            "digits": lambda r: r >= 0.975, "mnist5k": lambda r: r >= 0.935,
            "lenet-mnist5k": lambda r: r >= 0.98, "moons": lambda r: r == 1.0}
# The recurrent part: a small char-LSTM on tiny-shakespeare (skipped, and said so, when
# tinyshakespeare.txt is not found: it is the one file the demo cannot find offline).
CHAR_TARGET = ("valid nats/char", "<= 2.0 (uniform over 65 characters: 4.17)")
_TARGETS["char-lstm"] = lambda r: r is None or r <= 2.0
# The attention part: a small GPT on the same text, a small translator on Tatoeba.
GPT_TARGET = ("valid nats/char", "<= 2.1 (uniform over 65 characters: 4.17)")
_TARGETS["gpt"] = lambda r: r is None or r <= 2.1
TRANSLATOR_TARGET = ("test chrF", ">= 25 (the full recipe: 52.9)")
_TARGETS["translator"] = lambda r: r is None or r >= 25
_STEPS = 4 + len(TENSOR_RUNS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings (a few steps and 1 epoch each), under 30 s: "
                             "checks that everything runs, not the figures")
    parser.add_argument("--out", default="runs/demo", metavar="DIR",
                        help="folder for every plot, checkpoint and results (default runs/demo)")
    from handgrad.models.options import add_common_arguments

    add_common_arguments(parser, threads=1, device="where the tensor models train: cpu, "
                         "cuda or cuda:N (default cpu)")
    parser.add_argument("--verbose", action="store_true",
                        help="print every run's per-epoch table")


def _scalar_moons(out: Path, quick: bool) -> dict:
    """micrograd's moons demo on handgrad.scalar (see handgrad/scalar/train.py)."""
    from handgrad.scalar.train import plot_decision_boundary, train_moons

    steps, samples = (15, 40) if quick else (100, 100)
    start = time.perf_counter()
    model, xs, ys, history = train_moons(steps=steps, n_samples=samples)
    seconds = time.perf_counter() - start
    loss, accuracy = history[-1]
    path = plot_decision_boundary(model, xs, ys, out / "moons_scalar" / "decision_boundary.png",
                                  resolution=0.25 if quick else 0.1)
    return {"dataset": "moons", "model": "scalar MLP 2-16-16-1 (Value)",
            "figure": "train accuracy", "value": accuracy, "text": f"{accuracy:.1%}",
            "target": "100%", "seconds": seconds, "files": [str(path)],
            "detail": f"{samples} points, {steps} full-batch SGD steps, hinge loss {loss:.4f}"}


def _config(name: str, quick: bool):
    """The reference recipe of a run; `quick`: one epoch of it."""
    if name.startswith("lenet-"):
        from handgrad.models.cnn import reference_config

        config = reference_config(name.removeprefix("lenet-"), model="lenet")
    else:
        from handgrad.models.mlp import REFERENCE_CONFIGS

        config = REFERENCE_CONFIGS[name]
    return replace(config, epochs=1) if quick else config


def _tensor_run(name: str, figure: str, target: str, out: Path, quick: bool, device: str,
                verbose: bool) -> dict:
    from handgrad.models.cli import train

    config = _config(name, quick)
    results = train(config, out / name, device=device, progress=None, table=verbose,
                    log=lambda *a: None)
    test = results["test"]
    value = test["accuracy"] if results["metric"] == "accuracy" else test["mse"]
    text = f"{value:.2%}" if results["metric"] == "accuracy" else f"{value:.4f}"
    if results["model"] == "cnn":
        from handgrad.models.cnn import describe

        model = describe(config) + (" augmented" if config.augment else "")
    else:
        model = f"MLP {'-'.join(str(w) for w in results['config']['hidden'])}"
        if config.dropout:
            model += f" dropout {config.dropout:g}"
    model += f", {config.optimizer} {config.scheduler}, {results['epochs_done']} ep"
    return {"name": name, "dataset": config.dataset, "model": model, "figure": figure,
            "value": value,
            "text": text, "target": target, "seconds": results["fit_seconds"],
            "files": results["files"], "detail": results["description"]}


def _char_lm(out: Path, quick: bool, device: str, verbose: bool) -> dict:
    """A small char-LSTM (models/char_rnn.py) on tiny-shakespeare, and a sample of it;
    `quick`: 20,000 characters and a tiny network."""
    from handgrad.data.datasets._files import DataFileError
    from handgrad.data.datasets.text import tiny_shakespeare
    from handgrad.models.char_rnn import CharRNNConfig, describe
    from handgrad.models.char_rnn_cli import train

    config = CharRNNConfig(hidden=32 if quick else 128, layers=1, embedding=32,
                           seq_len=32 if quick else 64, batch_size=16 if quick else 32,
                           lr=1e-2 if quick else 4e-3, epochs=1 if quick else 2,
                           sample_length=200)
    row = {"name": "char-lstm", "dataset": "tiny-shakespeare", "model": describe(config),
           "figure": CHAR_TARGET[0], "target": CHAR_TARGET[1]}
    try:
        text = tiny_shakespeare()
    except (FileNotFoundError, DataFileError) as error:  # MissingDataError: not found
        return {**row, "value": None, "text": "skipped", "seconds": 0.0, "files": [],
                "detail": f"skipped: {str(error).splitlines()[0]} (get it with `handgrad "
                          f"train char-rnn --download`, or set HANDGRAD_DATA)"}
    text = text[:20_000] if quick else text
    results = train(config, out / "char-lstm", device=device, text=text, progress=None,
                    table=verbose, samples=False, log=lambda *a: None)
    nats = results["valid"]["nats_per_char"]
    return {**row, "model": f"{row['model']}, {results['epochs_done']} ep", "value": nats,
            "text": f"{nats:.3f}", "seconds": results["fit_seconds"],
            "files": results["files"], "sample": results["sample"],
            "detail": results["description"]}


def _skipped(row: dict, error: Exception, command: str) -> dict:
    return {**row, "value": None, "text": "skipped", "seconds": 0.0, "files": [],
            "detail": f"skipped: {str(error).splitlines()[0]} (set HANDGRAD_DATA, or see "
                      f"`{command} --help`)"}


def _gpt(out: Path, quick: bool, device: str, verbose: bool) -> dict:
    """A small GPT (models/gpt.py) on tiny-shakespeare, and a sample of it (the sample
    streams through the KV cache); `quick`: 20,000 characters and a tiny network."""
    from handgrad.data.datasets._files import DataFileError
    from handgrad.data.datasets.text import tiny_shakespeare
    from handgrad.models.char_rnn_cli import train
    from handgrad.models.gpt import GPTConfig, describe

    config = GPTConfig(n_layer=1 if quick else 2, n_head=2 if quick else 4,
                       n_embd=32 if quick else 64, block_size=32 if quick else 64,
                       batch_size=16 if quick else 32, steps_per_epoch=20 if quick else 500,
                       epochs=1 if quick else 2, warmup_steps=10 if quick else 50,
                       lr=3e-3, min_lr=3e-4, sample_length=200)
    row = {"name": "gpt", "dataset": "tiny-shakespeare", "model": describe(config),
           "figure": GPT_TARGET[0], "target": GPT_TARGET[1]}
    try:
        text = tiny_shakespeare()
    except (FileNotFoundError, DataFileError) as error:
        return _skipped(row, error, "handgrad train gpt")
    text = text[:20_000] if quick else text
    results = train(config, out / "gpt", device=device, text=text, progress=None,
                    table=verbose, samples=False, log=lambda *a: None)
    nats = results["valid"]["nats_per_char"]
    return {**row, "model": f"{row['model']}, {results['steps']} steps", "value": nats,
            "text": f"{nats:.3f}", "seconds": results["fit_seconds"],
            "files": results["files"], "sample": results["sample"],
            "detail": results["description"]}


def _translator(out: Path, quick: bool, device: str, verbose: bool) -> dict:
    """A small English -> French Transformer (models/translator.py) on the Tatoeba
    pairs, its held-out chrF (greedy) and its first translations; `quick`: a tiny one."""
    from handgrad.data.datasets._files import DataFileError
    from handgrad.models.translator import TranslatorConfig, describe
    from handgrad.models.translator_cli import train

    config = TranslatorConfig(d_model=32 if quick else 128, heads=2 if quick else 4,
                              encoder_layers=1 if quick else 2,
                              decoder_layers=1 if quick else 2,
                              feedforward=64 if quick else 512, dropout=0.1,
                              epochs=1 if quick else 12, warmup_steps=30 if quick else 300,
                              beam=1, eval_every=0)
    row = {"name": "translator", "dataset": "eng-fra tatoeba-5k", "model": describe(config),
           "figure": TRANSLATOR_TARGET[0], "target": TRANSLATOR_TARGET[1]}
    try:
        results = train(config, out / "translator", device=device, progress=None,
                        table=verbose, log=lambda *a: None)
    except (FileNotFoundError, DataFileError) as error:
        return _skipped(row, error, "handgrad train translator")
    chrf = results["test"]["chrf"]
    examples = "\n".join(f"        {e['english']}  ->  {e['translation']}"
                         for e in results["examples"][:5])
    return {**row, "model": f"{row['model']}, {results['epochs_done']} ep", "value": chrf,
            "text": f"{chrf:.1f} (exact {100 * results['test']['exact_match']:.1f}%)",
            "seconds": results["fit_seconds"], "files": results["files"],
            "sample": examples, "detail": results["description"]}


def _met(row: dict) -> bool:
    return _TARGETS[row.get("name", row["dataset"])](row["value"])


def _table(rows: list[dict], quick: bool) -> str:
    header = ["dataset", "model", "result", "target", "train time"]
    lines = [[r["dataset"], r["model"], f"{r['figure']} {r['text']}",
              r["target"] + ("" if quick or r["value"] is None else
                             (" ok" if _met(r) else " MISSED")),
              f"{r['seconds']:.1f}s"] for r in rows]
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    text = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
            "  ".join("-" * w for w in widths)]
    text += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in lines]
    return "\n".join(line.rstrip() for line in text)


def run(args: argparse.Namespace) -> int:
    import sys

    import torch

    from handgrad.models.options import resolve_device, set_threads

    try:
        resolve_device(args.device)
        set_threads(args.threads)
    except ValueError as error:
        print(f"handgrad demo: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    mode = "quick check (tiny settings)" if args.quick else "full demo"
    print(f"handgrad demo: {mode}, {torch.get_num_threads()} torch threads, writing to {out}/")
    rows = []
    print(f"[1/{_STEPS}] scalar engine: MLP(2, [16, 16, 1]) of Values on the moons ...", flush=True)
    rows.append(_scalar_moons(out, args.quick))
    print(f"      {rows[-1]['figure']} {rows[-1]['text']} in {rows[-1]['seconds']:.1f}s")
    for i, (name, figure, target) in enumerate(TENSOR_RUNS, start=2):
        what = (f"LeNet-5 on {name.removeprefix('lenet-')}" if name.startswith("lenet-")
                else f"MLP on {name}")
        print(f"[{i}/{_STEPS}] tensor engine: {what} ...", flush=True)
        rows.append(_tensor_run(name, figure, target, out, args.quick, args.device,
                                args.verbose))
        print(f"      {rows[-1]['figure']} {rows[-1]['text']} in {rows[-1]['seconds']:.1f}s")
    print(f"[{_STEPS - 2}/{_STEPS}] tensor engine: a char-LSTM on tiny-shakespeare ...", flush=True)
    rows.append(_char_lm(out, args.quick, args.device, args.verbose))
    if rows[-1]["value"] is None:
        print(f"      {rows[-1]['detail']}")
    else:
        print(f"      {rows[-1]['figure']} {rows[-1]['text']} in {rows[-1]['seconds']:.1f}s; "
              f"its sample:\n{rows[-1].get('sample', '')}")
    for step, (what, part) in enumerate(
            (("a character-level GPT on tiny-shakespeare", _gpt),
             ("an English -> French Transformer on Tatoeba", _translator)), start=_STEPS - 1):
        print(f"[{step}/{_STEPS}] attention: {what} ...", flush=True)
        rows.append(part(out, args.quick, args.device, args.verbose))
        if rows[-1]["value"] is None:
            print(f"      {rows[-1]['detail']}")
        else:
            print(f"      {rows[-1]['figure']} {rows[-1]['text']} in "
                  f"{rows[-1]['seconds']:.1f}s:\n{rows[-1].get('sample', '')}")
    total = time.perf_counter() - start
    table = _table(rows, args.quick)
    print()
    print(table)
    print(f"\ntotal time {total:.1f}s; plots, checkpoints and results.json per run under {out}/")
    summary = {"quick": args.quick, "total_seconds": total, "threads": torch.get_num_threads(),
               "runs": rows}
    (out / "demo_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "demo_results.txt").write_text(table + f"\n\ntotal time {total:.1f}s\n")
    missed = [] if args.quick else [r.get("name", r["dataset"]) for r in rows
                                    if not _met(r)]
    if missed:  # the exit status says so too, for scripts and CI
        print(f"targets missed: {', '.join(missed)}")
        return 1
    return 0
