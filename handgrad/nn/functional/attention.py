"""Scaled dot-product attention, one fused Function (ScaledDotProductAttention) with a
hand-derived backward: the softmax backward fused with the matmuls around it.

    scores = q k^T * scale (+ bias),   P = softmax(scores),   out = dropout(P) v

with q: (..., L, E), k: (..., S, E), v: (..., S, Ev) -> out (..., L, Ev), as
torch.nn.functional.scaled_dot_product_attention (torch 2.13) computes it, with its
argument checks and their exception types:

* scale defaults to 1 / sqrt(E);
* attn_mask: bool (True = may attend; False becomes -inf) or float (added to the
  scores; it gets a gradient when it requires one, as in torch), of the query's dtype
  or float32, of any shape of at least two dims that broadcasts to the attention
  weights' shape (*batch of query and key, L, S) without growing it;
* is_causal: torch's top-left causal mask, query i may attend keys j <= i (also when
  L != S); together with attn_mask (folded into it) only where torch takes both:
  4-d query, key and value of one head size and no dropout;
* the batch dims of query, key and value broadcast against each other;
* enable_gqa: grouped-query attention, key and value heads (dim -3) repeated
  (repeat_interleave) to the query's number of heads;
* dropout_p > 0 drops entries of P (kept ones scaled by 1 / (1 - p)), always, as in
  torch: pass 0.0 in evaluation. The mask is `torch.empty(*batch, L, S).bernoulli_(1 -
  p)` on the query's device from the default generator (the batch dims those of the
  broadcast inputs); torch's own draw differs, so dropout is tested by statistics and
  against the same mask.

Rows where every key is masked (a bool mask row of all False, or -inf everywhere in a
float one) give a zero output row and zero gradients, as torch's CPU call returns
(its "safe softmax"), not NaN.

The computation is batched over all leading dims at once: the inputs are expanded to
the common batch shape and flattened to (N, L, E) for bmm / baddbmm (a causal mask or
a 2-d mask is the baddbmm's added input), the softmax runs in place on the scores, and
no Python loop runs over heads. With is_causal the query rows are cut in (at most)
CAUSAL_BLOCKS = 2 blocks, each multiplied only with the keys it may see: the upper
right quarter of the scores, all masked, is never computed (3/4 of the work; torch's
CPU flash kernel skips such blocks too). It works on any device.

Left out: half-precision accumulation in float32 (torch's math backend keeps float32
intermediates for float16 / bfloat16 inputs; here they stay in the input's dtype),
nested tensors, and the modules built on it (nn.MultiheadAttention and the
Transformer layers: handgrad/nn/attention.py, handgrad/nn/transformer.py).
"""

from __future__ import annotations

import functools
import math

import torch

from handgrad.autograd import Function, HandgradError

OP = "scaled_dot_product_attention"


def _query_blocks(length, source_length, is_causal):
    """[(start, end, key_end)]: the query rows start:end attend keys :key_end. Without a
    causal mask one block of everything; with it, query i sees keys j <= i only, so the
    rows are cut in CAUSAL_BLOCKS blocks and a block ending at row e needs keys :e (for
    two blocks 3/4 of the products and of the softmax's work)."""
    if not is_causal:
        return [(0, length, source_length)]
    count = max(1, min(CAUSAL_BLOCKS, length // 32))
    cuts = [length * b // count for b in range(count + 1)]
    return [(a, b, min(b, source_length)) for a, b in zip(cuts, cuts[1:])]


CAUSAL_BLOCKS = 2  # at most; blocks of fewer than 32 rows are not worth their kernels


@functools.lru_cache(maxsize=64)
def _causal_masks(start, rows, keys, dtype, device):
    """(bias, allowed) of query rows start:start + rows against keys :keys under
    torch's is_causal: bias 0 where key j <= row i else -inf; allowed 1 / 0 likewise.
    Cached (a training loop asks for the same few every step); never written to."""
    bias = torch.full((rows, keys), float("-inf"), dtype=dtype, device=device)
    allowed = torch.ones((rows, keys), dtype=dtype, device=device).tril_(start)
    return bias.triu_(start + 1), allowed


def _exp_floor(dtype):
    """log(tiny) + 1 of float64 for float64, else of float32 (half and bfloat16 are
    exponentiated in float32): exp of it is about 3 * tiny, and in the fast path."""
    wide = torch.float64 if dtype == torch.float64 else torch.float32
    return math.log(torch.finfo(wide).tiny) + 1


def _as_bias(mask, dtype):
    """A bool mask (True = may attend) as 0 / -inf in `dtype`; a float one in `dtype`."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(
            mask.logical_not(), float("-inf"))
    return mask.to(dtype)


class ScaledDotProductAttention(Function):
    """out = D(P) v,  P = softmax(Z),  Z = scale * q k^T + bias,  per batch entry,
    with q: (L, E), k: (S, E), v: (S, Ev); bias: the float mask (or the 0 / -inf of a
    bool or causal one); D(P) = P * M, M = Bernoulli(1 - p) / (1 - p) elementwise (M = 1
    without dropout).

    Backward, with G = d loss / d out (L, Ev):
        dv = D(P)^T G                                    (S, Ev)
        dD = G v^T,   dP = dD * M                        (L, S)
        dZ = P * (dP - rowsum(dP * P))                   (the softmax backward)
        dq = scale * dZ k,   dk = scale * dZ^T q,   dbias = dZ.
    The row sum needs no (L, S) product: rowsum_j(dP_ij P_ij) = sum_j sum_e G_ie v_je
    M_ij P_ij = sum_e G_ie (D(P) v)_ie = rowsum(G * out)_i, an (L, Ev) product, with
    dropout as without (FlashAttention's D = rowsum(dO * O)). A fully masked row has
    P = 0 there (see the module docstring), so dZ, dq and its share of dk, dv are 0.

    Inputs whose batch dims were broadcast get the gradient of the broadcast shape; the
    engine sums it down to theirs (as it does for a 2-d float mask's batch). Saved: the
    flattened q, k, v as each gradient needs them, P, M (with dropout) and the output.
    Causal query blocks (_query_blocks) run these formulas per block of rows on the keys
    that block sees; dk and dv sum the blocks' shares.
    """

    name = OP

    @staticmethod
    def forward(ctx, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=1.0):
        length, embed = q.shape[-2:]
        source_length, value_embed = k.shape[-2], v.shape[-1]
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        n = math.prod(batch)
        q3 = q.expand(*batch, length, embed).reshape(n, length, embed)
        k3 = k.expand(*batch, source_length, embed).reshape(n, source_length, embed)
        v3 = v.expand(*batch, source_length, value_embed).reshape(n, source_length,
                                                                  value_embed)
        keep = None
        if dropout_p > 0:  # drawn over (*batch, L, S) whatever the blocks
            if dropout_p >= 1:
                keep = torch.zeros((), dtype=q.dtype, device=q.device)
            else:
                keep = torch.empty((n, length, source_length), dtype=q.dtype,
                                   device=q.device).bernoulli_(1 - dropout_p).div_(1 - dropout_p)
        blocks = _query_blocks(length, source_length, is_causal)
        probs, outs = [], []
        for start, end, keys in blocks:
            # ---- bias: additive 0 / -inf (or float) mask; allowed: 1 where it may attend
            bias = allowed = None
            if is_causal:
                bias, allowed = _causal_masks(start, end - start, keys, q.dtype, q.device)
            elif attn_mask is not None:
                bias = _as_bias(attn_mask, q.dtype)
                allowed = (attn_mask if attn_mask.dtype == torch.bool
                           else attn_mask != float("-inf")).to(q.dtype)
            p = _softmax_(_scores(q3[:, start:end], k3[:, :keys], bias, scale, batch),
                          allowed, batch)
            probs.append(p)
            dropped = p if keep is None else p * _block(keep, start, end, keys)
            outs.append(torch.bmm(dropped, v3[:, :keys]))  # (N, rows, Ev)
        out = outs[0] if len(outs) == 1 else torch.cat(outs, 1)  # (N, L, Ev)
        need_q, need_k, need_v, need_mask = ctx.needs_input_grad[:4]
        need_scores = need_q or need_k or need_mask
        ctx.save_for_backward(q3 if need_k else None, k3 if need_q else None,
                              v3 if need_scores else None, keep,
                              out if need_scores else None, *probs)
        ctx.shapes = (batch, scale, blocks, source_length)
        return out.view(*batch, length, value_embed)

    @staticmethod
    def backward(ctx, g):
        q3, k3, v3, keep, out, *probs = ctx.saved_tensors
        batch, scale, blocks, source_length = ctx.shapes
        need_q, need_k, need_v, need_mask = ctx.needs_input_grad[:4]
        n, length = probs[0].shape[0], blocks[-1][1]
        g3 = g.reshape(n, length, g.shape[-1])  # (N, L, Ev)
        dq = dk = dv = dmask = None
        need_scores = need_q or need_k or need_mask
        if need_scores:
            rowsum = (g3 * out).sum(-1, keepdim=True)  # rowsum(dP * P) = rowsum(G * out)
        dq_rows = []
        # the last block sees the most keys: its products make dk and dv, the others add
        for (start, end, keys), p in reversed(list(zip(blocks, probs))):
            g_rows = g3[:, start:end]
            kept = None if keep is None else _block(keep, start, end, keys)
            if need_v:
                dropped = p if kept is None else p * kept
                dv = _accumulate(dv, dropped.mT, g_rows, keys, source_length)  # (N, S, Ev)
            if need_scores:
                dscores = torch.bmm(g_rows, v3[:, :keys].mT)  # dD, then dP  (N, rows, keys)
                if kept is not None:
                    dscores.mul_(kept)
                dscores.sub_(rowsum[:, start:end]).mul_(p)  # dZ
                if need_mask:  # no causal blocks with a mask: the one block is all of dZ
                    dmask = dscores.view(*batch, length, source_length)
                if need_q:
                    dq_rows.append(torch.bmm(dscores, k3[:, :keys]))  # (N, rows, E)
                if need_k:
                    dk = _accumulate(dk, dscores.mT, q3[:, start:end], keys, source_length)
        if need_v:
            dv = dv.view(*batch, source_length, g.shape[-1])
        if need_q:
            dq = dq_rows[0] if len(dq_rows) == 1 else torch.cat(dq_rows[::-1], 1)
            dq = dq.mul_(scale).view(*batch, length, k3.shape[-1])
        if need_k:
            dk = dk.mul_(scale).view(*batch, source_length, q3.shape[-1])
        return dq, dk, dv, dmask, None, None, None


def _scores(q_rows, keys, bias, scale, batch):
    """Z = scale q k^T + bias for the rows of one block (N, rows, keys); a bias without
    batch dims is baddbmm's added input, a batched one is added after."""
    if bias is not None and math.prod(bias.shape[:-2]) == 1:  # one (rows, keys) for all
        return torch.baddbmm(bias.reshape(bias.shape[-2:]), q_rows, keys.mT, alpha=scale)
    scores = torch.bmm(q_rows, keys.mT)
    if scale != 1.0:
        scores.mul_(scale)
    if bias is not None:
        scores.view(*batch, *scores.shape[-2:]).add_(bias)
    return scores


def _softmax_(scores, allowed, batch):
    """softmax over the last dim, in place: exp(Z - rowmax) / rowsum, rowmax over the
    keys a query may attend (the others are -inf).

    The exp's argument is clamped below at _exp_floor: torch's vectorised exp leaves its
    fast path under about -87 (float32), -inf included, and is then 3-5x slower; the
    masked entries, exp of the floor instead of 0, are zeroed by `allowed` after. A fully
    masked row has rowmax -inf (clamped to finite, so no NaN) and rowsum 0 (clamped to 1:
    every other row sums to >= 1, its maximum's exp(0)); so P = 0 there."""
    if not scores.shape[-1]:
        return scores
    rowmax = scores.amax(-1, keepdim=True).clamp_(min=torch.finfo(scores.dtype).min)
    probs = scores.sub_(rowmax).clamp_(min=_exp_floor(scores.dtype)).exp_()
    if allowed is not None:
        if allowed.ndim == 2:
            probs.mul_(allowed)
        else:
            probs.view(*batch, *probs.shape[-2:]).mul_(allowed)
    return probs.div_(probs.sum(-1, keepdim=True).clamp_(min=1.0))


def _block(keep, start, end, keys):
    """The dropout factors of one block's rows and keys (a 0-d zero for p = 1 as is)."""
    return keep if keep.ndim == 0 else keep[:, start:end, :keys]


def _accumulate(total, a, b, keys, source_length):
    """total[:, :keys] += a @ b, with total (N, S, *) made by the first call (zeros past
    `keys` when the first block does not see every key)."""
    if total is None:
        product = torch.bmm(a, b)
        if keys == source_length:
            return product
        total = product.new_zeros((product.shape[0], source_length, product.shape[-1]))
        total[:, :keys] = product
        return total
    total[:, :keys].add_(torch.bmm(a, b))  # (baddbmm_ into the strided view runs one
    return total                           # addmm per batch entry)


# ------------------------------------------------------------------ the functional form
def _check(query, key, value, attn_mask, dropout_p, is_causal):
    """torch's argument checks, with its exception types; messages name the op."""
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise HandgradError(
            f"{OP}: expected query, key and value to be at least 2-dimensional (..., L or "
            f"S, E), got query {tuple(query.shape)}, key {tuple(key.shape)}, value "
            f"{tuple(value.shape)}")
    if not query.dtype == key.dtype == value.dtype:
        raise HandgradError(
            f"{OP}: expected query, key and value to have the same dtype, got query "
            f"{query.dtype}, key {key.dtype}, value {value.dtype}; convert them with .to()")
    if not query.dtype.is_floating_point:
        raise HandgradError(f"{OP}: expected floating-point query, key and value, got "
                            f"{query.dtype}")
    if not query.device == key.device == value.device:
        raise HandgradError(
            f"{OP}: expected query, key and value on one device, got query on "
            f"{query.device}, key on {key.device}, value on {value.device}")
    if query.shape[-1] != key.shape[-1]:
        raise HandgradError(
            f"{OP}: query and key must have the same embedding size E (last dim), got "
            f"query {tuple(query.shape)} and key {tuple(key.shape)}")
    if key.shape[-2] != value.shape[-2]:
        raise HandgradError(
            f"{OP}: key and value must have the same sequence length S (dim -2), got key "
            f"{tuple(key.shape)} and value {tuple(value.shape)}")
    if attn_mask is not None and is_causal and not _mask_with_causal(query, key, value,
                                                                     dropout_p):
        raise HandgradError(f"{OP}: explicit attn_mask should not be set when is_causal=True "
                            "for these inputs (as in torch: only 4-d query, key and value of "
                            "one head size, without dropout, take both; else fold the causal "
                            "mask into attn_mask)")
    if dropout_p > 1:
        raise HandgradError(f"{OP}: dropout probability has to be between 0 and 1, but got "
                            f"{dropout_p}")


def _check_batch_and_mask(query, key, value, attn_mask):
    """The batch dims broadcast; the mask's dtype, device and shape (after enable_gqa)."""
    try:
        weight_batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2])
        torch.broadcast_shapes(weight_batch, value.shape[:-2])
    except RuntimeError:
        raise HandgradError(
            f"{OP}: the batch dims of query {tuple(query.shape)}, key {tuple(key.shape)} and "
            f"value {tuple(value.shape)} (all but the last two) do not broadcast; for "
            "grouped-query attention (fewer key/value heads) pass enable_gqa=True") from None
    if attn_mask is None:
        return
    if attn_mask.dtype not in (torch.bool, torch.float32, query.dtype):
        raise HandgradError(
            f"{OP}: expected attn_mask dtype to be bool or float or to match query dtype, "
            f"but got attn_mask.dtype: {attn_mask.dtype} and query.dtype: {query.dtype}")
    if attn_mask.device != query.device:
        raise HandgradError(f"{OP}: attn_mask is on {attn_mask.device}, query on "
                            f"{query.device}; move the mask with .to(query.device)")
    target = (*weight_batch, query.shape[-2], key.shape[-2])
    if attn_mask.ndim < 2:
        raise IndexError(
            f"{OP}: attn_mask must have at least 2 dims (L, S), got shape "
            f"{tuple(attn_mask.shape)}; expected a shape that broadcasts to {target}")
    shape = tuple(attn_mask.shape)
    if len(shape) > len(target) or any(
            m not in (1, t) for m, t in zip(reversed(shape), reversed(target))):
        raise HandgradError(
            f"{OP}: attn_mask of shape {shape} does not broadcast to the attention weights' "
            f"shape {target} (*batch of query and key, L, S); expected (L, S) = "
            f"{target[-2:]}, {target}, or a shape with 1s that broadcasts to it")


def _repeat_heads(x, repeats):
    """x (..., H, S, E) -> (..., H * repeats, S, E), each head repeated `repeats` times in
    a row (torch's repeat_interleave on dim -3), from differentiable primitives."""
    heads, rest = x.shape[-3], tuple(x.shape[-2:])
    lead = tuple(x.shape[:-3])
    return x.unsqueeze(-3).expand(*lead, heads, repeats, *rest).reshape(
        *lead, heads * repeats, *rest)


def _group_query(query, key, value):
    """enable_gqa: key and value heads repeated to the query's (torch's rule: both head
    counts divide the query's)."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.ndim < 3:
            raise IndexError(f"{OP}: enable_gqa=True needs a heads dim (-3) in {name}, got "
                             f"shape {tuple(t.shape)}")
    heads = query.shape[-3]
    if heads % key.shape[-3] or heads % value.shape[-3]:
        raise HandgradError(
            f"{OP}: number of heads in key and value must divide the number of heads in "
            f"query (enable_gqa=True), got query {tuple(query.shape)}, key "
            f"{tuple(key.shape)}, value {tuple(value.shape)}")
    if key.shape[-3] != heads:
        key = _repeat_heads(key, heads // key.shape[-3])
    if value.shape[-3] != heads:
        value = _repeat_heads(value, heads // value.shape[-3])
    return key, value


def _mask_with_causal(query, key, value, dropout_p):
    """Whether torch 2.13 takes attn_mask and is_causal together: its CPU flash kernel
    does (4-d inputs, one head size, no dropout); its math path refuses."""
    return (query.ndim == key.ndim == value.ndim == 4 and dropout_p == 0
            and query.shape[-1] == key.shape[-1] == value.shape[-1])


def _with_causal(attn_mask, length, source_length):
    """attn_mask and is_causal together, as torch 2.13 takes them: the mask folded with
    the top-left causal mask (bool: mask & tril; float: mask + (0 on and below the
    diagonal, -inf above), so a float mask keeps its gradient)."""
    from handgrad._tensor import Tensor

    raw = attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask
    allowed = torch.ones(length, source_length, dtype=torch.bool, device=raw.device).tril()
    if raw.dtype == torch.bool:
        return Tensor(raw & allowed)
    bias = torch.zeros(length, source_length, dtype=raw.dtype, device=raw.device)
    bias.masked_fill_(~allowed, float("-inf"))
    return attn_mask + Tensor(bias)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, *, scale=None, enable_gqa=False):
    """PyTorch's nn.functional.scaled_dot_product_attention: softmax(q k^T * scale +
    mask) v, with dropout_p applied to the attention weights (always: pass 0.0 when not
    training). query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev);
    the mask rules are in the module docstring. One fused graph node."""
    _check(query, key, value, attn_mask, dropout_p, is_causal)
    if enable_gqa:
        key, value = _group_query(query, key, value)
    _check_batch_and_mask(query, key, value, attn_mask)
    if attn_mask is not None and is_causal:
        attn_mask, is_causal = _with_causal(attn_mask, query.shape[-2], key.shape[-2]), False
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    return ScaledDotProductAttention.apply(query, key, value, attn_mask, max(dropout_p, 0.0),
                                           is_causal, float(scale))
