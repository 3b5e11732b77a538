"""The one family of compare-with-torch helpers the tests share (import them as
`from tests.torch_compare import ...`):

* `assert_close(actual, expected, dtype=None, what=...)`: a handgrad Tensor (or torch
  tensor) equals a torch tensor: shape, dtype, device, then values (tolerances by
  `dtype`: tight for float64, float32's for float32; torch's defaults when None);
* `assert_same_structure(got, want, where)`: nested tuples/lists/dicts of tensors and
  plain values equal, element by element, naming the path of the first difference;
* `same_as_torch(fn, *values, ref=None)`: `fn` on handgrad leaves against `ref` (default
  `fn`) on torch leaves: the output, then every input gradient for the same random
  (non-uniform) upstream gradient;
* `compare_modules(ours, theirs, *inputs)`: a handgrad module against its torch.nn twin
  with the same weights: outputs, input and parameter gradients, buffers, over steps.

Left out: the op registry's checks (handgrad.testing.oracle, run by tests/tensor/test_ops.py)
and helpers of one area (data batches: tests/data/conftest.py; optimizer pairs:
tests/optim/optim_helpers.py).
"""

from __future__ import annotations

import torch

import handgrad as hg

TOLERANCES = {torch.float32: dict(atol=1e-5, rtol=1e-4),
              torch.float64: dict(atol=1e-10, rtol=1e-8)}


def _raw(x):
    return x.data if isinstance(x, hg.Tensor) else x


def assert_close(actual, expected, dtype=None, what: str = "value") -> None:
    """`actual` (handgrad or torch) equals the torch tensor `expected`."""
    actual, expected = _raw(actual), _raw(expected)
    assert isinstance(actual, torch.Tensor), f"{what}: got {type(actual).__name__}"
    assert actual.shape == expected.shape, \
        f"{what}: handgrad shape {tuple(actual.shape)}, torch {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} vs {expected.dtype}"
    assert actual.device == expected.device, \
        f"{what}: device {actual.device} vs {expected.device}"
    tolerances = TOLERANCES.get(dtype, {}) if dtype is not None else {}
    torch.testing.assert_close(actual, expected.detach(), equal_nan=True, **tolerances,
                               msg=lambda m: f"{what}: {m}")


def assert_same_structure(got, want, where: str = "result") -> None:
    """Nested containers of tensors and plain values are equal, element by element."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"{where}: handgrad gave {got!r}, torch {want}"
        torch.testing.assert_close(got, want, msg=lambda m: f"{where}: {m}")
    elif isinstance(want, list | tuple | dict):
        assert type(got) is type(want) and len(got) == len(want), f"{where}: {got} vs {want}"
        keys = want.keys() if isinstance(want, dict) else range(len(want))
        for k in keys:
            assert_same_structure(got[k], want[k], f"{where}[{k!r}]")
    else:
        assert got == want, f"{where}: handgrad {got!r}, torch {want!r}"


def same_as_torch(fn, *values, device="cpu", ref=None, dtype=torch.float64, seed=0):
    """fn on handgrad leaves vs `ref` (default: fn) on torch leaves: output and grads.
    Returns the handgrad leaves."""
    ref = fn if ref is None else ref
    ours = [hg.tensor(v, dtype=dtype, device=device, requires_grad=True) for v in values]
    theirs = [torch.tensor(v, dtype=dtype, device=device, requires_grad=True) for v in values]
    out, expected = fn(*ours), ref(*theirs)
    torch.testing.assert_close(out.data, expected.detach(), equal_nan=True)
    gen = torch.Generator().manual_seed(seed)
    upstream = (torch.rand(expected.shape, generator=gen, dtype=dtype) + 0.5).to(device)
    out.backward(upstream.clone())
    expected.backward(upstream)
    for i, (x, t) in enumerate(zip(ours, theirs)):
        want = torch.zeros_like(t) if t.grad is None else t.grad
        got = torch.zeros_like(x.data) if x.grad is None else x.grad.data
        torch.testing.assert_close(got, want, equal_nan=True,
                                   msg=lambda m, i=i: f"gradient of input {i}: {m}")
    return ours


def to_torch_state(module) -> dict:
    """A handgrad module's state_dict as torch tensors (copies)."""
    return {k: v.data.clone() for k, v in module.state_dict().items()}


def compare_modules(ours, theirs, *inputs: torch.Tensor, dtype=torch.float64,
                    train: bool = True, steps: int = 1, seed: int = 0) -> None:
    """Outputs, input gradients, parameter gradients and buffers of `ours` (handgrad)
    and `theirs` (torch.nn) agree on the same inputs, over `steps` forward/backward
    passes (buffers such as running statistics evolve between them). Our weights are
    copied into torch's module through load_state_dict, the way users move weights."""
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
