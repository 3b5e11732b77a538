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

Run: ``handgrad bench data [--workload sleep,cpu] [--workers 0,1,2,4] [--json PATH]``
(or ``python -m handgrad.bench.data``, the same flags). ``--quick`` runs a tiny
setting that checks the benchmark works (CI), not what workers buy.

Unlike the other benchmarks here it times handgrad alone (workers against no workers),
with no torch reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings

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


def _loader(dataset, batch_size: int, num_workers: int, **options) -> DataLoader:
    """A DataLoader, without the warning for more workers than CPUs: here that is the
    point (overlapping sleeps), and the table's header says how many CPUs there are."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="DataLoader: num_workers=")
        return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, **options)


def measure(workload: str, workers: list[int], items: int, batch_size: int, item_ms: float,
            repeats: int) -> list[dict]:
    spin = calibrate_spin(item_ms) if workload == "cpu" else 0
    dataset = ExpensiveDataset(items, workload, item_ms, spin)
    rows = []
    for num_workers in workers:
        cold = [_epoch_seconds(_loader(dataset, batch_size, num_workers))
                for _ in range(repeats)]
        row = {"workload": workload, "num_workers": num_workers, "cold_s": statistics.median(cold)}
        if num_workers > 0:
            loader = _loader(dataset, batch_size, num_workers, persistent_workers=True)
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


def machine() -> dict:
    """What the figures were measured on (the load average matters: workers compete for
    the same cores as everything else)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    return {"cpu": platform.machine(), "cpus_usable": cpus,
            "python": platform.python_version(), "torch": torch.__version__,
            "load_average": round(os.getloadavg()[0], 2)}


def _machine_line(info: dict) -> str:
    return (f"{info['cpu']}, {info['cpus_usable']} CPUs usable, Python {info['python']}, "
            f"torch {info['torch']}, load average {info['load_average']:.1f}")


# --quick: two workloads, a handful of items, 0 and 2 workers, one epoch each.
_QUICK = {"workers": "0,2", "items": 16, "batch_size": 4, "item_ms": 2.0, "repeats": 1}


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
    parser.add_argument("--quick", action="store_true",
                        help="16 items of 2 ms, 0 and 2 workers, one epoch: checks the "
                             "benchmark runs, not the speed-up")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")


def _settings(args: argparse.Namespace) -> dict:
    settings = {"workloads": args.workload, "workers": args.workers, "items": args.items,
                "batch_size": args.batch_size, "item_ms": args.item_ms,
                "repeats": args.repeats}
    if args.quick:
        settings.update(_QUICK)
    workloads = [w for w in settings["workloads"].split(",") if w]
    unknown = sorted(set(workloads) - {"sleep", "cpu"})
    try:
        workers = [int(w) for w in str(settings["workers"]).split(",")]
    except ValueError:
        workers = []
    if unknown or not workloads:
        raise ValueError(f"--workload: choose sleep and/or cpu, got {settings['workloads']!r}")
    if not workers or any(w < 0 for w in workers):
        raise ValueError(f"--workers wants comma-separated counts >= 0 such as 0,1,2,4, got "
                         f"{settings['workers']!r}")
    if min(settings["items"], settings["batch_size"], settings["repeats"]) < 1:
        raise ValueError("--items, --batch-size and --repeats must be positive")
    return {**settings, "workloads": workloads, "workers": workers}


def run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ValueError as error:
        print(f"handgrad bench data: {error}", file=sys.stderr)
        return 2
    results = []
    for workload in settings["workloads"]:
        results += measure(workload, settings["workers"], settings["items"],
                           settings["batch_size"], settings["item_ms"], settings["repeats"])
    info = machine()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "data", "quick": args.quick, "machine": info,
                       "settings": settings, "results": results}, f, indent=2)
            f.write("\n")
    print("# handgrad bench data: DataLoader workers on an expensive __getitem__"
          + (" (--quick: checks it runs, not the speed-up)" if args.quick else ""))
    print(f"# {_machine_line(info)}")
    print(f"# {settings['items']} items of {settings['item_ms']} ms, batch size "
          f"{settings['batch_size']}, median of {settings['repeats']} epochs")
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
