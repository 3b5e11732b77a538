"""The engine checks what every backward returns, as torch's engine does: the number of
gradients, their shapes (summed down where torch sums them, refused where it refuses),
dtypes and devices; and hooked backward steps leave no reference cycles behind."""

import gc

import pytest
import torch

import handgrad as hg
from handgrad.autograd import Function


def _function(backward, forward=lambda ctx, x: x * 2):
    """A Function class with the given forward and backward (static methods)."""
    return type("Custom", (Function,), {"forward": staticmethod(forward),
                                        "backward": staticmethod(backward)})


def test_too_few_gradients_name_the_function_and_both_counts():
    two_inputs = _function(lambda ctx, g: g, forward=lambda ctx, a, b: a * b)
    a, b = hg.ones(3, requires_grad=True), hg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Custom.*incorrect number of gradients.*expected 2"
                                           r".*got 1"):
        two_inputs.apply(a, b).sum().backward()


def test_too_many_gradients_are_refused_unless_the_extra_ones_are_none():
    x = hg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"expected 1, got 2"):
        _function(lambda ctx, g: (g, g)).apply(x).sum().backward()
    _function(lambda ctx, g: (g * 2, None)).apply(x).sum().backward()  # as torch allows
    assert torch.equal(x.grad.data, torch.full((3,), 2.0))


def test_a_gradient_that_cannot_fit_its_input_is_refused_with_both_shapes():
    x = hg.ones(3, requires_grad=True)
    bad = _function(lambda ctx, g: g[:1])
    with pytest.raises(RuntimeError, match=r"Custom.*index 0.*\(1,\).*\(3,\)"):
        bad.apply(x).sum().backward()
    assert x.grad is None
    # used on two paths, the wrong gradient is not broadcast into the other path either
    with pytest.raises(RuntimeError, match=r"\(1,\).*\(3,\)"):
        (bad.apply(x) + x).sum().backward()


def test_a_gradient_of_a_broadcast_shape_is_summed_down_as_torch_does():
    x = hg.ones(3, requires_grad=True)
    wide = _function(lambda ctx, g: g.expand(2, 3) * 1.0, forward=lambda ctx, x: x * 1.0)
    wide.apply(x).sum().backward()
    assert torch.equal(x.grad.data, torch.full((3,), 2.0))  # torch: sum_to the input


def test_binary_ops_rely_on_the_engine_to_undo_broadcasting():
    # float64 and seeded: in float32, a / b with a small b summed over the broadcast
    # dims can differ from torch's summation order by more than assert_close's rtol
    gen = torch.Generator().manual_seed(0)
    a = hg.tensor(torch.randn(4, 1, 3, dtype=torch.float64, generator=gen), requires_grad=True)
    b = hg.tensor(torch.randn(5, 1, dtype=torch.float64, generator=gen), requires_grad=True)
    ta, tb = (t.data.clone().requires_grad_() for t in (a, b))
    for ours, theirs in [(a + b, ta + tb), (a - b, ta - tb), (a * b, ta * tb),
                         (a / b, ta / tb), (hg.where(a > 0, a, b), torch.where(ta > 0, ta, tb)),
                         (hg.maximum(a, b), torch.maximum(ta, tb))]:
        g = torch.randn(ours.shape, dtype=ours.dtype)
        ours.backward(hg.tensor(g))
        theirs.backward(g)
        for x, t in ((a, ta), (b, tb)):
            torch.testing.assert_close(x.grad.data, t.grad)
            assert x.grad.shape == x.shape
        a.grad = b.grad = ta.grad = tb.grad = None


def test_another_float_dtype_is_cast_to_the_input_and_an_integer_one_refused():
    x = hg.ones(3, requires_grad=True)
    _function(lambda ctx, g: g.double() * 3).apply(x).sum().backward()
    assert x.grad.dtype == torch.float32 and torch.equal(x.grad.data, torch.full((3,), 3.0))
    with pytest.raises(RuntimeError, match=r"Custom.*index 0.*floating-point.*int64"):
        _function(lambda ctx, g: g.long()).apply(x).sum().backward()


def test_a_gradient_on_another_device_is_refused_naming_both():
    x = hg.ones(3, requires_grad=True)
    elsewhere = _function(lambda ctx, g: torch.empty(3, device="meta"))
    with pytest.raises(RuntimeError, match=r"Custom.*index 0.*expected device cpu.*meta"):
        elsewhere.apply(x).sum().backward()


def test_a_gradient_that_is_not_a_torch_tensor_is_a_type_error():
    x = hg.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"Custom.*returned float.*input 0"):
        _function(lambda ctx, g: 1.0).apply(x).sum().backward()
    with pytest.raises(TypeError, match=r"Custom.*returned Tensor"):
        _function(lambda ctx, g: hg.tensor(g)).apply(x).sum().backward()


def test_a_training_step_with_a_leaf_hook_leaves_no_reference_cycle():
    w = hg.randn(4, 4, requires_grad=True)
    handle = w.register_hook(lambda g: g * 0.5)
    x = hg.randn(2, 4)
    ((x @ w).relu().sum()).backward()  # warm-up: caches, lazily built tables
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            w.grad = None
            ((x @ w).relu().sum()).backward()
        assert gc.collect() == 0, "a hooked backward step left objects only gc can free"
    finally:
        gc.enable()
        handle.remove()


# ------------------------------------------------------------ found in review, as torch
def test_ops_on_a_parameter_give_plain_tensors_and_its_grad_is_a_tensor():
    w = hg.nn.Parameter(hg.randn(3))
    y = w * 2
    assert type(y) is hg.Tensor and type(w.exp()) is hg.Tensor
    seen = []
    w.register_hook(lambda g: seen.append(type(g)))
    y.sum().backward()
    assert type(w.grad) is hg.Tensor and seen == [hg.Tensor]
    (g,) = hg.autograd.grad((w * 3).sum(), w)
    assert type(g) is hg.Tensor
    m = hg.nn.Linear(2, 2)
    m.last = m(hg.randn(1, 2))  # an activation is no parameter (torch: a plain attribute)
    assert "last" not in dict(m.named_parameters())


def test_an_integer_upstream_gradient_is_cast_to_the_output_dtype():
    c = hg.tensor([1.0, 2.0], requires_grad=True)
    (c * 2).backward(hg.tensor([1, 1]))
    assert c.grad.dtype == torch.float32 and c.grad.tolist() == [2.0, 2.0]


def test_integer_results_have_no_gradient():
    x = hg.tensor([1.5, 2.5], requires_grad=True)
    for result in (x.long(), x.bool(), x.sum(dtype=hg.int64), x > 1):
        assert not result.requires_grad and result.grad_fn is None


def test_a_cpu_scalar_gradient_is_moved_to_a_0d_input_on_another_device():
    scalar = _function(lambda ctx, g: torch.tensor(3.0))  # a 0-d gradient on the CPU
    x = hg.Tensor(torch.tensor(2.0, device="meta"), requires_grad=True)
    scalar.apply(x).backward()
    assert x.grad.device.type == "meta"  # moved, as torch moves it (no error)
    vector = _function(lambda ctx, g: torch.ones(3))
    with pytest.raises(RuntimeError, match="expected device meta but got cpu"):
        vector.apply(hg.Tensor(torch.ones(3, device="meta"), requires_grad=True)).sum() \
            .backward()


def test_torchs_own_runtime_error_kinds_pass_through_unchanged():
    def forward(ctx, x):
        raise torch.OutOfMemoryError("out of memory (simulated)")

    with pytest.raises(torch.OutOfMemoryError):
        _function(lambda ctx, g: g, forward=forward).apply(hg.ones(2))


def test_retain_grad_follows_a_tensor_through_an_in_place_op():
    x = hg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.add_(1)
    (y * y).sum().backward()
    assert y.grad is not None and y.grad.tolist() == [6.0, 10.0]  # 2 * (2x + 1)


def test_the_error_names_the_index_of_the_wrong_gradient_when_two_are_one_object():
    two = _function(lambda ctx, g: (g, g), forward=lambda ctx, a, b: a + b.sum())
    with pytest.raises(RuntimeError, match="index 1"):
        two.apply(hg.ones(3, requires_grad=True), hg.ones(2, requires_grad=True)).sum() \
            .backward()


def test_a_forward_returning_a_torch_structseq_is_a_tuple_of_results():
    def forward(ctx, x):
        return x.max(dim=0)  # torch.return_types.max: (values, indices)

    values, indices = _function(lambda ctx, g: None, forward=forward).apply(hg.randn(3, 2))
    assert values.shape == (2,) and indices.dtype == torch.int64
