"""Optimizer hooks, side by side with torch.optim's: step pre/post hooks (own and
global) in torch's firing order, pre hooks that replace step's arguments, state_dict and
load_state_dict pre/post hooks (with prepend and returned replacements), handles that
remove them, and hooks around a step() that a subclass writes itself (LBFGS)."""

from __future__ import annotations

import importlib

import pytest
import torch

import handgrad
from handgrad import optim


def _pair():
    """An SGD over one parameter with a gradient, in each library."""
    w = handgrad.tensor([1.0, 2.0], requires_grad=True)
    w.grad = handgrad.tensor([0.5, -1.0])
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    t.grad = torch.tensor([0.5, -1.0])
    return optim.SGD([w], lr=0.1), torch.optim.SGD([t], lr=0.1)


def _register_step_hooks(opt, module, log):
    handles = [
        module.register_optimizer_step_pre_hook(lambda o, a, k: log.append("global pre")),
        module.register_optimizer_step_post_hook(lambda o, a, k: log.append("global post")),
        opt.register_step_pre_hook(lambda o, a, k: log.append(("pre", len(a), dict(k)))),
        opt.register_step_post_hook(lambda o, a, k: log.append(("post", len(a), dict(k)))),
    ]
    return handles


def test_step_hooks_fire_in_torchs_order_and_handles_remove_them():
    logs = []
    torch_module = importlib.import_module("torch.optim.optimizer")
    for opt, module in zip(_pair(), (optim, torch_module)):
        log = []
        handles = _register_step_hooks(opt, module, log)
        opt.step()
        opt.step(closure=None)
        for handle in handles:
            handle.remove()
        opt.step()
        logs.append(log)
    assert logs[0] == logs[1]
    # args hold step's positional arguments, the optimizer first
    assert logs[0][:4] == ["global pre", ("pre", 1, {}), ("post", 1, {}), "global post"]


def test_a_pre_hook_may_replace_steps_arguments():
    for opt in _pair():
        calls = []

        def closure(calls=calls):
            calls.append("closure")
            return 3.0

        opt.register_step_pre_hook(
            lambda o, a, k, closure=closure: ((o,), {"closure": closure}))
        seen = []
        opt.register_step_post_hook(lambda o, a, k, seen=seen: seen.append(sorted(k)))
        assert opt.step() == 3.0 and calls == ["closure"] and seen == [["closure"]]


def test_a_pre_hook_returning_something_else_is_refused():
    opt, reference = _pair()
    for o in (opt, reference):
        o.register_step_pre_hook(lambda o, a, k: "nonsense")
    with pytest.raises(RuntimeError, match="must return None or a tuple"):
        opt.step()
    with pytest.raises(RuntimeError, match="must return None or a tuple"):
        reference.step()


@pytest.mark.parametrize("library", ["handgrad", "torch"])
def test_state_dict_hooks_like_torch(library):
    opt = _pair()[library == "torch"]
    log = []
    opt.register_state_dict_pre_hook(lambda o: log.append("pre"))
    opt.register_state_dict_pre_hook(lambda o: log.append("pre first"), prepend=True)

    def post(o, state_dict):
        log.append("post")
        state_dict["param_groups"][0]["note"] = "added"

    opt.register_state_dict_post_hook(post)
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "replaced": True})
    state_dict = opt.state_dict()
    assert log == ["pre first", "pre", "post"]
    assert state_dict["replaced"] and state_dict["param_groups"][0]["note"] == "added"


@pytest.mark.parametrize("library", ["handgrad", "torch"])
def test_load_state_dict_hooks_like_torch(library):
    opt = _pair()[library == "torch"]
    saved = opt.state_dict()
    saved["param_groups"][0]["lr"] = 0.5
    log = []

    def pre(o, state_dict):
        log.append("pre")
        assert state_dict is not saved  # a shallow copy, as in torch
        groups = [{**g, "lr": g["lr"] * 2} for g in state_dict["param_groups"]]
        return {**state_dict, "param_groups": groups}

    opt.register_load_state_dict_pre_hook(pre)
    opt.register_load_state_dict_pre_hook(lambda o, sd: log.append("pre first"),
                                          prepend=True)
    opt.register_load_state_dict_post_hook(
        lambda o: log.append(("post", o.param_groups[0]["lr"])))
    opt.load_state_dict(saved)
    assert log == ["pre first", "pre", ("post", 1.0)]


def test_hooks_run_once_around_a_step_the_subclass_writes():
    w = handgrad.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.LBFGS([w], max_iter=3)
    log = []
    opt.register_step_pre_hook(lambda o, a, k: log.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: log.append("post"))

    def closure():
        log.append("closure")
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert log[0] == "pre" and log[-1] == "post" and log.count("pre") == 1
    assert opt._opt_called

    class Twice(optim.SGD):  # a step() that calls super().step(): hooks still once
        def step(self, closure=None):
            super().step()
            return super().step(closure)

    v = handgrad.tensor([1.0], requires_grad=True)
    v.grad = handgrad.tensor([1.0])
    twice = Twice([v], lr=0.25)
    count = []
    twice.register_step_post_hook(lambda o, a, k: count.append(1))
    twice.step()
    assert v.data.tolist() == [0.5] and count == [1]
