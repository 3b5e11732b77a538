# The cubic as nn.Linear(3, 1) over the features (x, x^2, x^3), nn.Flatten to a vector,
# MSELoss(reduction="sum"), and a hand-written SGD step over model.parameters().
import math

import torch

LOSSES = []
x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)
powers = torch.tensor([1, 2, 3])
features = x.unsqueeze(-1).pow(powers)          # (2000, 3)

torch.manual_seed(2)
model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
loss_fn = torch.nn.MSELoss(reduction="sum")

lr = 1e-6
for _step in range(400):
    loss = loss_fn(model(features), y)
    LOSSES.append(loss.item())
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for param in model.parameters():
            param -= lr * param.grad

linear = model[0]
print(f"y = {linear.bias.item():.4f} + {linear.weight[:, 0].item():.4f} x + "
      f"{linear.weight[:, 1].item():.4f} x^2 + {linear.weight[:, 2].item():.4f} x^3")
LOSSES.extend(linear.weight.flatten().tolist())
