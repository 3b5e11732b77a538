"""The Tensor API against torch's behaviour: factories, properties, conversions, dtype
promotion, Python operators (reflected ones and @ included), comparisons, and the error
messages for shapes, devices and dtypes.

Left out: gradients of individual ops (test_ops.py) and graph semantics, in-place rules
and grad mode (test_autograd.py).
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
import torch

import handgrad as hg
from handgrad.autograd import HandgradError
from tests.torch_compare import assert_close

# ====================================================================== factories
FACTORIES = {
    "zeros varargs": lambda lib, d: lib.zeros(2, 3, device=d),
    "ones tuple": lambda lib, d: lib.ones((2, 3), dtype=lib.float64, device=d),
    "full": lambda lib, d: lib.full((2, 2), 7.5, device=d),
    "full int": lambda lib, d: lib.full((3,), 7, device=d),
    "arange stop": lambda lib, d: lib.arange(5, device=d),
    "arange start stop step": lambda lib, d: lib.arange(1, 2, 0.25, device=d),
    "linspace": lambda lib, d: lib.linspace(0, 1, 5, device=d),
    "eye": lambda lib, d: lib.eye(3, device=d),
    "eye rectangular": lambda lib, d: lib.eye(2, 4, dtype=lib.float64, device=d),
    "tensor ints": lambda lib, d: lib.tensor([[1, 2], [3, 4]], device=d),
    "tensor floats": lambda lib, d: lib.tensor([1.5, 2.0], device=d),
    "tensor bools": lambda lib, d: lib.tensor([True, False], device=d),
    "tensor scalar": lambda lib, d: lib.tensor(3.0, dtype=lib.float64, device=d),
    "zeros_like": lambda lib, d: lib.zeros_like(lib.ones(2, 3, device=d)),
    "ones_like dtype": lambda lib, d: lib.ones_like(lib.ones(2, device=d), dtype=lib.int32),
    "full_like": lambda lib, d: lib.full_like(lib.ones(2, device=d), 4.0),
    "zeros size=": lambda lib, d: lib.zeros(size=(2, 3), device=d),
    "ones size= dtype": lambda lib, d: lib.ones(size=[2], dtype=lib.int32, device=d),
    "arange end=": lambda lib, d: lib.arange(end=4, device=d),
    "arange 0-d tensor": lambda lib, d: lib.arange(lib.tensor(3), device=d),
    "tensor of 0-d tensors": lambda lib, d: lib.tensor([lib.tensor(1.5), lib.tensor(2)],
                                                       device=d),
    "tensor of nested tensors": lambda lib, d: lib.tensor([[lib.tensor(1)], [lib.tensor(2)]],
                                                          device=d),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_factories_match_torch(name, device):
    assert_close(FACTORIES[name](hg, device), FACTORIES[name](torch, device))


@pytest.mark.parametrize("draw", [
    lambda lib: lib.randn(3, 4), lambda lib: lib.rand(2, 2), lambda lib: lib.randperm(6),
    lambda lib: lib.randint(0, 10, (5,)), lambda lib: lib.randn_like(lib.ones(3)),
    lambda lib: lib.randint(10, (5,)), lambda lib: lib.randint(10, size=(2, 2)),
    lambda lib: lib.randint(high=7, size=(4,), dtype=lib.int32),
    lambda lib: lib.randint_like(lib.ones(3), 5), lambda lib: lib.randint_like(lib.ones(3), 2, 9),
    lambda lib: lib.rand(size=(2,)),
], ids=["randn", "rand", "randperm", "randint", "randn_like", "randint(high, size)",
        "randint(high, size=)", "randint(high=, size=)", "randint_like(high)",
        "randint_like(low, high)", "rand(size=)"])
def test_random_factories_draw_what_torch_draws(draw):
    hg.manual_seed(123)
    ours = draw(hg)
    torch.manual_seed(123)
    assert_close(ours, draw(torch))


def test_factories_set_requires_grad_and_make_leaves(device):
    for x in (hg.zeros(2, requires_grad=True, device=device),
              hg.tensor([1.0], requires_grad=True, device=device),
              hg.randn(2, 2, requires_grad=True, device=device),
              hg.full((2,), 1.0, requires_grad=True, device=device)):
        assert x.requires_grad and x.is_leaf and x.grad is None and x.grad_fn is None
    with pytest.raises(RuntimeError, match="floating-point"):
        hg.tensor([1, 2], requires_grad=True)


def test_tensor_copies_but_from_numpy_and_as_tensor_share():
    array = np.array([1.0, 2.0])
    copied, shared, wrapped = hg.tensor(array), hg.from_numpy(array), hg.as_tensor(array)
    array[0] = 9.0
    assert copied.tolist() == [1.0, 2.0]
    assert shared.tolist() == [9.0, 2.0] and wrapped.tolist() == [9.0, 2.0]
    assert shared.dtype == hg.float64
    source = hg.ones(2)
    copy = hg.tensor(source)
    source.data[0] = 5.0
    assert copy.tolist() == [1.0, 1.0] and copy.is_leaf


# ====================================================================== properties
def test_properties_and_conversions_match_torch(device):
    t = torch.arange(24.0, device=device).reshape(2, 3, 4)
    x = hg.Tensor(t.clone())
    assert x.shape == t.shape and x.size() == t.size() and x.size(1) == t.size(1)
    assert (x.ndim, x.dim(), x.numel(), len(x)) == (t.ndim, t.dim(), t.numel(), len(t))
    assert x.dtype == t.dtype and x.device == t.device and x.is_cuda == t.is_cuda
    assert x.stride() == t.stride() and x.is_contiguous() and x.is_floating_point()
    assert not x.transpose(0, 1).is_contiguous()
    for view in (x.transpose(1, 2), x.permute(2, 0, 1), x[:, :, ::2]):
        copy = view.contiguous()  # a contiguous copy, not a clone with the view's strides
        assert copy.is_contiguous() and copy.stride() == view.data.contiguous().stride()
        assert copy.view(-1).tolist() == view.data.reshape(-1).tolist()
    assert x.contiguous() is x
    channels = hg.randn(2, 3, 4, 5)
    last = channels.contiguous(memory_format=torch.channels_last)
    assert last.stride() == channels.data.contiguous(memory_format=torch.channels_last).stride()
    assert last.contiguous(memory_format=torch.channels_last) is last
    w = hg.randn(3, 4, requires_grad=True)
    (w.t().contiguous().view(-1) * hg.arange(12.0)).sum().backward()
    assert w.grad.tolist() == torch.arange(12.0).reshape(4, 3).t().tolist()
    assert x.tolist() == t.tolist() and x.element_size() == t.element_size()
    assert x.data_ptr() == x.data.data_ptr() and x.detach().data_ptr() == x.data_ptr()
    assert x[1:].data_ptr() == x.data_ptr() + 12 * x.element_size()
    assert x[1:].storage_offset() == t[1:].storage_offset() == 12
    assert x[1, 2, 3].item() == 23.0 and isinstance(x[0, 0, 0].item(), float)
    assert float(x[0, 0, 1]) == 1.0 and int(x[0, 1, 0]) == 4 and bool(x[0, 0, 1])
    assert [row.shape for row in x] == [(3, 4), (3, 4)]
    assert list(range(10))[hg.tensor(3)] == 3  # __index__
    np.testing.assert_array_equal(np.asarray(x), t.cpu().numpy())
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    with pytest.raises(TypeError, match="0-d"):
        len(hg.tensor(1.0))


def test_numpy_needs_detach_like_torch():
    x = hg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]
    view = hg.ones(2).numpy()
    assert view.dtype == np.float32


def test_repr_shows_history_like_torch():
    x = hg.tensor([1.0, 2.0], requires_grad=True)
    assert repr(hg.tensor([1.0, 2.0])) == repr(torch.tensor([1.0, 2.0]))
    assert repr(x) == repr(torch.tensor([1.0, 2.0], requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(x * 2)


def test_to_and_dtype_shortcuts(device):
    x = hg.tensor([1.5, -2.5], device=device, requires_grad=True)
    assert x.to(device) is x and x.to(hg.float32) is x and x.to(x) is x  # nothing to do
    for convert, dtype in [(lambda t: t.double(), hg.float64), (lambda t: t.half(), hg.float16),
                           (lambda t: t.long(), hg.int64), (lambda t: t.int(), hg.int32),
                           (lambda t: t.bool(), hg.bool), (lambda t: t.float(), hg.float32),
                           (lambda t: t.to(dtype=hg.float64), hg.float64),
                           (lambda t: t.to("cpu", hg.float64), hg.float64)]:
        converted = convert(x.detach())
        expected = convert(torch.tensor([1.5, -2.5], device=device))
        assert_close(converted, expected.to(converted.device))
        assert converted.dtype == dtype
    assert x.type_as(hg.ones(1, dtype=hg.int8)).dtype == hg.int8
    y = x.double()
    assert y.grad_fn is not None and not y.is_leaf
    (y * y).sum().backward()
    assert x.grad.dtype == hg.float32 and x.grad.tolist() == [3.0, -5.0]
    assert x.cpu().device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises((RuntimeError, AssertionError), match="CUDA"):
            x.cuda()


# ====================================================================== promotion
DTYPES = [torch.bool, torch.int32, torch.int64, torch.float16, torch.float32, torch.float64]


@pytest.mark.parametrize("a_dtype", DTYPES, ids=str)
@pytest.mark.parametrize("b_dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((2, 3), ())], ids=["same", "0-d"])
def test_dtype_promotion_matches_torch(a_dtype, b_dtype, shapes, device):
    a = (torch.arange(1, 7, device=device).reshape(2, 3) % 3).to(a_dtype)
    b = (torch.arange(1, 7, device=device).reshape(2, 3) % 2 + 1).to(b_dtype)
    if shapes[1] == ():
        b = b[0, 0]
    for op in (operator.add, operator.sub, operator.mul, operator.truediv):
        try:
            expected = op(a, b)
        except RuntimeError:  # torch refuses (bool subtraction): so must handgrad
            with pytest.raises(RuntimeError):
                op(hg.Tensor(a), hg.Tensor(b))
            continue
        assert_close(op(hg.Tensor(a), hg.Tensor(b)), expected)


@pytest.mark.parametrize("number", [2, 2.5, True])
@pytest.mark.parametrize("dtype", [torch.int64, torch.float16, torch.float32, torch.float64],
                         ids=str)
def test_python_numbers_do_not_change_a_float_tensor_dtype(number, dtype, device):
    t = torch.tensor([1, 2], device=device).to(dtype)
    x = hg.Tensor(t.clone())
    for op in (operator.add, operator.sub, operator.mul, operator.truediv):
        for args, torch_args in [((x, number), (t, number)), ((number, x), (number, t))]:
            try:
                expected = op(*torch_args)
            except RuntimeError:  # torch refuses (bool subtraction): so must handgrad
                with pytest.raises(RuntimeError):
                    op(*args)
                continue
            assert_close(op(*args), expected)


def test_gradients_keep_each_inputs_dtype_through_promotion(device):
    a = hg.tensor([1.0, 2.0], device=device, requires_grad=True)
    b = hg.tensor([3.0, 4.0], dtype=hg.float64, device=device, requires_grad=True)
    out = a * b
    assert out.dtype == hg.float64
    out.sum().backward()
    assert a.grad.dtype == hg.float32 and b.grad.dtype == hg.float64
    assert a.grad.tolist() == [3.0, 4.0] and b.grad.tolist() == [1.0, 2.0]


# ====================================================================== operators
BINARY = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "**": operator.pow, "//": operator.floordiv, "%": operator.mod,
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


@pytest.mark.parametrize("symbol", list(BINARY))
def test_operators_and_reflected_operators_match_torch(symbol, device):
    op = BINARY[symbol]
    a = torch.tensor([[0.5, 1.5, 2.0], [3.0, -1.0, 4.0]], device=device)
    b = torch.tensor([2.0, 0.5, 3.0], device=device)
    x, y = hg.Tensor(a.clone()), hg.Tensor(b.clone())
    assert_close(op(x, y), op(a, b))
    assert_close(op(x, 2.0), op(a, 2.0))
    assert_close(op(3.0, x), op(3.0, a))  # reflected: the number comes first
    assert_close(op(x, hg.tensor(2.0, device=device)), op(a, torch.tensor(2.0, device=device)))


def test_comparisons_and_logic_carry_no_gradient(device):
    x = hg.tensor([-1.0, 0.0, 2.0], device=device, requires_grad=True)
    for result in (x > 0, x == 0, x <= x * 2, ~(x > 0), (x > 0) & (x < 3), (x > 0) | (x < 0),
                   (x > 0) ^ (x < 3), x.eq(0), x.ge(0), x.isnan(), x.isfinite(), x.sign(),
                   x.argmax(), x.argmin(0), (x > 0).any(), (x > 0).all()):
        assert not result.requires_grad and result.is_leaf
    assert_close(~(x > 0), ~(x.data > 0))
    assert_close(x.sign(), torch.sign(x.data))
    assert_close(True & (x > 0), True & (x.data > 0))
    assert_close(False | (x > 0), False | (x.data > 0))
    assert x.equal(x.detach()) and x.allclose(x.detach() + 1e-9)


def test_matmul_operator_and_unary_operators(device):
    a = torch.randn(2, 3, device=device)
    b = torch.randn(3, 4, device=device)
    x, y = hg.Tensor(a.clone()), hg.Tensor(b.clone())
    assert_close(x @ y, a @ b)
    assert_close(y.__rmatmul__(x), a @ b)
    assert_close(-x, -a)
    assert_close(+x, +a)
    assert_close(abs(x), abs(a))
    assert +x is x


# ====================================================================== errors
def test_shape_errors_name_the_op_and_both_shapes(device):
    cases = [
        (lambda: hg.ones(2, 3, device=device) @ hg.ones(4, 5, device=device),
         r"matmul.*\(2, 3\).*\(4, 5\)"),
        (lambda: hg.ones(3, device=device) @ hg.ones(2, 2, device=device),
         r"matmul.*\(3,\).*\(2, 2\)"),
        (lambda: hg.ones(2, 3, device=device) + hg.ones(4, device=device),
         r"add.*\(2, 3\).*\(4,\).*broadcast"),
        (lambda: hg.ones(2, 3, device=device) * hg.ones(3, 2, device=device),
         r"mul.*\(2, 3\).*\(3, 2\)"),
        (lambda: hg.where(hg.ones(2, device=device).bool(), hg.ones(3, device=device), 0.0),
         r"where.*\(2,\).*\(3,\)"),
        (lambda: hg.cat([hg.ones(2, 3, device=device), hg.ones(2, 4, device=device)]),
         r"cat.*\(2, 3\).*\(2, 4\)"),
        (lambda: hg.stack([hg.ones(2, device=device), hg.ones(3, device=device)]),
         r"stack.*\(2,\).*\(3,\)"),
        (lambda: hg.ones(2, 3, device=device).reshape(4), r"reshape.*\(2, 3\)"),
    ]
    for make, pattern in cases:
        with pytest.raises(HandgradError, match=pattern):
            make()
    with pytest.raises(RuntimeError, match="matmul.*at least 1 dimension"):
        hg.tensor(2.0, device=device) @ hg.ones(2, device=device)


def test_device_mixing_names_both_devices():
    # torch's 'meta' device stands in for a GPU where there is none
    meta, cpu = hg.ones(2, device="meta"), hg.ones(2)
    for make, op in [(lambda: meta + cpu, "add"), (lambda: hg.maximum(cpu, meta), "maximum"),
                     (lambda: hg.cat([meta, cpu]), "cat"), (lambda: hg.stack([cpu, meta]),
                                                           "stack")]:
        with pytest.raises(HandgradError) as info:
            make()
        message = str(info.value)
        assert message.startswith(op) and "meta" in message and "cpu" in message, message
        assert ".to(device)" in message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_mixing_with_cuda_names_both_devices():
    with pytest.raises(HandgradError, match="add.*cuda.*cpu|add.*cpu.*cuda"):
        hg.ones(2, device="cuda") + hg.ones(2)
    with pytest.raises(HandgradError, match="matmul.*cuda.*cpu|matmul.*cpu.*cuda"):
        hg.ones(2, 2, device="cuda") @ hg.ones(2, 2)


def test_dtype_errors_name_both_dtypes(device):
    with pytest.raises(HandgradError, match=r"matmul.*float32.*float64.*\.double\(\)"):
        hg.ones(2, 2, device=device) @ hg.ones(2, 2, dtype=hg.float64, device=device)
    with pytest.raises(HandgradError, match="index_select.*float32.*float32"):
        hg.ones(3, device=device).index_select(0, hg.ones(2, device=device))


def test_argument_errors_say_what_to_do(device):
    x = hg.ones(2, 3, device=device)
    with pytest.raises(RuntimeError, match=r"view.*reshape"):
        x.T.view(6)
    with pytest.raises(ValueError, match="pad.*negative"):
        hg.pad(x, (-1, 0))
    with pytest.raises(HandgradError, match="clamp.*min and max"):
        x.clamp()
    with pytest.raises(RuntimeError, match=r"split.*\[1, 1\].*3"):
        x.split([1, 1], dim=1)
    with pytest.raises(HandgradError, match="gelu.*approximate"):
        x.gelu("fast")


# ====================================================================== empty tensors
def test_empty_tensors_flow_through_forward_and_backward(device):
    x = hg.zeros(0, 3, device=device, requires_grad=True)
    t = torch.zeros(0, 3, device=device, requires_grad=True)
    ours = (x * 2).sum(0) + (x @ hg.ones(3, 2, device=device)).sum()
    theirs = (t * 2).sum(0) + (t @ torch.ones(3, 2, device=device)).sum()
    assert_close(ours.detach(), theirs.detach())
    ours.sum().backward()
    theirs.sum().backward()
    assert_close(x.grad, t.grad)


# ====================================================================== norm
@pytest.mark.parametrize("p", [1, 2, 3, float("inf"), "fro"])
def test_norm_at_zero_and_at_ties_has_torchs_gradient(p, device):
    # A zero row (0 / 0 in the derivative) and a row with tied largest |x| (inf-norm).
    rows = [[0.0, 0.0, 0.0], [2.0, -2.0, 1.0], [0.5, -1.5, 1.0]]
    x = hg.tensor(rows, dtype=hg.float64, device=device, requires_grad=True)
    t = torch.tensor(rows, dtype=torch.float64, device=device, requires_grad=True)
    ours, theirs = x.norm(p, dim=1), t.norm(p, dim=1)
    assert_close(ours.detach(), theirs.detach())
    ours.sum().backward()
    theirs.sum().backward()
    assert not torch.isnan(x.grad.data).any()
    assert_close(x.grad, t.grad)


def test_norm_refuses_a_bad_p():
    # negative orders and 'nuc' are torch's too (tests/tensor/test_math_breadth.py); a bad
    # string is refused with torch's RuntimeError, as 'nuc' of a 1-D tensor
    with pytest.raises(RuntimeError, match="norm: p must be a number, 'fro' or 'nuc'"):
        hg.ones(3).norm("abc")
    with pytest.raises(RuntimeError, match="nuc"):
        hg.ones(3).norm("nuc")


def test_to_copy_and_non_blocking_like_torch():
    x = hg.randn(3, requires_grad=True)
    assert x.to("cpu", non_blocking=True) is x and x.to(x.dtype) is x
    y = x.to(x.dtype, copy=True)
    assert y is not x and y.data.data_ptr() != x.data.data_ptr() and y.grad_fn is not None
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_retains_grad_like_torch():
    x = hg.randn(2, requires_grad=True)
    y = x * 2
    assert not x.retains_grad and not y.retains_grad
    y.retain_grad()
    assert y.retains_grad


@pytest.mark.parametrize("call", [
    lambda x: x.squeeze(3), lambda x: x.unsqueeze(4), lambda x: x.unsqueeze(-5),
    lambda x: x.flatten(0, 3), lambda x: x.select(3, 0), lambda x: x.narrow(-4, 0, 1),
    lambda x: x.unbind(3), lambda x: x.amax(3), lambda x: x.amin((0, -4)),
    lambda x: x.var(3), lambda x: x.std(-4), lambda x: x.logsumexp(3),
    lambda x: x.norm(dim=3), lambda x: x.split(1, dim=3), lambda x: x.chunk(2, dim=-4),
    lambda x: hg.cat([x, x], dim=3),
], ids=["squeeze", "unsqueeze", "unsqueeze-neg", "flatten", "select", "narrow", "unbind",
        "amax", "amin", "var", "std", "logsumexp", "norm", "split", "chunk", "cat"])
def test_dims_out_of_range_are_refused_like_torch(call, device):
    """A dim past the tensor's dims raises (torch: IndexError); it used to wrap silently
    (x.amax(3) on a 3-d tensor reduced dim 0)."""
    x = hg.randn(2, 3, 4, device=device)
    with pytest.raises((IndexError, RuntimeError), match=r"range of \[-\d, \d\], but got -?\d"):
        call(x)
    with pytest.raises((IndexError, RuntimeError)):
        call(x.data)  # torch refuses each of these too


def test_bad_sizes_for_flatten_narrow_split_and_chunk_are_refused(device):
    x = hg.randn(2, 3, device=device)
    with pytest.raises(RuntimeError, match="start_dim 1 comes after end_dim 0"):
        x.flatten(1, 0)
    with pytest.raises(RuntimeError, match="narrow: start 2 and length 2"):  # as torch
        x.narrow(1, 2, 2)
    assert x.narrow(-1, -2, 2).tolist() == x.data.narrow(-1, -2, 2).tolist()
    with pytest.raises(RuntimeError, match="split_size must be positive, got 0"):
        x.split(0)
    with pytest.raises(RuntimeError, match="chunks must be positive, got 0"):
        x.chunk(0)
    assert [p.shape for p in hg.zeros(0).split(2)] == [p.shape for p in torch.zeros(0).split(2)]


@pytest.mark.parametrize("call, hint", [
    (lambda x: hg.where(x, x, x), r"Pass a bool tensor"),
    (lambda x: x.masked_fill(hg.tensor([1, 0, 1]), 0.0), r"Pass a bool tensor"),
    (lambda x: x.index_select(0, hg.tensor([0.0])), r"integer index tensor"),
    (lambda x: x[::-1], r"use \.flip\(dim\)"),
], ids=["where", "masked_fill", "index_select", "negative step"])
def test_wrong_argument_kinds_get_a_hint_that_fits(call, hint):
    with pytest.raises((RuntimeError, ValueError), match=hint):  # torch: ValueError for a step
        call(hg.randn(3))
