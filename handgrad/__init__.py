"""handgrad: a deep-learning framework whose every gradient is written by hand.

Two engines live here:

* ``handgrad.scalar`` -- ``Value``, a pure-Python scalar autograd engine (standard
  library only) with graph pictures and a tiny Neuron/Layer/MLP;
* the tensor engine -- ``handgrad.Tensor`` over PyTorch tensors (used only as an array
  library), with ``handgrad.nn``, ``handgrad.optim``, ``handgrad.data``, ``handgrad.train``.

The tensor engine is imported lazily, on first use of one of its names, so that
``import handgrad.scalar`` never imports torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "autograd", "ops", "testing", "nn", "optim", "data", "train", "models",
    "scalar", "bench", "cli", "linalg", "utils",
}
# Modules whose public names (their __all__) are re-exported as handgrad.<name>.
_API_MODULES = ("handgrad._tensor", "handgrad._dtypes", "handgrad._creation",
                "handgrad._functions", "handgrad._functions_indexing",
                "handgrad._functions_math", "handgrad.autograd", "handgrad._interop",
                "handgrad.serialization", "handgrad.graph",
                "handgrad._runtime", "handgrad._compat")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"handgrad.{name}")
    for module_name in _API_MODULES:
        module = importlib.import_module(module_name)
        if name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            globals()[name] = value  # later lookups skip this function
            return value
    raise AttributeError(f"module 'handgrad' has no attribute {name!r}")


def __dir__():
    names = set(globals()) | _SUBMODULES
    for module_name in _API_MODULES:
        names |= set(importlib.import_module(module_name).__all__)
    return sorted(names)
