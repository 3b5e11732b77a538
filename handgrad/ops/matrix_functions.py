"""Matrix functions with hand-written backward, used by the orthogonal parametrization
(nn/utils/parametrizations.py): the matrix exponential and the solution of A X = B.
Both act on the matrices in the last two dims (any batch dims in front).

matrix_exp.  out = exp(A) = sum_k A^k / k!.  For a perturbation E,
  d exp(A)[E] = L(A, E) = int_0^1 exp(sA) E exp((1-s)A) ds (the Frechet derivative), and
  exp of the block matrix [[A, E], [0, A]] is [[exp(A), L(A, E)], [0, exp(A)]] (Van Loan,
  1978). The adjoint of E -> L(A, E) under <X, Y> = sum X * Y is E -> L(A^T, E)
  (transpose the integral), so the gradient is

      dA = L(A^T, g) = the top-right block of exp([[A^T, g], [0, A^T]]),

  one matrix exponential of twice the size, as torch's backward computes it.

solve.  X = A^{-1} B (A square and invertible, B of shape (..., n, k)). From A X = B:
  dA X + A dX = dB, so dX = A^{-1} (dB - dA X), and for an upstream gradient g,
  <g, dX> = <A^{-T} g, dB> - <A^{-T} g X^T, dA>:

      dB = A^{-T} g = solve(A^T, g),     dA = -dB X^T.

Left out: broadcasting between A's and B's batch dims in solve (give them the same
batch shape), vector right-hand sides and complex matrices. Public as handgrad.linalg.matrix_exp and
handgrad.linalg.solve (and torch.linalg.* of handgrad tensors reach them).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function

__all__ = ["MatrixExp", "Solve"]


def _check_square(op: str, a: torch.Tensor) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"{op}: A must be a batch of square matrices, got shape "
                           f"{tuple(a.shape)}")


class MatrixExp(Function):
    """out = exp(A);  dA = top-right block of exp([[A^T, g], [0, A^T]]) (module docstring)."""

    name = "matrix_exp"

    @staticmethod
    def forward(ctx, a):
        _check_square("matrix_exp", a)
        ctx.save_for_backward(a)
        return torch.linalg.matrix_exp(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        n = a.shape[-1]
        at = a.mT
        block = torch.cat([torch.cat([at, g], -1),
                           torch.cat([torch.zeros_like(at), at], -1)], -2)  # (..., 2n, 2n)
        return torch.linalg.matrix_exp(block)[..., :n, n:]


class Solve(Function):
    """X = A^{-1} B;  dB = solve(A^T, g),  dA = -dB X^T (module docstring)."""

    name = "solve"

    @staticmethod
    def forward(ctx, a, b):
        _check_square("solve", a)
        if b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1]:
            raise RuntimeError(f"solve: B must have shape (..., n, k) with A's batch dims and "
                               f"n; got A {tuple(a.shape)} and B {tuple(b.shape)}")
        x = torch.linalg.solve(a, b)
        ctx.save_for_backward(a, x)
        return x

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        grad_b = torch.linalg.solve(a.mT, g)
        grad_a = -(grad_b @ x.mT) if ctx.needs_input_grad[0] else None
        return grad_a, grad_b
