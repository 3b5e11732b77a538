"""The Optimizer base class: parameter groups, per-parameter state, state_dict.

An optimizer holds `param_groups` (a list of dicts: `params` plus the options of that
group, e.g. `lr`) and `state` (a dict from parameter to its buffers, e.g.
`{'momentum_buffer': ...}`). Names, defaults and the `state_dict()` layout are PyTorch's,
so a state_dict saved by handgrad loads into a PyTorch optimizer of the same kind and
the other way round.

Parameters are handgrad Tensors (leaves); buffers in `state` are raw torch tensors, as in
PyTorch's state_dicts. An update works on `p.data` and `p.grad.data` with in-place torch
ops, so no graph is recorded. Parameters whose `.grad` is None are skipped.

One difference from PyTorch: `state[p]['step']` is a Python int (PyTorch keeps a 0-d
tensor). Counting in Python costs nothing per step; `state_dict()` hands the count out as
a 0-d tensor, the way PyTorch stores it, and `load_state_dict` takes either.

Hooks, with torch's signatures and order, each returning a RemovableHandle:
`register_step_pre_hook(hook(opt, args, kwargs) -> None | (args, kwargs))` and
`register_step_post_hook(hook(opt, args, kwargs))` around every `step()` (the global
`register_optimizer_step_pre_hook` / `_post_hook` run for every optimizer: global pre
hooks first, global post hooks last); `register_state_dict_pre_hook(hook(opt))`,
`register_state_dict_post_hook(hook(opt, state_dict) -> None | state_dict)`,
`register_load_state_dict_pre_hook(hook(opt, state_dict) -> None | state_dict)` and
`register_load_state_dict_post_hook(hook(opt))`, each with `prepend=`.

torch's `foreach`, `fused`, `capturable` and `differentiable` keywords are accepted
where torch has them and kept in the param_groups (so state_dicts carry the same keys):
`foreach` picks all-at-once or one-at-a-time updates; `fused=True` runs the all-at-once
update (handgrad has no fused kernels; torch's fused kernels round differently, so
results equal torch's unfused ones), and is refused together with `foreach=True` as in
torch; `capturable` (for CUDA-graph capture, which handgrad does not do) changes
nothing; `differentiable=True` is refused: the update works on raw tensors outside the
graph, so no gradient could flow through it.

What this file leaves out: the update rules (sgd.py, rmsprop.py, adagrad.py, adam.py,
...), LR schedules (lr_scheduler.py), gradient clipping (handgrad.nn.utils), tensor-valued
learning rates.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import torch

from handgrad._tensor import Tensor
from handgrad.autograd import RemovableHandle, enable_grad

__all__ = ["Optimizer", "register_optimizer_step_pre_hook",
           "register_optimizer_step_post_hook"]

# Hooks every optimizer runs around step(), by handle id in firing order.
_global_step_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
_global_step_post_hooks: OrderedDict[int, Callable] = OrderedDict()


def _through_hooks(hooks: OrderedDict[int, Callable], optimizer, state_dict: dict) -> dict:
    """Pass `state_dict` through each hook in turn; a hook returning a dict replaces it."""
    for hook in hooks.values():
        replaced = hook(optimizer, state_dict)
        state_dict = state_dict if replaced is None else replaced
    return state_dict


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """Run `hook(optimizer, args, kwargs)` before every optimizer's step(); `args` are
    step's positional arguments, the optimizer first (as in torch). It may return
    `(new_args, new_kwargs)` to replace them. Global hooks run before the optimizer's own
    pre hooks."""
    handle = RemovableHandle(_global_step_pre_hooks)
    _global_step_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """Run `hook(optimizer, args, kwargs)` after every optimizer's step(), after the
    optimizer's own post hooks."""
    handle = RemovableHandle(_global_step_post_hooks)
    _global_step_post_hooks[handle.id] = hook
    return handle


def _hooked(step: Callable) -> Callable:
    """`step` with the step hooks around it (global pre, own pre, step, own post, global
    post), recording that the optimizer stepped. A step() that calls super().step()
    runs the hooks once, around the outer call."""

    @functools.wraps(step)
    def hooked_step(*args, **kwargs):
        # As in torch, the hooks see step's whole positional arguments, self included.
        self = args[0]
        self._opt_called = True
        if self._in_step:
            return step(*args, **kwargs)
        for pre_hook in (*_global_step_pre_hooks.values(),
                         *self._optimizer_step_pre_hooks.values()):
            result = pre_hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{type(self).__name__}.step: a step pre hook must return None or "
                        f"a tuple of (new_args, new_kwargs), but got {result}.")
                args, kwargs = result
        self._in_step = True
        try:
            out = step(*args, **kwargs)
        finally:
            self._in_step = False
        for post_hook in (*self._optimizer_step_post_hooks.values(),
                          *_global_step_post_hooks.values()):
            post_hook(self, args, kwargs)
        return out

    hooked_step._records_call = True
    return hooked_step


def _add_hook(store: OrderedDict, hook: Callable, prepend: bool) -> RemovableHandle:
    handle = RemovableHandle(store)
    store[handle.id] = hook
    if prepend:
        store.move_to_end(handle.id, last=False)
    return handle


def _check_variants(name: str, group: dict[str, Any]) -> None:
    """Refuse the torch keywords handgrad cannot honour (see the module docstring)."""
    if group.get("differentiable"):
        raise NotImplementedError(
            f"{name}: differentiable=True (autograd through the optimizer step) is not "
            "supported: handgrad updates raw tensors outside the graph. Leave "
            "differentiable=False.")
    if group.get("fused") and group.get("foreach"):
        raise RuntimeError(f"{name}: `fused` and `foreach` cannot be `True` together.")


class Optimizer:
    """Base class of every optimizer.

    Args:
        params: an iterable of Tensors, of `(name, Tensor)` pairs (as from
            `named_parameters()`), or of dicts that each define a parameter group
            (`{'params': [...], 'lr': 0.1}`); a group's missing options come from
            `defaults`.
        defaults: the optimizer's options and their default values.

    A subclass defines its update rule in `_update(group, params, grads, states)`,
    where it keeps buffers `_init_state(state, p, group)`, and checks its options in
    `_check_group(group)`; the loop over groups and parameters in `step()` is shared.
    A subclass may also write its own `step()` (LBFGS does): the step hooks run around
    it all the same.
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._opt_called = False  # set by step(); LR schedulers warn when it is missing
        self._in_step = False  # a subclass step() calling super().step() hooks once
        self._optimizer_step_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        name = type(self).__name__
        if isinstance(params, Tensor | torch.Tensor):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or dicts, but got a "
                "single Tensor. Pass [tensor] or model.parameters().")
        if isinstance(params, set):
            raise TypeError(
                f"{name}: optimizer parameters need to be organized in ordered "
                "collections, but the ordering of tensors in sets changes between runs. "
                "Use a list instead.")
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: optimizer got an empty parameter list.")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __init_subclass__(cls, **kwargs):
        # A subclass that writes its own step() still runs the step hooks and records
        # that it ran, so an LR scheduler can warn when it is stepped before the
        # optimizer (that skips the first LR of the schedule).
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_records_call", False):
            cls.step = _hooked(step)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (and its own options) to `param_groups`.

        Useful when fine-tuning: unfreeze layers and hand them to the optimizer."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: param_group must be a dict, but got "
                            f"{type(param_group).__name__}.")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor | torch.Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                f"{name}: optimizer parameters need to be organized in ordered "
                "collections, but the ordering of tensors in sets changes between runs. "
                "Use a list instead.")
        tensors, names = [], []
        for p in params:
            if isinstance(p, tuple):
                names.append(p[0])
                p = p[1]
            tensors.append(p)
        if names:
            if len(names) != len(tensors):
                raise ValueError(f"{name}: all optimizer params should be with or without "
                                 "names; some param names are missing.")
            group["param_names"] = names
        for p in tensors:
            if isinstance(p, torch.Tensor):
                raise TypeError(
                    f"{name}: can only optimize handgrad Tensors, but one of the params is "
                    f"a torch.Tensor of shape {tuple(p.shape)}. Wrap it: "
                    "handgrad.tensor(t, requires_grad=True).")
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but one of the params "
                                f"is {type(p).__name__}.")
            if not p.is_leaf:
                raise ValueError(
                    f"{name}: can't optimize a non-leaf Tensor (shape {tuple(p.shape)}); "
                    "optimize the leaves it was computed from, or .detach() it and set "
                    "requires_grad=True.")
        group["params"] = tensors
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        _check_variants(name, group)
        self._check_group(group)

        if len(tensors) != len(set(tensors)):
            warnings.warn(f"{name}: a parameter group contains the same parameter twice; "
                          "it will be updated twice per step.", stacklevel=3)
        seen: set[Tensor] = set()
        for other in self.param_groups:
            seen.update(other["params"])
            if ("param_names" in other) != ("param_names" in group):
                raise ValueError(f"{name}: all param groups should be with or without "
                                 "names; cannot mix the two.")
        if not seen.isdisjoint(tensors):
            raise ValueError(f"{name}: some parameters appear in more than one parameter "
                             "group.")
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError when an option of `group` is out of range (per optimizer)."""

    def _init_state(self, state: dict, p: torch.Tensor, group: dict[str, Any]) -> None:
        """Fill the empty `state` of parameter data `p` before its first update."""

    def _params_with_grad(self, group: dict[str, Any], with_state: bool = True):
        """(params, grads, states) of the group's parameters that have a gradient: raw
        torch tensors and the per-parameter state dicts (initialised on first use)."""
        params, grads, states = [], [], []
        state_of = self.state
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            params.append(p.data)
            grads.append(grad.data)
            if with_state:
                state = state_of[p]
                if not state:
                    self._init_state(state, p.data, group)
                states.append(state)
        return params, grads, states

    # ------------------------------------------------------------------ step
    def _keeps_state(self, group: dict[str, Any]) -> bool:
        """Whether the group's update reads per-parameter state (SGD without momentum
        does not, and then skips making it)."""
        return True

    def _update(self, group: dict[str, Any], params: list[torch.Tensor],
                grads: list[torch.Tensor], states: list[dict]) -> None:
        """The update rule: change raw tensors `params` in place from `grads` (never
        modified) and the per-parameter `states`, with the options of `group`."""
        raise NotImplementedError(
            f"{type(self).__name__}: an optimizer defines its update rule in "
            "_update(group, params, grads, states), or overrides step()")

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; returns closure()'s loss if given.

        The loop every optimizer shares: for each group, the raw data and gradients of
        the parameters that have a gradient and their state (made on first use), handed
        to `_update` all at once, or one parameter at a time with `foreach=False`. The
        update works on raw torch tensors, so no graph is recorded (no `no_grad` needed).
        """
        loss = _evaluate(closure)
        for group in self.param_groups:
            params, grads, states = self._params_with_grad(group, self._keeps_state(group))
            if not params:
                continue
            if _use_foreach(group):
                self._update(group, params, grads, states)
            else:
                for p, g, s in zip(params, grads, states or [None] * len(params)):
                    self._update(group, [p], [g], [s])
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: `p.grad = None` (default), or fill them with zeros."""
        zeroed = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    zeroed.append(p.grad.data)
        if zeroed:
            torch._foreach_zero_(zeroed)

    # ------------------------------------------------------------------ hooks
    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Run `hook(optimizer, args, kwargs)` before each step(); `args` are step's
        positional arguments, the optimizer first (as in torch). It may return
        `(new_args, new_kwargs)`, which step then gets instead."""
        return _add_hook(self._optimizer_step_pre_hooks, hook, False)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """Run `hook(optimizer, args, kwargs)` after each step()."""
        return _add_hook(self._optimizer_step_post_hooks, hook, False)

    def register_state_dict_pre_hook(self, hook: Callable,
                                     prepend: bool = False) -> RemovableHandle:
        """Run `hook(optimizer)` before state_dict() builds the dict."""
        return _add_hook(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable,
                                      prepend: bool = False) -> RemovableHandle:
        """Run `hook(optimizer, state_dict)` on the built dict; a returned dict replaces it."""
        return _add_hook(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable,
                                          prepend: bool = False) -> RemovableHandle:
        """Run `hook(optimizer, state_dict)` (a shallow copy of the dict given) before
        load_state_dict() loads it; a returned dict is loaded instead."""
        return _add_hook(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable,
                                           prepend: bool = False) -> RemovableHandle:
        """Run `hook(optimizer)` after load_state_dict() has loaded a dict."""
        return _add_hook(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # ------------------------------------------------------------------ state_dict
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as `{'state': {index: {...}}, 'param_groups': [...]}`.

        Parameters are replaced by their index in the order of `param_groups` (the
        parameters themselves are not saved). As in PyTorch, buffers are the live
        tensors, not copies: save or deepcopy the dict before training on."""
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, buffers in self.state.items():
            key = index_of[id(p)] if isinstance(p, Tensor) else p
            state[key] = {k: (_step_tensor(v) if k == "step" else v)
                          for k, v in buffers.items()}
        return _through_hooks(self._optimizer_state_dict_post_hooks, self,
                              {"state": state, "param_groups": groups})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a dict from `state_dict()` (handgrad's or PyTorch's, same optimizer kind).

        Groups and their sizes must match this optimizer's; buffers are copied onto each
        parameter's device and (floating point) dtype, and each group's options are taken
        from the dict."""
        name = type(self).__name__
        state_dict = _through_hooks(self._optimizer_load_state_dict_pre_hooks, self,
                                    state_dict.copy())
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state dict has {len(saved_groups)} parameter "
                f"groups, this optimizer has {len(self.param_groups)}.")
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {i} has "
                    f"{len(saved['params'])} parameters in the state dict but "
                    f"{len(group['params'])} in this optimizer.")
        param_of = {}
        for group, saved in zip(self.param_groups, saved_groups):
            param_of.update(zip(saved["params"], group["params"]))

        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, buffers in state_dict["state"].items():
            p = param_of.get(key)
            if p is None:  # state not tied to a parameter: kept as is
                state[key] = copy.deepcopy(buffers)
                continue
            state[p] = {k: _load_value(k, v, p.data) for k, v in buffers.items()}

        for group, saved in zip(self.param_groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            for key, default in self.defaults.items():
                saved.setdefault(key, default)
        self.state = state
        self.param_groups = saved_groups
        self._after_load()
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def _after_load(self) -> None:
        """Hook for options a subclass fixes after loading (AdamW's decoupling)."""

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


Optimizer.step = _hooked(Optimizer.step)


# --------------------------------------------------------------------------- helpers
def _evaluate(closure: Callable[[], Any] | None):
    """Run the closure (which recomputes the loss and calls backward) with grad on."""
    if closure is None:
        return None
    with enable_grad():
        return closure()


def _use_foreach(group: dict[str, Any]) -> bool:
    """Update the group's tensors all at once (torch._foreach_* ops) or one by one.

    `foreach=None` (the default) means all at once, on every device: the arithmetic is
    the same either way, and one multi-tensor op per formula line saves Python and
    kernel-launch overhead (measured faster than one tensor at a time on CPU too, where
    PyTorch defaults to one at a time). `foreach=False` keeps peak memory lower: the
    temporaries (e.g. Adam's denominators) then exist for one tensor at a time."""
    return group.get("foreach") is not False


def _signed_decayed(grads, params, maximize: bool, weight_decay: float):
    """The gradients an update follows: g <- -g if maximize; g <- g + weight_decay * p.

    Returns new tensors when anything changes: the caller's `.grad` is never modified."""
    if maximize:
        grads = torch._foreach_neg(grads)
    if weight_decay != 0:
        if maximize:  # already our own copy
            torch._foreach_add_(grads, params, alpha=weight_decay)
        else:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
    return grads


def _step_tensor(step):
    """A step count as PyTorch keeps it: a 0-d float tensor of the default scalar dtype."""
    return torch.tensor(float(step)) if not isinstance(step, torch.Tensor) else step


def _load_value(key: str, value, p: torch.Tensor):
    """A buffer from a state dict, copied onto parameter data `p`'s device and dtype."""
    if isinstance(value, Tensor):
        value = value.data
    if key == "step":
        return int(value.item() if isinstance(value, torch.Tensor) else value)
    if isinstance(value, torch.Tensor):
        dtype = p.dtype if p.is_floating_point() else None
        return value.to(device=p.device, dtype=dtype, copy=True)
    return copy.deepcopy(value)


def _scalar_dtype() -> torch.dtype:
    """The dtype torch keeps scalar state in (a step count, NAdam's mu_product, ASGD's
    eta and mu): float64 when that is torch's default dtype, float32 otherwise."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
