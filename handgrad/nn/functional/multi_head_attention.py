"""multi_head_attention_forward: the whole of nn.MultiheadAttention's forward as a function,
with torch.nn.functional's signature, semantics, mask conventions and errors.

    multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
        in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
        out_proj_weight, out_proj_bias, training=True, key_padding_mask=None,
        need_weights=True, attn_mask=None, use_separate_proj_weight=False,
        q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
        static_v=None, average_attn_weights=True, is_causal=False) -> (output, weights)

Shapes (L target length, S source length, N batch, E embed_dim, H heads, d = E / H):
query (L, N, E) or unbatched (L, E); key, value (S, N, kdim / vdim) or (S, kdim / vdim);
output like query; weights (N, L, S) averaged over heads, (N, H, L, S) per head, without
the N for unbatched input, or None when need_weights=False.

The steps, each an existing fused Function or primitive (so no Function of its own here
and no registry entry: every gradient comes from linear, matmul, softmax, dropout,
cat and the views):
  1. in-projection: q = query W_q^T + b_q, k = key W_k^T + b_k, v = value W_v^T + b_v,
     three linears with the row blocks of the packed (3E, E) in_proj_weight (or with
     q_proj_weight, k_proj_weight, v_proj_weight);
  2. bias_k / bias_v append one learned key / value to every sequence (S -> S + 1), and
     add_zero_attn one zero key / value (S -> S + 1); the masks get a column of 0
     ("may attend") for each;
  3. the heads: (L, N, E) -> (N, H, L, d);
  4. attention per head: softmax(q k^T / sqrt(d) + mask) v. With need_weights=True the
     weights are computed explicitly (matmul, softmax, dropout, matmul: the weights are
     returned, after dropout, as torch returns them); with need_weights=False the work
     goes to F.scaled_dot_product_attention (one fused Function);
  5. out-projection: the heads side by side, (L, N, E), then out W_o^T + b_o.

Masks (torch's conventions, which are the opposite of scaled_dot_product_attention's
bool masks): a bool attn_mask or key_padding_mask is True where attention is NOT allowed;
a float mask is added to the scores (0 allows, -inf forbids). attn_mask is (L, S) for
every batch entry and head, or (N * H, L, S); key_padding_mask is (N, S) (or (S,)
unbatched) and masks whole key positions. Both become float masks of the query's dtype
(True -> -inf) and are added together, as torch does; a bool mask mixed with a float
one is allowed with torch's deprecation warning and gives torch's result. Integer masks
are refused. A query whose every key is masked has no defined softmax: as in torch, it
comes out NaN with need_weights=True, and as a zero attention output (so out_proj's bias)
with need_weights=False (scaled_dot_product_attention's convention). Masks are
constants: no gradient flows into a float mask.

is_causal is a hint that attn_mask is the causal mask, with torch's rules: attn_mask must
still be given (RuntimeError otherwise); with need_weights=False and no key_padding_mask,
the mask is dropped and the attention runs causally (top-left aligned); otherwise the
given attn_mask is what counts.

Left out: torch's inference fast path (torch._native_multi_head_attention: the same
values up to rounding), nested tensors, quantisation.
"""

from __future__ import annotations

import math
import warnings

import torch

from handgrad._functions import cat
from handgrad._tensor import Tensor, to_torch
from handgrad.nn.functional.attention import scaled_dot_product_attention
from handgrad.nn.functional.dropout import dropout
from handgrad.nn.functional.linear import linear

__all__ = ["multi_head_attention_forward", "multi_head_attention", "canonical_mask"]

_WHO = "multi_head_attention_forward"


def canonical_mask(mask, mask_name: str, other_type, other_name: str, target_type,
                   check_other: bool = True):
    """A bool or float mask as a float torch tensor of `target_type` (bool True ->
    -inf, False -> 0; a float mask as it is, in target_type), or None.

    Warns, with torch's words, when `other_type` (the dtype of the mask it will be added
    to) differs; refuses masks that are neither bool nor floating (AssertionError, as
    torch). Masks carry no gradient: a handgrad mask is read through its data."""
    if mask is None:
        return None
    mask = to_torch(mask, f"{_WHO}: {mask_name}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise AssertionError(
            f"only bool and floating types of {mask_name} are supported, got a mask of "
            f"dtype {mask.dtype} and shape {tuple(mask.shape)}: give a bool mask (True = "
            "may not attend) or a float mask (added to the scores; -inf forbids)")
    if check_other and other_type is not None and mask.dtype != other_type:
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. "
                      "Use same type for both instead.", stacklevel=3)
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=target_type, device=mask.device).masked_fill_(
            mask, float("-inf"))
    return mask.to(target_type)


def _dtype_of(mask):
    return None if mask is None else to_torch(mask).dtype


def _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads) -> bool:
    """torch's _mha_shape_check (AssertionError, as torch): is the input batched?"""
    def rank(x):
        return None if x is None else x.ndim

    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                f"{key.ndim}-D and {value.ndim}-D tensors respectively (query "
                f"{tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)})")
        if key_padding_mask is not None and rank(key_padding_mask) != 2:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D "
                f"(N, S) but found {rank(key_padding_mask)}-D tensor instead (shape "
                f"{tuple(key_padding_mask.shape)})")
        if attn_mask is not None and rank(attn_mask) not in (2, 3):
            raise AssertionError(
                "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                f"but found {rank(attn_mask)}-D tensor instead (shape "
                f"{tuple(attn_mask.shape)})")
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                f"{key.ndim}-D and {value.ndim}-D tensors respectively")
        if key_padding_mask is not None and rank(key_padding_mask) != 1:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D "
                f"(S,) but found {rank(key_padding_mask)}-D tensor instead")
        if attn_mask is not None:
            if rank(attn_mask) not in (2, 3):
                raise AssertionError(
                    "For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or "
                    f"3-D but found {rank(attn_mask)}-D tensor instead")
            expected = (num_heads, query.shape[0], key.shape[0])
            if rank(attn_mask) == 3 and tuple(attn_mask.shape) != expected:
                raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got "
                                     f"{tuple(attn_mask.shape)}")
        return False
    raise AssertionError("query should be unbatched 2D or batched 3D tensor but received "
                         f"{query.ndim}-D query tensor (shape {tuple(query.shape)})")


def _in_projection(query, key, value, embed_dim, in_proj_weight, in_proj_bias,
                   use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight):
    """(q, k, v) = the three input projections, each (*, E)."""
    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        # Three products with the weight's row blocks, also for self-attention: one product
        # chunked into q, k, v would cost, backward, a zero-filled (*, 3E) gradient per
        # chunk and their sum (6 % of an encoder layer's step); row blocks of the (3E, E)
        # weight cost that only at the weight's size.
        w_q, w_k, w_v = in_proj_weight.chunk(3)
        b_q, b_k, b_v = (None,) * 3 if in_proj_bias is None else in_proj_bias.chunk(3)
        return linear(query, w_q, b_q), linear(key, w_k, b_k), linear(value, w_v, b_v)
    for name, weight in (("q", q_proj_weight), ("k", k_proj_weight), ("v", v_proj_weight)):
        if weight is None:
            raise AssertionError(f"use_separate_proj_weight is True but {name}_proj_weight "
                                 "is None")
    widths = {"query": query.shape[-1], "key": key.shape[-1], "value": value.shape[-1]}
    b_q, b_k, b_v = (None,) * 3 if in_proj_bias is None else in_proj_bias.chunk(3)
    for name, weight, bias in (("query", q_proj_weight, b_q), ("key", k_proj_weight, b_k),
                               ("value", v_proj_weight, b_v)):
        expected = (embed_dim, widths[name])
        if tuple(weight.shape) != expected:
            raise AssertionError(f"expecting {name} weights shape of {expected}, but got "
                                 f"{tuple(weight.shape)}")
        if bias is not None and tuple(bias.shape) != (embed_dim,):
            raise AssertionError(f"expecting {name} bias shape of {(embed_dim,)}, but got "
                                 f"{tuple(bias.shape)}")
    return (linear(query, q_proj_weight, b_q), linear(key, k_proj_weight, b_k),
            linear(value, v_proj_weight, b_v))


def _append_column(mask):
    """A float mask with one more key column of 0 (may attend), as torch's pad(.., (0, 1))."""
    if mask is None:
        return None
    zeros = torch.zeros((*mask.shape[:-1], 1), dtype=mask.dtype, device=mask.device)
    return torch.cat([mask, zeros], dim=-1)


def _heads(x, num_heads, head_dim, batch_first):
    """(length, N, E), or (N, length, E) with batch_first, -> (N, H, length, d): a view."""
    if batch_first:
        bsz, length = x.shape[:2]
        return x.reshape(bsz, length, num_heads, head_dim).permute(0, 2, 1, 3)
    length, bsz = x.shape[:2]
    return x.reshape(length, bsz, num_heads, head_dim).permute(1, 2, 0, 3)


def _static(static, name, bsz, num_heads, head_dim):
    """A static key / value (N * H, S, d) as (N, H, S, d), after torch's checks."""
    if static.shape[0] != bsz * num_heads:
        raise AssertionError(f"expecting {name}.size(0) of {bsz * num_heads}, but got "
                             f"{static.shape[0]}")
    if static.shape[2] != head_dim:
        raise AssertionError(f"expecting {name}.size(2) of {head_dim}, but got "
                             f"{static.shape[2]}")
    return static.reshape(bsz, num_heads, static.shape[1], head_dim)


def _explicit_attention(q, k, v, mask, dropout_p):
    """(softmax(q k^T / sqrt(d) + mask) v, the weights) for (N, H, L, d) q and (N, H, S, d)
    k, v, with dropout on the weights (torch's need_weights=True path)."""
    scores = (q * math.sqrt(1.0 / q.shape[-1])) @ k.transpose(-2, -1)  # (N, H, L, S)
    if mask is not None:
        scores = scores + mask
    weights = scores.softmax(dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights @ v, weights  # (N, H, L, d), (N, H, L, S)


def multi_head_attention_forward(
        query, key, value, embed_dim_to_check: int, num_heads: int, in_proj_weight,
        in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
        out_proj_weight, out_proj_bias, training: bool = True, key_padding_mask=None,
        need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
        q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
        static_v=None, average_attn_weights: bool = True, is_causal: bool = False):
    """torch.nn.functional.multi_head_attention_forward: (output, weights or None).

    See the module docstring for the shapes, the steps and the mask conventions."""
    return multi_head_attention(
        query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
        bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training,
        key_padding_mask, need_weights, attn_mask, use_separate_proj_weight, q_proj_weight,
        k_proj_weight, v_proj_weight, static_k, static_v, average_attn_weights, is_causal)


def multi_head_attention(
        query, key, value, embed_dim_to_check: int, num_heads: int, in_proj_weight,
        in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
        out_proj_weight, out_proj_bias, training: bool = True, key_padding_mask=None,
        need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
        q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
        static_v=None, average_attn_weights: bool = True, is_causal: bool = False,
        batch_first: bool = False):
    """multi_head_attention_forward, also in the batch-first layout: with batch_first=True,
    query is (N, L, E), key and value (N, S, *) and the output (N, L, E), with no
    transposes of the inputs to (L, N, E) (what nn.MultiheadAttention(batch_first=True)
    calls: it saves a copy of every projection's input). The output has torch's strides,
    a transposed view of an (L, N, E) buffer, as torch's has."""
    seq_dim, batch_dim = (1, 0) if batch_first else (0, 1)
    batched = _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = (x.unsqueeze(batch_dim) for x in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape[seq_dim], query.shape[batch_dim], query.shape[2]
    src_len = key.shape[seq_dim]
    if key.shape[batch_dim] != bsz or value.shape[batch_dim] != bsz:
        raise RuntimeError(f"{_WHO}: query has batch size {bsz} but key and value "
                           f"{key.shape[batch_dim]} and {value.shape[batch_dim]} (query "
                           f"{tuple(query.shape)}, key {tuple(key.shape)}, value "
                           f"{tuple(value.shape)}, batch_first={batch_first})")

    key_padding_mask = canonical_mask(key_padding_mask, "key_padding_mask",
                                      _dtype_of(attn_mask), "attn_mask", query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                           "Transformer module method `generate_square_subsequent_mask` to "
                           "create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint stands for the mask: attention runs causally
    else:
        attn_mask = canonical_mask(attn_mask, "attn_mask", None, "", query.dtype,
                                   check_other=False)
        if key_padding_mask is not None:
            is_causal = False  # the mask merged with the padding is no longer causal

    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, "
                             f"but got {embed_dim} (query of shape {tuple(query.shape)})")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(f"key's sequence and batch dims {tuple(key.shape[:2])} do "
                                 f"not match value's {tuple(value.shape[:2])}")
    elif tuple(key.shape) != tuple(value.shape):
        raise AssertionError(f"key shape {tuple(key.shape)} does not match value shape "
                             f"{tuple(value.shape)}")

    q, k, v = _in_projection(query, key, value, embed_dim, in_proj_weight, in_proj_bias,
                             use_separate_proj_weight, q_proj_weight, k_proj_weight,
                             v_proj_weight)  # (L, N, E), (S, N, E), (S, N, E) or (N, ., E)

    if attn_mask is not None:  # as (1, 1, L, S) or (N, H, L, S)
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)},"
                                   f" but should be {(tgt_len, src_len)}.")
            attn_mask = attn_mask.reshape(1, 1, tgt_len, src_len)
        elif attn_mask.ndim == 3:
            expected = (bsz * num_heads, tgt_len, src_len)
            if tuple(attn_mask.shape) != expected:
                raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)},"
                                   f" but should be {expected}.")
            attn_mask = attn_mask.reshape(bsz, num_heads, tgt_len, src_len)
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")

    if bias_k is not None and bias_v is not None:
        if static_k is not None:
            raise AssertionError("bias cannot be added to static key.")
        if static_v is not None:
            raise AssertionError("bias cannot be added to static value.")
        shape = (bsz, 1, embed_dim) if batch_first else (1, bsz, embed_dim)
        k = cat([k, bias_k.expand(shape)], dim=seq_dim)  # S -> S + 1
        v = cat([v, bias_v.expand(shape)], dim=seq_dim)
        attn_mask = _append_column(attn_mask)
        key_padding_mask = _append_column(key_padding_mask)
    elif bias_k is not None:
        raise AssertionError("bias_k is set but bias_v is None")
    elif bias_v is not None:
        raise AssertionError("bias_v is set but bias_k is None")

    q = _heads(q, num_heads, head_dim, batch_first)  # (N, H, L, d)
    k = (_heads(k, num_heads, head_dim, batch_first) if static_k is None
         else _static(static_k, "static_k", bsz, num_heads, head_dim))  # (N, H, S, d)
    v = (_heads(v, num_heads, head_dim, batch_first) if static_v is None
         else _static(static_v, "static_v", bsz, num_heads, head_dim))

    if add_zero_attn:
        zeros = Tensor(torch.zeros((bsz, num_heads, 1, head_dim), dtype=k.dtype,
                                   device=k.device))
        k = cat([k, zeros], dim=2)  # (N, H, S + 1, d)
        v = cat([v, zeros], dim=2)
        attn_mask = _append_column(attn_mask)
        key_padding_mask = _append_column(key_padding_mask)
    src_len = k.shape[2]

    if key_padding_mask is not None:  # merged into attn_mask: (N, 1 or H, L or 1, S)
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            added = int(bias_k is not None) + int(add_zero_attn)  # the columns appended
            given = (key_padding_mask.shape[0], key_padding_mask.shape[1] - added)
            raise AssertionError(
                f"Expected key_padding_mask of shape (N, S) = {(bsz, src_len - added)} (S the "
                f"number of keys), but got {given}")
        padding = key_padding_mask.reshape(bsz, 1, 1, src_len)
        attn_mask = padding if attn_mask is None else attn_mask + padding

    if not training:
        dropout_p = 0.0
    mask = None if attn_mask is None else Tensor(attn_mask)
    if need_weights:
        out, weights = _explicit_attention(q, k, v, mask, dropout_p)
    else:
        out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                           is_causal=is_causal)  # (N, H, L, d)
        weights = None

    # the heads side by side as (L, N, E) in memory also with batch_first, whose output is
    # then the (N, L, E) transposed view torch returns: code after it sees torch's strides,
    # so a dropout on it (TransformerEncoderLayer's dropout1) draws torch's mask
    out = out.permute(2, 0, 1, 3).reshape(tgt_len, bsz, embed_dim)  # (L, N, E)
    out = linear(out, out_proj_weight, out_proj_bias)
    if batch_first:
        out = out.transpose(0, 1)  # (N, L, E)
    if weights is not None and average_attn_weights:
        weights = weights.mean(dim=1)  # (N, L, S)
    if not batched:
        out = out.squeeze(batch_dim)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights
