"""Every registered op against torch and finite differences, driven by the registry.

One helper (handgrad.testing.oracle.check_op) serves every test here: forward vs torch
in float32 and float64, backward vs torch.autograd with a random upstream gradient,
float64 central differences. On top of the registry's fixed shapes: non-contiguous
inputs, random shapes from hypothesis, the meta-test (every Function has an entry), the
checker's own tests (it must catch a wrong backward) and the `handgrad gradcheck` command.

Left out: graph semantics and tie conventions (test_autograd.py), the Tensor API
(test_tensor_api.py).
"""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import handgrad
import handgrad as hg
from handgrad.autograd import Function
from handgrad.testing import GradcheckError, check_grads, gradcheck, gradcheck_report, oracle
from handgrad.testing.registry import REGISTRY, load, real, register

SPECS = load()
DTYPES = [torch.float32, torch.float64]


def _check(spec, dtype, device, shapes, seed, noncontiguous=False):
    result = oracle.check_op(spec, dtype, device, shapes, seed, noncontiguous=noncontiguous)
    assert result.passed, result.message
    return result


# ------------------------------------------------------------------ the registry, fixed shapes
@pytest.mark.parametrize("dtype", DTYPES, ids=oracle.dtype_name)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_op_matches_torch(spec, dtype, device):
    for case, shapes in enumerate(spec.shapes):
        _check(spec, dtype, device, shapes, oracle.case_seed(spec, case))


@pytest.mark.parametrize("spec", [s for s in SPECS if s.noncontiguous], ids=lambda s: s.name)
def test_op_noncontiguous_inputs(spec, device):
    for case, shapes in enumerate(spec.shapes):
        _check(spec, torch.float64, device, shapes, oracle.case_seed(spec, case, 1),
               noncontiguous=True)


# ------------------------------------------------------------------ random shapes
sides = st.integers(1, 4)
shapes = st.lists(sides, min_size=0, max_size=4).map(tuple)


@st.composite
def broadcast_pairs(draw):
    """Two shapes that broadcast: the second keeps, shrinks to 1, or drops each dim."""
    shape = draw(shapes)
    other = [n if draw(st.booleans()) else 1 for n in shape]
    other = tuple(other[draw(st.integers(0, len(other))):])
    return (shape, other) if draw(st.booleans()) else (other, shape)


STRATEGIES = {
    "unary": shapes.map(lambda s: (s,)),
    "binary": broadcast_pairs(),
    "reduce": st.lists(sides, min_size=1, max_size=4).map(lambda s: (tuple(s),)),
}
RANDOM = [s for s in SPECS if s.random_shapes]


@pytest.mark.parametrize("spec", RANDOM, ids=lambda s: s.name)
@given(data=st.data())
def test_op_random_shapes(spec, device, data):
    case = data.draw(STRATEGIES[spec.random_shapes], label="shapes")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    noncontiguous = spec.noncontiguous and data.draw(st.booleans(), label="noncontiguous")
    _check(spec, torch.float64, device, case, seed, noncontiguous)
    _check(spec, torch.float32, device, case, seed)


def test_random_shape_kinds_are_known():
    unknown = {s.name: s.random_shapes for s in RANDOM if s.random_shapes not in STRATEGIES}
    assert not unknown, f"registry entries with an unknown random_shapes kind: {unknown}"


# ------------------------------------------------------------------ the meta-test
def _all_functions() -> set[type]:
    """Every concrete Function subclass defined in handgrad (bench excepted).

    Imports each module whose source mentions `Function` (cheap: the data, train and
    plotting modules that do not are left alone), then walks Function's subclasses."""
    for module in pkgutil.walk_packages(handgrad.__path__, "handgrad."):
        if module.name.endswith("__main__") or module.name.startswith("handgrad.bench"):
            continue
        spec = module.module_finder.find_spec(module.name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as f:
            if "Function" in f.read():
                importlib.import_module(module.name)
    found, todo = set(), [Function]
    while todo:
        for cls in todo.pop().__subclasses__():
            todo.append(cls)
            module = cls.__module__
            if (module.startswith("handgrad.")
                    and not module.startswith(("handgrad.bench", "handgrad.testing"))
                    and getattr(cls, "forward", None) is not None):
                found.add(cls)
    return found


def test_every_function_has_a_registry_entry():
    covered = {cls for spec in SPECS for cls in spec.covers}
    missing = sorted(f"{c.__module__}.{c.__qualname__}" for c in _all_functions() - covered)
    assert not missing, (
        f"Functions without a registry entry: {missing}. Add an OpSpec covering each "
        "(handgrad/testing/registry/core.py for primitives, nn.py for fused layers).")


def test_registry_entries_are_well_formed():
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names)), "duplicate registry names"
    for spec in SPECS:
        for shapes in spec.shapes:
            assert len(shapes) == len(spec.domains), f"{spec.name}: one domain per input"
        assert all(isinstance(c, type) and issubclass(c, Function) for c in spec.covers), \
            f"{spec.name}: covers must list Function classes"


# ------------------------------------------------------------------ the checkers check
class _SquareForgetsUpstream(Function):
    """out = x**2 with a wrong backward: 2x, ignoring the upstream gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x


class _SquareHalfGradient(Function):
    """out = x**2 with a wrong backward: g x (half the truth)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x


def test_gradcheck_accepts_a_correct_gradient(device):
    x = hg.randn(3, 4, dtype=hg.float64, device=device)
    w = hg.randn(4, dtype=hg.float64, device=device)
    assert gradcheck(lambda x, w: (x * w).tanh().sum(1), x, w)
    assert gradcheck(lambda x, w: (x * w).split(3, dim=1), x, w)  # a tuple of outputs
    assert gradcheck(lambda x: x.exp(), x.T)  # a non-contiguous input
    assert check_grads(lambda x, w: (x @ w).exp(), x, w)


def test_gradcheck_names_input_index_and_values():
    x = hg.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=hg.float64)
    w = hg.ones(2, dtype=hg.float64)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda w, x: (w * _SquareHalfGradient.apply(x)).sum(), w, x)
    message = str(info.value)
    assert "input 1" in message and "(shape (2, 2))" in message
    assert "index (1, 1) (flat 3)" in message  # |error| is largest at x = -4
    assert "analytic gradient" in message and "numeric" in message
    report = gradcheck_report(lambda x: _SquareHalfGradient.apply(x), x)
    assert not report.passed and report.checked == 4 and report.max_error > 1
    assert gradcheck(_SquareHalfGradient.apply, x, raise_exception=False) is False
    with pytest.raises(GradcheckError, match="directional derivative"):
        check_grads(_SquareHalfGradient.apply, x)


def test_gradcheck_catches_a_backward_that_ignores_the_upstream_gradient():
    x = hg.randn(5, dtype=hg.float64)
    with pytest.raises(GradcheckError):
        gradcheck(_SquareForgetsUpstream.apply, x)


def test_gradcheck_refuses_float32_and_treats_integers_as_constants():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda x: x.exp(), hg.randn(3))
    x = hg.randn(4, 3, dtype=hg.float64)
    index = hg.tensor([2, 0, 2, 1])
    assert gradcheck(lambda x, i, k: x.index_select(0, i) * k, x, index, 3.0)


def test_gradcheck_does_not_change_the_inputs():
    x = hg.randn(2, 3, dtype=hg.float64, requires_grad=True)
    before = x.data.clone()
    gradcheck(lambda x: x.sin(), x)
    assert torch.equal(x.data, before) and x.grad is None


def test_oracle_catches_wrong_backward_and_wrong_forward(device):
    wrong = {
        "ignores upstream": (_SquareForgetsUpstream.apply, "torch.autograd"),
        "half gradient": (_SquareHalfGradient.apply, "torch.autograd"),
        "wrong forward": (lambda x: x * 3, "differs from torch"),
    }
    for name, (fn, expected) in wrong.items():
        spec = oracle.OpSpec(name, fn, lambda x: x * x, shapes=(((3, 4),),),
                             covers=(_SquareHalfGradient,), domains=(real,))
        result = oracle.check_op(spec, torch.float64, device, ((3, 4),), seed=0)
        assert not result.passed and expected in result.message, (name, result.message)


# ------------------------------------------------------------------ the command
def test_gradcheck_command_table_and_json(tmp_path, capsys):
    path = tmp_path / "results.json"
    status = handgrad.cli.main(["gradcheck", "--op", "add", "--op", "pow_tensor_*",
                                "--device", "cpu", "--json", str(path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "max err vs torch" in out and "pow_tensor_tensor" in out and " pass" in out
    results = json.loads(path.read_text())
    assert results["summary"]["failed_ops"] == 0
    assert {r["op"] for r in results["results"]} == {
        "add", "pow_tensor_int", "pow_tensor_float", "pow_tensor_zero", "pow_tensor_tensor"}


def test_gradcheck_command_fails_on_a_wrong_op(capsys):
    register("_broken_for_test", _SquareHalfGradient.apply, ref=lambda x: x * x,
             shapes=[((2, 3),)], covers=(_SquareHalfGradient,))
    try:
        status = handgrad.cli.main(["gradcheck", "--op", "_broken_for_test", "--device", "cpu"])
    finally:
        REGISTRY[:] = [s for s in REGISTRY if s.name != "_broken_for_test"]
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL" in out and "0 passed, 1 failed" in out



def _exp_changed_in_place(x):
    """exp saves its output, which is then changed: torch.autograd.grad raises."""
    y = x.exp()
    y.mul_(1.0)
    return y


def test_gradcheck_command_reports_a_reference_torch_cannot_differentiate(capsys):
    # A wrong entry (torch.autograd raises on its reference) is a failed row, not a crash.
    register("_broken_reference_for_test", lambda x: x.exp(), ref=_exp_changed_in_place,
             shapes=[((2, 3),)],
             covers=(_SquareHalfGradient,))
    try:
        status = handgrad.cli.main(["gradcheck", "--op", "_broken_reference_for_test",
                                    "--device", "cpu"])
    finally:
        REGISTRY[:] = [s for s in REGISTRY if s.name != "_broken_reference_for_test"]
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL" in out and "torch.autograd raised" in out
