"""The one timing helper every benchmark uses: alternate two callables, report medians.

`compare(handgrad_fn, reference_fn, ...)` warms both up, then runs `rounds` rounds; in
each round it times `inner` calls of one and then `inner` calls of the other (the
order alternates between rounds so neither always runs on a warmer cache). The figure
of merit is the median over rounds of reference_time / handgrad_time.
"""

from __future__ import annotations

import json
import platform
import statistics
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
