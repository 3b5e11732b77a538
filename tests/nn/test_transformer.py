"""nn.TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder,
TransformerDecoder and Transformer against torch.nn's twins (torch's state_dict loaded into
ours, and ours into torch's): outputs and the gradients of every input and parameter for a
random upstream gradient, float64 (to 1e-10) and float32, over norm_first, batch_first,
relu / gelu / a callable activation, bias=False, unbatched input, src / tgt / memory masks
(bool and float, (L, S) and (N * nhead, L, S)), key padding masks, the *_is_causal hints
and their detection; dropout (train: shapes, and torch's very
masks and results for the same seed on the CPU; eval: exact); torch's encoder fast path
(nested tensors: zeros at padded positions in eval without gradients) matched; deep-copied
layers; parameter names and torch's xavier initialisation; generate_square_subsequent_mask;
torch's errors; CUDA (cuda marker).

Left out: MultiheadAttention's own argument grid (tests/nn/test_multihead_attention.py).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import handgrad as hg
import handgrad.nn as nn
import handgrad.nn.functional as F
from tests.torch_compare import assert_close

pytestmark = [pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              pytest.mark.filterwarnings("ignore:Support for mismatched"),
              pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")]

D, NHEAD, FF, N, S, T = 8, 2, 16, 3, 5, 4
ACTIVATIONS = {"relu": ("relu", "relu"), "gelu": ("gelu", "gelu"),
               "callable": (F.silu, torch.nn.functional.silu),
               "module": (nn.GELU(), torch.nn.GELU())}


def _perturb(module):
    torch.manual_seed(1)
    with torch.no_grad():  # non-trivial norms and biases
        for p in module.parameters():
            p.add_(0.2 * torch.randn_like(p))


def _twins(ours_cls, theirs_cls, *args, activation="relu", dtype=torch.float64,
           device="cpu", **options):
    """A handgrad module and torch's with the same weights (torch's state_dict loaded)."""
    torch.manual_seed(0)
    a_ours, a_theirs = ACTIVATIONS[activation]
    theirs = theirs_cls(*args, activation=a_theirs, dtype=dtype, device=device, **options)
    _perturb(theirs)
    ours = ours_cls(*args, activation=a_ours, dtype=dtype, device=device, **options)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _layer_options(dropout=0.0, **options):
    return dict(dim_feedforward=FF, dropout=dropout, **options)


def _seq(length, dtype, batch_first=False, unbatched=False, device="cpu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    shape = (length, D) if unbatched else ((N, length, D) if batch_first else (length, N, D))
    return torch.randn(shape, generator=gen, dtype=dtype).to(device).requires_grad_()


def _mask(kind, shape, device="cpu", seed=3):
    gen = torch.Generator().manual_seed(seed)
    if kind == "bool":
        mask = torch.rand(shape, generator=gen) < 0.3
        mask[..., 0] = False
        return mask.to(device)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(device)


def _ours(value):
    if isinstance(value, torch.Tensor):
        return hg.Tensor(value.detach().clone(), requires_grad=value.requires_grad)
    return value


def _compare(ours, theirs, inputs, dtype, kwargs=None, seed=5, grads=True):
    """Both modules on the same inputs: the output, then every input and parameter
    gradient for one random upstream gradient."""
    kwargs = kwargs or {}
    ours_inputs = [_ours(x) for x in inputs]
    out_t = theirs(*inputs, **kwargs)
    out_o = ours(*ours_inputs, **{k: _ours(v) for k, v in kwargs.items()})
    assert_close(out_o, out_t, dtype, "output")
    if not grads:
        return out_o, out_t
    g = torch.randn(out_t.shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    g = g.to(out_t.device)
    (out_t * g).sum().backward()
    (out_o * hg.Tensor(g)).sum().backward()
    for k, (a, e) in enumerate(zip(ours_inputs, inputs)):
        assert_close(a.grad, e.grad, dtype, f"gradient of input {k}")
    params_t = dict(theirs.named_parameters())
    names_o = [n for n, _ in ours.named_parameters()]
    assert names_o == list(params_t), "parameter names"
    for name, p in ours.named_parameters():
        assert_close(p.grad, params_t[name].grad, dtype, f"gradient of {name}")
    return out_o, out_t


# ------------------------------------------------------------------- layers
LAYER_GRID = list(itertools.product([False, True], [False, True],
                                    ["relu", "gelu", "callable", "module"]))


@pytest.mark.parametrize("norm_first,batch_first,activation", LAYER_GRID)
def test_encoder_layer(norm_first, batch_first, activation):
    ours, theirs = _twins(nn.TransformerEncoderLayer, torch.nn.TransformerEncoderLayer, D,
                          NHEAD, activation=activation, **_layer_options(
                              norm_first=norm_first, batch_first=batch_first))
    src = _seq(S, torch.float64, batch_first)
    _compare(ours, theirs, [src], torch.float64,
             {"src_mask": _mask("float", (S, S)),
              "src_key_padding_mask": _mask("float", (N, S), seed=4)})


@pytest.mark.parametrize("norm_first,batch_first,activation", LAYER_GRID)
def test_decoder_layer(norm_first, batch_first, activation):
    ours, theirs = _twins(nn.TransformerDecoderLayer, torch.nn.TransformerDecoderLayer, D,
                          NHEAD, activation=activation, **_layer_options(
                              norm_first=norm_first, batch_first=batch_first))
    tgt, memory = _seq(T, torch.float64, batch_first), _seq(S, torch.float64, batch_first, seed=1)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
    _compare(ours, theirs, [tgt, memory], torch.float64,
             {"tgt_mask": causal, "memory_mask": _mask("bool", (N * NHEAD, T, S)),
              "tgt_key_padding_mask": _mask("bool", (N, T), seed=4),
              "memory_key_padding_mask": _mask("bool", (N, S), seed=6),
              "tgt_is_causal": True})


MASK_GRID = [
    {"src_mask": ("bool", (S, S))},
    {"src_mask": ("bool", (N * NHEAD, S, S))},
    {"src_mask": ("float", (N * NHEAD, S, S)), "src_key_padding_mask": ("float", (N, S))},
    {"src_key_padding_mask": ("bool", (N, S))},
    {"src_mask": ("bool", (S, S)), "src_key_padding_mask": ("bool", (N, S))},
    {"src_mask": "causal", "is_causal": True},
    {"src_mask": "causal", "is_causal": True, "src_key_padding_mask": ("bool", (N, S))},
    {},
]


@pytest.mark.parametrize("masks", MASK_GRID, ids=lambda m: "+".join(m) or "none")
@pytest.mark.parametrize("bias", [True, False])
def test_encoder_layer_masks(masks, bias):
    ours, theirs = _twins(nn.TransformerEncoderLayer, torch.nn.TransformerEncoderLayer, D,
                          NHEAD, **_layer_options(bias=bias, batch_first=True))
    kwargs = {}
    for k, spec in masks.items():
        if spec == "causal":
            kwargs[k] = torch.nn.Transformer.generate_square_subsequent_mask(
                S, dtype=torch.float64)
        elif isinstance(spec, tuple):
            kwargs[k] = _mask(*spec, seed=len(k))
        else:
            kwargs[k] = spec
    _compare(ours, theirs, [_seq(S, torch.float64, True)], torch.float64, kwargs)


def test_unbatched_layers_and_float32():
    ours, theirs = _twins(nn.TransformerEncoderLayer, torch.nn.TransformerEncoderLayer, D,
                          NHEAD, **_layer_options())
    _compare(ours, theirs, [_seq(S, torch.float64, unbatched=True)], torch.float64,
             {"src_key_padding_mask": _mask("bool", (S,))})
    ours, theirs = _twins(nn.TransformerDecoderLayer, torch.nn.TransformerDecoderLayer, D,
                          NHEAD, dtype=torch.float32, **_layer_options(norm_first=True))
    _compare(ours, theirs, [_seq(T, torch.float32), _seq(S, torch.float32, seed=2)],
             torch.float32, {"tgt_mask": _mask("bool", (T, T))})


# ------------------------------------------------------------------- stacks
@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_and_decoder_stacks(norm, batch_first):
    torch.manual_seed(0)
    theirs_layer = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0, batch_first=batch_first,
                                                    dtype=torch.float64)
    theirs = torch.nn.TransformerEncoder(
        theirs_layer, 2, torch.nn.LayerNorm(D, dtype=torch.float64) if norm else None)
    _perturb(theirs)
    ours_layer = nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0, batch_first=batch_first,
                                            dtype=torch.float64)
    ours = nn.TransformerEncoder(ours_layer, 2, nn.LayerNorm(D, dtype=torch.float64)
                                 if norm else None)
    ours.load_state_dict(theirs.state_dict())
    causal = torch.nn.Transformer.generate_square_subsequent_mask(S, dtype=torch.float64)
    for kwargs in ({"mask": causal}, {"mask": causal, "is_causal": False},
                   {"src_key_padding_mask": _mask("bool", (N, S))}):
        ours.zero_grad()
        theirs.zero_grad()
        _compare(ours, theirs, [_seq(S, torch.float64, batch_first)], torch.float64, kwargs)

    theirs = torch.nn.TransformerDecoder(
        torch.nn.TransformerDecoderLayer(D, NHEAD, FF, 0.0, batch_first=batch_first,
                                         dtype=torch.float64), 2,
        torch.nn.LayerNorm(D, dtype=torch.float64) if norm else None)
    _perturb(theirs)
    ours = nn.TransformerDecoder(
        nn.TransformerDecoderLayer(D, NHEAD, FF, 0.0, batch_first=batch_first,
                                   dtype=torch.float64), 2,
        nn.LayerNorm(D, dtype=torch.float64) if norm else None)
    ours.load_state_dict(theirs.state_dict())
    causal = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
    _compare(ours, theirs, [_seq(T, torch.float64, batch_first),
                            _seq(S, torch.float64, batch_first, seed=1)], torch.float64,
             {"tgt_mask": causal, "memory_key_padding_mask": _mask("bool", (N, S))})


def test_layers_are_deep_copies():
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF)
    encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    first, second = encoder.layers[0], encoder.layers[1]
    assert first.linear1.weight is not second.linear1.weight
    assert first.linear1.weight is not layer.linear1.weight
    assert torch.equal(first.linear1.weight.data, second.linear1.weight.data)
    with hg.no_grad():
        first.linear1.weight.add_(1.0)
    assert not torch.equal(first.linear1.weight.data, second.linear1.weight.data)
    assert len(list(encoder.parameters())) == 3 * len(list(layer.parameters()))


# -------------------------------------------------------------- the Transformer
def _transformer_twins(dtype=torch.float64, device="cpu", **options):
    torch.manual_seed(0)
    args = dict(d_model=D, nhead=NHEAD, num_encoder_layers=2, num_decoder_layers=2,
                dim_feedforward=FF, dropout=0.0, dtype=dtype, device=device)
    args.update(options)
    theirs = torch.nn.Transformer(**args)
    _perturb(theirs)
    ours = nn.Transformer(**args)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize("batch_first,norm_first", [(False, False), (True, True),
                                                    (True, False)])
def test_transformer(batch_first, norm_first):
    ours, theirs = _transformer_twins(batch_first=batch_first, norm_first=norm_first)
    src = _seq(S, torch.float64, batch_first)
    tgt = _seq(T, torch.float64, batch_first, seed=1)
    kwargs = {"tgt_mask": torch.nn.Transformer.generate_square_subsequent_mask(
                  T, dtype=torch.float64),
              "src_key_padding_mask": _mask("bool", (N, S)),
              "tgt_key_padding_mask": _mask("bool", (N, T), seed=4),
              "memory_key_padding_mask": _mask("bool", (N, S))}
    _compare(ours, theirs, [src, tgt], torch.float64, kwargs)


def test_transformer_unbatched_gelu_no_bias_and_float32():
    ours, theirs = _transformer_twins(activation="gelu", bias=False)
    _compare(ours, theirs, [_seq(S, torch.float64, unbatched=True),
                            _seq(T, torch.float64, unbatched=True, seed=1)], torch.float64,
             {"src_mask": _mask("bool", (S, S)), "memory_mask": _mask("float", (T, S))})
    ours, theirs = _transformer_twins(torch.float32, batch_first=True)
    _compare(ours, theirs, [_seq(S, torch.float32, True), _seq(T, torch.float32, True, seed=1)],
             torch.float32, {"tgt_mask": ours.generate_square_subsequent_mask(T).data,
                             "tgt_is_causal": True})


def test_state_dict_both_ways_and_names():
    torch.manual_seed(3)
    ours = nn.Transformer(D, NHEAD, 1, 2, FF, dtype=torch.float64)
    theirs = torch.nn.Transformer(D, NHEAD, 1, 2, FF, dtype=torch.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: v.data for k, v in ours.state_dict().items()})
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, [_seq(S, torch.float64), _seq(T, torch.float64, seed=1)],
             torch.float64)
    assert "layers.1.multihead_attn.in_proj_weight" in dict(ours.decoder.named_parameters())


def test_custom_encoder_and_decoder():
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0), 1,
                                    enable_nested_tensor=False)
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, NHEAD, FF, 0.0), 3)
    model = nn.Transformer(D, NHEAD, custom_encoder=encoder, custom_decoder=decoder)
    assert model.encoder is encoder and model.decoder is decoder
    assert len(model.decoder.layers) == 3 and model.decoder.norm is None
    src, tgt = hg.randn(S, N, D), hg.randn(T, N, D)
    assert_close(model(src, tgt), decoder(tgt, encoder(src)).data, torch.float32)


def test_xavier_initialisation():
    torch.manual_seed(0)
    model = nn.Transformer(32, 4, 1, 1, 64)
    weight = model.encoder.layers[0].linear1.weight.data  # (64, 32)
    bound = math.sqrt(6 / (32 + 64))
    assert weight.abs().max() <= bound and weight.abs().max() > 0.9 * bound
    assert model.encoder.layers[0].self_attn.in_proj_bias.data.abs().max() == 0
    norm = model.decoder.norm
    assert torch.all(norm.weight.data == 1) and torch.all(norm.bias.data == 0)


def test_generate_square_subsequent_mask():
    for dtype in (None, torch.float64):
        ours = nn.Transformer.generate_square_subsequent_mask(4, dtype=dtype)
        theirs = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=dtype)
        assert isinstance(ours, hg.Tensor)
        assert torch.equal(ours.data, theirs) and ours.dtype == theirs.dtype


# ------------------------------------------------------------------ dropout
@pytest.mark.parametrize("batch_first", [False, True])
def test_dropout_train_shapes_and_eval_exact(batch_first):
    # batch_first too: attention's output there is torch's transposed view, and the
    # dropout after it draws its mask in that memory order, so the layout must be torch's
    ours, theirs = _transformer_twins(dropout=0.3, batch_first=batch_first)
    src, tgt = _seq(S, torch.float64, batch_first), _seq(T, torch.float64, batch_first, seed=1)
    out = ours(_ours(src), _ours(tgt))
    assert tuple(out.shape) == ((N, T, D) if batch_first else (T, N, D))
    out.sum().backward()
    assert all(p.grad is not None for p in ours.parameters())
    again = ours(_ours(src), _ours(tgt))
    assert not torch.allclose(again.data, out.data)  # a new mask each call
    # On the CPU every dropout mask is drawn as torch draws it, in torch's order: the same
    # seed gives torch's output and gradients in training too.
    ours.zero_grad()
    torch.manual_seed(11)
    out_t = theirs(src, tgt, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(T))
    torch.manual_seed(11)
    out_o = ours(_ours(src), _ours(tgt), tgt_mask=ours.generate_square_subsequent_mask(T))
    assert_close(out_o, out_t, torch.float64, "training output, same seed")
    (out_t * out_t.detach()).sum().backward()
    (out_o * hg.Tensor(out_t.detach())).sum().backward()
    params_t = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, params_t[name].grad, torch.float64, f"gradient of {name}")
    ours.zero_grad()
    theirs.zero_grad()
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, [_seq(S, torch.float64, batch_first, seed=2),
                            _seq(T, torch.float64, batch_first, seed=3)], torch.float64)


# -------------------------------------------------------------- the fast path
def _fast_path_twins(**options):
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0, batch_first=True,
                                         dtype=torch.float64, **options), 2,
        torch.nn.LayerNorm(D, dtype=torch.float64))
    _perturb(theirs)
    ours = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0, batch_first=True, dtype=torch.float64,
                                   **options), 2, nn.LayerNorm(D, dtype=torch.float64))
    ours.load_state_dict(theirs.state_dict())
    return ours.eval(), theirs.eval()


def test_encoder_fast_path_zeros_padded_positions_as_torch():
    """torch's eval fast path (nested tensors) gives 0 at padded positions before the
    final norm, norm.bias after it; its ordinary path computes them. handgrad matches
    both, under the same conditions."""
    ours, theirs = _fast_path_twins()
    src = _seq(S, torch.float64, batch_first=True).detach()
    padding = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]).bool()
    bias = theirs.norm.bias.detach()
    with torch.no_grad():
        fast = theirs(src, src_key_padding_mask=padding)
    with hg.no_grad():
        ours_fast = ours(hg.Tensor(src), src_key_padding_mask=hg.Tensor(padding))
    assert_close(ours_fast, fast, torch.float64, "fast path")
    assert_close(ours_fast[0, 3], bias, torch.float64, "a padded position: norm(0)")
    slow = theirs(src, src_key_padding_mask=padding)  # gradients recorded: ordinary path
    ours_slow = ours(hg.Tensor(src), src_key_padding_mask=hg.Tensor(padding))
    assert_close(ours_slow, slow, torch.float64, "ordinary path")
    assert not torch.allclose(slow[0, 3], bias)
    keep = ~padding
    assert_close(ours_fast.data[keep], ours_slow.data[keep], torch.float64, "kept positions")
    # padding not at the end of each row (mask_check), or norm_first: the ordinary path
    shuffled = padding.flip(1)
    with torch.no_grad():
        fast = theirs(src, src_key_padding_mask=shuffled)
    with hg.no_grad():
        ours_fast = ours(hg.Tensor(src), src_key_padding_mask=hg.Tensor(shuffled))
    assert_close(ours_fast, fast, torch.float64, "padding at the start")
    assert not torch.allclose(fast[0, 0], bias)
    ours, theirs = _fast_path_twins(norm_first=True)
    with torch.no_grad():
        fast = theirs(src, src_key_padding_mask=padding)
    with hg.no_grad():
        ours_fast = ours(hg.Tensor(src), src_key_padding_mask=hg.Tensor(padding))
    assert_close(ours_fast, fast, torch.float64, "norm_first: no fast path")


def test_nested_tensor_warning_as_torch():
    with pytest.warns(UserWarning, match="self.use_nested_tensor is False because "
                                         "encoder_layer.norm_first was True"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF, norm_first=True), 1)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF,
                                                               batch_first=True), 1)
    assert encoder.use_nested_tensor


# ------------------------------------------------------------------- errors
def test_errors_as_torch():
    for cls in (nn.TransformerEncoderLayer, torch.nn.TransformerEncoderLayer):
        with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
            cls(D, NHEAD, FF, activation="tanh")
    ours = nn.Transformer(D, NHEAD, 1, 1, FF)
    theirs = torch.nn.Transformer(D, NHEAD, 1, 1, FF)
    cases = [((torch.randn(S, N, D), torch.randn(T, N + 1, D)),
              "the batch number of src and tgt must be equal"),
             ((torch.randn(S, N, D + 1), torch.randn(T, N, D + 1)),
              "the feature number of src and tgt must be equal to d_model")]
    for inputs, message in cases:
        with pytest.raises(RuntimeError, match=message):
            theirs(*inputs)
        with pytest.raises(RuntimeError, match=message):
            ours(*(hg.Tensor(x) for x in inputs))
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.TransformerEncoderLayer(10, 3)
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF)
    with pytest.raises(RuntimeError, match=r"shape of the 2D attn_mask is \(4, 4\)"):
        layer(hg.randn(S, N, D), src_mask=hg.zeros(4, 4, dtype=hg.bool))
    with pytest.raises(AssertionError, match="only bool and floating types of src_mask"):
        layer(hg.randn(S, N, D), src_mask=hg.zeros(S, S, dtype=hg.int64))


# --------------------------------------------------------------------- CUDA
def test_on_device(device):
    ours, theirs = _transformer_twins(torch.float32, device=device, batch_first=True)
    src = _seq(S, torch.float32, True, device=device)
    tgt = _seq(T, torch.float32, True, device=device, seed=1)
    _compare(ours, theirs, [src, tgt], torch.float32,
             {"tgt_mask": torch.nn.Transformer.generate_square_subsequent_mask(T,
                                                                             device=device),
              "src_key_padding_mask": _mask("bool", (N, S), device)})
