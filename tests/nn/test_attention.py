"""F.scaled_dot_product_attention against torch's: every mask kind (none, bool, float
with its gradient, causal with L = S and L != S), broadcast batch dims, grouped-query
heads, float32 and float64, forward and backward with a random upstream gradient;
the causal query blocks (any count, odd lengths); fully masked rows (0 as torch's CPU
call gives, not NaN); dropout (p = 0 exact, p = 1,
the train-time statistics, and the seeded draw against the same math); non-contiguous
inputs in the (B, T, heads, E).transpose(1, 2) layout; only some inputs requiring
grad; torch's errors with its exception types; CUDA against torch's CUDA call (cuda
marker, skipped without a GPU).

Left out: finite differences and the composed reference (the registry entries of
handgrad/testing/registry/attention.py, run by tests/tensor/test_ops.py), and the
modules built on it (nn.MultiheadAttention, the Transformer layers).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as F
from handgrad.nn.functional import attention
from tests.torch_compare import assert_close


def _compare(q_shape, k_shape, v_shape, dtype, mask=None, device="cpu", layout=None,
             requires=(True, True, True), seed=0, **options):
    """handgrad vs torch on the same inputs: the output, then the gradient of every input
    that requires one (the float mask's too) for one random upstream gradient.
    layout(x) may turn each drawn input into a strided view."""
    gen = torch.Generator().manual_seed(seed)
    values = [torch.randn(s, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
              for s in (q_shape, k_shape, v_shape)]
    if layout is not None:
        values = [layout(x) for x in values]
    theirs = [x.clone().requires_grad_(r) if layout is None else x.requires_grad_(r)
              for x, r in zip(values, requires)]
    ours = [hg.Tensor(x.detach(), requires_grad=r) for x, r in zip(values, requires)]
    mask_theirs = mask_ours = None
    if mask is not None:
        mask = mask.to(device)
        differentiable = mask.is_floating_point()
        mask_theirs = mask.clone().requires_grad_(differentiable)
        mask_ours = hg.Tensor(mask.clone(), requires_grad=differentiable)
        theirs.append(mask_theirs)
        ours.append(mask_ours)
    expected = TF.scaled_dot_product_attention(*theirs[:3], attn_mask=mask_theirs, **options)
    out = F.scaled_dot_product_attention(*ours[:3], attn_mask=mask_ours, **options)
    assert_close(out, expected, dtype, "output")
    upstream = torch.randn(expected.shape, generator=gen, dtype=torch.float64).to(
        device=device, dtype=dtype)
    expected.backward(upstream)
    out.backward(hg.Tensor(upstream))
    for name, a, e in zip(("query", "key", "value", "attn_mask"), ours, theirs):
        if e.requires_grad:
            assert_close(a.grad, e.grad, dtype, f"gradient of {name}")
        else:
            assert a.grad is None, f"{name} got a gradient it did not ask for"
    return out


def _bool(shape, seed=1):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.6
    mask[..., 0] = True  # every query keeps a key
    return mask


def _float(shape, seed=2):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


B, H, L, S, E, EV = 2, 3, 4, 6, 8, 5
QKV = ((B, H, L, E), (B, H, S, E), (B, H, S, EV))
CASES = {
    "plain": (QKV, None, {}),
    "scale": (QKV, None, {"scale": 0.25}),
    "causal_l_lt_s": (QKV, None, {"is_causal": True}),
    "causal_l_gt_s": (((B, H, S, E), (B, H, L, E), (B, H, L, EV)), None, {"is_causal": True}),
    "causal_square": (((B, H, S, E), (B, H, S, E), (B, H, S, EV)), None, {"is_causal": True}),
    # long enough for the causal query blocks (attention.CAUSAL_BLOCKS), odd lengths
    "causal_blocks_square": (((B, 2, 67, E), (B, 2, 67, E), (B, 2, 67, EV)), None,
                             {"is_causal": True}),
    "causal_blocks_l_gt_s": (((B, 2, 70, E), (B, 2, 41, E), (B, 2, 41, EV)), None,
                             {"is_causal": True}),
    "causal_blocks_l_lt_s": (((B, 2, 64, E), (B, 2, 90, E), (B, 2, 90, EV)), None,
                             {"is_causal": True}),
    "bool_l_s": (QKV, _bool((L, S)), {}),
    "bool_full": (QKV, _bool((B, H, L, S)), {}),
    "bool_key_padding": (QKV, _bool((B, 1, 1, S)), {}),
    "bool_heads": (QKV, _bool((H, L, S)), {}),
    "float_l_s": (QKV, _float((L, S)), {}),
    "float_full": (QKV, _float((B, H, L, S)), {}),
    "float_broadcast": (QKV, _float((B, 1, L, 1)), {}),
    "broadcast_batch": (((B, 1, L, E), (1, H, S, E), (B, H, S, EV)), None, {}),
    "unbatched_query": (((L, E), (B, H, S, E), (S, EV)), None, {}),
    "two_dims": (((L, E), (S, E), (S, EV)), _bool((L, S)), {}),
    "gqa": (((B, 6, L, E), (B, 3, S, E), (B, 2, S, EV)), None, {"enable_gqa": True}),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_torch(case, dtype):
    shapes, mask, options = CASES[case]
    if mask is not None and mask.is_floating_point():
        mask = mask.to(dtype)
    _compare(*shapes, dtype, mask=mask, **options)


def test_float32_mask_with_a_float64_query():
    """torch takes a float32 mask for any query dtype; its gradient comes back float32."""
    _compare(*QKV, torch.float64, mask=_float((L, S)))


@pytest.mark.parametrize("requires", [(True, False, False), (False, True, False),
                                      (False, False, True), (False, True, True)])
def test_only_some_inputs_require_grad(requires):
    _compare(*QKV, torch.float64, mask=_bool((L, S)), requires=requires)
    _compare(*CASES["causal_blocks_l_gt_s"][0], torch.float64, requires=requires,
             is_causal=True)


@pytest.mark.parametrize("blocks", [1, 3, 4])
def test_causal_query_blocks(blocks, monkeypatch):
    """The causal path cuts the query rows into blocks; any count gives torch's result."""
    monkeypatch.setattr(attention, "CAUSAL_BLOCKS", blocks)
    for case in ("causal_blocks_square", "causal_blocks_l_gt_s", "causal_blocks_l_lt_s"):
        _compare(*CASES[case][0], torch.float64, is_causal=True)
    _compare((2, 130, 4), (2, 130, 4), (2, 130, 3), torch.float64, is_causal=True)


def test_non_contiguous_heads_layout(dtype):
    """q, k, v as projections leave them: (B, T, heads, E) transposed to (B, heads, T, E)."""
    def heads_layout(x):  # same values, strides of a transposed (B, T, H, E) buffer
        return x.transpose(1, 2).contiguous().transpose(1, 2)

    out = _compare(*QKV, dtype, layout=heads_layout, is_causal=True)
    assert out.shape == (B, H, L, EV)
    _compare(*QKV, dtype, mask=_bool((B, 1, L, S)), layout=lambda x: x.mT.contiguous().mT)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows_are_zero_as_in_torch(kind, dtype):
    """A query row that may attend no key: torch's CPU call returns 0 there (and zero
    gradients through it), not the NaN of a plain softmax over -inf."""
    allowed = _bool((B, H, L, S))
    allowed[:, :, 1] = False
    allowed[0, 2, 3] = False
    mask = allowed if kind == "bool" else torch.zeros(allowed.shape, dtype=dtype).masked_fill(
        allowed.logical_not(), float("-inf"))
    out = _compare(*QKV, dtype, mask=mask)
    assert torch.all(out.data[:, :, 1] == 0) and torch.all(out.data[0, 2, 3] == 0)
    assert torch.isfinite(out.data).all()


# ---------------------------------------------------------------------------- dropout
def _inputs(shape=(4, 2, 16, 8), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [hg.Tensor(torch.randn(shape, generator=gen, dtype=torch.float64),
                      requires_grad=True) for _ in range(3)]


def test_dropout_zero_is_exact():
    q, k, v = _inputs()
    plain = F.scaled_dot_product_attention(q, k, v)
    assert torch.equal(F.scaled_dot_product_attention(q, k, v, dropout_p=0.0).data, plain.data)


def test_dropout_one_zeroes_the_output_and_the_gradients():
    q, k, v = _inputs()
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    assert torch.equal(out.data, torch.zeros_like(out.data))
    expected = TF.scaled_dot_product_attention(q.data, k.data, v.data, dropout_p=1.0)
    assert torch.equal(expected, torch.zeros_like(expected))  # torch agrees
    out.sum().backward()
    for x in (q, k, v):
        assert torch.equal(x.grad.data, torch.zeros_like(x.data))


def test_dropout_statistics():
    """With value = the identity, the output is the dropped weights themselves: about a
    fraction p of them zero, the others P / (1 - p); over many draws the mean output is
    the output without dropout."""
    p, steps = 0.3, 200
    gen = torch.Generator().manual_seed(0)
    q = hg.Tensor(torch.randn(8, 16, 4, generator=gen, dtype=torch.float64))
    k = hg.Tensor(torch.randn(8, 16, 4, generator=gen, dtype=torch.float64))
    eye = hg.Tensor(torch.eye(16, dtype=torch.float64).expand(8, 16, 16))
    weights = F.scaled_dot_product_attention(q, k, eye).data  # P, all > 0
    torch.manual_seed(0)
    dropped = F.scaled_dot_product_attention(q, k, eye, dropout_p=p).data
    zero = dropped == 0
    assert abs(zero.double().mean().item() - p) < 0.03
    torch.testing.assert_close(dropped[~zero], weights[~zero] / (1 - p))
    mean = sum(F.scaled_dot_product_attention(q, k, eye, dropout_p=p).data
               for _ in range(steps)) / steps
    assert (mean - weights).abs().mean() < 0.1 * weights.mean()


@pytest.mark.parametrize("steps", [5, 64])  # 64: two causal query blocks
def test_dropout_backward_matches_the_same_math_with_the_same_mask(steps):
    """torch.manual_seed(s) then the Function draws Bernoulli(1 - p) over (*batch, L, S):
    torch's math with that mask is the reference, gradients included."""
    p = 0.4
    q, k, v = _inputs((2, 3, steps, 4))
    torch.manual_seed(7)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
    torch.manual_seed(7)
    keep = torch.empty(2, 3, steps, steps, dtype=torch.float64).bernoulli_(1 - p) / (1 - p)
    tq, tk, tv = (x.data.clone().requires_grad_() for x in (q, k, v))
    upper = torch.ones(steps, steps, dtype=torch.bool).triu(1)
    scores = (tq @ tk.mT / 2).masked_fill(upper, -math.inf)
    expected = (scores.softmax(-1) * keep) @ tv
    assert_close(out, expected, torch.float64, "output")
    upstream = torch.randn(expected.shape, dtype=torch.float64)
    out.backward(hg.Tensor(upstream))
    expected.backward(upstream)
    for name, a, e in zip("qkv", (q, k, v), (tq, tk, tv)):
        assert_close(a.grad, e.grad, torch.float64, f"gradient of {name}")


# ---------------------------------------------------------------------------- errors
def _both_raise(error, *args, **kwargs):
    """torch and handgrad raise `error` for the same arguments (handgrad's message naming
    the op); returns handgrad's message."""
    theirs = [a.data if isinstance(a, hg.Tensor) else a for a in args]
    theirs_kw = {n: a.data if isinstance(a, hg.Tensor) else a for n, a in kwargs.items()}
    with pytest.raises(error):
        TF.scaled_dot_product_attention(*theirs, **theirs_kw)
    with pytest.raises(error, match="scaled_dot_product_attention") as info:
        F.scaled_dot_product_attention(*args, **kwargs)
    return str(info.value)


def _t(*shape, dtype=torch.float32):
    return hg.Tensor(torch.randn(shape).to(dtype))


def test_errors_as_torch_raises_them():
    q, k, v = _t(2, 3, 4, 8), _t(2, 3, 5, 8), _t(2, 3, 5, 6)
    assert "at least 2" in _both_raise(RuntimeError, _t(8), _t(8), _t(8))
    assert "embedding size" in _both_raise(RuntimeError, q, _t(2, 3, 5, 7), v)
    assert "sequence length" in _both_raise(RuntimeError, q, k, _t(2, 3, 6, 6))
    assert "same dtype" in _both_raise(RuntimeError, q, _t(2, 3, 5, 8, dtype=torch.float64), v)
    assert "do not broadcast" in _both_raise(RuntimeError, _t(2, 4, 4, 8), k, v)
    message = _both_raise(RuntimeError, q, k, v, attn_mask=hg.Tensor(torch.ones(4, 6).bool()))
    assert "(4, 6)" in message and "(2, 3, 4, 5)" in message
    # a mask may not grow the batch of query and key, even when value's is larger
    _both_raise(RuntimeError, _t(1, 1, 4, 8), _t(1, 1, 5, 8), _t(1, 3, 5, 6),
                attn_mask=hg.Tensor(torch.ones(3, 4, 5).bool()))
    _both_raise(RuntimeError, q, k, v, attn_mask=hg.Tensor(torch.ones(7, 2, 3, 4, 5).bool()))
    assert "at least 2 dims" in _both_raise(IndexError, q, k, v,
                                            attn_mask=hg.Tensor(torch.ones(5).bool()))
    for bad in (torch.int64, torch.float64):
        assert "dtype" in _both_raise(RuntimeError, q, k, v,
                                      attn_mask=hg.Tensor(torch.ones(4, 5, dtype=bad)))
    assert "is_causal" in _both_raise(RuntimeError, q, k, v, is_causal=True,
                                      attn_mask=hg.Tensor(torch.ones(4, 5).bool()))
    assert "between 0 and 1" in _both_raise(RuntimeError, q, k, v, dropout_p=1.5)
    assert "divide" in _both_raise(RuntimeError, _t(2, 4, 4, 8), k, v, enable_gqa=True)
    _both_raise(IndexError, _t(4, 8), _t(5, 8), _t(5, 6), enable_gqa=True)
    with pytest.raises(TypeError):  # scale and enable_gqa are keyword-only, as in torch
        F.scaled_dot_product_attention(q, k, v, None, 0.0, False, 0.5)


def test_empty_sequences():
    """No keys (S = 0) gives zeros, as torch; no queries an empty output."""
    q, k, v = _t(2, 4, 8), _t(2, 0, 8), _t(2, 0, 6)
    assert torch.equal(F.scaled_dot_product_attention(q, k, v).data, torch.zeros(2, 4, 6))
    out = F.scaled_dot_product_attention(_t(2, 0, 8), _t(2, 5, 8), _t(2, 5, 6))
    assert out.shape == (2, 0, 6)


# ---------------------------------------------------------------------------- CUDA
@pytest.mark.parametrize("case", ["causal_l_lt_s", "bool_key_padding", "float_full", "gqa"])
def test_on_each_device(case, device, dtype):
    """The same Function on every device, against torch's call on that device (on CUDA
    torch picks its own kernels for float32; float64 runs its math backend)."""
    shapes, mask, options = CASES[case]
    if mask is not None and mask.is_floating_point():
        mask = mask.to(dtype)
    _compare(*shapes, dtype, mask=mask, device=device, **options)


@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.float64])
@pytest.mark.parametrize("lengths", [(4, 4), (3, 5), (5, 3)])
def test_a_mask_and_is_causal_together_as_torch_takes_them(mask_dtype, lengths):
    """torch 2.13 takes attn_mask with is_causal for 4-d inputs (its CPU flash kernel:
    the mask and the top-left causal mask both apply); handgrad folds them likewise, and
    the gradients flow to q, k, v."""
    L, S = lengths
    gen = torch.Generator().manual_seed(L * 10 + S)
    q, k, v = (torch.randn(2, 2, n, 8, dtype=torch.float64, generator=gen) for n in (L, S, S))
    mask = (torch.rand(L, S, generator=gen) > 0.3 if mask_dtype == torch.bool
            else torch.randn(L, S, dtype=torch.float64, generator=gen))
    tq, tk, tv = (t.clone().requires_grad_() for t in (q, k, v))
    ref = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=mask, is_causal=True)
    hq, hk, hv = (hg.tensor(t, requires_grad=True) for t in (q, k, v))
    out = F.scaled_dot_product_attention(hq, hk, hv, attn_mask=hg.Tensor(mask),
                                         is_causal=True)
    upstream = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
    ref.backward(upstream)
    out.backward(hg.Tensor(upstream))
    rows = ~torch.isnan(ref).any(-1, keepdim=True)  # rows with no key left are NaN in torch
    torch.testing.assert_close(out.data * rows, torch.nan_to_num(ref) * rows)
    if bool(rows.all()):
        for mine, theirs in ((hq, tq), (hk, tk), (hv, tv)):
            torch.testing.assert_close(mine.grad.data, theirs.grad)
