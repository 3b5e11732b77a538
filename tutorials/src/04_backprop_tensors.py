# %% [markdown]
# # 4. Backprop with tensors, by hand
#
# **What this builds:** a two-layer network on real handwritten digits, trained with
# gradients we derive and code ourselves, on whole matrices at once: no autograd. First
# linear, ReLU and a mean squared error; then the classifier's proper loss,
# cross-entropy, built from log-softmax and the negative log-likelihood, with the
# log-sum-exp trick. Every hand-written gradient is checked against PyTorch's autograd
# (used here only as the reference oracle), against handgrad's autograd, and with
# `handgrad.testing.gradcheck` (finite differences, notebook 1).
#
# **What it assumes:** notebooks 1-3, and matrix products.

# %%
%matplotlib inline
import matplotlib.pyplot as plt
import torch                      # only as the oracle: its autograd checks our gradients

import handgrad as hg
import handgrad.nn.functional as F
from handgrad.data.datasets import digits
from handgrad.testing import gradcheck

hg.set_num_threads(1)             # a laptop-sized run; remove to use every core
hg.manual_seed(0)
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (5, 3.2)})
STEPS = 150                       # training steps; try 1000


def max_diff(a, b):
    """Largest absolute difference between a handgrad Tensor and a torch tensor."""
    return (a.data - b.detach()).abs().max().item()

# %% [markdown]
# ## The data
#
# scikit-learn's 1,797 handwritten digits, 8x8 pixels each (bundled with scikit-learn:
# nothing to download). Flattened, each image is a row of 64 numbers in $[0, 1]$.

# %%
splits = digits(flatten=True)
X_train, y_train = (hg.tensor(t) for t in splits.train.tensors)
X_test, y_test = (hg.tensor(t) for t in splits.test.tensors)
print(X_train.shape, y_train.shape, X_test.shape)

fig, axes = plt.subplots(1, 8, figsize=(8, 1.3))
for ax, image, label in zip(axes, X_train[:8], y_train[:8]):
    ax.imshow(image.reshape(8, 8).numpy(), cmap="gray_r")
    ax.set_title(int(label.item()))
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The network and its forward pass
#
# With a batch $X$ of shape $(N, 64)$, weights stored as PyTorch does, $(out, in)$:
#
# $$Z_1 = X W_1^\top + b_1,\quad H = \max(0, Z_1),\quad Z_2 = H W_2^\top + b_2$$
#
# and first, the mean squared error against one-hot targets $T$:
# $\mathcal{L} = \frac{1}{N C}\sum_{n,c} (Z_2 - T)_{nc}^2$ with $C = 10$ classes.

# %%
def init_params(n_in=64, n_hidden=64, n_out=10):
    W1 = hg.randn(n_hidden, n_in) * (2 / n_in) ** 0.5     # Kaiming scale (notebook 5)
    b1 = hg.zeros(n_hidden)
    W2 = hg.randn(n_out, n_hidden) * (1 / n_hidden) ** 0.5
    b2 = hg.zeros(n_out)
    return [W1, b1, W2, b2]


params = init_params()
X, y = X_train[:32], y_train[:32]
T = F.one_hot(y, 10).float()
W1, b1, W2, b2 = params
Z1 = X @ W1.T + b1            # (N, 64)
H = Z1.relu()                 # (N, 64)
Z2 = H @ W2.T + b2            # (N, 10)
mse = ((Z2 - T) ** 2).mean()
print("MSE", mse.item())

# %% [markdown]
# ## The backward pass, by hand
#
# Walk back through the lines above, writing $dA$ for $\partial\mathcal{L}/\partial A$
# (same shape as $A$):
#
# * $\mathcal{L} = \frac{1}{NC}\sum (Z_2 - T)^2$: $\quad dZ_2 = \frac{2}{NC}(Z_2 - T)$
# * $Z_2 = H W_2^\top + b_2$: $\quad dW_2 = dZ_2^\top H,\quad db_2 = \sum_n dZ_2,\quad
#   dH = dZ_2 W_2$
# * $H = \max(0, Z_1)$: $\quad dZ_1 = dH \odot [Z_1 > 0]$
# * $Z_1 = X W_1^\top + b_1$: $\quad dW_1 = dZ_1^\top X,\quad db_1 = \sum_n dZ_1$
#
# A useful habit: the shapes decide the formula. $dW_2$ must be $(10, 64)$; the only way
# to make that from $dZ_2$ $(N, 10)$ and $H$ $(N, 64)$ is $dZ_2^\top H$. A bias is added to
# every row, so its gradient sums the rows.

# %%
N, C = T.shape
dZ2 = 2 * (Z2 - T) / (N * C)
dW2 = dZ2.T @ H
db2 = dZ2.sum(dim=0)
dH = dZ2 @ W2
dZ1 = dH * (Z1 > 0).float()
dW1 = dZ1.T @ X
db1 = dZ1.sum(dim=0)
by_hand = [dW1, db1, dW2, db2]

# %% [markdown]
# ## Checking against torch's autograd (the oracle)
#
# The same forward in PyTorch on copies of the same numbers; `backward()` fills `.grad`.

# %%
t_params = [p.data.clone().requires_grad_() for p in params]
tW1, tb1, tW2, tb2 = t_params
tZ2 = (X.data @ tW1.T + tb1).relu() @ tW2.T + tb2
((tZ2 - T.data) ** 2).mean().backward()
for name, mine, theirs in zip(["W1", "b1", "W2", "b2"], by_hand, t_params):
    print(f"d{name}: max |hand - torch| = {max_diff(mine, theirs.grad):.2e}")
    assert max_diff(mine, theirs.grad) < 1e-6

# %% [markdown]
# ## ... and against handgrad's autograd and finite differences
#
# handgrad's tensors record the same graph when their inputs have `requires_grad=True`.
# `gradcheck` compares handgrad's gradient with central differences in float64.

# %%
def mse_loss(X, T, W1, b1, W2, b2):
    return (((X @ W1.T + b1).relu() @ W2.T + b2 - T) ** 2).mean()


leaves = [p.clone().requires_grad_() for p in params]
mse_loss(X, T, *leaves).backward()
print("handgrad autograd vs by hand:",
      max((a.grad - b).abs().max().item() for a, b in zip(leaves, by_hand)))

small = [p[:, :8].double() if i == 0 else p.double() for i, p in enumerate(params)]
small = [p.clone().requires_grad_() for p in small]
print("gradcheck:", gradcheck(mse_loss, X[:4, :8].double(), T[:4].double(), *small))

# %% [markdown]
# ## From scores to probabilities: log-softmax and cross-entropy
#
# A classifier should output probabilities. Softmax turns scores $z$ into
# $p_c = e^{z_c} / \sum_j e^{z_j}$, and the loss is the negative log-probability of the
# right class, averaged: the *negative log-likelihood*, NLL. We work with
# $\log p_c = z_c - \log\sum_j e^{z_j}$ directly (log-softmax).
#
# **Why log-sum-exp:** $e^{z}$ overflows float32 past $z \approx 88$. Since
# $\log\sum_j e^{z_j} = m + \log\sum_j e^{z_j - m}$ for any $m$, take $m = \max_j z_j$:
# every exponent is then $\le 0$, and the largest term is exactly 1.

# %%
z = hg.tensor([[1000.0, 999.0, 0.0]])
print("naive:  ", (z.exp().sum(dim=1)).log())

# %% [markdown]
# ## Exercise 1: a stable log-sum-exp
#
# Write `logsumexp(z)` for a 2-D tensor: one value per row, shape $(N, 1)$, that works for
# the `z` above.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def logsumexp(z):
    m = z.amax(dim=1, keepdim=True)
    return m + (z - m).exp().sum(dim=1, keepdim=True).log()


print("stable: ", logsumexp(z))

# %%
# check
_z = hg.randn(5, 7) * 30
_expected = torch.logsumexp(_z.data.double(), dim=1, keepdim=True)   # the oracle
_got = logsumexp(_z)
assert tuple(_got.shape) == (5, 1), f"shape {tuple(_got.shape)}, expected (5, 1): keepdim"
assert (_got.data.double() - _expected).abs().max() < 1e-3, "values differ from log-sum-exp"
assert torch.isfinite(logsumexp(z).data).all(), "overflow on z = [1000, 999, 0]: subtract the max"
print("correct")

# %% [markdown]
# ## Cross-entropy from components, and its gradient
#
# $$\log p = z - \mathrm{lse}(z),\qquad \mathcal{L} = -\frac{1}{N}\sum_n \log p_{n, y_n}$$
#
# Its gradient with respect to the scores is famously simple. For one row,
# $\partial \mathcal{L}_n/\partial z_c = p_c - [c = y_n]$: push the right class's score up
# and every other score down, each in proportion to its probability. Over the batch:
#
# $$dZ = \frac{1}{N}\,(\mathrm{softmax}(Z) - T)$$

# %%
def cross_entropy_by_hand(Z, y):
    log_probs = Z - logsumexp(Z)                     # log-softmax, (N, C)
    nll = -(log_probs * F.one_hot(y, Z.shape[1]).float()).sum() / Z.shape[0]
    return nll, log_probs


loss, log_probs = cross_entropy_by_hand(Z2, y)
print("by hand:           ", loss.item())
print("handgrad's F.cross_entropy:", F.cross_entropy(Z2, y).item())
print("torch (oracle):    ", torch.nn.functional.cross_entropy(Z2.data, y.data).item())

# %% [markdown]
# ## Exercise 2: the gradient of cross-entropy
#
# Write `dZ` = $\partial\mathcal{L}/\partial Z_2$ from `log_probs` (hint: $p = e^{\log p}$)
# and the one-hot targets `T`.
#
# *Try it yourself first: clear this cell and write it.*

# %%
dZ = (log_probs.exp() - T) / N

# %%
# check
_tZ = Z2.data.clone().requires_grad_()
torch.nn.functional.cross_entropy(_tZ, y.data).backward()        # the oracle
assert tuple(dZ.shape) == tuple(_tZ.shape), f"dZ has shape {tuple(dZ.shape)}, expected {tuple(_tZ.shape)}"
assert max_diff(dZ, _tZ.grad) < 1e-6, "dZ differs from torch's gradient: softmax minus one-hot, over N"
print("correct")

# %% [markdown]
# ## Training with our own gradients
#
# Now the whole loop, on mini-batches of 64: forward, the backward written above with the
# cross-entropy's $dZ_2$, and a plain gradient-descent step. No autograd anywhere.

# %%
def forward_backward(params, X, y):
    W1, b1, W2, b2 = params
    Z1 = X @ W1.T + b1
    H = Z1.relu()
    Z2 = H @ W2.T + b2
    loss, log_probs = cross_entropy_by_hand(Z2, y)
    dZ2 = (log_probs.exp() - F.one_hot(y, 10).float()) / X.shape[0]
    dH = dZ2 @ W2
    dZ1 = dH * (Z1 > 0).float()
    grads = [dZ1.T @ X, dZ1.sum(dim=0), dZ2.T @ H, dZ2.sum(dim=0)]
    return loss.item(), grads


def accuracy(params, X, y):
    W1, b1, W2, b2 = params
    return ((X @ W1.T + b1).relu() @ W2.T + b2).argmax(dim=1).eq(y).float().mean().item()

# %% [markdown]
# Before trusting it, check the whole hand-written backward once more, now with the
# cross-entropy at its end, against torch's autograd on the same batch; and run
# `gradcheck` on the loss built from components (log-sum-exp, log-softmax, NLL): handgrad's
# gradient through those pieces against central differences, in float64.

# %%
_, grads = forward_backward(params, X, y)
t_params = [p.data.clone().requires_grad_() for p in params]
tW1, tb1, tW2, tb2 = t_params
t_logits = (X.data @ tW1.T + tb1).relu() @ tW2.T + tb2
torch.nn.functional.cross_entropy(t_logits, y.data).backward()        # the oracle
for name, mine, theirs in zip(["W1", "b1", "W2", "b2"], grads, t_params):
    print(f"d{name}: max |hand - torch| = {max_diff(mine, theirs.grad):.2e}")
    assert max_diff(mine, theirs.grad) < 1e-6


def ce_loss(Z):
    return cross_entropy_by_hand(Z, y[:4])[0]


print("gradcheck of cross_entropy_by_hand:",
      gradcheck(ce_loss, (Z2[:4].detach().double() * 3).requires_grad_()))

# %%
hg.manual_seed(0)
params = init_params()
losses, lr, batch = [], 0.5, 64
for step in range(STEPS):
    idx = hg.randint(0, X_train.shape[0], (batch,))
    loss, grads = forward_backward(params, X_train[idx], y_train[idx])
    params = [p - lr * g for p, g in zip(params, grads)]
    losses.append(loss)

print(f"final training loss {losses[-1]:.3f}; test accuracy {accuracy(params, X_test, y_test):.1%}")
plt.plot(losses)
plt.xlabel("step")
plt.ylabel("cross-entropy")
plt.show()

# %% [markdown]
# ## What's next
#
# Deep networks trained like this are fragile: the activations can shrink or explode
# layer after layer. Notebook 5 measures that, fixes it with careful initialisation, and
# derives BatchNorm's backward by hand.
