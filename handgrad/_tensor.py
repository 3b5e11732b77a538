"""Tensor (module `_tensor`, so that `handgrad.tensor` can be the factory, as in torch):
a torch.Tensor (`.data`) plus what autograd needs (`grad`, `requires_grad`,
the node that made it), with torch's operators and methods.

Every differentiable method dispatches to a Function in handgrad.ops; nothing here
computes a gradient. Comparisons, argmax and friends return tensors without history,
as in torch. In-place methods (`add_`, `mul_`, ...) change `.data` directly when no
gradient is being recorded (what optimizers need, under `no_grad`); on a leaf that
requires grad they refuse, as torch does. On any other tensor in the graph they are
recorded as the out-of-place op whose result takes the tensor's place (its old data,
perhaps saved for a backward, is left alone); that is refused while a view, base or
`.detach()` sharing its storage is alive, since those would keep the old values.

torch functions given a Tensor (`torch.cat([a, b])`, `torch.nn.functional.relu(x)`,
`torch_tensor * x`) reach `__torch_function__`: handgrad's own op where it has one, else
torch on the data without a graph, refused when a gradient would be lost (_interop.py).
A torch tensor that requires grad is refused wherever it meets a handgrad op, naming
the op and the argument: handgrad computes no torch gradients, so it would be lost.

Tensors pickle (`__reduce_ex__`: pickle, torch.save, worker processes) as a torch tensor
plus the class and requires_grad, and `torch.load(weights_only=True)` reads them back as
plain torch tensors (`_rebuild_tensor` is registered with torch's safe globals);
`copy.deepcopy` copies leaves as torch does. handgrad.save / load (serialization.py)
save without pickle.

NumPy on the left of an operator (`np.float64(0.5) * t`, `np.ones(3) + t`) and NumPy's
ufuncs on a Tensor (`np.exp(t)`) run handgrad's own ops, so the graph is kept; a ufunc
handgrad has no op for works on the data of tensors that need no gradient and is
refused on one that does (its gradient would be lost).

This module binds no name that shadows a Python builtin: dtype aliases (`handgrad.float`,
`handgrad.int`, ...) live in _dtypes.py, factories in _creation.py, the free functions
(`handgrad.sum`, `handgrad.max`, ...) in _functions.py.

Left out: layers and losses (handgrad.nn), random-number state beyond `manual_seed`.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch

from handgrad import autograd
from handgrad import ops as F
from handgrad._tensor_indexing import _IndexingMethods
from handgrad._tensor_math import _MathMethods
from handgrad.autograd import HandgradError, TensorBase, is_grad_enabled
from handgrad.ops.arith import CloneFormat, FloorDivide, Remainder
from handgrad.ops.reduce import wrap_dim
from handgrad.ops.scan import Cumprod, Cumsum
from handgrad.ops.sorting import Sort, TopK

__all__ = ["Tensor", "is_tensor"]


def to_torch(x, who: str | None = None):
    """The torch tensor of `x`, the one helper for it in the package: a handgrad Tensor's
    `.data`, a torch tensor as it is. Anything else comes back unchanged (numbers and None
    pass on to torch), or, when `who` names the caller, is refused with a TypeError."""
    if isinstance(x, Tensor):
        return x.data
    if who is None or isinstance(x, torch.Tensor):
        return x
    raise TypeError(f"{who}: expected a handgrad Tensor or a torch tensor, got "
                    f"{type(x).__name__}")


_raw = to_torch  # the short name used throughout this module


def _raw_index(index):
    """An index with every handgrad Tensor in it replaced by its torch tensor, keeping
    the tuples and lists around them, so that torch reads it as it reads the same index
    written with torch tensors (`x[[t0, t2]]`, `x[t1, :]`, `x[[i, j], k]`)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple | list) and any(isinstance(i, Tensor | tuple | list)
                                                for i in index):
        return (tuple if isinstance(index, tuple) else list)(_raw_index(i) for i in index)
    return index


def _shape_args(shape) -> tuple:
    """Accept f(2, 3) and f((2, 3)) like torch."""
    if len(shape) == 1 and isinstance(shape[0], Sequence | torch.Size):
        return tuple(shape[0])
    return tuple(shape)


class Tensor(TensorBase, _IndexingMethods, _MathMethods):
    """An n-dimensional array that can record the operations applied to it.

    `data` is the underlying torch.Tensor; `grad` (a Tensor without history, or None) is
    filled by `backward()` on leaves that require grad and on tensors that called
    `retain_grad()`.
    """

    __slots__ = ()
    __hash__ = object.__hash__

    @classmethod
    def _make(cls, data: torch.Tensor, requires_grad, ctx):
        """Fast constructor for op results (no conversion). Its one check: the data must
        not require grad in torch, which happens when a torch tensor that requires grad
        was mixed into an op; handgrad would silently hold torch's graph in its tensor."""
        if data.requires_grad:
            _refuse_torch_grad(data, None)
        t = object.__new__(cls)
        t.data = data
        t._grad = None
        t._requires_grad = requires_grad
        t._ctx = ctx
        return t

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """torch functions called with handgrad Tensors (torch.cat([a, b]),
        torch.nn.functional.relu(x), torch_tensor * x): handgrad's own op where it has
        one, else torch on the data without a graph (refused when a gradient would be
        lost). See handgrad/_interop.py."""
        from handgrad._interop import torch_function
        return torch_function(func, types, args, kwargs)

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        if not isinstance(data, torch.Tensor):
            data = torch.as_tensor(data, dtype=dtype, device=device)
        else:
            if data.requires_grad:
                _refuse_torch_grad(data, "Tensor()")
            if dtype is not None or device is not None:
                data = data.to(dtype=dtype, device=device)
        self.data = data
        self._grad = None
        self._ctx = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ grad, requires_grad
    @property
    def grad(self):
        """The gradient accumulated by backward (a Tensor without history), or None."""
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        """Assigning `.grad` is checked as torch checks it: a Tensor (or None) of this
        tensor's shape, dtype and device; an optimizer would otherwise broadcast a wrong
        one into every element."""
        if value is None:
            self._grad = None
            return
        if isinstance(value, torch.Tensor):
            value = Tensor._make(value, False, None)
        elif not isinstance(value, Tensor):
            raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                            f"type {type(value).__name__}")
        if value is self:
            raise RuntimeError("can't assign Variable as its own grad")
        mine, given = self.data, value.data
        problem = None
        if given.dtype != mine.dtype:
            problem = f"of a different type ({given.dtype}, the tensor is {mine.dtype})"
        elif given.device != mine.device:
            problem = (f"located on a different device ({given.device}, the tensor is on "
                       f"{mine.device})")
        elif given.shape != mine.shape:
            problem = (f"of a different size ({tuple(given.shape)}, the tensor has shape "
                       f"{tuple(mine.shape)})")
        if problem is not None:
            raise RuntimeError(f"assigned grad has data {problem}; assign a gradient of the "
                               "tensor's own shape, dtype and device (e.g. "
                               "torch's zeros_like(p) of the same kind), or None.")
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value) -> None:
        self.requires_grad_(bool(value))

    # ------------------------------------------------------------------ autograd API
    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False,
                 inputs=None) -> None:
        """Accumulate d(self)/d(leaf) * gradient into every leaf's `.grad`, or only into
        the `.grad` of `inputs` (leaves or not) when given, as in torch.

        A scalar needs no `gradient` (it defaults to 1); any other tensor needs one of
        its own shape, as in torch. create_graph=True (higher-order gradients) is not
        supported."""
        node, data = self._ctx, self.data
        if node is not None and inputs is None and not create_graph:  # loss.backward()
            # The usual call, already valid, goes straight to the engine; anything else
            # goes through autograd.backward, the one place with the checks and messages.
            if gradient is None and data.numel() == 1:
                gradient = torch.ones_like(data)
            elif isinstance(gradient, Tensor):
                gradient = gradient.data
            if type(gradient) is torch.Tensor and gradient.dtype is data.dtype \
                    and gradient.shape == data.shape and gradient.device == data.device:
                return autograd.run_backward((self,), (gradient,), bool(retain_graph))
        autograd.backward(self, None if gradient is None else (gradient,), retain_graph,
                          create_graph, inputs)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not (self.data.is_floating_point() or self.data.is_complex()):
            raise RuntimeError(
                f"requires_grad: only floating-point tensors can require gradients, this one "
                f"is {self.data.dtype}. Convert it first, e.g. x.float().")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError(
                "requires_grad_(False) works on leaf tensors only; use .detach() to cut a "
                "non-leaf tensor out of the graph.")
        self._requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def retain_grad(self) -> None:
        """Keep `.grad` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on a tensor that has "
                               "requires_grad=False")
        if self._ctx is not None:
            autograd.tensor_hooks(self).retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        """True on a non-leaf whose `.grad` is kept by backward (after `retain_grad()`)."""
        node = self._ctx
        if node is None or node._hooks is None or node._hooks.retained is None:
            return False
        return node._hooks.retained() is self

    def register_hook(self, hook) -> autograd.RemovableHandle:
        """Call `hook(grad)` with the gradient of this tensor each time backward computes
        it (a Tensor without history, summed over all uses); if the hook returns a
        Tensor, that gradient is used instead (for `.grad` of a leaf, and for everything
        further back). Hooks run in the order they were registered; on a leaf they run
        before the gradient is added to `.grad`. Returns a handle: `handle.remove()`."""
        if not self.requires_grad:
            raise RuntimeError(
                "register_hook: cannot register a hook on a tensor that doesn't require "
                "gradient. Create it with requires_grad=True (or call .requires_grad_() on "
                "a leaf) first.")
        return autograd.register_hook(self, hook)

    def detach(self) -> Tensor:
        """A new tensor sharing the same data, cut out of the graph."""
        out = Tensor._make(self.data, False, None)
        autograd.link_aliases(self, out)
        return out

    def detach_(self) -> Tensor:
        self._ctx = None
        self._requires_grad = False
        return self

    # ------------------------------------------------------------------ properties
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: self.data.device)
    ndim = property(lambda self: self.data.ndim)
    is_cuda = property(lambda self: self.data.is_cuda)

    def size(self, dim=None):
        return self.data.size() if dim is None else self.data.size(dim)

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.numel()

    nelement = numel  # torch's older name, still common in scripts

    def element_size(self) -> int:
        return self.data.element_size()

    def is_floating_point(self) -> bool:
        return self.data.is_floating_point()

    def is_contiguous(self) -> bool:
        return self.data.is_contiguous()

    def stride(self, dim=None):
        return self.data.stride() if dim is None else self.data.stride(dim)

    def storage_offset(self) -> int:
        return self.data.storage_offset()

    def data_ptr(self) -> int:
        # the address of the first element: equal for tensors that share it, as scripts
        # check for tied weights (decoder.weight.data_ptr() == encoder.weight.data_ptr())
        return self.data.data_ptr()

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def numpy(self):
        if self.requires_grad:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy()")
        return self.data.numpy()

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    def __index__(self):
        return self.data.__index__()

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:  # np.asarray(t), np.cumsum(t): the gradient would be lost
            raise RuntimeError(
                "numpy: can't convert a tensor that requires grad to a NumPy array (its "
                "gradient would be lost); use tensor.detach() first, as in torch.")
        array = self.data.cpu().numpy()
        return array if dtype is None else array.astype(dtype)

    def __dlpack__(self, *args, **kwargs):
        """DLPack export of the data, which is how torch.tensor(t), torch.as_tensor(t)
        (sharing memory) and np.from_dlpack(t) read a Tensor; refused when it requires
        grad, as torch refuses it."""
        if self.requires_grad:
            raise RuntimeError(
                "__dlpack__: can't export a tensor that requires grad (torch.tensor(t), "
                "torch.as_tensor(t), np.from_dlpack(t) would lose its gradient); use "
                "t.detach() first, as in torch.")
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy meets a Tensor: `np.float64(0.5) * t`, `np.ones(3) + t`, `np.exp(t)`.

        A ufunc handgrad has an op for runs that op (NumPy operands become tensors on
        this tensor's device; NumPy scalars stay scalars), so the result is a Tensor and
        the graph is kept. Any other ufunc runs on the plain data and returns NumPy's
        result, unless an input requires grad: then it is refused, since the gradient
        would be silently lost."""
        op = _numpy_ops().get(ufunc) if method == "__call__" and not kwargs else None
        if op is not None:
            return op(*(_from_numpy(x, self.device) for x in inputs))
        if any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
            raise TypeError(
                f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method}: "
                "handgrad has no differentiable op for it, and an input requires grad, so "
                "its gradient would be lost. Use the handgrad op (t.exp(), t.sum(), ...), "
                "or pass t.detach() if no gradient should flow.")
        plain = tuple(x.__array__() if isinstance(x, Tensor) else x for x in inputs)  # no grad
        return getattr(ufunc, method)(*plain, **kwargs)

    def __format__(self, format_spec: str) -> str:
        """f"{loss:.4f}": a 0-d tensor formats as its item, others as str(t), as torch."""
        if self.data.ndim == 0:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def __reduce_ex__(self, protocol):
        """Pickling (pickle, torch.save, multiprocessing): the torch tensor, the class
        and requires_grad, rebuilt by `_rebuild_tensor` (a leaf, no graph, no .grad, as
        torch pickles). Under torch.load(weights_only=True) the same file gives plain
        torch tensors; see _rebuild_tensor."""
        cls = type(self)
        return (_rebuild_tensor, (self.data.detach(), self._requires_grad,
                                  f"{cls.__module__}:{cls.__qualname__}"))

    def __deepcopy__(self, memo):
        """copy.deepcopy: a new leaf with copied data (and .grad), the same class and
        requires_grad; like torch, only leaves can be deep-copied."""
        if self._ctx is not None:
            raise RuntimeError(
                "deepcopy: only tensors created explicitly by the user (graph leaves) "
                "support the deepcopy protocol at the moment, as in torch; copy "
                "x.detach() (or x.detach().clone()) instead.")
        import copy
        new = type(self)._make(copy.deepcopy(self.data, memo), self._requires_grad, None)
        if self._grad is not None:
            new._grad = copy.deepcopy(self._grad, memo)
        return new

    def __repr__(self) -> str:
        text = repr(self.data)
        if self._ctx is not None:
            return f"{text[:-1]}, grad_fn={self._ctx!r})"
        if self.requires_grad:
            return f"{text[:-1]}, requires_grad=True)"
        return text

    # ------------------------------------------------------------------ conversion
    def to(self, *args, **kwargs) -> Tensor:
        """.to(device), .to(dtype), .to(device, dtype), .to(other_tensor) like torch;
        `copy=True` always returns a new tensor, `non_blocking` is passed on."""
        device_, dtype_ = kwargs.pop("device", None), kwargs.pop("dtype", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)  # a hint for pinned-memory copies; safe to drop
        for a in args:
            if isinstance(a, Tensor | torch.Tensor):
                device_, dtype_ = a.device, a.dtype
            elif isinstance(a, torch.dtype):
                dtype_ = a
            elif a is not None:
                device_ = torch.device(a)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        same_device = device_ is None or torch.device(device_) == self.device or (
            torch.device(device_).type == self.device.type and torch.device(device_).index
            is None)
        if same_device and (dtype_ is None or dtype_ == self.dtype):
            return F.Clone.apply(self) if copy else self
        return F.To.apply(self, device=device_, dtype=dtype_)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        return self.to("cuda" if device is None else device)

    def float(self) -> Tensor:
        return self.to(torch.float32)

    def double(self) -> Tensor:
        return self.to(torch.float64)

    def half(self) -> Tensor:
        return self.to(torch.float16)

    def long(self) -> Tensor:
        return self.to(torch.int64)

    def int(self) -> Tensor:
        return self.to(torch.int32)

    def bool(self) -> Tensor:
        return self.to(torch.bool)

    def type(self, dtype=None, non_blocking: bool = False, **kwargs):
        """t.type() -> 'torch.FloatTensor' (the name of its type, as torch); t.type(
        torch.float) or t.type('torch.cuda.FloatTensor') -> converted, as .to() does."""
        if dtype is None:
            return self.data.type()
        if isinstance(dtype, str):
            known = _type_names()
            name = dtype.replace("torch.cuda.", "torch.")
            if name not in known:
                raise ValueError(f"type: invalid type {dtype!r}; expected a torch.dtype or a "
                                 f"name such as 'torch.FloatTensor' ({', '.join(known)})")
            device = "cuda" if dtype.startswith("torch.cuda.") else "cpu"
            return self.to(device, known[name], non_blocking=non_blocking)
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"type: expected a torch.dtype or a type name, got {dtype!r}")
        return self.to(dtype, non_blocking=non_blocking)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    # clone(memory_format=) is in _tensor_math.py (the math mixin)

    # new_*: leaves of this tensor's dtype and device unless told otherwise, as torch
    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return self._new(self.data.new_zeros(_shape_args(size), dtype=dtype, device=device),
                         requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return self._new(self.data.new_ones(_shape_args(size), dtype=dtype, device=device),
                         requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return self._new(self.data.new_empty(_shape_args(size), dtype=dtype, device=device),
                         requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None,
                 requires_grad=False) -> Tensor:
        return self._new(self.data.new_full(tuple(size), _raw(fill_value), dtype=dtype,
                                            device=device), requires_grad)

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
        """A copy of `data` (numbers, lists, a Tensor) of this tensor's dtype and device
        unless told otherwise; never part of the graph, as torch."""
        if isinstance(data, Tensor | torch.Tensor):
            raw = _raw(data).detach().clone().to(dtype=dtype or _raw(data).dtype,
                                                 device=device or _raw(data).device)
        else:
            from handgrad._creation import _unwrap_nested
            raw = self.data.new_tensor(_unwrap_nested(data), dtype=dtype, device=device)
        return self._new(raw, requires_grad)

    @staticmethod
    def _new(raw: torch.Tensor, requires_grad: bool) -> Tensor:
        return Tensor(raw, requires_grad=requires_grad)

    def contiguous(self, memory_format=torch.contiguous_format) -> Tensor:
        """self when already laid out in memory_format, else a copy that is (dx = g). Not
        a plain clone: torch's clone keeps a permuted tensor's strides, so the copy of
        x.transpose(1, 2) would still refuse .view()."""
        if self.data.is_contiguous(memory_format=memory_format):
            return self
        return CloneFormat.apply(self, memory_format)

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other):
        return F.Add.apply(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        return F.Sub.apply(self, other)

    def __rsub__(self, other):
        return F.Sub.apply(other, self)

    def __mul__(self, other):
        return F.Mul.apply(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        return F.Div.apply(self, other)

    def __rtruediv__(self, other):
        return F.Div.apply(other, self)

    def __pow__(self, exponent):
        return F.Pow.apply(self, exponent)

    def __rpow__(self, base):
        return F.Pow.apply(base, self)

    def __neg__(self):
        return F.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return F.Abs.apply(self)

    def __matmul__(self, other):
        return F.Matmul.apply(self, other)

    def __rmatmul__(self, other):
        return F.Matmul.apply(other, self)

    def add(self, other, alpha=1):
        return F.Add.apply(self, other if alpha == 1 else other * alpha)

    def sub(self, other, alpha=1):
        return F.Sub.apply(self, other if alpha == 1 else other * alpha)

    def mul(self, other):
        return F.Mul.apply(self, other)

    def div(self, other):
        return F.Div.apply(self, other)

    def pow(self, exponent):
        return F.Pow.apply(self, exponent)

    def neg(self):
        return F.Neg.apply(self)

    def matmul(self, other):
        return F.Matmul.apply(self, other)

    # comparisons: no gradient, as in torch
    def __eq__(self, other):  # type: ignore[override]
        return Tensor._make(self.data == _raw(other), False, None)

    def __ne__(self, other):  # type: ignore[override]
        return Tensor._make(self.data != _raw(other), False, None)

    def __lt__(self, other):
        return Tensor._make(self.data < _raw(other), False, None)

    def __le__(self, other):
        return Tensor._make(self.data <= _raw(other), False, None)

    def __gt__(self, other):
        return Tensor._make(self.data > _raw(other), False, None)

    def __ge__(self, other):
        return Tensor._make(self.data >= _raw(other), False, None)

    def __invert__(self):
        return Tensor._make(~self.data, False, None)

    def __and__(self, other):
        return Tensor._make(self.data & _raw(other), False, None)

    def __or__(self, other):
        return Tensor._make(self.data | _raw(other), False, None)

    def __xor__(self, other):
        return Tensor._make(self.data ^ _raw(other), False, None)

    def __floordiv__(self, other):
        return FloorDivide.apply(self, other)  # in the graph: its gradient is 0

    def __mod__(self, other):
        return Remainder.apply(self, other)  # in the graph: da = g, db = -g floor(a / b)

    def __rfloordiv__(self, other):
        return FloorDivide.apply(other, self)

    def __rmod__(self, other):
        return Remainder.apply(other, self)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def isnan(self):
        return Tensor._make(torch.isnan(self.data), False, None)

    def isfinite(self):
        return Tensor._make(torch.isfinite(self.data), False, None)

    def any(self, dim=None, keepdim=False):
        data = self.data.any() if dim is None else self.data.any(dim=dim, keepdim=keepdim)
        return Tensor._make(data, False, None)

    def all(self, dim=None, keepdim=False):
        data = self.data.all() if dim is None else self.data.all(dim=dim, keepdim=keepdim)
        return Tensor._make(data, False, None)

    def sign(self):
        return Tensor._make(torch.sign(self.data), False, None)

    def equal(self, other) -> bool:
        return torch.equal(self.data, _raw(other))

    def allclose(self, other, rtol=1e-5, atol=1e-8) -> bool:
        return torch.allclose(self.data, _raw(other), rtol=rtol, atol=atol)

    def isclose(self, other, rtol=1e-5, atol=1e-8, equal_nan=False):
        """Elementwise |self - other| <= atol + rtol |other| (bool, no gradient)."""
        return Tensor._make(torch.isclose(self.data, _raw(other), rtol=rtol, atol=atol,
                                          equal_nan=equal_nan), False, None)

    def logical_and(self, other):
        """Elementwise, nonzero read as True (bool, no gradient), as torch."""
        return Tensor._make(torch.logical_and(self.data, _raw(other)), False, None)

    def logical_or(self, other):
        return Tensor._make(torch.logical_or(self.data, _raw(other)), False, None)

    def logical_xor(self, other):
        return Tensor._make(torch.logical_xor(self.data, _raw(other)), False, None)

    def logical_not(self):
        return Tensor._make(torch.logical_not(self.data), False, None)

    def square(self):
        """self * self (dx = 2 x g, through Pow)."""
        return F.Pow.apply(self, 2)

    # ------------------------------------------------------------------ unary math
    def exp(self):
        return F.Exp.apply(self)

    def log(self):
        return F.Log.apply(self)

    def sqrt(self):
        return F.Sqrt.apply(self)

    def rsqrt(self):
        return F.Rsqrt.apply(self)

    def abs(self):
        return F.Abs.apply(self)

    def sin(self):
        return F.Sin.apply(self)

    def cos(self):
        return F.Cos.apply(self)

    def tanh(self):
        return F.Tanh.apply(self)

    def sigmoid(self):
        return F.Sigmoid.apply(self)

    def relu(self):
        return F.Relu.apply(self)

    def leaky_relu(self, negative_slope=0.01):
        return F.LeakyRelu.apply(self, negative_slope)

    def elu(self, alpha=1.0):
        return F.Elu.apply(self, alpha)

    def gelu(self, approximate="none"):
        return F.Gelu.apply(self, approximate)

    def silu(self):
        return F.Silu.apply(self)

    def softplus(self, beta=1.0, threshold=20.0):
        return F.Softplus.apply(self, beta, threshold)

    def clamp(self, min=None, max=None):  # noqa: A002 -- torch's argument names
        """Bounds may be numbers or tensors; tensor bounds get their gradient too."""
        return F.Clamp.apply(self, min, max)

    clip = clamp

    def clamp_min(self, min):  # noqa: A002
        return F.Clamp.apply(self, min, None)

    def clamp_max(self, max):  # noqa: A002
        return F.Clamp.apply(self, None, max)

    def maximum(self, other):
        return F.Maximum.apply(self, other)

    def minimum(self, other):
        return F.Minimum.apply(self, other)

    def masked_fill(self, mask, value):
        if isinstance(value, Tensor) and value.requires_grad:  # value gets sum of g[mask]
            return F.Where.apply(_raw(mask), value, self)
        return F.MaskedFill.apply(self, _raw(mask), value)

    def where(self, condition, other):
        """Elements of self where condition holds, else of other (a number or Tensor)."""
        return F.Where.apply(_raw(condition), self, other)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False, *, dtype=None):
        """dtype: cast first, then sum (as torch; the gradient comes back in self's dtype)."""
        return F.Sum.apply(self if dtype is None else self.to(dtype), dim, keepdim)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        return F.Mean.apply(self if dtype is None else self.to(dtype), dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return F.Var.apply(self, dim, _correction(unbiased, correction), keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return F.Std.apply(self, dim, _correction(unbiased, correction), keepdim)

    def amax(self, dim=None, keepdim=False):
        return F.AmaxAmin.apply(self, dim, keepdim, True)

    def amin(self, dim=None, keepdim=False):
        return F.AmaxAmin.apply(self, dim, keepdim, False)

    def max(self, dim=None, keepdim=False):
        """max() -> the largest value; max(dim) -> (values, indices), as torch."""
        if isinstance(dim, Tensor):
            return F.Maximum.apply(self, dim)
        if dim is None:
            return F.MaxAll.apply(self, True)
        return _ValuesIndices(F.MaxDim.apply(self, dim, keepdim, True))

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return F.Minimum.apply(self, dim)
        if dim is None:
            return F.MaxAll.apply(self, False)
        return _ValuesIndices(F.MaxDim.apply(self, dim, keepdim, False))

    def argmax(self, dim=None, keepdim=False):
        return Tensor._make(self.data.argmax(dim=dim, keepdim=keepdim), False, None)

    def multinomial(self, num_samples: int, replacement: bool = False, *, generator=None):
        """Indices drawn from the rows of self as (unnormalised) probabilities, as
        torch.multinomial; int64, without a gradient."""
        return Tensor._make(torch.multinomial(self.data, num_samples, replacement,
                                              generator=generator), False, None)

    def argmin(self, dim=None, keepdim=False):
        return Tensor._make(self.data.argmin(dim=dim, keepdim=keepdim), False, None)

    def sort(self, dim=-1, descending=False, *, stable=False):
        """(values, indices) sorted along dim, as torch; values carry the gradient
        (scattered back through the indices), indices are int64 without one."""
        dim = _wrap_dim("sort", dim, self.ndim)
        return _ValuesIndices(Sort.apply(self, dim, bool(descending), bool(stable)))

    def argsort(self, dim=-1, descending=False, *, stable=False):
        """The indices that sort along dim (int64, no gradient), as torch.argsort."""
        dim = _wrap_dim("argsort", dim, self.ndim)
        return Tensor._make(torch.sort(self.data, dim=dim, descending=bool(descending),
                                       stable=bool(stable)).indices, False, None)

    def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002 (torch's name)
        """(values, indices) of the k largest (smallest when largest=False) along dim;
        values carry the gradient, indices are int64 without one."""
        dim = _wrap_dim("topk", dim, self.ndim)
        size = self.shape[dim] if self.ndim else 1
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"topk: k must be an int, got {type(k).__name__}")
        if not 0 <= k <= size:
            raise RuntimeError(f"topk: selected index k out of range: k={k} but dim {dim} "
                               f"of shape {tuple(self.shape)} has {size} elements; "
                               f"choose 0 <= k <= {size}")
        return _ValuesIndices(TopK.apply(self, k, dim, bool(largest), bool(sorted)))

    def cumsum(self, dim, *, dtype=None):
        """Cumulative sum along dim; dtype: cast first, as torch (integers and bools sum
        as int64 unless told). The gradient is the reversed cumulative sum of g."""
        dim = _wrap_dim("cumsum", dim, self.ndim)
        return Cumsum.apply(self if dtype is None else self.to(dtype), dim)

    def cumprod(self, dim, *, dtype=None):
        """Cumulative product along dim; the gradient is exact with zeros in self."""
        dim = _wrap_dim("cumprod", dim, self.ndim)
        return Cumprod.apply(self if dtype is None else self.to(dtype), dim)

    def logsumexp(self, dim, keepdim=False):
        return F.LogSumExp.apply(self, dim, keepdim)

    def softmax(self, dim, dtype=None):
        """dtype: cast first (as torch, e.g. a float16 input computed in float32)."""
        return F.Softmax.apply(self if dtype is None else self.to(dtype), dim)

    def log_softmax(self, dim, dtype=None):
        return F.LogSoftmax.apply(self if dtype is None else self.to(dtype), dim)

    # norm(p='fro', dim, keepdim, dtype) is in _tensor_math.py (the math mixin)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape):
        return F.Reshape.apply(self, _shape_args(shape))

    def view(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], torch.dtype):
            raise TypeError("view(dtype) is not differentiable; use .to(dtype)")
        if not self.data.is_contiguous():
            try:
                self.data.view(_shape_args(shape))
            except RuntimeError as error:
                message = str(error).split(" Use .reshape")[0]
                raise RuntimeError(f"view: {message} Use .reshape(...) instead.") from None
        return F.Reshape.apply(self, _shape_args(shape))

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        start, end = _wrap_dim("flatten", start_dim, self.ndim), _wrap_dim("flatten", end_dim,
                                                                         self.ndim)
        if self.ndim == 0:
            return self.reshape(1)
        if start > end:
            raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                               f"(shape {tuple(self.shape)})")
        shape = self.shape
        new = (*shape[:start], -1 if 0 not in shape else 0, *shape[end + 1:])
        return F.Reshape.apply(self, new)

    def unflatten(self, dim, sizes):
        dim = _wrap_dim("unflatten", dim, self.ndim)
        return self.reshape(*self.shape[:dim], *sizes, *self.shape[dim + 1:])

    def squeeze(self, dim=None):
        if dim is None:
            new = tuple(n for n in self.shape if n != 1)
        else:
            dims = {_wrap_dim("squeeze", d, self.ndim)
                    for d in ((dim,) if isinstance(dim, int) else dim)}
            new = tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1))
        return self if new == tuple(self.shape) else F.Reshape.apply(self, new)

    def unsqueeze(self, dim):
        dim = _wrap_dim("unsqueeze", dim, self.ndim + 1)
        return F.Reshape.apply(self, (*self.shape[:dim], 1, *self.shape[dim:]))

    def permute(self, *dims):
        return F.Permute.apply(self, _shape_args(dims))

    def transpose(self, dim0, dim1):
        return F.Transpose.apply(self, dim0, dim1)

    @property
    def T(self):
        return F.Permute.apply(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self):
        if self.ndim < 2:
            raise RuntimeError(f"mT: needs at least 2 dims, got shape {tuple(self.shape)}")
        return F.Transpose.apply(self, -2, -1)

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dims, got {self.ndim}")
        return self.T

    def expand(self, *shape):
        shape = _shape_args(shape)
        shape = tuple(self.shape[i - len(shape) + self.ndim] if n == -1 else n
                      for i, n in enumerate(shape))
        return F.Expand.apply(self, shape)

    def expand_as(self, other):
        return self.expand(other.shape)

    def broadcast_to(self, shape):
        return self.expand(shape)

    def repeat(self, *repeats):
        return F.Repeat.apply(self, _shape_args(repeats))

    def flip(self, *dims):
        return F.Flip.apply(self, _shape_args(dims))

    def tril(self, diagonal=0):
        return F.Tril.apply(self, diagonal)

    def triu(self, diagonal=0):
        return F.Triu.apply(self, diagonal)

    def gather(self, dim, index):
        return F.Gather.apply(self, dim, _raw(index))

    def index_select(self, dim, index):
        return F.IndexSelect.apply(self, dim, _raw(index))

    def split(self, split_size_or_sections, dim=0) -> tuple:
        """Pieces of x along dim: equal pieces of a given size, or a list of sizes."""
        size = self.shape[_wrap_dim("split", dim, self.ndim)]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step < 0 or (step == 0 and size):
                raise HandgradError(f"split: split_size must be positive, got {step} (dim "
                                    f"{dim} of shape {tuple(self.shape)})")
            sizes = [min(step, size - s) for s in range(0, size, step)] or [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != size:
                raise HandgradError(f"split: sizes {sizes} do not add up to {size} (dim {dim} "
                                    f"of shape {tuple(self.shape)})")
        pieces, start = [], 0
        for n in sizes:
            pieces.append(self.narrow(dim, start, n))
            start += n
        return tuple(pieces)

    def chunk(self, chunks: int, dim=0) -> tuple:
        """Split x into `chunks` pieces of ceil(size / chunks) (the last may be smaller)."""
        if chunks <= 0:
            raise HandgradError(f"chunk: chunks must be positive, got {chunks}")
        size = self.shape[_wrap_dim("chunk", dim, self.ndim)]
        return self.split(max(1, -(-size // chunks)), dim)

    def unbind(self, dim=0):
        dim = _wrap_dim("unbind", dim, self.ndim)
        return tuple(self.select(dim, i) for i in range(self.shape[dim]))

    def select(self, dim, index):
        return self[(slice(None),) * _wrap_dim("select", dim, self.ndim) + (index,)]

    def narrow(self, dim, start, length):
        dim = _wrap_dim("narrow", dim, self.ndim)
        if start < 0:
            start += self.shape[dim]
        if not (0 <= start and length >= 0 and start + length <= self.shape[dim]):
            raise HandgradError(f"narrow: start {start} and length {length} do not fit in dim "
                             f"{dim} of shape {tuple(self.shape)}")
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    def __getitem__(self, index):
        return F.GetItem.apply(self, _raw_index(index))

    def __setitem__(self, index, value):
        if self._check_inplace("__setitem__"):
            # No Function records item assignment yet; writing into .data would leave
            # the old node in place and silently give the overwritten items a gradient.
            raise RuntimeError(
                f"__setitem__: assigning into a tensor that is part of the graph (shape "
                f"{tuple(self.shape)}, made by {self._ctx!r}) is not supported. Build the "
                "result out of place (handgrad.where, masked_fill, cat), or assign inside "
                "`with handgrad.no_grad():` if no gradient should flow through it.")
        if isinstance(value, Tensor) and value.requires_grad and is_grad_enabled():
            raise RuntimeError(
                "__setitem__: the assigned value requires grad, but item assignment is not "
                "recorded, so its gradient would be lost. Build the result out of place "
                "(handgrad.cat, stack, where), or assign value.detach().")
        self.data[_raw_index(index)] = _raw(value)

    # ------------------------------------------------------------------ in place
    def _check_inplace(self, op: str, other=None) -> bool:
        """True when the op must be recorded: grad mode on, and self or `other` requires
        grad (x.add_(w) with w in the graph puts x in the graph, as torch does)."""
        if not is_grad_enabled():
            return False
        if self.requires_grad or (isinstance(other, Tensor) and other.requires_grad):
            if self.requires_grad and self._ctx is None:
                raise RuntimeError(
                    f"{op}: a leaf tensor that requires grad (shape {tuple(self.shape)}) is "
                    "being changed in place. Do it inside `with handgrad.no_grad():` (as "
                    "optimizers do), or use the out-of-place op.")
            if autograd.live_aliases(self):
                raise RuntimeError(
                    f"{op}: this in-place op must be recorded for backward, but its target "
                    f"(shape {tuple(self.shape)}, made by {self._ctx!r}) shares its data "
                    "with other live tensors "
                    "(views made by indexing, view/reshape, transpose, permute, expand, or "
                    "a .detach()). handgrad records an in-place op on it as a new result, "
                    "so those tensors would silently keep the old values. Use the "
                    "out-of-place op (y = x * 2 rather than x.mul_(2)), or change it inside "
                    "`with handgrad.no_grad():` if no gradient should flow through it.")
            return True
        return False

    def _rebind(self, result: Tensor, op: str) -> Tensor:
        """In-place op on a non-leaf with grad: take the out-of-place result's place in
        the graph. The old data is left untouched, so nothing saved is corrupted. As in
        torch, the target keeps its shape and dtype."""
        if result.shape != self.shape:
            raise RuntimeError(
                f"{op}: the result has shape {tuple(result.shape)} but an in-place op must "
                f"keep the target's shape {tuple(self.shape)} (the other operand may "
                "broadcast to the target, not the target to it). Use the out-of-place op.")
        if result.dtype != self.dtype:
            if self.data.is_floating_point() or not result.data.is_floating_point():
                result = result.to(self.dtype)
            else:
                raise RuntimeError(
                    f"{op}: the result is {result.dtype} and cannot be written into a "
                    f"{self.dtype} tensor in place. Convert the target first, e.g. "
                    "x = x.float().")
        retained = self.retains_grad
        self.data, self._ctx, self._requires_grad = result.data, result._ctx, True
        autograd.unlink_aliases(self)
        if retained:  # retain_grad() follows the tensor to its new node, as in torch
            autograd.tensor_hooks(self).retained = weakref.ref(self)
        return self

    def add_(self, other, alpha=1):
        if self._check_inplace("add_", other):
            return self._rebind(self.add(other, alpha=alpha), "add_")
        self.data.add_(_raw(other), alpha=alpha)
        return self

    def sub_(self, other, alpha=1):
        if self._check_inplace("sub_", other):
            return self._rebind(self.sub(other, alpha=alpha), "sub_")
        self.data.sub_(_raw(other), alpha=alpha)
        return self

    def mul_(self, other):
        if self._check_inplace("mul_", other):
            return self._rebind(self * other, "mul_")
        self.data.mul_(_raw(other))
        return self

    def div_(self, other):
        if self._check_inplace("div_", other):
            return self._rebind(self / other, "div_")
        self.data.div_(_raw(other))
        return self

    def clamp_(self, min=None, max=None):  # noqa: A002
        bound = min if isinstance(min, Tensor) and min.requires_grad else max
        if self._check_inplace("clamp_", bound):
            return self._rebind(self.clamp(min, max), "clamp_")
        self.data.clamp_(_raw(min), _raw(max))
        return self

    def masked_fill_(self, mask, value):
        if self._check_inplace("masked_fill_"):
            return self._rebind(self.masked_fill(mask, value), "masked_fill_")
        self.data.masked_fill_(_raw(mask), value)
        return self

    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def _fill(self, op: str, fn, *args, **kwargs) -> Tensor:
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(
                f"{op}: refusing to overwrite a tensor that requires grad while grad mode "
                "is on; do it inside `with handgrad.no_grad():`.")
        fn(*args, **kwargs)
        return self

    def zero_(self):
        return self._fill("zero_", self.data.zero_)

    def fill_(self, value):
        return self._fill("fill_", self.data.fill_, _raw(value))

    def copy_(self, source):
        return self._fill("copy_", self.data.copy_, _raw(source))

    def normal_(self, mean=0.0, std=1.0, generator=None):
        return self._fill("normal_", self.data.normal_, mean, std, generator=generator)

    def uniform_(self, a=0.0, b=1.0, generator=None):
        return self._fill("uniform_", self.data.uniform_, a, b, generator=generator)

    def bernoulli_(self, p=0.5, *, generator=None):
        """Fill with 0 / 1 draws, 1 with probability p (a number or a tensor)."""
        return self._fill("bernoulli_", self.data.bernoulli_, _raw(p), generator=generator)


class _ValuesIndices(tuple):
    """(values, indices) from max/min along a dim, with torch's attribute names."""

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _wrap_dim(op: str, dim: int, ndim: int) -> int:
    """A non-negative dim, or an IndexError naming the op, as torch raises."""
    try:
        return wrap_dim(dim, ndim)
    except IndexError as error:
        raise IndexError(f"{op}: {error}") from None


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


_NUMPY_OPS: dict = {}


def _numpy_ops() -> dict:
    """NumPy ufunc -> the handgrad operation it means (built on first use: NumPy is
    imported only by code that already uses it)."""
    if not _NUMPY_OPS:
        import operator

        import numpy as np
        _NUMPY_OPS.update({
            np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
            np.true_divide: operator.truediv, np.power: operator.pow,
            np.matmul: operator.matmul, np.negative: operator.neg, np.positive: operator.pos,
            np.equal: operator.eq, np.not_equal: operator.ne, np.less: operator.lt,
            np.less_equal: operator.le, np.greater: operator.gt,
            np.greater_equal: operator.ge, np.maximum: F.Maximum.apply,
            np.minimum: F.Minimum.apply, np.absolute: F.Abs.apply, np.exp: F.Exp.apply,
            np.log: F.Log.apply, np.sqrt: F.Sqrt.apply, np.sin: F.Sin.apply,
            np.cos: F.Cos.apply, np.tanh: F.Tanh.apply,
        })
    return _NUMPY_OPS


def _from_numpy(x, device):
    """A NumPy operand as handgrad sees it: an array becomes a Tensor on `device` (torch's
    dtype promotion then applies to it as to any tensor), a NumPy scalar a Python one."""
    if isinstance(x, Tensor):
        return x
    if hasattr(x, "__array_interface__") and hasattr(x, "ndim"):
        if getattr(x, "shape", None) == () and not hasattr(x, "__len__"):
            return x.item()  # a NumPy scalar: np.float64(0.5), np.sqrt(2.)
        return Tensor._make(torch.as_tensor(x, device=device), False, None)
    return x


Tensor._result_type = Tensor  # ops on a Tensor, or on a Parameter, give a Tensor


_TYPE_NAMES: dict = {}


def _type_names() -> dict:
    """'torch.FloatTensor' -> torch.float32, ... (the CPU names; CUDA's add '.cuda')."""
    if not _TYPE_NAMES:
        for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16,
                      torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
                      torch.bool, torch.complex64, torch.complex128):
            _TYPE_NAMES[torch.empty(0, dtype=dtype).type()] = dtype
    return _TYPE_NAMES


def _refuse_torch_grad(data: torch.Tensor, who: str | None):
    """A torch tensor that requires grad reached a handgrad tensor: refuse it (handgrad
    computes no torch gradients, so torch's graph inside would silently go nowhere).
    `who` names the caller; None means an op's result, whose op and argument are found
    in the calling frame (Function.apply's `cls` and `args`); only this error path looks."""
    if who is None:
        import sys
        frame = sys._getframe(2)
        op, args = frame.f_locals.get("cls"), frame.f_locals.get("args")
        if isinstance(op, type) and isinstance(args, tuple):
            where = [i for i, a in enumerate(args)
                     if isinstance(a, torch.Tensor) and a.requires_grad]
            who = (f"{autograd.op_name(op)}: argument {', '.join(map(str, where))}" if where
                   else autograd.op_name(op))
        else:
            who = "an op"
    raise RuntimeError(
        f"{who}: got a torch tensor that requires grad (shape {tuple(data.shape)}); handgrad "
        "computes no torch gradients, so its gradient would be silently lost. Make it a "
        "handgrad tensor that requires grad (handgrad.tensor(t.detach(), "
        "requires_grad=True)), or pass t.detach() if no gradient should flow.")


def _rebuild_tensor(data: torch.Tensor, requires_grad: bool, kind: str):
    """Unpickle a Tensor: `kind` ('handgrad._tensor:Tensor', 'handgrad.nn.module:
    Parameter', ...) names its class, which must be a handgrad Tensor class.

    Called by torch.load(weights_only=True) (handgrad registers this function with
    torch's safe globals), it returns the plain torch tensor instead: weights_only
    promises torch data and nothing else, so no class named in the file is imported.
    (In a process that never imported handgrad, weights_only refuses this function by
    name; handgrad.save / handgrad.load are the format that needs no pickle at all.)"""
    import sys
    if sys._getframe(1).f_globals.get("__name__") == "torch._weights_only_unpickler":
        return data.requires_grad_(bool(requires_grad) and data.is_floating_point())
    module_name, _, qualname = kind.partition(":")
    import importlib
    cls = importlib.import_module(module_name)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, Tensor)):
        raise TypeError(f"unpickling a handgrad Tensor: {kind!r} is not a Tensor class")
    t = cls._make(data, False, None)
    t._requires_grad = bool(requires_grad)
    return t


torch.serialization.add_safe_globals([_rebuild_tensor])


def is_tensor(x) -> bool:
    """True for a handgrad Tensor (as torch.is_tensor for torch's)."""
    return isinstance(x, Tensor)
