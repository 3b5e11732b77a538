"""Function and TensorBase: what one differentiable operation is, and what the core
knows of a tensor.

A `Function` subclass is one differentiable operation. Its `forward(ctx, *raw)` works
on raw torch tensors (PyTorch as an array library, nothing more) and its
`backward(ctx, grad_output)` returns one gradient per input, also computed with raw
torch ops. `Function.apply(*inputs)` unwraps handgrad Tensors, runs forward, wraps the
result, and records a graph node when some input requires grad and grad mode is on.

The node of an operation *is* its context object: an instance of the Function class
that holds the saved tensors, `needs_input_grad`, the edges to its inputs (the input's
own node, or the input itself when it is a leaf that requires grad) and the shape,
dtype and device of its output. The engine checks every gradient a backward returns
against the metadata of the input it is for (a node's recorded output, or a leaf's own
data), and sums it down where torch does. Only floating-point (and complex) results are
recorded, as in torch: `x.long()` or `x.argmax()` has no gradient.

`TensorBase` holds the slots the core reads and writes (data, grad, requires_grad, the
node); `handgrad.Tensor` subclasses it with operators and methods, as torch.Tensor
subclasses its C base. Each tensor class names the class of the tensors made from it
(`_result_type`: handgrad.Tensor for a Tensor and for a Parameter, as torch gives a plain
Tensor for an op on a Parameter), so the core makes results, gradients and hook
arguments without importing or being told about the Tensor module above it.

Also here: `HandgradError` and the op error messages, and the alias groups that let
in-place ops know which tensors share storage.

What this module leaves out: grad mode (grad_mode.py), the backward engine (engine.py),
custom Functions with several differentiable outputs (custom_function.py),
tensor hooks (hooks.py), the Tensor class itself (handgrad/_tensor.py), the ops (ops/).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from handgrad.autograd.grad_mode import _torch_grad_enabled, state

__all__ = ["Function", "TensorBase", "HandgradError", "describe", "op_name"]


class HandgradError(RuntimeError):
    """An operation was given inputs it cannot work with; the message says why."""


def describe(x: Any) -> str:
    """A short description of a value for error messages: '(2, 3) float32 on cpu'."""
    if isinstance(x, TensorBase):
        x = x.data
    if isinstance(x, torch.Tensor):
        return f"{tuple(x.shape)} {str(x.dtype).replace('torch.', '')} on {x.device}"
    return repr(x) if isinstance(x, int | float | bool) else type(x).__name__


class TensorBase:
    """What the autograd core needs of a tensor: `data` (a torch.Tensor), `_grad`,
    `_requires_grad` and `_ctx` (the node that made it, None for a leaf). `_alias` is set
    only on tensors that share storage, `_hooks` only on leaves given a hook. The public
    `grad` / `requires_grad` properties (with their checks) live on handgrad.Tensor."""

    __slots__ = ("data", "_grad", "_requires_grad", "_ctx", "_alias", "_hooks",
                 "__weakref__")
    # The class of tensors made from this one (op results, .grad, hook arguments);
    # handgrad.Tensor sets it to itself, and its subclasses (Parameter) inherit that.
    _result_type: type

    @classmethod
    def _make(cls, data: torch.Tensor, requires_grad, ctx):
        """Fast constructor for op results (no checks, no conversion)."""
        t = object.__new__(cls)
        t.data = data
        t._grad = None
        t._requires_grad = requires_grad
        t._ctx = ctx
        return t


# --------------------------------------------------------------------------- Function
class Function:
    """Base class of every differentiable operation (and the graph node it leaves).

    Subclasses define two static methods::

        @staticmethod
        def forward(ctx, *inputs_as_raw_torch_tensors_or_constants): -> torch.Tensor
        @staticmethod
        def backward(ctx, grad_output): -> one gradient (or None) per forward input

    Forward may return a tuple. For handgrad's own ops only its first element is
    differentiable and the others (indices, for example) are returned as plain tensors.
    A Function defined outside the handgrad package (or one that sets
    `all_outputs_differentiable = True`) has torch's semantics instead: every floating
    output is differentiable and backward is `backward(ctx, *grads)`, one gradient per
    output; `ctx.mark_non_differentiable` and `ctx.set_materialize_grads` work as in
    torch (see custom_function.py).

    A gradient that backward returns is checked by the engine against its input, as
    torch checks it: a wrong number of gradients, a shape the input cannot broadcast
    to, or another device raise an error naming the Function; a gradient of a
    broadcast input's shape is summed down to the input (so a binary op returns
    `grad_output` and need not undo broadcasting itself); another float dtype is cast.
    """

    # Class-level defaults: creating a node is then just `cls()`, the cheapest object
    # creation Python has (this runs once per recorded op).
    parents: tuple = ()
    output_metadata: tuple = ()  # (shape, dtype, device) of the output, to check grads
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
    # torch's semantics for tuple outputs: every floating output differentiable and
    # backward(ctx, *grads) (custom_function.py). None: decided per class, True for
    # classes defined outside the handgrad package (a torch user's Function, ported by
    # swapping imports), False for handgrad's own ops, whose extra outputs are indices.
    all_outputs_differentiable: bool | None = None
    # what a custom Function's ctx may set (see custom_function.py)
    _non_differentiable: tuple = ()
    materialize_grads = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        flag = cls.__dict__.get("all_outputs_differentiable")
        if flag is None:
            module = cls.__module__ or ""
            flag = not (module == "handgrad" or module.startswith("handgrad."))
            cls.all_outputs_differentiable = flag
        if "apply" not in cls.__dict__:
            if flag:
                from handgrad.autograd.custom_function import apply_all_outputs
                cls.apply = classmethod(apply_all_outputs)
            elif cls.__dict__.get("all_outputs_differentiable") is False:
                cls.apply = Function.__dict__["apply"]

    @staticmethod
    def setup_context(ctx, inputs: tuple, output) -> None:
        """torch's newer style: forward(*inputs) without ctx, then this fills ctx (only
        for Functions with all_outputs_differentiable). Not overridden: forward gets ctx."""

    def mark_non_differentiable(self, *outputs: torch.Tensor) -> None:
        """Outputs of forward that get no gradient (requires_grad False); their slot in
        backward's gradients is zeros (None after set_materialize_grads(False))."""
        self._non_differentiable = self._non_differentiable + outputs

    def set_materialize_grads(self, value: bool) -> None:
        """False: backward gets None, not zeros, for an output that received no gradient."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors) -> None:
        raise NotImplementedError(
            f"{type(self).__name__}: ctx.mark_dirty (a forward that changes its input in "
            "place) is not supported by handgrad's custom Functions; change a copy "
            "instead (x = x.clone(), then change x) and return it.")

    def save_for_forward(self, *tensors) -> None:
        raise NotImplementedError(
            f"{type(self).__name__}: ctx.save_for_forward is for forward-mode AD (jvp), "
            "which handgrad does not have; use save_for_backward.")

    # ---- context API used inside forward/backward
    def save_for_backward(self, *tensors: torch.Tensor | None) -> None:
        """Keep `tensors` for backward; in-place changes to them are detected there.

        Plain numbers and None may be saved too (they have no version to check). When
        nothing is recorded (no input needs grad, or grad mode is off), nothing is kept:
        the node is thrown away (and torch's inference tensors have no version)."""
        if True not in self.needs_input_grad:
            return
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
        raw = []
        needs = []
        any_needs = False
        made = None  # an input Tensor: results are of its _result_type
        for a in args:
            if isinstance(a, TensorBase):
                raw.append(a.data)
                made = a
                r = a._requires_grad
                needs.append(r)
                any_needs |= r
            else:
                raw.append(a)
                needs.append(False)
        if made is None:
            raise TypeError(f"{op_name(cls)}: expected at least one handgrad Tensor among "
                            f"the inputs, got {', '.join(describe(a) for a in args)}")
        ctx = cls()
        record = any_needs and state.enabled and _torch_grad_enabled()
        ctx.needs_input_grad = tuple(needs) if record else (False,) * len(args)
        try:
            out = cls.forward(ctx, *raw, **kwargs)
        except HandgradError:
            raise
        except (RuntimeError, IndexError, ValueError, TypeError) as e:
            raise op_error(cls, raw, e) from None
        extra = None
        if isinstance(out, tuple):  # (result, indices...), torch.return_types included
            out, *extra = out
        make = made._result_type._make
        if record:
            dtype = out.dtype
            if dtype.is_floating_point or dtype.is_complex:
                ctx.parents = tuple((a._ctx or a) if n else None for a, n in zip(args, needs))
                ctx.output_metadata = (out.shape, dtype, out.device)
                result = make(out, True, ctx)
            else:  # integer and bool results have no gradient, as in torch
                result = make(out, False, None)
        else:
            result = make(out, False, None)
        if extra is not None:
            return (result, *(make(t, False, None) for t in extra))
        if cls.returns_view and isinstance(args[0], TensorBase):
            link_aliases(args[0], result)
        return result

    def _free(self) -> None:
        self._saved = ()
        self._freed = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"


def op_name(cls: type) -> str:
    """The user-facing name of a Function class ('Mul' -> 'mul')."""
    return getattr(cls, "name", None) or cls.__name__.lower()


def op_error(cls: type, raw: list, error: Exception) -> Exception:
    """torch's error inside a forward, retold with the op's name, the inputs and a hint.
    It keeps torch's exception type (an index out of range stays an IndexError, a bad
    argument a TypeError or ValueError, a dtype torch has no kernel for a
    NotImplementedError, so `except IndexError:` keeps working); torch's
    plain RuntimeErrors become HandgradError, a RuntimeError; torch's own subclasses, such
    as torch.OutOfMemoryError, are raised unchanged, so `except` clauses for them work."""
    described = ", ".join(describe(x) for x in raw if isinstance(x, torch.Tensor))
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
    text = f"{op_name(cls)}: cannot apply to inputs [{described}]: {message}.{hint}"
    kind = type(error)
    if kind in (IndexError, ValueError, TypeError, NotImplementedError):
        return kind(text)
    if kind is RuntimeError:
        return HandgradError(text)
    return error  # torch's own kinds (OutOfMemoryError, ...) stay what they are


# --------------------------------------------------------------------------- aliases
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
