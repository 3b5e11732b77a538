"""Registry entries for scaled dot-product attention (handgrad/nn/functional/attention.py:
ScaledDotProductAttention): no mask, bool mask, float mask (differentiated), causal
(L = S and L != S), a given scale, broadcast batch dims, Ev != E, 3-d and 2-d inputs,
grouped-query heads, and dropout under a fixed seed.

The reference is torch.nn.functional.scaled_dot_product_attention itself, except for
dropout, whose draw torch does not share: there fn and ref both run under the same
seed (torch.random.fork_rng, so the global generator is left as it was) and the
reference is torch's math with the mask drawn as handgrad draws it. The composed
references write softmax(q k^T * scale + mask) v with handgrad primitives (matmul,
transpose, masked_fill, softmax, expand / reshape for the heads).

Bool masks keep at least one key per query: a fully masked row is NaN in the composed
softmax, while the fused Function (and torch's CPU call) return 0 there; that case is
tested against torch in tests/nn/test_attention.py.

Left out: the error cases and device runs (tests/nn/test_attention.py), the modules.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.testing.registry import register


# ============================================================== composed reference
def _composed(q, k, v, mask=None, is_causal=False, scale=None, keep=None):
    """softmax(q k^T * scale + bias) v from primitives; keep: a dropout mask already
    scaled by 1 / (1 - p) (a torch tensor), applied to the weights."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., L, S)
    length, source_length = scores.shape[-2:]
    if is_causal:
        upper = torch.ones(length, source_length, dtype=torch.bool,
                           device=q.data.device).triu(1)
        scores = scores.masked_fill(hg.Tensor(upper), float("-inf"))
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(hg.Tensor(mask.data.logical_not()), float("-inf"))
        else:
            scores = scores + mask
    weights = scores.softmax(-1)
    if keep is not None:
        weights = weights * hg.Tensor(keep.to(weights.dtype))
    return weights @ v


def _repeat_heads(x, heads):
    """(..., H, S, E) -> (..., heads, S, E), torch's repeat_interleave on dim -3."""
    lead, h, rest = tuple(x.shape[:-3]), x.shape[-3], tuple(x.shape[-2:])
    return x.unsqueeze(-3).expand(*lead, h, heads // h, *rest).reshape(*lead, heads, *rest)


# ============================================================== masks as extras
def _bool_mask(shape_of):
    """A bool mask of shape shape_of(shapes), about 70 % True, every query row keeping at
    least one key (its last)."""
    def draw(gen, shapes):
        shape = shape_of(shapes)
        mask = torch.rand(shape, generator=gen) < 0.7
        mask[..., -1] = True
        return (mask,)
    return draw


def _register(name, shapes, composed, fn=None, ref=None, **flags):
    register(
        f"scaled_dot_product_attention{name}",
        fn=fn or (lambda q, k, v: HF.scaled_dot_product_attention(q, k, v)),
        ref=ref or (lambda q, k, v: TF.scaled_dot_product_attention(q, k, v)),
        composed=composed,
        shapes=shapes,
        covers=(HF.ScaledDotProductAttention,),
        **flags,
    )


_register("", [((2, 3, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)),  # self-attention shapes
               ((2, 5, 4), (2, 3, 4), (2, 3, 6)),           # 3-d, L != S, Ev != E
               ((4, 3), (5, 3), (5, 2))],                   # 2-d, unbatched
          composed=_composed)

_register("_causal",
          [((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4)),
           ((2, 6, 4), (2, 4, 4), (2, 4, 3)),   # L > S: the lower rows see every key
           ((3, 4), (5, 4), (5, 2)),            # L < S: top-left, keys beyond L never seen
           ((1, 66, 3), (1, 66, 3), (1, 66, 2))],  # two query blocks (CAUSAL_BLOCKS)
          fn=lambda q, k, v: HF.scaled_dot_product_attention(q, k, v, is_causal=True),
          ref=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True),
          composed=lambda q, k, v: _composed(q, k, v, is_causal=True))

_register("_scale",
          [((2, 3, 4), (2, 5, 4), (2, 5, 3))],
          fn=lambda q, k, v: HF.scaled_dot_product_attention(q, k, v, scale=0.7),
          ref=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, scale=0.7),
          composed=lambda q, k, v: _composed(q, k, v, scale=0.7))

# batch dims that broadcast: heads of q against a shared key/value, a 2-d query against
# a batch of keys, a value that alone has the batch
_register("_broadcast",
          [((2, 3, 4, 4), (2, 1, 5, 4), (1, 1, 5, 3)),
           ((4, 4), (2, 3, 5, 4), (5, 3)),
           ((1, 4, 4), (1, 5, 4), (3, 5, 2))],
          composed=_composed)

# bool masks of shape (L, S), (*batch, L, S), and (B, 1, 1, S) (a key-padding mask,
# broadcast over heads and queries)
BOOL_MASKS = {
    "": lambda shapes: (shapes[0][-2], shapes[1][-2]),
    "_batched": lambda shapes: (*shapes[0][:-1], shapes[1][-2]),
    "_padding": lambda shapes: (shapes[0][0], *(1,) * (len(shapes[0]) - 2), shapes[1][-2]),
}
for suffix, mask_shape in BOOL_MASKS.items():
    _register(f"_bool_mask{suffix}",
              [((2, 3, 4, 4), (2, 3, 5, 4), (2, 3, 5, 3)),
               ((2, 4, 4), (2, 5, 4), (2, 5, 3))],
              fn=lambda q, k, v, m: HF.scaled_dot_product_attention(q, k, v, attn_mask=m),
              ref=lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m),
              composed=lambda q, k, v, m: _composed(q, k, v, mask=m),
              extras=_bool_mask(mask_shape))

# float masks are differentiated: the mask is the fourth input (its gradient is dZ)
_register("_float_mask",
          [((2, 3, 4, 4), (2, 3, 5, 4), (2, 3, 5, 3), (4, 5)),
           ((2, 3, 4, 4), (2, 3, 5, 4), (2, 3, 5, 3), (2, 1, 4, 5)),
           ((2, 3, 4, 4), (2, 3, 5, 4), (2, 3, 5, 3), (3, 1, 5)),
           ((4, 4), (5, 4), (5, 3), (4, 5))],
          fn=lambda q, k, v, m: HF.scaled_dot_product_attention(q, k, v, attn_mask=m),
          ref=lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m),
          composed=lambda q, k, v, m: _composed(q, k, v, mask=m))

_register("_gqa",
          [((2, 6, 4, 4), (2, 3, 5, 4), (2, 2, 5, 3)),
           ((4, 3, 4), (1, 3, 4), (2, 3, 2))],
          fn=lambda q, k, v: HF.scaled_dot_product_attention(q, k, v, enable_gqa=True),
          ref=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, enable_gqa=True),
          composed=lambda q, k, v: _composed(q, _repeat_heads(k, q.shape[-3]),
                                             _repeat_heads(v, q.shape[-3])))


# ============================================================== dropout, seeded
DROPOUT_P, DROPOUT_SEED = 0.3, 1234


def _seeded(call, device):
    """call() with the default generators of the CPU and `device` at DROPOUT_SEED, and
    put back as they were afterwards."""
    devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(DROPOUT_SEED)
        return call()


def _keep(q, k, v):
    """The mask handgrad draws for these inputs under DROPOUT_SEED, scaled by 1 / (1 - p):
    Bernoulli(1 - p) over (*batch, L, S) on the query's device."""
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    shape = (*batch, q.shape[-2], k.shape[-2])
    return _seeded(lambda: torch.empty(shape, dtype=q.dtype, device=q.device).bernoulli_(
        1 - DROPOUT_P).div_(1 - DROPOUT_P), q.device)


def _torch_dropout_math(q, k, v):
    """torch's math of sdpa (no fused kernel) with the handgrad draw of the mask."""
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
    return (weights * _keep(q, k, v)) @ v


_register("_dropout",
          [((2, 2, 4, 4), (2, 2, 5, 4), (2, 2, 5, 3))],
          fn=lambda q, k, v: _seeded(lambda: HF.scaled_dot_product_attention(
              q, k, v, dropout_p=DROPOUT_P), q.data.device),
          ref=_torch_dropout_math,
          composed=lambda q, k, v: _composed(q, k, v, keep=_keep(q.data, k.data, v.data)),
          note="torch's dropout draw differs from handgrad's: both run under one seed and "
               "the reference is torch's math with handgrad's mask")
