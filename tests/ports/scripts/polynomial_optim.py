# The nn version trained by torch.optim.RMSprop instead of a hand-written step.
import math

import torch

LOSSES = []
x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)
features = x.unsqueeze(-1).pow(torch.tensor([1, 2, 3]))

torch.manual_seed(3)
model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
loss_fn = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)

for _step in range(400):
    loss = loss_fn(model(features), y)
    LOSSES.append(loss.item())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"final loss {LOSSES[-1]:.4f}")
