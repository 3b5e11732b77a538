"""Tensor hooks and the handle that removes a hook (tensors' and modules' alike).

`tensor.register_hook(hook)`: the hook sees the tensor's complete gradient (on a leaf,
before it goes into `.grad`) and may return a replacement; `retain_grad()` keeps a
non-leaf's gradient (after its hooks). Both live on the tensor's node (`node._hooks`,
None almost always: one attribute check per node) or, for a leaf, on the leaf (and in
`hooked_leaves`, so that backward knows to look).

What this module leaves out: when hooks run (engine.py), module hooks (handgrad.nn).
"""

from __future__ import annotations

import functools
import itertools
import weakref

import torch

from handgrad.autograd.function import TensorBase, describe

__all__ = ["RemovableHandle", "register_hook", "tensor_hooks"]

_next_id = itertools.count()


class RemovableHandle:
    """What every `register_*hook` returns: `handle.remove()` takes the hook off again
    (removing twice, or after its owner is gone, does nothing); as a context manager
    (`with t.register_hook(show): ...`) it removes the hook on leaving.

    The hook is stored under `handle.id` in `hooks` (and flags about it in each of
    `extra`); the handle keeps only weak references to those dicts. `on_remove`, if
    given, runs after each removal (with no arguments)."""

    __slots__ = ("id", "hooks_dict_ref", "extra_dict_refs", "on_remove")

    def __init__(self, hooks: dict, *extra: dict, on_remove=None):
        self.id = next(_next_id)
        self.hooks_dict_ref = weakref.ref(hooks)
        self.extra_dict_refs = tuple(weakref.ref(d) for d in extra)
        self.on_remove = on_remove

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_refs):
            hooks = ref()
            if hooks is not None:
                hooks.pop(self.id, None)
        if self.on_remove is not None:
            self.on_remove()

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<RemovableHandle id={self.id}>"


class _HookDict(dict):
    """A dict that can be weakly referenced (a plain dict cannot)."""

    __slots__ = ("__weakref__",)


class TensorHooks:
    """What backward does with one tensor's gradient besides passing it on: call the
    user's hooks in registration order (each may return a replacement gradient), then,
    for a non-leaf that called retain_grad(), keep the result as its `.grad`."""

    __slots__ = ("functions", "retained", "tensor_type", "__weakref__")

    def __init__(self, tensor_type: type):
        self.functions = _HookDict()  # handle id -> hook, in registration order
        self.retained = None  # weakref to the non-leaf tensor that called retain_grad()
        self.tensor_type = tensor_type  # the class the hooks are given gradients as

    def call(self, grad: torch.Tensor, leaf_storages: set) -> torch.Tensor:
        """The gradient after every hook has seen it (and perhaps replaced it)."""
        make = self.tensor_type._make
        for hook in tuple(self.functions.values()):
            result = hook(make(grad, False, None))
            if result is not None:
                grad = _hook_result(hook, grad, result)
        leaf_storages.add(grad.untyped_storage().data_ptr())  # a .grad gets its own copy
        return grad


def _hook_result(hook, grad: torch.Tensor, result) -> torch.Tensor:
    name = getattr(hook, "__name__", type(hook).__name__)
    if not isinstance(result, TensorBase):
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
            f"hook '{name}' has changed the type of value (was {describe(grad)}, got "
            f"{describe(new)}); return a gradient of the same dtype and device.")
    return new


# Leaves that have hooks: id -> weak reference (a dead leaf drops out). While this is
# empty, backward passes every leaf gradient straight into `.grad`. (A plain dict: its
# emptiness is checked on every backward, and a WeakValueDictionary's len() is slow.)
hooked_leaves: dict[int, weakref.ref] = {}


def _forget_leaf(key: int, ref: weakref.ref) -> None:
    if hooked_leaves.get(key) is ref:
        del hooked_leaves[key]


def _forget_if_unhooked(leaf_ref: weakref.ref, hooks_ref: weakref.ref) -> None:
    leaf, hooks = leaf_ref(), hooks_ref()
    if leaf is not None and (hooks is None or not hooks.functions):
        ref = hooked_leaves.get(id(leaf))
        if ref is not None and ref() is leaf:
            del hooked_leaves[id(leaf)]


def tensor_hooks(tensor) -> TensorHooks:
    """The hooks object of `tensor` (on its node when it has one), made on first use."""
    node = tensor._ctx
    if node is not None:
        if node._hooks is None:
            node._hooks = TensorHooks(tensor._result_type)
        return node._hooks
    hooks = getattr(tensor, "_hooks", None)
    if hooks is None:
        hooks = tensor._hooks = TensorHooks(tensor._result_type)
    return hooks


def register_hook(tensor, hook) -> RemovableHandle:
    """`tensor.register_hook(hook)`: see Tensor.register_hook."""
    if not callable(hook):
        raise TypeError(f"register_hook: the hook must be callable, got {type(hook).__name__}")
    hooks = tensor_hooks(tensor)
    on_remove = None
    if tensor._ctx is None:
        key = id(tensor)
        ref = hooked_leaves.get(key)
        if ref is None or ref() is not tensor:
            hooked_leaves[key] = weakref.ref(tensor, functools.partial(_forget_leaf, key))
        on_remove = functools.partial(_forget_if_unhooked, weakref.ref(tensor),
                                      weakref.ref(hooks))
    handle = RemovableHandle(hooks.functions, on_remove=on_remove)
    hooks.functions[handle.id] = hook
    return handle
