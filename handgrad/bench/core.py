"""`handgrad bench core`: per-op overhead and a large matmul, handgrad vs torch autograd.

Two figures, each the median ratio torch_time / handgrad_time (above 1.0: handgrad is
faster), measured in one process, alternating, after warm-up:

* tiny ops: for each op, an 8x8 forward and its backward (out.backward(g)); at this size
  the time is almost all Python and dispatch overhead, so this measures the engine's
  per-op cost against torch's C++ autograd. Target: ratio >= 0.5.
* large matmul: a 2048x2048 @ 2048x2048 forward and backward (three matmuls); the
  engine's overhead must vanish next to the arithmetic. Target: ratio >= 0.95.
"""

from __future__ import annotations

import argparse

import torch

import handgrad as hg
from handgrad.bench.timing import compare, machine, write_json

# name -> the same function of two tensors, written once for both libraries
TINY_OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "matmul": lambda a, b: a @ b,
    "tanh": lambda a, b: a.tanh(),
    "sum": lambda a, b: a.sum(dim=1),
    "softmax": lambda a, b: a.softmax(dim=1),
    "getitem": lambda a, b: a[1:5],
    "chain(mul,add,tanh,sum)": lambda a, b: ((a * b + a).tanh() * b).sum(),
}


def _pair(shape, device, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    raw = [torch.randn(shape, generator=gen, dtype=dtype).to(device) for _ in range(2)]
    ours = [hg.Tensor(r.clone(), requires_grad=True) for r in raw]
    theirs = [r.clone().requires_grad_(True) for r in raw]
    return ours, theirs


def _step(fn, a, b):
    """One forward and backward; the upstream gradient is ones of the output's shape."""
    out = fn(a, b)
    out.backward(torch.ones_like(out.data if isinstance(out, hg.Tensor) else out))


def run_tiny(device, rounds, inner) -> dict:
    results = {}
    for name, fn in TINY_OPS.items():
        (a, b), (at, bt) = _pair((8, 8), device)
        results[name] = compare(lambda fn=fn, a=a, b=b: _step(fn, a, b),
                                lambda fn=fn, at=at, bt=bt: _step(fn, at, bt),
                                rounds=rounds, inner=inner, device=device)
    return results


def run_matmul(device, size, rounds, inner) -> dict:
    (a, b), (at, bt) = _pair((size, size), device)
    g = torch.randn(size, size, device=device)

    def ours():
        a.grad = b.grad = None
        (a @ b).backward(g)

    def theirs():
        at.grad = bt.grad = None
        (at @ bt).backward(g)

    result = compare(ours, theirs, rounds=rounds, inner=inner, device=device)
    flops = 3 * 2 * size ** 3  # forward + two backward matmuls
    result["handgrad_gflops"] = flops / result["handgrad_s"] / 1e9
    result["reference_gflops"] = flops / result["reference_s"] / 1e9
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from handgrad.models.options import add_common_arguments

    add_common_arguments(parser, device="cpu or cuda (default: cpu)")
    parser.add_argument("--size", type=int, default=2048,
                        help="side of the square matrices in the large matmul (default 2048)")
    add_common_arguments(parser, threads=None)
    parser.add_argument("--quick", action="store_true",
                        help="a few iterations only: checks the benchmark runs, not speed")
    add_common_arguments(parser, json="also write the figures as JSON")


def run(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    tiny_rounds, tiny_inner = (3, 5) if args.quick else (31, 200)
    mm_rounds, mm_inner = (2, 1) if args.quick else (15, 2)
    size = min(args.size, 256) if args.quick else args.size

    tiny = run_tiny(device, tiny_rounds, tiny_inner)
    print(f"handgrad bench core on {device}  (ratio = torch_time / handgrad_time; "
          "above 1.0 handgrad is faster)")
    print(f"{'op (8x8, forward+backward)':<28} {'handgrad us':>12} {'torch us':>10} {'ratio':>7}")
    for name, r in tiny.items():
        print(f"{name:<28} {r['handgrad_s'] * 1e6:>12.1f} {r['reference_s'] * 1e6:>10.1f} "
              f"{r['ratio']:>7.2f}")
    tiny_median = sorted(r["ratio"] for r in tiny.values())[len(tiny) // 2]
    tiny_worst = min(r["ratio"] for r in tiny.values())
    print(f"{'median over ops':<28} {'':>12} {'':>10} {tiny_median:>7.2f}")
    print(f"{'worst op':<28} {'':>12} {'':>10} {tiny_worst:>7.2f}   (target >= 0.5)")

    mm = run_matmul(device, size, mm_rounds, mm_inner)
    print(f"\nmatmul {size}x{size} forward+backward: handgrad {mm['handgrad_s'] * 1e3:.1f} ms "
          f"({mm['handgrad_gflops']:.0f} GFLOP/s), torch {mm['reference_s'] * 1e3:.1f} ms "
          f"({mm['reference_gflops']:.0f} GFLOP/s), ratio {mm['ratio']:.3f}   (target >= 0.95)")
    write_json(args.json, {"benchmark": "core", "quick": args.quick, "machine": machine(device),
                           "tiny_ops": tiny, "tiny_median_ratio": tiny_median,
                           "tiny_worst_ratio": tiny_worst,
                           "matmul": {"size": size, **mm}})
    return 0
