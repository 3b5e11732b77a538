"""Containers: Sequential (a chain of modules), ModuleList and ModuleDict (modules held
in a list or dict, registered so their parameters are found), as in PyTorch's nn.

Child names are the positions "0", "1", ... (or the dict keys), so state_dict keys are
torch's: "0.weight", "2.bias", ...

Left out: ParameterList, ParameterDict.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from handgrad.nn.module import Module

__all__ = ["Sequential", "ModuleList", "ModuleDict"]


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
