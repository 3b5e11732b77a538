"""Every optimizer and option against PyTorch's optimizer of the same name: 20 steps on
the same tiny float64 net, parameters equal to 1e-10 after every step; plus the
Optimizer base class (groups, zero_grad, closure, argument errors)."""

from __future__ import annotations

import inspect

import pytest
import torch

import handgrad
from handgrad import optim
from tests.optim.optim_helpers import Pair, initial_values

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.005, "momentum": 0.5, "centered": True, "eps": 1e-6,
                 "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "eps": 1e-6, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1,
              "amsgrad": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.1, "maximize": True}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1, "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "momentum_decay": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1,
               "maximize": True}),
    ("RAdam", {}),  # rho_t > 5 from step 6: both branches
    ("RAdam", {"lr": 0.01, "betas": (0.9, 0.9), "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1,
               "maximize": True}),
    ("ASGD", {}),
    ("ASGD", {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 5, "weight_decay": 0.1}),
    ("ASGD", {"lr": 0.05, "t0": 0, "maximize": True}),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.1), "maximize": True}),
    ("Adafactor", {}),
    ("Adafactor", {"lr": 0.05, "beta2_decay": -0.5, "eps": (1e-20, 1e-2), "d": 1.5,
                   "weight_decay": 0.1, "maximize": True}),
]


def case_id(case) -> str:
    name, options = case
    return name + "".join(f"-{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("foreach", [None, False, True])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_twenty_steps_match_torch(case, foreach):
    name, options = case
    pair = Pair(name, {**options, "foreach": foreach}).run(20)
    pair.assert_state_matches()


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_same_gradients_give_bit_identical_updates(case, foreach):
    """Fed the very same gradients, the update is torch's to the last bit on CPU: same
    operations in the same order (the 1e-10 above only absorbs the nets' gradients,
    which handgrad's backward rounds differently from torch's)."""
    name, options = case
    values = initial_values()
    params = [handgrad.tensor(v.clone(), requires_grad=True) for v in values]
    torch_params = [v.clone().requires_grad_() for v in values]
    optimizer = getattr(optim, name)(params, **options, foreach=foreach)
    reference = getattr(torch.optim, name)(torch_params, **options)
    g = torch.Generator().manual_seed(3)
    for step in range(15):
        for i, (p, t) in enumerate(zip(params, torch_params)):
            if i == 4 or (i == 3 and step % 2):  # no gradient: skipped by both
                p.grad = t.grad = None
                continue
            grad = torch.randn(t.shape, generator=g, dtype=torch.float64)
            p.grad, t.grad = handgrad.tensor(grad.clone()), grad.clone()
        optimizer.step()
        reference.step()
    for i, (p, t) in enumerate(zip(params, torch_params)):
        assert torch.equal(p.data, t.detach()), f"{name}: parameter {i} differs"


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adagrad", "Adam", "AdamW", "Adadelta",
                                  "Adamax", "NAdam", "RAdam", "ASGD", "Rprop", "Adafactor"])
def test_on_each_device(name, device):
    options = {"lr": 0.01} if name == "Rprop" else {"lr": 0.01, "weight_decay": 0.01}
    if name in ("SGD", "RMSprop"):
        options["momentum"] = 0.9
    Pair(name, options, device=device).run(20)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad", "NAdam", "RAdam", "ASGD",
                                  "Rprop"])
def test_zero_grad_to_zeros_steps_with_zero_gradients_like_torch(name):
    """With set_to_none=False a parameter left out of the loss still gets a (zero-gradient)
    update, which moves it through momentum or weight decay; with None it is skipped."""
    options = {"lr": 0.05} if name == "Rprop" else {"lr": 0.05, "weight_decay": 0.1}
    if name in ("SGD", "RMSprop"):
        options["momentum"] = 0.9
    Pair(name, options).run(20, set_to_none=False).assert_state_matches()


@pytest.mark.parametrize("name,groups", [
    ("SGD", [([0, 1], {"lr": 0.2, "momentum": 0.9}), ([2, 3, 4], {"nesterov": True})]),
    ("Adam", [([0, 2], {"betas": (0.5, 0.9)}), ([1, 3, 4], {"lr": 0.05, "amsgrad": True})]),
    ("RMSprop", [([0], {"centered": True}), ([1, 2, 3, 4], {"momentum": 0.0})]),
    ("Adagrad", [([0, 1, 2], {"lr_decay": 0.1}), ([3, 4], {"lr": 0.3})]),
], ids=["SGD", "Adam", "RMSprop", "Adagrad"])
def test_parameter_groups_keep_their_own_options(name, groups):
    pair = Pair(name, {"lr": 0.02, "momentum": 0.5} if name == "SGD" else {"lr": 0.02},
                groups=groups).run(20)
    pair.assert_state_matches()
    assert pair.optimizer.param_groups[0]["lr"] == pair.torch_optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("name", ["SGD", "Adam", "Adagrad"])
def test_add_param_group_mid_training(name):
    options = {"lr": 0.05, "momentum": 0.9} if name == "SGD" else {"lr": 0.05}
    pair = Pair(name, options, groups=[([0, 1, 2, 4], {})]).run(5)
    pair.optimizer.add_param_group({"params": [pair.params[3]], "lr": 0.1})
    pair.torch_optimizer.add_param_group({"params": [pair.torch_params[3]], "lr": 0.1})
    pair.run(15).assert_state_matches()


def test_closure_is_evaluated_with_grad_enabled_and_its_loss_returned():
    pair = Pair("SGD", {"lr": 0.1})

    def closure():
        pair.optimizer.zero_grad()
        loss = (pair.params[0] * pair.params[0]).sum()
        loss.backward()
        return loss

    before = pair.params[0].data.clone()
    with handgrad.no_grad():
        loss = pair.optimizer.step(closure)
    assert loss.item() == pytest.approx((before ** 2).sum().item())
    torch.testing.assert_close(pair.params[0].data, before - 0.1 * 2 * before)


def test_zero_grad():
    w = handgrad.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and w.grad.data.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None
    opt.step()  # no gradient: nothing happens
    assert w.data.tolist() == [1.0, 2.0]


def test_param_groups_defaults_and_repr():
    w, b = handgrad.zeros(2, requires_grad=True), handgrad.zeros(1, requires_grad=True)
    opt = optim.Adam([{"params": [w]}, {"params": b, "lr": 0.5}], lr=0.01)
    reference = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.01)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["params"] == [b]
    assert set(opt.defaults) <= set(reference.defaults)
    assert "Parameter Group 1" in repr(opt) and "lr: 0.5" in repr(opt)


def test_named_parameters_are_recorded_like_torch():
    w = handgrad.zeros(2, requires_grad=True)
    opt = optim.SGD([("layer.weight", w)], lr=0.1)
    assert opt.param_groups[0]["params"] == [w]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["layer.weight"]


def _leaf():
    return handgrad.zeros(2, requires_grad=True)


@pytest.mark.parametrize("make,error,match", [
    (lambda: optim.SGD([_leaf()], lr=-0.1), ValueError, "Invalid learning rate"),
    (lambda: optim.SGD([_leaf()], momentum=-0.5), ValueError, "Invalid momentum"),
    (lambda: optim.SGD([_leaf()], weight_decay=-1), ValueError, "Invalid weight_decay"),
    (lambda: optim.SGD([_leaf()], nesterov=True), ValueError, "Nesterov momentum requires"),
    (lambda: optim.SGD([_leaf()], momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "zero dampening"),
    (lambda: optim.SGD([{"params": [_leaf()], "lr": -1.0}], lr=0.1), ValueError,
     "Invalid learning rate"),
    (lambda: optim.RMSprop([_leaf()], alpha=-0.1), ValueError, "Invalid alpha"),
    (lambda: optim.RMSprop([_leaf()], eps=-1e-8), ValueError, "Invalid epsilon"),
    (lambda: optim.Adagrad([_leaf()], lr_decay=-1), ValueError, "Invalid lr_decay"),
    (lambda: optim.Adagrad([_leaf()], initial_accumulator_value=-1), ValueError,
     "Invalid initial_accumulator_value"),
    (lambda: optim.Adam([_leaf()], betas=(1.0, 0.999)), ValueError,
     "Invalid beta parameter at index 0"),
    (lambda: optim.Adam([_leaf()], betas=(0.9, -0.1)), ValueError,
     "Invalid beta parameter at index 1"),
    (lambda: optim.AdamW([_leaf()], eps=-1.0), ValueError, "AdamW: Invalid epsilon"),
    (lambda: optim.Adam([], lr=0.1), ValueError, "empty parameter list"),
    (lambda: optim.Adam(_leaf()), TypeError, "single Tensor"),
    (lambda: optim.Adam({_leaf()}), TypeError, "ordered collections"),
    (lambda: optim.Adam([{"params": {_leaf()}}]), TypeError, "ordered collections"),
    (lambda: optim.SGD([torch.zeros(2, requires_grad=True)]), TypeError, "torch.Tensor"),
    (lambda: optim.SGD([_leaf() * 2]), ValueError, "non-leaf"),
    (lambda: optim.SGD([3.0]), TypeError, "only optimize Tensors"),
    (lambda: optim.Adadelta([_leaf()], rho=1.5), ValueError, "Invalid rho value"),
    (lambda: optim.Adamax([_leaf()], betas=(0.9, 1.0)), ValueError,
     "Invalid beta parameter at index 1"),
    (lambda: optim.NAdam([_leaf()], momentum_decay=-1), ValueError,
     "Invalid momentum_decay value"),
    (lambda: optim.RAdam([_leaf()], weight_decay=-1), ValueError, "Invalid weight_decay"),
    (lambda: optim.ASGD([_leaf()], lr=-1), ValueError, "Invalid learning rate"),
    (lambda: optim.Rprop([_leaf()], etas=(0.5, 0.9)), ValueError, "Invalid eta values"),
    (lambda: optim.Adafactor([_leaf()], beta2_decay=0.5), ValueError,
     "beta2_decay should be <= 0"),
    (lambda: optim.Adafactor([_leaf()], d=0.5), ValueError, "Clipping threshold d"),
    (lambda: optim.LBFGS([{"params": [_leaf()]}, {"params": [_leaf()]}]), ValueError,
     "doesn't support per-parameter options"),
    (lambda: optim.Adam([_leaf()], differentiable=True), NotImplementedError,
     "differentiable=True"),
    (lambda: optim.AdamW([_leaf()], fused=True, foreach=True), RuntimeError,
     "`fused` and `foreach` cannot be `True` together"),
])
def test_invalid_arguments_are_refused_like_torch(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_a_parameter_in_two_groups_is_refused():
    w = _leaf()
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    opt = optim.SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [w]})


def test_adagrad_uses_each_groups_initial_accumulator_value():
    """A documented difference: PyTorch fills every group's 'sum' from the constructor's
    value; handgrad uses the group's own."""
    a, b = handgrad.zeros(2, requires_grad=True), handgrad.zeros(2, requires_grad=True)
    opt = optim.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 0.5}],
                        initial_accumulator_value=0.1)
    assert opt.state[a]["sum"].tolist() == pytest.approx([0.1, 0.1])
    assert opt.state[b]["sum"].tolist() == [0.5, 0.5]
    c = handgrad.zeros(1, requires_grad=True)
    opt.add_param_group({"params": [c], "initial_accumulator_value": 2.0})
    c.grad = handgrad.ones(1)
    opt.step()
    assert opt.state[c]["sum"].tolist() == [3.0] and opt.state[c]["step"] == 1


def test_a_new_optimizer_is_its_update_rule_on_the_shared_step_loop():
    """Optimizer.step() is the one loop (groups, parameters with a gradient, state made on
    first use, foreach or one at a time); a subclass gives only `_update`."""

    class SignDescent(optim.Optimizer):
        def __init__(self, params, lr=0.1, foreach=None):
            super().__init__(params, dict(lr=lr, foreach=foreach))

        def _init_state(self, state, p, group):
            state["calls"] = 0

        def _update(self, group, params, grads, states):
            for p, g, s in zip(params, grads, states):
                p.sub_(group["lr"] * g.sign())
                s["calls"] += 1
            self.sizes.append(len(params))

    for foreach, sizes in ((None, [2]), (False, [1, 1])):
        a, b = handgrad.zeros(2, requires_grad=True), handgrad.zeros(2, requires_grad=True)
        unused = handgrad.zeros(1, requires_grad=True)  # no grad: skipped, no state
        opt = SignDescent([a, b, unused], foreach=foreach)
        opt.sizes = []
        a.grad, b.grad = handgrad.tensor([1.0, -2.0]), handgrad.tensor([0.0, 3.0])
        assert opt.step(lambda: 7.0) == 7.0 and opt._opt_called
        assert a.tolist() == pytest.approx([-0.1, 0.1]) and b.tolist() == pytest.approx([0, -0.1])
        assert opt.sizes == sizes and opt.state[a]["calls"] == 1 and unused not in opt.state
    with pytest.raises(NotImplementedError, match="_update"):
        w = _leaf()
        w.grad = handgrad.ones(2)
        optim.Optimizer([w], {}).step()


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "Adam", "AdamW"])
def test_fused_and_capturable_are_accepted_and_keep_torchs_group_keys(name):
    """fused=True runs the all-at-once update (handgrad has no fused kernels): the same
    parameters as torch's unfused optimizer; the keywords are kept in param_groups."""
    options = {"lr": 0.01, "fused": True}
    if name in ("Adam", "AdamW"):
        options["capturable"] = False
    values = initial_values()
    params = [handgrad.tensor(v.clone(), requires_grad=True) for v in values]
    torch_params = [v.clone().requires_grad_() for v in values]
    optimizer = getattr(optim, name)(params, **options)
    reference = getattr(torch.optim, name)(torch_params, lr=0.01)
    for p, t in zip(params, torch_params):
        p.grad, t.grad = handgrad.tensor(t.detach().cos()), t.detach().cos()
    optimizer.step()
    reference.step()
    for p, t in zip(params, torch_params):
        assert torch.equal(p.data, t.detach())
    assert optimizer.param_groups[0]["fused"] is True
    assert set(optimizer.param_groups[0]) == set(reference.param_groups[0])


ALL_OPTIMIZERS = ["SGD", "RMSprop", "Adagrad", "Adam", "AdamW", "Adadelta", "Adamax", "NAdam",
                  "RAdam", "ASGD", "Rprop", "Adafactor", "Muon", "LBFGS"]


@pytest.mark.parametrize("name", ALL_OPTIMIZERS)
def test_signature_and_defaults_are_torchs(name):
    """Same argument names, order, kinds (positional or keyword-only) and defaults as
    torch.optim's, so a script's call moves over unchanged; same `defaults` dict."""
    ours = inspect.signature(getattr(optim, name).__init__).parameters.values()
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters.values()
    assert [(p.name, p.kind, p.default) for p in ours] == \
        [(p.name, p.kind, p.default) for p in theirs]
    shape = (2, 3) if name == "Muon" else (2,)
    mine = getattr(optim, name)([handgrad.zeros(*shape, requires_grad=True)]).defaults
    reference = getattr(torch.optim, name)([torch.zeros(shape, requires_grad=True)]).defaults
    assert mine == reference


MUON_CASES = [{}, {"lr": 0.02, "nesterov": False, "weight_decay": 0.0,
                   "adjust_lr_fn": "match_rms_adamw"},
              {"lr": 0.02, "momentum": 0.5, "ns_steps": 3, "adjust_lr_fn": "original"}]


@pytest.mark.parametrize("options", MUON_CASES, ids=["defaults", "plain", "short"])
def test_muon_matches_torch_on_the_weight_matrices(options):
    """Muon takes 2-d parameters only: the net's two weight matrices (5x8: tall after
    the transpose, 8x3: wide), 20 steps, state included; the orthogonalisation runs in
    bfloat16 in both libraries, with the same operations."""
    Pair("Muon", options, groups=[([0, 2], {})]).run(20).assert_state_matches()


def test_muon_refuses_what_torch_refuses():
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        optim.Muon([_leaf()])
    matrix = handgrad.zeros(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match="Adjust learning rate function"):
        optim.Muon([matrix], adjust_lr_fn="other")
    with pytest.raises(ValueError, match="momentum should be >= 0"):
        optim.Muon([matrix], momentum=-1)
    with pytest.raises(TypeError, match="foreach"):
        optim.Muon([matrix], foreach=True)
