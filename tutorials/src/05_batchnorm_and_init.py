# %% [markdown]
# # 5. Initialisation and BatchNorm, by hand
#
# **What this builds:** first, a look inside a deep network at initialisation: how the
# spread of the activations grows or dies layer after layer, and how Xavier and Kaiming
# initialisation keep it steady (histograms). Then batch normalisation: its forward, its
# backward derived and coded by hand, the running statistics, and why it behaves
# differently in training and in evaluation. Each piece is checked against
# `handgrad.nn.BatchNorm1d` and against PyTorch's autograd (the oracle).
#
# **What it assumes:** notebook 4 (backprop on matrices by hand).

# %%
%matplotlib inline
import matplotlib.pyplot as plt
import torch                      # only as the oracle for gradients

import handgrad as hg
import handgrad.nn as nn

hg.set_num_threads(1)
hg.manual_seed(0)
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (5, 3.2)})
DEPTH, WIDTH = 8, 256             # the deep stack we look inside

# %% [markdown]
# ## Activations in a deep stack
#
# Feed random inputs through `DEPTH` linear layers, each followed by a non-linearity,
# and record each layer's output. Each output is a sum of `WIDTH` products
# $w_{ij} x_j$: with independent weights of variance $\sigma^2$ its variance is
# $\mathrm{fan\_in}\cdot \sigma^2 \cdot \mathbb{E}[x^2]$. If $\mathrm{fan\_in}\,\sigma^2$ is above
# 1, the spread grows geometrically with depth; below 1, it vanishes.
#
# * **Xavier / Glorot** (for tanh): $\sigma^2 = 2 / (\mathrm{fan\_in} + \mathrm{fan\_out})$,
#   about $1/\mathrm{fan\_in}$ for square layers.
# * **Kaiming / He** (for ReLU): $\sigma^2 = 2 / \mathrm{fan\_in}$. ReLU zeroes half its
#   inputs, halving $\mathbb{E}[x^2]$; the 2 puts it back.

# %%
def activations(init, nonlinearity, depth=DEPTH, width=WIDTH, n=512):
    hg.manual_seed(0)
    x = hg.randn(n, width)
    outs = []
    with hg.no_grad():
        for _ in range(depth):
            layer = nn.Linear(width, width, bias=False)
            init(layer.weight)
            x = nonlinearity(layer(x))
            outs.append(x)
    return outs


schemes = {
    "N(0, 1)": lambda w: nn.init.normal_(w, 0.0, 1.0),
    "N(0, 0.01²)": lambda w: nn.init.normal_(w, 0.0, 0.01),
    "Xavier": lambda w: nn.init.xavier_normal_(w),
    "Kaiming (ReLU)": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
}
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for ax, (act_name, act) in zip(axes, [("tanh", hg.tanh), ("ReLU", hg.relu)]):
    for name, init in schemes.items():
        stds = [o.std().item() for o in activations(init, act)]
        ax.semilogy(range(1, DEPTH + 1), stds, "o-", label=name, markersize=3)
    ax.set_title(f"{act_name}: std of each layer's output")
    ax.set_xlabel("layer")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# With tanh, N(0, 1) saturates (the std sticks near 1: almost every unit sits at ±1,
# where tanh's slope is 0, so hardly any gradient flows back), the tiny init vanishes
# geometrically, and Xavier shrinks slowly (tanh squashes a little at each layer; that is
# why PyTorch's `calculate_gain("tanh")` is 5/3). With ReLU, N(0, 1) explodes and only
# Kaiming's factor 2 keeps the spread level: with Xavier the variance halves at each
# layer (ReLU zeroes half of it and nothing puts it back). Histograms of the activations show the same, layer by layer
# (log scale; the spike at 0 of ReLU is the half of the units it switches off):

# %%
pairs = [("tanh, N(0, 1)", schemes["N(0, 1)"], hg.tanh), ("tanh, Xavier", schemes["Xavier"], hg.tanh),
         ("ReLU, Xavier", schemes["Xavier"], hg.relu),
         ("ReLU, Kaiming", schemes["Kaiming (ReLU)"], hg.relu)]
fig, axes = plt.subplots(len(pairs), 1, figsize=(7, 6), sharex=False)
for ax, (title, init, act) in zip(axes, pairs):
    for i, out in enumerate(activations(init, act)):
        if i % 2 == 1:
            values = out.flatten().numpy()
            ax.hist(values, bins=60, histtype="step", density=True, label=f"layer {i + 1}",
                    range=(-1.1, 1.1) if act is hg.tanh else (0, 3))
    ax.set_title(title, fontsize=9)
    ax.set_yscale("log")
axes[0].legend(fontsize=7, ncol=4)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Exercise 1: the Kaiming standard deviation
#
# For a ReLU layer with `fan_in` inputs, what standard deviation does Kaiming's normal
# initialisation give the weights? Write `kaiming_std(fan_in)`.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def kaiming_std(fan_in):
    return (2.0 / fan_in) ** 0.5

# %%
# check
_w = hg.empty(4000, 500)
nn.init.kaiming_normal_(_w, nonlinearity="relu")
assert abs(kaiming_std(500) - _w.std().item()) < 2e-3, (
    f"kaiming_std(500) = {kaiming_std(500):.4f} but handgrad's weights have std "
    f"{_w.std().item():.4f}: the variance is 2 / fan_in")
print("correct")

# %% [markdown]
# ## BatchNorm: the forward pass
#
# Careful initialisation only sets the *start*. Batch normalisation keeps each feature
# standardised throughout training: over the batch (the rows of $X$, shape $(N, D)$),
#
# $$\mu = \frac1N\sum_n x_n,\quad \sigma^2 = \frac1N\sum_n (x_n - \mu)^2,\quad
# \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}},\quad y = \gamma \hat x + \beta$$
#
# $\gamma$ (`weight`) and $\beta$ (`bias`) are learnt, so the layer can undo the
# standardisation where that helps.

# %%
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(dim=0)
    var = ((x - mu) ** 2).mean(dim=0)              # biased: divides by N
    inv_std = (var + eps) ** -0.5
    x_hat = (x - mu) * inv_std
    return gamma * x_hat + beta, (x_hat, inv_std, mu, var)


N, D = 32, 6
x = hg.randn(N, D) * 3 + 5
gamma, beta = hg.rand(D) + 0.5, hg.randn(D)
y, cache = batchnorm_forward(x, gamma, beta)

bn = nn.BatchNorm1d(D)
with hg.no_grad():
    bn.weight.copy_(gamma)
    bn.bias.copy_(beta)
forward_gap = (y - bn(x)).abs().max().item()
print("max |by hand - nn.BatchNorm1d| =", forward_gap)
assert forward_gap < 1e-5

# %% [markdown]
# ## BatchNorm: the backward pass
#
# Given $dy$, the parameters are easy: $d\beta = \sum_n dy_n$, $d\gamma = \sum_n dy_n\,\hat
# x_n$, and $d\hat x = \gamma\, dy$. The input is harder, because every $x_n$ also moves
# $\mu$ and $\sigma^2$ and so every output of its column. Per column, with
# $s = 1/\sqrt{\sigma^2 + \epsilon}$:
#
# * $\frac{\partial \mathcal L}{\partial \sigma^2} = \sum_n d\hat x_n (x_n - \mu)
#   \cdot(-\tfrac12 s^3)$
# * $\frac{\partial \mathcal L}{\partial \mu} = -s\sum_n d\hat x_n$ (the term through
#   $\sigma^2$ vanishes, since $\sum_n (x_n - \mu) = 0$)
# * $dx_n = s\, d\hat x_n + \frac{\partial \mathcal L}{\partial \sigma^2}\frac{2(x_n -
#   \mu)}{N} + \frac1N \frac{\partial \mathcal L}{\partial \mu}$
#
# Substituting $x_n - \mu = \hat x_n / s$, it all folds into one line:
#
# $$dx = \frac{s}{N}\Big(N\,d\hat x - \sum_n d\hat x_n - \hat x \sum_n d\hat x_n \hat x_n\Big)$$

# %%
def batchnorm_backward(dy, gamma, cache):
    x_hat, inv_std, _, _ = cache
    n = dy.shape[0]
    dbeta = dy.sum(dim=0)
    dgamma = (dy * x_hat).sum(dim=0)
    dx_hat = dy * gamma
    dx = inv_std / n * (n * dx_hat - dx_hat.sum(dim=0) - x_hat * (dx_hat * x_hat).sum(dim=0))
    return dx, dgamma, dbeta


dy = hg.randn(N, D)                                # some upstream gradient
dx, dgamma, dbeta = batchnorm_backward(dy, gamma, cache)

# the oracle: torch autograd through the same formula
tx, tg, tb = (t.data.clone().requires_grad_() for t in (x, gamma, beta))
t_mu, t_var = tx.mean(0), tx.var(0, unbiased=False)
((tg * (tx - t_mu) / torch.sqrt(t_var + 1e-5) + tb) * dy.data).sum().backward()
for name, mine, theirs in [("dx", dx, tx.grad), ("dgamma", dgamma, tg.grad), ("dbeta", dbeta, tb.grad)]:
    diff = (mine.data - theirs).abs().max().item()
    print(f"{name:7s} max |hand - torch| = {diff:.2e}")
    assert diff < 1e-4

# and handgrad's own BatchNorm1d (a fresh one: `bn` keeps its one batch for exercise 2)
bn_check = nn.BatchNorm1d(D)
with hg.no_grad():
    bn_check.weight.copy_(gamma)
    bn_check.bias.copy_(beta)
xh = x.detach().requires_grad_()
(bn_check(xh) * dy).sum().backward()
for name, mine, theirs in [("dx", dx, xh.grad), ("dgamma", dgamma, bn_check.weight.grad),
                           ("dbeta", dbeta, bn_check.bias.grad)]:
    diff = (mine - theirs).abs().max().item()
    print(f"{name:7s} max |hand - nn.BatchNorm1d| = {diff:.2e}")
    assert diff < 1e-4

# %% [markdown]
# One more check: the columns of $dx$ sum to zero. Shifting a whole column of $x$ by a
# constant changes nothing after normalisation, so the loss cannot depend on that shift.

# %%
print("column sums of dx:", dx.sum(dim=0))

# %% [markdown]
# ## Running statistics: training vs evaluation
#
# At test time there may be one example, not a batch, and a prediction should not depend
# on what else is in the batch. So during training BatchNorm keeps exponential moving
# averages, `running_mean` and `running_var`, and in `eval()` mode it normalises with
# those instead:
#
# $$\text{running} \leftarrow (1 - m)\,\text{running} + m\,\text{batch statistic},
# \qquad m = 0.1$$
#
# (PyTorch's convention, which handgrad follows: the running variance uses the
# *unbiased* batch variance, $\frac{N}{N-1}\sigma^2$.)
#
# ## Exercise 2: update the running statistics
#
# Starting from `running_mean = 0`, `running_var = 1`, apply one update with the batch
# `x` above, momentum 0.1. Compare with `bn`, which saw `x` once in training mode.
#
# *Try it yourself first: clear this cell and write it.*

# %%
m = 0.1
_, (_, _, mu, var) = batchnorm_forward(x, gamma, beta)
running_mean = (1 - m) * hg.zeros(D) + m * mu
running_var = (1 - m) * hg.ones(D) + m * var * N / (N - 1)

# %%
# check
assert (running_mean - bn.running_mean).abs().max().item() < 1e-5, \
    "running_mean differs from nn.BatchNorm1d's: (1 - m) * old + m * batch mean"
assert (running_var - bn.running_var).abs().max().item() < 1e-4, \
    "running_var differs: did you use the unbiased variance, times N / (N - 1)?"
print("correct")

# %% [markdown]
# After one batch the running statistics are still far from the data's (mean 5, std 3),
# so `eval()` outputs are off; after many batches they converge:

# %%
bn_demo = nn.BatchNorm1d(D, affine=False)
for _ in range(50):
    bn_demo(hg.randn(N, D) * 3 + 5)                 # training mode: updates the buffers
bn_demo.eval()
test = hg.randn(4, D) * 3 + 5
print("running mean", bn_demo.running_mean[:3], " running var", bn_demo.running_var[:3])
print("eval output std, one example at a time:",
      round(hg.cat([bn_demo(test[i:i + 1]) for i in range(4)]).std().item(), 3))

# %% [markdown]
# ## BatchNorm rescues a bad initialisation
#
# The tanh stack with N(0, 1) weights saturated. Put a BatchNorm before each tanh and
# the activations stay spread however the weights were drawn:

# %%
def activations_bn(init, depth=DEPTH, width=WIDTH, n=512):
    hg.manual_seed(0)
    x, stds = hg.randn(n, width), []
    with hg.no_grad():
        for _ in range(depth):
            layer, norm = nn.Linear(width, width, bias=False), nn.BatchNorm1d(width)
            init(layer.weight)
            x = hg.tanh(norm(layer(x)))
            stds.append(x.std().item())
    return stds


for name in ["N(0, 1)", "N(0, 0.01²)"]:
    plt.plot(range(1, DEPTH + 1), activations_bn(schemes[name]), "o-", label=f"{name} + BatchNorm")
    plt.plot(range(1, DEPTH + 1), [o.std().item() for o in activations(schemes[name], hg.tanh)],
             "x--", label=name)
plt.yscale("log")
plt.xlabel("layer")
plt.ylabel("std of tanh output")
plt.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## What's next
#
# So far every piece was a function with its own gradient code. Notebook 6 turns these
# pieces into a framework: Module and Parameter, optimizers, and data loaders.
