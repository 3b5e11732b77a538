"""Attention layers: MultiheadAttention as torch.nn's, and two positional encodings that
torch does not have (the sequence order a Transformer otherwise cannot see).

MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
torch's parameters, names, shapes and initialisation, so that state_dicts move both ways:
    in_proj_weight (3E, E)   packed W_q, W_k, W_v, when kdim == vdim == embed_dim; else
    q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim)
    in_proj_bias (3E,)       when bias=True
    out_proj                 a Linear(E, E, bias) (torch's NonDynamicallyQuantizableLinear,
                             which is a plain Linear to everything but quantisation)
    bias_k, bias_v (1, 1, E) when add_bias_kv=True
initialised as torch: xavier_uniform_ on the in-projection, zeros on in_proj_bias and
out_proj.bias, xavier_normal_ on bias_k / bias_v, out_proj.weight as a Linear's.
forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
average_attn_weights=True, is_causal=False) -> (output, weights or None) is
F.multi_head_attention_forward (handgrad/nn/functional/multi_head_attention.py, with the
mask conventions and the steps), run in the batch-first layout itself when batch_first
(no transposes of the inputs to (L, N, E); the output is torch's transposed view).

SinusoidalPositionalEncoding(d_model, max_len=5000, dropout=0.0, batch_first=False): adds
"Attention Is All You Need"'s fixed table, PE[t, 2i] = sin(t / 10000^(2i / d_model)),
PE[t, 2i + 1] = cos(t / 10000^(2i / d_model)), kept as the non-persistent buffer `pe`
(max_len, d_model) (not in the state_dict: it is recomputed), then dropout.
LearnedPositionalEncoding(max_len, d_model, dropout=0.0, batch_first=False): adds a learned
vector per position, an Embedding(max_len, d_model) called `embedding` (state_dict key
embedding.weight, initialised N(0, 1) as every Embedding), then dropout.
Both take (T, N, E), (N, T, E) with batch_first=True, or unbatched (T, E), and refuse a
sequence longer than max_len (ValueError naming both).

Left out: torch's inference fast path for MultiheadAttention (the same values up to
rounding), nested tensors, rotary and relative position encodings.
"""

from __future__ import annotations

import math

import torch

from handgrad.nn import init
from handgrad.nn.dropout import Dropout
from handgrad.nn.functional.multi_head_attention import multi_head_attention
from handgrad.nn.linear import Linear
from handgrad.nn.module import Module, Parameter
from handgrad.nn.sparse import Embedding

__all__ = ["MultiheadAttention", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding"]


class MultiheadAttention(Module):
    """Attention over H heads: softmax(q_h k_h^T / sqrt(d) + mask) v_h per head h, each
    head d = embed_dim / num_heads wide, concatenated and projected by out_proj."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, device=None, dtype=None) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError("MultiheadAttention: embed_dim and num_heads must be greater than "
                             f"0, got embed_dim={embed_dim} and num_heads={num_heads} instead")
        super().__init__()
        options = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError(  # torch's exception type
                f"MultiheadAttention: embed_dim must be divisible by num_heads, got "
                f"embed_dim={embed_dim} and num_heads={num_heads} (choose num_heads among "
                f"the divisors of {embed_dim})")
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(torch.empty((embed_dim, embed_dim), **options))
            self.k_proj_weight = Parameter(torch.empty((embed_dim, self.kdim), **options))
            self.v_proj_weight = Parameter(torch.empty((embed_dim, self.vdim), **options))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(torch.empty((3 * embed_dim, embed_dim), **options))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(torch.empty(3 * embed_dim, **options))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **options)
        if add_bias_kv:
            self.bias_k = Parameter(torch.empty((1, 1, embed_dim), **options))
            self.bias_v = Parameter(torch.empty((1, 1, embed_dim), **options))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """torch's: xavier_uniform_ in-projection, zero biases, xavier_normal_ bias_k/v."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """(output, weights or None); see F.multi_head_attention_forward for shapes."""
        separate = {}
        if not self._qkv_same_embed_dim:
            separate = dict(use_separate_proj_weight=True, q_proj_weight=self.q_proj_weight,
                            k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight)
        return multi_head_attention(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights,
            attn_mask=attn_mask, average_attn_weights=average_attn_weights,
            is_causal=is_causal, batch_first=self.batch_first, **separate)

    def extra_repr(self) -> str:
        text = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            text += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.bias_k is not None:
            text += ", add_bias_kv=True"
        if self.add_zero_attn:
            text += ", add_zero_attn=True"
        if self.batch_first:
            text += ", batch_first=True"
        return text


def _sequence_length(module, x) -> int:
    """The length of x's sequence dim, checked against max_len."""
    if x.ndim not in (2, 3):
        raise ValueError(f"{type(module).__name__}: expected a (T, N, E), (N, T, E) "
                         f"(batch_first) or unbatched (T, E) input, got shape {tuple(x.shape)}")
    if x.shape[-1] != module.d_model:
        raise ValueError(f"{type(module).__name__}: expected {module.d_model} features in the "
                         f"last dim, got shape {tuple(x.shape)}")
    length = x.shape[1] if (x.ndim == 3 and module.batch_first) else x.shape[0]
    if length > module.max_len:
        raise ValueError(f"{type(module).__name__}: the sequence has {length} positions (input "
                         f"of shape {tuple(x.shape)}) but max_len is {module.max_len}; build "
                         "the encoding with a larger max_len or feed shorter sequences")
    return length


def _add_positions(module, x, table):
    """x + table (T, E) broadcast over the batch dim."""
    if x.ndim == 3:
        table = table.unsqueeze(0) if module.batch_first else table.unsqueeze(1)
    return module.dropout(x + table)


class SinusoidalPositionalEncoding(Module):
    """x + PE[:T] with Vaswani et al.'s fixed sin / cos table (odd d_model works too: the
    last column is a sine), then dropout."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0,
                 batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.batch_first = batch_first
        self.dropout = Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (T, 1)
        frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64)
                              * (-math.log(10000.0) / d_model))  # (ceil(E / 2),)
        pe = torch.zeros(max_len, d_model, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(position * frequency)
        pe[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        self.register_buffer("pe", pe.to(device=device, dtype=dtype), persistent=False)

    def forward(self, x):
        length = _sequence_length(self, x)
        return _add_positions(self, x, self.pe[:length])

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, max_len={self.max_len}, "
                f"batch_first={self.batch_first}")


class LearnedPositionalEncoding(Module):
    """x + embedding(0 .. T - 1): one learned vector per position, then dropout."""

    def __init__(self, max_len: int, d_model: int, dropout: float = 0.0,
                 batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.batch_first = batch_first
        self.embedding = Embedding(max_len, d_model, device=device, dtype=dtype)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        length = _sequence_length(self, x)
        return _add_positions(self, x, self.embedding.weight[:length])  # (T, E)

    def extra_repr(self) -> str:
        return (f"max_len={self.max_len}, d_model={self.d_model}, "
                f"batch_first={self.batch_first}")
