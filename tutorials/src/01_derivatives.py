# %% [markdown]
# # 1. Derivatives: the slope of a function
#
# **What this builds:** the one idea all of deep learning rests on. A derivative says how
# much a function's output moves when its input moves a little. We measure it with
# *finite differences*, draw the tangent line it defines, and use it to walk downhill:
# *gradient descent*.
#
# **What it assumes:** Python, and a little algebra. No calculus course needed.
#
# Run the cells top to bottom (Shift+Enter). Everything runs in seconds on a laptop.

# %%
%matplotlib inline
import math

import matplotlib.pyplot as plt

plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (5, 3.2)})
STEPS = 30          # gradient-descent steps at the end; raise it to watch longer

# %% [markdown]
# ## A function and its picture
#
# Take $f(x) = 3x^2 - 4x + 5$, a parabola. Plotting it shows where it goes down, where it
# turns and where it goes up again.

# %%
def f(x):
    return 3 * x**2 - 4 * x + 5


xs = [i / 10 for i in range(-50, 51)]
plt.plot(xs, [f(x) for x in xs])
plt.xlabel("x")
plt.ylabel("f(x)")
plt.title("f(x) = 3x² - 4x + 5")
plt.show()

# %% [markdown]
# ## The slope, measured
#
# Nudge the input by a tiny $h$ and see how much the output changes, *per unit of
# nudge*:
#
# $$f'(x) \approx \frac{f(x + h) - f(x)}{h}$$
#
# This is the *forward difference*. As $h$ shrinks it approaches the derivative. At
# $x = 3$, calculus says $f'(x) = 6x - 4 = 14$. Let's check by measuring.

# %%
x = 3.0
for h in [1.0, 0.1, 0.01, 0.001, 1e-6]:
    slope = (f(x + h) - f(x)) / h
    print(f"h = {h:<8g} slope = {slope:.6f}")

# %% [markdown]
# The error shrinks in proportion to $h$. But $h$ cannot be *too* small: computers
# store about 16 significant digits, so with $h = 10^{-15}$ the difference $f(x+h)-f(x)$
# is mostly rounding noise.

# %%
for h in [1e-8, 1e-12, 1e-15]:
    print(f"h = {h:<8g} slope = {(f(x + h) - f(x)) / h:.6f}")

# %% [markdown]
# ## The tangent line
#
# The derivative is the slope of the line that just touches the curve at $x_0$:
# $y = f(x_0) + f'(x_0)(x - x_0)$. Near $x_0$, the function *is* almost that line; this
# is why a small step along the slope predicts the change in output.

# %%
def slope_at(fn, x, h=1e-6):
    return (fn(x + h) - fn(x)) / h


fig, ax = plt.subplots()
ax.plot(xs, [f(x) for x in xs], label="f")
for x0, color in [(-2.0, "tab:red"), (2 / 3, "tab:green"), (3.0, "tab:purple")]:
    s = slope_at(f, x0)
    near = [x0 + d / 10 for d in range(-15, 16)]
    ax.plot(near, [f(x0) + s * (x - x0) for x in near], color=color,
            label=f"tangent at {x0:.2f}: slope {s:.1f}")
    ax.plot([x0], [f(x0)], "o", color=color)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# At $x = 2/3$ the slope is zero: the bottom of the parabola. Left of it the slope is
# negative (the function falls as $x$ grows), right of it positive.
#
# ## Exercise 1: a better difference
#
# The *central difference* $\frac{f(x+h) - f(x-h)}{2h}$ looks both ways; its error
# shrinks like $h^2$ instead of $h$. Write `central_difference(fn, x, h)`.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def central_difference(fn, x, h=1e-5):
    return (fn(x + h) - fn(x - h)) / (2 * h)

# %%
# check
_got = central_difference(lambda t: t**3, 2.0, h=1e-3)
assert abs(_got - 12.0) < 1e-5, (
    f"central_difference(t**3, 2.0, h=1e-3) gave {_got}; the slope of t**3 at 2 is 12, "
    "and a central difference should be within 1e-5 of it (did you divide by 2h?)")
print("correct")

# %% [markdown]
# Compare the two errors as $h$ shrinks, on a log-log plot: the central difference's
# line is twice as steep (error $\propto h^2$).

# %%
hs = [10.0**-k for k in range(1, 8)]
exact = 14.0
forward_err = [abs((f(3 + h) - f(3)) / h - exact) for h in hs]
central_err = [abs(central_difference(f, 3.0, h) - exact) + 1e-16 for h in hs]
plt.loglog(hs, forward_err, "o-", label="forward difference")
plt.loglog(hs, central_err, "s-", label="central difference")
plt.xlabel("h")
plt.ylabel("|error|")
plt.legend()
plt.show()

# %% [markdown]
# (For a parabola the central difference is exact up to rounding, which is what the flat
# line at the bottom shows.)
#
# ## Several inputs: partial derivatives
#
# With $d = a b + c$, each input has its own slope: nudge one input, keep the others.
# These slopes together form the **gradient**. By hand: $\partial d/\partial a = b$,
# $\partial d/\partial b = a$, $\partial d/\partial c = 1$.

# %%
a, b, c = 2.0, -3.0, 10.0
h = 1e-6


def d_of(a, b, c):
    return a * b + c


base = d_of(a, b, c)
print("dd/da ≈", (d_of(a + h, b, c) - base) / h, "(exact: b =", b, ")")
print("dd/db ≈", (d_of(a, b + h, c) - base) / h, "(exact: a =", a, ")")
print("dd/dc ≈", (d_of(a, b, c + h) - base) / h, "(exact: 1)")

# %% [markdown]
# ## Gradient descent
#
# To make $f$ small, step *against* the slope: $x \leftarrow x - \eta\, f'(x)$. The
# learning rate $\eta$ sets the step size. Too small: slow. Too big: it jumps over the
# valley and can blow up. Training a neural network is exactly this, with millions of
# inputs (the weights) and a loss in place of $f$.

# %%
def descend(x, lr, steps=STEPS):
    path = [x]
    for _ in range(steps):
        x = x - lr * central_difference(f, x)
        path.append(x)
    return path


fig, axes = plt.subplots(1, 3, figsize=(10, 3), sharey=True)
for ax, lr in zip(axes, [0.02, 0.1, 0.32]):
    path = descend(-2.0, lr)
    ax.plot(xs, [f(x) for x in xs], color="lightgray")
    ax.plot(path, [f(x) for x in path], "o-", markersize=3)
    ax.set_title(f"lr = {lr}: x → {path[-1]:.3f}")
    ax.set_ylim(0, 40)
plt.tight_layout()
plt.show()

# %% [markdown]
# With lr = 0.02 it creeps, 0.1 lands on $x = 2/3$ quickly, and 0.32 overshoots back and
# forth (one more step size up, above $2/6 \approx 0.33$, and it diverges).
#
# ## Exercise 2: descend a function of two inputs
#
# Minimise $g(x, y) = (x - 1)^2 + 2(y + 2)^2$ from $(0, 0)$ with gradient descent, using
# central differences for both partial derivatives, lr = 0.1 and 100 steps. Store the
# final point in `x_min, y_min`.
#
# *Try it yourself first: clear this cell and write it.*

# %%
def g(x, y):
    return (x - 1) ** 2 + 2 * (y + 2) ** 2


x_min, y_min = 0.0, 0.0
for _ in range(100):
    gx = central_difference(lambda t: g(t, y_min), x_min)
    gy = central_difference(lambda t: g(x_min, t), y_min)
    x_min, y_min = x_min - 0.1 * gx, y_min - 0.1 * gy

# %%
# check
assert math.isclose(x_min, 1.0, abs_tol=1e-4) and math.isclose(y_min, -2.0, abs_tol=1e-4), (
    f"ended at ({x_min:.4f}, {y_min:.4f}); the minimum of g is elsewhere: step *against* "
    "each partial derivative, x -= lr * dg/dx, y -= lr * dg/dy")
print("correct")

# %% [markdown]
# ## What's next
#
# Finite differences need one extra evaluation per input: fine for 3 inputs, hopeless for
# a million weights. Notebook 2 computes *every* partial derivative in one backward pass
# through the expression: backpropagation, on handgrad's `Value` engine.
