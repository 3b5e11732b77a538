# Fit y = sin(x) on [-pi, pi] by a cubic a + b x + c x^2 + d x^3, gradients written by hand
# (the pytorch/tutorials "tensors" step of the polynomial example, in this file's words).
import math

import torch

dtype = torch.float
device = torch.device("cpu")
LOSSES = []

x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
y = torch.sin(x)

torch.manual_seed(0)
a, b, c, d = (torch.randn((), device=device, dtype=dtype) for _ in range(4))

lr = 1e-6
for step in range(400):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum().item()
    LOSSES.append(loss)
    if step % 100 == 99:
        print(step, loss)
    dy = 2.0 * (y_pred - y)            # d loss / d y_pred
    da, db = dy.sum(), (dy * x).sum()
    dc, dd = (dy * x ** 2).sum(), (dy * x ** 3).sum()
    a -= lr * da
    b -= lr * db
    c -= lr * dc
    d -= lr * dd

print(f"y = {a.item():.4f} + {b.item():.4f} x + {c.item():.4f} x^2 + {d.item():.4f} x^3")
LOSSES.append(d.item())
