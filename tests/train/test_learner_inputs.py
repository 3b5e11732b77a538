"""What the Learner and the plain fit() do with unusual input: bad epoch counts, empty
loaders, dict batches, Tensor metrics and an optimizer over another model's parameters."""

from __future__ import annotations

import pytest
import torch

import handgrad as hg
from handgrad import nn, optim
from handgrad.data import DataLoader, TensorDataset
from handgrad.train import Learner, fit
from handgrad.train.metrics import batch_size, metric_value


def _data(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, generator=g), torch.randint(0, 2, (n,), generator=g))


def _learner(train_dl=None, valid_dl=None, metrics=(), model=None, optimizer=None):
    torch.manual_seed(0)
    model = model or nn.Linear(3, 2)
    optimizer = optimizer or optim.SGD(model.parameters(), lr=0.1)
    train_dl = train_dl if train_dl is not None else DataLoader(_data(), batch_size=8)
    return Learner(model, train_dl, valid_dl, nn.CrossEntropyLoss(), optimizer,
                   metrics=metrics)


@pytest.mark.parametrize("epochs, error, message", [
    (2.5, TypeError, "epochs must be an int"),
    ("3", TypeError, "epochs must be an int"),
    (True, TypeError, "epochs must be an int"),
    (-1, ValueError, "epochs must be >= 0, got -1"),
])
def test_bad_epoch_counts_are_refused(epochs, error, message):
    learner = _learner()
    with pytest.raises(error, match=message):
        learner.fit(epochs)
    assert learner.step == 0
    with pytest.raises(error, match=message):
        fit(learner.model, learner.train_dl, learner.train_dl, learner.loss_fn,
            learner.optimizer, epochs)


def test_fit_zero_is_a_no_op():
    learner = _learner()
    before = learner.model.weight.data.clone()
    assert learner.fit(0).epochs == [] and learner.step == 0
    assert torch.equal(learner.model.weight.data, before)


def test_an_empty_train_loader_says_why():
    empty = DataLoader(_data(5), batch_size=8, drop_last=True)
    with pytest.raises(ValueError, match=r"train_dl yields no batch \(its dataset holds 5 "
                                         r"examples, batch_size=8, drop_last=True\)"):
        _learner(train_dl=empty).fit(1)
    with pytest.raises(ValueError, match="train_dl yields no batch"):
        _learner(train_dl=iter([])).fit(1)  # no __len__: found while iterating
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="fit: train_dl yields no batch"):
        fit(model, empty, empty, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), 1)


def test_an_empty_valid_loader_is_refused_not_skipped():
    empty = DataLoader(_data(5), batch_size=8, drop_last=True)
    with pytest.raises(ValueError, match="valid_dl yields no batch.*valid_dl=None"):
        _learner(valid_dl=empty).fit(1)
    with pytest.raises(ValueError, match="evaluate: the batches yield no example"):
        _learner().evaluate(empty)


def test_dict_batches_pass_their_inputs_as_keyword_arguments():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 2)

        def forward(self, input):
            return self.linear(input)

    pairs = list(DataLoader(_data(), batch_size=8))
    dicts = [{"input": x, "target": y} for x, y in pairs]
    torch.manual_seed(0)
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    la = _learner(pairs, pairs, model=a)
    lb = _learner(dicts, dicts, model=b)
    la.fit(2)
    lb.fit(2)
    assert torch.equal(a.linear.weight.data, b.linear.weight.data)
    assert la.history.epochs[-1]["valid_loss"] == lb.history.epochs[-1]["valid_loss"]
    assert lb.evaluate(dicts)["loss"] == la.evaluate(pairs)["loss"]
    with pytest.raises(TypeError, match="a dict batch needs a 'target' entry"):
        _learner([{"x": pairs[0][0], "y": pairs[0][1]}]).fit(1)
    with pytest.raises(TypeError, match="a batch is \\(x, y\\)"):
        _learner([pairs[0][0]]).fit(1)


def test_a_metric_returning_a_tensor_is_logged_as_a_float():
    def torch_accuracy(output, target):
        return (output.data.argmax(-1) == target.data).float().mean()  # a 0-d torch tensor

    def handgrad_mean(output, target):
        return output.mean()  # a 0-d handgrad Tensor

    learner = _learner(valid_dl=DataLoader(_data(16, seed=1), batch_size=8),
                       metrics=[torch_accuracy, handgrad_mean])
    last = learner.fit(1).epochs[-1]
    for key in ("train_torch_accuracy", "valid_torch_accuracy", "valid_handgrad_mean"):
        assert type(last[key]) is float, key
    assert type(learner.evaluate(learner.valid_dl)["torch_accuracy"]) is float
    assert metric_value(hg.tensor(2.5)) == 2.5 and metric_value(torch.tensor(1)) == 1.0
    with pytest.raises(TypeError, match="metric 'm' returned a tensor of shape \\(2,\\)"):
        metric_value(torch.ones(2), "m")
    with pytest.raises(TypeError, match="returned a str"):
        metric_value("high", "m")
    assert batch_size(torch.zeros(7, 2)) == 7 and batch_size([1, 2, 3]) == 3


def test_an_optimizer_over_another_models_parameters_is_refused():
    model, other = nn.Linear(3, 2), nn.Linear(3, 2)
    with pytest.raises(ValueError, match="none of the optimizer's 2 parameters.*belongs to "
                                         "the model Linear"):
        _learner(model=model, optimizer=optim.SGD(other.parameters(), lr=0.1))
    # a few parameters outside the model (e.g. a learnable loss) are fine
    extra = nn.Linear(1, 1)
    _learner(model=model, optimizer=optim.SGD([*model.parameters(), *extra.parameters()],
                                              lr=0.1))
