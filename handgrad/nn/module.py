"""Module and Parameter: the building blocks every layer and model is made of.

`Module` works like PyTorch's nn.Module. Assigning a `Parameter`, a `Module` or a registered
buffer to an attribute registers it; `parameters()`, `named_parameters()`, `buffers()`,
`named_modules()`, `children()` walk the tree; `state_dict()` / `load_state_dict()` save
and restore it under torch's key names ("0.weight", "bn.running_mean", ...), so weights
move between handgrad and torch both ways:

    model.load_state_dict(torch_model.state_dict())                     # torch -> handgrad
    torch_model.load_state_dict({k: v.data for k, v in model.state_dict().items()})

(`v.data` is the torch tensor inside each handgrad Tensor.) `load_state_dict(...,
assign=True)` puts the given tensors in the module instead of copying into it. `train()`
/ `eval()`, `to(device or dtype)` (in place, so optimizers holding the parameters keep
working), `zero_grad()`, `apply(fn)` and a torch-style `repr` complete it.

Hooks, with torch's semantics and order (each register_* returns a RemovableHandle:
`handle.remove()`, or `with handle:`); they survive `.to()` and are not module state:

    register_forward_pre_hook(hook(module, args) -> None or new args)
    register_forward_hook(hook(module, args, output) -> None or new output)
    register_full_backward_pre_hook(hook(module, grad_output) -> None or new grad_output)
    register_full_backward_hook(hook(module, grad_input, grad_output) -> None or new grad_input)

e.g. to show a layer's activations: `model[1].register_forward_hook(lambda m, a, out:
seen.append(out))`. Backward hooks wrap the module's tensor inputs and outputs in
identity Functions (nn/hooks.py, nn/functional/hooks.py). A module without hooks pays
one attribute check per call.

A `HandgradError` raised inside a module's forward comes out naming where it happened:
each module it passes through adds its part of the path, e.g.
"... [in layer '4' (Linear(in_features=256, out_features=10, bias=True)) of MLP]".

Left out: global hooks (register_module_forward_hook, ...), the deprecated
register_backward_hook, state_dict and load_state_dict hooks, pickling with torch.save
(use state_dict and handgrad's checkpoints).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator

import numpy as np
import torch

from handgrad._tensor import Tensor
from handgrad.autograd import HandgradError, no_grad
from handgrad.nn.hooks import BackwardHook, ModuleHooks, RemovableHandle

__all__ = ["Module", "Parameter"]


class Parameter(Tensor):
    """A Tensor that a Module registers as learnable: a leaf that requires grad.

    `Parameter(data)` shares `data`'s storage (a handgrad Tensor, a torch.Tensor, or
    anything torch.as_tensor takes), as PyTorch's nn.Parameter does."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = torch.empty(0)
        elif isinstance(data, Tensor):
            data = data.data
        elif not isinstance(data, torch.Tensor):
            data = torch.as_tensor(data)
        super().__init__(data.detach(), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns; prints as torch's does when every key matched."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _as_raw(value, key: str) -> torch.Tensor:
    """The torch tensor behind a state_dict value (handgrad Tensor, torch, numpy)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray | int | float):
        return torch.as_tensor(value)
    raise TypeError(f"load_state_dict: the value for {key!r} is a {type(value).__name__}; "
                    "expected a handgrad Tensor, a torch.Tensor or a numpy array")


def _add_indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _locate(error: HandgradError, module: Module) -> None:
    """Add `module` to the path of modules the error passed through, innermost first,
    and rewrite its message to name that path."""
    trail = getattr(error, "module_trail", None)
    if trail is None:
        error.module_trail = trail = [module]
        error.original_message = str(error)
    elif trail[-1] is not module:
        trail.append(module)
    names = []
    for child, parent in zip(trail, trail[1:]):
        names.append(next((n for n, m in parent._modules.items() if m is child),
                          type(child).__name__))
    inner = trail[0]
    described = f"{type(inner).__name__}({inner.extra_repr()})"
    if names:
        where = f"in layer '{'.'.join(reversed(names))}' ({described}) of {type(module).__name__}"
    else:
        where = f"in {described}"
    error.args = (f"{error.original_message} [{where}]",)


class Module:
    """Base class of every layer and model: subclass it, create parameters and
    submodules in __init__ (after super().__init__()), write forward()."""

    training: bool
    # state_dict entries a checkpoint may lack (loading keeps the current value), like
    # BatchNorm's num_batches_tracked, which older torch checkpoints do not have
    _optional_state_keys: tuple[str, ...] = ()
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _modules: dict[str, Module | None]
    # None until a hook is registered: calling a module without hooks costs one check
    _hooks: ModuleHooks | None = None

    def __init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", {})
        set_(self, "_buffers", {})
        set_(self, "_non_persistent_buffers", set())
        set_(self, "_modules", {})

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        try:
            if self._hooks is None:
                return self.forward(*args, **kwargs)
            return self._call_with_hooks(args, kwargs)
        except HandgradError as error:
            _locate(error, self)
            raise

    def _run_forward_hook(self, hook_id, hook, args: tuple, kwargs: dict, result):
        """One forward hook; what it returns (when not None) replaces the output."""
        if hook_id in self._hooks.forward_with_kwargs:
            returned = hook(self, args, kwargs, result)
        else:
            returned = hook(self, args, result)
        return result if returned is None else returned

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        """forward with the hooks around it, in torch's order: forward pre-hooks, the
        inputs wrapped for backward hooks, forward, forward hooks, the outputs wrapped.
        If anything raises, the always_call forward hooks not yet run run then."""
        hooks = self._hooks
        result = None
        called = set()
        try:
            for hook_id, hook in tuple(hooks.forward_pre.items()):
                if hook_id in hooks.forward_pre_with_kwargs:
                    returned = hook(self, args, kwargs)
                    if returned is not None:
                        if not (isinstance(returned, tuple) and len(returned) == 2):
                            raise RuntimeError("forward pre-hook must return None or a tuple "
                                               f"of (new_args, new_kwargs), but got {returned}.")
                        args, kwargs = returned
                else:
                    returned = hook(self, args)
                    if returned is not None:
                        args = returned if isinstance(returned, tuple) else (returned,)
            backward_hook = None
            if hooks.backward or hooks.backward_pre:
                backward_hook = BackwardHook(self, list(hooks.backward.values()),
                                             list(hooks.backward_pre.values()))
                args = backward_hook.setup_input_hook(args)
            result = self.forward(*args, **kwargs)
            for hook_id, hook in tuple(hooks.forward.items()):
                if hook_id in hooks.forward_always_called:
                    called.add(hook_id)
                result = self._run_forward_hook(hook_id, hook, args, kwargs, result)
            if backward_hook is not None:
                if not isinstance(result, Tensor | tuple):
                    warnings.warn("For backward hooks to be called, module output should be "
                                  "a Tensor or a tuple of Tensors but received "
                                  f"{type(result)}", stacklevel=3)
                result = backward_hook.setup_output_hook(result)
            return result
        except Exception:
            for hook_id, hook in tuple(hooks.forward.items()):
                if hook_id not in hooks.forward_always_called or hook_id in called:
                    continue
                try:
                    result = self._run_forward_hook(hook_id, hook, args, kwargs, result)
                except Exception as error:
                    warnings.warn("module forward hook with ``always_call=True`` raised an "
                                  "exception that was silenced as another error was raised "
                                  f"in forward: {error}", stacklevel=3)
            raise

    # ------------------------------------------------------------------ hooks
    def _hook_store(self) -> ModuleHooks:
        hooks = self.__dict__.get("_hooks")
        if hooks is None:
            hooks = ModuleHooks()
            object.__setattr__(self, "_hooks", hooks)
        return hooks

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call `hook(module, args)` before every forward; it may return new args (a
        value that is not a tuple is wrapped into one). With with_kwargs=True it is
        `hook(module, args, kwargs)` and returns None or (new_args, new_kwargs).
        Hooks run in registration order (prepend=True: first)."""
        hooks = self._hook_store()
        marked = (hooks.forward_pre_with_kwargs,) if with_kwargs else ()
        return hooks.add(hooks.forward_pre, hook, prepend, (hooks.forward_pre_with_kwargs,),
                         marked)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call `hook(module, args, output)` after every forward (with_kwargs=True:
        `hook(module, args, kwargs, output)`); a value it returns replaces the output.
        always_call=True runs it even when the call raises (then output may be None).
        The way to see a layer's activations:

            with model[1].register_forward_hook(lambda m, args, out: seen.append(out)):
                model(x)
        """
        hooks = self._hook_store()
        flags = (hooks.forward_with_kwargs, hooks.forward_always_called)
        marked = tuple(flag for flag, on in zip(flags, (with_kwargs, always_call)) if on)
        return hooks.add(hooks.forward, hook, prepend, flags, marked)

    def register_full_backward_pre_hook(self, hook: Callable,
                                        prepend: bool = False) -> RemovableHandle:
        """Call `hook(module, grad_output)` when the gradients of the module's outputs
        are known (before the module's own backward); it may return a replacement
        grad_output tuple. grad_output has one entry per returned value (None for
        non-tensors and for outputs no gradient reached)."""
        hooks = self._hook_store()
        return hooks.add(hooks.backward_pre, hook, prepend)

    def register_full_backward_hook(self, hook: Callable,
                                    prepend: bool = False) -> RemovableHandle:
        """Call `hook(module, grad_input, grad_output)` when the gradients of the
        module's positional inputs are known; it may return a replacement grad_input
        tuple. If no input requires grad it fires with grad_input all None, right after
        the outputs' gradients are known (torch's rule, with torch's warning). The
        module's forward then sees aliases of its input tensors (changing one in place
        is refused while the input is alive, as in torch), and the caller gets aliases
        of the outputs."""
        hooks = self._hook_store()
        return hooks.add(hooks.backward, hook, prepend)

    # ------------------------------------------------------------------ registration
    def __getattr__(self, name: str):
        # Only reached when normal lookup fails: parameters, buffers and submodules live
        # in their own dicts (as in torch), not in the instance __dict__.
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            values = d.get(store)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params, buffers, modules = d.get("_parameters"), d.get("_buffers"), d.get("_modules")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, params)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter "
                                f"'{name}' (handgrad.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, modules)
            modules[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (handgrad.nn.Module or None expected)")
            modules[name] = None
        elif buffers is not None and name in buffers:
            if isinstance(value, torch.Tensor):
                value = Tensor(value)
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(handgrad Tensor or None expected)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def _forget(self, name: str, keep: dict) -> None:
        """Remove `name` from wherever it is registered except `keep` (the store it is
        being registered in, where it keeps its place in the order)."""
        self.__dict__.pop(name, None)
        for store in (self._parameters, self._buffers, self._modules):
            if store is not keep:
                store.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def _check_name(self, kind: str, name: str, store: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain \".\", got {name!r}")
        if hasattr(self, name) and name not in self.__dict__[store]:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, like a disabled bias) under `name`."""
        self._check_name("parameter", name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (handgrad.nn.Parameter or None required)")
        if param is not None and param._ctx is not None:
            raise ValueError(f"cannot register parameter '{name}': it is not a leaf (it was "
                             "computed by an operation); wrap a detached tensor instead")
        self._forget(name, self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a tensor that is module state but not learnable (running statistics...);
        persistent buffers are part of the state_dict."""
        self._check_name("buffer", name, "_buffers")
        if isinstance(tensor, torch.Tensor):
            tensor = Tensor(tensor)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (handgrad Tensor or None required)")
        self._forget(name, self._buffers)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under `name` (what attribute assignment does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name("module", name, "_modules")
        self._forget(name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The submodule at a dotted path, e.g. "encoder.layers.0"."""
        module = self
        for item in target.split(".") if target else ():
            child = module._modules.get(item)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule `{item}` "
                                     f"(looking up {target!r})")
            module = child
        return module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                            remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, store: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or (remove_duplicate and value in seen):
                    continue
                if remove_duplicate:
                    seen.add(value)
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter); a parameter shared by two modules appears once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    # ------------------------------------------------------------------ state
    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, Module, str, Tensor]]:
        """(key, owning module, local name, tensor) for every state_dict entry, in
        state_dict order."""
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, self, name, param
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                yield prefix + name, self, name, buffer
        for name, module in self._modules.items():
            if module is not None:
                yield from module._state_items(prefix + name + ".")

    def state_dict(self, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict:
        """name -> tensor for every parameter and persistent buffer (torch's keys and
        order: a module's parameters, then its buffers, then each child's). Values share
        storage with the module (detached, unless keep_vars=True)."""
        if destination is None:
            destination = OrderedDict()
        for key, _, _, value in self._state_items(prefix):
            destination[key] = value if keep_vars else value.detach()
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from `state_dict` (handgrad or torch tensors, or
        numpy arrays) into this module, in place. With strict=True, missing and
        unexpected keys are errors; a shape mismatch is always one. Returns
        (missing_keys, unexpected_keys). A module's `_optional_state_keys` may be
        missing (kept as they are), as torch allows for num_batches_tracked.

        assign=True puts the given tensors themselves in the module instead (no copy:
        they keep their dtype and device and share storage with the state_dict). A
        value for a parameter becomes a Parameter with the requires_grad of the one it
        replaces (a Parameter is used as it is). The old Parameter objects are gone from
        the module, so create the optimizer after loading."""
        own = list(self._state_items())
        known = {key for key, *_ in own}
        optional = {f"{prefix}.{key}" if prefix else key
                    for prefix, module in self.named_modules()
                    for key in module._optional_state_keys}
        missing, errors = [], []
        with no_grad():
            for key, module, name, target in own:
                if key not in state_dict:
                    if key not in optional:
                        missing.append(key)
                    continue
                given = state_dict[key]
                value = _as_raw(given, key)
                if value.shape != target.shape:
                    errors.append(
                        f"size mismatch for {key}: copying a param with shape "
                        f"{tuple(value.shape)} from checkpoint, the shape in current model "
                        f"is {tuple(target.shape)}.")
                    continue
                if not assign:
                    target.data.copy_(value)
                elif isinstance(target, Parameter):
                    if isinstance(given, Parameter):
                        given.requires_grad_(target.requires_grad)
                    else:
                        given = Parameter(value, requires_grad=target.requires_grad)
                    module._parameters[name] = given
                else:
                    module._buffers[name] = given if isinstance(given, Tensor) else Tensor(value)
        unexpected = [key for key in state_dict if key not in known]
        if strict:  # torch's order: missing, unexpected, then the size mismatches
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ".")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        """Training mode (mode=True) or evaluation mode for this module and all below."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: dropout off, batch norm uses its running statistics."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (or fill it with zeros)."""
        for param in self.parameters():
            if param.grad is not None:
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.data.zero_()

    def apply(self, fn: Callable[[Module], object]) -> Module:
        """Call fn on every submodule (children first) and then on self; e.g. custom
        initialisation: model.apply(init_weights)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ devices, dtypes
    def _convert(self, convert: Callable[[torch.Tensor], torch.Tensor]) -> Module:
        """Replace each parameter's, gradient's and buffer's data by convert(data), in
        place: the Parameter objects stay the same (optimizers keep working)."""
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = convert(param.data)
                    if param.grad is not None:
                        param.grad.data = convert(param.grad.data)
            for buffer in module._buffers.values():
                if buffer is not None:
                    buffer.data = convert(buffer.data)
        return self

    def to(self, *args, **kwargs) -> Module:
        """module.to(device), .to(dtype), .to(device, dtype), .to(tensor), in place.
        A dtype applies to floating-point tensors only (as torch)."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor | torch.Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, torch.dtype):
                dtype = a
            elif a is not None:
                device = torch.device(a)
        if dtype is not None and not (dtype.is_floating_point or dtype.is_complex):
            raise TypeError(f"Module.to only accepts floating point or complex dtypes, but "
                            f"got desired dtype={dtype}")

        def convert(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return self._convert(convert)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        return self.to("cuda" if device is None else device)

    def double(self) -> Module:
        return self.to(torch.float64)

    def float(self) -> Module:
        return self.to(torch.float32)

    def half(self) -> Module:
        return self.to(torch.float16)

    def bfloat16(self) -> Module:
        return self.to(torch.bfloat16)

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """The module's own settings, shown inside its repr's parentheses."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): {_add_indent(repr(module), 2)}"
                    for name, module in self._modules.items()]
        lines += children
        text = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not children:
                text += lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))
