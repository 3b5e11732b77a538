# y = a + b P3(c + d x) with the Legendre polynomial P3 as a custom autograd Function whose
# backward is written by hand (the tutorial's "defining new autograd functions" step).
import math

import torch


class LegendreP3(torch.autograd.Function):
    """P3(t) = (5 t^3 - 3 t) / 2, so dP3/dt = 3 (5 t^2 - 1) / 2."""

    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return 0.5 * (5 * t ** 3 - 3 * t)

    @staticmethod
    def backward(ctx, grad_output):
        (t,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * t ** 2 - 1)


dtype = torch.float
LOSSES = []
x = torch.linspace(-math.pi, math.pi, 2000, dtype=dtype)
y = torch.sin(x)

a = torch.full((), 0.0, dtype=dtype, requires_grad=True)
b = torch.full((), -1.0, dtype=dtype, requires_grad=True)
c = torch.full((), 0.0, dtype=dtype, requires_grad=True)
d = torch.full((), 0.3, dtype=dtype, requires_grad=True)

lr = 5e-6
for _step in range(400):
    P3 = LegendreP3.apply
    y_pred = a + b * P3(c + d * x)
    loss = (y_pred - y).pow(2).sum()
    LOSSES.append(loss.item())
    loss.backward()
    with torch.no_grad():
        for w in (a, b, c, d):
            w -= lr * w.grad
            w.grad = None

print(f"y = {a.item():.4f} + {b.item():.4f} P3({c.item():.4f} + {d.item():.4f} x)")
