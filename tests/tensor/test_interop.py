"""torch functions called with handgrad Tensors (__torch_function__, handgrad/_interop.py),
torch tensors that require grad mixed into handgrad ops, and the small torch-shaped
helpers: __format__, type(), new_*, threads, generators, inference_mode.

Each case runs the same call on torch tensors and on handgrad Tensors and compares the
values and, where handgrad has the op, the gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg


def _pair(*shape, seed=0, requires_grad=True):
    base = torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)
    return (base.clone().requires_grad_(requires_grad),
            hg.tensor(base, requires_grad=requires_grad))


DIFFERENTIABLE = {
    "cat": lambda x: torch.cat([x, x * 2], 1),
    "stack": lambda x: torch.stack([x, x], 0),
    "clamp": lambda x: torch.clamp(x, -0.5, 0.5),
    "where": lambda x: torch.where(x > 0, x, x * 3),
    "exp": lambda x: torch.exp(x),
    "matmul": lambda x: torch.matmul(x, x.T),
    "sum": lambda x: torch.sum(x, 1),
    "mean": lambda x: torch.mean(x, dim=0, keepdim=True),
    "max": lambda x: torch.max(x),
    "max dim": lambda x: torch.max(x, 1).values,
    "softmax": lambda x: TF.softmax(x, dim=-1),
    "relu": lambda x: TF.relu(x),
    "cross_entropy": lambda x: TF.cross_entropy(x, torch.tensor([0, 2, 1, 0])),
    "a torch tensor on the left": lambda x: torch.ones(3, dtype=torch.float64) * x + 1,
    "torch.Tensor method": lambda x: torch.ones(3, dtype=torch.float64).sub(x, alpha=2),
}


@pytest.mark.parametrize("name", list(DIFFERENTIABLE))
def test_torch_functions_run_handgrads_op_with_its_gradient(name):
    call = DIFFERENTIABLE[name]
    xt, xh = _pair(4, 3)
    expected, got = call(xt), call(xh)
    assert isinstance(got, hg.Tensor) and got.grad_fn is not None, (name, type(got))
    torch.testing.assert_close(got.data, expected.detach())
    upstream = torch.randn(expected.shape, dtype=torch.float64)
    expected.backward(upstream)
    got.backward(upstream)
    torch.testing.assert_close(xh.grad.data, xt.grad)


NO_GRAPH = {
    "roll": lambda x: torch.roll(x, 1, 0),
    "argmax": lambda x: torch.argmax(x, 1),
    "zeros_like": lambda x: torch.zeros_like(x),
    "sort": lambda x: torch.sort(x, 1).values,
    "cumsum": lambda x: torch.cumsum(x, 0),
}


@pytest.mark.parametrize("name", list(NO_GRAPH))
def test_other_torch_functions_work_on_the_data_without_a_graph(name):
    xt, xh = _pair(4, 3, requires_grad=False)
    got = NO_GRAPH[name](xh)
    assert isinstance(got, hg.Tensor) and got.grad_fn is None
    torch.testing.assert_close(got.data, NO_GRAPH[name](xt))


def test_results_without_a_gradient_are_returned_as_torch_returns_them():
    x = hg.tensor([1.0, 2.0], requires_grad=True)
    assert torch.allclose(x, x) is True and torch.equal(x, x) is True
    assert torch.argmax(x).item() == 1
    sample = torch.multinomial(hg.tensor([0.0, 1.0]), 1, generator=hg.manual_seed(0))
    assert isinstance(sample, hg.Tensor) and sample.tolist() == [1]
    values, indices = torch.sort(hg.tensor([3.0, 1.0, 2.0]))
    assert values.tolist() == [1.0, 2.0, 3.0] and indices.tolist() == [1, 2, 0]


def test_a_lost_gradient_is_an_error_naming_the_function():
    x = hg.randn(4, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"torch\.rot90: .*argument 0 requires grad"):
        torch.rot90(x, 1, (0, 1))
    with pytest.raises(RuntimeError, match=r"torch\.logcumsumexp"):
        torch.logcumsumexp(x, 0)
    with hg.no_grad():
        assert torch.roll(x, 1, 0).grad_fn is None  # no gradient wanted: allowed
    assert torch.roll(x.detach(), 1, 0).shape == (4, 3)


def test_a_torch_function_with_a_handgrad_op_keeps_the_gradient():
    x = hg.randn(4, 3, requires_grad=True)
    torch.roll(x, 1, 0).sum().backward()  # handgrad's Roll, not torch's kernel
    assert x.grad.tolist() == [[1.0] * 3] * 4


def test_in_place_torch_calls_change_the_handgrad_tensor_and_return_it():
    grads = [hg.ones(3), hg.ones(2)]
    torch._foreach_mul_(grads, 0.5)
    assert [g.tolist() for g in grads] == [[0.5] * 3, [0.5] * 2]
    target = torch.zeros(3)
    assert target.add_(hg.ones(3)) is target and target.tolist() == [1.0] * 3
    with pytest.raises(RuntimeError, match="in place"):
        torch._foreach_mul_([hg.ones(3, requires_grad=True)], 2.0)


def test_torch_autograd_grad_and_backward_run_handgrads():
    t, h = _pair(4, 3)
    tw, hw = _pair(3, seed=1)

    def loss(x, w):
        return ((x @ w).tanh() ** 2).sum()

    expected = torch.autograd.grad(loss(t, tw), [t, tw])
    got = torch.autograd.grad(loss(h, hw), [h, hw])
    assert all(isinstance(g, hg.Tensor) and not g.requires_grad for g in got)
    for g, e, mine in zip(got, expected, hg.autograd.grad(loss(h, hw), [h, hw])):
        torch.testing.assert_close(g.data, e)
        torch.testing.assert_close(g.data, mine.data, rtol=0, atol=0)
    assert h.grad is None and hw.grad is None  # grad() touches no .grad, as torch's
    # grad_outputs as torch tensors, allow_unused / materialize_grads, retain_graph
    weights = torch.randn(4, dtype=torch.float64)
    unused = hg.ones(2, requires_grad=True)
    hy, ty = (h @ hw).exp(), (t @ tw).exp()
    got = torch.autograd.grad(hy, [hw, unused], weights, retain_graph=True,
                              materialize_grads=True)
    (expected,) = torch.autograd.grad(ty, [tw], weights)
    torch.testing.assert_close(got[0].data, expected)
    assert got[1].tolist() == [0.0, 0.0]
    # backward: accumulates into .grad, grad_tensors and inputs= as torch's
    torch.autograd.backward([hy], [weights], inputs=[hw])
    ty = (t @ tw).exp()
    torch.autograd.backward([ty], [weights], inputs=[tw])
    torch.testing.assert_close(hw.grad.data, tw.grad)
    assert h.grad is None and t.grad is None
    with pytest.raises(RuntimeError, match="create_graph=True .* is not supported"):
        torch.autograd.grad(loss(h, hw), [h], create_graph=True)
    with pytest.raises(RuntimeError, match="torch tensor that requires grad"):
        torch.autograd.grad(loss(h, hw), [tw])


def test_a_torch_training_loop_with_torch_autograd_grad():
    """A torch script's idiom, its imports kept: gradients from torch.autograd.grad,
    the update under torch.no_grad(); handgrad's model follows torch's step by step."""
    reference = torch.nn.Linear(3, 1).double()
    model = hg.nn.Linear(3, 1, dtype=hg.float64)
    model.load_state_dict(reference.state_dict())
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y = x.sum(1, keepdim=True)
    for net, inputs, targets in ((reference, x, y), (model, hg.tensor(x), hg.tensor(y))):
        params = list(net.parameters())
        for _ in range(3):
            loss = TF.mse_loss(net(inputs), targets)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p -= 0.1 * g
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.data, dict(reference.named_parameters())[name].detach())


def test_torch_clip_grad_norm_cannot_take_handgrad_parameters():
    """torch's clip_grad_norm_ groups the gradients with a C helper for torch tensors
    before any call that would dispatch to handgrad (see handgrad/_interop.py), so a
    handgrad model clips with handgrad.nn.utils.clip_grad_norm_, which gives torch's
    results. Should a torch release start dispatching, this test says so."""
    reference = torch.nn.Linear(4, 3).double()
    model = hg.nn.Linear(4, 3, dtype=hg.float64)
    model.load_state_dict(reference.state_dict())
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    (reference(x) ** 2).sum().backward()
    (model(hg.tensor(x)) ** 2).sum().backward()
    with pytest.raises(TypeError, match="_group_tensors_by_device_and_dtype"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    for norm_type in (2.0, 1.0, float("inf")):
        expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5, norm_type)
        got = hg.nn.utils.clip_grad_norm_(model.parameters(), 0.5, norm_type)
        torch.testing.assert_close(got.data, expected)
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.grad.data,
                                       dict(reference.named_parameters())[name].grad)


def test_a_torch_module_loads_a_handgrad_state_dict():
    model = hg.nn.Linear(3, 2)
    reference = torch.nn.Linear(3, 2)
    reference.load_state_dict(model.state_dict())  # copy_ through __torch_function__
    torch.testing.assert_close(reference.weight.detach(), model.weight.data)


@pytest.mark.parametrize("mix", ["operator", "reflected", "function", "constructor"])
def test_torch_tensors_that_require_grad_are_refused_by_op_and_argument(mix):
    w = torch.randn(3, requires_grad=True)
    calls = {"operator": lambda: hg.ones(3) * w, "reflected": lambda: w + hg.ones(3),
             "function": lambda: torch.cat([hg.ones(3), w]),
             "constructor": lambda: hg.Tensor(w)}
    expected = {"operator": r"mul: argument 1", "reflected": r"argument 0",
                "function": r"torch\.cat: argument 0", "constructor": r"Tensor\(\)"}
    with pytest.raises(RuntimeError, match=expected[mix]):
        calls[mix]()
    assert (hg.ones(3) * w.detach()).grad_fn is None  # detached: fine


# ------------------------------------------------------------------ small torch habits
@pytest.mark.parametrize("spec", [".4f", "", ">10.2e", "g"])
def test_format_is_torchs(spec):
    for value in (torch.tensor(3.14159), torch.tensor(7), torch.tensor([1.0, 2.0])):
        handgrad_value = hg.tensor(value)
        if value.ndim and spec:
            with pytest.raises(TypeError):
                format(value, spec)
            with pytest.raises(TypeError):
                format(handgrad_value, spec)
            continue
        assert format(handgrad_value, spec) == format(value, spec)


def test_type_is_torchs():
    x = hg.tensor([1.5, 2.5], requires_grad=True)
    assert x.type() == torch.tensor([1.5]).type() == "torch.FloatTensor"
    assert hg.tensor([1]).type() == "torch.LongTensor"
    double = x.type(torch.float64)
    assert double.dtype == torch.float64 and double.grad_fn is not None
    assert x.type("torch.DoubleTensor").dtype == torch.float64
    assert x.type(torch.float32) is x
    with pytest.raises(ValueError, match="invalid type"):
        x.type("torch.NoSuchTensor")


@pytest.mark.parametrize("name", ["new_zeros", "new_ones", "new_empty", "new_full",
                                  "new_tensor"])
def test_new_factories_are_torchs(name):
    base_torch = torch.zeros(2, dtype=torch.float64)
    base = hg.tensor(base_torch)
    args = {"new_zeros": ((2, 3),), "new_ones": (2, 3), "new_empty": ((4,),),
            "new_full": ((2, 2), 7.0), "new_tensor": ([1, 2, 3],)}[name]
    for kwargs in ({}, {"dtype": torch.float32}, {"requires_grad": True}):
        expected = getattr(base_torch, name)(*args, **kwargs)
        got = getattr(base, name)(*args, **kwargs)
        assert isinstance(got, hg.Tensor) and got.is_leaf
        assert (got.shape, got.dtype, got.device, got.requires_grad) == (
            expected.shape, expected.dtype, expected.device, expected.requires_grad)
        if name != "new_empty":
            torch.testing.assert_close(got.data, expected.detach())
    copy = base.new_tensor(hg.tensor([1.0, 2.0], requires_grad=True))
    assert copy.is_leaf and not copy.requires_grad


def test_threads_generators_and_seeds():
    before = hg.get_num_threads()
    try:
        hg.set_num_threads(1)
        assert hg.get_num_threads() == torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="positive integer"):
        hg.set_num_threads(0)
    assert isinstance(hg.manual_seed(3), torch.Generator)
    generator = hg.Generator().manual_seed(5)
    first = hg.randn(3, generator=generator)
    assert torch.equal(first.data, torch.randn(3, generator=torch.Generator().manual_seed(5)))


def test_inference_mode_is_no_grad_under_torchs_name():
    x = hg.ones(2, requires_grad=True)
    assert not hg.is_inference_mode_enabled()
    with hg.inference_mode():
        assert hg.is_inference_mode_enabled() and not hg.is_grad_enabled()
        y = x * 2
    assert y.grad_fn is None and hg.is_grad_enabled() and not hg.is_inference_mode_enabled()
    with hg.inference_mode(False):
        assert (x * 2).grad_fn is not None

    @hg.inference_mode()
    def called():
        return (x * 2).grad_fn, hg.is_inference_mode_enabled()

    @hg.inference_mode
    def bare():
        return (x * 2).grad_fn

    assert called() == (None, True) and bare() is None
    y = (x * 3).data  # tensors made inside are ordinary ones: in-place updates work
    with hg.inference_mode():
        z = hg.zeros(2)
    z.add_(1)
    with torch.inference_mode():
        assert hg.is_inference_mode_enabled()
    assert y.tolist() == [3.0, 3.0]


def test_inference_mode_decorates_generator_functions_and_multinomial_draws_like_torch():
    x = hg.ones(2, requires_grad=True)

    @hg.inference_mode()
    def steps():
        yield (x * 2).grad_fn, hg.is_inference_mode_enabled()
        yield (x * 3).grad_fn, hg.is_inference_mode_enabled()

    assert list(steps()) == [(None, True), (None, True)]
    assert (x * 2).grad_fn is not None
    probs = hg.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]])
    got = probs.multinomial(4, True, generator=hg.Generator().manual_seed(1))
    expected = probs.data.multinomial(4, True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(got.data, expected) and got.dtype == torch.int64


def test_torch_tensor_and_as_tensor_read_a_handgrad_tensor_through_dlpack():
    x = hg.tensor([[1.0, 2.0], [3.0, 4.0]])
    shared = torch.as_tensor(x)
    copied = torch.tensor(x.T)  # strided too
    assert type(shared) is torch.Tensor and shared.data_ptr() == x.data.data_ptr()
    assert torch.equal(copied, x.data.T) and copied.data_ptr() != x.data.data_ptr()
    with pytest.raises(RuntimeError, match="requires grad"):
        torch.tensor(hg.ones(2, requires_grad=True))
