"""The op registry: one `OpSpec` per checked operation, read by the oracle, the op tests
and `handgrad gradcheck`.

Each entry pairs a handgrad callable with its torch reference and says how to draw
inputs for it: shapes (alternatives, including broadcasting pairs and `()` scalars),
value domains (log on positives, relu away from its kink...), non-differentiable extra
arguments (index tensors, masks, dims), flags, and `covers`, the Function classes it
exercises. A meta-test fails when a Function in handgrad has no entry covering it.
Entries of fused Functions (handgrad/nn/functional) also carry `composed`, the same math
written with handgrad primitives; a meta-test (tests/testing/test_registry_composed.py) fails
when one lacks it.

Adding entries (for example fused layers in `nn.py`): create a module in this package;
`load()` imports every module here, so nothing else needs editing. In it::

    import torch
    import handgrad.nn.functional as HF
    from handgrad.testing.registry import register, positive, real

    register(
        "cross_entropy",
        fn=lambda logits, targets: HF.cross_entropy(logits, targets),
        ref=lambda logits, targets: torch.nn.functional.cross_entropy(logits, targets),
        # the same loss from primitives (log-softmax by hand, gather the targets' terms)
        composed=lambda logits, targets: _composed_cross_entropy(logits, targets),
        shapes=[((4, 5),), ((1, 3),)],          # one shape per differentiable input
        extras=lambda gen, shapes: (torch.randint(0, shapes[0][1], shapes[0][:1],
                                                  generator=gen),),
        covers=(HF.CrossEntropy,),
    )

`fn` gets handgrad Tensors (extras' torch tensors arrive wrapped as handgrad Tensors
without grad), `ref` gets torch tensors that require grad, each as
`(*inputs, *extras)`; both return a tensor or a tuple of tensors (integer outputs, such
as indices, are compared exactly). Leave `ref` out when one callable works on both
(operators and methods that handgrad shares with torch). `composed` has fn's signature
and gets fresh handgrad leaves.

What this package leaves out: running the checks (handgrad/testing/oracle.py) and the
hypothesis strategies for random shapes (tests/tensor/test_ops.py).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

__all__ = [
    "OpSpec", "REGISTRY", "register", "load", "by_name", "Domain", "real", "positive",
    "nonzero", "unit", "uniform", "odd_grid", "even_grid", "distinct",
]

Shape = tuple[int, ...]
# A value domain draws float64 CPU values of a shape from a seeded generator.
Domain = Callable[[torch.Generator, Shape], torch.Tensor]


# ------------------------------------------------------------------ value domains
def real(gen: torch.Generator, shape: Shape) -> torch.Tensor:
    """Standard normal values: the default for smooth functions."""
    return torch.randn(shape, generator=gen, dtype=torch.float64)


def uniform(low: float, high: float) -> Domain:
    """Uniform values in [low, high)."""
    def draw(gen: torch.Generator, shape: Shape) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)

    draw.__name__ = f"uniform({low}, {high})"
    return draw


positive = uniform(0.5, 2.0)  # log, sqrt, rsqrt, pow bases: well inside the domain
unit = uniform(-0.9, 0.9)


def nonzero(gen: torch.Generator, shape: Shape) -> torch.Tensor:
    """|x| in [0.2, 2) with a random sign: away from the kink at 0 (relu, abs, ...)."""
    magnitude = uniform(0.2, 2.0)(gen, shape)
    sign = torch.randint(0, 2, shape, generator=gen).to(torch.float64) * 2 - 1
    return magnitude * sign


def _grid(offset: float) -> Domain:
    def draw(gen: torch.Generator, shape: Shape) -> torch.Tensor:
        steps = torch.randint(-10, 10, shape, generator=gen).to(torch.float64)
        return 0.2 * steps + offset

    return draw


# Two grids that never meet: odd multiples of 0.1 and even ones. maximum(a, b) with a on
# one and b on the other has no ties (all gaps >= 0.1); clamp bounds on the even grid
# (like -0.4, 0.6) are never hit by x on the odd grid.
odd_grid = _grid(0.1)
odd_grid.__name__ = "odd_grid"
even_grid = _grid(0.0)
even_grid.__name__ = "even_grid"


def distinct(gen: torch.Generator, shape: Shape) -> torch.Tensor:
    """All values different, at least 0.05 apart (max/amax/sort without ties)."""
    n = int(torch.Size(shape).numel())
    order = torch.randperm(n, generator=gen).to(torch.float64)
    jitter = 0.02 * torch.rand(n, generator=gen, dtype=torch.float64)
    return (0.07 * (order - n / 2) + jitter).reshape(shape)


# ------------------------------------------------------------------ the spec
@dataclass(frozen=True)
class OpSpec:
    """How to check one operation against torch and finite differences."""

    name: str  # unique, shown in tables and test ids ("add", "pow_tensor_tensor")
    fn: Callable  # handgrad callable: fn(*inputs, *extras) -> Tensor or tuple
    ref: Callable  # torch reference with the same signature
    shapes: tuple[tuple[Shape, ...], ...]  # alternatives: one shape per differentiable input
    covers: tuple[type, ...]  # Function classes this entry exercises (for the meta-test)
    domains: tuple[Domain, ...]  # one value domain per differentiable input
    # Non-differentiable arguments appended after the inputs, built from the seeded
    # generator and the shapes of this case (index tensors, masks, dims).
    extras: Callable[[torch.Generator, tuple[Shape, ...]], tuple] | None = None
    # "unary", "binary" or "reduce": tests also draw random shapes of this kind with
    # hypothesis (reduce: one input of >= 1 dim; extras then pick dims from the shape).
    random_shapes: str | None = None
    finite_differences: bool = True  # False where the output is not smooth enough
    noncontiguous: bool = True  # False where the op itself refuses strided inputs (view)
    # Tolerance overrides: {"float32": (atol, rtol), "float64": ..., "fd": ...}.
    tolerances: dict = field(default_factory=dict)
    note: str = ""  # why a flag is set, for the reader and the table
    # Fused Functions: the same math written with handgrad primitives (Tensor ops such as
    # exp, log, sum, amax, matmul, indexing; never the fused Function itself), with fn's
    # signature. The oracle checks fused against it: values and input gradients, float64.
    composed: Callable | None = None


REGISTRY: list[OpSpec] = []


def register(name: str, fn: Callable, *, shapes: Sequence[Sequence[Shape]],
             covers: Sequence[type], ref: Callable | None = None,
             domains: Domain | Sequence[Domain] = real, **flags) -> OpSpec:
    """Add an entry to REGISTRY (and return it). `ref=None` means fn works on torch too;
    one domain is used for every input."""
    if any(spec.name == name for spec in REGISTRY):
        raise ValueError(f"register: an op named {name!r} is already registered")
    shapes = tuple(tuple(tuple(s) for s in case) for case in shapes)
    arity = {len(case) for case in shapes}
    if len(arity) != 1:
        raise ValueError(f"register {name!r}: every shape alternative needs the same number "
                         f"of inputs, got {sorted(arity)}")
    if callable(domains):
        domains = (domains,) * arity.pop()
    if not covers:
        raise ValueError(f"register {name!r}: covers must name the Function classes it tests")
    spec = OpSpec(name=name, fn=fn, ref=fn if ref is None else ref, shapes=shapes,
                  covers=tuple(covers), domains=tuple(domains), **flags)
    REGISTRY.append(spec)
    return spec


_loaded = False


def load() -> list[OpSpec]:
    """Import every entry module of this package (core, nn, ...) once; return REGISTRY."""
    global _loaded
    if not _loaded:
        for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
            if not module.startswith("_"):
                importlib.import_module(f"{__name__}.{module}")
        _loaded = True
    return REGISTRY


def by_name(name: str) -> OpSpec:
    for spec in load():
        if spec.name == name:
            return spec
    raise KeyError(f"no registered op named {name!r}")
