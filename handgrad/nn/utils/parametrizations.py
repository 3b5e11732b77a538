"""nn.utils.parametrizations (torch's names and semantics): weight normalisation and
spectral normalisation as parametrizations (nn/utils/parametrize.py), so a layer keeps
its `weight` attribute and the stored tensors live under
`parametrizations.weight.original*` in the state_dict, exactly torch's keys.

    weight_norm(module, name="weight", dim=0)
        w = g * v / ||v||   (the norm over every dim but `dim`; dim=None: over all)
        original0 = g (the norms, keeping `dim`), original1 = v
    spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None)
        w = W / sigma,  sigma = u^T W_mat v  (W_mat: W with `dim` first, flattened to 2-D)
        u, v: buffers `_u`, `_v` of the parametrization, estimates of the first singular
        vectors, refined by power iteration (u <- W v / |W v|, v <- W^T u / |W^T u|) at
        every access in training mode; a 1-D weight is divided by its norm instead.

Both are composed of handgrad operations (norms, matmul, division), whose backward is
proven, so there is no new gradient to derive: d sigma / dW = u v^T follows from the
matmul and dot; u and v are constants of the graph, as in torch.

Left out: orthogonal (the Cayley / matrix_exp / Householder parametrization), and the
state_dict hook that loads torch's old weight_g / weight_v keys into weight_norm (handgrad
has no load_state_dict hooks; rename those keys to parametrizations.weight.original0/1).
"""

from __future__ import annotations

import torch

from handgrad._tensor import Tensor
from handgrad.linalg import vector_norm
from handgrad.nn.module import Module
from handgrad.nn.utils import parametrize

__all__ = ["weight_norm", "spectral_norm"]


def _norm_except_dim(v: Tensor, dim: int) -> Tensor:
    """torch.norm_except_dim(v, 2, dim): the 2-norm over every dim but `dim`, keeping
    v's rank (size 1 on the reduced dims); dim == -1 means over all of v (a 0-d result)."""
    if dim == -1:
        return vector_norm(v)
    dim = dim % v.ndim
    return vector_norm(v, 2, tuple(d for d in range(v.ndim) if d != dim), keepdim=True)


class _WeightNorm(Module):
    """w = g * v / ||v||, ||v|| over every dim but `dim` (all dims when dim is None).

    right_inverse(w) = (||w||, w), so registering it keeps the weight's value."""

    def __init__(self, dim: int | None = 0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / _norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return _norm_except_dim(weight, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize module.<name> as g * v / ||v|| (Salimans & Kingma, 2016): the
    direction v and the length g are learned separately. dim=0 normalises each output
    row of a Linear or Conv weight; dim=None the whole tensor. The new parameters are
    module.parametrizations.<name>.original0 (g) and .original1 (v): create the optimizer
    after calling this."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


def _normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """x / max(||x||, eps) on raw tensors (torch's F.normalize of a vector)."""
    return x / torch.linalg.vector_norm(x, 2, 0, keepdim=True).clamp_min(eps).expand_as(x)


class _SpectralNorm(Module):
    """W / sigma(W), sigma the largest singular value of W_mat (W with `dim` moved first
    and flattened to 2-D), estimated by power iteration with the buffers _u and _v."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError("Dimension out of range (expected to be in range of "
                             f"[-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:  # a vector needs no estimate: its norm is its only singular value
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight.data)
            h, w = weight_mat.shape
            u = weight_mat.new_empty(h).normal_(0, 1)  # torch's draws, in torch's order
            v = weight_mat.new_empty(w).normal_(0, 1)
            self.register_buffer("_u", _normalize(u, self.eps))
            self.register_buffer("_v", _normalize(v, self.eps))
            self._power_method(weight_mat, 15)  # start from reasonable u, v

    def _reshape_weight_to_matrix(self, weight):
        """W with `dim` first, flattened to (W.shape[dim], -1); raw or handgrad."""
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim)
                                                if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, weight_mat: torch.Tensor, n_power_iterations: int) -> None:
        """u <- normalize(W v), v <- normalize(W^T u), in place in the buffers (raw
        tensors: nothing is recorded for backward)."""
        u, v = self._u.data, self._v.data
        for _ in range(n_power_iterations):
            u.copy_(_normalize(torch.mv(weight_mat, v), self.eps))
            v.copy_(_normalize(torch.mv(weight_mat.H, u), self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return weight / vector_norm(weight, 2, 0, keepdim=True).clamp_min(self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)  # (h, w), a graph node
        if self.training:
            self._power_method(weight_mat.data, self.n_power_iterations)
        # copies, so a later power iteration cannot change what this graph saved
        u, v = Tensor(self._u.data.clone()), Tensor(self._v.data.clone())
        sigma = u.dot(weight_mat.mv(v))  # u^T W v
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Reparametrize module.<name> as W / sigma(W) (Miyato et al., 2018), sigma the
    spectral norm estimated by `n_power_iterations` steps of power iteration per access
    in training mode (15 at registration). dim defaults to 1 for ConvTranspose layers
    (their output channels), 0 otherwise. W stays module.parametrizations.<name>.original;
    the estimates are the buffers parametrizations.<name>.0._u and ._v."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        from handgrad.nn.conv import ConvTranspose1d, ConvTranspose2d
        dim = 1 if isinstance(module, ConvTranspose1d | ConvTranspose2d) else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
