"""`handgrad bench mlp`: one MLP training step, handgrad vs torch.nn + torch.optim (eager).

The model is the tutorials' 784-256-256-10 ReLU MLP with cross-entropy and SGD with
momentum 0.9; both libraries start from the same weights and see the same batch. A step
is zero_grad, forward, loss, backward, optimizer step. Two figures, each timed in one
process, alternating, after warm-up (handgrad.bench.timing.compare):

* batch 128: the median ratio torch_time / handgrad_time (above 1.0: handgrad is
  faster). At this size Python overhead per op still shows. Target: >= 1.0 on CPU.
* batch 4096: the step's achieved FLOP rate as a fraction of the rate of plain torch
  matmuls of the same sizes measured in the same run (the 3 forward matmuls, the 3
  weight gradients and the 2 input gradients the step needs; the first layer's input
  needs no gradient). Everything that is not a matmul (bias, ReLU, loss, optimizer,
  allocation, the engine) is what pulls it below 1. Target: >= 0.8.
"""

from __future__ import annotations

import argparse

import torch

import handgrad as hg
from handgrad import nn
from handgrad.bench.timing import compare, machine, write_json
from handgrad.nn import functional as F

SIZES = (784, 256, 256, 10)


def _models(device, seed: int = 0):
    """The handgrad MLP and its torch twin with the same initial weights."""
    torch.manual_seed(seed)
    ours = nn.MLP(SIZES[0], list(SIZES[1:-1]), SIZES[-1]).to(device)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    theirs = torch.nn.Sequential(*layers).to(device)
    theirs.load_state_dict({k: v.data for k, v in ours.state_dict().items()})
    return ours, theirs


def _batch(batch_size: int, device, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, SIZES[0], generator=gen).to(device)
    y = torch.randint(0, SIZES[-1], (batch_size,), generator=gen).to(device)
    return x, y


def training_steps(batch_size: int, device, lr: float = 0.01, momentum: float = 0.9):
    """(handgrad_step, torch_step): closures doing one identical training step each."""
    ours, theirs = _models(device)
    x, y = _batch(batch_size, device)
    hx, hy = hg.Tensor(x), hg.Tensor(y)
    our_opt = hg.optim.SGD(ours.parameters(), lr=lr, momentum=momentum)
    their_opt = torch.optim.SGD(theirs.parameters(), lr=lr, momentum=momentum)

    def handgrad_step():
        our_opt.zero_grad()
        loss = F.cross_entropy(ours(hx), hy)
        loss.backward()
        our_opt.step()
        return loss

    def torch_step():
        their_opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(x), y)
        loss.backward()
        their_opt.step()
        return loss

    return handgrad_step, torch_step


def step_flops(batch_size: int) -> int:
    """Matmul FLOPs of one step: forward x W^T and dW = g^T x for every layer, and
    dx = g W for every layer but the first (its input needs no gradient)."""
    pairs = list(zip(SIZES, SIZES[1:]))
    forward = sum(2 * batch_size * a * b for a, b in pairs)
    input_grads = sum(2 * batch_size * a * b for a, b in pairs[1:])
    return 2 * forward + input_grads


def matmuls(batch_size: int, device):
    """Plain torch matmuls of exactly the step's shapes and layouts (no autograd)."""
    gen = torch.Generator().manual_seed(2)
    shapes = list(zip(SIZES, SIZES[1:]))

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    xs = [rand(batch_size, a) for a, _ in shapes]
    ws = [rand(b, a) for a, b in shapes]
    bs = [rand(b) for _, b in shapes]
    gs = [rand(batch_size, b) for _, b in shapes]

    def run():
        for x, w, b in zip(xs, ws, bs):
            torch.addmm(b, x, w.t())
        for i, (x, w, g) in enumerate(zip(xs, ws, gs)):
            torch.mm(g.t(), x)
            if i:
                torch.mm(g, w)

    return run


def run_small(batch_size: int, device, rounds: int, inner: int) -> dict:
    ours, theirs = training_steps(batch_size, device)
    return {"batch_size": batch_size, **compare(ours, theirs, rounds=rounds, inner=inner,
                                                device=device)}


def run_large(batch_size: int, device, rounds: int, inner: int, warmup: int = 5) -> dict:
    ours, theirs = training_steps(batch_size, device)
    plain = matmuls(batch_size, device)
    flops = step_flops(batch_size)
    # Warm all three before any timing: the first steps at this size grow the allocator's
    # pools and fault pages in, which must not land on whichever comparison runs first.
    for _ in range(warmup):
        ours(), theirs(), plain()
    vs_matmul = compare(ours, plain, rounds=rounds, inner=inner, device=device)
    torch_vs_matmul = compare(theirs, plain, rounds=rounds, inner=inner, device=device)
    vs_torch = compare(ours, theirs, rounds=rounds, inner=inner, device=device)
    return {
        "batch_size": batch_size,
        "step_gflop": flops / 1e9,
        # the step's FLOP rate over the matmuls' rate = matmul time / step time
        "handgrad_fraction_of_matmul": vs_matmul["ratio"],
        "torch_fraction_of_matmul": torch_vs_matmul["ratio"],
        "handgrad_gflops": flops / vs_matmul["handgrad_s"] / 1e9,
        "torch_gflops": flops / torch_vs_matmul["handgrad_s"] / 1e9,
        "matmul_gflops": flops / vs_matmul["reference_s"] / 1e9,
        "handgrad_vs_matmul": vs_matmul,
        "torch_vs_matmul": torch_vs_matmul,
        "handgrad_vs_torch": vs_torch,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from handgrad.models.options import add_common_arguments

    add_common_arguments(parser, device="cpu or cuda (default: cpu)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="batch of the step-time comparison (default 128)")
    parser.add_argument("--large-batch", type=int, default=4096,
                        help="batch of the FLOP-rate comparison (default 4096)")
    add_common_arguments(parser, threads=None)
    parser.add_argument("--quick", action="store_true",
                        help="a couple of iterations only: checks the benchmark runs, not speed")
    add_common_arguments(parser, json="also write the figures as JSON")


def run(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    small_rounds, small_inner = (2, 1) if args.quick else (41, 10)
    large_rounds, large_inner = (2, 1) if args.quick else (31, 1)
    large_batch = min(args.large_batch, 256) if args.quick else args.large_batch

    print(f"handgrad bench mlp on {device}: {'-'.join(map(str, SIZES))} ReLU MLP, "
          "cross-entropy, SGD(momentum=0.9); one training step")
    small = run_small(args.batch_size, device, small_rounds, small_inner)
    print(f"batch {small['batch_size']}: handgrad {small['handgrad_s'] * 1e3:.3f} ms, torch "
          f"{small['reference_s'] * 1e3:.3f} ms, ratio torch/handgrad {small['ratio']:.3f}"
          "   (target >= 1.0)")
    large = run_large(large_batch, device, large_rounds, large_inner,
                      warmup=1 if args.quick else 5)
    print(f"batch {large['batch_size']} ({large['step_gflop']:.2f} GFLOP of matmuls per step):"
          f" handgrad {large['handgrad_gflops']:.1f} GFLOP/s, torch "
          f"{large['torch_gflops']:.1f} GFLOP/s, plain matmuls {large['matmul_gflops']:.1f} "
          "GFLOP/s")
    print(f"  fraction of the matmul FLOP rate: handgrad "
          f"{large['handgrad_fraction_of_matmul']:.3f} (target >= 0.8), torch "
          f"{large['torch_fraction_of_matmul']:.3f}; ratio torch/handgrad "
          f"{large['handgrad_vs_torch']['ratio']:.3f}")
    write_json(args.json, {"benchmark": "mlp", "quick": args.quick, "machine": machine(device),
                           "sizes": SIZES, "small_batch": small, "large_batch": large})
    return 0
