"""End to end: the tutorials' 784-256-256-10 MLP trained for 50 steps in handgrad and in
PyTorch from the same weights on the same batches (float64, cross-entropy, SGD with
momentum 0.9) gives the same loss at every step; and `handgrad bench mlp --quick` runs."""

from __future__ import annotations

import json

import torch

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from handgrad.cli import main


def _batches(steps, batch_size, pool=4, seed=0):
    """A learnable problem: labels from a random linear teacher on Gaussian inputs, a
    pool of batches visited in turn (so 50 steps make visible progress)."""
    gen = torch.Generator().manual_seed(seed)
    teacher = torch.randn(784, 10, generator=gen, dtype=torch.float64)
    xs = [torch.randn(batch_size, 784, generator=gen, dtype=torch.float64)
          for _ in range(pool)]
    for step in range(steps):
        x = xs[step % pool]
        yield x, (x @ teacher).argmax(dim=1)


def test_mlp_trains_step_for_step_like_pytorch(one_thread):
    hg.manual_seed(0)
    ours = nn.MLP(784, [256, 256], 10).double()
    theirs = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10)).double()
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    our_opt = hg.optim.SGD(ours.parameters(), lr=0.05, momentum=0.9)
    their_opt = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step, (x, y) in enumerate(_batches(50, 32)):
        our_opt.zero_grad()
        loss = F.cross_entropy(ours(hg.tensor(x)), hg.tensor(y))
        loss.backward()
        our_opt.step()
        their_opt.zero_grad()
        expected = torch.nn.functional.cross_entropy(theirs(x), y)
        expected.backward()
        their_opt.step()
        assert abs(loss.item() - expected.item()) < 1e-6, \
            f"step {step}: handgrad loss {loss.item()!r}, torch {expected.item()!r}"
        losses.append(loss.item())
    assert sum(losses[-4:]) < 0.5 * sum(losses[:4])  # it learned something
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.data, q.detach(), rtol=1e-7, atol=1e-9, msg=name)


def test_bench_mlp_quick(tmp_path, capsys, one_thread):
    path = tmp_path / "mlp.json"
    assert main(["bench", "mlp", "--quick", "--json", str(path)]) == 0
    figures = json.loads(path.read_text())
    assert figures["quick"] is True and figures["sizes"] == [784, 256, 256, 10]
    assert figures["small_batch"]["ratio"] > 0
    assert figures["large_batch"]["handgrad_fraction_of_matmul"] > 0
    assert "fraction of the matmul FLOP rate" in capsys.readouterr().out
