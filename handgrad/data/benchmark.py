"""Benchmark: how much DataLoader worker processes speed up an expensive ``__getitem__``.

Two workloads stand for the two reasons items are slow:

- ``sleep``: each item waits ``--item-ms`` (reading a file, decoding on another device):
  workers overlap the waits, so the speed-up can exceed the number of cores;
- ``cpu``: each item does ``--item-ms`` of pure-Python arithmetic (augmentation,
  tokenising): the speed-up is bounded by the number of free cores.

For each number of workers it times whole epochs, worker start-up included ("cold",
what a training loop pays each epoch by default), and epochs on already-running
workers (``persistent_workers=True``, "warm"). It reports the median of ``--repeats``
epochs and the speed-up over ``num_workers=0``.

Run: ``python -m handgrad.data.benchmark [--workload sleep,cpu] [--workers 0,1,2,4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

from handgrad.data.dataloader import DataLoader


def _spin(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def calibrate_spin(milliseconds: float) -> int:
    """Iterations of ``_spin`` that take about ``milliseconds`` on this machine."""
    iterations = 20_000
    while True:
        start = time.perf_counter()
        _spin(iterations)
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            return max(1, int(iterations * milliseconds / 1000 / elapsed))
        iterations *= 2


class ExpensiveDataset:
    """``n`` items of a 28x28 float image and a label; each costs ``item_ms``."""

    def __init__(self, n: int, workload: str, item_ms: float, spin_iterations: int) -> None:
        self.n, self.workload, self.item_ms = n, workload, item_ms
        self.spin_iterations = spin_iterations

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if self.workload == "sleep":
            time.sleep(self.item_ms / 1000)
        else:
            _spin(self.spin_iterations)
        return torch.full((1, 28, 28), float(index)), index


def _epoch_seconds(loader) -> float:
    start = time.perf_counter()
    for _batch in loader:
        pass
    return time.perf_counter() - start


def measure(workload: str, workers: list[int], items: int, batch_size: int, item_ms: float,
            repeats: int) -> list[dict]:
    spin = calibrate_spin(item_ms) if workload == "cpu" else 0
    dataset = ExpensiveDataset(items, workload, item_ms, spin)
    rows = []
    for num_workers in workers:
        cold = [_epoch_seconds(DataLoader(dataset, batch_size=batch_size,
                                          num_workers=num_workers)) for _ in range(repeats)]
        row = {"workload": workload, "num_workers": num_workers, "cold_s": statistics.median(cold)}
        if num_workers > 0:
            loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                persistent_workers=True)
            _epoch_seconds(loader)  # starts the workers
            row["warm_s"] = statistics.median(_epoch_seconds(loader) for _ in range(repeats))
            loader._iterator._shutdown()
        else:
            row["warm_s"] = row["cold_s"]
        rows.append(row)
    serial = rows[0]["cold_s"] if workers and workers[0] == 0 else None
    for row in rows:
        row["items_per_s"] = items / row["warm_s"]
        if serial:
            row["speedup_cold"] = serial / row["cold_s"]
            row["speedup_warm"] = serial / row["warm_s"]
    return rows


def machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    return (f"{platform.machine()}, {cpus} CPUs usable, Python {platform.python_version()}, "
            f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", default="sleep,cpu",
                        help="comma-separated workloads: sleep (I/O-like) and/or cpu")
    parser.add_argument("--workers", default="0,1,2,4",
                        help="comma-separated numbers of workers; start with 0 for speed-ups")
    parser.add_argument("--items", type=int, default=256, help="items per epoch")
    parser.add_argument("--batch-size", type=int, default=16, help="items per batch")
    parser.add_argument("--item-ms", type=float, default=5.0,
                        help="cost of one __getitem__ in milliseconds")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per setting")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    workers = [int(w) for w in args.workers.split(",")]
    results = []
    for workload in args.workload.split(","):
        results += measure(workload, workers, args.items, args.batch_size, args.item_ms,
                           args.repeats)
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}, indent=2))
        return 0
    print(f"# {machine()}")
    print(f"# {args.items} items of {args.item_ms} ms, batch size {args.batch_size}, median "
          f"of {args.repeats} epochs")
    print("| workload | num_workers | epoch, cold (s) | speed-up | epoch, warm (s) | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['workload']} | {r['num_workers']} | {r['cold_s']:.3f} | "
              f"{r.get('speedup_cold', float('nan')):.2f}x | {r['warm_s']:.3f} | "
              f"{r.get('speedup_warm', float('nan')):.2f}x |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
