"""nn.utils.parametrize (torch.nn.utils.parametrize's names and semantics): a parameter
or buffer computed, at every access, by a Module from the tensor(s) actually stored.

    register_parametrization(layer, "weight", Symmetric())
    layer.weight        # Symmetric()(layer.parametrizations.weight.original), recomputed
    layer.weight = W    # stores right_inverse(W) in original (when the module has one)

How it works, as in torch: the module's class is replaced by a subclass made for this
one module ("ParametrizedLinear"), whose property `weight` evaluates
`module.parametrizations.weight`, a ParametrizationList (a ModuleList of the
parametrizations, applied in order) that holds the stored tensor as its parameter or
buffer `original` (or `original0`, `original1`, ... when the first right_inverse returns
a sequence). So the state_dict keys are torch's ("parametrizations.weight.original"), and
gradients reach `original` through the parametrization's own handgrad operations: there
is nothing new to derive, each parametrization is composed of proven ops.

    cached()  a context in which each parametrized tensor is computed once and reused
              (e.g. one weight shared by every time step of an RNN)
    remove_parametrizations(module, name, leave_parametrized=True)  undo: keep the
              current value (True) or the stored original (False)
    is_parametrized, type_before_parametrizations, transfer_parametrizations_and_params

Left out: pickling a parametrized module (as in torch, only its state_dict is saved),
TorchScript, torch's swap_tensors path and opaque (non-tensor) originals.
"""

from __future__ import annotations

import collections.abc
import copy
import copyreg
from contextlib import contextmanager

import torch

from handgrad._tensor import Tensor
from handgrad.autograd import no_grad
from handgrad.nn.container import ModuleDict, ModuleList
from handgrad.nn.module import Module, Parameter

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized",
           "remove_parametrizations", "type_before_parametrizations",
           "transfer_parametrizations_and_params"]

_cache_enabled = 0
_cache: dict[tuple[int, str], Tensor] = {}


@contextmanager
def cached():
    """Inside this context every parametrized tensor is computed at its first access and
    that same tensor (one graph node) is returned afterwards; leaving the outermost
    context forgets the values. Contexts nest."""
    global _cache, _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache = {}


def _as_tensor(value):
    """A handgrad Tensor for a handgrad or torch tensor; anything else unchanged."""
    return Tensor(value) if isinstance(value, torch.Tensor) else value


def _register_parameter_or_buffer(module: Module, name: str, value: Tensor) -> None:
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


def _set_data(destination: Tensor, source: Tensor) -> None:
    """torch's `destination.set_(source)`: the same Tensor object (an optimizer holding
    it keeps working) now holds source's data."""
    destination.data = source.data


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to the stored original(s).

    Registering checks torch's invariants: with X the tensor being parametrized and Y =
    right_inverse(X) (through every parametrization, last first; identity where one has
    none), Y is a tensor of X's dtype and device (then it is stored in X itself, so
    optimizers keep X) or a sequence of tensors (stored as original0, original1, ...);
    unless `unsafe`, forward(Y) has X's shape and dtype."""

    def __init__(self, modules, original: Tensor, unsafe: bool = False):
        modules = list(modules)
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = original.shape, original.dtype
        with no_grad():
            new = original
            for module in reversed(modules):
                if hasattr(module, "right_inverse"):
                    try:
                        new = _as_tensor(module.right_inverse(new))
                    except NotImplementedError:
                        pass  # a right_inverse that raises this counts as the identity
        if not isinstance(new, Tensor | collections.abc.Sequence):
            raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors "
                             f"(list, tuple...). Got {type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if original.dtype != new.dtype:
                raise ValueError("When `right_inverse` outputs one tensor, it may not change "
                                 f"the dtype.\noriginal.dtype: {original.dtype}\n"
                                 f"right_inverse(original).dtype: {new.dtype}")
            if original.device != new.device:
                raise ValueError("When `right_inverse` outputs one tensor, it may not change "
                                 f"the device.\noriginal.device: {original.device}\n"
                                 f"right_inverse(original).device: {new.device}")
            _set_data(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, tensor in enumerate(new):
                tensor = _as_tensor(tensor)
                if not isinstance(tensor, Tensor):
                    raise ValueError("'right_inverse' must return a Tensor or a Sequence of "
                                     "tensors (list, tuple...). Got element "
                                     f"{i} of the sequence with type {type(tensor).__name__}.")
                if isinstance(original, Parameter):
                    tensor = Parameter(tensor, original.requires_grad)
                else:
                    tensor = tensor.detach().requires_grad_(original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", tensor)
        if not self.unsafe:
            result = self()
            if not isinstance(result, Tensor):
                raise ValueError("A parametrization must return a tensor. Got "
                                 f"{type(result).__name__}.")
            if result.dtype != original_dtype:
                raise ValueError("Registering a parametrization may not change the dtype of "
                                 "the tensor, unless `unsafe` flag is enabled.\n"
                                 f"unparametrized dtype: {original_dtype}\n"
                                 f"parametrized dtype: {result.dtype}")
            if result.shape != original_shape:
                raise ValueError("Registering a parametrization may not change the shape of "
                                 "the tensor, unless `unsafe` flag is enabled.\n"
                                 f"unparametrized shape: {original_shape}\n"
                                 f"parametrized shape: {result.shape}")

    def right_inverse(self, value) -> None:
        """Store right_inverse(value) (through every parametrization, last first) in the
        original(s), in place: what `module.weight = value` does."""
        with no_grad():
            value = _as_tensor(value)
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not "
                                       "implement right_inverse.")
                value = _as_tensor(module.right_inverse(value))
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError("`right_inverse` should return a tensor. Got "
                                     f"{type(value).__name__}")
                if value.dtype != self.original.dtype:
                    raise ValueError(f"The tensor returned by `right_inverse` has dtype "
                                     f"{value.dtype} while `original` has dtype "
                                     f"{self.original.dtype}")
                _set_data(self.original, value)
                return
            if not isinstance(value, collections.abc.Sequence):
                raise ValueError("'right_inverse' must return a sequence of tensors. Got "
                                 f"{type(value).__name__}.")
            if len(value) != self.ntensors:
                raise ValueError("'right_inverse' must return a sequence of tensors of length "
                                 f"{self.ntensors}. Got a sequence of length {len(value)}.")
            for i, tensor in enumerate(value):
                tensor, original = _as_tensor(tensor), getattr(self, f"original{i}")
                if not isinstance(tensor, Tensor):
                    raise ValueError("'right_inverse' must return a sequence of tensors. Got "
                                     f"element {i} of type {type(tensor).__name__}.")
                if original.dtype != tensor.dtype:
                    raise ValueError(f"Tensor {i} returned by `right_inverse` has dtype "
                                     f"{tensor.dtype} while `original{i}` has dtype "
                                     f"{original.dtype}")
                _set_data(original, tensor)

    def forward(self):
        """parametrizations[-1](... parametrizations[0](original(s)))."""
        modules = list(self)
        if self.is_tensor:
            x = modules[0](self.original)
        else:
            x = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            x = module(x)
        return x


def _inject_new_class(module: Module) -> None:
    """Give `module` a class of its own, Parametrized<Class>, to hold the properties."""
    cls = module.__class__

    def refuse_pickling(self):
        raise RuntimeError("Serialization of parametrized modules is only supported through "
                           "state_dict(); save module.state_dict() (or a handgrad "
                           "checkpoint) instead.")

    def plain_deepcopy(self, memo):  # what deepcopy does without __getstate__
        replica = memo.get(id(self))
        if replica is not None:
            return replica
        replica = self.__new__(self.__class__)
        memo[id(self)] = replica
        replica.__dict__ = copy.deepcopy(self.__dict__, memo)
        for slot in copyreg._slotnames(self.__class__):
            if hasattr(self, slot):
                setattr(replica, slot, copy.deepcopy(getattr(self, slot), memo))
        return replica

    namespace = {"__getstate__": refuse_pickling}
    if not hasattr(cls, "__deepcopy__"):
        namespace["__deepcopy__"] = plain_deepcopy
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), namespace)


def _inject_property(module: Module, tensor_name: str) -> None:
    """The property `tensor_name` on the module's own class: get = evaluate the
    parametrization (once per cached() context), set = right_inverse into original."""
    if hasattr(module, tensor_name):
        raise AssertionError(f"Module already has an attribute named '{tensor_name}'")

    def get_parametrized(self) -> Tensor:
        parametrization = self.parametrizations[tensor_name]
        if not _cache_enabled:
            return parametrization()
        key = (id(self), tensor_name)
        tensor = _cache.get(key)
        if tensor is None:
            tensor = _cache[key] = parametrization()
        return tensor

    def set_original(self, value) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make module.<tensor_name> the output of `parametrization` (a Module whose forward
    takes the stored tensor(s)); registering a second one on the same name chains it
    after the first. The parameter or buffer moves to
    module.parametrizations.<tensor_name>.original (its Parameter object kept, so an
    optimizer holding it keeps working, when right_inverse returns one tensor).

    Unless unsafe=True, the parametrization must keep the tensor's shape and dtype, as
    must its right_inverse (checked now, with torch's ValueErrors). Returns module."""
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            current = getattr(module, tensor_name)
            result = parametrization(current)
            if not isinstance(result, Tensor):
                raise ValueError("A parametrization must return a tensor. Got "
                                 f"{type(result).__name__}.")
            if result.dtype != current.dtype:
                raise ValueError(
                    "Registering a parametrization may not change the dtype of the tensor, "
                    "unless the `unsafe` flag is enabled.\n"
                    f"module.{tensor_name}.dtype: {current.dtype}\n"
                    f"parametrization(module.{tensor_name}).dtype: {result.dtype}")
            if result.shape != current.shape:
                raise ValueError(
                    "Registering a parametrization may not change the shape of the tensor, "
                    "unless the `unsafe` flag is enabled.\n"
                    f"module.{tensor_name}.shape: {current.shape}\n"
                    f"parametrization(module.{tensor_name}).shape: {result.shape}")
            if hasattr(parametrization, "right_inverse"):
                try:
                    inverse = _as_tensor(parametrization.right_inverse(result))
                except NotImplementedError:
                    inverse = None
                if inverse is not None:
                    if not isinstance(inverse, Tensor):
                        raise ValueError("parametrization.right_inverse must return a tensor. "
                                         f"Got: {type(inverse).__name__}")
                    if inverse.dtype != current.dtype:
                        raise ValueError(
                            "The tensor returned by parametrization.right_inverse must have "
                            f"the same dtype as module.{tensor_name}, unless the `unsafe` "
                            f"flag is enabled.\nmodule.{tensor_name}.dtype: {current.dtype}\n"
                            f"returned dtype: {inverse.dtype}")
                    if inverse.shape != current.shape:
                        raise ValueError(
                            "The tensor returned by parametrization.right_inverse must have "
                            f"the same shape as module.{tensor_name}, unless the `unsafe` "
                            f"flag is enabled.\nmodule.{tensor_name}.shape: {current.shape}\n"
                            f"returned shape: {inverse.shape}")
        parametrizations = module.parametrizations[tensor_name]
        parametrizations.append(parametrization)
        parametrizations.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        if original is None:
            raise ValueError(f"Module '{type(module).__name__}' has {tensor_name}=None (a "
                             "disabled parameter or buffer); there is no tensor to "
                             "parametrize")
        parametrizations = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = parametrizations
    else:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a "
                         f"parametrized element with name '{tensor_name}'")
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether `module` has a parametrization (on `tensor_name`, when given)."""
    parametrizations = module._modules.get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Undo register_parametrization on `tensor_name`: it becomes a plain parameter or
    buffer again, holding the parametrized value (leave_parametrized=True; the original
    Parameter object keeps its identity when there was one original) or the stored
    original (False; impossible with several originals). The module gets its class back
    when nothing else is parametrized. Returns module."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    parametrizations = module.parametrizations[tensor_name]
    if parametrizations.is_tensor:
        original = parametrizations.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
            _set_data(original, value)
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a "
                             "tensor that is parametrized in terms of a sequence of tensors.")
        value = getattr(module, tensor_name)
        original = Parameter(value) if value.requires_grad else value
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


def type_before_parametrizations(module: Module) -> type:
    """The module's class before any parametrization (Linear for ParametrizedLinear)."""
    return module.__class__.__bases__[0] if is_parametrized(module) else type(module)


def transfer_parametrizations_and_params(from_module: Module, to_module: Module,
                                         tensor_name: str | None = None) -> Module:
    """Register from_module's parametrizations (all, or those of tensor_name) on
    to_module too, sharing the parametrization modules, and give to_module the same
    original tensors (creating the parameter first where to_module lacks it)."""
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        source = from_module.parametrizations[name]
        if not hasattr(to_module, name):
            setattr(to_module, name, Parameter(getattr(from_module, name)))
        for parametrization in source:
            register_parametrization(to_module, name, parametrization)
        target = to_module.parametrizations[name]
        if source.is_tensor:
            target.original = source.original
        else:
            for i in range(source.ntensors):
                setattr(target, f"original{i}", getattr(source, f"original{i}"))
    return to_module
