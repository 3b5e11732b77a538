# A course's reusable trainer class (in the style of "Deep Learning with PyTorch
# Step-by-Step"): a train-step closure, mini-batch loops for training and validation,
# seeding, per-epoch losses, a checkpoint dict saved and loaded with torch.save/torch.load,
# and predict() through numpy. Data: y = 1 + 2 x + noise, split with random_split.
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset, random_split

LOSSES = []


class StepByStep:
    def __init__(self, model, loss_fn, optimizer):
        self.device = "cpu"
        self.model = model.to(self.device)
        self.loss_fn, self.optimizer = loss_fn, optimizer
        self.train_loader = self.val_loader = None
        self.losses, self.val_losses, self.total_epochs = [], [], 0
        self.train_step_fn = self._make_train_step_fn()
        self.val_step_fn = self._make_val_step_fn()

    def set_loaders(self, train_loader, val_loader=None):
        self.train_loader, self.val_loader = train_loader, val_loader

    def _make_train_step_fn(self):
        def perform_train_step_fn(x, y):
            self.model.train()
            yhat = self.model(x)
            loss = self.loss_fn(yhat, y)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad()
            return loss.item()
        return perform_train_step_fn

    def _make_val_step_fn(self):
        def perform_val_step_fn(x, y):
            self.model.eval()
            return self.loss_fn(self.model(x), y).item()
        return perform_val_step_fn

    def _mini_batch(self, validation=False):
        loader, step_fn = ((self.val_loader, self.val_step_fn) if validation
                           else (self.train_loader, self.train_step_fn))
        losses = [step_fn(x.to(self.device), y.to(self.device)) for x, y in loader]
        return float(np.mean(losses))

    def set_seed(self, seed=42):
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.manual_seed(seed)
        np.random.seed(seed)

    def train(self, n_epochs, seed=42):
        self.set_seed(seed)
        for _ in range(n_epochs):
            self.total_epochs += 1
            self.losses.append(self._mini_batch(validation=False))
            with torch.no_grad():
                self.val_losses.append(self._mini_batch(validation=True))

    def save_checkpoint(self, filename):
        torch.save({"epoch": self.total_epochs,
                    "model_state_dict": self.model.state_dict(),
                    "optimizer_state_dict": self.optimizer.state_dict(),
                    "loss": self.losses, "val_loss": self.val_losses}, filename)

    def load_checkpoint(self, filename):
        checkpoint = torch.load(filename, weights_only=True)
        self.model.load_state_dict(checkpoint["model_state_dict"])
        self.optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        self.total_epochs = checkpoint["epoch"]
        self.losses, self.val_losses = checkpoint["loss"], checkpoint["val_loss"]
        self.model.train()

    def predict(self, x):
        self.model.eval()
        y_hat = self.model(torch.as_tensor(x).float().to(self.device))
        self.model.train()
        return y_hat.detach().cpu().numpy()


np.random.seed(42)
x = np.random.rand(100, 1)
y = 1 + 2 * x + 0.1 * np.random.randn(100, 1)
x_tensor, y_tensor = torch.as_tensor(x).float(), torch.as_tensor(y).float()
dataset = TensorDataset(x_tensor, y_tensor)
torch.manual_seed(13)
train_data, val_data = random_split(dataset, [80, 20])
train_loader = DataLoader(train_data, batch_size=16, shuffle=True)
val_loader = DataLoader(val_data, batch_size=16)

torch.manual_seed(42)
model = nn.Sequential(nn.Linear(1, 1))
optimizer = optim.SGD(model.parameters(), lr=0.1)
sbs = StepByStep(model, nn.MSELoss(reduction="mean"), optimizer)
sbs.set_loaders(train_loader, val_loader)
sbs.train(n_epochs=20)
LOSSES.extend(float(v) for v in sbs.losses + sbs.val_losses)

with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "model_checkpoint.pth")
    sbs.save_checkpoint(path)
    fresh = nn.Sequential(nn.Linear(1, 1))
    resumed = StepByStep(fresh, nn.MSELoss(), optim.SGD(fresh.parameters(), lr=0.1))
    resumed.load_checkpoint(path)
resumed.set_loaders(train_loader, val_loader)
resumed.train(n_epochs=5)
LOSSES.extend(float(v) for v in resumed.losses[-5:])
LOSSES.extend(resumed.predict(np.array([[0.5], [0.25]])).ravel().tolist())
print(model.state_dict())
