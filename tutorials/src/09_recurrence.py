# %% [markdown]
# # 9. Recurrence by hand
#
# **What this builds.** A vanilla RNN cell and backpropagation through time (BPTT) written
# step by step and checked against handgrad's fused `nn.RNN`; exploding and vanishing
# gradients measured; the LSTM and GRU gates written out; truncated BPTT; and a
# character-level LSTM trained on Tiny Shakespeare that writes (Shakespeare-ish) text.
#
# **What it assumes.** Notebooks 4 (backprop with matrices) and 7 (Functions). Tiny
# Shakespeare is read from `HANDGRAD_DATA` (no download here). Runs in well under a minute
# on a laptop CPU; `STEPS` trains longer.
#
# torch appears only as the oracle that checks handgrad's answers.

# %%
# %matplotlib inline
import time

import matplotlib.pyplot as plt
import torch

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from handgrad.data.datasets import tiny_shakespeare
from handgrad.models.char_rnn import CharRNN, StreamBatches, Vocabulary, detach_state, generate

plt.rcParams["figure.dpi"] = 80
hg.set_num_threads(1)             # a laptop-sized run; remove to use every core
_ = hg.manual_seed(0)
STEPS = 100         # char-LSTM training steps; see the last section for longer runs

# %% [markdown]
# ## 1. An RNN cell, unrolled
#
# At each step $t$ the cell mixes the input $x_t$ with its previous state:
#
# $$a_t = x_t W_{ih}^{\top} + b_{ih} + h_{t-1} W_{hh}^{\top} + b_{hh}, \qquad
# h_t = \tanh(a_t).$$
#
# The same weights serve every step. Unrolled over $T$ steps it is an ordinary deep
# network, $T$ layers deep, whose layers share their weights.

# %%
def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """x (T, B, I), h0 (B, H) -> all states (T + 1, B, H), h[0] = h0."""
    hs = [h0]
    for t in range(x.shape[0]):
        hs.append(torch.tanh(x[t] @ W_ih.T + b_ih + hs[-1] @ W_hh.T + b_hh))
    return torch.stack(hs)


T, B, I, H = 6, 3, 4, 5
layer = nn.RNN(I, H)                       # handgrad's fused RNN, torch's parameter names
W_ih, W_hh, b_ih, b_hh = (p.data.clone() for p in layer.parameters())
x, h0 = torch.randn(T, B, I), torch.zeros(B, H)
hs = rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh)
out, h_n = layer(hg.tensor(x))
torch.testing.assert_close(hs[1:], out.data)
print("hand-written RNN == nn.RNN, outputs", tuple(out.shape))

# %% [markdown]
# ## 2. Backpropagation through time, step by step
#
# Say the loss reads every output, with upstream gradients $g_t = \partial L/\partial h_t$.
# State $h_t$ also feeds step $t+1$, so its total gradient is
# $\bar h_t = g_t + \bar a_{t+1} W_{hh}$. Walking back from $t = T$:
#
# $$\bar a_t = \bar h_t \odot (1 - h_t^2), \qquad
# \bar W_{ih} \mathrel{+}= \bar a_t^{\top} x_t, \qquad
# \bar W_{hh} \mathrel{+}= \bar a_t^{\top} h_{t-1}, \qquad
# \bar b \mathrel{+}= \textstyle\sum_{\text{batch}} \bar a_t,$$
#
# $$\bar x_t = \bar a_t W_{ih}, \qquad \text{and } \bar a_t W_{hh}
# \text{ flows on into } \bar h_{t-1}.$$
#
# The weight gradients **accumulate** over steps: one weight, used $T$ times.

# %%
def rnn_backward(g, x, hs, W_ih, W_hh):
    dW_ih, dW_hh = torch.zeros_like(W_ih), torch.zeros_like(W_hh)
    db = torch.zeros(W_hh.shape[0])
    dx = torch.zeros_like(x)
    carry = torch.zeros_like(hs[0])            # gradient arriving from step t + 1
    for t in reversed(range(x.shape[0])):
        dh = g[t] + carry
        da = dh * (1 - hs[t + 1] ** 2)          # through tanh
        dW_ih += da.T @ x[t]
        dW_hh += da.T @ hs[t]                    # hs[t] is h_{t-1}
        db += da.sum(0)
        dx[t] = da @ W_ih
        carry = da @ W_hh
    return dx, dW_ih, dW_hh, db, carry           # carry: the gradient of h0


g = torch.randn(T, B, H)
dx, dW_ih, dW_hh, db, dh0 = rnn_backward(g, x, hs, W_ih, W_hh)

xh = hg.tensor(x, requires_grad=True)
out, _ = layer(xh)
(out * hg.tensor(g)).sum().backward()
torch.testing.assert_close(dx, xh.grad.data)
torch.testing.assert_close(dW_ih, layer.weight_ih_l0.grad.data)
torch.testing.assert_close(dW_hh, layer.weight_hh_l0.grad.data)
torch.testing.assert_close(db, layer.bias_hh_l0.grad.data)   # the same for both biases
print("hand-written BPTT == nn.RNN's backward (x, W_ih, W_hh, biases)")

# the oracle, once: torch.nn.RNN with the same weights
oracle = torch.nn.RNN(I, H)
oracle.load_state_dict({k: v.data for k, v in layer.state_dict().items()})
xt = x.clone().requires_grad_()
(oracle(xt)[0] * g).sum().backward()
torch.testing.assert_close(dx, xt.grad)

# %% [markdown]
# ## 3. Exploding and vanishing gradients, measured
#
# The gradient reaching $h_0$ from the last step is a product of $T$ Jacobians
# $\operatorname{diag}(1 - h_t^2)\,W_{hh}$. Its size grows or shrinks roughly like
# $\rho^T$, with $\rho$ the spectral radius of $W_{hh}$ (tanh's derivative, at most 1,
# shrinks it further). Measure $\lVert\partial h_T/\partial h_0\rVert$ with our backward,
# for recurrent weights scaled to $\rho = 0.5, 1, 1.5$, and $\rho = 1.1$ with tanh replaced
# by the identity (pure growth: $1.1^T$).

# %%
def gradient_to_h0(W_hh, steps, linear=False):
    torch.manual_seed(0)
    hidden = W_hh.shape[0]
    x = torch.zeros(steps, 1, 1)               # no input: only the recurrence matters
    W_ih = torch.zeros(hidden, 1)
    h = [torch.randn(1, hidden) * 0.1]
    for _ in range(steps):
        a = h[-1] @ W_hh.T
        h.append(a if linear else torch.tanh(a))
    g = torch.zeros(steps, 1, hidden)
    g[-1] = 1.0                              # dL/dh_T = ones, nothing from earlier steps
    if linear:                               # derivative of the identity is 1: (1 - 0)
        h = [torch.zeros_like(v) for v in h]
    return rnn_backward(g, x, torch.stack(h), W_ih, W_hh)[-1].norm().item()


torch.manual_seed(1)
Q, _ = torch.linalg.qr(torch.randn(32, 32))  # orthogonal: every eigenvalue has |.| = 1
lengths = range(1, 61, 3)
fig, ax = plt.subplots(figsize=(6, 3))
for rho, linear in ((0.5, False), (1.0, False), (1.5, False), (1.1, True)):
    norms = [gradient_to_h0(rho * Q, n, linear) for n in lengths]
    ax.semilogy(list(lengths), norms, label=f"rho = {rho}" + (" (linear)" if linear else ""))
ax.set_xlabel("steps back in time")
ax.set_ylabel("|dh_T / dh_0|")
ax.legend(fontsize=8)
ax.set_title("gradient size through T steps")
plt.show()

# %% [markdown]
# With tanh and $\rho = 1.5$ the state saturates ($1 - h^2$ gets small), which holds the
# growth back; without it (the linear curve) the gradient grows like $\rho^T$.
# Shrinking gradients mean the first characters of a long sequence teach the weights
# almost nothing (vanishing); growing ones make a step blow up (exploding, tamed by
# `nn.utils.clip_grad_norm_`). The LSTM's answer to vanishing is an additive path.
#
# ### Exercise 1: clip the gradient norm
#
# Clipping treats all the gradients of a model as one long vector $g$, of length
# $\lVert g\rVert = \sqrt{\sum_p \sum_i g_{p,i}^2}$ (every element of every parameter's
# gradient). If $\lVert g\rVert$ is above `max_norm`, every gradient is multiplied by the
# same $\text{max\_norm} / (\lVert g\rVert + 10^{-6})$: the step keeps its direction and
# only gets shorter. Below `max_norm` nothing changes. Write
# `clip_grad_norm(parameters, max_norm)`: it rescales each `p.grad` in place and returns
# $\lVert g\rVert$ before clipping, as `nn.utils.clip_grad_norm_` (used in section 5) does.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = sum(g.pow(2).sum().item() for g in grads) ** 0.5
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / (total + 1e-6))
    return total


# %%
# check
def check_clip():
    cell = nn.RNN(4, 8)
    twin = nn.RNN(4, 8)
    twin.load_state_dict(cell.state_dict())
    inputs = hg.randn(30, 2, 4) * 3                  # a long input: large gradients
    for model in (cell, twin):
        (model(inputs)[0] ** 2).sum().backward()
    for max_norm in (0.5, 1e6):                       # clipped, then left alone
        mine = clip_grad_norm(list(cell.parameters()), max_norm)
        theirs = nn.utils.clip_grad_norm_(twin.parameters(), max_norm).item()
        if not isinstance(mine, (int, float)) and getattr(mine, "shape", None) != ():
            return f"not yet: return the total norm as one number, got {type(mine).__name__}"
        if abs(float(mine) - theirs) > 1e-4 * theirs:
            return (f"not yet: with max_norm={max_norm} you return {float(mine):.6g}, the norm "
                    f"of every gradient element together (before clipping) is {theirs:.6g}")
        for (name, p), q in zip(cell.named_parameters(), twin.parameters()):
            if not torch.allclose(p.grad.data, q.grad.data, rtol=1e-5, atol=1e-7):
                return (f"not yet: after clipping to {max_norm}, {name}.grad differs from "
                        "clip_grad_norm_'s: scale every gradient by the same "
                        "max_norm / (norm + 1e-6), only when the norm is above max_norm")
    return "correct"


result = check_clip()
print(result)
assert result == "correct", result

# %% [markdown]
# ## 4. LSTM and GRU gates
#
# The **LSTM** keeps a cell state $c_t$ that is changed only by addition:
#
# $$\begin{aligned}
# (i, f, g, o) &= \text{split}_4\big(x_t W_{ih}^{\top} + b_{ih}
#   + h_{t-1} W_{hh}^{\top} + b_{hh}\big)\\
# c_t &= \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g), \qquad
# h_t = \sigma(o) \odot \tanh(c_t).
# \end{aligned}$$
#
# $\partial c_t/\partial c_{t-1} = \sigma(f)$: no weight matrix, no squashing; when the
# forget gate stays near 1, gradient flows back across many steps. Written with handgrad
# tensor ops (each with its own proven backward) it is checked against the fused
# `nn.LSTM`, whose single Function runs the whole sequence:

# %%
def lstm_composed(x, W_ih, W_hh, b_ih, b_hh):
    """x (T, B, I) handgrad Tensor -> outputs (T, B, H), from primitives."""
    H = W_hh.shape[1]
    h = c = hg.zeros(x.shape[1], H)
    outputs = []
    for t in range(x.shape[0]):
        z = x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh         # (B, 4H)
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        outputs.append(h)
    return hg.stack(outputs)


lstm = nn.LSTM(16, 32)
xs = hg.randn(40, 8, 16)
weights = list(lstm.parameters())
fused_out, _ = lstm(xs)
composed_out = lstm_composed(xs, *weights)
torch.testing.assert_close(fused_out.data, composed_out.data)
upstream = hg.randn(40, 8, 32)
fused_grads = hg.grad((fused_out * upstream).sum(), weights)
composed_grads = hg.grad((composed_out * upstream).sum(), weights)
for a, b in zip(fused_grads, composed_grads):
    torch.testing.assert_close(a.data, b.data, rtol=1e-4, atol=1e-5)


def best_ms(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        hg.grad((fn() * upstream).sum(), weights)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


fused_ms = best_ms(lambda: lstm(xs)[0])
composed_ms = best_ms(lambda: lstm_composed(xs, *weights))
print(f"LSTM, 40 steps: fused {fused_ms:.1f} ms, composed {composed_ms:.1f} ms "
      f"forward+backward ({composed_ms / fused_ms:.1f}x); values and gradients agree")

# %% [markdown]
# ### Exercise 2: a GRU step
#
# The **GRU** (torch's gate order r, z, n) uses two gates and no separate cell:
#
# $$r = \sigma(x W_{ir}^{\top} + b_{ir} + h W_{hr}^{\top} + b_{hr}),\quad
# z = \sigma(x W_{iz}^{\top} + b_{iz} + h W_{hz}^{\top} + b_{hz}),$$
# $$n = \tanh\big(x W_{in}^{\top} + b_{in} + r \odot (h W_{hn}^{\top} + b_{hn})\big),\quad
# h' = (1 - z) \odot n + z \odot h.$$
#
# The weights are stacked: `W_ih` is $(3H, I)$ with the rows of r, z, n in that order.
# Write `gru_step(x, h, W_ih, W_hh, b_ih, b_hh)` on torch tensors.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def gru_step(x, h, W_ih, W_hh, b_ih, b_hh):
    gi = x @ W_ih.T + b_ih                       # (B, 3H)
    gh = h @ W_hh.T + b_hh                       # (B, 3H)
    H = h.shape[1]
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


# %%
# check
def check_gru():
    cell = nn.GRUCell(4, 6)
    x, h = hg.randn(3, 4), hg.randn(3, 6)
    expected = cell(x, h).data
    got = gru_step(x.data, h.data, *(p.data for p in cell.parameters()))
    if tuple(got.shape) != tuple(expected.shape):
        return f"not yet: shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if not torch.allclose(got, expected, atol=1e-6):
        return "not yet: the new state differs from nn.GRUCell's (check the gate order r, z, n)"
    return "correct"


print(check_gru())
assert check_gru() == "correct"

# %% [markdown]
# ## 5. Truncated BPTT and a char-LSTM
#
# A book is one sequence a million characters long: we cannot backpropagate through all
# of it. **Truncated BPTT** cuts the text into `batch_size` parallel streams and reads
# them in chunks of `seq_len`: the state at the end of a chunk is carried into the next
# (so the model still sees long context going forward) but **detached** from the graph
# (so backward stops at the chunk boundary). `StreamBatches` and `detach_state` from
# `handgrad.models.char_rnn` do exactly that.
#
# The model: an embedding, one LSTM layer of 192, a linear layer to the 65 characters; the
# loss, cross-entropy of the next character. We train `STEPS` Adam steps on the first
# 200,000 characters.

# %%
text = tiny_shakespeare()                  # from HANDGRAD_DATA, never downloaded here
vocab = Vocabulary.from_text(text)
ids = vocab.encode(text[:200_000])
model = CharRNN(len(vocab), "lstm", embedding=32, hidden=192, layers=1)
optimizer = hg.optim.Adam(model.parameters(), lr=1e-2)
losses, state, start = [], None, time.perf_counter()
while len(losses) < STEPS:
    state = None                            # a new pass over the text starts from zeros
    for inputs, targets in StreamBatches(ids, batch_size=32, seq_len=64):
        logits, state = model(inputs, state)
        state = detach_state(state)         # carry the state, cut the graph
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if len(losses) == STEPS:
            break
print(f"{STEPS} steps in {time.perf_counter() - start:.1f} s: loss {losses[0]:.2f} -> "
      f"{losses[-1]:.2f} nats/char (uniform guessing: {torch.log(torch.tensor(65.)):.2f})")
fig, ax = plt.subplots(figsize=(5, 2.5))
ax.plot(losses)
ax.set_xlabel("step")
ax.set_ylabel("nats / char")
plt.show()

# %%
model.eval()
sample = generate(model, vocab, "ROMEO:", 300, temperature=0.8,
                  generator=torch.Generator().manual_seed(0))
print("ROMEO:" + "".join(sample))

# %% [markdown]
# After 100 steps it has learnt names in capitals, line breaks and short English-looking
# words. A good result (about 1.5 nats/char on held-out text, readable lines) takes the
# reference recipe, a 2-layer LSTM trained for a few thousand steps (tens of minutes on a
# laptop CPU):
#
# ```
# handgrad train char-rnn            # then: handgrad sample <checkpoint> --prompt "ROMEO:"
# ```
#
# Notebook 10 replaces recurrence with attention.
