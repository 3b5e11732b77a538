"""Fused Functions against their composed references (handgrad/testing/registry/nn.py,
and the primitives that are fusions themselves, such as softmax, in core.py).

* every Function class under handgrad/nn/functional is covered by the registry, and
  every entry covering one carries a composed reference;
* a composed reference is made of primitives: its graph holds no node of the Function
  it stands for (the entry's first `covers`) nor of any nn.functional Function;
* the oracle's fused-vs-composed check passes for every such entry, and it fails, naming
  the output or the input, when the values or the gradients disagree.

Left out: the torch and finite-difference checks of the same entries (tests/tensor/test_ops.py).
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import torch

import handgrad as hg
import handgrad.nn.functional
from handgrad.autograd import Function
from handgrad.testing import oracle
from handgrad.testing.registry import OpSpec, load, real

SPECS = load()


def _fused_functions() -> set[type]:
    """Every Function class defined in a module of handgrad.nn.functional."""
    package = handgrad.nn.functional
    modules = [package] + [importlib.import_module(f"{package.__name__}.{m.name}")
                           for m in pkgutil.iter_modules(package.__path__)]
    return {value for module in modules for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Function)
            and value.__module__.startswith(package.__name__)}


FUSED = _fused_functions()
FUSED_SPECS = [s for s in SPECS if FUSED & set(s.covers)]
COMPOSED_SPECS = [s for s in SPECS if s.composed is not None]


def test_the_scan_finds_the_fused_functions():
    names = {cls.__name__ for cls in FUSED}
    assert {"Linear", "CrossEntropy", "LayerNorm", "Dropout", "Embedding",
            "BackwardHookGate"} <= names


def test_every_fused_function_has_a_composed_reference():
    proven = {cls for spec in FUSED_SPECS if spec.composed is not None for cls in spec.covers}
    missing = sorted(cls.__name__ for cls in FUSED - proven)
    assert not missing, (
        f"fused Functions without a composed reference: {missing}. Give their registry "
        "entries (handgrad/testing/registry/nn.py) composed=: the same math written with "
        "handgrad primitives (see docs/CONTRIBUTING.md).")
    without = sorted(spec.name for spec in FUSED_SPECS if spec.composed is None)
    assert not without, (
        f"registry entries of fused Functions without composed=: {without}; every "
        "variant (reduction, weights, options) is proven against its composition")


def _nodes(outputs) -> set[type]:
    """The Function classes of every node in the graph behind outputs."""
    seen, classes = set(), set()
    todo = [t._ctx for t in outputs if isinstance(t, hg.Tensor) and t._ctx is not None]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        classes.add(type(node))
        todo += [p for p in node.parents if isinstance(p, Function)]
    return classes


def _inputs(spec: OpSpec):
    shapes = spec.shapes[0]
    gen = torch.Generator().manual_seed(oracle.case_seed(spec, 0))
    values = [domain(gen, shape) for domain, shape in zip(spec.domains, shapes)]
    extras = spec.extras(gen, shapes) if spec.extras else ()
    leaves = [hg.Tensor(v, requires_grad=True) for v in values]
    return leaves, oracle._map_tensors(extras, hg.Tensor)


@pytest.mark.parametrize("spec", COMPOSED_SPECS, ids=lambda s: s.name)
def test_composed_reference_uses_primitives_only(spec):
    leaves, extras = _inputs(spec)
    fused_nodes = _nodes(oracle._as_list(spec.fn(*leaves, *extras)))
    assert spec.covers[0] in fused_nodes, f"{spec.name}: fn does not run {spec.covers[0]}"
    leaves, extras = _inputs(spec)
    composed_nodes = _nodes(oracle._as_list(spec.composed(*leaves, *extras)))
    used = sorted(cls.__name__ for cls in composed_nodes & (FUSED | {spec.covers[0]}))
    assert not used, f"{spec.name}: the composed reference runs the fused {used}"
    assert composed_nodes, f"{spec.name}: the composed reference records no graph"


@pytest.mark.parametrize("spec", COMPOSED_SPECS, ids=lambda s: s.name)
def test_fused_matches_composed(spec):
    for case, shapes in enumerate(spec.shapes):
        for noncontiguous in (False, True):
            result = oracle.check_op(spec, torch.float64, "cpu", shapes,
                                     oracle.case_seed(spec, case), noncontiguous)
            assert result.passed, result.message
            assert result.composed_error is not None and result.composed_error < 1e-10


# ------------------------------------------------------------------ the check checks
def _identity_spec(composed) -> OpSpec:
    return OpSpec(name="identity_dropout", fn=lambda x: hg.nn.functional.dropout(x, 0.0),
                  ref=lambda x: x * 1.0, shapes=(((3, 4),),), covers=(Function,),
                  domains=(real,), composed=composed)


def test_a_composed_reference_with_other_values_fails():
    result = oracle.check_op(_identity_spec(lambda x: x * 1.5), torch.float64, "cpu",
                             ((3, 4),), seed=0)
    assert not result.passed
    assert "fused output 0 ((3, 4) float64 on cpu) differs from composed" in result.message


def test_a_composed_reference_with_other_gradients_fails():
    # value x, gradient 2: same forward, another backward
    result = oracle.check_op(_identity_spec(lambda x: 2 * x - x.detach()), torch.float64,
                             "cpu", ((3, 4),), seed=0)
    assert not result.passed
    assert "gradient of input 0 ((3, 4) float64 on cpu): fused differs from composed" \
        in result.message


def test_a_composed_reference_that_raises_is_reported():
    def broken(x):
        raise RuntimeError("boom")

    result = oracle.check_op(_identity_spec(broken), torch.float64, "cpu", ((3, 4),), seed=0)
    assert not result.passed and "composed reference raised RuntimeError: boom" \
        in result.message


def test_gradcheck_summarises_the_composed_checks(capsys):
    from handgrad.cli import main

    assert main(["gradcheck", "--op", "linear*", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "fused vs composed: 2 ops, 12 checks (float64), max error" in out
