"""The `handgrad` command: one argparse front door for every subcommand.

Each subcommand lives in the module that owns its work; that module provides
`add_arguments(parser)` and `run(args) -> int` (the exit status). This file only wires
them together, so adding a command is one line in COMMANDS.

Bare `handgrad` lists the commands (exit status 0); `handgrad train` or `handgrad bench`
without a subcommand lists that group's subcommands and exits with status 2, as argparse
does for a missing required argument. `handgrad --version` prints the version. Ctrl-C
ends any command with one line instead of a traceback, and exit status 130 (a command
may print more first, e.g. `handgrad train mlp` says how to resume). Every command first
tunes glibc's malloc to keep freed memory for reuse (handgrad/_malloc.py;
HANDGRAD_MALLOC_TUNING=0 turns that off).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from handgrad._malloc import tune_allocator
from handgrad.models.registry import MODELS

# (words, module, one-line help). Modules are imported only when their command runs
# (or when --help needs their flags), so `handgrad graph` never imports torch.
COMMANDS: list[tuple[tuple[str, ...], str, str]] = [
    (("gradcheck",), "handgrad.testing.oracle",
     "check every registered op against torch and finite differences"),
    (("bench", "core"), "handgrad.bench.core",
     "per-op overhead and large matmul, handgrad vs torch autograd"),
    (("graph",), "handgrad.scalar.draw",
     "draw the computation graph of a small neuron (DOT, or SVG/PNG with Graphviz)"),
    (("train", "scalar-mlp"), "handgrad.scalar.train",
     "train the scalar engine's MLP on micrograd's moons demo or the lecture's four points"),
    (("bench", "scalar"), "handgrad.bench.scalar",
     "the moons training step, handgrad's Value vs micrograd's, median speed ratio"),
    (("bench", "mlp"), "handgrad.bench.mlp",
     "784-256-256-10 MLP training step vs PyTorch's nn + optim; FLOP rate vs matmuls"),
    # one `train NAME` per model of the registry (handgrad/models/registry.py)
    *((("train", entry.name), entry.command, entry.help) for entry in MODELS.values()),
    (("sample",), "handgrad.models.sample",
     "stream text from a gpt or char-rnn checkpoint (--prompt, --temperature, --top-k/p, --seed)"),
    (("translate",), "handgrad.models.translate",
     "English -> French with a trained translator checkpoint (a sentence, or --file; --beam)"),
    (("evaluate",), "handgrad.models.evaluate",
     "nats and bits per character, perplexity of a text under a gpt or char-rnn checkpoint"),
    (("bench", "cnn"), "handgrad.bench.cnn",
     "conv2d / max_pool2d forward+backward and a LeNet-5 training step vs torch's kernels"),
    (("bench", "rnn"), "handgrad.bench.rnn",
     "LSTM / GRU layer forward+backward over a sequence (T64 B32, H128 and H512) vs torch.nn"),
    (("bench", "transformer"), "handgrad.bench.transformer",
     "causal attention, a TransformerEncoderLayer and the GPT training step vs torch.nn"),
    (("bench", "data"), "handgrad.bench.data",
     "DataLoader worker processes on an expensive __getitem__: epoch time, speed-up"),
    (("bench", "ddp"), "handgrad.bench.ddp",
     "DistributedDataParallel steps/s over 1 and 2 processes (MLP, LeNet-5), all-reduce wait, "
     "vs torch's DDP"),
    (("coverage",), "handgrad.testing.coverage",
     "how much of torch's most used API (Tensor, torch.*, nn, nn.functional, optim) handgrad has"),
    (("demo",), "handgrad.demo",
     "the tour: scalar MLP on moons, tensor MLPs on clusters, regression, digits, MNIST-5k, "
     "LeNet-5 on MNIST-5k, a char-LSTM and a GPT on tiny-shakespeare, an English-French "
     "Transformer"),
]


def _version() -> str:
    """The installed distribution's version, else the package's own __version__."""
    from importlib import metadata

    try:
        return metadata.version("handgrad")
    except metadata.PackageNotFoundError:
        from handgrad import __version__

        return __version__


def _listing(group: str | None = None) -> str:
    """The commands (or one group's subcommands), each with its one-line help."""
    rows = [(" ".join(words if group is None else words[1:]), text)
            for words, _, text in COMMANDS if group is None or words[0] == group]
    width = max(len(name) for name, _ in rows)
    head = ("usage: handgrad COMMAND [options]  (handgrad COMMAND --help for its options)"
            if group is None else f"usage: handgrad {group} SUBCOMMAND [options]")
    lines = [head, "", "commands:" if group is None else "subcommands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in rows]
    return "\n".join(lines)


def _build_parser(only: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handgrad",
        description="handgrad: a deep-learning framework with hand-written gradients.",
    )
    parser.add_argument("--version", action="version", version=f"handgrad {_version()}",
                        help="print the version and exit")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for words, module, help_text in COMMANDS:
        sub = top
        if len(words) == 2:
            if words[0] not in groups:
                group_parser = top.add_parser(words[0], help=f"{words[0]} subcommands")
                groups[words[0]] = group_parser.add_subparsers(
                    dest=f"{words[0]}_command", metavar="SUBCOMMAND", required=True)
            sub = groups[words[0]]
        p = sub.add_parser(words[-1], help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if only is None or tuple(only[: len(words)]) == words:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(_listing())
        return 0
    groups = {words[0] for words, _, _ in COMMANDS if len(words) == 2}
    if len(argv) == 1 and argv[0] in groups:
        print(_listing(argv[0]))
        print(f"handgrad {argv[0]}: choose a subcommand", file=sys.stderr)
        return 2
    tune_allocator()  # keep freed memory for reuse: see handgrad/_malloc.py
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print(f"handgrad {' '.join(a for a in argv[:2] if not a.startswith('-'))}: "
              "interrupted", file=sys.stderr)
        return 130


def _run(argv: list[str]) -> int:
    # Import only the module of the command being run (all of them for top-level --help).
    words = tuple(a for a in argv[:2] if not a.startswith("-"))
    parser = _build_parser(only=words if words else ("",))
    args = parser.parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
