"""Matrix product with torch.matmul's rules (1-D, 2-D, batched, broadcast batches).

Backward: for C = A @ B,  dA = dC @ B^T  and  dB = A^T @ dC. A 1-D left operand acts as a
row (1, k) and a 1-D right operand as a column (k, 1); broadcast batch dims are summed
back with `unbroadcast`.
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function, HandgradError, unbroadcast


class Matmul(Function):
    """out = a @ b;  da = g @ b^T,  db = a^T @ g (batch dims unbroadcast)."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise HandgradError(
                f"matmul: both inputs need at least 1 dimension, got shapes {tuple(a.shape)} "
                f"and {tuple(b.shape)}; use * for multiplying by a scalar")
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise HandgradError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                f"(inner sizes {k_a} and {k_b} differ); transpose or reshape one of them")
        na, nb = ctx.needs_input_grad
        ctx.save_for_backward(a if nb else None, b if na else None)
        ctx.shapes = (a.shape, b.shape)
        return torch.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        shape_a, shape_b = ctx.shapes
        na, nb = ctx.needs_input_grad
        if len(shape_b) == 1:
            g = g.unsqueeze(-1)
        if len(shape_a) == 1:
            g = g.unsqueeze(-2)
        ga = gb = None
        if na:
            b2 = b.unsqueeze(-1) if b.ndim == 1 else b
            ga = g @ b2.mT
            ga = unbroadcast(ga, (1, shape_a[0]) if len(shape_a) == 1 else shape_a)
            ga = ga.reshape(shape_a)
        if nb:
            a2 = a.unsqueeze(0) if a.ndim == 1 else a
            if len(shape_b) <= 2 and a2.ndim > 2:
                # (..., m, k) @ (k, n): fold the batch into rows instead of summing
                # a (batch, k, n) stack of products.
                gb = a2.reshape(-1, a2.shape[-1]).mT @ g.reshape(-1, g.shape[-1])
            else:
                gb = unbroadcast(a2.mT @ g, (shape_b[0], 1) if len(shape_b) == 1 else shape_b)
            gb = gb.reshape(shape_b)
        return ga, gb
