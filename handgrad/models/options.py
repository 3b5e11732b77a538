"""The command-line options that `handgrad train`, `handgrad demo` and `handgrad bench`
share (--device, --threads, --seed, --json), defined once, and the checks of two of them.

    add_common_arguments(parser, device="where to train", threads=1, seed=..., json=True)
    set_threads(args.threads)           torch's CPU threads (0 or None: torch's default)
    resolve_device(args.device)         a torch.device, or a ValueError that says why
    add_run_arguments(parser, ...)      --out, --resume, --data-root, --download, --quiet,
                                        --no-plots of the language-model training commands

This file imports no torch at module level: `handgrad bench scalar` (the stdlib-only
engine against micrograd) uses it too. Left out: each command's own options.
"""

from __future__ import annotations

import argparse

__all__ = ["add_common_arguments", "add_run_arguments", "set_threads", "resolve_device",
           "UNSET"]

UNSET = object()  # "this command has no such option"

_THREADS_HELP = {
    1: "torch CPU threads (default 1: these models are small, and on a busy machine two "
       "threads can be 20x slower than one; 0: torch's default)",
    None: "torch intra-op threads for both libraries (default: torch's own choice)",
}


def add_common_arguments(parser: argparse.ArgumentParser, *, device: str | None = None,
                         threads=UNSET, seed=UNSET, seed_help: str = "the random seed",
                         json: str | None = None) -> None:
    """Add the shared options a command has: `device` is the help of --device (default
    cpu); `threads` the default of --threads (1 for the training commands, None for the
    benchmarks); `seed` the default of --seed; `json` the help of --json PATH."""
    if device is not None:
        parser.add_argument("--device", default="cpu", help=device)
    if threads is not UNSET:
        parser.add_argument("--threads", type=int, default=threads,
                            help=_THREADS_HELP.get(threads, "torch CPU threads"))
    if seed is not UNSET:
        parser.add_argument("--seed", type=int, default=seed, help=seed_help)
    if json is not None:
        parser.add_argument("--json", metavar="PATH", help=json)


def add_run_arguments(parser: argparse.ArgumentParser, *, default_out: str,
                      resume: str = "continue the run saved in this checkpoint (its settings "
                                    "are used; --epochs may raise the epoch count with "
                                    "--scheduler none)",
                      data_root: str = "folder with tinyshakespeare.txt (default "
                                       "$HANDGRAD_DATA, then ~/.cache/handgrad)",
                      download: str = "download tiny-shakespeare (1.1 MB, sha256-checked) "
                                      "when it is not found",
                      quiet: str = "no progress bar, no per-epoch table and no samples") -> None:
    """Add the options of a training run's files and output: --out DIR (`default_out`
    names its default), --resume CKPT, --data-root DIR, --download, --threads (default 1),
    --quiet and --no-plots; each help may be given."""
    parser.add_argument("--out", metavar="DIR",
                        help=f"folder for the curves, checkpoint and results.json (default "
                             f"{default_out})")
    parser.add_argument("--resume", metavar="CKPT", help=resume)
    parser.add_argument("--data-root", metavar="DIR", help=data_root)
    parser.add_argument("--download", action="store_true", help=download)
    add_common_arguments(parser, threads=1)
    parser.add_argument("--quiet", action="store_true", help=quiet)
    parser.add_argument("--no-plots", action="store_true", help="write no PNG files")


def set_threads(threads: int | None) -> None:
    """--threads: torch's CPU threads (0 or None keeps torch's default); refuses a negative
    count."""
    import torch

    if threads is not None and threads < 0:
        raise ValueError(f"--threads must be >= 0 (0: torch's default), got {threads}")
    if threads:
        torch.set_num_threads(threads)


def resolve_device(name: str):
    """--device as a torch.device; a ValueError that says why when torch does not know the
    name or the device is not there."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"--device {name}: not a device torch knows; use cpu, cuda or "
                         f"cuda:N ({error})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here (torch "
                         f"{torch.__version__}, no GPU found); use --device cpu")
    return device
