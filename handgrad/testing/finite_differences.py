"""Finite-difference checks of hand-written gradients, public so users can prove their
own Functions the way handgrad proves its ops.

* `gradcheck(fn, *inputs)` compares every element of the analytic gradient (handgrad's
  backward, pushed with a random upstream gradient u) with central differences of the
  scalar <u, fn(x)>. A failure names the input, the index and both values.
* `gradcheck_report(fn, *inputs)` does the same and returns a `GradcheckReport` (the
  largest error, the worst element, a message) instead of raising: what the oracle
  tables are built from.
* `check_grads(fn, *inputs)` (after HIPS/autograd) compares one number: the derivative
  along a random direction, analytic against a central difference. Cheap for big inputs.

Every floating-point Tensor input is a variable and must be float64 (finite differences
in float32 are noise); other inputs (integer tensors, masks, numbers) are constants.
Torch is only the array library here: nothing in this file uses PyTorch's autograd. The
comparison against PyTorch's autograd lives in handgrad.testing.oracle. Import these from
`handgrad.testing` (this module's names are re-exported there).

Left out: second derivatives, complex inputs, sparse tensors.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

import handgrad as hg

__all__ = ["gradcheck", "gradcheck_report", "check_grads", "GradcheckError", "GradcheckReport"]


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences; the message says where."""


@dataclass
class GradcheckReport:
    """What `gradcheck_report` found."""

    passed: bool  # every element within atol + rtol * |numeric|
    max_error: float  # largest |analytic - numeric| over all inputs and elements
    message: str  # empty when passed; else names the worst input, index and values
    checked: int  # how many gradient elements were compared


def _variables(inputs: Sequence, fn_name: str) -> tuple[list, list[int]]:
    """Fresh float64 leaves for the floating-point Tensor inputs; constants pass through."""
    leaves, positions = [], []
    for i, x in enumerate(inputs):
        if isinstance(x, hg.Tensor) and x.data.is_floating_point():
            if x.dtype != torch.float64:
                raise ValueError(
                    f"{fn_name}: input {i} is {str(x.dtype).replace('torch.', '')}; finite "
                    "differences need float64 inputs (pass x.double()), or make it a "
                    "constant by passing an integer tensor or a number.")
            # clone keeps a transposed layout (so non-contiguous inputs stay that way) but
            # densifies expanded ones, so nudging one element nudges only that element.
            x = hg.Tensor(x.data.detach().clone(), requires_grad=True)
            positions.append(i)
        leaves.append(x)
    return leaves, positions


def _outputs(result) -> list[hg.Tensor]:
    """The floating-point Tensors among fn's results (a Tensor, or a tuple/list of them)."""
    items = result if isinstance(result, tuple | list) else (result,)
    return [y for y in items if isinstance(y, hg.Tensor) and y.data.is_floating_point()]


def _upstream(outputs: list[hg.Tensor], seed: int) -> list[torch.Tensor]:
    """A seeded random (non-uniform) upstream gradient per output, in float64."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(y.shape, generator=generator, dtype=torch.float64).to(y.device)
            for y in outputs]


def _objective(fn: Callable, args: list, upstream: list[torch.Tensor]) -> float:
    """<u, fn(args)>: the scalar whose derivative the analytic backward computes."""
    with hg.no_grad():
        outputs = _outputs(fn(*args))
    return math.fsum(float((y.data.double() * u).sum()) for y, u in zip(outputs, upstream))


def _analytic(fn: Callable, args: list, positions: list[int], seed: int):
    """d<u, fn(x)>/dx for every variable via handgrad's backward, and the upstream u."""
    outputs = _outputs(fn(*args))
    if not outputs:
        raise ValueError("gradcheck: fn returned no floating-point Tensor")
    upstream = _upstream(outputs, seed)
    recorded = [(y, u) for y, u in zip(outputs, upstream) if y.requires_grad]
    for k, (y, u) in enumerate(recorded):
        y.backward(u.to(y.dtype), retain_graph=k < len(recorded) - 1)
    grads = []
    for i in positions:
        x = args[i]
        grads.append(torch.zeros_like(x.data) if x.grad is None else x.grad.data)
    return grads, upstream


def _index_text(index: tuple, shape) -> str:
    if not shape:
        return "() (the only element)"
    flat = 0
    for i, n in zip(index, shape):
        flat = flat * n + i
    return f"{index} (flat {flat})"


def gradcheck_report(fn: Callable, *inputs, eps: float = 1e-6, atol: float = 1e-5,
                     rtol: float = 1e-3, seed: int = 0) -> GradcheckReport:
    """Compare handgrad's gradient of `fn` with central differences, element by element.

    fn takes `inputs` and returns a Tensor or a tuple of Tensors. The analytic side is
    handgrad's backward of <u, fn(x)> with a seeded random u; the numeric side is
    (f(x + eps e_j) - f(x - eps e_j)) / (2 eps) of the same scalar, for every element j of
    every floating-point input. Passes when |analytic - numeric| <= atol + rtol |numeric|.
    """
    args, positions = _variables(inputs, "gradcheck")
    if not positions:
        raise ValueError("gradcheck: no floating-point Tensor among the inputs to check")
    analytic, upstream = _analytic(fn, args, positions, seed)
    worst = None  # (how far past the tolerance, details) of the worst failing element
    max_error, checked, failed = 0.0, 0, 0
    for i, grad in zip(positions, analytic):
        data = args[i].data
        shape = tuple(data.shape)
        for index in itertools.product(*(range(n) for n in shape)):
            original = data[index].item()
            data[index] = original + eps
            plus = _objective(fn, args, upstream)
            data[index] = original - eps
            minus = _objective(fn, args, upstream)
            data[index] = original
            numeric = (plus - minus) / (2 * eps)
            value = grad[index].item()
            error = abs(value - numeric)
            if not math.isfinite(error):  # inf == inf agrees; anything else with nan fails
                error = 0.0 if value == numeric else math.inf
            allowed = atol + rtol * abs(numeric)
            checked += 1
            max_error = max(max_error, error)
            if error > allowed:
                failed += 1
                if worst is None or error - allowed > worst[0]:
                    worst = (error - allowed, (i, shape, index, value, numeric, error, allowed))
    if not failed:
        return GradcheckReport(True, max_error, "", checked)
    i, shape, index, value, numeric, error, allowed = worst[1]
    message = (
        f"gradcheck: input {i} (shape {shape}) at index {_index_text(index, shape)}: "
        f"analytic gradient {value:.10g}, numeric (central difference, eps={eps:g}) "
        f"{numeric:.10g}; |difference| {error:.3g} > atol + rtol*|numeric| = {allowed:.3g}. "
        f"{failed} of {checked} gradient elements disagree.")
    return GradcheckReport(False, max_error, message, checked)


def gradcheck(fn: Callable, *inputs, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """True when handgrad's gradient of `fn` matches central differences at `inputs`.

    Every floating-point Tensor input (float64) is checked element by element; integer
    tensors and numbers are constants. On a mismatch, raises `GradcheckError` naming the
    input, the index and both values (or returns False with raise_exception=False).

        >>> x = handgrad.randn(3, 4, dtype=handgrad.float64)
        >>> handgrad.testing.gradcheck(lambda x: x.tanh().sum(dim=1), x)
        True
    """
    report = gradcheck_report(fn, *inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)
    if not report.passed and raise_exception:
        raise GradcheckError(report.message)
    return report.passed


def check_grads(fn: Callable, *inputs, eps: float = 1e-6, atol: float = 1e-5,
                rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """One-number check (HIPS/autograd's check_grads): along a random direction v,
    <grad, v> from handgrad's backward must match (f(x + eps v) - f(x - eps v)) / (2 eps),
    where f(x) = <u, fn(x)> for a random upstream u. Two evaluations of fn, any size."""
    args, positions = _variables(inputs, "check_grads")
    if not positions:
        raise ValueError("check_grads: no floating-point Tensor among the inputs to check")
    analytic, upstream = _analytic(fn, args, positions, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    directions = [torch.randn(args[i].shape, generator=generator, dtype=torch.float64)
                  .to(args[i].device) for i in positions]
    along = math.fsum(float((g * v).sum()) for g, v in zip(analytic, directions))
    originals = [args[i].data.clone() for i in positions]
    values = []
    for sign in (1, -1):
        for i, v, x0 in zip(positions, directions, originals):
            args[i].data.copy_(x0 + sign * eps * v)
        values.append(_objective(fn, args, upstream))
    for i, x0 in zip(positions, originals):
        args[i].data.copy_(x0)
    numeric = (values[0] - values[1]) / (2 * eps)
    error = abs(along - numeric)
    if error <= atol + rtol * abs(numeric):
        return True
    if raise_exception:
        raise GradcheckError(
            f"check_grads: directional derivative along a random direction: analytic "
            f"{along:.10g}, numeric (central difference, eps={eps:g}) {numeric:.10g}; "
            f"|difference| {error:.3g} > atol + rtol*|numeric| = "
            f"{atol + rtol * abs(numeric):.3g}. Run gradcheck for the element that is wrong.")
    return False
