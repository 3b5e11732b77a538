"""nn.MultiheadAttention, F.multi_head_attention_forward and the positional encodings.

MultiheadAttention against torch.nn's twin (torch's state_dict loaded into ours, and ours
into torch's): outputs, attention weights (averaged and per head), and the gradients of
query, key, value and every parameter for random upstream gradients on the output and the
weights, float64 (to 1e-10) and float32, over self-attention, encoder-decoder (key is
value) and distinct inputs, batch_first, unbatched input, kdim / vdim, add_bias_kv,
add_zero_attn, bias=False, bool and float attn_mask of shape (L, S) and (N * H, L, S),
bool and float key_padding_mask, both merged (and mixed, with torch's warning), is_causal
with and without need_weights, static_k / static_v, fully masked rows, dropout (train:
shapes, and torch's very masks for the same seed on the CPU; eval: exact); torch's errors
and exception types; torch's initialisation; CUDA (cuda marker). The positional
encodings (not in torch) against their formulas.

Left out: the fused scaled_dot_product_attention's own checks (tests/nn/test_attention.py
and its registry entry), the Transformer layers (tests/nn/test_transformer.py).
"""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch

import handgrad as hg
import handgrad.nn as nn
from handgrad.nn.functional.multi_head_attention import multi_head_attention_forward
from tests.torch_compare import assert_close

E, H, L, S, N = 8, 2, 4, 5, 3


def _pair(dtype=torch.float64, device="cpu", **options):
    """Our MultiheadAttention and torch's with the same weights (torch's loaded)."""
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, H, dtype=dtype, device=device, **options)
    with torch.no_grad():  # nonzero biases, so that a bias left out would show
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = nn.MultiheadAttention(E, H, dtype=dtype, device=device, **options)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _leaf(x):
    return hg.Tensor(x.detach().clone(), requires_grad=True)


def _inputs(kind, dtype, device="cpu", batch_first=False, unbatched=False, kdim=E, vdim=E,
            seed=1):
    """(query, key, value) as torch leaves: kind 'self' (one tensor), 'kv' (key is value)
    or 'distinct'."""
    gen = torch.Generator().manual_seed(seed)

    def make(length, width):
        shape = (length, width) if unbatched else (
            (N, length, width) if batch_first else (length, N, width))
        return torch.randn(shape, generator=gen, dtype=dtype).to(device).requires_grad_()

    if kind == "self":
        q = make(L, E)
        return q, q, q
    if kind == "kv":
        kv = make(S, kdim)
        return make(L, E), kv, kv
    return make(L, E), make(S, kdim), make(S, vdim)


def _as_ours(tensors):
    """The handgrad leaves for torch leaves, keeping which of them are the same object."""
    seen = {}
    return [seen.setdefault(id(t), _leaf(t)) for t in tensors]


def _mask(kind, shape, device="cpu", seed=2):
    """A mask of `shape`: 'bool' (True = masked; never a whole row) or 'float'."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "bool":
        mask = torch.rand(shape, generator=gen) < 0.3
        mask[..., 0] = False  # every query keeps one key
        return mask.to(device)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(device)


def _compare(ours, theirs, tq, dtype, seed=3, ours_masks=None, rng_seed=None, **kwargs):
    """Run both twins on the torch leaves `tq` (and their handgrad copies); compare the
    output, the weights, and every gradient for random upstream gradients. With
    `rng_seed`, torch's generator is seeded so before each forward (dropout's masks)."""
    hq = _as_ours(tq)
    ours.zero_grad()
    theirs.zero_grad()
    if rng_seed is not None:
        torch.manual_seed(rng_seed)
    out_t, w_t = theirs(*tq, **kwargs)
    ours_kwargs = {k: (hg.Tensor(v) if isinstance(v, torch.Tensor) else v)
                   for k, v in kwargs.items()}
    ours_kwargs.update(ours_masks or {})
    if rng_seed is not None:
        torch.manual_seed(rng_seed)
    out_o, w_o = ours(*hq, **ours_kwargs)
    assert_close(out_o, out_t, dtype, "output")
    if w_t is None:
        assert w_o is None, "weights: torch gave None"
    else:
        assert_close(w_o, w_t, dtype, "attention weights")
    gen = torch.Generator().manual_seed(seed)
    loss_t = loss_o = 0
    for a, e in ((out_o, out_t), (w_o, w_t)):
        if e is None:
            continue
        g = torch.randn(e.shape, generator=gen, dtype=dtype).to(e.device)
        loss_t = loss_t + (e * g).sum()
        loss_o = loss_o + (a * hg.Tensor(g)).sum()
    loss_t.backward()
    loss_o.backward()
    done = set()
    for name, (a, e) in zip(("query", "key", "value"), zip(hq, tq)):
        if id(e) not in done:
            done.add(id(e))
            assert_close(a.grad, e.grad, dtype, f"gradient of {name}")
    params_t = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, params_t[name].grad, dtype, f"gradient of {name}")


# ------------------------------------------------------------------ parameters
def test_parameters_buffers_and_init_match_torch():
    for options in ({}, {"kdim": 3, "vdim": 6}, {"bias": False}, {"add_bias_kv": True}):
        ours, theirs = _pair(**options)
        names_t = [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
        names_o = [(n, tuple(p.shape)) for n, p in ours.named_parameters()]
        assert names_o == names_t, options
        assert list(ours.state_dict()) == list(theirs.state_dict())
        theirs.load_state_dict({k: v.data for k, v in ours.state_dict().items()})
    torch.manual_seed(0)
    ours = nn.MultiheadAttention(64, 4, add_bias_kv=True)
    assert torch.all(ours.in_proj_bias.data == 0) and torch.all(ours.out_proj.bias.data == 0)
    bound = math.sqrt(6 / (64 + 3 * 64))  # xavier_uniform_ over the packed (3E, E)
    assert ours.in_proj_weight.data.abs().max() <= bound
    assert ours.in_proj_weight.data.abs().max() > 0.9 * bound
    assert 0.5 < ours.bias_k.data.std() / math.sqrt(2 / (1 + 64)) < 1.5  # xavier_normal_


# -------------------------------------------------------------- the grid, float64
GRID = list(itertools.product(["self", "kv", "distinct"], [False, True], [True, False],
                              [True, False]))


@pytest.mark.parametrize("kind,batch_first,need_weights,average", GRID)
def test_inputs_layouts_and_weights(kind, batch_first, need_weights, average):
    ours, theirs = _pair(batch_first=batch_first)
    tq = _inputs(kind, torch.float64, batch_first=batch_first)
    _compare(ours, theirs, tq, torch.float64, need_weights=need_weights,
             average_attn_weights=average)


MASKS = [case for case in itertools.product(["bool", "float", None], ["2d", "3d"],
                                            ["bool", "float", None], [True, False])
         if case[0] is not None or case[1] == "2d"]  # no attn_mask: one rank is enough


@pytest.mark.parametrize("attn,rank,padding,need_weights", MASKS)
def test_masks(attn, rank, padding, need_weights):
    ours, theirs = _pair(batch_first=True)
    tq = _inputs("distinct", torch.float64, batch_first=True)
    kwargs = {"need_weights": need_weights}
    if attn is not None:
        kwargs["attn_mask"] = _mask(attn, (L, S) if rank == "2d" else (N * H, L, S))
    if padding is not None:
        kwargs["key_padding_mask"] = _mask(padding, (N, S), seed=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _compare(ours, theirs, tq, torch.float64, **kwargs)
    mixed = attn is not None and padding is not None and attn != padding
    ours_warned = [w for w in caught if "mismatched key_padding_mask and attn_mask" in
                   str(w.message)]
    assert len(ours_warned) >= (2 if mixed else 0)  # torch's and ours
    if not mixed:
        assert not ours_warned


@pytest.mark.parametrize("need_weights", [True, False])
def test_torch_masks_are_accepted_too(need_weights):
    ours, theirs = _pair()
    tq = _inputs("self", torch.float64)
    mask = _mask("bool", (L, L))
    _compare(ours, theirs, tq, torch.float64, ours_masks={"attn_mask": mask},
             attn_mask=mask, need_weights=need_weights)


@pytest.mark.parametrize("need_weights,padding",
                         list(itertools.product([True, False], [None, "bool"])))
def test_is_causal(need_weights, padding):
    ours, theirs = _pair()
    tq = _inputs("self", torch.float64)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    kwargs = {"attn_mask": causal, "is_causal": True, "need_weights": need_weights}
    if padding:
        kwargs["key_padding_mask"] = _mask("float", (N, L), seed=5)
    _compare(ours, theirs, tq, torch.float64, **kwargs)


@pytest.mark.parametrize("kind", ["self", "distinct"])
@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
def test_unbatched(kind, need_weights, average):
    ours, theirs = _pair(batch_first=True)  # batch_first is ignored for unbatched input
    tq = _inputs(kind, torch.float64, unbatched=True)
    length = L if kind == "self" else S
    _compare(ours, theirs, tq, torch.float64, need_weights=need_weights,
             average_attn_weights=average, attn_mask=_mask("bool", (H, L, length)),
             key_padding_mask=_mask("bool", (length,), seed=6))


OPTIONS = [{"kdim": 3, "vdim": 6}, {"add_bias_kv": True}, {"add_zero_attn": True},
           {"add_bias_kv": True, "add_zero_attn": True}, {"bias": False},
           {"bias": False, "kdim": 3, "vdim": 3}]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o))
@pytest.mark.parametrize("need_weights", [True, False])
def test_constructor_options(options, need_weights):
    ours, theirs = _pair(**options)
    kind = "distinct" if "kdim" in options else "kv"
    tq = _inputs(kind, torch.float64, kdim=options.get("kdim", E), vdim=options.get("vdim", E))
    _compare(ours, theirs, tq, torch.float64, need_weights=need_weights,
             attn_mask=_mask("float", (N * H, L, S)),
             key_padding_mask=_mask("float", (N, S), seed=7))


def test_float32():
    ours, theirs = _pair(torch.float32, add_bias_kv=True, batch_first=True)
    tq = _inputs("kv", torch.float32, batch_first=True)
    _compare(ours, theirs, tq, torch.float32, key_padding_mask=_mask("bool", (N, S)),
             attn_mask=_mask("bool", (L, S)))
    ours, theirs = _pair(torch.float32)
    _compare(ours, theirs, _inputs("self", torch.float32), torch.float32, need_weights=False)


def test_state_dict_from_ours_into_torch():
    torch.manual_seed(5)
    ours = nn.MultiheadAttention(E, H, kdim=3, vdim=6, add_bias_kv=True, dtype=torch.float64)
    theirs = torch.nn.MultiheadAttention(E, H, kdim=3, vdim=6, add_bias_kv=True,
                                         dtype=torch.float64)
    theirs.load_state_dict({k: v.data for k, v in ours.state_dict().items()})
    _compare(ours, theirs, _inputs("distinct", torch.float64, kdim=3, vdim=6), torch.float64)


def test_fully_masked_row_as_in_torch():
    """A query whose every key is masked: NaN with need_weights=True (softmax of -infs),
    a zero attention output (so out_proj's bias) with need_weights=False, as torch's
    scaled_dot_product_attention gives."""
    ours, theirs = _pair()
    tq = _inputs("self", torch.float64)
    mask = torch.zeros(L, L, dtype=torch.bool)
    mask[1] = True
    for need_weights in (True, False):
        out_t, _ = theirs(*tq, attn_mask=mask, need_weights=need_weights)
        out_o, _ = ours(*_as_ours(tq), attn_mask=hg.Tensor(mask), need_weights=need_weights)
        assert_close(out_o, out_t, torch.float64, "output with a fully masked row")
        if need_weights:
            assert torch.isnan(out_o.data[1]).all()
        else:
            assert_close(out_o[1], ours.out_proj.bias.data.expand(N, E), torch.float64)


# -------------------------------------------------------------------- dropout
def test_dropout_train_and_eval():
    ours, theirs = _pair(dropout=0.5)
    tq = _inputs("self", torch.float64)
    out, weights = ours(*_as_ours(tq), average_attn_weights=False)
    assert tuple(out.shape) == (L, N, E) and tuple(weights.shape) == (N, H, L, L)
    kept = weights.data != 0
    assert 0.2 < kept.double().mean() < 0.8  # about half the weights dropped
    out.sum().backward()
    out2, none = ours(*_as_ours(tq), need_weights=False)
    assert none is None and tuple(out2.shape) == (L, N, E)
    # On the CPU the masks are drawn as torch draws them: the same seed, the same result.
    _compare(ours, theirs, _inputs("self", torch.float64, seed=8), torch.float64,
             rng_seed=7, average_attn_weights=False)
    _compare(ours, theirs, _inputs("kv", torch.float64, seed=8), torch.float64,
             rng_seed=7, need_weights=False)
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, tq, torch.float64)
    _compare(ours, theirs, _inputs("self", torch.float64, seed=9), torch.float64,
             need_weights=False)


@pytest.mark.parametrize("batch_first", [False, True])
def test_output_has_torchs_strides(batch_first):
    # batch_first: a transposed view of an (L, N, E) buffer, as torch's; a dropout after
    # it (TransformerEncoderLayer's) draws its mask in memory order, so only then the same
    ours, theirs = _pair(batch_first=batch_first)
    tq = _inputs("kv", torch.float64, batch_first=batch_first)
    for need_weights in (True, False):
        out_t = theirs(*tq, need_weights=need_weights)[0]
        out_o = ours(*_as_ours(tq), need_weights=need_weights)[0]
        assert out_o.stride() == out_t.stride(), (out_o.stride(), out_t.stride())


def test_functional_form_matches_torch():
    ours, theirs = _pair(add_bias_kv=True)
    tq = _inputs("distinct", torch.float64)
    args = (E, H)
    names = ["in_proj_weight", "in_proj_bias", "bias_k", "bias_v"]
    out_t, w_t = torch.nn.functional.multi_head_attention_forward(
        *tq, *args, *(getattr(theirs, n) for n in names), False, 0.0,
        theirs.out_proj.weight, theirs.out_proj.bias, training=False,
        key_padding_mask=_mask("bool", (N, S)))
    out_o, w_o = multi_head_attention_forward(
        *_as_ours(tq), *args, *(getattr(ours, n) for n in names), False, 0.0,
        ours.out_proj.weight, ours.out_proj.bias, training=False,
        key_padding_mask=hg.Tensor(_mask("bool", (N, S))))
    assert_close(out_o, out_t, torch.float64, "output")
    assert_close(w_o, w_t, torch.float64, "weights")


def test_functional_static_kv_and_separate_weights():
    """static_k / static_v (N * H, S, d) replace the projected keys and values; separate
    q / k / v weights with different widths."""
    ours, theirs = _pair(kdim=3, vdim=6)
    tq = _inputs("distinct", torch.float64, kdim=3, vdim=6)
    gen = torch.Generator().manual_seed(11)
    static = [torch.randn(N * H, S + 1, E // H, generator=gen, dtype=torch.float64,
                          requires_grad=True) for _ in range(2)]
    names = ["q_proj_weight", "k_proj_weight", "v_proj_weight"]

    def run(module, inputs, statics, wrap):
        return (multi_head_attention_forward if wrap is hg.Tensor else
                torch.nn.functional.multi_head_attention_forward)(
            *inputs, E, H, None, module.in_proj_bias, None, None, True, 0.0,
            module.out_proj.weight, module.out_proj.bias, training=False,
            use_separate_proj_weight=True, **{n: getattr(module, n) for n in names},
            static_k=statics[0], static_v=statics[1], average_attn_weights=False,
            key_padding_mask=wrap(_mask("bool", (N, S + 1))))

    out_t, w_t = run(theirs, tq, static, torch.as_tensor)
    ours_static = [_leaf(x) for x in static]
    ours_inputs = _as_ours(tq)
    out_o, w_o = run(ours, ours_inputs, ours_static, hg.Tensor)
    assert_close(out_o, out_t, torch.float64, "output")
    assert_close(w_o, w_t, torch.float64, "weights")
    g = torch.randn(out_t.shape, generator=gen, dtype=torch.float64)
    (out_t * g).sum().backward()
    (out_o * hg.Tensor(g)).sum().backward()
    for a, e in zip(ours_static, static):
        assert_close(a.grad, e.grad, torch.float64, "static key / value gradient")
    assert_close(ours_inputs[0].grad, tq[0].grad, torch.float64, "query gradient")
    assert_close(ours.q_proj_weight.grad, theirs.q_proj_weight.grad, torch.float64, "W_q")


# --------------------------------------------------------------------- errors
def _error_cases():
    q3, q2 = hg.randn(L, N, E), hg.randn(L, E)
    k3 = hg.randn(S, N, E)
    return [
        ((q3, k3, k3), {"attn_mask": hg.zeros(L, S, dtype=hg.int64)}, AssertionError,
         "only bool and floating types of attn_mask"),
        ((q3, k3, k3), {"key_padding_mask": hg.zeros(N, S, dtype=hg.int64)}, AssertionError,
         "only bool and floating types of key_padding_mask"),
        ((q3, k3, k3), {"attn_mask": hg.zeros(S, L)}, RuntimeError,
         r"shape of the 2D attn_mask is \(5, 4\), but should be \(4, 5\)"),
        ((q3, k3, k3), {"attn_mask": hg.zeros(N, L, S)}, RuntimeError,
         r"shape of the 3D attn_mask is \(3, 4, 5\), but should be \(6, 4, 5\)"),
        ((q3, k3, k3), {"attn_mask": hg.zeros(S)}, AssertionError,
         "expected `attn_mask` to be `None`, 2-D or 3-D"),
        ((q3, k3, k3), {"key_padding_mask": hg.zeros(N, L, dtype=hg.bool)}, AssertionError,
         r"key_padding_mask of shape \(N, S\) = \(3, 5\)"),
        ((q3, k3, k3), {"key_padding_mask": hg.zeros(S, dtype=hg.bool)}, AssertionError,
         "expected `key_padding_mask` to be `None` or 2-D"),
        ((q3, k3, k3), {"is_causal": True}, RuntimeError, "Need attn_mask"),
        ((q3, q2, q2), {}, AssertionError, "expected `key` and `value` to be 3-D"),
        ((q2, q2, q2), {"attn_mask": hg.zeros(1, L, L)}, AssertionError,
         r"Expected `attn_mask` shape to be \(2, 4, 4\)"),
        ((hg.randn(L, N, E + 1),) * 3, {}, AssertionError,
         "was expecting embedding dimension of 8, but got 9"),
        ((q3, k3, hg.randn(S + 1, N, E)), {}, AssertionError,
         "key shape .* does not match value shape"),
        ((hg.randn(1, L, N, E),) * 3, {}, AssertionError, "query should be unbatched 2D"),
        ((q3, hg.randn(S, N + 1, E), hg.randn(S, N + 1, E)), {}, RuntimeError,
         "query has batch size 3 but key and value 4 and 4"),
    ]


@pytest.mark.parametrize("case", range(len(_error_cases())))
def test_errors_as_torch(case):
    args, kwargs, error, message = _error_cases()[case]
    ours = nn.MultiheadAttention(E, H)
    theirs = torch.nn.MultiheadAttention(E, H)
    with pytest.raises(error, match=message):
        ours(*args, **kwargs)
    torch_args = [a.data for a in args]
    torch_kwargs = {k: (v.data if isinstance(v, hg.Tensor) else v) for k, v in kwargs.items()}
    with pytest.raises(error):
        theirs(*torch_args, **torch_kwargs)


def test_constructor_errors():
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(AssertionError):
        torch.nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.MultiheadAttention(0, 2)


# ---------------------------------------------------------- positional encodings
@pytest.mark.parametrize("batch_first", [False, True])
def test_sinusoidal_encoding(batch_first):
    d, T = 7, 6
    encoding = nn.SinusoidalPositionalEncoding(d, max_len=10, batch_first=batch_first,
                                               dtype=torch.float64)
    assert "pe" not in encoding.state_dict() and tuple(encoding.pe.shape) == (10, d)
    x = hg.randn(N, T, d, dtype=hg.float64, requires_grad=True) if batch_first else \
        hg.randn(T, N, d, dtype=hg.float64, requires_grad=True)
    out = encoding(x)
    t = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(d, dtype=torch.float64)[None, :]
    angle = t / 10000 ** ((i - i % 2) / d)
    table = torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))
    table = table.unsqueeze(0) if batch_first else table.unsqueeze(1)
    assert_close(out, x.data + table, torch.float64, "x + PE")
    out.sum().backward()
    assert_close(x.grad, torch.ones_like(x.data), torch.float64, "gradient")
    flat = hg.randn(T, d, dtype=hg.float64)  # unbatched (T, E)
    assert_close(encoding(flat), flat.data + table.squeeze(0 if batch_first else 1),
                 torch.float64, "unbatched x + PE")
    with pytest.raises(ValueError, match="the sequence has 11 positions .* max_len is 10"):
        encoding(hg.randn(N, 11, d) if batch_first else hg.randn(11, N, d))


def test_learned_encoding():
    encoding = nn.LearnedPositionalEncoding(10, E, batch_first=True, dtype=torch.float64)
    assert list(encoding.state_dict()) == ["embedding.weight"]
    x = hg.randn(N, L, E, dtype=hg.float64, requires_grad=True)
    out = encoding(x)
    assert_close(out, x.data + encoding.embedding.weight.data[:L].unsqueeze(0), torch.float64)
    out.sum().backward()
    grad = torch.zeros(10, E, dtype=torch.float64)
    grad[:L] = N
    assert_close(encoding.embedding.weight.grad, grad, torch.float64, "embedding gradient")
    unbatched = encoding(hg.randn(L, E, dtype=hg.float64))
    assert tuple(unbatched.shape) == (L, E)
    with pytest.raises(ValueError, match="LearnedPositionalEncoding: the sequence has 11"):
        encoding(hg.randn(N, 11, E, dtype=hg.float64))
    with pytest.raises(ValueError, match="expected 8 features"):
        encoding(hg.randn(N, L, 3, dtype=hg.float64))


# ----------------------------------------------------------------------- CUDA
def test_on_device(device):
    ours, theirs = _pair(torch.float32, device=device, batch_first=True)
    tq = _inputs("self", torch.float32, device=device, batch_first=True)
    _compare(ours, theirs, tq, torch.float32, key_padding_mask=_mask("bool", (N, L), device),
             attn_mask=_mask("bool", (L, L), device))
    tq = _inputs("self", torch.float32, device=device, batch_first=True, seed=8)
    _compare(ours, theirs, tq, torch.float32, need_weights=False,
             key_padding_mask=_mask("bool", (N, L), device))
