# The pytorch/tutorials quickstart, on scikit-learn's 8x8 digits instead of FashionMNIST
# (bundled, no download): a Dataset, DataLoaders, an nn.Module with Flatten and a
# Linear-ReLU stack, train and test loops, then save and load the state_dict.
import os
import tempfile

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, Dataset

LOSSES = []
torch.manual_seed(4)


class Digits(Dataset):
    def __init__(self, train):
        data = load_digits()
        images = data.images.astype(np.float32) / 16.0
        cut = 1400
        part = slice(0, cut) if train else slice(cut, None)
        self.images = images[part]
        self.labels = data.target[part]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = torch.tensor(self.images[i]).unsqueeze(0)   # (1, 8, 8)
        return image, int(self.labels[i])


train_loader = DataLoader(Digits(train=True), batch_size=64)
test_loader = DataLoader(Digits(train=False), batch_size=64)


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(8 * 8, 128), nn.ReLU(),
            nn.Linear(128, 128), nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


device = "cpu"
model = NeuralNetwork().to(device)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=5e-2)


def train(dataloader, model, loss_fn, optimizer):
    model.train()
    for X, y in dataloader:
        X, y = X.to(device), y.to(device)
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        LOSSES.append(loss.item())


def test(dataloader, model, loss_fn):
    model.eval()
    total, correct = 0.0, 0.0
    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            total += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    correct /= len(dataloader.dataset)
    print(f"Accuracy: {100 * correct:>0.1f}%, avg loss: {total / len(dataloader):>8f}")
    return correct


for _epoch in range(3):
    train(train_loader, model, loss_fn, optimizer)
    LOSSES.append(test(test_loader, model, loss_fn))

with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "model.pth")
    torch.save(model.state_dict(), path)
    reloaded = NeuralNetwork().to(device)
    reloaded.load_state_dict(torch.load(path, weights_only=True))
reloaded.eval()
x, y = Digits(train=False)[0]
with torch.no_grad():
    pred = reloaded(x)
    LOSSES.append(pred[0].argmax(0).item())
    LOSSES.extend(pred[0].tolist())
