"""Embedding lookup: rows of a weight matrix picked by integer indices, with the
gradient scattered back into the rows that were used; and embedding_bag, the sum, mean
or max of the rows of each bag of indices, one fused Function (EmbeddingBag) with a
hand-derived backward.

Left out: sparse gradients (sparse=True), nested-tensor input of embedding_bag; the
modules (handgrad/nn/sparse.py).
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


class EmbeddingBag(Function):
    """out[b] = reduce over the entries i of bag b of w_i W[idx_i], for b < B, with
    reduce = sum, mean (sum / n_b, n_b the entries of bag b) or max (elementwise);
    w_i = per_sample_weights[i] (sum mode only) or 1. An empty bag gives zeros.

    Entries that belong to no bag (padding_idx, or after the last offset with
    include_last_offset) arrive with bag id B: they are summed into a spare row B of
    the output that is dropped, so there is no per-bag Python loop and no masking of
    the inputs.

    With g = d loss / d out and g_B = 0 for the spare row:
        sum:   dW[r] = sum over i with idx_i = r of w_i g[bag_i]
               dw_i  = g[bag_i] . W[idx_i]
        mean:  dW[r] = sum over i with idx_i = r of g[bag_i] / n_{bag_i}
        max:   dW[idx_{i*}, d] += g[b, d] where i* is the entry of bag b whose value won
               the max in column d (the first one, on ties)
    scale_grad_by_freq (sum and mean) divides entry i's contribution to dW by the
    number of times idx_i occurs in the input, as torch documents it (and as
    F.embedding(..., scale_grad_by_freq=True) summed per bag gives; torch 2.x's CPU
    kernel for embedding_bag divides some rows by another row's count instead).
    """

    name = "embedding_bag"

    @staticmethod
    def forward(ctx, weight, per_sample_weights, indices, bags, num_bags, mode,
                scale_grad_by_freq=False):
        n, dim = indices.shape[0], weight.shape[1]
        rows = weight.index_select(0, indices)  # (N, D)
        counts = torch.bincount(bags, minlength=num_bags + 1)  # entries per bag, + spare
        ctx.options = (weight.shape, num_bags, mode, scale_grad_by_freq)
        if mode == "max":
            spread = bags.unsqueeze(1).expand(n, dim)
            best = torch.full((num_bags + 1, dim), -torch.inf, dtype=rows.dtype,
                              device=rows.device).scatter_reduce_(0, spread, rows, "amax")
            # the first entry of each bag reaching the max, per column (n where none)
            position = torch.arange(n, device=rows.device).unsqueeze(1).expand(n, dim)
            position = torch.where(rows == best[bags], position, n)
            winner = torch.full((num_bags + 1, dim), n, dtype=torch.long,
                                device=rows.device).scatter_reduce_(0, spread, position,
                                                                    "amin")[:num_bags]
            ctx.save_for_backward(indices, winner)
            out = best[:num_bags]
            return torch.where(counts[:num_bags].unsqueeze(1) > 0, out, 0)
        need_w, need_psw = ctx.needs_input_grad[:2]
        ctx.save_for_backward(indices, bags, counts, per_sample_weights if need_w else None,
                              weight if need_psw else None)
        if per_sample_weights is not None:
            rows = rows * per_sample_weights.unsqueeze(1)
        out = torch.zeros((num_bags + 1, dim), dtype=rows.dtype, device=rows.device)
        out = out.index_add_(0, bags, rows)[:num_bags]
        if mode == "mean":
            out = out / counts[:num_bags].clamp(min=1).unsqueeze(1).to(out.dtype)
        return out

    @staticmethod
    def backward(ctx, g):
        shape, num_bags, mode, scale_grad_by_freq = ctx.options
        need_w, need_psw = ctx.needs_input_grad[:2]
        if mode == "max":
            indices, winner = ctx.saved_tensors
            found = winner < indices.shape[0]  # (B, D): false for empty bags
            column = torch.arange(shape[1], device=g.device).expand_as(winner)
            targets = indices[winner[found]] * shape[1] + column[found]
            dw = torch.zeros(shape[0] * shape[1], dtype=g.dtype, device=g.device)
            return dw.index_add_(0, targets, g[found]).view(shape), None, None, None, \
                None, None, None
        indices, bags, counts, per_sample_weights, weight = ctx.saved_tensors
        spread = torch.cat([g, g.new_zeros((1, shape[1]))]).index_select(0, bags)  # (N, D)
        if mode == "mean":
            spread = spread / counts.clamp(min=1)[bags].unsqueeze(1).to(g.dtype)
        dw = dpsw = None
        if need_psw:
            dpsw = (spread * weight.index_select(0, indices)).sum(1)
        if need_w:
            if per_sample_weights is not None:
                spread = spread * per_sample_weights.unsqueeze(1)
            if scale_grad_by_freq:
                frequency = torch.bincount(indices, minlength=shape[0])[indices]
                spread = spread / frequency.unsqueeze(1).to(g.dtype)
            dw = torch.zeros(shape, dtype=g.dtype, device=g.device).index_add_(0, indices,
                                                                               spread)
        return dw, dpsw, None, None, None, None, None


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


def _bags_of(op: str, offsets, include_last_offset: bool, count: int):
    """(bag id of each of the `count` entries, number of bags) from offsets. With
    include_last_offset the last offset ends the last bag; entries after it (torch
    documents that there are none, and its kernels disagree on them) get the spare id."""
    if offsets.dtype.is_floating_point or offsets.dtype == torch.bool:
        raise HandgradError(f"{op}: offsets must be integers (int64 or int32), got "
                            f"{str(offsets.dtype).replace('torch.', '')}")
    offsets = offsets.to(torch.long)
    if offsets.numel() and offsets[0].item() != 0:
        raise HandgradError(
            f"{op}: offsets[0] has to be 0, i.e., the first sequence in the mini-batch has "
            f"to start from position 0. However, got {offsets[0].item()}")
    if offsets.numel() and offsets[-1].item() > count:
        raise HandgradError(f"{op}: offsets[-1] can not be greater than input's length "
                            f"{count} but got offsets[-1] of {offsets[-1].item()}")
    if offsets.numel() > 1 and bool((offsets[1:] < offsets[:-1]).any()):
        raise HandgradError(f"{op}: offsets must be non-decreasing (each bag starts where "
                            f"the one before ends or later), got {offsets.tolist()}")
    starts = offsets[:-1] if include_last_offset and offsets.numel() else offsets
    num_bags = starts.numel()
    positions = torch.arange(count, device=offsets.device)
    bags = torch.searchsorted(starts, positions, right=True) - 1
    if include_last_offset and offsets.numel():
        bags = torch.where(positions < offsets[-1], bags, num_bags)
    return bags, num_bags


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2,
                  scale_grad_by_freq=False, mode="mean", sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """PyTorch's nn.functional.embedding_bag: the sum, mean or max of the embeddings of
    each bag of indices, without forming the (N, D) lookup as a graph node.

    input (B, N) is B bags of N indices each (offsets must be None); input (N,) with
    offsets (B,) is the bags input[offsets[b]:offsets[b + 1]] (with include_last_offset,
    offsets has B + 1 entries and the last one ends the last bag). per_sample_weights
    (input's shape) scale each entry, in sum mode only. Entries equal to padding_idx
    are left out of their bag (and of its count, for the mean). Returns (B, D)."""
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(
            f"embedding_bag: If per_sample_weights ({tuple(per_sample_weights.shape)}) is not "
            f"None, then it must have the same shape as the input ({tuple(input.shape)})")
    if weight.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension "
                         f"{weight.ndim}")
    if input.dtype.is_floating_point or input.dtype == torch.bool:
        raise HandgradError(
            f"embedding_bag: indices must be integers (int64 or int32), got "
            f"{str(input.dtype).replace('torch.', '')} of shape {tuple(input.shape)}; use "
            ".long()")
    raw = input.data.to(torch.long)
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is "
                             "treated is a mini-batch of fixed length sequences. However, "
                             f"found offsets of type {type(offsets)}")
        num_bags, length = raw.shape
        bags = torch.arange(num_bags, device=raw.device).repeat_interleave(length)
        raw = raw.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        bags, num_bags = _bags_of("embedding_bag", getattr(offsets, "data", offsets),
                                  include_last_offset, raw.shape[0])
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{input.ndim}")
    if mode not in ("sum", "mean", "max"):
        raise ValueError("mode has to be one of sum, mean or max")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    if sparse:
        raise NotImplementedError("embedding_bag: sparse gradients are not supported; use "
                                  "sparse=False")
    bad = (raw < 0) | (raw >= weight.shape[0])
    if bool(bad.any()):
        at = int(bad.nonzero()[0, 0])
        raise HandgradError(f"embedding_bag: index {at} of input takes value "
                            f"{raw[at].item()} which is not in the valid range [0, "
                            f"{weight.shape[0]}); indices of shape {tuple(input.shape)}")
    if max_norm is not None:
        with no_grad():
            _renorm_(weight.data, raw, max_norm, norm_type)
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(
            "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
            f"supported for mode='sum' (got mode='{mode}'). Please open a feature request "
            "on GitHub.")
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += weight.shape[0]
        bags = torch.where(raw == padding_idx, num_bags, bags)  # to the spare bag
    return EmbeddingBag.apply(weight, per_sample_weights, raw, bags, num_bags, mode,
                              scale_grad_by_freq)
