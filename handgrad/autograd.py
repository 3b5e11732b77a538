"""The autograd core: Function nodes, the backward engine, grad mode, unbroadcast,
and torch's autograd API on top of the engine (grad, backward, tensor hooks).

A `Function` subclass is one differentiable operation. Its `forward(ctx, *raw)` works
on raw torch tensors (PyTorch as an array library, nothing more) and its
`backward(ctx, grad_output)` returns one gradient per input, also computed with raw
torch ops. `Function.apply(*inputs)` unwraps handgrad Tensors, runs forward, wraps the
result, and records a graph node when some input requires grad and grad mode is on.

The node of an operation *is* its context object: an instance of the Function class
that holds the saved tensors, `needs_input_grad` and the edges to its inputs (the input's
own node, or the input itself when it is a leaf that requires grad).

One engine (`_run_backward`) walks the graph in an iterative topological order (no
recursion, so a 100,000-op chain works in linear time) and frees saved tensors unless
`retain_graph=True`. It serves, with torch's semantics:

* `loss.backward()` / `backward(tensors, grad_tensors)`: accumulate into leaf `.grad`;
  with `inputs=`, only into those tensors' `.grad` (a non-leaf input retains its grad);
* `grad(outputs, inputs)`: return the gradient reaching each input (leaf or not) and
  touch no leaf `.grad`; only the nodes between outputs and inputs run;
* `tensor.register_hook(hook)`: the hook sees the tensor's complete gradient (on a leaf,
  before it goes into `.grad`) and may return a replacement; `retain_grad()` keeps a
  non-leaf's gradient (after its hooks). Both live on the tensor's node (`node._hooks`,
  None almost always: one attribute check per node) or, for a leaf, on the leaf.

Left out: higher-order gradients (`create_graph=True` is refused: backward functions
compute with raw torch tensors and record nothing), `is_grads_batched`, forward-mode AD,
hooks on nodes (`grad_fn.register_hook`), post-accumulate-grad hooks. Hooks of tensors
that do not depend on each other may run in another order than torch's (torch runs the
most recently created ready node first; handgrad follows its depth-first search).

What this file leaves out: the Tensor class (_tensor.py) and the ops (ops/).
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
    # _TensorHooks of the output tensor (its register_hook hooks, retain_grad()); None
    # on almost every node, so backward pays one attribute check for both.
    _hooks = None
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


# --------------------------------------------------------------------------- hooks
class _TensorHooks:
    """What backward does with one tensor's gradient besides passing it on: call the
    user's hooks in registration order (each may return a replacement gradient), then,
    for a non-leaf that called retain_grad(), keep the result as its `.grad`.

    A non-leaf keeps this object on its node (`node._hooks`), a leaf in its own `_hooks`
    slot (and in `_hooked_leaves`, so that backward knows to look)."""

    __slots__ = ("functions", "retained", "next_id", "__weakref__")

    def __init__(self):
        self.functions: dict = {}  # handle id -> hook, in registration order
        self.retained = None  # weakref to the non-leaf tensor that called retain_grad()
        self.next_id = 0

    def add(self, hook) -> int:
        self.next_id += 1
        self.functions[self.next_id] = hook
        return self.next_id

    def call(self, grad: torch.Tensor, leaf_storages: set) -> torch.Tensor:
        """The gradient after every hook has seen it (and perhaps replaced it)."""
        for hook in tuple(self.functions.values()):
            result = hook(_Tensor._make(grad, False, None))
            if result is not None:
                grad = _hook_result(hook, grad, result)
        leaf_storages.add(_storage(grad))  # a hook may keep it: a .grad gets its own copy
        return grad

    def run(self, node, grad: torch.Tensor, leaf_storages: set, captured) -> torch.Tensor:
        """The step of the backward loop at a node that has hooks or a retained output."""
        if self.functions:
            grad = self.call(grad, leaf_storages)
        if self.retained is not None:
            kept = self.retained()
            if kept is not None and kept._ctx is node:
                _accumulate(kept, grad, leaf_storages)
        return grad


def _hook_result(hook, grad: torch.Tensor, result) -> torch.Tensor:
    name = getattr(hook, "__name__", type(hook).__name__)
    if not isinstance(result, _Tensor):
        raise TypeError(
            f"hook '{name}' returned {type(result).__name__}: a hook must return a handgrad "
            "Tensor (the gradient to use instead) or None (keep the gradient).")
    new = result.data
    if new.shape != grad.shape:
        raise RuntimeError(
            f"hook '{name}' has changed the size of value: the gradient has shape "
            f"{tuple(grad.shape)}, the hook returned shape {tuple(new.shape)}.")
    if new.dtype != grad.dtype or new.device != grad.device:
        raise RuntimeError(
            f"hook '{name}' has changed the type of value (was {_describe(grad)}, got "
            f"{_describe(new)}); return a gradient of the same dtype and device.")
    return new


# Leaves that have hooks: id -> weak reference (a dead leaf drops out). While this is
# empty, backward passes every leaf gradient straight into `.grad`. (A plain dict: its
# emptiness is checked on every backward, and a WeakValueDictionary's len() is slow.)
_hooked_leaves: dict[int, weakref.ref] = {}


def _forget_leaf(key: int, ref: weakref.ref) -> None:
    if _hooked_leaves.get(key) is ref:
        del _hooked_leaves[key]


def tensor_hooks(tensor) -> _TensorHooks:
    """The hooks object of `tensor` (on its node when it has one), made on first use."""
    node = tensor._ctx
    if node is not None:
        if node._hooks is None:
            node._hooks = _TensorHooks()
        return node._hooks
    hooks = getattr(tensor, "_hooks", None)
    if hooks is None:
        hooks = tensor._hooks = _TensorHooks()
    return hooks


def register_hook(tensor, hook) -> RemovableHandle:
    """`tensor.register_hook(hook)`: see Tensor.register_hook."""
    if not callable(hook):
        raise TypeError(f"register_hook: the hook must be callable, got {type(hook).__name__}")
    hooks = tensor_hooks(tensor)
    leaf = None
    if tensor._ctx is None:
        leaf, key = tensor, id(tensor)
        ref = _hooked_leaves.get(key)
        if ref is None or ref() is not tensor:
            _hooked_leaves[key] = weakref.ref(tensor, functools.partial(_forget_leaf, key))
    return RemovableHandle(hooks, hooks.add(hook), leaf)


class RemovableHandle:
    """What `register_hook` returns: `handle.remove()` takes the hook off again (a second
    remove does nothing); `with tensor.register_hook(h):` removes it on leaving."""

    __slots__ = ("id", "_hooks", "_leaf")

    def __init__(self, hooks: _TensorHooks, key: int, leaf=None):
        self.id = key
        self._hooks = weakref.ref(hooks)
        self._leaf = None if leaf is None else weakref.ref(leaf)

    def remove(self) -> None:
        hooks = self._hooks()
        if hooks is None:
            return
        hooks.functions.pop(self.id, None)
        leaf = None if self._leaf is None else self._leaf()
        if leaf is not None and not hooks.functions:
            ref = _hooked_leaves.get(id(leaf))
            if ref is not None and ref() is leaf:
                del _hooked_leaves[id(leaf)]

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class _LeafStep:
    """The step of a backward at which a leaf's gradient is complete (summed over all
    its uses; it comes right after the last node that uses the leaf, as in torch). Only
    leaves with hooks and leaves in `inputs` get one: the leaf's hooks see the total
    gradient once, then it goes into `.grad` or, for grad(), into `captured`.

    It stands in the backward loop like a node whose `_hooks.run` ends the path."""

    __slots__ = ("leaf", "_hooks")
    parents = ()

    def __init__(self, leaf):
        self.leaf = leaf
        self._hooks = self

    def run(self, node, grad: torch.Tensor, leaf_storages: set, captured) -> None:
        leaf = self.leaf
        if grad.dtype != leaf.data.dtype:
            grad = grad.to(leaf.data.dtype)
        hooks = getattr(leaf, "_hooks", None)
        if hooks is not None and hooks.functions:
            grad = hooks.call(grad, leaf_storages)
        if captured is None:
            _accumulate(leaf, grad, leaf_storages)
        else:
            captured[self] = grad
        return None


# --------------------------------------------------------------------------- backward
def _run_backward(roots, gradients, retain_graph=False, inputs=None, capture=False):
    """The backward engine: push `gradients[i]` (d out / d roots[i], raw torch tensors)
    back through the graph in one iterative topological order.

    * inputs None: every leaf that requires grad accumulates into `.grad` (and every
      non-leaf that called retain_grad()). This is `loss.backward()`.
    * inputs given: only the nodes between the roots and `inputs` run. capture=False:
      the inputs' `.grad` accumulate (a non-leaf input must already retain_grad).
      capture=True: no leaf `.grad` changes; the gradient reaching each input (None
      where none does) is returned, in the order of `inputs`. This is `grad()`.

    Hooks run when a tensor's gradient is complete; saved tensors of every node that ran
    are freed unless `retain_graph`."""
    one_root = len(roots) == 1
    leaf_storages = {_storage(gradients[0])} if one_root else set(map(_storage, gradients))
    leaf_steps = None  # leaf -> _LeafStep, for the leaves whose total gradient is needed
    targets = None  # for `inputs`: node -> the gradient captured there
    if inputs is not None:
        leaf_steps = {t: _LeafStep(t) for t in inputs if t._ctx is None}
        targets = {t._ctx: None for t in inputs if t._ctx is not None}
    elif _hooked_leaves:
        hooked = [ref() for ref in list(_hooked_leaves.values())]
        leaf_steps = {t: _LeafStep(t) for t in hooked if t is not None}

    root_node = roots[0]._ctx if one_root else None
    if root_node is not None:  # the usual case (loss.backward()): one root, not a leaf
        grads = {root_node: gradients[0]}
        stack = [(root_node, False)]
    else:
        grads = {}
        stack = []  # the depth-first search below starts from the roots' nodes
        for root, gradient in zip(roots, gradients):
            node = root._ctx
            if node is None:  # a leaf: its gradient is the incoming gradient
                node = leaf_steps.get(root) if leaf_steps else None
                if node is None:
                    if inputs is None:
                        _accumulate(root, gradient, leaf_storages)
                    continue
            else:
                stack.append((node, False))
            previous = grads.get(node)
            grads[node] = gradient if previous is None else previous + gradient

    # Iterative depth-first post-order gives inputs before the nodes that use them.
    order = []
    visited = set()
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

    runs = None
    if targets is not None:  # keep the nodes on a path to an input (inputs come first)
        runs = set()
        for node in order:
            for parent in node.parents:
                if parent is not None and (parent in runs or parent in targets
                                           or parent in leaf_steps):
                    runs.add(node)
                    break
        order = [node for node in order if node in runs or node in targets]
    steps = reversed(order)
    if leaf_steps:  # each leaf's step goes right after the last node that uses it
        last_user = {}
        for node in steps:
            for parent in node.parents:
                step = leaf_steps.get(parent) if parent is not None else None
                if step is not None:
                    last_user[step] = node
        after: dict = {}
        for step, node in last_user.items():
            after.setdefault(node, []).append(step)
        steps = [step for step in leaf_steps.values() if step in grads and step not in last_user]
        for node in reversed(order):
            steps.append(node)
            steps.extend(after.get(node, ()))

    deliver = _accumulate  # where a gradient reaching a leaf goes
    if leaf_steps is not None:
        def deliver(leaf, grad: torch.Tensor, leaf_storages: set) -> None:
            step = leaf_steps.get(leaf)
            if step is not None:  # summed until the leaf's step
                previous = grads.get(step)
                grads[step] = grad if previous is None else previous + grad
            elif inputs is None:
                _accumulate(leaf, grad, leaf_storages)

    captured = {} if capture else None
    for node in steps:
        grad = grads.pop(node, None)
        if grad is None:  # no gradient flows here (e.g. only through int outputs)
            continue
        if node._hooks is not None:  # user hooks, retain_grad(), or a leaf's last step
            grad = node._hooks.run(node, grad, leaf_storages, captured)
            if grad is None:
                continue
        if targets is not None and node in targets:
            targets[node] = grad
            if node not in runs:
                continue
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
                deliver(parent, input_grad, leaf_storages)
        if not retain_graph:
            node._free()

    if not capture:
        return None
    results = []
    for t in inputs:
        grad = targets[t._ctx] if t._ctx is not None else captured.get(leaf_steps[t])
        if grad is not None and grad.dtype != t.data.dtype:
            grad = grad.to(t.data.dtype)
        results.append(grad)
    return results


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


# --------------------------------------------------------------------------- grad API
_NO_CREATE_GRAPH = (
    "create_graph=True (higher-order gradients) is not supported: handgrad's backward "
    "functions compute with raw torch tensors and record no graph of their own. Write "
    "the first derivative as handgrad ops and differentiate that instead.")


def _as_tuple(tensors) -> tuple:
    if tensors is None:
        return ()
    if isinstance(tensors, _Tensor | torch.Tensor):
        return (tensors,)
    return tuple(tensors)


def _output_gradients(who: str, outputs: tuple, grad_outputs) -> list:
    """One raw gradient per output: the given one, or 1 for a scalar output (as torch)."""
    given = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    if len(given) != len(outputs):
        raise RuntimeError(f"{who}: got {len(outputs)} tensors and {len(given)} gradients; "
                           "pass one gradient (or None) per output.")
    gradients = []
    for i, (out, gradient) in enumerate(zip(outputs, given)):
        if not isinstance(out, _Tensor):
            raise TypeError(f"{who}: outputs must be handgrad Tensors, element {i} is "
                            f"{type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(
                f"{who}: element {i} of tensors does not require grad and does not have a "
                "grad_fn. Create the inputs with requires_grad=True (and not under "
                "no_grad()) first.")
        if gradient is None:
            if out.data.numel() != 1:
                raise RuntimeError(
                    f"{who}: grad can be implicitly created only for scalar outputs, but "
                    f"output {i} has shape {tuple(out.shape)}. Pass a gradient of that "
                    "shape, or reduce the output first (e.g. .sum()).")
            gradient = torch.ones_like(out.data)
        else:
            if isinstance(gradient, _Tensor):
                gradient = gradient.data
            elif not isinstance(gradient, torch.Tensor):
                gradient = torch.as_tensor(gradient, dtype=out.dtype, device=out.device)
            if gradient.shape != out.data.shape:
                raise RuntimeError(
                    f"{who}: Mismatch in shape: grad_output[{i}] has a shape of "
                    f"{tuple(gradient.shape)} and output[{i}] has a shape of "
                    f"{tuple(out.shape)}; they must match.")
        gradients.append(gradient)
    return gradients


def _input_tensors(who: str, inputs) -> tuple:
    inputs = _as_tuple(inputs)
    if not inputs:
        raise RuntimeError(f"{who}: `inputs` argument to `{who}()` cannot be empty.")
    for i, t in enumerate(inputs):
        if not isinstance(t, _Tensor):
            raise TypeError(f"{who}: all inputs have to be handgrad Tensors, but input {i} "
                            f"is {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError(
                f"{who}: input {i} (shape {tuple(t.shape)}) does not require grad, so it "
                "has no gradient; create it with requires_grad=True.")
    return inputs


def backward_inputs(inputs) -> tuple:
    """Check `inputs` of backward(); a non-leaf among them keeps its `.grad` from now on
    (it is made to retain_grad(), as torch does)."""
    inputs = _input_tensors("backward", inputs)
    for t in inputs:
        if t._ctx is not None:
            t.retain_grad()
    return inputs


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             inputs=None) -> None:
    """Accumulate the gradients of `tensors` (summed, each weighted by its entry of
    `grad_tensors`; a scalar may leave its entry None) into the `.grad` of the leaves, or
    of `inputs` only when given (PyTorch's autograd.backward)."""
    if create_graph:
        raise RuntimeError(f"backward: {_NO_CREATE_GRAPH}")
    tensors = _as_tuple(tensors)
    gradients = _output_gradients("backward", tensors, grad_tensors)
    if inputs is not None:
        inputs = backward_inputs(inputs)
    _run_backward(tensors, gradients, bool(retain_graph), inputs)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False,
         materialize_grads=False) -> tuple:
    """The gradients of `outputs` with respect to each of `inputs`, as a tuple of Tensors
    (PyTorch's autograd.grad). No `.grad` is touched (except that of a non-leaf which called
    retain_grad(), as in torch); `inputs` may be non-leaves; only the part of the graph
    between them and `outputs` runs.

    grad_outputs: d loss / d output for each output (None: 1 for a scalar output).
    retain_graph: keep the saved tensors for another backward (default: create_graph).
    allow_unused: return None for an input the outputs do not depend on (otherwise an
    error); materialize_grads: return zeros there instead. `only_inputs` is ignored, as
    in torch; create_graph and is_grads_batched are not supported."""
    if create_graph:
        raise RuntimeError(f"grad: {_NO_CREATE_GRAPH}")
    if is_grads_batched:
        raise RuntimeError("grad: is_grads_batched=True is not supported; call grad() once "
                           "per row of grad_outputs.")
    if materialize_grads and allow_unused is False:
        raise ValueError("grad: Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    allow_unused = materialize_grads if allow_unused is None else allow_unused
    outputs = _as_tuple(outputs)
    gradients = _output_gradients("grad", outputs, grad_outputs)
    inputs = _input_tensors("grad", inputs)
    retain_graph = create_graph if retain_graph is None else retain_graph
    found = _run_backward(outputs, gradients, retain_graph, inputs, capture=True)
    results = []
    for i, (t, gradient) in enumerate(zip(inputs, found)):
        if gradient is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: The differentiated Tensor at index {i} appears to not have been "
                    "used in the graph. Set allow_unused=True if this is the desired "
                    "behavior (its gradient is then None, or zeros with "
                    "materialize_grads=True).")
            results.append(_Tensor._make(torch.zeros_like(t.data), False, None)
                           if materialize_grads else None)
        else:
            results.append(_Tensor._make(gradient, False, None))
    return tuple(results)
