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
    orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True)
        an (semi-)orthogonal weight, from an unconstrained original X (tall: n >= k,
        a wide weight is handled transposed):
        "matrix_exp"  Q = exp(A)[:, :k],  A = S - S^T, S = [tril(X) | 0] (n x n)
        "cayley"      Q = (I - A/2)^{-1} (I + A/2) [:, :k]
        "householder" Q = H_1 ... H_k I[:, :k], H_i = I - tau_i v_i v_i^T, v_i the
                      i-th column of tril(X, -1) with a 1 on the diagonal, tau_i =
                      2 / |v_i|^2; times the signs (trunc) of X's diagonal
        default: matrix_exp for square weights, householder otherwise. With
        use_trivialization (default) the result is base @ Q, `base` a buffer that
        assigning the weight sets (then original is -I, so Q starts at I).

weight_norm, spectral_norm and the householder map are composed of handgrad operations
(norms, matmul, division), whose backward is proven, so there is no new gradient to
derive: d sigma / dW = u v^T follows from the matmul and dot; u and v are constants of
the graph, as in torch. matrix_exp and cayley use the Functions of
handgrad/ops/matrix_functions.py (MatrixExp, Solve), whose backward is derived there.

Left out: complex weights, and the state_dict hook that loads torch's old weight_g /
weight_v keys into weight_norm (handgrad has no load_state_dict hooks; rename those keys
to parametrizations.weight.original0/1).
"""

from __future__ import annotations

import torch

from handgrad._creation import eye
from handgrad._functions import cat
from handgrad._tensor import Tensor
from handgrad.autograd import no_grad
from handgrad.linalg import vector_norm
from handgrad.nn.module import Module
from handgrad.nn.utils import parametrize
from handgrad.ops.matrix_functions import MatrixExp, Solve

__all__ = ["weight_norm", "spectral_norm", "orthogonal"]


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


def _householder_product(reflectors: Tensor, tau: Tensor) -> Tensor:
    """torch.linalg.householder_product(A, tau) for A (..., n, k) below its diagonal:
    the first k columns of H_1 H_2 ... H_k, H_i = I - tau_i v_i v_i^T, v_i = column i of
    A with a 1 on the diagonal (A is used below the diagonal only). Composed of handgrad
    matmuls, so its gradient is the chain of theirs (k small steps of O(n k) each)."""
    n, k = reflectors.shape[-2:]
    identity = eye(n, k, dtype=reflectors.dtype, device=reflectors.device)
    vectors = reflectors.tril(-1) + identity  # (..., n, k)
    q = identity.expand(*reflectors.shape)
    for i in range(k - 1, -1, -1):  # q <- H_i q, the last reflection applied first
        v = vectors[..., :, i:i + 1]  # (..., n, 1)
        q = q - tau[..., i:i + 1].unsqueeze(-1) * (v @ (v.mT @ q))
    return q


def _is_orthogonal(q: torch.Tensor) -> bool:
    n, k = q.shape[-2:]
    identity = torch.eye(k, dtype=q.dtype, device=q.device)
    return torch.allclose(q.mH @ q, identity, atol=10.0 * n * torch.finfo(q.dtype).eps)


def _make_orthogonal(a: torch.Tensor) -> torch.Tensor:
    """The Q of A = QR with R's diagonal made positive (raw tensors)."""
    reflectors, tau = torch.geqrf(a)
    q = torch.linalg.householder_product(reflectors, tau)
    return q * reflectors.diagonal(dim1=-2, dim2=-1).sgn().unsqueeze(-2)


_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


class _Orthogonal(Module):
    """An orthogonal (tall) or semi-orthogonal matrix from an unconstrained one; see the
    module docstring for the three maps."""

    def __init__(self, weight: Tensor, orthogonal_map: str, *, use_trivialization=True):
        super().__init__()
        if weight.data.is_complex():
            raise NotImplementedError("orthogonal: complex weights are not supported by "
                                      "handgrad")
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        n, k = X.shape[-2:]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = X.tril()
            if n != k:  # embed into a square matrix
                X = cat([X, X.new_zeros(*X.shape[:-2], n, n - k)], -1)
            A = X - X.mT  # skew-symmetric
            if self.orthogonal_map == "matrix_exp":
                Q = MatrixExp.apply(A)
            else:  # the Cayley retraction (I - A/2)^{-1} (I + A/2)
                identity = eye(n, dtype=A.dtype, device=A.device)
                Q = Solve.apply(identity - 0.5 * A, identity + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(-1)
            tau = 2.0 / (1.0 + (A * A).sum(-2))
            Q = _householder_product(A, tau)
            # the signs on X's diagonal (truncated to integers, as torch) are constants
            Q = Q * Tensor(X.data.diagonal(dim1=-2, dim2=-1).trunc().unsqueeze(-2))
        if "base" in self._buffers:
            Q = self.base @ Q
        if transposed:
            Q = Q.mT
        return Q

    def right_inverse(self, Q: Tensor) -> Tensor:
        """An original X whose forward is Q: with a trivialization, base = Q (made
        orthogonal, completed to n x n with random columns when tall) and X = -I;
        without, the householder reflectors of Q's QR (the other maps have none)."""
        if Q.shape != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                             f"Got a tensor of shape {Q.shape}.")
        with no_grad():
            q = initial = Q.data
            n, k = q.shape[-2:]
            transpose = n < k
            if transpose:
                q = q.mT
                n, k = k, n
            if "base" not in self._buffers:
                if self.orthogonal_map in ("matrix_exp", "cayley"):
                    raise NotImplementedError(
                        "It is not possible to assign to the matrix exponential or the Cayley "
                        "parametrizations when use_trivialization=False.")
                reflectors, tau = torch.geqrf(q)
                # diag(R) > 0 in the decomposition; a skipped reflection (tau == 0) is -1
                reflectors.diagonal(dim1=-2, dim2=-1).sign_()
                reflectors.diagonal(dim1=-2, dim2=-1)[tau == 0.0] *= -1
                return Tensor(reflectors.mT if transpose else reflectors)
            if n == k:
                q = q.clone() if _is_orthogonal(q) else _make_orthogonal(q)
            else:  # complete q into an n x n orthogonal matrix (torch's global generator)
                extra = torch.randn(*(q.shape[:-2] + (n, n - k)), dtype=q.dtype,
                                    device=q.device)
                q = _make_orthogonal(torch.cat([q, extra], dim=-1))
            self.base = q
            negative_identity = torch.zeros_like(initial)
            negative_identity.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
            return Tensor(negative_identity)


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Constrain module.<name> (a matrix or a batch of them) to be orthogonal, or
    semi-orthogonal when not square: W^T W = I (tall) or W W^T = I (wide). The map is
    "matrix_exp" (default for square), "cayley" or "householder" (default otherwise);
    see the module docstring. Registering keeps the weight's value (made orthogonal)
    when use_trivialization=True."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError("Expected a matrix or batch of matrices. "
                         f"Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        square = weight.shape[-2] == weight.shape[-1]
        orthogonal_map = "matrix_exp" if square or weight.data.is_complex() else "householder"
    if orthogonal_map not in _ORTHOGONAL_MAPS:
        raise ValueError('orthogonal_map has to be one of "matrix_exp", "cayley", '
                         f'"householder". Got: {orthogonal_map}')
    parametrize.register_parametrization(
        module, name, _Orthogonal(weight, orthogonal_map,
                                  use_trivialization=use_trivialization), unsafe=True)
    return module
