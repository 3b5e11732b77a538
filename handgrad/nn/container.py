"""Containers: Sequential (a chain of modules), ModuleList and ModuleDict (modules held
in a list or dict, registered so their parameters are found), ParameterList and
ParameterDict (parameters held the same way), as in PyTorch's nn.

Child names are the positions "0", "1", ... (or the dict keys), so state_dict keys are
torch's: "0.weight", "2.bias", "params.0", "params.scale", ...

Left out: nothing of torch's container API that handgrad's Module can hold (torch's
ParameterList has no insert, pop or del either, so neither has handgrad's).
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

import torch

from handgrad._tensor import Tensor
from handgrad.nn.module import Module, Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


def _index(container: Module, idx: int) -> int:
    """A non-negative position for idx, with a clear error when out of range."""
    n = len(container._modules)
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for {type(container).__name__} of "
                         f"length {n}")
    return idx % n


class _Positional(Module):
    """What Sequential and ModuleList share: children named by position."""

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)._from_modules(list(self._modules.values())[idx])
        return list(self._modules.values())[_index(self, idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[list(self._modules)[_index(self, idx)]] = module

    def __delitem__(self, idx) -> None:
        values = list(self._modules.values())
        if isinstance(idx, slice):
            del values[idx]
        else:
            del values[_index(self, idx)]
        self._renumber(values)

    def _renumber(self, modules: list) -> None:
        self._modules.clear()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def append(self, module: Module):
        """Add a module at the end."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        values = list(self._modules.values())
        values.insert(index, module)
        self._renumber(values)

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module

    def __iadd__(self, modules: Iterable[Module]):
        return self.extend(modules)

    def __dir__(self):
        return [name for name in super().__dir__() if not name.isdigit()]


class Sequential(_Positional):
    """Modules applied one after another: Sequential(a, b, c)(x) = c(b(a(x))).

    Sequential(OrderedDict(name=module, ...)) names the children."""

    def __init__(self, *args: Module):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    @classmethod
    def _from_modules(cls, modules: list) -> Sequential:
        return Sequential(*modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):  # keep the names (they may not be positions)
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(_Positional):
    """A list of modules, registered (their parameters belong to the owner); indexing,
    slicing, append, extend, insert, iteration as with a list. It has no forward."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    @classmethod
    def _from_modules(cls, modules: list) -> ModuleList:
        return ModuleList(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])


class ModuleDict(Module):
    """A dict of modules, registered; keys keep their insertion order. It has no forward."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def update(self, modules: Mapping[str, Module] | Iterable) -> None:
        """Add (name, module) pairs from a mapping or an iterable of pairs."""
        items = modules.items() if isinstance(modules, Mapping | ModuleDict) else modules
        for j, pair in enumerate(items):
            if len(pair) != 2:
                raise ValueError(f"ModuleDict update sequence element #{j} has length "
                                 f"{len(pair)}; 2 is required")
            self[pair[0]] = pair[1]


# ---------------------------------------------------------------------- parameters
def _as_parameter(value):
    """What torch's parameter containers store: a tensor that is not a Parameter yet
    (handgrad or torch) becomes one (sharing its storage); anything else stays as it is."""
    if isinstance(value, Tensor | torch.Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


def _describe_entry(key, value) -> str:
    """One line of a parameter container's repr, as torch writes it."""
    if not isinstance(value, Tensor):
        return f"  ({key}): Object of type: {type(value).__name__}"
    size = "x".join(str(n) for n in value.shape)
    device = f" ({value.device})" if value.device.type != "cpu" else ""
    kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
    return f"  ({key}): {kind} containing: [{value.dtype} of size {size}{device}]"


class ParameterList(Module):
    """A list of parameters, registered under the names "0", "1", ... (so the owner's
    state_dict has "params.0", ...). A tensor put in it becomes a Parameter, as in torch;
    other objects are held as they are. Indexing (slices give a new ParameterList),
    assignment at an existing index, append, extend, +=, len and iteration."""

    def __init__(self, values: Iterable | None = None):
        super().__init__()
        self._size = 0
        if values is not None:
            self += values

    def _absolute_index(self, idx) -> str:
        idx = operator.index(idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} is out of range")
        return str(idx % len(self))

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            out = type(self)()
            for i in range(*idx.indices(len(self))):
                out.append(self[i])
            return out
        return getattr(self, self._absolute_index(idx))

    def __setitem__(self, idx: int, value) -> None:
        setattr(self, self._absolute_index(idx), _as_parameter(value))

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator:
        return iter(self[i] for i in range(len(self)))

    def __iadd__(self, values: Iterable):
        return self.extend(values)

    def __dir__(self):
        return [name for name in super().__dir__() if not name.isdigit()]

    def append(self, value):
        """Add a value (a tensor becomes a Parameter) at the end."""
        self._size += 1
        self[self._size - 1] = value
        return self

    def extend(self, values: Iterable):
        """Append every value of an iterable (a single tensor is refused, as in torch)."""
        if not isinstance(values, Iterable) or isinstance(values, Tensor | torch.Tensor):
            raise TypeError("ParameterList.extend should be called with an iterable, but "
                            f"got {type(values).__name__}")
        for value in values:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(_describe_entry(i, value) for i, value in enumerate(self))

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(Module):
    """A dict of parameters, registered under their keys (strings), in insertion order.
    A tensor put in it becomes a Parameter, as in torch. The dict methods: [], in, len,
    iteration over keys, keys, values, items, get, pop, popitem, setdefault, update,
    clear, copy, fromkeys, and | / |=. As in torch, update() with a plain dict adds its
    items in sorted key order (an OrderedDict, a ParameterDict or pairs keep theirs)."""

    def __init__(self, parameters=None):
        super().__init__()
        self._keys: dict[str, None] = {}
        if parameters is not None:
            self.update(parameters)

    @staticmethod
    def _key_to_attr(key) -> str:
        if not isinstance(key, str):
            raise TypeError("Index given to ParameterDict cannot be used as a key as it is "
                            f"not a string (type is '{type(key).__name__}'). Use string keys.")
        return key

    def __getitem__(self, key: str):
        """The value under key (a missing key is torch's AttributeError)."""
        return getattr(self, self._key_to_attr(key))

    def __setitem__(self, key: str, value) -> None:
        attr = self._key_to_attr(key)  # checked first: torch keeps a refused key in _keys
        self._keys[key] = None
        setattr(self, attr, _as_parameter(value))

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        delattr(self, self._key_to_attr(key))

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __reversed__(self) -> Iterator[str]:
        return reversed(list(self._keys))

    def __contains__(self, key) -> bool:
        return key in self._keys

    def copy(self) -> ParameterDict:
        """A new ParameterDict holding the same parameters (not copies of them)."""
        return ParameterDict(OrderedDict((key, self[key]) for key in self._keys))

    def setdefault(self, key: str, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        for key in list(self._keys):
            del self[key]

    def pop(self, key: str):
        value = self[key]
        del self[key]
        return value

    def popitem(self) -> tuple:
        """Remove and return the last (key, value) added."""
        key = next(reversed(self._keys))
        value = self[key]
        del self[key]
        return key, value

    def get(self, key: str, default=None):
        return self[key] if key in self else default

    def fromkeys(self, keys: Iterable[str], default=None) -> ParameterDict:
        return ParameterDict((key, default) for key in keys)

    def keys(self):
        return self._keys.keys()

    def items(self):
        return ((key, self[key]) for key in self._keys)

    def values(self):
        return (self[key] for key in self._keys)

    def update(self, parameters) -> None:
        """Add (key, value) pairs from a mapping, a ParameterDict or an iterable of pairs,
        overwriting existing keys."""
        if not isinstance(parameters, Iterable):
            raise TypeError("ParametersDict.update should be called with an iterable of "
                            f"key/value pairs, but got {type(parameters).__name__}")
        if isinstance(parameters, OrderedDict | ParameterDict):
            items = parameters.items()
        elif isinstance(parameters, Mapping):
            items = sorted(parameters.items())
        else:
            items = parameters
        for j, pair in enumerate(items):
            if not isinstance(pair, Iterable):
                raise TypeError(f"ParameterDict update sequence element #{j} should be "
                                f"Iterable; is {type(pair).__name__}")
            if len(pair) != 2:
                raise ValueError(f"ParameterDict update sequence element #{j} has length "
                                 f"{len(pair)}; 2 is required")
            self[pair[0]] = pair[1]

    def extra_repr(self) -> str:
        lines = []
        for key, value in self.items():
            if isinstance(value, Tensor):  # torch names the tensor type here, not the dtype
                size = "x".join(str(n) for n in value.shape)
                device = f" ({value.device})" if value.device.type != "cpu" else ""
                kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
                lines.append(f"  ({key}): {kind} containing: [{value.data.type()} of size "
                             f"{size}{device}]")
            else:
                lines.append(_describe_entry(key, value))
        return "\n".join(lines)

    def __call__(self, input):
        raise RuntimeError("ParameterDict should not be called.")

    def __or__(self, other: ParameterDict) -> ParameterDict:
        copy = self.copy()
        copy.update(other)
        return copy

    def __ror__(self, other: ParameterDict) -> ParameterDict:
        copy = other.copy()
        copy.update(self)
        return copy

    def __ior__(self, other: ParameterDict):
        self.update(other)
        return self
