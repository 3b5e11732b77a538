"""`handgrad bench ddp`: data-parallel training steps over 1 and 2 processes (gloo on the
CPU, one thread each), handgrad's DistributedDataParallel against torch's own.

For each model (the 784-256-256-10 MLP of `bench mlp`, B64 a process; LeNet-5 on 28x28
of `bench cnn`, B32 a process) and each process count it times a training step
(zero_grad, forward, cross-entropy, backward with the gradient all-reduce, SGD step)
of handgrad.nn under handgrad's DistributedDataParallel and of the torch.nn twin under
torch.nn.parallel.DistributedDataParallel, alternating rounds, after warm-up, in the
same processes. It reports, for rank 0:

* steps/s of each, and the ratio torch_time / handgrad_time (above 1.0: handgrad is
  faster);
* the speed-up in examples/s over 1 process (the batch is per process, so 2 processes
  at the single process's step rate would be 2.0);
* the share of handgrad's step time spent waiting for the all-reduce: time inside the
  wait for the gradient buckets (comm.wait, wrapped here with a timer), over the step
  time. torch's wait happens inside its C++ reducer and is not measured.

All process counts run in one set of processes: the largest count is started once
(torch.multiprocessing, spawn) and the smaller ones run on a subgroup of the first
ranks while the others wait. Each process uses 1 thread; on a machine with fewer free
cores than processes the figures say more about the machine than about DDP.

Run: `handgrad bench ddp [--models mlp,lenet] [--processes 1,2] [--json PATH]`;
`--quick` runs a few tiny steps that check the benchmark works (CI), not its speed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import traceback

import torch

MODELS = ("mlp", "lenet")
_BATCH = {"mlp": 64, "lenet": 32}  # examples a process per step
_QUICK = {"batch": {"mlp": 8, "lenet": 4}, "rounds": 2, "inner": 2, "warmup": 1}
_FULL = {"rounds": 9, "inner": 10, "warmup": 5}


def _models(name: str):
    """(handgrad model, torch twin with the same weights, input shape of one example)."""
    import handgrad as hg
    from handgrad.bench import cnn, mlp

    torch.manual_seed(0)
    if name == "mlp":
        ours = hg.nn.MLP(mlp.SIZES[0], list(mlp.SIZES[1:-1]), mlp.SIZES[-1])
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(mlp.SIZES, mlp.SIZES[1:])):
            layers.append(torch.nn.Linear(fan_in, fan_out))
            if i < len(mlp.SIZES) - 2:
                layers.append(torch.nn.ReLU())
        theirs, shape = torch.nn.Sequential(*layers), (mlp.SIZES[0],)
    else:
        ours, theirs, shape = cnn.lenet(hg.nn), cnn.lenet(torch.nn), (1, 28, 28)
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    return ours, theirs, shape


class _WaitTimer:
    """Wraps handgrad.nn.parallel.comm.wait (what DistributedDataParallel calls for each
    bucket) and adds up the seconds spent in it."""

    def __init__(self):
        from handgrad.nn.parallel import comm

        self.comm, self.original, self.seconds = comm, comm.wait, 0.0

    def __enter__(self):
        def timed_wait(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        self.comm.wait = timed_wait
        return self

    def __exit__(self, *exc):
        self.comm.wait = self.original


def _measure(name: str, rank: int, group, batch: int, rounds: int, inner: int,
             warmup: int) -> dict:
    """Time both DDP steps of model `name` on the processes of `group`."""
    import handgrad as hg
    from handgrad.nn import functional as F
    from handgrad.nn.parallel import DistributedDataParallel

    ours, theirs, shape = _models(name)
    our_ddp = DistributedDataParallel(ours, process_group=group)
    their_ddp = torch.nn.parallel.DistributedDataParallel(theirs, process_group=group)
    our_opt = hg.optim.SGD(our_ddp.parameters(), lr=0.01, momentum=0.9)
    their_opt = torch.optim.SGD(their_ddp.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(100 + rank)  # each process its own batch
    x = torch.randn(batch, *shape, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    hx, hy = hg.Tensor(x), hg.Tensor(y)

    def ours_step():
        our_opt.zero_grad()
        F.cross_entropy(our_ddp(hx), hy).backward()
        our_opt.step()

    def theirs_step():
        their_opt.zero_grad()
        torch.nn.functional.cross_entropy(their_ddp(x), y).backward()
        their_opt.step()

    def timed(step) -> float:
        start = time.perf_counter()
        for _ in range(inner):
            step()
        return (time.perf_counter() - start) / inner

    for _ in range(warmup):
        ours_step()
        theirs_step()
    our_times, their_times, waits = [], [], []
    timer = _WaitTimer()
    for r in range(rounds):  # the same order on every rank: the collectives match
        if r % 2:
            their_times.append(timed(theirs_step))
        with timer:
            before = timer.seconds
            our_times.append(timed(ours_step))
            waits.append((timer.seconds - before) / inner)
        if not r % 2:
            their_times.append(timed(theirs_step))
    ours_s, theirs_s = statistics.median(our_times), statistics.median(their_times)
    return {"model": name, "batch_per_process": batch,
            "handgrad_step_s": ours_s, "torch_step_s": theirs_s,
            "handgrad_steps_per_s": 1.0 / ours_s, "torch_steps_per_s": 1.0 / theirs_s,
            "ratio": theirs_s / ours_s,
            "handgrad_wait_share": sum(waits) / sum(our_times),
            "rounds": rounds, "inner": inner}


def _rank_main(rank: int, world: int, port: int, settings: dict, out_dir: str) -> None:
    """One process: every (process count, model) case, in the same order on every rank."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    path = os.path.join(out_dir, f"rank{rank}.json")
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world, timeout=datetime.timedelta(minutes=10))
        groups = {n: (None if n == world else dist.new_group(list(range(n))))
                  for n in settings["processes"]}  # every rank creates every group
        rows = []
        for processes in settings["processes"]:
            for name in settings["models"]:
                if rank < processes:
                    row = _measure(name, rank, groups[processes], settings["batch"][name],
                                   settings["rounds"], settings["inner"], settings["warmup"])
                    rows.append({"processes": processes, **row})
                dist.barrier()
        dist.destroy_process_group()
        result = {"rows": rows}
    except BaseException as error:  # noqa: BLE001  (reported by the parent)
        result = {"error": f"{type(error).__name__}: {error}\n{traceback.format_exc()}"}
    with open(path, "w") as f:
        json.dump(result, f)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(settings: dict, timeout: float = 1800.0) -> list[dict]:
    """Start max(processes) processes, run every case, return rank 0's rows (with the
    speed-up over the smallest process count)."""
    import torch.multiprocessing as mp

    world = max(settings["processes"])
    context = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as out_dir:
        port = _free_port()
        previous = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"
        try:
            processes = [context.Process(target=_rank_main, daemon=True,
                                         args=(rank, world, port, settings, out_dir))
                         for rank in range(world)]
            for process in processes:
                process.start()
        finally:
            if previous is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = previous
        deadline = time.monotonic() + timeout
        for process in processes:
            process.join(max(deadline - time.monotonic(), 0.1))
        results = []
        for rank, process in enumerate(processes):
            if process.is_alive():
                process.kill()
                raise RuntimeError(f"rank {rank} still running after {timeout} s")
            path = os.path.join(out_dir, f"rank{rank}.json")
            if not os.path.exists(path):
                raise RuntimeError(f"rank {rank} exited with code {process.exitcode} and "
                                   "no result")
            with open(path) as f:
                results.append(json.load(f))
    for rank, result in enumerate(results):
        if "error" in result:
            raise RuntimeError(f"rank {rank} failed: {result['error']}")
    rows = results[0]["rows"]
    base = min(settings["processes"])
    for row in rows:
        first = next(r for r in rows if r["model"] == row["model"] and r["processes"] == base)
        for lib in ("handgrad", "torch"):  # examples/s relative to `base` processes
            row[f"{lib}_speedup"] = (row["processes"] * row[f"{lib}_steps_per_s"]) / (
                base * first[f"{lib}_steps_per_s"])
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated models: mlp (784-256-256-10, B64 a process) "
                             "and/or lenet (LeNet-5 28x28, B32 a process)")
    parser.add_argument("--processes", default="1,2",
                        help="comma-separated process counts (default 1,2), 1 thread each")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"timing rounds per case (default {_FULL['rounds']}; --quick: "
                             f"{_QUICK['rounds']})")
    parser.add_argument("--quick", action="store_true",
                        help="tiny batches and a few steps: checks the benchmark runs, not "
                             "its speed")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")


def _settings(args: argparse.Namespace) -> dict:
    models = [m for m in args.models.split(",") if m]
    if not models or set(models) - set(MODELS):
        raise ValueError(f"--models: choose among {', '.join(MODELS)}, got {args.models!r}")
    try:
        processes = sorted({int(p) for p in args.processes.split(",") if p})
    except ValueError:
        processes = []
    if not processes or processes[0] < 1:
        raise ValueError(f"--processes wants comma-separated counts >= 1 such as 1,2, got "
                         f"{args.processes!r}")
    if args.rounds is not None and args.rounds < 1:
        raise ValueError(f"--rounds must be positive, got {args.rounds}")
    plan = dict(_QUICK if args.quick else {**_FULL, "batch": _BATCH})
    if args.rounds:
        plan["rounds"] = args.rounds
    return {"models": models, "processes": processes, **plan}


def run(args: argparse.Namespace) -> int:
    from handgrad.bench.timing import machine, write_json

    try:
        settings = _settings(args)
    except ValueError as error:
        print(f"handgrad bench ddp: {error}", file=sys.stderr)
        return 2
    try:
        rows = measure(settings)
    except RuntimeError as error:
        print(f"handgrad bench ddp: {error}", file=sys.stderr)
        return 1
    info = {**machine("cpu"), "threads": 1, "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 2)}
    print("handgrad bench ddp: DistributedDataParallel training steps over gloo, 1 thread "
          "a process" + (" (--quick: checks it runs, not its speed)" if args.quick else ""))
    print(f"# {info['cpus']} CPUs, load average {info['load_average']}, torch "
          f"{info['torch']}; ratio = torch_time / handgrad_time; speed-up = examples/s over "
          f"{settings['processes'][0]} process(es); wait = handgrad's all-reduce wait / step")
    print(f"{'model':<6} {'procs':>5} {'batch':>5} {'handgrad steps/s':>16} "
          f"{'torch steps/s':>13} {'ratio':>6} {'hg speed-up':>11} {'torch speed-up':>14} "
          f"{'wait':>6}")
    for r in rows:
        print(f"{r['model']:<6} {r['processes']:>5} {r['batch_per_process']:>5} "
              f"{r['handgrad_steps_per_s']:>16.1f} {r['torch_steps_per_s']:>13.1f} "
              f"{r['ratio']:>6.2f} {r['handgrad_speedup']:>11.2f} "
              f"{r['torch_speedup']:>14.2f} {r['handgrad_wait_share']:>6.1%}")
    write_json(args.json, {"benchmark": "ddp", "quick": args.quick, "machine": info,
                           "settings": settings, "results": rows})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
