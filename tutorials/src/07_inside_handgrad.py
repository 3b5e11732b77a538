# %% [markdown]
# # 7. Inside handgrad: your own Function, the graph picture, hooks
#
# **What this builds.** A new differentiable operation with its hand-written backward,
# checked three ways (finite differences, torch autograd, the same math composed from
# handgrad primitives); a picture of the tensor graph that a model's loss leaves behind;
# and hooks, which let you look at (or change) gradients while backward runs.
#
# **What it assumes.** Notebooks 2 (the Value engine: a graph of nodes, backward in
# topological order) and 4 (backprop with tensors by hand). Runs in a few seconds on a
# laptop CPU.
#
# torch appears below only as the *oracle* that checks handgrad's answers.

# %%
# %matplotlib inline
import time

import matplotlib.pyplot as plt
import torch

import handgrad as hg
import handgrad.nn.functional as F
from handgrad import nn
from handgrad.autograd import Function
from handgrad.testing import GradcheckError, gradcheck

plt.rcParams["figure.dpi"] = 80
hg.set_num_threads(1)             # a laptop-sized run; remove to use every core
_ = hg.manual_seed(0)

# %% [markdown]
# ## 1. A Function is a forward and a backward, side by side
#
# In the Value engine every op made a node with a little closure that pushed the gradient
# back. handgrad's tensor engine does the same with classes: a `Function` subclass has a
# static `forward(ctx, *inputs)` working on **raw torch tensors**, which stores what
# backward will need on `ctx`, and a static `backward(ctx, grad_output)` which returns
# one gradient per input.
#
# Our example is $\operatorname{logcosh}(x) = \log\cosh x$, a smooth version of $|x|$
# used as a robust loss. Its derivative is
#
# $$\frac{d}{dx}\log\cosh x = \frac{\sinh x}{\cosh x} = \tanh x,$$
#
# so the chain rule gives $\bar x = \bar y \cdot \tanh x$ (a bar is "the gradient of the
# final loss with respect to this"). Computing $\cosh x$ directly overflows for
# $|x| > 89$ in float32, so the forward uses
# $\log\cosh x = |x| + \log(1 + e^{-2|x|}) - \log 2$, which never overflows.

# %%
LOG2 = 0.6931471805599453


class LogCosh(Function):
    """out = log(cosh(x)) = |x| + log1p(exp(-2|x|)) - log 2;  dx = g * tanh(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        a = x.abs()
        return a + torch.log1p(torch.exp(-2 * a)) - LOG2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.tanh(x)


x = hg.randn(4, 3, requires_grad=True)
y = LogCosh.apply(x)
print(y.grad_fn)          # the node this tensor came from
y.sum().backward()
print(x.grad)

# %% [markdown]
# ## 2. Prove it
#
# A backward is a claim; three checks turn it into a fact.
#
# 1. **Finite differences** (`handgrad.testing.gradcheck`): for every element $x_j$,
#    $\frac{f(x + \epsilon e_j) - f(x - \epsilon e_j)}{2\epsilon}$ in float64 must agree
#    with the backward's answer (for a random upstream gradient, which catches a backward
#    that ignores `grad_output`).
# 2. **The oracle**: the same function in torch, differentiated by torch autograd.
# 3. **Composed**: the same math from handgrad primitives, whose gradients handgrad
#    already proved; the fused Function must give the same values and gradients.

# %%
x64 = hg.randn(5, 4, dtype=hg.float64) * 3
print("gradcheck:", gradcheck(LogCosh.apply, x64))

# the oracle (torch autograd), on the same numbers
xt = x64.data.clone().requires_grad_()
upstream = torch.randn(5, 4, dtype=torch.float64)
(torch.log(torch.cosh(xt)) * upstream).sum().backward()
xh = x64.detach().requires_grad_()
(LogCosh.apply(xh) * hg.tensor(upstream)).sum().backward()
torch.testing.assert_close(xh.grad.data, xt.grad)

# composed from handgrad primitives (abs, mul, exp, add, log, sub: each proved already)
def composed_logcosh(x):
    a = x.abs()
    return a + (1 + (-2 * a).exp()).log() - LOG2


xc = x64.detach().requires_grad_()
(composed_logcosh(xc) * hg.tensor(upstream)).sum().backward()
torch.testing.assert_close(xc.grad.data, xh.grad.data)
print("torch autograd and the composed version agree")

# %% [markdown]
# A wrong backward does not survive: here the gradient "forgets" the chain rule and
# returns $\tanh x$ without multiplying by `g`.

# %%
class BadLogCosh(LogCosh):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.tanh(x)          # bug: the upstream gradient g is ignored


try:
    gradcheck(BadLogCosh.apply, x64)
except GradcheckError as error:
    print(str(error)[:300])

# %% [markdown]
# ### Exercise 1: the backward of Swish
#
# $\operatorname{swish}(x) = x\,\sigma(x)$ with $\sigma(x) = 1/(1+e^{-x})$. Using
# $\sigma' = \sigma(1-\sigma)$, derive $\frac{d}{dx}\operatorname{swish}(x)$ and write
# `Swish.backward`. The check below runs gradcheck and compares with torch.
#
# *Try it yourself first: clear this cell and write it.*

# %%
class Swish(Function):
    """out = x * sigmoid(x);  dx = g * s * (1 + x * (1 - s)), s = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        s = torch.sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        return g * s * (1 + x * (1 - s))


# %%
# check
def check_swish():
    xs = hg.randn(6, 5, dtype=hg.float64) * 2
    try:
        gradcheck(Swish.apply, xs)
    except GradcheckError as error:
        return f"not yet: gradcheck disagrees with your backward: {str(error)[:200]}"
    xt = xs.data.clone().requires_grad_()
    (xt * torch.sigmoid(xt)).sum().backward()
    xh = xs.detach().requires_grad_()
    Swish.apply(xh).sum().backward()
    if not torch.allclose(xh.grad.data, xt.grad):
        return "not yet: the gradient differs from torch's"
    return "correct"


print(check_swish())
assert check_swish() == "correct"

# %% [markdown]
# ## 3. Fused is fast
#
# One Function is one graph node, one Python call forward and one backward. The same math
# written with primitives makes a node per primitive (abs, mul, exp, add, log, add, sub),
# each saving its inputs and each run by the engine. Time both, on a small tensor (where
# that per-node Python work is most of the cost) and on a large one (where the arithmetic
# is, and both do about the same amount of it):

# %%
def best_ms(fn, x, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x).sum().backward()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


for side, repeats in ((32, 50), (1024, 5)):
    big = hg.randn(side, side, requires_grad=True)
    fused_ms = best_ms(LogCosh.apply, big, repeats)
    composed_ms = best_ms(composed_logcosh, big, repeats)
    torch.testing.assert_close(LogCosh.apply(big).data, composed_logcosh(big).data)
    print(f"{side}x{side}: fused {fused_ms:.3f} ms, composed {composed_ms:.3f} ms "
          f"per forward+backward ({composed_ms / fused_ms:.1f}x)")

# %% [markdown]
# ## 4. The tensor graph, as a picture
#
# Every tensor made by a Function remembers its node in `grad_fn`; a node keeps its
# inputs in `parents` (another node, or a leaf tensor that requires grad). That chain is
# the graph backward walks in reverse topological order, exactly like the Value engine.
# `handgrad.draw_graph` draws it: ellipses are Functions, boxes are tensors with their
# shape and dtype; `params=dict(model.named_parameters())` names the parameters.
# (With Graphviz installed the picture is made by `dot`; without it, by matplotlib.)

# %%
model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
inputs, targets = hg.randn(16, 4), hg.randint(0, 3, (16,))
loss = F.cross_entropy(model(inputs), targets)
print(loss.grad_fn, "<-", loss.grad_fn.parents)
hg.draw_graph(loss, params=dict(model.named_parameters()))

# %% [markdown]
# The inputs are not in the picture: they do not require grad, so the engine recorded no
# edge to them. Compare the composed log-cosh, one node per primitive, with the fused
# one:

# %%
w = hg.randn(3, requires_grad=True)
hg.draw_graph(composed_logcosh(w).sum(), params={"w": w})

# %%
hg.draw_graph(LogCosh.apply(w).sum(), params={"w": w})

# %% [markdown]
# ### Exercise 2: count the nodes
#
# Write `count_functions(t)`: the number of distinct Function nodes reachable from
# `t.grad_fn` through `parents` (skip `None` and leaf tensors; a node may be reached
# twice). Use a stack, not recursion: graphs can be 100,000 nodes deep.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def count_functions(t):
    if t.grad_fn is None:
        return 0
    seen, stack = {id(t.grad_fn)}, [t.grad_fn]
    while stack:
        for parent in stack.pop().parents:
            if isinstance(parent, Function) and id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return len(seen)


# %%
# check
def check_count():
    a = hg.randn(3, requires_grad=True)
    b = a * a
    cases = [(loss, 4), (composed_logcosh(w).sum(), 8), ((b + b).sum(), 3), (a, 0)]
    for tensor, expected in cases:
        got = count_functions(tensor)
        if got != expected:
            return f"not yet: expected {expected} nodes, got {got} (for {tensor.grad_fn})"
    deep = a
    for _ in range(5000):
        deep = deep + 1
    if count_functions(deep) != 5000:
        return "not yet: the 5000-node chain counts wrong"
    return "correct"


print(check_count())
assert check_count() == "correct"

# %% [markdown]
# ## 5. Hooks: see and change gradients during backward
#
# `t.register_hook(fn)` calls `fn(grad)` when backward has computed the gradient of `t`
# (summed over all its uses). Returning a tensor replaces that gradient from there on.
# `retain_grad()` keeps `.grad` on a non-leaf tensor. Module hooks
# (`register_forward_hook`) see a layer's inputs and outputs: here they hook a hook onto
# each activation to record gradient sizes layer by layer.

# %%
deep = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(32, 32), nn.Tanh())])
grad_norms = {}


def remember_gradient(name):
    def forward_hook(module, args, output):
        output.register_hook(lambda g: grad_norms.__setitem__(name, g.norm().item()))
    return forward_hook


handles = [layer.register_forward_hook(remember_gradient(f"tanh {i // 2}"))
           for i, layer in enumerate(deep) if isinstance(layer, nn.Tanh)]
deep(hg.randn(64, 32)).pow(2).mean().backward()
for handle in handles:
    handle.remove()
fig, ax = plt.subplots(figsize=(5, 2.5))
ax.bar(list(grad_norms)[::-1], list(grad_norms.values())[::-1])
ax.set_ylabel("|dL/d activation|")
ax.set_title("gradient norm per layer (backward runs right to left)")
plt.show()

# %% [markdown]
# ### Exercise 3: a gradient-clipping hook
#
# Register a hook on `h` that clips its gradient elementwise to $[-0.1, 0.1]$ (return the
# clipped gradient). The check looks at what reaches `x`.
#
# *Try it yourself first: clear this cell and write it.*

# %%
x = hg.randn(5, requires_grad=True)
h = x * 10
h.register_hook(lambda g: g.clamp(-0.1, 0.1))
(h * hg.tensor([1.0, -2.0, 0.05, 3.0, -0.01])).sum().backward()

# %%
# check
def check_clip_hook():
    expected = torch.tensor([0.1, -0.1, 0.05, 0.1, -0.01]) * 10
    if x.grad is None:
        return "not yet: backward did not reach x"
    if not torch.allclose(x.grad.data, expected):
        return (f"not yet: x.grad is {x.grad.data.tolist()}, expected {expected.tolist()}: "
                "the hook must return g clamped to [-0.1, 0.1] (h = 10 x, so x gets 10 times it)")
    return "correct"


print(check_clip_hook())
assert check_clip_hook() == "correct"

# %% [markdown]
# ## What next
#
# Every layer in `handgrad.nn.functional` is a Function like `LogCosh`, with its
# derivation in the docstring and an entry in the op registry
# (`handgrad/testing/registry/`) that runs the same three checks for every dtype and
# for random, non-contiguous shapes: `handgrad gradcheck` runs them all. Notebook 8
# writes the biggest of them, convolution, by hand.
