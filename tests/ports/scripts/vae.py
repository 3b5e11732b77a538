# A variational autoencoder in the shape of pytorch/examples' vae/main.py, on scikit-learn's
# 8x8 digits scaled to [0, 1]: fc1 -> (mu, logvar) -> reparameterise with torch.randn_like
# -> fc3 -> fc4 -> sigmoid, loss = binary cross-entropy summed + the KL term written out
# with torch.exp and .sum, Adam, a shuffled DataLoader over a TensorDataset, a test pass
# under eval()/no_grad(), then samples decoded from torch.randn and a torch.cat comparison.
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

LOSSES = []
torch.manual_seed(7)
images = load_digits().images.astype(np.float32) / 16.0
data = torch.from_numpy(images).view(-1, 64)
train_loader = DataLoader(TensorDataset(data[:1200]), batch_size=128, shuffle=True)
test_loader = DataLoader(TensorDataset(data[1200:]), batch_size=128)
latent = 4


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 48)
        self.fc21 = nn.Linear(48, latent)
        self.fc22 = nn.Linear(48, latent)
        self.fc3 = nn.Linear(latent, 48)
        self.fc4 = nn.Linear(48, 64)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 64))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")
    # KL(q(z|x) || N(0, I)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


model = VAE()
optimizer = optim.Adam(model.parameters(), lr=3e-3)


def train(epoch):
    model.train()
    train_loss = 0
    for (x,) in train_loader:
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        loss = loss_function(recon, x, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        LOSSES.append(loss.item() / len(x))
    print(f"epoch {epoch} average loss {train_loss / len(train_loader.dataset):.4f}")


def test():
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (x,) in enumerate(test_loader):
            recon, mu, logvar = model(x)
            test_loss += loss_function(recon, x, mu, logvar).item()
            if i == 0:
                n = min(x.size(0), 8)
                comparison = torch.cat([x.view(-1, 1, 8, 8)[:n], recon.view(-1, 1, 8, 8)[:n]])
                LOSSES.append(list(comparison.shape))
                LOSSES.append(comparison.mean().item())
    return test_loss / len(test_loader.dataset)


for epoch in range(1, 5):
    train(epoch)
    LOSSES.append(test())
    with torch.no_grad():
        sample = model.decode(torch.randn(16, latent))
        LOSSES.append(sample.sum(dim=1).tolist())
