"""LBFGS against torch.optim.LBFGS: fixed steps and the strong-Wolfe line search, small
histories (pairs dropped), early stops by tolerance, the state dict in both directions,
and the errors.

Two kinds of comparison. With the very same gradients (each closure computes the loss
and gradient of the current values with torch, for both optimizers) every iterate is
torch's to the last bit. With handgrad's own backward the gradients round differently
from torch's in the last bits, and L-BFGS's curvature pairs amplify that a little, so
there the parameters agree to 1e-7 after 20 steps (and the counts of closure calls and
iterations are equal) in the runs that converge; a 3-pair history stopped after 5
iterations a step amplifies the last-bit differences further (2e-5 after 20 steps).
"""

from __future__ import annotations

import copy

import pytest
import torch

import handgrad
from handgrad import optim
from tests.optim.optim_helpers import data, initial_values, loss_of

CASES = [
    {},
    {"max_iter": 5, "history_size": 3},
    {"lr": 0.1, "tolerance_grad": 1e-3, "tolerance_change": 1e-4},
    {"line_search_fn": "strong_wolfe"},
    {"line_search_fn": "strong_wolfe", "max_iter": 4, "history_size": 2, "lr": 0.5},
    {"line_search_fn": "strong_wolfe", "max_iter": 10, "max_eval": 12},
]


def case_id(options) -> str:
    return "-".join(f"{k}={v}" for k, v in options.items()) or "defaults"


class LbfgsPair:
    """handgrad's and torch's LBFGS over copies of the tiny net's parameters."""

    def __init__(self, options: dict, shared_gradients: bool):
        values = initial_values()
        self.params = [handgrad.tensor(v.clone(), requires_grad=True) for v in values]
        self.torch_params = [v.clone().requires_grad_() for v in values]
        self.x, self.y = data()
        self.hx, self.hy = handgrad.tensor(self.x), handgrad.tensor(self.y)
        self.optimizer = optim.LBFGS(self.params, **options)
        self.torch_optimizer = torch.optim.LBFGS(self.torch_params, **options)
        self.shared_gradients = shared_gradients

    def _torch_loss_and_grads(self, values):
        leaves = [v.detach().clone().requires_grad_() for v in values]
        loss = loss_of(leaves, self.x, self.y, 0)
        grads = torch.autograd.grad(loss, leaves[:4])
        return loss.detach(), list(grads) + [None]

    def closure(self):
        self.optimizer.zero_grad()
        if not self.shared_gradients:
            loss = loss_of(self.params, self.hx, self.hy, 0)
            loss.backward()
            return loss
        loss, grads = self._torch_loss_and_grads([p.data for p in self.params])
        for p, g in zip(self.params, grads):
            p.grad = None if g is None else handgrad.tensor(g)
        return handgrad.tensor(loss)

    def torch_closure(self):
        self.torch_optimizer.zero_grad()
        if not self.shared_gradients:
            loss = loss_of(self.torch_params, self.x, self.y, 0)
            loss.backward()
            return loss
        loss, grads = self._torch_loss_and_grads(self.torch_params)
        for p, g in zip(self.torch_params, grads):
            p.grad = g
        return loss

    def run(self, steps: int) -> LbfgsPair:
        for _ in range(steps):
            ours = self.optimizer.step(self.closure)
            theirs = self.torch_optimizer.step(self.torch_closure)
            assert float(ours) == pytest.approx(float(theirs.detach()), rel=1e-6, abs=1e-12)
        return self

    def difference(self) -> float:
        return max((p.data - t.detach()).abs().max().item()
                   for p, t in zip(self.params, self.torch_params))

    def counts(self, optimizer, first) -> tuple[int, int]:
        state = optimizer.state[first]
        return state["func_evals"], state["n_iter"]


@pytest.mark.parametrize("options", CASES, ids=case_id)
def test_same_gradients_give_bit_identical_iterates(options):
    pair = LbfgsPair(options, shared_gradients=True).run(20)
    for i, (p, t) in enumerate(zip(pair.params, pair.torch_params)):
        assert torch.equal(p.data, t.detach()), f"LBFGS {options}: parameter {i} differs"
    assert pair.counts(pair.optimizer, pair.params[0]) == \
        pair.counts(pair.torch_optimizer, pair.torch_params[0])


@pytest.mark.parametrize("options", [CASES[0], CASES[3]], ids=case_id)
def test_twenty_steps_with_handgrad_backward_match_torch(options):
    pair = LbfgsPair(options, shared_gradients=False).run(20)
    assert pair.difference() <= 1e-7, pair.difference()
    assert pair.counts(pair.optimizer, pair.params[0]) == \
        pair.counts(pair.torch_optimizer, pair.torch_params[0])


@pytest.mark.parametrize("direction", ["torch->handgrad", "handgrad->torch"])
def test_state_dict_moves_between_handgrad_and_torch(direction):
    """The history (old_dirs, old_stps, ro, d, t, H_diag, ...) lives under parameter 0
    in both libraries; a run continued from a moved dict stays bit-identical."""
    options = {"line_search_fn": "strong_wolfe", "max_iter": 3, "history_size": 4}
    pair = LbfgsPair(options, shared_gradients=True).run(5)
    ours, theirs = pair.optimizer.state_dict(), pair.torch_optimizer.state_dict()
    assert set(ours["state"][0]) == set(theirs["state"][0])
    assert ours["param_groups"] == theirs["param_groups"]
    if direction == "torch->handgrad":
        params = [handgrad.tensor(p.data.clone(), requires_grad=True) for p in pair.params]
        fresh = optim.LBFGS(params, **options)
        fresh.load_state_dict(copy.deepcopy(theirs))
        pair.optimizer, pair.params = fresh, params
    else:
        params = [p.data.clone().requires_grad_() for p in pair.params]
        fresh = torch.optim.LBFGS(params, **options)
        fresh.load_state_dict(copy.deepcopy(ours))
        pair.torch_optimizer, pair.torch_params = fresh, params
    pair.run(5)
    assert pair.difference() == 0.0


def test_stops_at_once_when_the_gradient_is_already_small():
    w = handgrad.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.LBFGS([w], tolerance_grad=10.0)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 5.0 and len(calls) == 1
    assert w.data.tolist() == [1.0, 2.0]


def test_errors():
    w = handgrad.tensor([1.0, 2.0], requires_grad=True)

    def closure():
        loss = (w * w).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        optim.LBFGS([w], line_search_fn="wolfe").step(closure)
    with pytest.raises(RuntimeError, match="needs a closure"):
        optim.LBFGS([w]).step(None)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.LBFGS([w], lr=-1.0)
    assert optim.LBFGS([w], max_iter=8).param_groups[0]["max_eval"] == 10
