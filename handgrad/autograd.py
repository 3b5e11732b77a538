"""The autograd core: Function nodes, the backward engine, grad mode, unbroadcast.

A `Function` subclass is one differentiable operation. Its `forward(ctx, *raw)` works
on raw torch tensors (PyTorch as an array library, nothing more) and its
`backward(ctx, grad_output)` returns one gradient per input, also computed with raw
torch ops. `Function.apply(*inputs)` unwraps handgrad Tensors, runs forward, wraps the
result, and records a graph node when some input requires grad and grad mode is on.

The node of an operation *is* its context object: an instance of the Function class
that holds the saved tensors, `needs_input_grad` and the edges to its inputs (the input's
own node, or the input itself when it is a leaf that requires grad).

`backward()` walks the graph in an iterative topological order (no recursion, so a
100,000-op chain works in linear time), accumulates into leaf `.grad` like PyTorch,
and frees saved tensors unless `retain_graph=True`.

What this file leaves out: the Tensor class (tensor.py) and the ops (ops/).
"""

from __future__ import annotations

import functools
import inspect
import weakref
from typing import Any

import torch

__all__ = [
    "Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "unbroadcast",
]

# --------------------------------------------------------------------------- grad mode
# One process-wide switch, like torch's grad mode (handgrad keeps it global, not per
# thread: the training loop and data workers do not share graphs across threads).
_grad_enabled = True


def is_grad_enabled() -> bool:
    """True when new operations are recorded for backward."""
    return _grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode to `mode` (restores on exit).

    Used as a decorator, grad mode is set around every call of the function (and, for
    a generator function, around every step of the generator, as torch does)."""

    mode = True

    def __init__(self):
        self._previous: list[bool] = []

    def __enter__(self):
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous.pop()
        return False

    def __call__(self, fn):
        mode = self.mode
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                with _ModeOnly(mode):
                    steps = fn(*args, **kwargs)
                    request = None
                while True:
                    with _ModeOnly(mode):
                        try:
                            response = steps.send(request)
                        except StopIteration as stop:
                            return stop.value
                    request = yield response

            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _ModeOnly(mode):
                return fn(*args, **kwargs)

        return wrapper


class _ModeOnly(_GradMode):
    def __init__(self, mode: bool):
        super().__init__()
        self.mode = mode


class _NoArgumentMode(_GradMode):
    """no_grad / enable_grad: `with no_grad():`, `@no_grad()` and bare `@no_grad`."""

    def __new__(cls, fn=None):
        if fn is None:
            return super().__new__(cls)
        if not callable(fn):
            raise TypeError(f"{cls.__name__}() takes no arguments (got {fn!r}); use it as "
                            f"`with {cls.__name__}():` or as a decorator")
        return cls()(fn)

    def __init__(self, fn=None):
        super().__init__()


class no_grad(_NoArgumentMode):
    """`with handgrad.no_grad():`, `@handgrad.no_grad()` or `@handgrad.no_grad`: record
    nothing for backward."""

    mode = False


class enable_grad(_NoArgumentMode):
    """Turn grad mode back on inside a `no_grad` block (context manager or decorator)."""

    mode = True


class set_grad_enabled(_GradMode):
    """Set grad mode to `mode`, as torch: at once when called (`set_grad_enabled(False)`
    as a statement works), and restored on leaving a `with` block; as a decorator it
    sets the mode around each call only."""

    def __init__(self, mode: bool):
        global _grad_enabled
        super().__init__()
        self.mode = bool(mode)
        self._before = _grad_enabled
        _grad_enabled = self.mode

    def __enter__(self):
        return self  # the mode was set by __init__

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._before
        return False

    def __call__(self, fn):
        global _grad_enabled
        _grad_enabled = self._before  # decorating changes nothing outside the calls
        return super().__call__(fn)


# --------------------------------------------------------------------------- helpers
def unbroadcast(grad: torch.Tensor, shape: torch.Size | tuple) -> torch.Tensor:
    """Sum `grad` down to `shape`, undoing broadcasting (the one place it is undone).

    Broadcasting prepends size-1 dims and stretches size-1 dims; the gradient of a
    stretched input is the sum over the stretched positions.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(dim=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(dim=stretched, keepdim=True)
    return grad


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"{tuple(x.shape)} {str(x.dtype).replace('torch.', '')} on {x.device}"
    return repr(x) if isinstance(x, int | float | bool) else type(x).__name__


class HandgradError(RuntimeError):
    """An operation was given inputs it cannot work with; the message says why."""


# --------------------------------------------------------------------------- Function
class Function:
    """Base class of every differentiable operation (and the graph node it leaves).

    Subclasses define two static methods::

        @staticmethod
        def forward(ctx, *inputs_as_raw_torch_tensors_or_constants): -> torch.Tensor
        @staticmethod
        def backward(ctx, grad_output): -> one gradient (or None) per forward input

    Forward may return a tuple; then only its first element is differentiable and the
    others (indices, for example) are returned as plain tensors.
    """

    # Class-level defaults: creating a node is then just `cls()`, the cheapest object
    # creation Python has (this runs once per recorded op).
    parents: tuple = ()
    needs_input_grad: tuple = ()
    _saved: tuple = ()
    _versions: tuple = ()
    _freed = False
    _retained = None  # weakref to the output tensor when retain_grad() was called
    # True for ops whose output may share its input's storage (views: reshape, permute,
    # transpose, expand, basic indexing); apply() then records the two as aliases.
    returns_view = False

    # ---- context API used inside forward/backward
    def save_for_backward(self, *tensors: torch.Tensor | None) -> None:
        """Keep `tensors` for backward; in-place changes to them are detected there.

        Plain numbers and None may be saved too (they have no version to check)."""
        self._saved = tensors
        self._versions = tuple(t._version if isinstance(t, torch.Tensor) else None
                               for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(
                f"{type(self).__name__}: trying to backward through the graph a second time "
                "(its saved tensors were freed by the first backward). Pass "
                "retain_graph=True to the first backward() if you need to call it twice.")
        for t, v in zip(self._saved, self._versions):
            if v is not None and t._version != v:
                raise RuntimeError(
                    f"{type(self).__name__}: a tensor of shape {tuple(t.shape)} saved for "
                    "backward was modified in place after it was saved (version "
                    f"{v} -> {t._version}), so its gradient would be wrong. Use an "
                    "out-of-place operation (x = x + y instead of x += y), or .clone() "
                    "the tensor before changing it.")
        return self._saved

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any):
        """Run the op on handgrad Tensors (or constants) and record it for backward."""
        tensor_cls = _Tensor
        raw = []
        needs = []
        any_needs = False
        for a in args:
            if isinstance(a, tensor_cls):
                raw.append(a.data)
                r = a.requires_grad
                needs.append(r)
                any_needs |= r
            else:
                raw.append(a)
                needs.append(False)
        ctx = cls()
        record = any_needs and _grad_enabled
        ctx.needs_input_grad = tuple(needs) if record else (False,) * len(args)
        try:
            out = cls.forward(ctx, *raw, **kwargs)
        except HandgradError:
            raise
        except (RuntimeError, IndexError, ValueError, TypeError) as e:
            raise _op_error(cls, raw, e) from None
        extra = None
        if type(out) is tuple:
            out, *extra = out
        if record:
            ctx.parents = tuple(
                (a._ctx or a) if n else None for a, n in zip(args, needs))
            result = tensor_cls._make(out, True, ctx)
        else:
            result = tensor_cls._make(out, False, None)
        if extra is not None:
            return (result, *(tensor_cls._make(t, False, None) for t in extra))
        if cls.returns_view and isinstance(args[0], tensor_cls):
            link_aliases(args[0], result)
        return result

    def _free(self) -> None:
        self._saved = ()
        self._freed = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"


# Bound by _tensor.py at import (autograd sits below tensor in the import order).
_Tensor: Any = None

# Tensors that share storage (a view and its base, two views of one base, a tensor and
# its .detach()) are kept in one _AliasGroup, reached through each member's `_alias`
# slot (left unset on tensors that never shared storage: no cost to ordinary ops). Only
# view ops, detach() and in-place ops touch it. An in-place op that is recorded (grad
# mode on, the tensor in the graph) gives the tensor a fresh result instead of writing
# into the shared storage, so the other members would silently keep the old values:
# such an op is refused while another member is alive.
class _AliasGroup:
    __slots__ = ("refs", "limit")

    def __init__(self, first):
        self.refs = [weakref.ref(first)]
        self.limit = 8

    def add(self, tensor) -> None:
        if len(self.refs) >= self.limit:  # drop dead members now and then (amortised)
            self.refs = [r for r in self.refs if r() is not None]
            self.limit = max(8, 2 * len(self.refs))
        self.refs.append(weakref.ref(tensor))


def link_aliases(source, view) -> None:
    """Record that `view`'s data shares `source`'s storage (when it really does)."""
    if view.data._base is None and view.data is not source.data:
        return  # the op had to copy (reshape of a non-contiguous tensor, for one)
    group = getattr(source, "_alias", None)
    if group is None:
        group = source._alias = _AliasGroup(source)
    group.add(view)
    view._alias = group


def live_aliases(tensor) -> int:
    """How many other live tensors share `tensor`'s storage (as far as handgrad knows)."""
    group = getattr(tensor, "_alias", None)
    if group is None:
        return 0
    return sum(1 for r in group.refs if r() is not None and r() is not tensor)


def unlink_aliases(tensor) -> None:
    """`tensor` now has storage of its own (it was rebound by an in-place op)."""
    group = getattr(tensor, "_alias", None)
    if group is not None:
        group.refs = [r for r in group.refs if r() is not tensor]
        tensor._alias = None


def op_name(cls: type) -> str:
    """The user-facing name of a Function class ('Mul' -> 'mul')."""
    return getattr(cls, "name", None) or cls.__name__.lower()


def _op_error(cls: type, raw: list, error: Exception) -> HandgradError:
    described = ", ".join(_describe(x) for x in raw if isinstance(x, torch.Tensor))
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    devices = {x.device for x in raw if isinstance(x, torch.Tensor) and x.ndim > 0}
    hint = ""
    if len(devices) > 1:
        hint = " Move all inputs to one device first, e.g. with .to(device)."
    elif "must match the size" in message or "broadcast" in message:
        hint = " The shapes do not broadcast: check them, or reshape/unsqueeze explicitly."
    elif "boolean" in message.lower():
        hint = " Pass a bool tensor, e.g. x > 0 or mask.bool()."
    elif "index" in message.lower() and "dtype" in message.lower():
        hint = " Pass an integer index tensor, e.g. index.long()."
    elif "step must be greater than zero" in message:
        hint = " Negative steps are refused, as in torch: use .flip(dim) to reverse."
    elif "dtype" in message.lower() or "expected scalar type" in message.lower():
        hint = " Convert the inputs to one dtype first, e.g. with .float() or .double()."
    return HandgradError(f"{op_name(cls)}: cannot apply to inputs [{described}]: {message}.{hint}")


# --------------------------------------------------------------------------- backward
def backward(root, gradient: torch.Tensor, retain_graph: bool = False) -> None:
    """Backpropagate `gradient` (d out / d root) from tensor `root` into leaf `.grad`."""
    root_node = root._ctx
    # Leaf grads must never share memory with each other or with the caller's gradient.
    # Compare storages, not data_ptr: a slice of a gradient (cat's backward) starts
    # elsewhere in the same memory.
    leaf_storages = {_storage(gradient)}
    if root_node is None:  # a leaf: its gradient is the incoming gradient
        _accumulate(root, gradient, leaf_storages)
        return
    # Iterative depth-first post-order gives inputs before the nodes that use them.
    order = []
    visited = set()
    stack = [(root_node, False)]
    function = Function
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for parent in node.parents:
            if parent is not None and isinstance(parent, function) and parent not in visited:
                stack.append((parent, False))

    grads = {root_node: gradient}
    for node in reversed(order):
        grad = grads.pop(node, None)
        if grad is None:  # no gradient flows here (e.g. only through int outputs)
            continue
        if node._retained is not None:
            kept = node._retained()
            if kept is not None and kept._ctx is node:
                _accumulate(kept, grad, leaf_storages)
        input_grads = type(node).backward(node, grad)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        for parent, input_grad in zip(node.parents, input_grads):
            if parent is None or input_grad is None:
                continue
            if isinstance(parent, function):
                previous = grads.get(parent)
                grads[parent] = input_grad if previous is None else previous + input_grad
            else:
                _accumulate(parent, input_grad, leaf_storages)
        if not retain_graph:
            node._free()


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _accumulate(tensor, grad: torch.Tensor, leaf_storages: set) -> None:
    """leaf.grad += grad, without ever letting two .grad tensors share storage."""
    if grad.dtype != tensor.data.dtype:
        grad = grad.to(tensor.data.dtype)
    if tensor.grad is None:
        if _storage(grad) in leaf_storages or not grad.is_contiguous():
            grad = grad.contiguous() if not grad.is_contiguous() else grad.clone()
        leaf_storages.add(_storage(grad))
        tensor.grad = _Tensor._make(grad, False, None)
    else:
        tensor.grad.data = tensor.grad.data + grad
