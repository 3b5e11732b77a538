"""Module hooks: their bookkeeping, forward and backward.

`RemovableHandle` (handgrad.autograd.hooks, shared with tensor hooks) is what every
`Module.register_*_hook` returns: `handle.remove()` (or leaving a `with handle:` block)
takes the hook out again, as torch.utils.hooks does.

`BackwardHook` is set up by one call of a module that has full backward hooks or
backward pre-hooks (torch's rules, torch.utils.hooks.BackwardHook):

* the tensor outputs are wrapped so that their gradients, all at once, first go through
  the backward pre-hooks `hook(module, grad_output)`, which may return a replacement;
* the positional tensor inputs are wrapped so that, once their gradients are known, the
  full backward hooks run as `hook(module, grad_input, grad_output)` and may return a
  replacement grad_input. When no input requires grad they run right after the
  pre-hooks, with grad_input all None (torch warns about that, and so do we).

grad_input and grad_output have one entry per positional argument / returned value;
non-tensors get None, an output no gradient reached gets None, and an input that
requires grad but got no gradient gets zeros (as in torch). The wrapping itself is
handgrad.nn.functional.gather_gradients.

Left out: global hooks (torch's register_module_forward_hook and friends), the
deprecated non-full `register_backward_hook`, hooks on keyword arguments' gradients
(torch ignores them too).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import torch

from handgrad._tensor import Tensor
from handgrad.autograd import HandgradError, RemovableHandle, is_grad_enabled
from handgrad.nn.functional.hooks import gather_gradients

__all__ = ["RemovableHandle", "ModuleHooks", "BackwardHook"]

class ModuleHooks:
    """One module's hooks, by handle id in firing order (created on the first
    registration, so a module without hooks pays nothing when called)."""

    __slots__ = ("forward_pre", "forward_pre_with_kwargs", "forward", "forward_with_kwargs",
                 "forward_always_called", "backward", "backward_pre", "__weakref__")

    def __init__(self):
        self.forward_pre: OrderedDict = OrderedDict()
        self.forward_pre_with_kwargs: OrderedDict = OrderedDict()  # a weakref-able dict
        self.forward: OrderedDict = OrderedDict()
        self.forward_with_kwargs: OrderedDict = OrderedDict()  # a weakref-able dict
        self.forward_always_called: OrderedDict = OrderedDict()  # a weakref-able dict
        self.backward: OrderedDict = OrderedDict()
        self.backward_pre: OrderedDict = OrderedDict()

    def add(self, store: OrderedDict, hook, prepend: bool, flags: tuple = (),
            marked: tuple = ()) -> RemovableHandle:
        """Put `hook` in `store` (first if prepend), its id in each dict of `marked`
        (a subset of `flags`, the dicts its handle also removes it from)."""
        handle = RemovableHandle(store, *flags)
        store[handle.id] = hook
        for flag in marked:
            flag[handle.id] = True
        if prepend:
            store.move_to_end(handle.id, last=False)
        return handle


def _raw(grad, module, what: str, shape) -> torch.Tensor | None:
    """A gradient a hook returned, as a raw torch tensor of the expected shape."""
    if grad is None:
        return None
    if isinstance(grad, Tensor):
        grad = grad.data
    if not isinstance(grad, torch.Tensor):
        raise TypeError(f"{type(module).__name__} {what}: expected a Tensor or None per "
                        f"entry, got {type(grad).__name__}")
    if grad.shape != shape:
        raise HandgradError(f"{type(module).__name__} {what}: a returned gradient has shape "
                            f"{tuple(grad.shape)}, but the tensor it replaces has shape "
                            f"{tuple(shape)}; return a gradient of the same shape")
    return grad


def _wrapped(grads) -> tuple:
    return tuple(None if g is None else Tensor._make(g, False, None) for g in grads)


def _checked_length(result, expected: int, module, what: str) -> tuple:
    if not isinstance(result, tuple | list):
        raise TypeError(f"{type(module).__name__} {what} must return None or a tuple of "
                        f"{expected} gradient(s), got {type(result).__name__}")
    if len(result) != expected:
        raise RuntimeError(f"{what} returned an invalid number of "
                           f"{'grad_output' if 'pre' in what else 'grad_input'}, got "
                           f"{len(result)}, but expected {expected}")
    return tuple(result)


class BackwardHook:
    """The backward hooks of one module call: wrap the inputs (setup_input_hook) before
    forward and the outputs (setup_output_hook) after it."""

    def __init__(self, module, hooks: list, pre_hooks: list):
        self.module = module
        self.hooks = hooks
        self.pre_hooks = pre_hooks
        self.grad_outputs: tuple | None = None
        self.n_inputs = 0
        self.input_index: list | None = None  # positions of the wrapped inputs
        self.n_outputs = 0
        self.output_index: list | None = None

    @staticmethod
    def _wrap(values: tuple, on_backward):
        """(values with their grad-requiring tensors wrapped, their positions), or
        (values, None) when there is nothing to record."""
        index = [i for i, v in enumerate(values)
                 if isinstance(v, Tensor) and v.requires_grad]
        if not index or not is_grad_enabled():
            return values, None
        wrapped = gather_gradients([values[i] for i in index], on_backward)
        values = list(values)
        for i, y in zip(index, wrapped):
            values[i] = y
        return tuple(values), index

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        # shape, dtype, device of each tensor input (for the zeros of an unreached one)
        like = [(a.shape, a.dtype, a.device) if isinstance(a, Tensor) else None
                for a in args]

        def on_backward(grads):
            if self.grad_outputs is None:  # gradient reached the inputs, not via outputs
                return grads
            grad_input = [None] * self.n_inputs
            for i, g in zip(self.input_index, grads):
                if g is None:
                    shape, dtype, device = like[i]
                    g = torch.zeros(shape, dtype=dtype, device=device)
                grad_input[i] = g
            grad_input = _wrapped(grad_input)
            for hook in self.hooks:
                result = hook(self.module, grad_input, self.grad_outputs)
                if result is not None:
                    grad_input = _checked_length(result, self.n_inputs, self.module,
                                                 "Backward hook")
            self.grad_outputs = None
            return tuple(_raw(grad_input[i], self.module, "backward hook", like[i][0])
                         for i in self.input_index)

        args, self.input_index = self._wrap(args, on_backward)
        return args

    def setup_output_hook(self, result):
        is_tuple = isinstance(result, tuple)
        outputs = result if is_tuple else (result,)
        self.n_outputs = len(outputs)
        shapes = [o.shape if isinstance(o, Tensor) else None for o in outputs]

        def on_backward(grads):
            grad_output = [None] * self.n_outputs
            for i, g in zip(self.output_index, grads):
                grad_output[i] = g
            grad_output = _wrapped(grad_output)
            for hook in self.pre_hooks:
                replaced = hook(self.module, grad_output)
                if replaced is not None:
                    grad_output = _checked_length(replaced, self.n_outputs, self.module,
                                                  "Backward pre hook")
            self.grad_outputs = grad_output
            if self.input_index is None:  # no input requires grad: fire the hooks now
                warnings.warn(
                    f"Full backward hook of {type(self.module).__name__} is firing when "
                    "gradients are computed with respect to module outputs since no inputs "
                    "require gradients (as torch does).", stacklevel=2)
                grad_input = (None,) * self.n_inputs
                for hook in self.hooks:
                    returned = hook(self.module, grad_input, grad_output)
                    if returned is not None and not (isinstance(returned, tuple)
                                                     and all(r is None for r in returned)):
                        raise RuntimeError(
                            "Backward hook for Modules where no input requires gradient "
                            "should always return None or None for all gradients.")
                self.grad_outputs = None
            return tuple(_raw(grad_output[i], self.module, "backward pre hook", shapes[i])
                         for i in self.output_index)

        outputs, self.output_index = self._wrap(outputs, on_backward)
        return outputs if is_tuple else outputs[0]
