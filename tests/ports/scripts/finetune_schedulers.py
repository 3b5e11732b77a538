# The shape of a fine-tuning script: a backbone pre-trained on one task, then frozen with
# requires_grad_(False) while a new head (an nn.ModuleDict of heads, a registered buffer for
# input normalisation) trains on another, the optimizer given only
# filter(lambda p: p.requires_grad, ...); the backbone unfrozen later as a second parameter
# group with its own lr. Along the way: OneCycleLR stepped per batch, ReduceLROnPlateau on
# the validation loss, CosineAnnealingLR, param_groups[...]["lr"] read and written, early
# stopping that keeps copy.deepcopy(model.state_dict()), a @torch.no_grad() evaluation
# function and torch.inference_mode(), a collate_fn, WeightedRandomSampler, Subset and
# ConcatDataset, F.one_hot and torch.where in the data.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import ConcatDataset, DataLoader, Subset, TensorDataset, WeightedRandomSampler

LOSSES = []
torch.manual_seed(21)
digits = load_digits()
x_all = torch.tensor(digits.data.astype(np.float32))
y_all = torch.tensor(digits.target)
parity = torch.where(y_all % 2 == 0, torch.zeros_like(y_all), torch.ones_like(y_all))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", x_all.mean(0))
        self.register_buffer("std", x_all.std(0) + 1.0)
        self.backbone = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32),
                                      nn.ReLU())
        self.heads = nn.ModuleDict({"digit": nn.Linear(32, 10), "parity": nn.Linear(32, 2)})

    def forward(self, x, task):
        return self.heads[task](self.backbone((x - self.mean) / self.std))


def collate(batch):
    xs, ys = zip(*batch)
    return torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def evaluate(model, loader, task):
    model.eval()
    total, correct, n = 0.0, 0, 0
    for x, y in loader:
        logits = model(x, task)
        total += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    model.train()
    return total / n, correct / n


model = Net()
LOSSES.append(sorted(model.state_dict().keys()))

# 1. pre-train on the digits with OneCycleLR, stepped every batch
pretrain = TensorDataset(x_all[:1000], y_all[:1000])
loader = DataLoader(pretrain, batch_size=50, shuffle=True, collate_fn=collate)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, epochs=2,
                                                steps_per_epoch=len(loader))
for _epoch in range(2):
    for x, y in loader:
        loss = F.cross_entropy(model(x, "digit"), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        LOSSES.extend([loss.item(), optimizer.param_groups[0]["lr"]])

# 2. a new head for parity with the backbone frozen; the rarer class drawn more often
for p in model.backbone.parameters():
    p.requires_grad_(False)
odd = Subset(TensorDataset(x_all, parity), [i for i in range(1000, 1400) if parity[i] == 1])
even = Subset(TensorDataset(x_all, parity), [i for i in range(1000, 1400) if parity[i] == 0])
finetune = ConcatDataset([odd, Subset(even, range(60))])
labels = torch.cat([torch.ones(len(odd)), torch.zeros(60)])
weights = torch.where(labels == 1, 1.0 / len(odd), 1.0 / 60)
sampler = WeightedRandomSampler(weights, num_samples=len(finetune), replacement=True)
loader = DataLoader(finetune, batch_size=40, sampler=sampler)
val_loader = DataLoader(TensorDataset(x_all[1400:], parity[1400:]), batch_size=200)
trainable = [p for p in model.parameters() if p.requires_grad]
LOSSES.append(len(trainable))
optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-2)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5,
                                                     patience=0)
best_loss, best_state = float("inf"), None
for epoch in range(4):
    for x, y in loader:
        loss = F.cross_entropy(model(x, "parity"), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        LOSSES.append(loss.item())
    val_loss, val_acc = evaluate(model, val_loader, "parity")
    plateau.step(val_loss)
    LOSSES.extend([val_loss, val_acc, optimizer.param_groups[0]["lr"]])
    if val_loss < best_loss:
        best_loss, best_state = val_loss, copy.deepcopy(model.state_dict())
    print(f"epoch {epoch}: val loss {val_loss:.4f} acc {val_acc:.3f}")
LOSSES.append(model.backbone[0].weight.grad is None)

# 3. unfreeze: the backbone joins as a second group with a smaller lr, cosine annealing
model.load_state_dict(best_state)
for p in model.backbone.parameters():
    p.requires_grad_(True)
optimizer.add_param_group({"params": model.backbone.parameters(), "lr": 1e-3})
cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=6, eta_min=1e-4)
for _step in range(6):
    for x, y in loader:
        loss = F.cross_entropy(model(x, "parity"), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    cosine.step()
    LOSSES.append([group["lr"] for group in optimizer.param_groups])
    LOSSES.append(loss.item())
with torch.inference_mode():
    probabilities = F.softmax(model(x_all[1400:1404], "parity"), dim=1)
    one_hot = F.one_hot(parity[1400:1404], num_classes=2).float()
    LOSSES.append((probabilities * one_hot).sum(1).tolist())
LOSSES.append(evaluate(model, val_loader, "parity"))
