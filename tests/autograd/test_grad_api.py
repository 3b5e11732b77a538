"""The autograd API around the backward engine, against torch: `handgrad.autograd.grad`,
`handgrad.autograd.backward`, `Tensor.backward(inputs=)`, `Tensor.register_hook`, and
handgrad Tensors inside an index.

Most tests write one scenario as a function of the library (`hg` or `torch`: the names
used, `lib.tensor`, `lib.autograd.grad`, `x.register_hook`, are the same in both), run
it on both with `on_both`, and compare everything it returns: gradients, which `.grad`s
were filled, the order in which hooks were called and what they saw.

Left out: the engine's own semantics (accumulation, retain_graph, freeing: test_autograd.py).
"""

from __future__ import annotations

import pytest
import torch

import handgrad as hg
from handgrad import autograd
from tests.torch_compare import assert_same_structure


def _plain(value):
    """Tensors (handgrad or torch) as torch tensors without history, recursively."""
    if isinstance(value, hg.Tensor):
        return value.data
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def on_both(scenario, device="cpu"):
    """Run scenario(lib, device) with lib = handgrad and lib = torch; compare the results."""
    got, want = _plain(scenario(hg, device)), _plain(scenario(torch, device))
    assert_same_structure(got, want)
    return got


def leaf(lib, values, device):
    return lib.tensor(values, dtype=lib.float64, device=device, requires_grad=True)


def raises_like_torch(scenario, error, match, device="cpu"):
    """scenario raises `error` on both libraries, handgrad's message matching `match`."""
    with pytest.raises(error):
        scenario(torch, device)
    with pytest.raises(error, match=match):
        scenario(hg, device)


# ====================================================================== grad()
def test_grad_of_leaves_and_non_leaves_touches_no_grad(device):
    def scenario(lib, device):
        x, w = leaf(lib, [1.0, -2.0, 3.0], device), leaf(lib, [0.5, 0.25, 2.0], device)
        h = x * w
        y = (h.tanh() * x).sum()
        grads = lib.autograd.grad(y, [x, h, w])
        return {"grads": grads, "type": type(grads).__name__,
                "leaf .grad": [x.grad, w.grad], "requires_grad": grads[0].requires_grad}

    result = on_both(scenario, device)
    assert result["leaf .grad"] == [None, None]


def test_grad_leaves_existing_grad_untouched_and_returns_a_tensor_per_input(device):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        (x * 3).sum().backward()
        first = lib.autograd.grad((x * x).sum(), x)  # one tensor in, a 1-tuple out
        return first, x.grad

    on_both(scenario, device)
    x = hg.tensor([1.0, 2.0], requires_grad=True)
    (g,) = hg.autograd.grad((x * x).sum(), x)
    assert isinstance(g, hg.Tensor) and g.grad_fn is None and x.grad is None


def test_grad_of_several_outputs_with_grad_outputs(device):
    def scenario(lib, device):
        x = leaf(lib, [[1.0, 2.0], [3.0, -1.0]], device)
        a, b = x.exp(), (x * x).sum()
        upstream = lib.tensor([[0.5, 1.5], [2.0, -1.0]], dtype=lib.float64, device=device)
        return (lib.autograd.grad([a, b], x, grad_outputs=[upstream, None], retain_graph=True),
                lib.autograd.grad(a, x, upstream))

    on_both(scenario, device)


def test_grad_with_respect_to_an_output_itself_and_inputs_in_a_chain(device):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        y = x * 2
        z = (y * y).sum()
        both = lib.autograd.grad(z, [z, y, x, x], retain_graph=True)
        upstream = lib.tensor([3.0, 4.0], dtype=lib.float64, device=device)
        identity = lib.autograd.grad(x, x, upstream)  # a leaf output is its own input
        return both, identity

    on_both(scenario, device)


def test_grad_runs_only_the_graph_between_outputs_and_inputs(device):
    calls = []

    class Counted(autograd.Function):
        """y = x;  dx = g (records that its backward ran)."""

        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            calls.append("below h")
            return g

    x = hg.tensor([1.0, 2.0], device=device, requires_grad=True)
    h = Counted.apply(x) * 2
    y = (h * h).sum()
    (g,) = hg.autograd.grad(y, h)
    assert g.tolist() == [4.0, 8.0] and calls == [], "nodes below the input must not run"
    assert x.grad is None
    y2 = (h * 3).sum()
    hg.autograd.grad(y2, x)
    assert calls == ["below h"]


def test_grad_frees_the_graph_unless_retain_graph(device):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        y = (x.sin() * x).sum()
        first = lib.autograd.grad(y, x, retain_graph=True)
        second = lib.autograd.grad(y, x)
        try:
            lib.autograd.grad(y, x)
        except RuntimeError:
            return first, second, "freed"
        return first, second, "not freed"

    assert on_both(scenario, device)[2] == "freed"


def test_grad_of_an_unused_input(device):
    def scenario(lib, device):
        x, w = leaf(lib, [1.0, 2.0], device), leaf(lib, [5.0, 6.0], device)
        y = (x * x).sum()
        return (lib.autograd.grad(y, [x, w], allow_unused=True, retain_graph=True),
                lib.autograd.grad(y, [x, w], materialize_grads=True, retain_graph=True),
                lib.autograd.grad([], [x], allow_unused=True))

    on_both(scenario, device)

    def unused(lib, device):
        x, w = leaf(lib, [1.0, 2.0], device), leaf(lib, [5.0, 6.0], device)
        return lib.autograd.grad((x * x).sum(), [x, w])

    raises_like_torch(unused, RuntimeError, "index 1 appears to not have been used.*allow_unused")

    def contradictory(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        return lib.autograd.grad((x * x).sum(), x, materialize_grads=True, allow_unused=False)

    raises_like_torch(contradictory, ValueError, "allow_unused")


@pytest.mark.parametrize("case, error, match", [
    ("input without grad", RuntimeError, "input 0 .*does not require grad"),
    ("output without grad", RuntimeError, "element 0 of tensors does not require grad"),
    ("non-scalar output", RuntimeError, "implicitly created only for scalar outputs"),
    ("wrong grad_output shape", RuntimeError, r"grad_output\[0\] has a shape of \(3,\)"),
    ("too few grad_outputs", RuntimeError, "got 2 tensors and 1 gradients"),
    ("no inputs", RuntimeError, "cannot be empty"),
    ("a number as input", TypeError, "have to be handgrad Tensors"),
])
def test_grad_errors_like_torch(case, error, match):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        three = lib.ones(3, dtype=lib.float64)
        call = {
            "input without grad": lambda: lib.autograd.grad((x * 2).sum(), lib.ones(2)),
            "output without grad": lambda: lib.autograd.grad(lib.ones(2).sum(), x),
            "non-scalar output": lambda: lib.autograd.grad(x * 2, x),
            "wrong grad_output shape": lambda: lib.autograd.grad(x * 2, x, three),
            "too few grad_outputs": lambda: lib.autograd.grad([x * 2, x.sum()], x, [x]),
            "no inputs": lambda: lib.autograd.grad(x.sum(), []),
            "a number as input": lambda: lib.autograd.grad(x.sum(), [3]),
        }[case]
        return call()

    # torch raises RuntimeError where handgrad says TypeError for a non-Tensor input
    with pytest.raises((error, RuntimeError)):
        scenario(torch, "cpu")
    with pytest.raises(error, match=match):
        scenario(hg, "cpu")


def test_higher_order_gradients_are_refused_with_a_clear_error():
    x = hg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="create_graph=True .*higher-order.*not supported"):
        hg.autograd.grad((x * x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="higher-order"):
        (x * x).sum().backward(create_graph=True)
    assert x.grad is None


def test_grad_fills_retained_grads_as_torch_does(device):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        h = x * 2
        h.retain_grad()
        (g,) = lib.autograd.grad((h * h).sum(), x)
        return g, h.grad, x.grad

    on_both(scenario, device)


def test_grad_through_a_deep_chain_is_iterative():
    x = hg.tensor([1.0], dtype=hg.float64, requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y * 1.0
    mid = y
    for _ in range(10):
        y = y * 2.0
    assert hg.autograd.grad(y.sum(), x, retain_graph=True)[0].item() == 1024.0
    assert hg.autograd.grad(y.sum(), mid)[0].item() == 1024.0


# ====================================================================== backward(inputs=)
def test_backward_inputs_fills_only_those_grads(device):
    def scenario(lib, device):
        x, w = leaf(lib, [1.0, -2.0], device), leaf(lib, [0.5, 3.0], device)
        h = x * w
        y = (h.exp() * w).sum()
        y.backward(inputs=[x], retain_graph=True)
        only_x = [x.grad.clone(), w.grad]
        y.backward(inputs=[h, w])  # a non-leaf input gets a .grad and keeps it
        return only_x, x.grad, w.grad, h.grad, h.retains_grad

    on_both(scenario, device)


def test_backward_inputs_accumulate_and_allow_repeats_and_unused(device):
    def scenario(lib, device):
        x, unused = leaf(lib, [1.0, 2.0], device), leaf(lib, [5.0, 6.0], device)
        y = (x * 3).sum()
        y.backward(inputs=(x, x), retain_graph=True)
        y.backward(inputs=x, retain_graph=True)
        y.backward(inputs=[unused])  # not in the graph: no error, no .grad
        return x.grad, unused.grad

    on_both(scenario, device)


def test_backward_inputs_errors(device):
    def empty(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        (x * 2).sum().backward(inputs=[])

    raises_like_torch(empty, RuntimeError, "cannot be empty", device)

    def no_grad_input(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        (x * 2).sum().backward(inputs=[lib.ones(2)])

    raises_like_torch(no_grad_input, RuntimeError, "does not require grad", device)


def test_autograd_backward_of_several_tensors(device):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        lib.autograd.backward([(x * 2).sum(), (x * x).sum()])
        first = x.grad.clone()
        upstream = lib.tensor([1.0, -1.0], dtype=lib.float64, device=device)
        lib.autograd.backward(x.exp(), upstream, inputs=[x])
        return first, x.grad

    on_both(scenario, device)


# ====================================================================== hooks
def test_leaf_hooks_see_the_summed_gradient_once_in_order_and_may_replace_it(device):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        seen = []
        x.register_hook(lambda g: seen.append(("first", g.clone())) or g * 10)
        x.register_hook(lambda g: seen.append(("second", g.clone())))
        (x * x + x).sum().backward()  # x is used three times: one call per hook
        return seen, x.grad

    on_both(scenario, device)


def test_hooks_on_non_leaves_change_what_flows_back(device):
    def scenario(lib, device):
        x = leaf(lib, [1.0, -2.0], device)
        h = x * 2
        order = []
        h.register_hook(lambda g: order.append("h: double") or g * 2)
        h.retain_grad()  # sees the gradient after the hooks, as in torch
        y = h.tanh() * h
        y.register_hook(lambda g: order.append("y"))
        x.register_hook(lambda g: order.append("x"))
        loss = y.sum()
        loss.register_hook(lambda g: order.append("loss") or g * 3)  # a hook on the root
        loss.backward()
        return order, x.grad, h.grad

    on_both(scenario, device)


def test_hook_gets_a_tensor_without_history_and_a_replacement_is_copied_into_grad():
    x = hg.tensor([1.0, 2.0], requires_grad=True)
    kept = []
    replacement = hg.tensor([7.0, 8.0])
    x.register_hook(lambda g: kept.append(g) or replacement)
    (x * 3).sum().backward()
    (g,) = kept
    assert isinstance(g, hg.Tensor) and not g.requires_grad and g.tolist() == [3.0, 3.0]
    assert x.grad.tolist() == [7.0, 8.0]
    storage = x.grad.data.untyped_storage().data_ptr()
    assert storage != replacement.data.untyped_storage().data_ptr()
    assert storage != g.data.untyped_storage().data_ptr()


def test_hooks_run_on_every_backward_and_in_grad(device):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        h = x * 2
        calls = []
        h.register_hook(lambda g: calls.append("h") or g * 5)
        x.register_hook(lambda g: calls.append("x") or g * 7)
        y = (h * h).sum()
        y.backward(retain_graph=True)
        y.backward(retain_graph=True)
        through_h = lib.autograd.grad(y, h, retain_graph=True)  # the hook applies to it
        through_x = lib.autograd.grad(y, x)
        return calls, x.grad, through_h, through_x

    on_both(scenario, device)


def test_hooks_off_the_path_to_the_inputs_do_not_run(device):
    def scenario(lib, device):
        x, w = leaf(lib, [1.0, 2.0], device), leaf(lib, [3.0, 4.0], device)
        calls = []
        w.register_hook(lambda g: calls.append("w"))
        k = w * 2
        k.register_hook(lambda g: calls.append("k"))
        y = (x * k).sum()
        lib.autograd.grad(y, x, retain_graph=True)
        y.backward(inputs=[x])
        return calls, x.grad, w.grad

    assert on_both(scenario, device)[0] == []


def test_hook_handles_remove_hooks(device):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        calls = []
        first = x.register_hook(lambda g: calls.append("first") or g * 10)
        x.register_hook(lambda g: calls.append("second"))
        first.remove()
        first.remove()  # a second remove does nothing
        with x.register_hook(lambda g: calls.append("scoped") or g * 100):
            pass
        (x * 2).sum().backward()
        h = x * 3
        handle = h.register_hook(lambda g: g * 0)
        handle.remove()
        (h * h).sum().backward()
        return calls, x.grad

    on_both(scenario, device)


def test_removing_the_last_leaf_hook_restores_the_plain_backward():
    x = hg.tensor([1.0, 2.0], requires_grad=True)
    before = len(autograd.hooks.hooked_leaves)
    handle = x.register_hook(lambda g: g)
    assert autograd.hooks.hooked_leaves[id(x)]() is x
    handle.remove()
    assert id(x) not in autograd.hooks.hooked_leaves
    y = hg.tensor([1.0], requires_grad=True)
    y.register_hook(lambda g: g)
    assert len(autograd.hooks.hooked_leaves) == before + 1
    del y
    assert len(autograd.hooks.hooked_leaves) == before, "a dead leaf must leave the slow path"


@pytest.mark.parametrize("case, error, match", [
    ("no grad", RuntimeError, "cannot register a hook on a tensor that doesn't require gradient"),
    ("new shape", RuntimeError, "has changed the size of value"),
    ("new dtype", RuntimeError, "has changed the type of value"),
    ("not a tensor", TypeError, "returned int"),
])
def test_hook_errors_like_torch(case, error, match):
    def scenario(lib, device):
        x = leaf(lib, [1.0, 2.0], device)
        hook = {
            "no grad": None,
            "new shape": lambda g: lib.ones(3, dtype=lib.float64),
            "new dtype": lambda g: g.float(),
            "not a tensor": lambda g: 5,
        }[case]
        if hook is None:
            return lib.ones(2).register_hook(lambda g: g)
        x.register_hook(hook)
        (x * 2).sum().backward()

    raises_like_torch(scenario, error, match)


# ====================================================================== indexing
@pytest.mark.parametrize("index", [
    lambda lib: [lib.tensor(0), lib.tensor(2)],
    lambda lib: (lib.tensor(1), slice(None)),
    lambda lib: [lib.tensor([0, 2, 0]), lib.tensor([1, 3, 1])],
    lambda lib: ([lib.tensor(0), lib.tensor(2)], slice(1, None)),
    lambda lib: (slice(None), [lib.tensor(3), lib.tensor(0)]),
    lambda lib: lib.tensor([True, False, True]),
], ids=["list of 0-d", "0-d and slice", "list of index tensors", "nested list", "list in dim 1",
        "mask"])
@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")
def test_handgrad_tensors_inside_an_index_act_as_torch_tensors(index, device):
    def scenario(lib, device):
        x = lib.tensor([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0]],
                       dtype=lib.float64, device=device, requires_grad=True)
        out = x[index(lib)]
        (out * out).sum().backward()
        target = lib.zeros(3, 4, dtype=lib.float64, device=device)
        target[index(lib)] = 1.0
        return out, x.grad, target

    on_both(scenario, device)
