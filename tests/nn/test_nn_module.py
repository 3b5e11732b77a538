"""The Module system: registration, traversal, state_dict with torch both ways, modes,
devices and dtypes, containers, repr, and errors that name the layer."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

import handgrad as hg
from handgrad import nn
from handgrad.autograd import HandgradError


class Net(nn.Module):
    """A small model with a parameter, a buffer, nested and shared submodules."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(hg.ones(3))
        self.register_buffer("calls", hg.zeros((), dtype=hg.int64))
        self.body = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU())
        self.head = nn.Linear(3, 2)
        self.tied = self.head  # shared: its parameters must be counted once

    def forward(self, x):
        return self.head(self.body(x) * self.scale)


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(3))
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3),
                                        torch.nn.ReLU())
        self.head = torch.nn.Linear(3, 2)
        self.tied = self.head

    def forward(self, x):
        return self.head(self.body(x) * self.scale)


def test_registration_and_traversal_match_torch():
    ours, theirs = Net(), TorchNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert len(list(ours.parameters())) == 7
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.parameters())
    assert [n for n, _ in ours.named_parameters(recurse=False)] == ["scale"]
    assert ours.get_submodule("body.1") is ours.body[1]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_assignment_rules():
    net = Net()
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'scale'"):
        net.scale = hg.ones(3)
    net.scale = None  # allowed, like torch
    assert "scale" not in dict(net.named_parameters())
    net.extra = nn.Parameter(hg.zeros(2))
    assert "extra" in dict(net.named_parameters())
    del net.extra
    assert "extra" not in dict(net.named_parameters())
    net.calls = torch.tensor(5)  # a torch tensor assigned to a buffer is wrapped
    assert isinstance(net.calls, hg.Tensor) and net.calls.item() == 5
    net.head = nn.Identity()  # replacing a submodule keeps its place in the order
    assert [n for n, _ in net.named_children()][1] == "head"
    with pytest.raises(AttributeError, match="before Module.__init__"):
        class Forgot(nn.Module):
            def __init__(self):
                self.w = nn.Parameter(hg.ones(1))
        Forgot()
    with pytest.raises(KeyError, match="already exists"):
        net.register_buffer("body", hg.zeros(1))
    with pytest.raises(ValueError, match="not a leaf"):
        nn.Module().register_parameter("p", _non_leaf_parameter())
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        net.missing


def _non_leaf_parameter():
    p = nn.Parameter(hg.ones(2))
    p._ctx = (hg.ones(2, requires_grad=True) * 2)._ctx
    return p


def test_parameter():
    data = torch.randn(2, 3)
    p = nn.Parameter(data)
    assert p.requires_grad and p.is_leaf and p.data.data_ptr() == data.data_ptr()
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not nn.Parameter(hg.ones(1), requires_grad=False).requires_grad
    with pytest.raises(RuntimeError, match="floating-point"):
        nn.Parameter(torch.ones(2, dtype=torch.int64))


# ------------------------------------------------------------------ state_dict
def test_state_dict_round_trips_with_torch_both_ways():
    torch.manual_seed(0)
    ours, theirs = Net(), TorchNet()
    theirs.body[1].running_mean.normal_()
    theirs.body[1].num_batches_tracked.fill_(3)
    result = ours.load_state_dict(theirs.state_dict())  # torch -> handgrad
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key].data, value), key
    with hg.no_grad():
        ours.head.weight.data.mul_(3)
    fresh = TorchNet()
    fresh.load_state_dict({k: v.data for k, v in ours.state_dict().items()})  # and back
    assert torch.equal(fresh.head.weight, ours.head.weight.data)
    x = torch.randn(5, 4)
    fresh.eval()
    ours.eval()
    assert torch.allclose(ours(hg.tensor(x)).data, fresh(x), atol=1e-6)


def test_state_dict_values_share_storage_and_load_copies_in_place():
    net = nn.Linear(2, 2)
    state = net.state_dict()
    assert not state["weight"].requires_grad
    assert state["weight"].data.data_ptr() == net.weight.data.data_ptr()
    assert net.state_dict(keep_vars=True)["weight"] is net.weight
    weight = net.weight
    net.load_state_dict({"weight": np.ones((2, 2)), "bias": torch.zeros(2)})
    assert net.weight is weight and torch.equal(weight.data, torch.ones(2, 2))
    assert weight.dtype == torch.float32  # the module's dtype is kept


def test_load_state_dict_reports_missing_unexpected_and_shape_mismatch():
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    good = net.state_dict()
    broken = {k: v for k, v in good.items() if k != "2.bias"}
    broken["2.gain"] = hg.ones(1)
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(broken)
    message = str(info.value)
    assert 'Missing key(s) in state_dict: "2.bias"' in message
    assert 'Unexpected key(s) in state_dict: "2.gain"' in message
    assert message.index("Missing") < message.index("Unexpected")  # torch's order
    result = net.load_state_dict(broken, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["2.gain"]
    wrong = dict(good)
    wrong["0.weight"] = hg.zeros(4, 3)
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for 0\.weight: copying a param "
                           r"with shape \(4, 3\) from checkpoint, the shape in current model "
                           r"is \(2, 3\)"):
            net.load_state_dict(wrong, strict=strict)


def test_a_state_dict_without_num_batches_tracked_loads_like_torch():
    """torch accepts (plain-dict) checkpoints from before BatchNorm counted its batches:
    the count is kept as it is."""
    saved = {k: v for k, v in torch.nn.Sequential(torch.nn.Linear(2, 3),
                                                  torch.nn.BatchNorm1d(3)).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    saved["1.running_mean"] = torch.full((3,), 0.5)
    ours = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ours[1].num_batches_tracked.data.fill_(7)
    result = ours.load_state_dict(saved)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert ours[1].num_batches_tracked.item() == 7
    assert torch.equal(ours[1].running_mean.data, torch.full((3,), 0.5))
    other = dict(saved)
    del other["1.running_var"]  # any other missing key is still an error
    with pytest.raises(RuntimeError, match='Missing key.*"1.running_var"'):
        ours.load_state_dict(other)


def test_non_persistent_buffers_stay_out_of_the_state_dict():
    module = nn.Module()
    module.register_buffer("kept", hg.ones(1))
    module.register_buffer("scratch", hg.ones(1), persistent=False)
    assert list(module.state_dict()) == ["kept"]
    assert [n for n, _ in module.named_buffers()] == ["kept", "scratch"]


# ------------------------------------------------------------------ modes, devices, grads
def test_train_eval_reach_every_submodule():
    net = Net()
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError):
        net.train("yes")


def test_to_converts_in_place_keeping_parameter_objects():
    net = Net()
    params = list(net.parameters())
    net(hg.randn(4, 4)).sum().backward()
    assert net.double() is net
    assert all(p is q for p, q in zip(params, net.parameters()))
    assert all(p.dtype == torch.float64 and p.grad.dtype == torch.float64 for p in params)
    assert net.body[1].running_mean.dtype == torch.float64
    assert net.calls.dtype == torch.int64  # integer buffers keep their dtype
    net.to("cpu", torch.float32)
    assert net.head.weight.dtype == torch.float32
    net.to(torch.zeros(1, dtype=torch.float64))
    assert net.head.weight.dtype == torch.float64
    with pytest.raises(TypeError, match="floating point"):
        net.to(torch.int32)


def test_to_keeps_an_optimizer_working():
    model = nn.Linear(3, 1)
    optimizer = hg.optim.SGD(model.parameters(), lr=0.1)
    model.double()
    model(hg.ones(2, 3, dtype=torch.float64)).sum().backward()
    before = model.weight.data.clone()
    optimizer.step()
    assert not torch.equal(model.weight.data, before)


def test_zero_grad_apply_and_requires_grad():
    net = Net()
    net(hg.randn(4, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(torch.count_nonzero(p.grad.data) == 0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "BatchNorm1d", "ReLU", "Sequential", "Linear", "Net"]
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


# ------------------------------------------------------------------ repr, containers
def test_repr_matches_torch():
    assert repr(Net()).replace("Net", "X", 1) == repr(TorchNet()).replace("TorchNet", "X", 1)
    assert repr(nn.Linear(3, 2, bias=False)) == repr(torch.nn.Linear(3, 2, bias=False))
    assert repr(nn.ModuleDict({"a": nn.Tanh()})) == repr(torch.nn.ModuleDict(
        {"a": torch.nn.Tanh()}))


def test_sequential():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c] and seq[-1] is c
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == [b, c]
    x = hg.randn(4, 2)
    assert torch.equal(seq(x).data, c(b(a(x))).data)
    named = nn.Sequential(OrderedDict(first=a, second=b))
    assert [n for n, _ in named.named_children()] == ["first", "second"]
    assert named[0:1]._modules.keys() == {"first"}
    seq.append(nn.Sigmoid())
    seq.insert(0, nn.Identity())
    assert [type(m).__name__ for m in seq] == ["Identity", "Linear", "ReLU", "Linear",
                                               "Sigmoid"]
    del seq[0]
    assert list(seq._modules) == ["0", "1", "2", "3"] and seq[0] is a
    seq[1] = nn.Tanh()
    assert list(seq._modules) == ["0", "1", "2", "3"] and isinstance(seq[1], nn.Tanh)
    assert seq.pop() is not None and len(seq) == 3
    with pytest.raises(IndexError, match="out of range"):
        seq[5]


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.ReLU())
    layers += [nn.Tanh()]
    assert len(layers) == 5 and isinstance(layers[1:3], nn.ModuleList)
    assert len(list(layers.parameters())) == 6
    assert [n for n, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]
    with pytest.raises(NotImplementedError, match="forward"):
        layers(hg.ones(2))
    heads = nn.ModuleDict({"cls": nn.Linear(2, 3)})
    heads["box"] = nn.Linear(2, 4)
    heads.update([("aux", nn.Identity())])
    assert list(heads) == ["cls", "box", "aux"] and "box" in heads and len(heads) == 3
    assert [n for n, _ in heads.named_parameters()] == ["cls.weight", "cls.bias",
                                                        "box.weight", "box.bias"]
    assert isinstance(heads.pop("aux"), nn.Identity) and len(heads) == 2


# ------------------------------------------------------------------ errors name the layer
def test_linear_with_the_wrong_features_names_the_layer_expected_and_got():
    with pytest.raises(HandgradError,
                       match=r"Linear: expected an input with 784 features in its last dim, "
                             r"got shape \(8, 100\)"):
        nn.Linear(784, 10)(hg.randn(8, 100))
    model = nn.MLP(784, [256, 256], 10)
    with pytest.raises(HandgradError) as info:
        model(hg.randn(8, 784)[:, :300])
    assert "expected an input with 784 features" in str(info.value)
    assert "in layer '0' (Linear(in_features=784, out_features=256, bias=True)) of MLP" \
        in str(info.value)


def test_errors_name_the_path_through_nested_modules():
    net = Net()
    net.head = nn.Linear(5, 2)  # does not fit the 3 features the body makes
    with pytest.raises(HandgradError, match=r"\[in layer 'head' \(Linear\(in_features=5, "
                                            r"out_features=2, bias=True\)\) of Net\]"):
        net(hg.randn(4, 4))
    outer = nn.Sequential(nn.Identity(), nn.Sequential(nn.Linear(2, 2), nn.Linear(3, 1)))
    with pytest.raises(HandgradError, match=r"in layer '1\.1' .* of Sequential"):
        outer(hg.randn(4, 2))
