"""A PyTorch CNN training script runs on handgrad by swapping its imports.

`train` below is written once, the way a torch user writes it (`nn`, `F`, `optim` and
the tensor library passed in where the script would import them). It runs once with
torch's modules and once with handgrad's, from the same weights (moved torch -> handgrad
through state_dict) on the same batches of real 8x8 digits (scikit-learn's, bundled
with the package), in float64: a convolution with reflect padding, BatchNorm2d in
training mode, max pooling, a depthwise 3x3 and a 1x1 convolution, a transposed
convolution, GroupNorm, adaptive average pooling, Flatten, Linear; cross-entropy with
label smoothing; SGD with Nesterov momentum and weight decay under OneCycleLR. Every
step's loss, the final weights and the BatchNorm running statistics agree with torch's
to 1e-10, then the trained weights go back handgrad -> torch and give torch's outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
import torch.optim as toptim

import handgrad as hg
import handgrad.nn.functional as HF
import handgrad.optim as hoptim
from handgrad import nn as hnn

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def build(nn):
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, padding_mode="reflect"),  # (B, 8, 8, 8)
        nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2),                                          # (B, 8, 4, 4)
        nn.Conv2d(8, 8, 3, padding=1, groups=8),                  # depthwise
        nn.Conv2d(8, 16, 1), nn.ReLU(),                           # pointwise
        nn.ConvTranspose2d(16, 8, 2, stride=2),                   # (B, 8, 8, 8)
        nn.GroupNorm(2, 8), nn.Tanh(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),                    # (B, 8)
        nn.Linear(8, 10),
    )


def train(lib, nn, F, optim, model, images, labels, steps=12, batch=32):
    """The user's script: the loop of a torch tutorial, nothing handgrad-specific."""
    model.train()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                    weight_decay=1e-4)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=steps)
    losses = []
    for step in range(steps):
        start = (step * batch) % (len(images) - batch)
        x = lib.tensor(images[start:start + batch])
        y = lib.tensor(labels[start:start + batch])
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def test_torch_cnn_script_runs_on_handgrad_by_swapping_imports():
    digits = sklearn_datasets.load_digits()
    images = (digits.images / 16.0).reshape(-1, 1, 8, 8).astype(np.float64)
    labels = digits.target.astype(np.int64)

    torch.manual_seed(0)
    theirs = build(tnn).double()
    ours = build(hnn).double()
    ours.load_state_dict(theirs.state_dict())

    expected = train(torch, tnn, TF, toptim, theirs, images, labels)
    actual = train(hg, hnn, HF, hoptim, ours, images, labels)
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)
    assert expected[-1] < expected[0]  # it learned something

    state = ours.state_dict()
    for name, value in theirs.state_dict().items():
        mine = state[name]
        mine = mine.data if isinstance(mine, hg.Tensor) else mine
        torch.testing.assert_close(mine, value, rtol=1e-10, atol=1e-12, msg=name)

    # and back: handgrad's trained weights in a fresh torch model give its outputs
    back = build(tnn).double()
    back.load_state_dict({name: (value.data if isinstance(value, hg.Tensor) else value)
                          for name, value in ours.state_dict().items()})
    back.eval()
    ours.eval()
    x = images[:16]
    torch.testing.assert_close(ours(hg.tensor(x)).data, back(torch.tensor(x)).detach(),
                               rtol=1e-10, atol=1e-12)
