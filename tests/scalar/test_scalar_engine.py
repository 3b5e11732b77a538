"""Value against torch float64 (value and every input gradient) and central differences.

One helper, `check_op`, serves every op: it draws seeded inputs in the op's domain,
evaluates the expression with Values and with float64 torch tensors, pushes the same
non-uniform upstream gradient through both backward passes, and compares the result
and each input's gradient; then it compares the gradients with central differences.
"""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from handgrad.scalar import Value

# name -> (expression on Values, the same on torch tensors or None if identical,
#          number of inputs, range each input is drawn from)
OPS = {
    "add": (lambda a, b: a + b, None, 2, (-3, 3)),
    "sub": (lambda a, b: a - b, None, 2, (-3, 3)),
    "mul": (lambda a, b: a * b, None, 2, (-3, 3)),
    "div": (lambda a, b: a / b, None, 2, (0.5, 3)),
    "pow_value": (lambda a, b: a**b, None, 2, (0.5, 2)),
    "add_number": (lambda a: a + 2.5, None, 1, (-3, 3)),
    "radd_number": (lambda a: 2.5 + a, None, 1, (-3, 3)),
    "sub_number": (lambda a: a - 2.5, None, 1, (-3, 3)),
    "rsub_number": (lambda a: 2.5 - a, None, 1, (-3, 3)),
    "mul_number": (lambda a: a * -1.5, None, 1, (-3, 3)),
    "rmul_number": (lambda a: -1.5 * a, None, 1, (-3, 3)),
    "div_number": (lambda a: a / 4, None, 1, (-3, 3)),
    "rdiv_number": (lambda a: 4 / a, None, 1, (0.5, 3)),
    "pow_int": (lambda a: a**3, None, 1, (-2, 2)),
    "pow_square": (lambda a: a**2, None, 1, (-2, 2)),
    "pow_fraction": (lambda a: a**-1.5, None, 1, (0.5, 3)),
    "rpow_number": (lambda a: 2.5**a, None, 1, (-2, 2)),
    "neg": (lambda a: -a, None, 1, (-3, 3)),
    "exp": (lambda a: a.exp(), None, 1, (-3, 3)),
    "log": (lambda a: a.log(), None, 1, (0.1, 5)),
    "tanh": (lambda a: a.tanh(), None, 1, (-3, 3)),
    "sigmoid": (lambda a: a.sigmoid(), None, 1, (-6, 6)),
    "relu": (lambda a: a.relu(), None, 1, (-3, 3)),
    "leaky_relu": (lambda a: a.leaky_relu(0.1),
                   lambda a: torch.nn.functional.leaky_relu(a, 0.1), 1, (-3, 3)),
    "leaky_relu_default": (lambda a: a.leaky_relu(),
                           lambda a: torch.nn.functional.leaky_relu(a), 1, (-3, 3)),
    "abs": (lambda a: a.abs(), None, 1, (-3, 3)),
    "builtin_abs": (lambda a: abs(a), None, 1, (-3, 3)),
    "sum": (lambda a, b, c: Value.sum([a, b, c, a]), lambda a, b, c: a + b + c + a, 3, (-3, 3)),
    "sum_with_numbers": (lambda a, b: Value.sum([a, 1.5, b, 2]),
                         lambda a, b: a + 1.5 + b + 2, 2, (-3, 3)),
    # A composite that reuses inputs, so gradients must accumulate inside the graph.
    "composite": (lambda a, b: ((a * b).tanh() + a.exp() / (1 + b * b)).sigmoid() * a - b**2,
                  None, 2, (-2, 2)),
}
KINKS = {"relu", "leaky_relu", "leaky_relu_default", "abs", "builtin_abs"}


def draw_inputs(name: str, seed: int) -> list[float]:
    _, _, arity, (low, high) = OPS[name]
    rng = random.Random(f"{name}-{seed}")
    values = [rng.uniform(low, high) for _ in range(arity)]
    if name in KINKS:  # keep central differences away from the kink at 0
        values = [v if abs(v) > 0.1 else v + 0.5 for v in values]
    return values


def value_grads(fn, xs: list[float], upstream: float) -> tuple[float, list[float]]:
    inputs = [Value(x) for x in xs]
    out = fn(*inputs)
    out.backward(upstream)
    return out.data, [v.grad for v in inputs]


def check_op(name: str, seed: int) -> None:
    fn, torch_fn, _, _ = OPS[name]
    torch_fn = torch_fn or fn
    xs = draw_inputs(name, seed)
    upstream = random.Random(seed).uniform(0.5, 2.0) * (-1) ** seed  # not 1: catches a
    # backward that ignores the incoming gradient

    data, grads = value_grads(fn, xs, upstream)

    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    expected = torch_fn(*tensors)
    expected.backward(torch.tensor(upstream, dtype=torch.float64))
    assert data == pytest.approx(expected.item(), rel=1e-12, abs=1e-12), (name, xs)
    for i, (grad, t) in enumerate(zip(grads, tensors)):
        assert grad == pytest.approx(t.grad.item(), rel=1e-10, abs=1e-12), (name, xs, i)

    h = 1e-6  # central differences in float64
    for i in range(len(xs)):
        plus, minus = list(xs), list(xs)
        plus[i] += h
        minus[i] -= h
        numeric = (fn(*map(Value, plus)).data - fn(*map(Value, minus)).data) / (2 * h)
        assert grads[i] == pytest.approx(upstream * numeric, rel=1e-5, abs=1e-6), (name, xs, i)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", sorted(OPS))
def test_op_matches_torch_and_finite_differences(name, seed):
    check_op(name, seed)


# ---- corners: the values PyTorch gives where Python would raise or differ ------------

CORNERS = [
    # (expression on a Value and on a tensor, input)
    (lambda a: a.relu(), 0.0),
    (lambda a: a.abs(), 0.0),
    (lambda a: a.log(), 0.0),
    (lambda a: a.log(), -1.0),
    (lambda a: a.exp(), 1000.0),
    (lambda a: a.tanh(), 1000.0),
    (lambda a: a.tanh(), -1000.0),
    (lambda a: a.sigmoid(), -1000.0),
    (lambda a: a.sigmoid(), 1000.0),
    (lambda a: a**0, 0.0),
    (lambda a: a**2, 0.0),
    (lambda a: a**0.5, 0.0),
    (lambda a: a**-1, 0.0),
    (lambda a: a**0.5, -4.0),
    (lambda a: 1 / a, 0.0),
    (lambda a: a / 0.0, 2.0),
    (lambda a: 0.0**a, 2.0),
    (lambda a: (-2.0) ** a, 0.5),
    (lambda a: a.relu(), math.nan),  # torch passes nan through, with gradient 1
    (lambda a: a.abs(), math.nan),
    (lambda a: a.sigmoid(), math.nan),
    (lambda a: a**1000.5, -10.0),  # negative base, fractional exponent, huge: nan, not inf
    (lambda a: a**1001, -10.0),  # negative base, odd exponent, overflow: -inf
]


@pytest.mark.parametrize("fn, x", CORNERS)
def test_corners_match_torch(fn, x):
    v = Value(x)
    out = fn(v)
    out.backward()
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    expected = fn(t)
    expected.backward()
    torch.testing.assert_close(torch.tensor([out.data, v.grad], dtype=torch.float64),
                               torch.stack([expected.detach(), t.grad]), equal_nan=True)


def test_leaky_relu_slope_at_zero_and_pow_with_value_exponent_at_zero():
    for fn, torch_fn in [(lambda a, b: a.leaky_relu(0.2) * b,
                          lambda a, b: torch.nn.functional.leaky_relu(a, 0.2) * b),
                         (lambda a, b: a**b, lambda a, b: a**b)]:
        vs = [Value(0.0), Value(2.0)]
        fn(*vs).backward()
        ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in (0.0, 2.0)]
        torch_fn(*ts).backward()
        assert [v.grad for v in vs] == [t.grad.item() for t in ts]


@pytest.mark.parametrize("base", [-2.0, -0.0, 0.0, 2.0])
@pytest.mark.parametrize("exponent", [-2.0, -1.0, -0.5, 0.0, 0.5, 2.0, 3.0])
def test_pow_with_a_value_exponent_at_a_base_of_zero_or_below_matches_torch(base, exponent):
    """a ** b with both Values where log(a) is undefined: d/db = a**b * log(a) is nan for
    a < 0, 0 at a = 0 with b >= 0, and a**b * (-inf) at a = 0 with b < 0, as in torch."""
    a, b = Value(base), Value(exponent)
    out = a**b
    out.backward()
    ta, tb = (torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in (base, exponent))
    expected = ta**tb
    expected.backward()
    torch.testing.assert_close(torch.tensor([out.data, a.grad, b.grad], dtype=torch.float64),
                               torch.stack([expected.detach(), ta.grad, tb.grad]),
                               equal_nan=True)


# ---- random graphs -------------------------------------------------------------------

UNARY = {
    "tanh": lambda a: a.tanh(),
    "sigmoid": lambda a: a.sigmoid(),
    "exp_small": lambda a: (a * 0.1).exp(),
    "square": lambda a: a**2,
    "neg": lambda a: -a,
    "scale": lambda a: 0.5 * a + 1,
}
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b}


@settings(deadline=None)  # examples: the suite profile (tests/conftest.py)
@given(xs=st.lists(st.floats(-2, 2), min_size=2, max_size=4),
       program=st.lists(st.tuples(st.sampled_from(sorted(UNARY) + sorted(BINARY)),
                                  st.integers(0, 100), st.integers(0, 100)),
                        min_size=1, max_size=12))
def test_random_graphs_match_torch(xs, program):
    """Random programs over a growing pool of nodes (so nodes get reused) agree with torch."""

    def evaluate(inputs):
        pool = list(inputs)
        for op, i, j in program:
            a, b = pool[i % len(pool)], pool[j % len(pool)]
            pool.append(UNARY[op](a) if op in UNARY else BINARY[op](a, b))
        return pool[-1] * 1.0 + sum(pool[len(inputs):]) * 0.25  # built-in sum: a chain of +

    values = [Value(x) for x in xs]
    out = evaluate(values)
    out.backward()
    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    expected = evaluate(tensors)
    expected.backward()
    assert out.data == pytest.approx(expected.item(), rel=1e-9, abs=1e-9)
    for v, t in zip(values, tensors):
        expected_grad = 0.0 if t.grad is None else t.grad.item()  # None: input unused
        assert v.grad == pytest.approx(expected_grad, rel=1e-9, abs=1e-9)


# ---- backward semantics ----------------------------------------------------------------


def test_leaf_gradients_accumulate_like_torch_and_interior_ones_do_not():
    a, b = Value(1.5), Value(-0.5)
    h = (a * b).tanh()
    out = h * a + b
    out.backward()
    first = (a.grad, b.grad, h.grad)
    out.backward()  # leaves: add the same gradient again (torch with retain_graph=True)
    assert (a.grad, b.grad) == pytest.approx((2 * first[0], 2 * first[1]))
    assert h.grad == pytest.approx(first[2])  # interior: this call's gradient, not a sum

    ta = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(-0.5, dtype=torch.float64, requires_grad=True)
    tout = (ta * tb).tanh() * ta + tb
    tout.backward(retain_graph=True)
    tout.backward()
    assert (a.grad, b.grad) == pytest.approx((ta.grad.item(), tb.grad.item()), rel=1e-12)


def test_backward_on_a_subexpression_then_on_the_result():
    # micrograd leaves stale interior gradients behind and gets this wrong.
    x = Value(0.3)
    y = x.tanh()
    z = y * y
    y.backward()
    z.backward()
    t = math.tanh(0.3)
    assert x.grad == pytest.approx((1 - t * t) + 2 * t * (1 - t * t), rel=1e-12)


def test_backward_of_a_leaf_and_a_gradient_argument():
    a = Value(3.0)
    a.backward()
    a.backward(2)
    assert a.grad == 3.0
    b = Value(2.0)
    (b * b).backward(gradient=0.5)
    assert b.grad == 2.0


def test_a_graph_100_000_nodes_deep():
    x = Value(0.5)
    y = x
    for i in range(100_000):  # alternate two ops so both kinds of node are deep
        y = (y * 1.0000001).tanh() if i % 2 else y + 1e-7
    y.backward()
    # Chain rule by hand, in the same order.
    expected, v = 1.0, 0.5
    derivatives = []
    for i in range(100_000):
        if i % 2:
            v = math.tanh(v * 1.0000001)
            derivatives.append((1 - v * v) * 1.0000001)
        else:
            v = v + 1e-7
    for d in derivatives:
        expected *= d
    assert y.data == pytest.approx(v, rel=1e-12)
    assert x.grad == pytest.approx(expected, rel=1e-9)
    del y  # freeing a deep chain must not overflow the C stack either


def test_graphs_have_no_reference_cycles_so_they_are_freed_at_once():
    import gc
    import sys

    x = Value(1.0)
    before = sys.getrefcount(x)
    gc.disable()  # prove it without the cycle collector (micrograd's graphs need it)
    try:
        y = (x * 2).tanh() + x
        y.backward()
        assert sys.getrefcount(x) > before
        del y
        assert sys.getrefcount(x) == before
    finally:
        gc.enable()


def test_a_cycle_is_a_clear_error():
    a = Value(1.0)
    b = a * 2
    c = b + 1
    b._prev = (c,)  # only hand edits can make a cycle
    b._local_grads = (1.0,)
    with pytest.raises(ValueError, match="cycle"):
        c.backward()


@pytest.mark.parametrize("bad, message", [
    ([1.0, 2.0], "not 2 numbers"),
    ((1.0,), "not 1 numbers"),
    ("3", "real number"),
    (2 + 1j, "real number"),
    (None, "real number"),
])
def test_non_scalar_data_is_a_clear_error(bad, message):
    with pytest.raises(TypeError, match=message):
        Value(bad)


def test_other_misuse_is_a_clear_error():
    with pytest.raises(TypeError, match="Value itself"):
        Value(Value(1.0))
    with pytest.raises(TypeError, match="sequence"):
        Value(1.0) + [1.0, 2.0]
    with pytest.raises(TypeError, match="tensor engine"):
        Value(1.0) * torch.ones(3)
    with pytest.raises(TypeError, match="real number"):
        Value(1.0) - "2"
    with pytest.raises(TypeError, match="backward"):
        (Value(1.0) * 2).backward([1.0, 2.0])
    with pytest.raises(TypeError, match="sum"):
        Value.sum([Value(1.0), "x"])
    with pytest.raises(TypeError, match=r"Value.sum\(\[a, b, c\]\)"):
        Value.sum(Value(1.0))  # one Value, not an iterable of them
    with pytest.raises(TypeError, match="negative_slope"):
        Value(-1.0).leaky_relu("0.1")
    with pytest.raises(TypeError, match="negative_slope"):
        Value(-1.0).leaky_relu(Value(0.1))  # would make data a Value


def test_backward_misuse_is_a_clear_error():
    out = Value(1.0) * 2
    with pytest.raises(TypeError, match=r"one number.*2 numbers"):
        out.backward([1.0, 2.0])
    with pytest.raises(TypeError, match=r"plain number.*gradient\.data"):
        out.backward(Value(2.0))  # no gradients of gradients: say so
    with pytest.raises(TypeError, match="real number"):
        out.backward("1")
    outputs = [Value(1.0) * 2, Value(2.0) * 3]  # e.g. a Layer's several outputs
    with pytest.raises(TypeError, match=r"list.*Value\.sum"):
        Value.backward(outputs)


def test_backward_with_gradient_none_means_one_as_in_torch():
    a = Value(3.0)
    (a * a).backward(None)
    assert a.grad == 6.0


def test_data_from_other_number_types():
    import numpy as np

    assert Value(3).data == 3.0 and type(Value(3).data) is float
    assert Value(True).data == 1.0
    assert Value(np.float32(0.5)).data == 0.5
    assert Value(np.int64(4)).data == 4.0
    assert Value(np.array(2.5)).data == 2.5
    assert Value(torch.tensor(1.5)).data == 1.5
    assert (Value(1.0) + np.float64(2.0)).data == 3.0
    assert (Value(2.0) ** np.int64(3)).data == 8.0


def test_sum_of_many_values_is_one_node():
    vs = [Value(float(i)) for i in range(10)]
    s = Value.sum(v * v for v in vs)
    assert s.data == sum(i * i for i in range(10))
    assert len(s._prev) == 10 and s._op == "sum"
    s.backward()
    assert [v.grad for v in vs] == [2.0 * i for i in range(10)]
    assert Value.sum([]).data == 0.0


def test_repr_labels_and_slots():
    a = Value(2.0, label="a")
    assert repr(a) == "Value(data=2.0, grad=0.0, label='a')"
    b = (a * 3).tanh()
    assert repr(b) == "Value(data=0.999988, grad=0.0, op='tanh')"
    assert repr(1 - a) == "Value(data=-1.0, grad=0.0, op='1 -')"
    assert not hasattr(a, "__dict__")  # __slots__: no per-Value dict
    with pytest.raises(AttributeError):
        a.not_a_field = 1
