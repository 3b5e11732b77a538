"""Optimizer state_dicts: torch's layout and names, round trips within handgrad, and
dicts that move between handgrad and torch both ways mid-training."""

from __future__ import annotations

import copy

import pytest
import torch

import handgrad
from handgrad import optim
from tests.optim.optim_helpers import Pair

# One configuration per optimizer that fills every kind of state buffer.
FULL_STATE = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
    ("AdamW", {"lr": 0.01, "amsgrad": True}),
    ("Adadelta", {"lr": 0.5}),
    ("Adamax", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01}),
    ("ASGD", {"lr": 0.05, "t0": 3}),
    ("Rprop", {"lr": 0.05}),
    ("Adafactor", {"lr": 0.05}),
]
IDS = [name for name, _ in FULL_STATE]


@pytest.mark.parametrize("name,options", FULL_STATE, ids=IDS)
def test_layout_and_names_are_torchs(name, options):
    pair = Pair(name, options).run(4)
    ours, theirs = pair.optimizer.state_dict(), pair.torch_optimizer.state_dict()
    assert set(ours) == set(theirs) == {"state", "param_groups"}
    pair.assert_state_matches()  # same parameter indices, state names and values
    for mine, reference in zip(ours["param_groups"], theirs["param_groups"]):
        assert set(mine) <= set(reference), set(mine) - set(reference)
        for key in mine:
            if key != "foreach":
                assert mine[key] == reference[key], key
    step = next(s["step"] for s in ours["state"].values() if "step" in s) \
        if name != "SGD" else None
    if step is not None:  # the count is handed out as torch keeps it
        assert isinstance(step, torch.Tensor) and step.dtype == torch.float32


def _reload_own(optimizer) -> None:
    """Load an optimizer's own state dict into it. Loading casts every floating state
    tensor to the parameter's dtype, in torch and handgrad alike (NAdam's float32
    'mu_product', ASGD's 'eta' and 'mu' become float64), so the side of a pair that did
    not change hands reloads too, and both continue from the same condition."""
    optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))


@pytest.mark.parametrize("name,options", FULL_STATE, ids=IDS)
def test_round_trip_continues_the_same_run(name, options):
    pair = Pair(name, options).run(10)
    _reload_own(pair.torch_optimizer)
    saved = copy.deepcopy(pair.optimizer.state_dict())
    params = [handgrad.tensor(p.data.clone(), requires_grad=True) for p in pair.params]
    fresh = getattr(optim, name)(params, lr=123.0)  # options come from the dict
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == options["lr"]
    pair.optimizer, pair.params = fresh, params
    pair.run(10).assert_state_matches()


@pytest.mark.parametrize("name,options", FULL_STATE, ids=IDS)
def test_handgrad_state_dict_loads_into_torch(name, options):
    pair = Pair(name, options).run(10)
    saved = copy.deepcopy(pair.optimizer.state_dict())
    _reload_own(pair.optimizer)
    params = [p.data.clone().requires_grad_() for p in pair.params]
    reference = getattr(torch.optim, name)(params, lr=123.0)
    reference.load_state_dict(saved)
    pair.torch_optimizer, pair.torch_params = reference, params
    pair.run(10).assert_state_matches()


@pytest.mark.parametrize("name,options", FULL_STATE, ids=IDS)
def test_torch_state_dict_loads_into_handgrad(name, options):
    pair = Pair(name, options).run(10)
    saved = copy.deepcopy(pair.torch_optimizer.state_dict())
    _reload_own(pair.torch_optimizer)
    params = [handgrad.tensor(p.detach().clone(), requires_grad=True)
              for p in pair.torch_params]
    ours = getattr(optim, name)(params, lr=123.0)
    ours.load_state_dict(saved)
    pair.optimizer, pair.params = ours, params
    pair.run(10).assert_state_matches()


def test_load_copies_buffers_and_casts_to_the_parameter_dtype():
    pair = Pair("SGD", {"lr": 0.1, "momentum": 0.9}).run(2)
    saved = pair.optimizer.state_dict()
    params = [handgrad.tensor(p.data.float(), requires_grad=True) for p in pair.params]
    fresh = optim.SGD(params, lr=0.1, momentum=0.9)
    fresh.load_state_dict(saved)
    buffer = fresh.state[params[0]]["momentum_buffer"]
    assert buffer.dtype == torch.float32
    assert buffer.data_ptr() != saved["state"][0]["momentum_buffer"].data_ptr()


def test_adamw_stays_decoupled_after_loading_an_adam_dict():
    w = handgrad.zeros(2, requires_grad=True)
    adam = optim.Adam([w], lr=0.1)
    adamw = optim.AdamW([handgrad.zeros(2, requires_grad=True)])
    adamw.load_state_dict(adam.state_dict())
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True
    assert adamw.param_groups[0]["lr"] == 0.1


def test_mismatched_groups_are_refused():
    a, b = handgrad.zeros(2, requires_grad=True), handgrad.zeros(2, requires_grad=True)
    two_groups = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    one_group = optim.SGD([a, b], lr=0.1)
    with pytest.raises(ValueError, match="2 parameter groups.*this optimizer has 1"):
        one_group.load_state_dict(two_groups.state_dict())
    with pytest.raises(ValueError, match="group 0 has 2 parameters"):
        optim.SGD([a], lr=0.1).load_state_dict(one_group.state_dict())


@pytest.mark.parametrize("direction", ["torch->handgrad", "handgrad->torch"])
def test_muon_state_dict_moves_both_ways(direction):
    """Muon over the net's two weight matrices (it takes 2-d parameters only)."""
    groups = [([0, 2], {})]
    pair = Pair("Muon", {"lr": 0.02}, groups=groups).run(5)
    if direction == "torch->handgrad":
        saved = copy.deepcopy(pair.torch_optimizer.state_dict())
        params = [handgrad.tensor(p.detach().clone(), requires_grad=True)
                  for p in pair.torch_params]
        fresh = optim.Muon([params[0], params[2]], lr=123.0)
        fresh.load_state_dict(saved)
        pair.optimizer, pair.params = fresh, params
    else:
        saved = copy.deepcopy(pair.optimizer.state_dict())
        params = [p.data.clone().requires_grad_() for p in pair.params]
        fresh = torch.optim.Muon([params[0], params[2]], lr=123.0)
        fresh.load_state_dict(saved)
        pair.torch_optimizer, pair.torch_params = fresh, params
    pair.run(5).assert_state_matches()
