# %% [markdown]
# # 10. Attention by hand
#
# **What this builds.** Scaled dot-product attention and its backward written out and
# checked against handgrad's fused `F.scaled_dot_product_attention`; causal and padding
# masks; multi-head attention as reshapes; a tiny GPT trained on Tiny Shakespeare; and
# what the KV cache saves when generating, timed.
#
# **What it assumes.** Notebooks 4 (softmax and cross-entropy by hand), 7 (Functions) and
# 9 (language models, sampling). Tiny Shakespeare is read from `HANDGRAD_DATA` (no
# download). Runs in well under a minute on a laptop CPU; `STEPS` trains longer.
#
# torch appears only as the oracle that checks handgrad's answers.

# %%
# %matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import torch

import handgrad as hg
import handgrad.nn.functional as F
from handgrad.data.datasets import tiny_shakespeare
from handgrad.models.char_rnn import Vocabulary
from handgrad.models.decoding import generate
from handgrad.models.gpt import GPT, CausalSelfAttention, RandomWindows

plt.rcParams["figure.dpi"] = 80
hg.set_num_threads(1)             # a laptop-sized run; remove to use every core
_ = hg.manual_seed(0)
STEPS = 100         # tiny-GPT training steps; see the end for a real run

# %% [markdown]
# ## 1. Attention is a soft dictionary lookup
#
# Each query $q_i$ scores every key $k_j$, the scores become weights by a softmax over
# $j$, and the output is the weighted mean of the values:
#
# $$S = \frac{Q K^{\top}}{\sqrt d}, \qquad P = \operatorname{softmax}_{\text{rows}}(S), \qquad
# O = P V.$$
#
# Dividing by $\sqrt d$ keeps the scores' variance near 1 whatever the head size $d$, so
# the softmax does not saturate at the start of training. The softmax subtracts each
# row's maximum first (the same value, no overflow: notebook 4's log-sum-exp trick).

# %%
def softmax_rows(s):
    e = torch.exp(s - s.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def attention(q, k, v, mask=None):
    """q (..., L, d), k and v (..., S, d); mask (L, S) bool, True = may attend."""
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])     # (..., L, S)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    p = softmax_rows(s)
    return p @ v, p


B, L, d = 2, 5, 8
q, k, v = torch.randn(B, L, d), torch.randn(B, L, d), torch.randn(B, L, d)
o, p = attention(q, k, v)
torch.testing.assert_close(o, F.scaled_dot_product_attention(hg.tensor(q), hg.tensor(k),
                                                             hg.tensor(v)).data)
torch.testing.assert_close(o, torch.nn.functional.scaled_dot_product_attention(q, k, v))
print("by hand == handgrad's fused attention == torch; each row of P sums to",
      [round(x, 4) for x in p.sum(-1)[0].tolist()])

# %% [markdown]
# ## 2. The backward
#
# With $\bar O = \partial L/\partial O$, walk the three lines backwards:
#
# * $O = PV$: $\;\bar V = P^{\top}\bar O$, $\;\bar P = \bar O V^{\top}$;
# * softmax, row by row: $\bar S = P \odot \big(\bar P - \operatorname{rowsum}(\bar P
#   \odot P)\big)$ (the Jacobian of a softmax is $\operatorname{diag}(p) - p p^{\top}$);
# * $S = QK^{\top}/\sqrt d$: $\;\bar Q = \bar S K/\sqrt d$, $\;\bar K = \bar S^{\top} Q/\sqrt d$.
#
# Only $P$ (and the inputs) need to be kept from the forward.

# %%
def attention_backward(g, q, k, v, p):
    dv = p.transpose(-2, -1) @ g
    dp = g @ v.transpose(-2, -1)
    ds = p * (dp - (dp * p).sum(dim=-1, keepdim=True))
    scale = 1 / math.sqrt(q.shape[-1])
    return ds @ k * scale, ds.transpose(-2, -1) @ q * scale, dv


g = torch.randn_like(o)
dq, dk, dv = attention_backward(g, q, k, v, p)
qh, kh, vh = (hg.tensor(t, requires_grad=True) for t in (q, k, v))
(F.scaled_dot_product_attention(qh, kh, vh) * hg.tensor(g)).sum().backward()
for mine, theirs in ((dq, qh.grad), (dk, kh.grad), (dv, vh.grad)):
    torch.testing.assert_close(mine, theirs.data)
print("hand-written backward == handgrad's fused backward for q, k and v")

# %% [markdown]
# handgrad's fused Function does the same, in query blocks (so the $L\times S$ matrix of a
# long sequence never needs to exist whole). Against the same attention composed from
# handgrad primitives (matmul, exp, sum, division: one graph node each), on a GPT-sized
# input:

# %%
def composed_attention(q, k, v):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    e = (s - s.amax(dim=-1, keepdim=True).detach()).exp()
    return e / e.sum(dim=-1, keepdim=True) @ v


big = [hg.randn(8, 4, 64, 16, requires_grad=True) for _ in range(3)]  # (B, heads, T, d)
upstream = hg.randn(8, 4, 64, 16)


def best_ms(fn, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        hg.grad((fn(*big) * upstream).sum(), big)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


for a, b in zip(hg.grad((F.scaled_dot_product_attention(*big) * upstream).sum(), big),
                hg.grad((composed_attention(*big) * upstream).sum(), big)):
    torch.testing.assert_close(a.data, b.data, rtol=1e-4, atol=1e-5)
fused_ms = best_ms(F.scaled_dot_product_attention)
composed_ms = best_ms(composed_attention)
print(f"forward+backward: fused {fused_ms:.2f} ms, composed {composed_ms:.2f} ms "
      f"({composed_ms / fused_ms:.1f}x); gradients agree")

# %% [markdown]
# ## 3. Masks
#
# A mask removes scores before the softmax (they become $-\infty$, so their weight is 0).
# A **causal** mask lets position $i$ see positions $j \le i$ only: a language model
# must not read the character it is asked to predict. A **padding** mask hides the
# padded positions at the end of shorter sentences in a batch (notebook 11).
#
# ### Exercise 1: the causal mask
#
# Write `causal_mask(L)`: an $(L, L)$ bool tensor, True where query $i$ may attend to key
# $j$. The check compares attention with your mask to `is_causal=True`.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def causal_mask(L):
    return torch.ones(L, L, dtype=torch.bool).tril()


# %%
# check
def check_causal_mask():
    mask = causal_mask(L)
    if mask.dtype != torch.bool or tuple(mask.shape) != (L, L):
        return f"not yet: expected a ({L}, {L}) bool tensor, got {tuple(mask.shape)} {mask.dtype}"
    mine, _ = attention(q, k, v, mask)
    fused = F.scaled_dot_product_attention(hg.tensor(q), hg.tensor(k), hg.tensor(v),
                                           is_causal=True)
    if not torch.allclose(mine, fused.data, atol=1e-6):
        return "not yet: the result differs from is_causal=True (True means 'may attend')"
    return "correct"


print(check_causal_mask())
assert check_causal_mask() == "correct"

# %%
padding = torch.tensor([True, True, True, False, False])   # the last two keys are padding
_, p_causal = attention(q, k, v, causal_mask(L))
_, p_padded = attention(q, k, v, padding.expand(L, L))
fig, axes = plt.subplots(1, 2, figsize=(6, 2.8))
for ax, weights, title in ((axes[0], p_causal, "causal"), (axes[1], p_padded, "padding")):
    ax.imshow(weights[0], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"{title}: weights P")
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")
plt.show()

# %% [markdown]
# ## 4. Many heads are reshapes
#
# Multi-head attention with $h$ heads splits the width $C$ into $h$ heads of
# $d = C/h$: project once to $q, k, v$ of shape $(B, T, C)$, view them as
# $(B, T, h, d)$, move the head axis forward to $(B, h, T, d)$, attend (each head on its
# own), then undo the reshape and project back with $W_{proj}$. Here by hand, against
# the GPT's `CausalSelfAttention` module:
#
# ### Exercise 2: split and merge heads
#
# Write `split_heads(x, h)` ($(B, T, C) \to (B, h, T, C/h)$) and `merge_heads(x)` (the
# inverse), on torch tensors.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def split_heads(x, h):
    B, T, C = x.shape
    return x.reshape(B, T, h, C // h).transpose(1, 2)


def merge_heads(x):
    B, h, T, d = x.shape
    return x.transpose(1, 2).reshape(B, T, h * d)


# %%
# check
def multi_head_by_hand(module, x):
    C = x.shape[-1]
    qkv = x @ module.c_attn.weight.data.T + module.c_attn.bias.data     # (B, T, 3C)
    q, k, v = (split_heads(qkv[..., i * C:(i + 1) * C], module.n_head) for i in range(3))
    heads, _ = attention(q, k, v, causal_mask(x.shape[1]))             # (B, h, T, d)
    return merge_heads(heads) @ module.c_proj.weight.data.T + module.c_proj.bias.data


def check_heads():
    module = CausalSelfAttention(n_embd=32, n_head=4)
    x = torch.randn(2, 7, 32)
    y = split_heads(x, 4)
    if tuple(y.shape) != (2, 4, 7, 8):
        return f"not yet: split_heads gives {tuple(y.shape)}, expected (2, 4, 7, 8)"
    if not torch.equal(y[:, 1], x[:, :, 8:16]):
        return ("not yet: head 1 should hold channels 8:16 of every position: view x as "
                "(B, T, h, d) first, then move the head axis forward")
    if not torch.equal(merge_heads(y), x):
        return "not yet: merge_heads(split_heads(x)) is not x"
    if not torch.allclose(multi_head_by_hand(module, x), module(hg.tensor(x)).data, atol=1e-5):
        return "not yet: multi-head attention by hand differs from CausalSelfAttention"
    return "correct"


print(check_heads())
assert check_heads() == "correct"

# %% [markdown]
# ## 5. A tiny GPT
#
# `handgrad.models.gpt.GPT` stacks blocks of `x + attention(LayerNorm(x))` and
# `x + MLP(LayerNorm(x))` over token and position embeddings (nanoGPT's shape). Ours is
# tiny: 2 blocks, 4 heads, width 64, a context of 64 characters; `STEPS` AdamW steps on
# random windows of the text.

# %%
text = tiny_shakespeare()                # from HANDGRAD_DATA, never downloaded here
vocab = Vocabulary.from_text(text)
ids = vocab.encode(text[:500_000])
model = GPT(len(vocab), block_size=64, n_layer=2, n_head=4, n_embd=64)
optimizer = hg.optim.AdamW(model.parameters(), lr=3e-3)
losses, start = [], time.perf_counter()
for inputs, targets in RandomWindows(ids, batch_size=32, block_size=64, steps=STEPS,
                                     generator=torch.Generator().manual_seed(0)):
    _, loss = model(inputs, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print(f"{STEPS} steps in {time.perf_counter() - start:.1f} s: loss {losses[0]:.2f} -> "
      f"{losses[-1]:.2f} nats/char")
model.eval()
print("".join(generate(model, vocab, "\n", 200, temperature=0.8,
                       generator=torch.Generator().manual_seed(0))))

# %% [markdown]
# After 100 steps the GPT has learnt letter frequencies, spaces and line breaks, not yet
# words: it starts slower than the LSTM of notebook 9. The reference recipe (4 blocks,
# width 128, context 128, 3,000 steps with warm-up and a cosine schedule; about 20
# minutes on one CPU thread) reaches about 1.5 nats/char on held-out text:
#
# ```
# handgrad train gpt                 # then: handgrad sample <checkpoint> --prompt "ROMEO:"
# ```
#
# ## 6. What the KV cache saves
#
# Generating one character at a time, the model without a cache re-reads the whole
# context at every step: character $t$ costs $O(t)$ positions through every layer, and
# their keys and values are recomputed each time. The **KV cache** keeps each layer's
# keys and values; a new character computes only its own $q, k, v$ and attends to the
# cache. Time both on an untrained GPT with a longer context (the speed does not depend
# on the weights):

# %%
wide = GPT(len(vocab), block_size=256, n_layer=2, n_head=4, n_embd=64).eval()
seconds = {}
for use_cache in (True, False):
    start = time.perf_counter()
    out = "".join(generate(wide, vocab, "\n", 250, generator=torch.Generator().manual_seed(0),
                           use_cache=use_cache))
    seconds[use_cache] = time.perf_counter() - start
    seconds[f"text {use_cache}"] = out
assert seconds["text True"] == seconds["text False"]    # the same characters either way
print(f"250 characters: with the KV cache {seconds[True]:.2f} s, without "
      f"{seconds[False]:.2f} s ({seconds[False] / seconds[True]:.1f}x)")

# %% [markdown]
# The gap grows with the length of the context. Notebook 11 puts attention into an
# encoder-decoder that translates.
