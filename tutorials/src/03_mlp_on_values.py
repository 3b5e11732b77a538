# %% [markdown]
# # 3. A neuron, a layer, an MLP, trained on Values
#
# **What this builds:** a neural network from `Value`s (notebook 2): a neuron, a layer of
# neurons, a multi-layer perceptron (MLP). We train it by gradient descent (notebook 1) on
# the four examples of Karpathy's micrograd lecture, then on the two-moons data set, and
# draw the decision boundary it learns.
#
# **What it assumes:** notebooks 1 and 2.

# %%
%matplotlib inline
import math
import random

import matplotlib.pyplot as plt

from handgrad.scalar import MLP, Value, make_moons

plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (5, 3.2)})
STEPS = 40          # training steps on moons; more steps give a cleaner boundary
random.seed(1337)

# %% [markdown]
# ## A neuron
#
# A neuron weighs its inputs, adds a bias and squashes the sum:
#
# $$o = \tanh\Big(\sum_i w_i x_i + b\Big)$$
#
# The weights start random in $[-1, 1]$: if they all started equal, every neuron of a
# layer would compute the same thing and get the same gradient forever.

# %%
class Neuron:
    def __init__(self, nin):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0.0)

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.tanh()

    def parameters(self):
        return self.w + [self.b]


class Layer:
    """nout neurons reading the same inputs."""

    def __init__(self, nin, nout):
        self.neurons = [Neuron(nin) for _ in range(nout)]

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class MyMLP:
    """Layers one after another: sizes nin -> nouts[0] -> ... -> nouts[-1]."""

    def __init__(self, nin, nouts):
        sizes = [nin] + nouts
        self.layers = [Layer(sizes[i], sizes[i + 1]) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


net = MyMLP(3, [4, 4, 1])
print(net([2.0, 3.0, -1.0]))

# %% [markdown]
# ## Exercise 1: count the parameters
#
# How many numbers does `MyMLP(3, [4, 4, 1])` learn? Each neuron has one weight per input
# plus a bias. Work it out and put it in `n_params` (then compare with
# `len(net.parameters())`).
#
# *Try it yourself first: clear this cell and write it.*

# %%
n_params = (3 * 4 + 4) + (4 * 4 + 4) + (4 * 1 + 1)

# %%
# check
assert n_params == len(net.parameters()), (
    f"{n_params} is not it: count, per layer, inputs x outputs weights plus one bias per "
    "output neuron")
print("correct")

# %% [markdown]
# ## Training on the lecture's four examples
#
# Four inputs of three numbers each and the outputs we want. The **loss** measures how
# wrong the network is, here the squared error summed over the examples:
#
# $$\mathcal{L} = \sum_k (\hat y_k - y_k)^2$$
#
# One training step: forward (compute $\mathcal{L}$), zero the gradients, backward (fill
# every `p.grad` with $\partial\mathcal{L}/\partial p$), and move each parameter a little
# against its gradient: $p \leftarrow p - \eta\, \partial\mathcal{L}/\partial p$.

# %%
xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
ys = [1.0, -1.0, -1.0, 1.0]

losses = []
for step in range(40):
    preds = [net(x) for x in xs]
    loss = sum((p - y) ** 2 for p, y in zip(preds, ys))
    for p in net.parameters():
        p.grad = 0.0                   # gradients accumulate: reset them each step
    loss.backward()
    for p in net.parameters():
        p.data -= 0.05 * p.grad
    losses.append(loss.data)

print("final loss", round(losses[-1], 5))
print("predictions", [round(p.data, 3) for p in preds], "targets", ys)
plt.plot(losses)
plt.xlabel("step")
plt.ylabel("loss")
plt.yscale("log")
plt.show()

# %% [markdown]
# Forgetting to zero the gradients is the classic bug: each step would then follow the
# sum of *all* past gradients, which is no longer the slope of the current loss.
#
# ## The same with handgrad.scalar
#
# `handgrad.scalar` has these classes, with a choice of non-linearity and `zero_grad()`.
# The lecture's network is tanh throughout:

# %%
model = MLP(3, [4, 4, 1], nonlin="tanh", output_nonlin="tanh", rng=random.Random(0))
print(model)
for step in range(40):
    loss = Value.sum([(model(x) - y) ** 2 for x, y in zip(xs, ys)])
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.05 * p.grad
print("final loss", round(loss.data, 5))

# %% [markdown]
# ## Two moons
#
# A classic 2-D data set that no straight line separates. Labels are 0 and 1; we use
# $y = \pm 1$ and the *hinge* (max-margin) loss of micrograd's demo:
#
# $$\mathcal{L} = \frac{1}{N}\sum_k \max(0,\ 1 - y_k s_k) + \alpha \sum_p p^2$$
#
# where $s_k$ is the network's score for example $k$ (positive means class 1). A point
# correctly classified with margin ($y_k s_k \ge 1$) costs nothing; the second term,
# *L2 regularisation*, keeps the weights small. Hidden layers use ReLU,
# $\max(0, x)$, with derivative 1 for $x > 0$ and 0 otherwise.

# %%
X, labels = make_moons(n_samples=80, noise=0.1, random_state=1)
Y = [2 * y - 1 for y in labels]                      # 0/1 -> -1/+1
plt.scatter([p[0] for p in X], [p[1] for p in X], c=Y, cmap="coolwarm", s=15)
plt.title("two moons")
plt.show()

# %%
moons_model = MLP(2, [16, 16, 1], rng=random.Random(1337))   # ReLU hidden, linear output
print(len(moons_model.parameters()), "parameters")


def moons_loss(model, alpha=1e-4):
    scores = [model(x) for x in X]
    data_loss = Value.sum([(1 - y * s).relu() for y, s in zip(Y, scores)]) / len(X)
    reg_loss = alpha * Value.sum([p * p for p in model.parameters()])
    accuracy = sum((s.data > 0) == (y > 0) for y, s in zip(Y, scores)) / len(X)
    return data_loss + reg_loss, accuracy


history = []
for step in range(STEPS):
    loss, acc = moons_loss(moons_model)
    moons_model.zero_grad()
    loss.backward()
    lr = 1.0 - 0.9 * step / STEPS                  # a learning rate that decays
    for p in moons_model.parameters():
        p.data -= lr * p.grad
    history.append((loss.data, acc))
    if step % 10 == 0 or step == STEPS - 1:
        print(f"step {step:3d}  loss {loss.data:.4f}  accuracy {acc:.0%}")

# %% [markdown]
# ## The decision boundary
#
# Evaluate the network on a grid of points and colour each by the sign of its score: the
# border between the colours is what the network learnt.

# %%
def plot_boundary(model, n=30):
    lo_x, hi_x = min(p[0] for p in X) - 0.5, max(p[0] for p in X) + 0.5
    lo_y, hi_y = min(p[1] for p in X) - 0.5, max(p[1] for p in X) + 0.5
    gx = [lo_x + (hi_x - lo_x) * i / (n - 1) for i in range(n)]
    gy = [lo_y + (hi_y - lo_y) * j / (n - 1) for j in range(n)]
    scores = [[model([x, y]).data > 0 for x in gx] for y in gy]
    plt.contourf(gx, gy, scores, levels=1, cmap="coolwarm", alpha=0.35)
    plt.scatter([p[0] for p in X], [p[1] for p in X], c=Y, cmap="coolwarm", s=15)
    plt.title("decision boundary")
    plt.show()


plot_boundary(moons_model)

# %% [markdown]
# ## Exercise 2: accuracy
#
# Write `accuracy(model, X, Y)`: the fraction of points where the sign of the score
# matches the label ($\pm1$).
#
# *Try it yourself first: clear this cell and write it.*

# %%
def accuracy(model, X, Y):
    return sum((model(x).data > 0) == (y > 0) for x, y in zip(X, Y)) / len(X)


print(f"training accuracy {accuracy(moons_model, X, Y):.0%}")

# %%
# check
_m = MLP(2, [1], rng=random.Random(3))
_m.layers[0].neurons[0].w[0].data, _m.layers[0].neurons[0].w[1].data = 1.0, 0.0
_pts, _lab = [[1.0, 0.0], [-1.0, 0.0], [2.0, 5.0], [-3.0, 1.0]], [1, 1, -1, -1]
assert math.isclose(accuracy(_m, _pts, _lab), 0.5), (
    f"accuracy gave {accuracy(_m, _pts, _lab)} on a case where half are right (0.5); "
    "compare (score > 0) with (label > 0) and divide by the number of points (a fraction, "
    "not a percentage)")
assert accuracy(moons_model, X, Y) >= 0.85, "the trained model should get most points right"
print("correct")

# %% [markdown]
# ## What's next
#
# One `Value` per number is clear but slow: this network does ~100,000 Python operations
# per step. Notebook 4 does the same backpropagation on whole *tensors* at once, by
# hand, on real handwritten digits.
