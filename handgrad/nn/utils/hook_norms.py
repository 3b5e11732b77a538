"""The old, hook-based nn.utils.weight_norm / remove_weight_norm and spectral_norm /
remove_spectral_norm (torch.nn.utils.weight_norm and .spectral_norm: torch deprecates the
first in favour of nn.utils.parametrizations.weight_norm, and recommends
parametrizations.spectral_norm over the second). Kept for code and checkpoints that use
their names:

    weight_norm:    parameters weight_g (the norms, keeping `dim`) and weight_v; before
                    every forward a pre-hook sets the plain attribute
                    weight = weight_v * weight_g / ||weight_v||
    spectral_norm:  parameter weight_orig, buffers weight_u and weight_v; before every
                    forward a pre-hook sets weight = weight_orig / sigma, sigma = u^T W v
                    after n_power_iterations steps (v first, then u) in training mode

state_dict keys are torch's ("weight_g", "weight_v"; "weight_orig", "weight_u",
"weight_v"). As in parametrizations.py, everything differentiable is composed of proven
handgrad operations, and u, v are constants of the graph.

Left out: torch's state_dict version hooks of spectral_norm (which convert checkpoints
written before torch 1.1 when loading; handgrad has no load_state_dict hooks).
"""

from __future__ import annotations

import warnings

import torch

from handgrad.autograd import no_grad
from handgrad.nn.module import Module, Parameter
from handgrad.nn.utils.parametrizations import _norm_except_dim, _normalize

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm", "SpectralNorm",
           "spectral_norm", "remove_spectral_norm"]


def _forward_pre_hooks(module: Module) -> dict:
    hooks = module.__dict__.get("_hooks")
    return {} if hooks is None else hooks.forward_pre


def _remove_hook(module: Module, kind: type, name: str, what: str):
    """Find the pre-hook of `kind` on `name`, remove it and return it."""
    hooks = _forward_pre_hooks(module)
    for key, hook in list(hooks.items()):
        if isinstance(hook, kind) and hook.name == name:
            del hooks[key]
            return hook
    raise ValueError(f"{what} of '{name}' not found in {module}")


def _refuse_twice(module: Module, kind: type, name: str, what: str) -> None:
    for hook in _forward_pre_hooks(module).values():
        if isinstance(hook, kind) and hook.name == name:
            raise RuntimeError(f"Cannot register two {what} hooks on the same parameter {name}")


class WeightNorm:
    """The forward pre-hook of weight_norm: weight = v * (g / ||v||), ||v|| over every
    dim but `dim` (all of them for dim None or -1)."""

    def __init__(self, name: str, dim: int | None):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module):
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        return v * (g / _norm_except_dim(v, self.dim))

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        warnings.warn("`nn.utils.weight_norm` is deprecated in favor of "
                      "`nn.utils.parametrizations.weight_norm` (as in torch).", FutureWarning,
                      stacklevel=3)
        _refuse_twice(module, WeightNorm, name, "weight_norm")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        del module._parameters[name]
        with no_grad():
            module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight, fn.dim)))
        module.register_parameter(name + "_v", Parameter(weight.data))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.data))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Old-style weight normalisation (deprecated in torch, with its FutureWarning):
    parameters <name>_g and <name>_v, and <name> recomputed before every forward."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo weight_norm: <name> is a Parameter again holding the current weight."""
    _remove_hook(module, WeightNorm, name, "weight_norm").remove(module)
    return module


class SpectralNorm:
    """The forward pre-hook of spectral_norm: weight = weight_orig / (u^T W_mat v)."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight):
        """W with `dim` first, as (W.shape[dim], -1); raw or handgrad."""
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            raw = weight_mat.data
            for _ in range(self.n_power_iterations):  # in place in the buffers
                v.data.copy_(_normalize(torch.mv(raw.t(), u.data), self.eps))
                u.data.copy_(_normalize(torch.mv(raw, v.data), self.eps))
            u, v = u.detach().clone(), v.detach().clone()
        return weight / u.dot(weight_mat.mv(v))

    def remove(self, module: Module) -> None:
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        for suffix in ("", "_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int,
              eps: float) -> SpectralNorm:
        _refuse_twice(module, SpectralNorm, name, "spectral_norm")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        h, w = fn.reshape_weight_to_matrix(weight.data).shape
        u = _normalize(weight.data.new_empty(h).normal_(0, 1), fn.eps)  # torch's draws
        v = _normalize(weight.data.new_empty(w).normal_(0, 1), fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Old-style spectral normalisation: parameter <name>_orig, buffers <name>_u and
    <name>_v, and <name> recomputed before every forward (dim: 1 for ConvTranspose, else
    0)."""
    if dim is None:
        from handgrad.nn.conv import ConvTranspose1d, ConvTranspose2d
        dim = 1 if isinstance(module, ConvTranspose1d | ConvTranspose2d) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo spectral_norm: <name> is a Parameter again holding the current weight."""
    _remove_hook(module, SpectralNorm, name, "spectral_norm").remove(module)
    return module
