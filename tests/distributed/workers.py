"""What each process of the distributed tests runs (top-level functions, so that the
spawned processes can import them), and the models shared with the tests.

Each model comes as a pair built from one seed: the handgrad module and a torch.nn twin
with the same parameter names and values, plus a batch maker giving the whole batch of a
step (each rank takes its slice).
"""

from __future__ import annotations

import torch

import handgrad.nn.functional as F
from handgrad import nn, optim
from handgrad._tensor import Tensor
from handgrad.models.char_rnn import CharRNN
from handgrad.models.cnn import LeNet5
from handgrad.nn.parallel import DistributedDataParallel

PER_RANK = 4  # batch size per process
STEPS = 20
VOCAB = 7


def _twin(model, torch_model):
    torch_model.load_state_dict({k: v.data.clone() for k, v in model.state_dict().items()})
    return torch_model.double()


def mlp_pair(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    twin = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    return model, twin


class _TorchLeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        tnn = torch.nn
        self.features = tnn.Sequential(
            tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(6, 16, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2))
        self.classifier = tnn.Sequential(
            tnn.Flatten(), tnn.Linear(16 * 2 * 2, 120), tnn.ReLU(), tnn.Dropout(0.0),
            tnn.Linear(120, 84), tnn.ReLU(), tnn.Dropout(0.0), tnn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def lenet_pair(seed):
    torch.manual_seed(seed)
    return LeNet5(1, 10, image_size=8).double(), _TorchLeNet()


class _TorchCharRNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Embedding(VOCAB, 6)
        self.rnn = torch.nn.LSTM(6, 8, 1, batch_first=True)
        self.head = torch.nn.Linear(8, VOCAB)

    def forward(self, ids):
        output, _ = self.rnn(self.encoder(ids))
        return self.head(output)


def lstm_pair(seed):
    torch.manual_seed(seed)
    return CharRNN(VOCAB, "lstm", embedding=6, hidden=8, layers=1).double(), _TorchCharRNN()


PAIRS = {"mlp": mlp_pair, "lenet": lenet_pair, "lstm": lstm_pair}


def batch(name: str, step: int, size: int):
    """The whole batch (inputs, targets) of `step`, as torch tensors."""
    g = torch.Generator().manual_seed(1000 + step)
    if name == "mlp":
        return (torch.randn(size, 5, generator=g, dtype=torch.float64),
                torch.randint(0, 3, (size,), generator=g))
    if name == "lenet":
        return (torch.randn(size, 1, 8, 8, generator=g, dtype=torch.float64),
                torch.randint(0, 10, (size,), generator=g))
    ids = torch.randint(0, VOCAB, (size, 6), generator=g)
    return ids, torch.roll(ids, -1, dims=1)


def logits_of(output):
    logits = output[0] if isinstance(output, tuple) else output
    return logits.reshape(-1, logits.shape[-1])


def handgrad_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = F.cross_entropy(logits_of(model(Tensor(x))), Tensor(y).reshape(-1))
    loss.backward()
    optimizer.step()


def single_process_run(name: str, world_size: int, steps: int = STEPS) -> dict:
    """The reference: one process, batch world_size * PER_RANK per step."""
    model, _ = PAIRS[name](0)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        x, y = batch(name, step, world_size * PER_RANK)
        handgrad_step(model, optimizer, x, y)
    return {k: v.data.clone() for k, v in model.state_dict().items()}


def train_ddp(rank: int, world_size: int, names: list, steps: int = STEPS) -> dict:
    """Each model trained with handgrad's DDP and with torch's DDP from the same start;
    rank 1 builds its model from another seed (DDP must broadcast rank 0's)."""
    results = {}
    for name in names:
        model, twin = PAIRS[name](rank)
        ddp = DistributedDataParallel(model)
        torch_ddp = torch.nn.parallel.DistributedDataParallel(_twin(model, twin))
        optimizer = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
        torch_optimizer = torch.optim.SGD(torch_ddp.parameters(), lr=0.1, momentum=0.9)
        part = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        for step in range(steps):
            x, y = batch(name, step, world_size * PER_RANK)
            handgrad_step(ddp, optimizer, x[part], y[part])
            torch_optimizer.zero_grad()
            out = torch_ddp(x[part])
            torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]),
                                              y[part].reshape(-1)).backward()
            torch_optimizer.step()
        results[name] = {
            "handgrad": {k: v.data.clone() for k, v in ddp.state_dict().items()},
            "torch": {k: v.detach().clone() for k, v in torch_ddp.state_dict().items()},
            "buckets": len(ddp._buckets),
        }
    return results


def no_sync_accumulation(rank: int, world_size: int, steps: int = 3) -> dict:
    """Two micro-batches per step, the first under no_sync: equals the big batch."""
    model, _ = PAIRS["mlp"](rank)
    ddp = DistributedDataParallel(model)
    optimizer = optim.SGD(ddp.parameters(), lr=0.1)
    for step in range(steps):
        x, y = batch("mlp", step, world_size * PER_RANK)
        optimizer.zero_grad()
        mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        xs, ys = x[mine], y[mine]
        half = PER_RANK // 2
        with ddp.no_sync():
            (F.cross_entropy(ddp(Tensor(xs[:half])), Tensor(ys[:half])) / 2).backward()
        (F.cross_entropy(ddp(Tensor(xs[half:])), Tensor(ys[half:])) / 2).backward()
        optimizer.step()
    return {k: v.data.clone() for k, v in ddp.module.state_dict().items()}


class Branchy(nn.Module):
    """Two heads; `forward(x, which)` uses only one of them."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.left = nn.Linear(4, 2)
        self.right = nn.Linear(4, 2)

    def forward(self, x, which):
        h = self.body(x).tanh()
        return self.left(h) if which == "left" else self.right(h)


def unused_parameters(rank: int, world_size: int) -> dict:
    """find_unused_parameters=True: rank 0 uses the left head, rank 1 the right one;
    then both use the left head (the right one is unused everywhere: grad stays None).
    Without the flag, the next forward raises."""
    torch.manual_seed(0)
    model = Branchy().double()
    ddp = DistributedDataParallel(model, find_unused_parameters=True)
    x = Tensor(torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator()
                           .manual_seed(rank)))
    ddp(x, "left" if rank == 0 else "right").sum().backward()
    first = {n: (None if p.grad is None else p.grad.data.clone())
             for n, p in model.named_parameters()}
    model.zero_grad()
    ddp(x, "left").sum().backward()
    second = {n: (None if p.grad is None else p.grad.data.clone())
              for n, p in model.named_parameters()}
    strict = DistributedDataParallel(Branchy().double())
    strict(x, "left").sum().backward()
    try:
        strict(x, "left")
        error = None
    except RuntimeError as caught:
        error = str(caught)
    return {"x": x.data, "first": first, "second": second, "error": error}


def fault(rank: int, world_size: int) -> str:
    """Rank 1 raises before its backward; rank 0 must stop with a clear error."""
    model, _ = PAIRS["mlp"](0)
    ddp = DistributedDataParallel(model)
    x, y = batch("mlp", 0, PER_RANK)
    loss = F.cross_entropy(ddp(Tensor(x)), Tensor(y))
    if rank == 1:
        raise ValueError("rank 1 fails on purpose in the middle of a step")
    loss.backward()
    return "rank 0 finished its backward (it should not have)"


# --------------------------------------------------------------------------- the Learner
# tests/distributed/test_learner_ddp.py: Learner.fit under DDP with a DistributedSampler.
LEARNER_TRAIN, LEARNER_VALID = 40, 13  # 5 steps of PER_RANK a rank per epoch; 13: uneven
LEARNER_EPOCHS = 3


def learner_datasets():
    from handgrad.data import TensorDataset

    g = torch.Generator().manual_seed(7)
    n = LEARNER_TRAIN + LEARNER_VALID
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    return (TensorDataset(x[:LEARNER_TRAIN], y[:LEARNER_TRAIN]),
            TensorDataset(x[LEARNER_TRAIN:], y[LEARNER_TRAIN:]))


class WrittenBy:
    """A rank-zero-only callback that writes a file named after the rank running it."""

    rank_zero_only = True

    def __init__(self, directory):
        self.directory = directory

    def after_epoch(self, learner):
        import os

        with open(os.path.join(self.directory, f"written-by-rank{learner.rank}"), "w") as f:
            f.write(str(learner.epochs_done))


class FailAt:
    """Rank `rank` raises a ValueError after training batch `batch` of epoch `epoch`."""

    def __init__(self, rank, epoch, batch):
        self.where = (rank, epoch, batch)

    def after_batch(self, learner):
        if learner.training and (learner.rank, learner.epoch, learner.batch_index) == self.where:
            raise ValueError(f"rank {learner.rank} fails on purpose mid-epoch")


def build_learner(rank: int, world_size: int, directory, callbacks=()):
    """The MLP Learner of one rank (world_size 1: the single process, batch
    world_size * PER_RANK is the caller's choice through `per_step`)."""
    import os

    from handgrad.data import DataLoader, DistributedSampler, Subset
    from handgrad.train import EpochTable, Learner, SaveCheckpoint, accuracy

    train, valid = learner_datasets()
    model, _ = PAIRS["mlp"](rank)  # rank 1 starts elsewhere: DDP broadcasts rank 0's
    if world_size > 1:
        model = DistributedDataParallel(model)
        per_step, valid = PER_RANK, Subset(valid, range(rank, LEARNER_VALID, world_size))
    else:
        per_step = 2 * PER_RANK  # the single process takes both ranks' batches at once
    sampler = DistributedSampler(train, num_replicas=world_size, rank=rank, seed=0)
    train_dl = DataLoader(train, batch_size=per_step, sampler=sampler)
    valid_dl = DataLoader(valid, batch_size=4)
    mine = os.path.join(directory, f"rank{rank}")
    lines = []
    learner = Learner(model, train_dl, valid_dl, F.cross_entropy,
                      optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                      metrics=[accuracy],
                      callbacks=[SaveCheckpoint(os.path.join(mine, "checkpoint.safetensors")),
                                 EpochTable(print_fn=lines.append), WrittenBy(directory),
                                 *callbacks])
    return learner, lines


def learner_outcome(learner, lines, directory) -> dict:
    import os

    module = getattr(learner.model, "module", learner.model)
    return {"params": {k: v.data.clone() for k, v in module.state_dict().items()},
            "history": [{k: v for k, v in e.items() if k != "time"}
                        for e in learner.history.epochs],
            "step": learner.step, "lines": lines, "files": sorted(os.listdir(directory))}


def learner_fit(rank: int, world_size: int, directory, epochs: int = LEARNER_EPOCHS,
                fail=None, resume: str | None = None) -> dict:
    """Learner.fit(epochs) on this rank; `fail` = (rank, epoch, batch) makes that rank
    raise; `resume` loads that checkpoint first (on every rank)."""
    callbacks = [FailAt(*fail)] if fail else []
    learner, lines = build_learner(rank, world_size, directory, callbacks)
    if resume:
        learner.load_checkpoint(resume)
    learner.fit(epochs)
    return learner_outcome(learner, lines, directory)
