"""Helpers for the nn tests: one comparison of a handgrad module with its torch.nn twin.

`compare_modules(ours, theirs, *inputs)` copies our weights into torch's module (through
load_state_dict, the way users move weights), runs both on the same inputs, pushes the
same random (non-uniform) upstream gradient back through both, and asserts that the
outputs, the input gradients, every parameter gradient and every buffer agree.

Left out: the loss and functional comparisons (the op registry and test_ops.py check
every fused Function against torch.nn.functional).
"""

from __future__ import annotations

import torch

import handgrad as hg

TOLERANCES = {torch.float32: dict(atol=1e-5, rtol=1e-4),
              torch.float64: dict(atol=1e-10, rtol=1e-8)}


def to_torch_state(module) -> dict:
    """A handgrad module's state_dict as torch tensors (copies)."""
    return {k: v.data.clone() for k, v in module.state_dict().items()}


def assert_close(actual, expected, dtype, what: str) -> None:
    actual = actual.data if isinstance(actual, hg.Tensor) else actual
    assert actual.shape == expected.shape, \
        f"{what}: handgrad shape {tuple(actual.shape)}, torch {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} vs {expected.dtype}"
    torch.testing.assert_close(actual, expected.detach(), **TOLERANCES[dtype],
                               msg=lambda m: f"{what}: {m}")


def compare_modules(ours, theirs, *inputs: torch.Tensor, dtype=torch.float64,
                    train: bool = True, steps: int = 1, seed: int = 0) -> None:
    """Outputs, input gradients, parameter gradients and buffers of `ours` (handgrad)
    and `theirs` (torch.nn) agree on the same inputs, over `steps` forward/backward
    passes (buffers such as running statistics evolve between them)."""
    ours.to(dtype)
    theirs.to(dtype)
    theirs.load_state_dict(to_torch_state(ours))
    ours.train(train)
    theirs.train(train)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        theirs_in = [x.to(dtype).clone().requires_grad_() if x.is_floating_point() else x
                     for x in inputs]
        ours_in = [hg.Tensor(x.detach().clone(), requires_grad=x.is_floating_point())
                   for x in theirs_in]
        ours.zero_grad()
        theirs.zero_grad()
        out_ours, out_theirs = ours(*ours_in), theirs(*theirs_in)
        assert_close(out_ours, out_theirs, dtype, f"step {step} output")
        upstream = torch.randn(out_theirs.shape, generator=gen, dtype=torch.float64).to(dtype)
        out_ours.backward(upstream)
        out_theirs.backward(upstream)
        for i, (a, e) in enumerate(zip(ours_in, theirs_in)):
            if e.requires_grad:
                assert_close(a.grad, e.grad, dtype, f"step {step} gradient of input {i}")
        params_theirs = dict(theirs.named_parameters())
        params_ours = dict(ours.named_parameters())
        assert params_ours.keys() == params_theirs.keys()
        for name, p in params_ours.items():
            expected = params_theirs[name].grad
            if expected is None:
                assert p.grad is None, f"{name}: handgrad has a gradient, torch has none"
            else:
                assert_close(p.grad, expected, dtype, f"step {step} gradient of {name}")
        buffers_theirs = dict(theirs.named_buffers())
        for name, b in ours.named_buffers():
            expected = buffers_theirs[name]
            if expected.is_floating_point():
                assert_close(b, expected, dtype, f"step {step} buffer {name}")
            else:
                assert torch.equal(b.data, expected), f"step {step} buffer {name}"
