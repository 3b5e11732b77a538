"""`handgrad bench cnn`: convolution and pooling layers, and a LeNet-5 training step,
handgrad vs torch's native kernels (torch.nn.functional, torch.nn + torch.optim).

Each case times forward + backward (a fixed random upstream gradient, the gradients of
the input and of every parameter) in one process, alternating, after warm-up
(handgrad.bench.timing.compare), and reports the median ratio torch_time /
handgrad_time (above 1.0: handgrad is faster):

* conv2d at LeNet's two layers (B64: 1->6 5x5 on 28x28 with padding 2, 6->16 5x5 on
  14x14), a 3x3 64->64 layer on 32x32 (B32, padding 1), a 3x3 3->32 layer on 32x32
  (B32, padding 1); the first layer's input needs no gradient, as in a network.
* max_pool2d 2x2 (B64 on 6x28x28, B32 on 32x32x32).
* one LeNet-5 training step (B64, 28x28, cross-entropy, SGD momentum 0.9): the same
  architecture in handgrad.nn and torch.nn, starting from identical weights.

Targets: every layer >= 0.6, the LeNet step >= 0.8. Left out: conv1d, the transposed
convolutions, average pooling (same machinery, not in the issue's list).
"""

from __future__ import annotations

import argparse

import torch

import handgrad as hg
from handgrad.bench.timing import add_case_arguments, compare, run_cases
from handgrad.nn import functional as F

# (name, batch, in_channels, out_channels, kernel, size, padding, input needs grad)
CONVS = [
    ("lenet conv1 1->6 5x5 28x28 p2", 64, 1, 6, 5, 28, 2, False),
    ("lenet conv2 6->16 5x5 14x14", 64, 6, 16, 5, 14, 0, True),
    ("conv 64->64 3x3 32x32 p1", 32, 64, 64, 3, 32, 1, True),
    ("conv 3->32 3x3 32x32 p1", 32, 3, 32, 3, 32, 1, False),
]
# (name, batch, channels, size, kernel)
POOLS = [
    ("max_pool2d 2x2 6x28x28", 64, 6, 28, 2),
    ("max_pool2d 2x2 32x32x32", 32, 32, 32, 2),
]
LAYER_TARGET, STEP_TARGET = 0.6, 0.8


def _leaf_pair(t: torch.Tensor, requires_grad: bool):
    """A handgrad leaf and a torch leaf holding the same values."""
    ours = hg.Tensor(t.clone(), requires_grad=requires_grad)
    theirs = t.clone().requires_grad_(requires_grad)
    return ours, theirs


def conv_case(batch, cin, cout, kernel, size, padding, input_grad, device):
    """(handgrad_fn, torch_fn): one conv2d forward + backward each."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cin, size, size, generator=gen).to(device)
    w = (torch.randn(cout, cin, kernel, kernel, generator=gen) * 0.1).to(device)
    b = torch.randn(cout, generator=gen).to(device)
    out = size + 2 * padding - kernel + 1
    g = torch.randn(batch, cout, out, out, generator=gen).to(device)
    (hx, tx), (hw, tw), (hb, tb) = (_leaf_pair(x, input_grad), _leaf_pair(w, True),
                                    _leaf_pair(b, True))
    hgrad = hg.Tensor(g)

    def ours():
        hx.grad = hw.grad = hb.grad = None
        F.conv2d(hx, hw, hb, padding=padding).backward(hgrad)

    def theirs():
        tx.grad = tw.grad = tb.grad = None
        torch.nn.functional.conv2d(tx, tw, tb, padding=padding).backward(g)

    return ours, theirs


def pool_case(batch, channels, size, kernel, device):
    """(handgrad_fn, torch_fn): one max_pool2d forward + backward each."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, channels, size, size, generator=gen).to(device)
    g = torch.randn(batch, channels, size // kernel, size // kernel, generator=gen).to(device)
    hx, tx = _leaf_pair(x, True)
    hgrad = hg.Tensor(g)

    def ours():
        hx.grad = None
        F.max_pool2d(hx, kernel).backward(hgrad)

    def theirs():
        tx.grad = None
        torch.nn.functional.max_pool2d(tx, kernel).backward(g)

    return ours, theirs


def lenet(nn):
    """LeNet-5 for 28x28 inputs, from `nn` (handgrad.nn or torch.nn: the same names)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def lenet_steps(batch, device, lr=0.01, momentum=0.9):
    """(handgrad_step, torch_step): zero_grad, forward, cross-entropy, backward, SGD step,
    on twin LeNets with identical weights and the same batch."""
    torch.manual_seed(0)
    ours = lenet(hg.nn).to(device)
    theirs = lenet(torch.nn).to(device)
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(batch, 1, 28, 28, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
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


def run_all(device, rounds: int, inner: int, warmup: int = 3, only: str | None = None) -> dict:
    """Every case's compare() figures, keyed by its name (`only`: names containing it)."""
    cases = {}
    for name, *spec in CONVS:
        cases[name] = lambda spec=spec: conv_case(*spec, device)
    for name, *spec in POOLS:
        cases[name] = lambda spec=spec: pool_case(*spec, device)
    cases["lenet-5 training step B64"] = lambda: lenet_steps(64, device)
    results = {}
    for name, make in cases.items():
        if only and only not in name:
            continue
        ours, theirs = make()
        target = STEP_TARGET if name.startswith("lenet-5") else LAYER_TARGET
        results[name] = {**compare(ours, theirs, rounds=rounds, inner=inner, warmup=warmup,
                                   device=device), "target": target}
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_case_arguments(parser, only_examples="'lenet', '64->64', 'max_pool'", default_rounds=21)


def run(args: argparse.Namespace) -> int:
    return run_cases(args, "cnn", run_all, rounds=21, inner=5, warmup=3)
