# %% [markdown]
# # 1. Derivatives
# What a derivative is, measured with finite differences.

# %%
import math

def f(x):
    return 3 * x**2 - 4 * x + 5

h = 1e-6
slope = (f(3.0 + h) - f(3.0)) / h
print(f"slope of f at 3: {slope:.4f}")

# %%
assert math.isclose(slope, 14.0, rel_tol=1e-4)
print("correct")
