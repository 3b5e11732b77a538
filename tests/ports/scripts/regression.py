# pytorch/examples' regression: fit a random degree-4 polynomial with one nn.Linear on the
# features (x, x^2, x^3, x^4), smooth L1 loss, and a hand-written update through .data.
import torch
import torch.nn.functional as F

LOSSES = []
torch.manual_seed(5)
DEGREE = 4
W_target = torch.randn(DEGREE, 1) * 5
b_target = torch.randn(1) * 5


def make_features(x):
    """(n,) -> (n, DEGREE): the columns x, x^2, ..., x^DEGREE."""
    x = x.unsqueeze(1)
    return torch.cat([x ** i for i in range(1, DEGREE + 1)], 1)


def f(x):
    return x.mm(W_target) + b_target.item()


def get_batch(batch_size=32):
    random = torch.randn(batch_size)
    x = make_features(random)
    return x, f(x)


fc = torch.nn.Linear(W_target.size(0), 1)
for batch_idx in range(1, 301):  # noqa: B007 (read after the loop)
    batch_x, batch_y = get_batch()
    fc.zero_grad()
    output = F.smooth_l1_loss(fc(batch_x), batch_y)
    loss = output.item()
    LOSSES.append(loss)
    output.backward()
    for param in fc.parameters():
        param.data.add_(-0.1 * param.grad)
    if loss < 1e-3:
        break
print(f"loss {loss:.6f} after {batch_idx} batches")
LOSSES.extend(fc.weight.view(-1).tolist())
