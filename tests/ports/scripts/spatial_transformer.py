# A small CNN with a spatial transformer in front, in the shape of the pytorch/tutorials
# spatial transformer and pytorch/examples' mnist/main.py, on scikit-learn's 8x8 digits: a
# localisation net regresses a 2x3 affine theta (initialised to the identity) that
# F.affine_grid / F.grid_sample apply; Conv2d, BatchNorm2d, Dropout2d, MaxPool2d, F.dropout,
# log_softmax + nll_loss, SGD with momentum and StepLR; evaluation under eval()/no_grad()
# with argmax accuracy; a checkpoint of model and optimizer state saved with torch.save,
# loaded into fresh objects, and training resumed from it.
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from sklearn.datasets import load_digits
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset

LOSSES = []
torch.manual_seed(11)
digits = load_digits()
images = torch.tensor(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8)
images = (images - images.mean()) / images.std()
labels = torch.tensor(digits.target)
train_set = TensorDataset(images[:1024], labels[:1024])
test_set = TensorDataset(images[1024:1536], labels[1024:1536])
train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
test_loader = DataLoader(test_set, batch_size=256)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.conv2_drop = nn.Dropout2d(0.2)
        self.fc1 = nn.Linear(32 * 2 * 2, 48)
        self.fc2 = nn.Linear(48, 10)
        self.localization = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3),       # 8x8 -> 6x6
            nn.MaxPool2d(2, stride=2),            # -> 3x3
            nn.ReLU(True),
        )
        self.fc_loc = nn.Sequential(nn.Linear(8 * 3 * 3, 16), nn.ReLU(True), nn.Linear(16, 6))
        self.fc_loc[2].weight.data.zero_()
        self.fc_loc[2].bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 8 * 3 * 3)
        theta = self.fc_loc(xs).view(-1, 2, 3)
        grid = F.affine_grid(theta, x.size(), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    def forward(self, x):
        x = self.stn(x)
        x = F.relu(F.max_pool2d(self.bn1(self.conv1(x)), 2))            # (B, 16, 4, 4)
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))     # (B, 32, 2, 2)
        x = x.view(-1, 32 * 2 * 2)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def train(model, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        LOSSES.append(loss.item())
        if batch_idx % 8 == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)}]"
                  f"\tLoss: {loss.item():.6f}")


def test(model):
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for data, target in test_loader:
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    print(f"Test set: Average loss: {test_loss:.4f}, Accuracy: {correct}/"
          f"{len(test_loader.dataset)} ({100. * correct / len(test_loader.dataset):.0f}%)")
    LOSSES.extend([test_loss, correct])


model = Net()
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
for epoch in range(1, 3):
    train(model, optimizer, epoch)
    test(model)
    scheduler.step()
    LOSSES.append(scheduler.get_last_lr()[0])

with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "checkpoint.pt")
    torch.save({"epoch": 2, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, path)
    checkpoint = torch.load(path, weights_only=True)
resumed = Net()
resumed.load_state_dict(checkpoint["model"])
resumed_optimizer = optim.SGD(resumed.parameters(), lr=0.05, momentum=0.9)
resumed_optimizer.load_state_dict(checkpoint["optimizer"])
resumed_scheduler = StepLR(resumed_optimizer, step_size=1, gamma=0.7)
resumed_scheduler.load_state_dict(checkpoint["scheduler"])
LOSSES.append(sorted(checkpoint["model"].keys()))
LOSSES.append(resumed.bn1.running_mean.tolist())
test(resumed)
train(resumed, resumed_optimizer, checkpoint["epoch"] + 1)
test(resumed)
with torch.no_grad():
    theta = resumed.fc_loc(resumed.localization(images[:4]).view(-1, 8 * 3 * 3))
    LOSSES.extend(theta.flatten().tolist())
