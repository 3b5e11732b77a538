# The same cubic fit with autograd doing the backward pass (the tutorial's autograd step).
import math

import torch

dtype = torch.float
LOSSES = []

x = torch.linspace(-math.pi, math.pi, 2000, dtype=dtype)
y = torch.sin(x)
torch.manual_seed(1)
coefficients = [torch.randn((), dtype=dtype, requires_grad=True) for _ in range(4)]
a, b, c, d = coefficients

lr = 1e-6
for step in range(400):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum()
    LOSSES.append(loss.item())
    if step % 100 == 99:
        print(step, loss.item())
    loss.backward()
    with torch.no_grad():
        for w in coefficients:
            w -= lr * w.grad
            w.grad = None

print(f"y = {a.item():.4f} + {b.item():.4f} x + {c.item():.4f} x^2 + {d.item():.4f} x^3")
