"""Embedding lookup: rows of a weight matrix picked by integer indices, with the
gradient scattered back into the rows that were used.

Left out: sparse gradients (sparse=True), EmbeddingBag; the module
(handgrad/nn/sparse.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function, HandgradError, no_grad


class Embedding(Function):
    """out[..., :] = W[idx[...], :];   dW[r] = sum of g over the positions where idx == r
    (0 for r == padding_idx; divided by the count of r in idx with scale_grad_by_freq)."""

    name = "embedding"

    @staticmethod
    def forward(ctx, weight, indices, padding_idx=None, scale_grad_by_freq=False):
        flat = indices.reshape(-1)
        try:
            rows = weight.index_select(0, flat)
        except (RuntimeError, IndexError):
            bad = flat[(flat < 0) | (flat >= weight.shape[0])]
            raise HandgradError(
                f"embedding: index {bad[0].item() if bad.numel() else '?'} is out of range "
                f"for {weight.shape[0]} embeddings (valid indices: 0 to "
                f"{weight.shape[0] - 1}); indices of shape {tuple(indices.shape)}") from None
        ctx.save_for_backward(flat)
        ctx.options = (weight.shape, padding_idx, scale_grad_by_freq)
        return rows.reshape(*indices.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, g):
        (flat,) = ctx.saved_tensors
        shape, padding_idx, scale_grad_by_freq = ctx.options
        g = g.reshape(-1, shape[1])
        if scale_grad_by_freq:
            counts = torch.bincount(flat, minlength=shape[0])
            g = g / counts[flat].unsqueeze(1).to(g.dtype)
        if padding_idx is not None:
            g = g.masked_fill((flat == padding_idx).unsqueeze(1), 0)
        dw = torch.zeros(shape, dtype=g.dtype, device=g.device).index_add_(0, flat, g)
        return dw, None, None, None


def _renorm_(weight, flat, max_norm, norm_type) -> None:
    """Rescale, in place, the used rows whose norm exceeds max_norm (torch's
    embedding_renorm_: no gradient flows through this)."""
    rows = torch.unique(flat)
    norms = torch.linalg.vector_norm(weight[rows], ord=norm_type, dim=1)
    scale = torch.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    weight[rows] *= scale.unsqueeze(1)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """PyTorch's nn.functional.embedding: weight[input] (input: integer indices of any shape,
    weight: (num_embeddings, embedding_dim))."""
    if input.dtype.is_floating_point or input.dtype == torch.bool:
        raise HandgradError(
            f"embedding: indices must be integers (int64 or int32), got "
            f"{str(input.dtype).replace('torch.', '')} of shape {tuple(input.shape)}; use "
            ".long()")
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported; use "
                                  "sparse=False")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    if max_norm is not None:
        with no_grad():
            _renorm_(weight.data, input.data.reshape(-1), max_norm, norm_type)
    return Embedding.apply(weight, input, padding_idx, scale_grad_by_freq)
