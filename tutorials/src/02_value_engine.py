# %% [markdown]
# # 2. The Value engine: backpropagation on scalars
#
# **What this builds:** an expression as a *graph* of numbers, drawn; its gradient computed
# by hand, node by node, with the chain rule; then computed automatically by
# `handgrad.scalar.Value.backward()`. Along the way: why the nodes must be visited in
# *topological order*, and why gradients *accumulate*.
#
# **What it assumes:** notebook 1 (a derivative is a slope; the gradient holds one slope
# per input).
#
# `handgrad.scalar` is pure Python (no numpy, no torch): a few hundred lines you can read.

# %%
%matplotlib inline
import math

import matplotlib.pyplot as plt

from handgrad.scalar import Value, to_dot

plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80})

# %% [markdown]
# ## An expression is a graph
#
# Every operation on `Value`s makes a new `Value` that remembers the numbers it came from
# and the operation. Here is the lecture's running example, $L = (a b + c) \cdot f$:

# %%
a = Value(2.0, label="a")
b = Value(-3.0, label="b")
c = Value(10.0, label="c")
e = a * b
e.label = "e"
d = e + c
d.label = "d"
f = Value(-2.0, label="f")
L = d * f
L.label = "L"
print(L)

# %% [markdown]
# ## Drawing it
#
# `handgrad.scalar.draw_graph(L)` writes the picture with Graphviz (`dot`), and in Jupyter
# shows it as SVG when Graphviz is installed. `to_dot(L)` is the text it feeds to Graphviz,
# which needs nothing installed:

# %%
print(to_dot(L)[:600], "...")

# %% [markdown]
# So that this notebook draws without Graphviz, here is a small matplotlib drawing. It
# walks the graph through each Value's `_prev` (the Values it was made from) and `_op`
# (the operation), the two fields that make it a graph; each box shows
# `label | data | grad`, and each arrow runs from an input to the result.

# %%
def op_name(v):
    return v._op if isinstance(v._op, str) else f"{v._op[0]} {v._op[1]:g}"


def draw(root, figsize=(8, 3)):
    nodes, stack = [], [root]
    while stack:                                     # every Value root depends on
        v = stack.pop()
        if v not in nodes:
            nodes.append(v)
            stack.extend(v._prev)
    depth = {}

    def column(v):                                   # longest path from a leaf
        if v not in depth:
            depth[v] = 0 if not v._prev else 1 + max(column(p) for p in v._prev)
        return depth[v]
    place = {v: column(v) for v in nodes}
    for v in nodes:                                  # a leaf sits just left of its first user
        users = [place[u] for u in nodes if v in u._prev]
        if not v._prev and users:
            place[v] = min(users) - 1
    columns = {}
    for v in nodes:
        columns.setdefault(place[v], []).append(v)
    pos = {}
    for col, vs in columns.items():
        for row, v in enumerate(vs):
            pos[v] = (col, row - (len(vs) - 1) / 2)
    fig, ax = plt.subplots(figsize=figsize)
    boxes = {}
    for v in nodes:
        text = f"{v.label or '?'} | {v.data:.4g} | grad {v.grad:.4g}"
        if v._op:
            text = f"[{op_name(v)}]\n" + text
        boxes[v] = ax.text(*pos[v], text, ha="center", va="center", fontsize=8,
                           bbox=dict(boxstyle="round", fc="lightyellow" if v._op else "lightblue"))
    for v in nodes:                                  # from the right edge of an input's box
        for p in v._prev:                            # to the left edge of its result's
            ax.annotate("", xy=(0, 0.5), xycoords=boxes[v], xytext=(1, 0.5),
                        textcoords=boxes[p], arrowprops=dict(arrowstyle="-|>", color="dimgray",
                                                             shrinkA=4, shrinkB=4))
    ax.set_xlim(min(columns) - 0.6, max(columns) + 0.6)
    half = max(len(vs) for vs in columns.values()) / 2
    ax.set_ylim(-half, half)
    ax.axis("off")
    plt.show()


draw(L)

# %% [markdown]
# All gradients are 0: nothing has been computed yet.
#
# ## Backward by hand, node by node
#
# We want $\partial L / \partial x$ for every node $x$. Start at the output:
# $\partial L/\partial L = 1$. Then walk backwards; at each node use the **chain rule**:
#
# $$\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\cdot
# \frac{\partial y}{\partial x}$$
#
# where $y$ is the node made from $x$. Only the *local* derivative
# $\partial y/\partial x$ depends on the operation:
#
# * $y = x_1 + x_2$: $\partial y/\partial x_i = 1$ (a plus routes the gradient unchanged);
# * $y = x_1 x_2$: $\partial y/\partial x_1 = x_2$ (a product swaps the inputs).

# %%
L.grad = 1.0
f.grad = d.data * L.grad     # L = d * f
d.grad = f.data * L.grad
c.grad = 1.0 * d.grad        # d = e + c
e.grad = 1.0 * d.grad
a.grad = b.data * e.grad     # e = a * b
b.grad = a.data * e.grad
draw(L)

# %% [markdown]
# Check one of them with a finite difference (notebook 1): nudge `a`, rebuild $L$.

# %%
def L_of(a, b, c, f):
    return (a * b + c) * f


h = 1e-6
print("dL/da by hand:", a.grad, "  by finite difference:",
      round((L_of(2.0 + h, -3.0, 10.0, -2.0) - L_of(2.0, -3.0, 10.0, -2.0)) / h, 4))

# %% [markdown]
# ## A neuron, by hand
#
# A neuron computes $o = \tanh(x_1 w_1 + x_2 w_2 + b)$. The new local derivative is
# $\frac{d}{dn}\tanh n = 1 - \tanh^2 n = 1 - o^2$.

# %%
x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
bias = Value(6.8813735870195432, label="b")
x1w1 = x1 * w1
x1w1.label = "x1w1"
x2w2 = x2 * w2
x2w2.label = "x2w2"
s = x1w1 + x2w2
s.label = "s"
n = s + bias
n.label = "n"
o = n.tanh()
o.label = "o"

o.grad = 1.0
n.grad = (1 - o.data**2) * o.grad
s.grad = bias.grad = n.grad
x1w1.grad = x2w2.grad = s.grad
w1.grad, x1.grad = x1.data * x1w1.grad, w1.data * x1w1.grad
w2.grad, x2.grad = x2.data * x2w2.grad, w2.data * x2w2.grad
draw(o, figsize=(10, 3.5))

# %% [markdown]
# `w2.grad` is 0 because `x2` is 0: changing that weight changes nothing for this input.
#
# ## Now automatically
#
# `backward()` does the same walk. Each operation stored its local derivatives when it
# ran, so the walk is one loop: for each node, newest first,
# `child.grad += local_derivative * node.grad`.

# %%
by_hand = {v.label: v.grad for v in (x1, x2, w1, w2, bias)}
for v in (x1, x2, w1, w2, bias):
    v.grad = 0.0          # start the leaves from zero: backward adds into them
o.backward()
for v in (x1, x2, w1, w2, bias):
    print(f"{v.label:3s} by hand {by_hand[v.label]: .6f}   backward() {v.grad: .6f}")
    assert math.isclose(by_hand[v.label], v.grad, abs_tol=1e-12)

# %% [markdown]
# ## Why topological order
#
# A node's gradient is complete only once *every* node that uses it has added its share.
# So a node may be processed only after all its consumers: the reverse of a
# **topological order** (an order where each node comes after its inputs). Here `a` feeds
# two consumers:

# %%
a = Value(3.0, label="a")
b = a * 2.0
b.label = "b"
c = a + b
c.label = "c"
draw(c, figsize=(6, 2.5))

# %% [markdown]
# $c = a + 2a$, so $\partial c/\partial a = 3$. Process `a` *before* `b` and it passes on
# a gradient of 1 only: the 2 from the path through `b` arrives too late. Here is that
# mistake, done by hand: each node, when processed, sends its gradient to its inputs;
# the order `c, a, b` lets `a` pass on its gradient before `b` has added its share.

# %%
local = {c: [(a, 1.0), (b, 1.0)], b: [(a, 2.0)]}     # c = a + b, b = 2a: local derivatives


def gradient_of_a_at_its_turn(order):
    """Walk `order` as backward does: at its turn a node sends its gradient, times each
    local derivative, to its inputs. Returns what a holds at its own turn."""
    for v in (a, b, c):
        v.grad = 0.0
    c.grad = 1.0
    for v in order:
        if v is a:
            at_turn = a.grad                         # what a would pass on to its inputs
        for child, derivative in local.get(v, []):
            child.grad += derivative * v.grad
    return at_turn


print("order c, b, a (reverse topological):", gradient_of_a_at_its_turn([c, b, a]))
print("order c, a, b (a too early):        ", gradient_of_a_at_its_turn([c, a, b]))

# %% [markdown]
# In the wrong order `a` holds 1 at its turn, not 3: had `a` been made from other Values,
# each of them would have received a third of its true gradient.
#
# One way to get a valid order is depth first search: emit a node after all its inputs.
#
# ## Exercise 1: a topological sort
#
# Write `topo(root)`: a list of every Value `root` depends on, each one after all of its
# inputs (`v._prev`), with `root` last.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def topo(root):
    order, visited = [], set()

    def visit(v):
        if v not in visited:
            visited.add(v)
            for child in v._prev:
                visit(child)
            order.append(v)

    visit(root)
    return order


print([v.label for v in topo(c)])

# %%
# check
_x = Value(1.5)
_y = (_x * _x + _x).tanh() * _x
_order = topo(_y)
_where = {id(v): i for i, v in enumerate(_order)}
assert _order and _order[-1] is _y, "the root must come last"
assert len(_where) == len(_order) == 5, f"expected the 5 Values of the graph once each, got {len(_order)}"
assert all(_where[id(p)] < _where[id(v)] for v in _order for p in v._prev), \
    "some Value comes before one of its inputs"
print("correct")

# %% [markdown]
# ## Why gradients accumulate
#
# When a Value is used twice, its gradient is the **sum** over its uses (the multivariable
# chain rule). That is why the engine writes `+=`, never `=`:

# %%
a = Value(3.0, label="a")
b = a + a          # db/da = 2
b.backward()
print("d(a + a)/da =", a.grad)

# %% [markdown]
# The same `+=` means a second `backward()` adds onto the leaves' gradients, as in PyTorch:
# a training loop resets them (`model.zero_grad()`) before each step.

# %%
b.backward()
print("after a second backward:", a.grad)
a.grad = 0.0

# %% [markdown]
# ## Exercise 2: predict the gradients
#
# For $y = x^2 \cdot z + x \cdot z$ at $x = 2, z = -1$, work out $\partial y/\partial x$ and
# $\partial y/\partial z$ **on paper**, and put them in `dy_dx, dy_dz`.
#
# *Try it yourself first: clear this cell and write it.*

# %%
dy_dx = 2 * 2.0 * -1.0 + -1.0      # 2 x z + z
dy_dz = 2.0**2 + 2.0               # x^2 + x

# %%
# check
_x, _z = Value(2.0), Value(-1.0)
(_x**2 * _z + _x * _z).backward()
assert math.isclose(dy_dx, _x.grad), f"dy/dx is not {dy_dx}: x appears twice, add both paths"
assert math.isclose(dy_dz, _z.grad), f"dy/dz is not {dy_dz}: z multiplies two terms"
print("correct")

# %% [markdown]
# ## What's next
#
# Notebook 3 builds neurons, layers and a whole network from `Value`s and trains it with
# the gradient descent of notebook 1, now with gradients from `backward()`.
