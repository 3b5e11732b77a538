"""The one timing helper every benchmark uses: alternate two callables, report medians.

`compare(handgrad_fn, reference_fn, ...)` warms both up, then runs `rounds` rounds; in
each round it times `inner` calls of one and then `inner` calls of the other (the
order alternates between rounds so neither always runs on a warmer cache). The figure
of merit is the median over rounds of reference_time / handgrad_time.

`add_case_arguments` and `run_cases` are the command side that the per-case benchmarks
(bench cnn, bench rnn) share: their flags, the checks of them, the table and the JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch


def synchronizer(device: str | torch.device) -> Callable[[], None]:
    """A function that waits for queued GPU work on `device` (a no-op on CPU)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def compare(handgrad_fn: Callable[[], object], reference_fn: Callable[[], object], *,
            rounds: int = 15, inner: int = 10, warmup: int = 3,
            device: str | torch.device = "cpu") -> dict:
    """Time both callables alternately; return medians (seconds per call) and the ratio."""
    sync = synchronizer(device)

    def timed(fn):
        sync()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        return (time.perf_counter() - start) / inner

    for _ in range(warmup):
        handgrad_fn()
        reference_fn()
    ours, theirs, ratios = [], [], []
    for r in range(rounds):
        if r % 2:
            t_ref, t_hg = timed(reference_fn), timed(handgrad_fn)
        else:
            t_hg, t_ref = timed(handgrad_fn), timed(reference_fn)
        ours.append(t_hg)
        theirs.append(t_ref)
        ratios.append(t_ref / t_hg)
    return {
        "handgrad_s": statistics.median(ours),
        "reference_s": statistics.median(theirs),
        "ratio": statistics.median(ratios),
        "rounds": rounds,
        "inner": inner,
    }


def machine(device: str | torch.device = "cpu") -> dict:
    """What the figures were measured on."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def write_json(path: str | None, payload: dict) -> None:
    """Write a benchmark's figures as JSON when --json PATH was given."""
    if path:
        with open(path, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")


def add_case_arguments(parser: argparse.ArgumentParser, *, only_examples: str,
                       default_rounds: int) -> None:
    """--device, --threads, --only, --rounds, --quick, --json of a per-case benchmark."""
    from handgrad.models.options import add_common_arguments

    add_common_arguments(parser, device="cpu or cuda (default: cpu)")
    add_common_arguments(parser, threads=None)
    parser.add_argument("--only", metavar="TEXT",
                        help=f"run only the cases whose name contains TEXT (e.g. {only_examples})")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"timing rounds per case (default {default_rounds}; --quick: 2)")
    parser.add_argument("--quick", action="store_true",
                        help="a couple of iterations only: checks the benchmark runs, not speed")
    add_common_arguments(parser, json="also write the figures as JSON")


def run_cases(args: argparse.Namespace, benchmark: str, run_all: Callable[..., dict], *,
              rounds: int, inner: int, warmup: int) -> int:
    """The run() of a per-case benchmark: check the flags, call
    run_all(device, rounds, inner, warmup, only) -> {name: compare(...) + "target"},
    print the table (a None target prints "-"), write --json. Exit status 2 on a bad flag."""
    from handgrad.models.options import resolve_device, set_threads

    try:
        device = resolve_device(args.device)
        set_threads(args.threads)
        if args.rounds is not None and args.rounds < 1:
            raise ValueError(f"--rounds must be positive, got {args.rounds}")
    except ValueError as error:
        print(f"handgrad bench {benchmark}: {error}", file=sys.stderr)
        return 2
    if args.quick:
        rounds, inner, warmup = 2, 1, 1
    rounds = args.rounds or rounds

    print(f"handgrad bench {benchmark} on {device}, {torch.get_num_threads()} threads  "
          "(forward + backward; ratio = torch_time / handgrad_time, above 1.0 handgrad is "
          "faster)")
    results = run_all(device, rounds, inner, warmup, args.only)
    width = max([34, *(len(name) for name in results)])
    print(f"{'case':<{width}} {'handgrad ms':>12} {'torch ms':>10} {'ratio':>7} {'target':>7}")
    for name, r in results.items():
        target = "-" if r["target"] is None else f"{r['target']:.1f}"
        mark = "" if r["target"] is None or r["ratio"] >= r["target"] else "  below target"
        print(f"{name:<{width}} {r['handgrad_s'] * 1e3:>12.3f} {r['reference_s'] * 1e3:>10.3f} "
              f"{r['ratio']:>7.2f} {target:>7}{mark}")
    write_json(args.json, {"benchmark": benchmark, "quick": args.quick,
                           "machine": machine(device), "results": results})
    return 0
