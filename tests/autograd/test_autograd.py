"""The backward engine's semantics against torch: reused nodes, diamonds, accumulation,
retain_graph, grad mode, detach, retain_grad, deep chains, freeing of saved tensors,
in-place rules, and the gradient conventions at ties and kinks.

One helper (`same_as_torch`) writes each expression once, runs it on handgrad leaves
and on torch leaves, pushes the same random upstream gradient through both and compares
the outputs and every input gradient.

Left out: per-op checks over many shapes (test_ops.py), the Tensor API (test_tensor_api.py).
"""

from __future__ import annotations

import gc
import time
import weakref

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
from handgrad.autograd import Function
from tests.torch_compare import same_as_torch

NAN = float("nan")


# ====================================================================== graph shapes
@pytest.mark.parametrize("fn", [
    lambda a: a + a, lambda a: a * a, lambda a: a - a, lambda a: a / a,
    lambda a: (a * a) * a, lambda a: a @ a.T, lambda a: a.exp() * a.exp(),
], ids=["a+a", "a*a", "a-a", "a/a", "a*a*a", "a@a.T", "exp*exp"])
def test_reused_nodes(fn, device):
    same_as_torch(fn, [[1.0, -2.0], [3.0, 0.5]], device=device)


def test_diamond_and_shared_intermediates(device):
    def diamond(a, b):
        h = a * b  # used by three consumers, one of them twice
        return (h.exp() + h.sin() * h + (h * h).tanh()).sum(1)

    same_as_torch(diamond, [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], [0.7, -0.8, 0.9],
                  device=device)


def test_gradient_of_a_leaf_output_is_the_upstream(device):
    x = hg.tensor([1.0, 2.0], device=device, requires_grad=True)
    x.backward(hg.tensor([3.0, 4.0], device=device))
    assert x.grad.tolist() == [3.0, 4.0]


def test_gradients_accumulate_across_backward_calls_until_zeroed(device):
    x = hg.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]  # 3 + 2x
    x.grad.zero_()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    x.grad = None
    x.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_leaf_gradients_never_share_storage(device):
    # cat's backward hands out slices of one gradient; c receives that gradient whole.
    a = hg.randn(2, device=device, requires_grad=True)
    b = hg.randn(3, device=device, requires_grad=True)
    c = hg.randn(5, device=device, requires_grad=True)
    ((hg.cat([a, b]) + c) * 2).backward(hg.ones(5, device=device))
    storages = {t.grad.data.untyped_storage().data_ptr() for t in (a, b, c)}
    assert len(storages) == 3
    with hg.no_grad():
        c.grad.zero_()
    assert b.grad.tolist() == [2.0, 2.0, 2.0]


def test_retain_graph_allows_a_second_backward(device):
    x = hg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()
    # torch refuses the same way
    t = torch.tensor([1.0, 2.0], device=device, requires_grad=True)
    s = (t * t).sum()
    s.backward()
    with pytest.raises(RuntimeError, match="second time"):
        s.backward()


def test_backward_needs_a_scalar_or_a_gradient_of_the_right_shape(device):
    x = hg.randn(2, 3, device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"implicitly created only for scalar.*\(2, 3\)"):
        y.backward()
    with pytest.raises(RuntimeError,
                       match=r"backward: .*grad_output\[0\] has a shape of \(3,\).*\(2, 3\)"):
        y.backward(hg.ones(3, device=device))
    with pytest.raises(RuntimeError, match="does not require grad"):
        hg.ones(2, device=device).sum().backward()


def test_deep_chain_of_100000_ops_runs_in_linear_time_and_frees():
    def chain(n):
        x = hg.tensor(1.0, requires_grad=True)
        y = x
        start = time.perf_counter()
        for _ in range(n):
            y = y + 1.0
        y.backward()
        elapsed = time.perf_counter() - start
        assert x.grad.item() == 1.0 and y.item() == n + 1
        return elapsed, y

    small = min(chain(10_000)[0] for _ in range(2))
    big, y = chain(100_000)  # recursion would die here; quadratic time would take ~100x
    assert big < 40 * small, f"100,000 ops took {big:.2f} s, 10,000 took {small:.3f} s"
    node = weakref.ref(y.grad_fn)
    del y  # freeing a 100,000-deep graph must not overflow the C stack either
    gc.collect()
    assert node() is None


# ====================================================================== grad mode, detach
def test_no_grad_context_decorator_and_enable_grad(device):
    x = hg.ones(2, device=device, requires_grad=True)
    with hg.no_grad():
        y = x * 2
        with hg.enable_grad():
            z = x * 2
        assert not hg.is_grad_enabled()
    assert hg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    assert z.requires_grad and not z.is_leaf

    @hg.no_grad()
    def double(t):
        return t * 2

    @hg.enable_grad()
    def triple(t):
        return t * 3

    assert not double(x).requires_grad and hg.is_grad_enabled()
    with hg.no_grad():
        assert triple(x).requires_grad
    with hg.set_grad_enabled(False):
        assert not (x * 1).requires_grad
    with pytest.raises(ZeroDivisionError), hg.no_grad():
        1 / 0
    assert hg.is_grad_enabled(), "grad mode must be restored after an exception"


def test_detach_shares_data_and_cuts_the_graph(device):
    def fn(x):
        return (x.detach() * x).sum()

    x = same_as_torch(fn, [1.0, -2.0, 3.0], device=device)[0]
    d = x.detach()
    assert d.is_leaf and not d.requires_grad and d.data.data_ptr() == x.data.data_ptr()
    y = x * 2
    y.detach_()
    assert y.is_leaf and not y.requires_grad


def test_requires_grad_propagation_and_is_leaf(device):
    a = hg.ones(2, device=device)
    b = hg.ones(2, device=device, requires_grad=True)
    assert (a * a).is_leaf and not (a * a).requires_grad
    assert (a * b).requires_grad and not (a * b).is_leaf and (a * b).grad_fn is not None
    assert a.is_leaf and b.is_leaf
    a.requires_grad_()
    assert a.requires_grad and a.is_leaf
    with pytest.raises(RuntimeError, match="leaf tensors only.*detach"):
        (a * b).requires_grad_(False)
    with pytest.raises(RuntimeError, match="floating-point"):
        hg.tensor([1, 2], device=device).requires_grad_()


def test_retain_grad_keeps_the_gradient_of_a_non_leaf(device):
    x = hg.tensor([1.0, 2.0], device=device, requires_grad=True)
    h = x * x
    h.retain_grad()
    k = h * 3  # no retain_grad: no .grad, like torch
    (k * h).sum().backward()
    t = torch.tensor([1.0, 2.0], device=device, requires_grad=True)
    th = t * t
    th.retain_grad()
    (th * 3 * th).sum().backward()
    torch.testing.assert_close(h.grad.data, th.grad)
    torch.testing.assert_close(x.grad.data, t.grad)
    assert k.grad is None and not h.grad.requires_grad
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        hg.ones(2).retain_grad()


def test_grad_is_a_tensor_without_history(device):
    x = hg.randn(3, device=device, requires_grad=True)
    (x * x).sum().backward()
    assert isinstance(x.grad, hg.Tensor) and not x.grad.requires_grad
    assert x.grad.norm().item() > 0  # user code reads it like torch


# ====================================================================== freeing memory
def test_saved_tensors_are_freed_by_backward(device):
    x = hg.randn(1000, device=device, requires_grad=True)
    h = x * 2
    saved = weakref.ref(h.data)
    y = h.sin()  # Sin saves its input, h's data
    del h
    loss = y.sum()
    assert saved() is not None
    loss.backward(retain_graph=True)
    assert saved() is not None, "retain_graph=True must keep saved tensors"
    loss.backward()
    assert saved() is None, "backward must free the tensors saved for it"
    node = weakref.ref(y.grad_fn)
    del y, loss
    assert node() is None, "the graph must go away with its outputs"


def _live(kind: type) -> int:
    return sum(issubclass(type(o), kind) for o in gc.get_objects())


def test_no_memory_growth_over_10000_training_steps():
    """A training-like loop leaves no graph nodes, tensors or other objects behind
    (torch's CPU memory is held only by tensors, so counting them counts it)."""
    gen = torch.Generator().manual_seed(0)
    inputs = hg.Tensor(torch.randn(16, 8, generator=gen))
    w = hg.Tensor(torch.randn(8, 4, generator=gen) * 0.1, requires_grad=True)
    b = hg.zeros(4, requires_grad=True)

    def step():
        loss = ((inputs @ w + b).tanh().log_softmax(-1) ** 2).mean()
        loss.backward()
        with hg.no_grad():
            for p in (w, b):
                p.sub_(p.grad * 0.01)
                p.grad = None

    step()
    gc.collect()
    before = (len(gc.get_objects()), _live(torch.Tensor), _live(Function))
    for _ in range(10_000):
        step()
    gc.collect()
    after = (len(gc.get_objects()), _live(torch.Tensor), _live(Function))
    assert after[1:] == before[1:], f"live (torch tensors, nodes) went {before[1:]} -> {after[1:]}"
    assert after[0] - before[0] < 50, f"live objects went {before[0]} -> {after[0]}"


# ====================================================================== in place
def test_in_place_on_a_leaf_needs_no_grad(device):
    w = hg.ones(3, device=device, requires_grad=True)
    for op in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.zero_(), lambda: w.fill_(2),
               lambda: w.copy_(hg.zeros(3, device=device)), lambda: w.clamp_(0, 1)):
        with pytest.raises(RuntimeError, match="no_grad"):
            op()
    with pytest.raises(RuntimeError, match="no_grad"):
        w += 1
    with hg.no_grad():
        w.add_(1).mul_(3)
        w -= 1
        w[0] = 10.0
    assert w.tolist() == [10.0, 5.0, 5.0] and w.is_leaf and w.requires_grad
    t = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):  # torch refuses too
        t.add_(1)


def test_changing_a_saved_tensor_in_place_is_detected_at_backward(device):
    def run(lib, x):
        y = x.exp()  # exp saves its output
        with lib.no_grad():
            y.mul_(2)
        y.sum().backward()

    x = hg.randn(3, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Exp: .*shape \(3,\).*modified in place"):
        run(hg, x)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        run(torch, torch.randn(3, device=device, requires_grad=True))


def test_changing_a_saved_index_in_place_is_detected(device):
    x = hg.randn(4, device=device, requires_grad=True)
    index = hg.tensor([0, 2, 2], device=device)
    y = x[index]
    index[0] = 1
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()


def test_in_place_on_a_non_leaf_takes_its_place_in_the_graph(device):
    def fn(x):
        y = x * 2
        y += 1
        y.mul_(y)
        y.sub_(x, alpha=2)
        y /= 3
        y.clamp_(max=4.0)
        return y

    def out_of_place(x):  # torch's autograd refuses y.mul_(y); the math is the same
        y = x * 2 + 1
        return ((y * y - 2 * x) / 3).clamp(max=4.0)

    same_as_torch(fn, [0.5, -1.0, 2.0], device=device, ref=out_of_place)

    # torch refuses here (sin saved y, then y changed); handgrad rebinds y to a new
    # node, so sin's saved tensor is untouched and the gradient is still right.
    x = hg.tensor([0.5, -1.0], device=device, requires_grad=True)
    y = x * 2
    z = y.sin()
    y.mul_(3)
    (z + y).sum().backward()
    torch.testing.assert_close(x.grad.data, 2 * torch.cos(2 * x.data) + 6)


def test_in_place_on_a_graph_tensor_with_live_views_is_refused(device):
    # handgrad records y.mul_(3) as a new result: a live view (or base) of y's old data
    # would keep the old values where torch's would see the new ones, so it is refused.
    x = hg.ones(3, device=device, requires_grad=True)
    y = x * 2
    view = y[0:2]
    for target, made_by in ((view, "GetItem"), (y, "Mul")):
        with pytest.raises(RuntimeError, match=rf"mul_: .*shape.*{made_by}.*shares its data"):
            target.mul_(3)
    for make_view in (lambda t: t.reshape(3, 1), lambda t: t.expand(2, 3),
                      lambda t: t.unsqueeze(0).transpose(0, 1), lambda t: t.detach()):
        other = make_view(y)
        with pytest.raises(RuntimeError, match="add_: .*shares its data"):
            y.add_(1)
        del other
    del view
    y.mul_(3)  # no live view left: recorded as usual
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0, 6.0]

    # A view whose base is gone is free to change, and its gradient is torch's.
    def fn(x):
        part = (x * 2)[0:2]
        part.mul_(3)
        return part

    same_as_torch(fn, [0.5, -1.0, 2.0], device=device)
    # Under no_grad the change goes into the shared storage, as in torch.
    with hg.no_grad():
        y = x * 2
        y[0:2].mul_(3)
    assert y.tolist() == [6.0, 6.0, 2.0]


def test_views_of_a_long_lived_tensor_do_not_pile_up():
    w = hg.randn(4, 4, requires_grad=True)
    for _ in range(10_000):  # w.T every step, as in a hand-written layer
        (hg.ones(2, 4) @ w.T).sum()
    assert len(w._alias.refs) <= 16


def test_in_place_with_an_operand_in_the_graph_records_it(device):
    def fn(w):
        x = w.detach() * 0 + 1  # a tensor outside the graph
        x.add_(w)  # torch: x joins the graph
        x.mul_(w)
        return x

    same_as_torch(fn, [0.5, -1.0, 2.0], device=device)


def test_in_place_keeps_the_target_shape_and_dtype(device):
    x = hg.ones(3, device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"add_: .*shape \(2, 3\).*target's shape \(3,\)"):
        y.add_(hg.ones(2, 3, device=device))
    y.add_(hg.ones(3, dtype=hg.float64, device=device, requires_grad=True))
    assert y.dtype == hg.float32  # as torch: the target's dtype is kept
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_item_assignment_into_a_graph_tensor_is_refused(device):
    x = hg.randn(3, device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="__setitem__"):
        y[0] = 5.0
    with hg.no_grad():
        y[0] = 5.0
    assert y[0].item() == 5.0
    buffer = hg.zeros(3, device=device)
    with pytest.raises(RuntimeError, match="value requires grad"):
        buffer[0] = x[1]
    buffer[0] = x[1].detach()
    assert buffer[0].item() == x[1].item()


# ====================================================================== ties and kinks
KINKS = {
    # name: (values, handgrad fn, torch fn or None when the same callable works)
    "relu at 0": ([-1.0, 0.0, 2.0, 0.0], lambda x: x.relu(), None),
    "abs at 0": ([-1.0, 0.0, 2.0], lambda x: x.abs(), None),
    "leaky_relu at 0": ([-1.0, 0.0, 2.0], lambda x: x.leaky_relu(0.2),
                        lambda x: TF.leaky_relu(x, 0.2)),
    "elu at 0": ([-1.0, 0.0, 2.0], lambda x: x.elu(1.5), lambda x: TF.elu(x, 1.5)),
    "clamp at the bounds": ([-1.0, -0.5, 0.0, 0.5, 1.0], lambda x: x.clamp(-0.5, 0.5), None),
    "clamp_min at the bound": ([-1.0, 0.0, 1.0], lambda x: x.clamp(min=0.0), None),
    "clamp_max at the bound": ([-1.0, 0.0, 1.0], lambda x: x.clamp(max=0.0), None),
    "max with ties": ([1.0, 3.0, 3.0, 2.0], lambda x: x.max(), None),
    "min with ties": ([[1.0, 3.0], [1.0, 1.0]], lambda x: x.min(), None),
    "amax ties along dim": ([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], lambda x: x.amax(1), None),
    "amax ties, all dims": ([[1.0, 3.0, 3.0], [3.0, 2.0, 0.0]], lambda x: x.amax(), None),
    "amin ties, keepdim": ([[1.0, 1.0], [2.0, 0.0]], lambda x: x.amin(0, keepdim=True), None),
    "max(dim) ties": ([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], lambda x: x.max(1).values, None),
    "min(dim) ties": ([[1.0, 1.0], [1.0, 0.0]], lambda x: x.min(0).values, None),
    "pow at 0: x**2": ([0.0, 1.0, -2.0], lambda x: x ** 2, None),
    "pow at 0: x**0": ([0.0, 1.0, -2.0], lambda x: x ** 0, None),
    "pow at 0: x**1": ([0.0, 1.0, -2.0], lambda x: x ** 1, None),
    "pow at 0: x**0.5": ([0.0, 1.0, 4.0], lambda x: x ** 0.5, None),
    "pow at 0: x**-1": ([0.0, 1.0, -2.0], lambda x: x ** -1, None),
    "pow at 0: 0**x": ([0.0, 1.0, -2.0, 2.5], lambda x: 0.0 ** x, None),
    "pow at 0: 2**x": ([0.0, 1.0, -2.0], lambda x: 2.0 ** x, None),
    "sqrt at 0": ([0.0, 4.0], lambda x: x.sqrt(), None),
    "std of a constant": ([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]], lambda x: x.std(1), None),
    "std of a constant, all dims": ([3.0, 3.0], lambda x: x.std(correction=0), None),
    "clamp at tensor bounds": ([-1.0, 0.0, 0.5, 2.0],
                               lambda x: x.clamp(x.detach() * 0 - 1, x.detach() * 0 + 0.5), None),
    "max with a NaN": ([1.0, float("nan"), 3.0, float("nan")], lambda x: x.max(), None),
    "min with a NaN": ([1.0, float("nan"), 3.0], lambda x: x.min(), None),
    "clamp of a NaN": ([float("nan"), 0.5, 2.0], lambda x: x.clamp(0.0, 1.0), None),
    "mean over dim=[] (all)": ([[1.0, 2.0], [3.0, 5.0]], lambda x: x.mean([]), None),
    "sum over dim=[] (all)": ([[1.0, 2.0], [3.0, 5.0]], lambda x: x.sum([]), None),
    # no degrees of freedom left: inf/nan values and gradients, exactly as torch's
    "var, correction = n, dim": ([[1.0, 2.0, 4.0], [0.0, 0.0, 1.0]],
                                 lambda x: x.var(1, correction=3), None),
    "var, correction > n, dim": ([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]],
                                 lambda x: x.var(1, correction=4), None),
    "var, correction = n, all": ([1.0, 2.0, 4.0], lambda x: x.var(correction=3), None),
    "var, correction > n, all": ([[1.0, 2.0], [3.0, 3.0]], lambda x: x.var(correction=5), None),
    "var of one element": ([1.5], lambda x: x.var(), None),
    "var of a 0-d tensor": (1.5, lambda x: x.var(), None),
    "std, correction = n, dim": ([[1.0, 2.0, 4.0], [0.0, 0.0, 1.0]],
                                 lambda x: x.std(1, correction=3), None),
    "std, correction > n, dim": ([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]],
                                 lambda x: x.std(-1, correction=5), None),
    "std, correction = n, all": ([1.0, 2.0, 4.0], lambda x: x.std(correction=3), None),
    "std, correction 2.5": ([1.0, 2.0, 4.0, 7.0], lambda x: x.std(correction=2.5), None),
}


@pytest.mark.filterwarnings("ignore:var\\(\\)|std\\(\\):UserWarning")
@pytest.mark.parametrize("name", list(KINKS))
def test_kink_follows_torch(name, device):
    values, fn, ref = KINKS[name]
    same_as_torch(fn, values, device=device, ref=ref)


TIES = {
    "maximum ties": (lambda a, b: a.maximum(b), [1.0, 2.0, 3.0], [1.0, 0.0, 3.0]),
    "minimum ties": (lambda a, b: a.minimum(b), [1.0, 2.0, 3.0], [1.0, 0.0, 3.0]),
    "maximum ties, broadcast": (lambda a, b: a.maximum(b), [[1.0, 2.0], [2.0, 2.0]],
                                [2.0, 2.0]),
    "minimum ties, 0-d": (lambda a, b: a.minimum(b), [[1.0, 2.0], [2.0, 3.0]], 2.0),
    "pow at 0: x**y": (lambda a, b: a ** b, [0.0, 0.0, 0.0, 0.0, 2.0],
                       [2.0, 0.0, -1.0, 0.5, 0.0]),
    # where either side is NaN, torch gives the gradient to both
    "maximum with NaNs": (lambda a, b: a.maximum(b), [NAN, 2.0, NAN, 1.0], [1.0, NAN, NAN, 1.0]),
    "minimum with NaNs": (lambda a, b: a.minimum(b), [NAN, 2.0, NAN, 3.0], [1.0, NAN, NAN, 1.0]),
    "clamp_min by a tensor": (lambda a, b: a.clamp_min(b), [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]),
    "clamp_max by a tensor": (lambda a, b: a.clamp_max(b), [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]),
    "clamp(min=tensor), broadcast": (lambda a, b: a.clamp(min=b), [[-1.0, 0.5], [2.0, 0.0]],
                                     [0.0, 1.0]),
}


@pytest.mark.parametrize("name", list(TIES))
def test_tie_follows_torch(name, device):
    fn, a, b = TIES[name]
    same_as_torch(fn, a, b, device=device)


@pytest.mark.parametrize("x, lo, hi", [
    ([-2.0, 0.0, 0.5, 1.0, 3.0, NAN], [0.0] * 6, [1.0] * 6),  # inside, at, outside, NaN
    ([-2.0, 0.0, 0.5, 1.0, 3.0, NAN], [1.0] * 6, [1.0] * 6),  # lo == hi
    ([-2.0, 0.0, 0.5, 1.0, 3.0, NAN], [1.0] * 6, [0.0] * 6),  # lo > hi: hi wins
    ([[-2.0, 0.2], [0.7, 3.0]], [0.0, 0.5], 1.0),  # bounds broadcast against x
], ids=["inside-at-outside", "equal-bounds", "crossed-bounds", "broadcast"])
def test_clamp_with_tensor_bounds_follows_torch(x, lo, hi, device):
    """Tensor bounds get their own gradient, with torch's rules at ties and crossings."""
    same_as_torch(lambda x, lo, hi: x.clamp(lo, hi), x, lo, hi, device=device)


def test_clamp_refuses_a_number_with_a_tensor_bound():
    x = hg.randn(3)
    with pytest.raises(RuntimeError, match=r"bounds 0.0 and \(3,\) float32 on cpu: give both"):
        x.clamp(0.0, hg.ones(3))
    with pytest.raises(TypeError):
        torch.clamp(x.data, 0.0, torch.ones(3))  # torch refuses the mix too


def test_tie_values_are_the_documented_conventions(device):
    """Spelled out, so a reader sees the conventions without running torch."""
    x = hg.tensor([1.0, 3.0, 3.0], device=device, requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]  # whole-tensor max: ties share evenly
    x.grad = None
    x.max(0).values.backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0]  # max(dim): all to the returned index
    a = hg.tensor([2.0], device=device, requires_grad=True)
    b = hg.tensor([2.0], device=device, requires_grad=True)
    a.maximum(b).backward(hg.ones(1, device=device))
    assert a.grad.tolist() == b.grad.tolist() == [0.5]  # maximum: halves
    r = hg.tensor([0.0], device=device, requires_grad=True)
    r.relu().backward(hg.ones(1, device=device))
    assert r.grad.tolist() == [0.0]  # relu'(0) = 0
    c = hg.tensor([0.5], device=device, requires_grad=True)
    c.clamp(0.5, 1.0).backward(hg.ones(1, device=device))
    assert c.grad.tolist() == [1.0]  # clamp: bounds pass the gradient


class _Identity(Function):
    """out = x;  dx = g  (a user-defined Function, checked by the public gradcheck)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g


def test_user_function_in_a_graph(device):
    x = hg.randn(3, device=device, dtype=hg.float64, requires_grad=True)
    y = _Identity.apply(x * 2).sum()
    y.backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    assert hg.testing.gradcheck(lambda t: _Identity.apply(t).exp(), x.detach())


def test_grad_mode_spellings_like_torch():
    """`@no_grad` without parentheses, generator functions, and set_grad_enabled called
    as a statement (it takes effect at once, as torch's does)."""
    x = hg.ones(2, requires_grad=True)

    @hg.no_grad
    def bare(t):
        return t * 2

    assert not bare(x).requires_grad and hg.is_grad_enabled()

    @hg.no_grad()
    def steps():
        yield hg.is_grad_enabled()
        yield hg.is_grad_enabled()

    generator = steps()
    assert next(generator) is False and hg.is_grad_enabled()  # only inside the generator
    assert next(generator) is False and hg.is_grad_enabled()

    hg.set_grad_enabled(False)
    try:
        assert not hg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        hg.set_grad_enabled(True)
    assert hg.is_grad_enabled()

    @hg.set_grad_enabled(False)
    def decorated():
        return hg.is_grad_enabled()

    assert hg.is_grad_enabled() and decorated() is False and hg.is_grad_enabled()
    with hg.no_grad():
        with hg.set_grad_enabled(True):
            assert hg.is_grad_enabled()
        assert not hg.is_grad_enabled()
