"""Run a function in several processes joined by a gloo process group on 127.0.0.1.

`run(function, world_size=2, args=(), timeout=60)` spawns `world_size` fresh Python
processes (the "spawn" start method: no state leaks in from the test process), each one
thread, each with `torch.distributed.init_process_group("gloo", ...)` on a free local
port and a short collective timeout; it calls `function(rank, world_size, *args)` and
returns the list of what each rank returned (or raised, as an `Failure`). A process
still running after `timeout` seconds is killed, so a test can never hang.
"""

from __future__ import annotations

import datetime
import os
import socket
import tempfile
import traceback
from dataclasses import dataclass

import torch
import torch.multiprocessing as mp


@dataclass
class Failure:
    """What a rank raised (or why it produced nothing)."""
    rank: int
    kind: str  # the exception's class name, "timeout" or "exit"
    message: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, world_size, port, collective_timeout, function, args, out_dir):
    torch.set_num_threads(1)
    import torch.distributed as dist
    result_path = os.path.join(out_dir, f"rank{rank}.pt")
    try:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=collective_timeout))
        try:
            result = function(rank, world_size, *args)
        finally:
            dist.destroy_process_group()
    except BaseException as error:  # noqa: BLE001  (reported to the test, not swallowed)
        result = Failure(rank, type(error).__name__,
                         f"{error}\n{traceback.format_exc()}")
    torch.save(result, result_path)


def run(function, world_size: int = 2, args: tuple = (), timeout: float = 60.0,
        collective_timeout: float = 20.0) -> list:
    """Each rank's return value (or Failure), in rank order."""
    context = mp.get_context("spawn")
    port = free_port()
    with tempfile.TemporaryDirectory() as out_dir:
        processes = [context.Process(target=_entry, daemon=True,
                                     args=(rank, world_size, port, collective_timeout,
                                           function, args, out_dir))
                     for rank in range(world_size)]
        env_threads = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"
        try:
            for process in processes:
                process.start()
        finally:
            if env_threads is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = env_threads
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
        for process in processes:
            left = (deadline - datetime.datetime.now()).total_seconds()
            process.join(max(left, 0.1))
        results = []
        for rank, process in enumerate(processes):
            if process.is_alive():
                process.kill()
                process.join(5)
                results.append(Failure(rank, "timeout", f"still running after {timeout} s"))
                continue
            path = os.path.join(out_dir, f"rank{rank}.pt")
            if os.path.exists(path):
                results.append(torch.load(path, weights_only=False))
            else:
                results.append(Failure(rank, "exit", f"exit code {process.exitcode}"))
        return results


def check(results: list) -> list:
    """The results, after failing the test with every rank's error if one failed."""
    failures = [r for r in results if isinstance(r, Failure)]
    if failures:
        raise AssertionError("\n\n".join(f"rank {f.rank}: {f.kind}: {f.message}"
                                         for f in failures))
    return results
