# %% [markdown]
# # 6. From functions to a framework
#
# **What this builds:** the pieces every deep-learning framework has, each written by hand
# in a few lines and then compared with handgrad's own:
#
# 1. `Module` and `Parameter`: a model that finds its own parameters;
# 2. optimizers: SGD, SGD with momentum, and Adam, checked step by step against
#    `handgrad.optim`;
# 3. data: `Dataset`, `Sampler`, `BatchSampler`, `DataLoader`, checked batch by batch
#    against `handgrad.data`.
#
# Finally the same model is trained twice on the digits, once with bare tensors (no
# Module, no optimizer class, no loader) and once with the framework: the two loss curves
# coincide.
#
# **What it assumes:** notebooks 4 and 5. From here on gradients come from handgrad's
# autograd (`loss.backward()`), whose every backward was derived as in notebook 4.

# %%
%matplotlib inline
import matplotlib.pyplot as plt

import handgrad as hg
import handgrad.nn as nn
import handgrad.nn.functional as F
import handgrad.optim as optim
from handgrad.data import BatchSampler, DataLoader, RandomSampler, TensorDataset
from handgrad.data.datasets import digits

hg.set_num_threads(1)
hg.manual_seed(0)
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (5, 3.2)})
EPOCHS = 10                # passes over the digits in the final comparison

# %% [markdown]
# ## Module and Parameter
#
# In notebook 4 we carried a list `[W1, b1, W2, b2]` by hand. A **Parameter** is a tensor
# marked as learnable (it requires grad). A **Module** notices every Parameter or
# sub-Module assigned to it as an attribute, so `parameters()` can find them all,
# however deeply nested. Here is the whole idea in a few lines:

# %%
class MiniModule:
    def __setattr__(self, name, value):
        if isinstance(value, (nn.Parameter, MiniModule)):
            self.__dict__.setdefault("_children", {})[name] = value
        object.__setattr__(self, name, value)

    def named_parameters(self, prefix=""):
        for name, child in self.__dict__.get("_children", {}).items():
            if isinstance(child, MiniModule):
                yield from child.named_parameters(prefix + name + ".")
            else:
                yield prefix + name, child

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def __call__(self, *args):
        return self.forward(*args)


class MiniLinear(MiniModule):
    def __init__(self, n_in, n_out):
        bound = 1 / n_in**0.5                       # torch.nn.Linear's default range
        self.weight = nn.Parameter((hg.rand(n_out, n_in) * 2 - 1) * bound)
        self.bias = nn.Parameter((hg.rand(n_out) * 2 - 1) * bound)

    def forward(self, x):
        return x @ self.weight.T + self.bias


class MiniMLP(MiniModule):
    def __init__(self):
        self.hidden = MiniLinear(64, 32)
        self.out = MiniLinear(32, 10)

    def forward(self, x):
        return self.out(self.hidden(x).relu())


print([(name, tuple(p.shape)) for name, p in MiniMLP().named_parameters()])

# %% [markdown]
# handgrad's `nn.Module` does the same (plus buffers, `state_dict`, `train()`/`eval()`,
# devices...), with PyTorch's names, so the parameter names match:

# %%
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(self.hidden(x).relu())


print([(name, tuple(p.shape)) for name, p in MLP().named_parameters()])

# %% [markdown]
# ## Optimizers, by increasing complexity
#
# An optimizer holds the parameters and, at each `step()`, moves them using their `.grad`.
# It works under `no_grad`: the update itself must not become part of the graph.
#
# * **SGD:** $p \leftarrow p - \eta\, g$
# * **Momentum:** a velocity that remembers past gradients, $v \leftarrow \mu v + g$ (on
#   the first step $v = g$), then $p \leftarrow p - \eta v$. It rolls through small
#   bumps and speeds up along consistent directions.
# * **Adam:** running means of the gradient and of its square,
#   $m \leftarrow \beta_1 m + (1-\beta_1) g$, $v \leftarrow \beta_2 v + (1-\beta_2) g^2$,
#   corrected for starting at zero, $\hat m = m / (1-\beta_1^t)$,
#   $\hat v = v / (1-\beta_2^t)$, then
#   $p \leftarrow p - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$: each parameter gets a step
#   of about $\eta$, whatever the scale of its gradient.

# %%
class MySGD:
    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.velocity = [None] * len(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        with hg.no_grad():
            for i, p in enumerate(self.params):
                g = p.grad
                if self.momentum:
                    v = self.velocity[i]
                    self.velocity[i] = g.clone() if v is None else self.momentum * v + g
                    g = self.velocity[i]
                p -= self.lr * g


def compare_optimizers(make_mine, make_theirs, steps=5):
    """Train two copies of one small model on the same batches; largest parameter gap."""
    hg.manual_seed(1)
    a = MLP()
    b = MLP()
    b.load_state_dict(a.state_dict())
    mine, theirs = make_mine(a.parameters()), make_theirs(b.parameters())
    x, y = hg.randn(16, 64), hg.randint(0, 10, (16,))
    for _ in range(steps):
        for model, opt in [(a, mine), (b, theirs)]:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


for name, momentum in (("SGD     ", 0.0), ("momentum", 0.9)):
    gap = compare_optimizers(lambda ps: MySGD(ps, lr=0.1, momentum=momentum),
                             lambda ps: optim.SGD(ps, lr=0.1, momentum=momentum))
    print(f"{name} vs optim.SGD: largest parameter gap after 5 steps {gap:.1e}")
    assert gap < 1e-6

# %% [markdown]
# ## Exercise 1: Adam
#
# Complete `MyAdam.step()` with the four update lines above (keep one `m`, one `v` per
# parameter and a step counter `t`).
#
# *Try it yourself first: clear this cell and write it.*

# %%
class MyAdam(MySGD):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        self.betas, self.eps, self.t = betas, eps, 0
        self.m = [hg.zeros_like(p) for p in self.params]
        self.v = [hg.zeros_like(p) for p in self.params]

    def step(self):
        b1, b2 = self.betas
        self.t += 1
        with hg.no_grad():
            for i, p in enumerate(self.params):
                g = p.grad
                self.m[i] = b1 * self.m[i] + (1 - b1) * g
                self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
                m_hat = self.m[i] / (1 - b1**self.t)
                v_hat = self.v[i] / (1 - b2**self.t)
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)

# %%
# check
_gap = compare_optimizers(lambda ps: MyAdam(ps, lr=0.01), lambda ps: optim.Adam(ps, lr=0.01))
assert _gap < 1e-5, (
    f"after 5 steps MyAdam's parameters differ from optim.Adam's by {_gap:.2e}; check the "
    "bias correction (1 - beta ** t, with t counted from 1) and that eps is added after sqrt")
print("correct")

# %% [markdown]
# ## Data: Dataset, Sampler, BatchSampler, DataLoader
#
# Four small ideas, each replaceable on its own:
#
# * a **Dataset** answers `len(ds)` and `ds[i]` (one example);
# * a **Sampler** yields indices: in order, or a fresh random permutation each epoch;
# * a **BatchSampler** groups indices into lists of `batch_size` (keeping or dropping a
#   short last batch);
# * the **DataLoader** fetches each batch's examples and *collates* them: stacks the
#   inputs into one tensor and the labels into another.

# %%
class MyTensorDataset:
    def __init__(self, *tensors):
        self.tensors = tensors

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)


class MyRandomSampler:
    def __init__(self, n, generator):
        self.n, self.generator = n, generator

    def __iter__(self):
        return iter(hg.randperm(self.n, generator=self.generator).tolist())

    def __len__(self):
        return self.n

# %% [markdown]
# ## Exercise 2: a BatchSampler
#
# Write `MyBatchSampler(sampler, batch_size, drop_last)`: iterating it yields lists of
# indices from `sampler`, `batch_size` at a time; the last, shorter list is yielded unless
# `drop_last`.
#
# *Try it yourself first: clear this cell and write it.*

# %%
class MyBatchSampler:
    def __init__(self, sampler, batch_size, drop_last):
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

# %%
# check
for _drop in (False, True):
    _mine = list(MyBatchSampler(range(10), 4, _drop))
    _theirs = list(BatchSampler(range(10), 4, _drop))
    assert _mine == _theirs, f"drop_last={_drop}: got {_mine}, expected {_theirs}"
print("correct")

# %%
class MyDataLoader:
    def __init__(self, dataset, batch_size, generator):
        self.dataset = dataset
        self.batches = MyBatchSampler(MyRandomSampler(len(dataset), generator), batch_size,
                                      drop_last=False)

    def __iter__(self):
        for indices in self.batches:
            examples = [self.dataset[i] for i in indices]           # a list of (x, y)
            yield tuple(hg.stack(column) for column in zip(*examples))   # collate


splits = digits(flatten=True)
X, y = (hg.tensor(t) for t in splits.train.tensors)
X_test, y_test = (hg.tensor(t) for t in splits.test.tensors)

mine = MyDataLoader(MyTensorDataset(X, y), 64, hg.Generator().manual_seed(7))
theirs = DataLoader(TensorDataset(X, y), batch_sampler=BatchSampler(
    RandomSampler(TensorDataset(X, y), generator=hg.Generator().manual_seed(7)), 64, False))
same = all(bool((a == c).all()) and bool((b == d).all()) for (a, b), (c, d) in zip(mine, theirs))
print("same batches as handgrad.data.DataLoader:", same, "|", len(theirs), "batches")

# %% [markdown]
# The same seed gives the same batches. `DataLoader(dataset, batch_size=64, shuffle=True,
# generator=g)` builds that very `BatchSampler(RandomSampler(dataset, generator=g), 64,
# False)` itself, with one difference: like PyTorch's, it first draws one number from `g`
# (the base seed of its worker processes), so its permutation is the next one `g` gives.
#
# ## One model, trained twice
#
# **Explicit:** four tensors, `F.linear` (the fused linear layer, whose backward is the
# one derived in notebook 4), `F.cross_entropy`, a hand-written SGD update and manual
# batching. **Framework:** `nn.Sequential`, `optim.SGD`, `DataLoader`. Same initial
# weights, same batches, same learning rate: the curves should lie on top of each other.

# %%
def batches_explicit(seed, batch_size=64):
    order = hg.randperm(X.shape[0], generator=hg.Generator().manual_seed(seed))
    for start in range(0, X.shape[0], batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]


hg.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
W1, b1, W2, b2 = (p.detach().clone().requires_grad_() for p in model.parameters())
lr = 0.5

explicit_losses = []
for epoch in range(EPOCHS):
    for xb, yb in batches_explicit(seed=epoch):
        loss = F.cross_entropy(F.linear(F.linear(xb, W1, b1).relu(), W2, b2), yb)
        for p in (W1, b1, W2, b2):
            p.grad = None
        loss.backward()
        with hg.no_grad():
            for p in (W1, b1, W2, b2):
                p -= lr * p.grad
        explicit_losses.append(loss.item())

framework_losses = []
optimizer = optim.SGD(model.parameters(), lr=lr)
for epoch in range(EPOCHS):
    sampler = RandomSampler(TensorDataset(X, y), generator=hg.Generator().manual_seed(epoch))
    loader = DataLoader(TensorDataset(X, y), batch_size=64, sampler=sampler)
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        framework_losses.append(loss.item())

gap = max(abs(a - b) for a, b in zip(explicit_losses, framework_losses))
print(f"largest gap between the two loss curves: {gap:.2e}")
with hg.no_grad():
    print(f"test accuracy: {(model(X_test).argmax(dim=1) == y_test).float().mean().item():.1%}")
plt.plot(explicit_losses, label="explicit tensors", linewidth=3, alpha=0.5)
plt.plot(framework_losses, label="Module + optim + DataLoader", linestyle="--")
plt.xlabel("step")
plt.ylabel("cross-entropy")
plt.legend()
plt.show()

# %% [markdown]
# ## What's next
#
# Notebook 7 opens the framework itself: how a `Function` with a hand-written backward
# plugs into autograd, how to check it, the tensor graph it records, and hooks.
