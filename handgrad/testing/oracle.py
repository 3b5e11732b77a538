"""The oracle: checks a registered op against torch and against finite differences, and
the `handgrad gradcheck` command that runs it over the whole registry.

`check_op(spec, dtype, device, shapes, seed)` draws seeded inputs from the entry's
domains and does up to four checks:

1. forward: handgrad's outputs match the torch reference (values, shapes, dtypes, and
   integer outputs such as indices exactly);
2. backward: every input gradient matches `torch.autograd.grad` for the same random,
   non-uniform upstream gradient (a backward that ignores grad_output fails);
3. finite differences (float64 only): `handgrad.testing.gradcheck_report`;
4. fused against composed (float64 only, entries with `composed`): the same math written
   with handgrad primitives gives the fused Function's forward values and, for the same
   upstream gradient, its input gradients. This proves the hand-derived backward against
   the primitives' backwards, independently of torch.

With `noncontiguous=True` every input is a strided view (transposed, or every other
element starting at offset 1) of a larger buffer, for handgrad and torch alike.

Left out: the entries themselves (handgrad/testing/registry), random shapes (the tests
draw them with hypothesis and call check_op).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

import handgrad as hg
from handgrad.autograd import describe
from handgrad.testing import gradcheck_report
from handgrad.testing.registry import OpSpec, load

DTYPES = (torch.float32, torch.float64)
# (atol, rtol) against torch per dtype, and against finite differences.
TOLERANCES = {"float32": (1e-5, 1e-4), "float64": (1e-10, 1e-7), "fd": (1e-5, 1e-3),
              "composed": (1e-10, 1e-7)}


@dataclass
class CheckResult:
    """The outcome of check_op for one op, dtype, device and set of shapes."""

    op: str
    dtype: str
    device: str
    shapes: tuple
    noncontiguous: bool
    seed: int
    forward_error: float  # max |handgrad - torch| over the float outputs
    backward_error: float | None  # max |grad - torch grad| (None: nothing to differentiate)
    fd_error: float | None  # max |analytic - numeric| (None: not run)
    passed: bool
    message: str  # the first failure, naming the check, the output/input and shapes
    composed_error: float | None = None  # max |fused - composed| (None: not run)

    @property
    def torch_error(self) -> float:
        return max(self.forward_error, self.backward_error or 0.0)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def available_devices() -> list[str]:
    """cpu always, cuda when torch sees a GPU."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def layout(values: torch.Tensor, noncontiguous: bool) -> torch.Tensor:
    """A fresh tensor equal to `values`, contiguous or a strided view of a bigger buffer."""
    if not noncontiguous or values.ndim == 0:
        return values.clone(memory_format=torch.contiguous_format)
    if values.ndim >= 2 and values.shape[-1] > 1 and values.shape[-2] > 1:
        return values.transpose(-1, -2).contiguous().transpose(-1, -2)
    wide = values.new_zeros((*values.shape[:-1], 2 * values.shape[-1] + 1))
    wide[..., 1::2] = values
    return wide[..., 1::2]


def _map_tensors(value, fn):
    """Apply fn to every torch tensor inside nested tuples/lists of extras."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple | list):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


def _as_list(out) -> list:
    return list(out) if isinstance(out, tuple | list) else [out]


def _compare(actual: torch.Tensor, expected: torch.Tensor, tolerance) -> tuple[float, bool]:
    """(max abs error, within atol + rtol |expected|), nan == nan and inf == inf."""
    atol, rtol = tolerance
    if actual.numel() == 0:
        return 0.0, True
    a, e = actual.detach().double(), expected.detach().double()
    same = (a == e) | (a.isnan() & e.isnan())
    error = float(torch.where(same, 0.0, (a - e).abs()).max())
    return error, bool(torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True).all())


def case_seed(spec: OpSpec, case: int, seed: int = 0) -> int:
    """A seed that depends on the op and the case, stable across runs and processes."""
    return (zlib.crc32(spec.name.encode()) + 7919 * case + seed) % 2**31


def check_op(spec: OpSpec, dtype: torch.dtype, device: str, shapes: Sequence, seed: int,
             noncontiguous: bool = False) -> CheckResult:
    """Forward vs torch, backward vs torch.autograd, and (float64) finite differences."""
    shapes = tuple(tuple(s) for s in shapes)
    gen = torch.Generator().manual_seed(seed)
    values = [domain(gen, shape) for domain, shape in zip(spec.domains, shapes)]
    extras = spec.extras(gen, shapes) if spec.extras else ()
    extras = _map_tensors(extras, lambda t: t.to(device))
    hg_extras = _map_tensors(extras, hg.Tensor)
    tolerance = spec.tolerances.get(dtype_name(dtype), TOLERANCES[dtype_name(dtype)])
    result = CheckResult(spec.name, dtype_name(dtype), str(device), shapes, noncontiguous, seed,
                         0.0, None, None, True, "")

    def fail(message: str) -> CheckResult:
        result.passed = False
        result.message = (f"{spec.name} {dtype_name(dtype)} {device} shapes {list(shapes)}"
                          f"{' non-contiguous' if noncontiguous else ''} seed {seed}: {message}")
        return result

    def leaves(make):
        return [make(layout(v.to(device=device, dtype=dtype), noncontiguous)) for v in values]

    torch_inputs = leaves(lambda t: t.requires_grad_())
    hg_inputs = leaves(lambda t: hg.Tensor(t, requires_grad=True))

    # ---- 1. forward
    try:
        expected = _as_list(spec.ref(*torch_inputs, *extras))
    except Exception as error:  # the entry itself is wrong
        return fail(f"the torch reference raised {type(error).__name__}: {error}")
    try:
        actual = _as_list(spec.fn(*hg_inputs, *hg_extras))
    except Exception as error:
        return fail(f"handgrad raised {type(error).__name__}: {error}")
    if len(actual) != len(expected):
        return fail(f"handgrad returned {len(actual)} outputs, torch {len(expected)}")
    for k, (a, e) in enumerate(zip(actual, expected)):
        if not isinstance(a, hg.Tensor):
            return fail(f"output {k} is a {type(a).__name__}, not a handgrad Tensor")
        if a.shape != e.shape or a.dtype != e.dtype or a.device != e.device:
            return fail(f"forward output {k}: handgrad {describe(a)}, torch "
                        f"{describe(e)}")
        if not e.is_floating_point():
            if not torch.equal(a.data, e):
                return fail(f"forward output {k} ({describe(e)}) differs from torch: "
                            f"{a.data.tolist()} vs {e.tolist()}")
            continue
        error, ok = _compare(a.data, e, tolerance)
        result.forward_error = max(result.forward_error, error)
        if not ok:
            return fail(f"forward output {k} ({describe(e)}) differs from torch by {error:.3g}")

    # ---- 2. backward with a random non-uniform upstream gradient
    pairs = [(a, e) for a, e in zip(actual, expected) if e.requires_grad]
    for k, (a, e) in enumerate(zip(actual, expected)):
        if a.requires_grad != e.requires_grad:
            return fail(f"output {k}: handgrad requires_grad={a.requires_grad}, torch "
                        f"requires_grad={e.requires_grad}")
    if pairs:
        up_gen = torch.Generator().manual_seed(seed + 1)
        upstream = [torch.randn(e.shape, generator=up_gen, dtype=torch.float64)
                    .to(device=device, dtype=e.dtype) for _, e in pairs]
        try:
            for k, ((a, _), u) in enumerate(zip(pairs, upstream)):
                a.backward(u.clone(), retain_graph=k < len(pairs) - 1)
        except Exception as error:
            return fail(f"handgrad backward raised {type(error).__name__}: {error}")
        try:
            expected_grads = torch.autograd.grad([e for _, e in pairs], torch_inputs,
                                                 upstream, allow_unused=True)
        except Exception as error:  # the entry itself is wrong: torch cannot differentiate it
            return fail(f"torch.autograd raised {type(error).__name__}: {error}")
        result.backward_error = 0.0
        for i, (x, g) in enumerate(zip(hg_inputs, expected_grads)):
            g = torch.zeros_like(x.data) if g is None else g
            if x.grad is None:
                actual_grad = torch.zeros_like(g)
            elif not isinstance(x.grad, hg.Tensor) or x.grad.requires_grad:
                return fail(f"input {i}: .grad must be a handgrad Tensor without history")
            else:
                actual_grad = x.grad.data
            if actual_grad.shape != g.shape or actual_grad.dtype != g.dtype \
                    or actual_grad.device != g.device:
                return fail(f"gradient of input {i}: handgrad {describe(actual_grad)}"
                            f", torch {describe(g)}")
            error, ok = _compare(actual_grad, g, tolerance)
            result.backward_error = max(result.backward_error, error)
            if not ok:
                return fail(f"gradient of input {i} ({describe(g)}) differs from "
                            f"torch.autograd by {error:.3g}")

    # ---- 3. fused against composed, float64 only
    if dtype == torch.float64 and spec.composed is not None:
        message = _check_composed(spec, leaves(lambda t: hg.Tensor(t, requires_grad=True)),
                                  hg_extras, actual, hg_inputs, upstream if pairs else None,
                                  result)
        if message:
            return fail(message)

    # ---- 4. finite differences, float64 only
    if dtype == torch.float64 and spec.finite_differences and pairs:
        atol, rtol = spec.tolerances.get("fd", TOLERANCES["fd"])
        inputs = leaves(hg.Tensor)
        try:
            report = gradcheck_report(lambda *xs: spec.fn(*xs, *hg_extras), *inputs,
                                      atol=atol, rtol=rtol, seed=seed + 2)
        except Exception as error:
            return fail(f"gradcheck raised {type(error).__name__}: {error}")
        result.fd_error = report.max_error
        if not report.passed:
            return fail(report.message)
    return result


def _check_composed(spec: OpSpec, inputs: list, extras, fused: list, fused_inputs: list,
                    upstream: list | None, result: CheckResult) -> str:
    """Check 3: spec.composed on fresh leaves against the fused outputs and gradients
    (already computed on `fused_inputs` with `upstream`); returns the failure or ''."""
    tolerance = spec.tolerances.get("composed", TOLERANCES["composed"])
    try:
        composed = _as_list(spec.composed(*inputs, *extras))
    except Exception as error:
        return f"the composed reference raised {type(error).__name__}: {error}"
    if len(composed) != len(fused):
        return f"the composed reference returned {len(composed)} outputs, fused {len(fused)}"
    result.composed_error = 0.0
    for k, (c, f) in enumerate(zip(composed, fused)):
        if not isinstance(c, hg.Tensor):
            return f"composed output {k} is a {type(c).__name__}, not a handgrad Tensor"
        if c.shape != f.shape or c.dtype != f.dtype:
            return f"composed output {k} is {describe(c)}, fused {describe(f)}"
        error, ok = _compare(f.data, c.data, tolerance)
        result.composed_error = max(result.composed_error, error)
        if not ok:
            return f"fused output {k} ({describe(f)}) differs from composed by {error:.3g}"
    if not upstream:
        return ""
    differentiable = [c for c, f in zip(composed, fused) if f.requires_grad]
    try:
        for k, (c, u) in enumerate(zip(differentiable, upstream)):
            if c.requires_grad:
                c.backward(u.clone(), retain_graph=k < len(differentiable) - 1)
    except Exception as error:
        return f"the composed reference's backward raised {type(error).__name__}: {error}"
    for i, (c, f) in enumerate(zip(inputs, fused_inputs)):
        want = torch.zeros_like(c.data) if c.grad is None else c.grad.data
        got = torch.zeros_like(f.data) if f.grad is None else f.grad.data
        error, ok = _compare(got, want, tolerance)
        result.composed_error = max(result.composed_error, error)
        if not ok:
            return (f"gradient of input {i} ({describe(want)}): fused differs from composed "
                    f"by {error:.3g}")
    return ""


def check_spec(spec: OpSpec, devices: Sequence[str], seed: int = 0) -> list[CheckResult]:
    """Every shape alternative in float32 and float64, plus a non-contiguous float64 run."""
    results = []
    for device in devices:
        for case, shapes in enumerate(spec.shapes):
            for dtype in DTYPES:
                results.append(check_op(spec, dtype, device, shapes, case_seed(spec, case, seed)))
            if spec.noncontiguous:
                results.append(check_op(spec, torch.float64, device, shapes,
                                        case_seed(spec, case, seed + 1), noncontiguous=True))
    return results


# ====================================================================== the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--op", action="append", metavar="NAME",
                        help="check only ops whose name matches (exact or a glob like "
                             "'pow*'); repeat for several")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="where to run: cpu, cuda, or all (cpu plus cuda when "
                             "available; the default)")
    parser.add_argument("--seed", type=int, default=0, help="shift every case's seed")
    parser.add_argument("--json", metavar="PATH",
                        help="also write every case's result and the summary as JSON here")
    parser.add_argument("--list", action="store_true", help="list the registered ops and exit")


def _select(specs: list[OpSpec], patterns: list[str] | None) -> list[OpSpec]:
    if not patterns:
        return specs
    return [s for s in specs if any(fnmatch.fnmatchcase(s.name, p) for p in patterns)]


def _format_error(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if math.isfinite(value) else str(value)


def run(args: argparse.Namespace) -> int:
    specs = _select(load(), args.op)
    if args.list:
        for spec in specs:
            covers = ", ".join(c.__name__ for c in spec.covers)
            print(f"{spec.name:28s} {len(spec.shapes)} shape sets  covers {covers}")
        return 0
    if not specs:
        print(f"gradcheck: no registered op matches {args.op}; see `handgrad gradcheck --list`")
        return 1
    if args.device == "all":
        devices = available_devices()
    elif args.device == "cuda" and not torch.cuda.is_available():
        print("gradcheck: --device cuda, but torch sees no CUDA device")
        return 1
    else:
        devices = [args.device]
    start = time.perf_counter()
    rows, all_results, failures = [], [], []
    for spec in specs:
        results = check_spec(spec, devices, args.seed)
        all_results += results
        bad = [r for r in results if not r.passed]
        failures += bad
        fd = [r.fd_error for r in results if r.fd_error is not None]
        rows.append((spec.name, len(results), max(r.torch_error for r in results),
                     max(fd) if fd else None, "FAIL" if bad else "pass"))
    width = max(len(r[0]) for r in rows) + 2
    header = (f"{'op':{width}s}{'cases':>6s}  {'max err vs torch':>16s}  "
              f"{'max err vs FD':>13s}  result")
    print(header)
    print("-" * len(header))
    for name, cases, torch_error, fd_error, status in rows:
        print(f"{name:{width}s}{cases:6d}  {_format_error(torch_error):>16s}  "
              f"{_format_error(fd_error):>13s}  {status}")
    print("-" * len(header))
    failed_ops = sum(row[-1] == "FAIL" for row in rows)
    elapsed = time.perf_counter() - start
    print(f"{len(rows)} ops, {len(all_results)} checks on {', '.join(devices)} in "
          f"{elapsed:.1f} s: {len(rows) - failed_ops} passed, {failed_ops} failed")
    composed = [r.composed_error for r in all_results if r.composed_error is not None]
    composed_ops = sum(spec.composed is not None for spec in specs)
    if composed_ops:
        print(f"fused vs composed: {composed_ops} ops, {len(composed)} checks (float64), "
              f"max error {_format_error(max(composed, default=0.0))}")
    for failure in failures:
        print(f"  FAIL {failure.message}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"devices": devices, "seed": args.seed,
                       "summary": {"ops": len(rows), "checks": len(all_results),
                                   "failed_ops": failed_ops,
                                   "composed_ops": composed_ops,
                                   "composed_checks": len(composed)},
                       "results": [asdict(r) for r in all_results]}, f, indent=1)
    return 1 if failures else 0
