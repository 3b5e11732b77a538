"""PyTorch's Transformer modules: TransformerEncoderLayer, TransformerDecoderLayer,
TransformerEncoder, TransformerDecoder and Transformer, with torch.nn's constructors,
defaults, forward signatures, submodule names and initialisation, so that a state_dict
moves both ways and gives torch's outputs.

    TransformerEncoderLayer(d_model, nhead, dim_feedforward=2048, dropout=0.1,
        activation="relu" | "gelu" | callable, layer_norm_eps=1e-5, batch_first=False,
        norm_first=False, bias=True, device, dtype)
        self_attn (MultiheadAttention), linear1, dropout, linear2, norm1, norm2, dropout1,
        dropout2;  post-norm:  x = norm1(x + sa(x)),  x = norm2(x + ff(x));
        pre-norm (norm_first): x = x + sa(norm1(x)),  x = x + ff(norm2(x));
        ff(x) = dropout2(linear2(dropout(activation(linear1(x))))), sa ends in dropout1.
    TransformerDecoderLayer(same arguments): self_attn, multihead_attn (over the memory),
        linear1, dropout, linear2, norm1..3, dropout1..3, the three blocks in that order.
    TransformerEncoder(encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
        mask_check=True), TransformerDecoder(decoder_layer, num_layers, norm=None):
        `layers` holds num_layers deep copies of the layer (torch's _get_clones), then
        the optional final norm.
    Transformer(d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
        dim_feedforward=2048, dropout=0.1, activation, custom_encoder, custom_decoder,
        layer_norm_eps, batch_first, norm_first, bias, device, dtype): encoder and
        decoder with final LayerNorms, xavier_uniform_ on every parameter of 2 or more
        dims; generate_square_subsequent_mask(sz) is the float (sz, sz) mask with -inf
        above the diagonal and 0 elsewhere.

Masks follow MultiheadAttention's conventions (bool True = may not attend, float added):
src_mask / tgt_mask / memory_mask (L, S) or (N * nhead, L, S), *_key_padding_mask (N, S).
*_is_causal are torch's hints: None lets the encoder / decoder compare the mask with the
causal one; True with need_weights=False attention runs causally.

torch's fast path, and what handgrad does about it. In evaluation, with no gradient
recorded, torch.nn.TransformerEncoder with a src_key_padding_mask whose padding sits at
the end of each row (and batch_first=True, norm_first=False, an even nhead, relu/gelu,
biases, no src mask, enable_nested_tensor=True) packs the sequences into a nested tensor
and unpacks it with zeros: the padded positions of its output are 0 before the final
norm (so norm(0) = norm.bias after it), where the ordinary path computes values there.
handgrad has no nested tensors but matches this: under exactly those conditions its
encoder sets the padded positions to 0 before the final norm; everywhere else (training,
a gradient recorded) it computes them, as torch's ordinary path does. The non-padded
positions agree in every case. torch's per-layer and per-attention fast paths give the
ordinary path's values up to rounding, so handgrad has no counterpart for them.

Left out: nested tensors, torch.backends.mha.set_fastpath_enabled (handgrad reads no
such flag), TorchScript.
"""

from __future__ import annotations

import copy
import warnings

import torch

from handgrad._tensor import Tensor, to_torch
from handgrad.autograd import is_grad_enabled
from handgrad.nn import functional as F
from handgrad.nn import init
from handgrad.nn.activation import GELU, ReLU
from handgrad.nn.attention import MultiheadAttention
from handgrad.nn.container import ModuleList
from handgrad.nn.dropout import Dropout
from handgrad.nn.functional.multi_head_attention import canonical_mask
from handgrad.nn.linear import Linear
from handgrad.nn.module import Module
from handgrad.nn.normalization import LayerNorm

__all__ = ["Transformer", "TransformerEncoder", "TransformerDecoder",
           "TransformerEncoderLayer", "TransformerDecoderLayer"]


def _generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
    """(sz, sz): -inf above the diagonal (future positions), 0 on and below it."""
    return Tensor(torch.triu(torch.full((sz, sz), float("-inf"), dtype=dtype, device=device),
                             diagonal=1))


def _seq_len(src, batch_first: bool) -> int:
    if src.ndim == 2:
        return src.shape[0]
    return src.shape[1 if batch_first else 0]


def _detect_is_causal_mask(mask, is_causal=None, size=None) -> bool:
    """torch's: is_causal when given; with None, whether `mask` is the causal mask."""
    make_causal = is_causal is True
    if is_causal is None and mask is not None:
        mask = to_torch(mask)
        size = size if size is not None else mask.shape[-2]
        causal = _generate_square_subsequent_mask(size, mask.device, mask.dtype).data
        make_causal = mask.shape == causal.shape and bool((mask == causal).all())
    return make_causal


def _get_activation_fn(activation: str):
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


def _get_clones(module: Module, n: int) -> ModuleList:
    """n independent deep copies (torch's _get_clones: no weights shared)."""
    return ModuleList([copy.deepcopy(module) for _ in range(n)])


def _relu_or_gelu(activation) -> int:
    """torch's activation_relu_or_gelu: 1 relu, 2 gelu, 0 anything else."""
    if activation is F.relu or isinstance(activation, ReLU):
        return 1
    if activation is F.gelu or isinstance(activation, GELU):
        return 2
    return 0


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual and a LayerNorm
    (after the residual by default, before the block with norm_first=True)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation=F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        options = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **options)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **options)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **options)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            activation = _get_activation_fn(activation)
        self.activation_relu_or_gelu = _relu_or_gelu(activation)
        self.activation = activation

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        src_key_padding_mask = canonical_mask(
            src_key_padding_mask, "src_key_padding_mask",
            None if src_mask is None else to_torch(src_mask).dtype, "src_mask", src.dtype)
        src_mask = canonical_mask(src_mask, "src_mask", None, "", src.dtype,
                                  check_other=False)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal: bool = False):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerDecoderLayer(Module):
    """Self-attention (usually causal), attention over the encoder's memory, then a
    feed-forward block, each with a residual and a LayerNorm."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation=F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        options = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout,
                                            batch_first=batch_first, bias=bias, **options)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout,
                                                 batch_first=batch_first, bias=bias, **options)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **options)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **options)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = (_get_activation_fn(activation) if isinstance(activation, str)
                           else activation)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask,
                                   tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask,
                                    memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask,
                                              tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask,
                                               memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal: bool = False):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           is_causal=is_causal, need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal: bool = False):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, is_causal=is_causal,
                                need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


def _why_not_nested(layer) -> str:
    """torch's reasons (at construction) for TransformerEncoder not to use nested tensors."""
    if not isinstance(layer, TransformerEncoderLayer):
        return "encoder_layer was not TransformerEncoderLayer"
    if layer.norm_first:
        return "encoder_layer.norm_first was True"
    if not layer.self_attn.batch_first:
        return ("encoder_layer.self_attn.batch_first was not True(use batch_first for better "
                "inference performance)")
    if not layer.self_attn._qkv_same_embed_dim:
        return "encoder_layer.self_attn._qkv_same_embed_dim was not True"
    if layer.self_attn.in_proj_bias is None:
        return "encoder_layer.self_attn was passed bias=False"
    if not layer.activation_relu_or_gelu:
        return "encoder_layer.activation_relu_or_gelu was not True"
    if layer.norm1.eps != layer.norm2.eps:
        return "encoder_layer.norm1.eps was not equal to encoder_layer.norm2.eps"
    if layer.self_attn.num_heads % 2 == 1:
        return "encoder_layer.self_attn.num_heads is odd"
    return ""


def _left_aligned(keep: torch.Tensor) -> bool:
    """Every row of `keep` (N, S) is True...True False...False (the padding at the end)."""
    return bool((keep[:, 1:] <= keep[:, :-1]).all())


class TransformerEncoder(Module):
    """num_layers deep copies of encoder_layer, then the optional final norm."""

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        self.layers = _get_clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check
        why_not = _why_not_nested(encoder_layer)
        if enable_nested_tensor and why_not:
            warnings.warn(f"enable_nested_tensor is True, but self.use_nested_tensor is False "
                          f"because {why_not}", stacklevel=2)
            self.use_nested_tensor = False

    def _torch_packs_padding(self, src, mask, src_key_padding_mask) -> bool:
        """Whether torch.nn.TransformerEncoder would take its nested-tensor fast path here
        (and so give zeros at the padded positions): see the module docstring."""
        first = self.layers[0]
        if (not self.use_nested_tensor or first.training or src.ndim != 3
                or src_key_padding_mask is None or mask is not None):
            return False
        keep = src_key_padding_mask == 0  # torch's logical_not of the float mask
        if self.mask_check and not _left_aligned(keep):
            return False
        attention = first.self_attn
        tensors = [src, attention.in_proj_weight, attention.in_proj_bias,
                   attention.out_proj.weight, attention.out_proj.bias, first.norm1.weight,
                   first.norm1.bias, first.norm2.weight, first.norm2.bias,
                   first.linear1.weight, first.linear1.bias, first.linear2.weight,
                   first.linear2.bias]
        return not (is_grad_enabled() and any(
            isinstance(t, Tensor) and t.requires_grad for t in tensors))

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        src_key_padding_mask = canonical_mask(
            src_key_padding_mask, "src_key_padding_mask",
            None if mask is None else to_torch(mask).dtype, "mask", src.dtype)
        mask = canonical_mask(mask, "mask", None, "", src.dtype, check_other=False)
        packs_padding = self._torch_packs_padding(src, mask, src_key_padding_mask)
        batch_first = self.layers[0].self_attn.batch_first
        is_causal = _detect_is_causal_mask(mask, is_causal, _seq_len(src, batch_first))
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, is_causal=is_causal,
                           src_key_padding_mask=src_key_padding_mask)
        if packs_padding:  # torch's nested tensor, unpacked with zeros
            padded = (src_key_padding_mask != 0).unsqueeze(-1)  # (N, S, 1)
            output = Tensor(output.data.masked_fill(padded, 0.0))
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(Module):
    """num_layers deep copies of decoder_layer, then the optional final norm."""

    def __init__(self, decoder_layer: Module, num_layers: int,
                 norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _get_clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None,
                memory_is_causal: bool = False):
        output = tgt
        seq_len = _seq_len(tgt, self.layers[0].self_attn.batch_first)
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, seq_len)
        for layer in self.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask,
                           memory_key_padding_mask=memory_key_padding_mask,
                           tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(Module):
    """The encoder-decoder of "Attention Is All You Need": forward(src, tgt, ...) =
    decoder(tgt, encoder(src))."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation=F.relu, custom_encoder=None,
                 custom_decoder=None, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        options = {"device": device, "dtype": dtype}
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                      batch_first, norm_first, bias)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            encoder_layer = TransformerEncoderLayer(*layer_args, **options)
            encoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options)
            self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            decoder_layer = TransformerDecoderLayer(*layer_args, **options)
            decoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options)
            self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, decoder_norm)
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal: bool = False):
        batch_dim = 0 if self.batch_first else 1
        if src.ndim == 3 and (tgt.ndim != 3 or src.shape[batch_dim] != tgt.shape[batch_dim]):
            raise RuntimeError(
                f"the batch number of src and tgt must be equal (Transformer: src of shape "
                f"{tuple(src.shape)}, tgt of shape {tuple(tgt.shape)}, batch_first="
                f"{self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(
                f"the feature number of src and tgt must be equal to d_model (Transformer: "
                f"d_model={self.d_model}, src of shape {tuple(src.shape)}, tgt of shape "
                f"{tuple(tgt.shape)})")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """The causal mask (sz, sz): float -inf above the diagonal, 0 elsewhere."""
        return _generate_square_subsequent_mask(sz, device=device, dtype=dtype)

    def _reset_parameters(self) -> None:
        """torch's: xavier_uniform_ on every parameter with more than one dim."""
        for p in self.parameters():
            if p.dim() > 1:
                init.xavier_uniform_(p)
