"""Custom Functions written as torch's are written: each is defined once per base class
(torch.autograd.Function and handgrad.autograd.Function, same body: forward and backward
work on torch tensors in both), run on the same data, and everything compared: outputs,
what backward received (zeros or None per output), every input gradient, the errors."""

import math

import pytest
import torch

import handgrad as hg
from handgrad.autograd import Function, once_differentiable

BASES = {"torch": torch.autograd.Function, "handgrad": Function}


def _split(base, seen, materialize=True, mark=False):
    """x -> (2x, exp(x), x > 0 as int64), backward records the gradients it is given."""

    class Split(base):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.set_materialize_grads(materialize)
            double, exp = x * 2, x.exp()
            if mark:
                ctx.mark_non_differentiable(exp)
            return double, exp, (x > 0).long()

        @staticmethod
        def backward(ctx, g_double, g_exp, g_index):
            seen.append((g_double, g_exp, g_index))
            (x,) = ctx.saved_tensors
            grad = g_double * 2 if g_double is not None else torch.zeros_like(x)
            return grad + g_exp * x.exp() if g_exp is not None else grad

    return Split


def _leaf(kind, data):
    if kind == "torch":
        return data.clone().requires_grad_()
    return hg.tensor(data.clone(), requires_grad=True)


def _raw(t):
    return None if t is None else (t.data if isinstance(t, hg.Tensor) else t.detach())


def _both(loss_of, materialize=True, mark=False):
    """Run `loss_of(outputs)` through Split with each base; return both runs' records."""
    data = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    runs = {}
    for kind, base in BASES.items():
        seen = []
        x = _leaf(kind, data)
        outputs = _split(base, seen, materialize, mark).apply(x)
        loss_of(outputs).backward()
        runs[kind] = ([o.requires_grad for o in outputs], _raw(x.grad),
                      [tuple(_raw(g) for g in grads) for grads in seen])
    return runs["torch"], runs["handgrad"]


def _assert_same(theirs, ours):
    assert theirs[0] == ours[0], "requires_grad of the outputs differ"
    torch.testing.assert_close(ours[1], theirs[1])
    assert len(ours[2]) == len(theirs[2]) == 1, "backward ran once in each"
    for g_ours, g_theirs in zip(ours[2][0], theirs[2][0]):
        assert (g_ours is None) == (g_theirs is None), (g_ours, g_theirs)
        if g_theirs is not None:
            assert g_ours.dtype == g_theirs.dtype and g_ours.shape == g_theirs.shape
            torch.testing.assert_close(g_ours, g_theirs)


@pytest.mark.parametrize("loss_of", [
    lambda o: o[0].sum() + (o[1] * 3).sum(),          # both float outputs
    lambda o: o[1].sum(),                              # first output unused: zeros
    lambda o: (o[0] * o[0]).sum() + o[0].sum(),        # one output used twice
    lambda o: (o[0] * o[1]).sum(),                     # outputs meet again downstream
], ids=["both", "one_unused", "used_twice", "joined"])
def test_multi_output_functions_match_torch(loss_of):
    _assert_same(*_both(loss_of))


def test_set_materialize_grads_false_gives_none_for_unused_outputs():
    theirs, ours = _both(lambda o: o[0].sum(), materialize=False)
    _assert_same(theirs, ours)
    assert ours[2][0][1] is None and ours[2][0][2] is None


def test_mark_non_differentiable_outputs_need_no_grad_and_get_zeros():
    theirs, ours = _both(lambda o: o[0].sum() + o[1].sum(), mark=True)
    _assert_same(theirs, ours)
    assert ours[0] == [True, False, False]
    theirs, ours = _both(lambda o: o[0].sum(), mark=True, materialize=False)
    _assert_same(theirs, ours)


def test_hooks_and_retain_grad_on_each_output():
    data = torch.randn(4, dtype=torch.float64)
    grads = {}
    for kind, base in BASES.items():
        x = _leaf(kind, data)
        double, exp, _ = _split(base, []).apply(x)
        double.retain_grad()
        exp.register_hook(lambda g: g * 10)
        (double.sum() * 3 + exp.sum()).backward()
        grads[kind] = (_raw(x.grad), _raw(double.grad))
    torch.testing.assert_close(grads["handgrad"][0], grads["torch"][0])
    torch.testing.assert_close(grads["handgrad"][1], grads["torch"][1])


def test_grad_and_backward_inputs_through_a_multi_output_function():
    data = torch.randn(4, dtype=torch.float64)
    found = {}
    for kind, base in BASES.items():
        x = _leaf(kind, data)
        double, exp, _ = _split(base, []).apply(x)
        y = double * exp
        loss = (y * y).sum()
        grad = torch.autograd.grad if kind == "torch" else hg.autograd.grad
        gx, g_exp = grad(loss, [x, exp], retain_graph=True)
        (g_double,) = grad(loss, double, retain_graph=True)
        loss.backward(inputs=[exp])
        found[kind] = [_raw(g) for g in (gx, g_exp, g_double, exp.grad)]
        assert x.grad is None
    for ours, theirs in zip(found["handgrad"], found["torch"]):
        torch.testing.assert_close(ours, theirs)


def test_needs_input_grad_and_non_tensor_arguments_and_outputs():
    recorded = {}
    for kind, base in BASES.items():

        class Scale(base):
            @staticmethod
            def forward(ctx, x, factor, y, kind=kind):
                recorded[kind] = ctx.needs_input_grad
                ctx.factor = factor
                return x * factor, factor  # a number among the outputs comes back as is

            @staticmethod
            def backward(ctx, grad, grad_of_number):
                assert grad_of_number is None
                return grad * ctx.factor, None, None

        x = _leaf(kind, torch.ones(3))
        y = torch.ones(3) if kind == "torch" else hg.ones(3)
        out, number = Scale.apply(x, 2.5, y)
        assert number == 2.5
        out.sum().backward()
        assert _raw(x.grad).tolist() == [2.5] * 3
    assert recorded["handgrad"] == recorded["torch"] == (True, False, False)


def test_a_wrong_number_of_gradients_is_a_runtime_error_as_in_torch():
    for kind, base in BASES.items():

        class Two(base):
            @staticmethod
            def forward(ctx, a, b):
                return a * b, a + b

            @staticmethod
            def backward(ctx, g1, g2):
                return g1  # one gradient for two inputs

        a, b = _leaf(kind, torch.ones(2)), _leaf(kind, torch.ones(2))
        p, s = Two.apply(a, b)
        with pytest.raises(RuntimeError, match="incorrect number of gradients"):
            (p + s).sum().backward()


def test_a_backward_through_freed_outputs_is_refused_unless_retained():
    x = _leaf("handgrad", torch.ones(3))
    double, exp, _ = _split(Function, []).apply(x)
    exp.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        double.sum().backward()
    x = _leaf("handgrad", torch.ones(3))
    double, exp, _ = _split(Function, []).apply(x)
    exp.sum().backward(retain_graph=True)
    double.sum().backward()
    torch.testing.assert_close(x.grad.data, torch.full((3,), 2 + math.e))


def test_no_graph_without_grad_and_results_are_handgrad_tensors():
    x = hg.ones(3)
    outputs = _split(Function, []).apply(x)
    assert all(type(o) is hg.Tensor and not o.requires_grad for o in outputs)
    with hg.no_grad():
        outputs = _split(Function, []).apply(hg.ones(3, requires_grad=True))
    assert not any(o.requires_grad for o in outputs)


class LegendrePolynomial3(Function):
    """torch's tutorial Function, unchanged but for the import of Function."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


def test_torch_tutorial_legendre_polynomial_trains_as_in_torch():
    x = torch.linspace(-math.pi, math.pi, 200)
    y = torch.sin(x)
    params = {}
    for kind in BASES:
        lib = torch if kind == "torch" else hg
        if kind == "torch":
            P3 = type("P3", (torch.autograd.Function,), {
                "forward": LegendrePolynomial3.__dict__["forward"],
                "backward": LegendrePolynomial3.__dict__["backward"]}).apply
        else:
            P3 = LegendrePolynomial3.apply
        xs, ys = (x, y) if kind == "torch" else (hg.tensor(x), hg.tensor(y))
        a, b, c, d = (lib.full((), v, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3))
        for _ in range(5):
            loss = (a + b * P3(c + d * xs) - ys).pow(2).sum()
            loss.backward()
            with lib.no_grad():
                for w in (a, b, c, d):
                    w -= 5e-6 * w.grad
                    w.grad = None
        params[kind] = [w.item() for w in (a, b, c, d)]
    assert params["handgrad"] == pytest.approx(params["torch"], rel=1e-5, abs=1e-7)


def test_once_differentiable_and_setup_context_styles():
    class Cube(Function):
        @staticmethod
        def forward(x):
            return x ** 3

        @staticmethod
        def setup_context(ctx, inputs, output):
            (x,) = inputs
            ctx.save_for_backward(x)

        @staticmethod
        @once_differentiable
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x ** 2

    x = hg.tensor([1.0, 2.0], requires_grad=True)
    Cube.apply(x).sum().backward()
    assert x.grad.tolist() == [3.0, 12.0]
    assert not Cube.apply(hg.tensor([1.0])).requires_grad


def test_mark_dirty_and_save_for_forward_say_they_are_not_supported():
    class Dirty(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(NotImplementedError, match="mark_dirty"):
        Dirty.apply(hg.ones(2, requires_grad=True))


def test_a_forward_returning_handgrad_tensors_is_told_to_return_torch_tensors():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return hg.tensor(x), hg.tensor(x)

    with pytest.raises(TypeError, match="Wrong.forward returned a handgrad Tensor"):
        Wrong.apply(hg.ones(2, requires_grad=True))


def test_handgrad_ops_keep_their_first_output_only_contract():
    values, indices = hg.randn(4, requires_grad=True).sort()
    assert values.requires_grad and not indices.requires_grad
    assert not type(values.grad_fn).all_outputs_differentiable
