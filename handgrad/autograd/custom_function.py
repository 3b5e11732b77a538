"""Custom Functions with torch's semantics: every floating-point output differentiable.

handgrad's own ops return `(result, indices...)` tuples whose first element alone has a
gradient (`Function.apply`). A Function written the way torch's custom Functions are
written (a subclass of `handgrad.autograd.Function` defined outside the handgrad package,
or any subclass that sets `all_outputs_differentiable = True`) runs through
`apply_all_outputs` instead:

* every floating-point (or complex) tensor that forward returns requires grad, except
  those passed to `ctx.mark_non_differentiable`; integer tensors and other values (a
  number, None) come back as they are, without a gradient;
* backward is called as `backward(ctx, *grads)`, one gradient per output of forward, in
  order; an output that received no gradient (unused, integer, non-differentiable, not a
  tensor) gets zeros of its shape, or None after `ctx.set_materialize_grads(False)` (and
  None always for a value that is not a tensor), as in torch;
* `setup_context(ctx, inputs, output)` may replace the `ctx` argument of forward, as in
  torch's newer style.

The graph of a Function with several outputs: one `MultiOutputNode` whose parents are
the inputs (it holds the user's `ctx`), and one small `OutputNode` per differentiable
output, whose only parent is that node. An OutputNode carries its output's shape, dtype
and device (the engine checks gradients against them) and its own hooks, so
`register_hook`, `retain_grad`, `grad(..., inputs=output)` and `backward(inputs=output)`
work on each output. In backward an OutputNode does not add its gradient to its parent's:
it puts it in slot i of the parent's list of output gradients (engine.py); the parent runs
after all its outputs (a backward order puts users before what they use) and hands the
list, materialised, to the user's backward.

A Function with a single output makes no extra node: it is recorded exactly as a
handgrad op is, so the Legendre polynomial of torch's tutorial runs as written.

`once_differentiable` is accepted and changes nothing: handgrad's backward functions
compute with raw torch tensors and record no graph, so every backward is differentiable
once only (no `create_graph`).

What this module leaves out: `ctx.mark_dirty` (a forward that changes an input in place)
and `ctx.save_for_forward` (forward-mode AD) raise NotImplementedError; `vmap` of a
Function; double backward.
"""

from __future__ import annotations

import functools

import torch

from handgrad.autograd.function import (
    Function,
    HandgradError,
    TensorBase,
    describe,
    op_error,
    op_name,
)
from handgrad.autograd.grad_mode import _torch_grad_enabled, state
from handgrad.autograd.hooks import TensorHooks

__all__ = ["apply_all_outputs", "once_differentiable", "MultiOutputNode", "OutputNode"]


def _user_backward(node, slots: list):
    """Run the user's `Function.backward` for a multi-output node (the call is the
    user's handgrad Function, not a torch tensor's backward; it lives outside the
    node's class so the package scan of Function bodies stays exact)."""
    ctx = node.context
    if ctx.materialize_grads:
        slots = [torch.zeros(meta[0], dtype=meta[1], device=meta[2])
                 if grad is None and meta is not None else grad
                 for grad, meta in zip(slots, node.outputs)]
    return node.function.backward(ctx, *slots)


class MultiOutputNode(Function):
    """The graph node of a Function with several outputs (one subclass per Function
    class, named after it, made by `_node_class`): its parents are the inputs; its
    backward gets the list of output gradients that its OutputNodes filled."""

    all_outputs_differentiable = False
    function: type = Function  # the user's Function class (set on each subclass)
    context = None  # the ctx that forward filled (an instance of `function`)
    outputs: tuple = ()  # (shape, dtype, device) of each tensor output, None otherwise

    @staticmethod
    def backward(node, slots: list):
        return _user_backward(node, slots)

    def _free(self) -> None:
        self.context._free()
        self._freed = True

    def __repr__(self) -> str:
        return f"<{self.function.__name__}Backward>"


class OutputNode(Function):
    """Output `index` of a multi-output Function: its gradient (after this output's
    hooks) goes into slot `index` of the parent node's gradient list."""

    all_outputs_differentiable = False
    index = 0

    def deliver(self, grad: torch.Tensor, grads: dict) -> None:
        main = self.parents[0]
        slots = grads.get(main)
        if slots is None:
            slots = grads[main] = [None] * len(main.outputs)
        previous = slots[self.index]
        slots[self.index] = grad if previous is None else previous + grad

    def _free(self) -> None:
        self._freed = True

    def __repr__(self) -> str:
        return repr(self.parents[0])


def _node_class(cls: type) -> type:
    """The MultiOutputNode subclass of Function class `cls` (made once, kept on cls)."""
    node_class = cls.__dict__.get("_multi_output_node")
    if node_class is None:
        node_class = type(cls.__name__, (MultiOutputNode,), {
            "function": cls, "__module__": cls.__module__,
            "__qualname__": f"{cls.__qualname__}.Backward",
            "all_outputs_differentiable": False})
        cls._multi_output_node = node_class
    return node_class


def _differentiable(value, marked: tuple) -> bool:
    return (isinstance(value, torch.Tensor) and (value.dtype.is_floating_point
                                                 or value.dtype.is_complex)
            and not any(value is m for m in marked))


def _run_forward(cls, ctx, raw: list, kwargs: dict):
    if cls.setup_context is not Function.setup_context:  # torch's newer style
        out = cls.forward(*raw, **kwargs)
        cls.setup_context(ctx, tuple(raw), out)
        return out
    return cls.forward(ctx, *raw, **kwargs)


def apply_all_outputs(cls, *args, **kwargs):
    """`Function.apply` for Functions with torch's semantics (see the module docstring)."""
    raw, needs, made = [], [], None
    for a in args:
        if isinstance(a, TensorBase):
            raw.append(a.data)
            needs.append(a._requires_grad)
            made = a
        else:
            raw.append(a)
            needs.append(False)
    if made is None:
        raise TypeError(f"{op_name(cls)}: expected at least one handgrad Tensor among "
                        f"the inputs, got {', '.join(describe(a) for a in args)}")
    ctx = cls()
    record = True in needs and state.enabled and _torch_grad_enabled()
    ctx.needs_input_grad = tuple(needs) if record else (False,) * len(args)
    try:
        out = _run_forward(cls, ctx, raw, kwargs)
    except (HandgradError, NotImplementedError):
        raise
    except (RuntimeError, IndexError, ValueError, TypeError) as e:
        raise op_error(cls, raw, e) from None
    make = made._result_type._make
    multiple = isinstance(out, tuple)
    outs = out if multiple else (out,)
    for i, value in enumerate(outs):
        if isinstance(value, TensorBase):
            raise TypeError(
                f"{cls.__name__}.forward returned a handgrad Tensor as output {i}: forward "
                "works on raw torch tensors (its inputs are torch tensors); return "
                "torch tensors, computed with torch ops.")
    marked = ctx._non_differentiable
    if not record or not any(_differentiable(v, marked) for v in outs):
        results = tuple(make(v, False, None) if isinstance(v, torch.Tensor) else v
                        for v in outs)
        return results if multiple else results[0]
    parents = tuple((a._ctx or a) if n else None for a, n in zip(args, needs))
    if not multiple:  # one output: recorded as any handgrad op is
        ctx.parents = parents
        ctx.output_metadata = (out.shape, out.dtype, out.device)
        return make(out, True, ctx)
    node = _node_class(cls)()
    node.context = ctx
    node.parents = parents
    node.needs_input_grad = ctx.needs_input_grad
    node.outputs = tuple((v.shape, v.dtype, v.device) if isinstance(v, torch.Tensor)
                         else None for v in outs)
    results = []
    tensor_type = made._result_type
    for i, value in enumerate(outs):
        if _differentiable(value, marked):
            edge = OutputNode()
            edge.parents = (node,)
            edge.index = i
            edge.output_metadata = node.outputs[i]
            edge._hooks = TensorHooks(tensor_type)  # also marks the node for the engine
            results.append(make(value, True, edge))
        elif isinstance(value, torch.Tensor):
            results.append(make(value, False, None))
        else:
            results.append(value)
    return tuple(results)


def once_differentiable(fn):
    """torch's decorator for a backward that cannot be differentiated again. Every
    handgrad backward is such a backward (no create_graph), so it only wraps `fn`."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        return fn(ctx, *args)

    return wrapper
