"""LR schedulers against PyTorch's: the learning rates (and OneCycleLR's momenta) set at
construction and over 30 steps are exactly equal; state_dicts round trip and move
between the two libraries; resuming with last_epoch; warnings and errors."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch.optim import lr_scheduler as torch_schedulers

import handgrad
from handgrad import optim
from handgrad.optim import lr_scheduler as schedulers

STEPS = 30


def optimizers(kind: str = "SGD", lrs=(0.1, 0.05), **options):
    """A handgrad optimizer and a torch one, one parameter group per lr."""
    ours = getattr(optim, kind)(
        [{"params": [handgrad.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs],
        **options)
    theirs = getattr(torch.optim, kind)(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs], **options)
    return ours, theirs


def group_values(optimizer) -> list:
    """What a schedule sets: lr, and momentum/betas when present."""
    return [(g["lr"], g.get("momentum"), g.get("betas")) for g in optimizer.param_groups]


def assert_same(scheduler, reference, optimizer, torch_optimizer, when: str) -> None:
    assert scheduler.get_last_lr() == reference.get_last_lr(), when
    assert group_values(optimizer) == group_values(torch_optimizer), when


def step_both(pairs, steps: int = STEPS, metrics=None) -> None:
    """Step (optimizer, then scheduler) in both libraries, comparing after each step."""
    (scheduler, optimizer), (reference, torch_optimizer) = pairs
    for i in range(steps):
        optimizer.step()
        torch_optimizer.step()
        args = () if metrics is None else (metrics[i],)
        scheduler.step(*args)
        reference.step(*args)
        assert_same(scheduler, reference, optimizer, torch_optimizer, f"after step {i + 1}")


SCHEDULES = {
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda epoch: 0.95 ** epoch),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(
        o, [lambda epoch: epoch // 7, lambda epoch: 1 / (1 + epoch)]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda epoch: 0.9),
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 20], gamma=0.3),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=6),
    "LinearLR-warmup": lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=8),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.2,
                                              total_iters=10),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=12, power=2.0),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "SequentialLR-warmup-cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)],
        milestones=[5]),
    "SequentialLR-three": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=4), m.ExponentialLR(o, gamma=0.8),
            m.StepLR(o, step_size=3)], milestones=[4, 12]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ExponentialLR(o, gamma=0.9), m.StepLR(o, step_size=5, gamma=0.5)]),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS),
    "OneCycleLR-linear-three-phase": lambda m, o: m.OneCycleLR(
        o, max_lr=0.8, epochs=3, steps_per_epoch=10, anneal_strategy="linear",
        three_phase=True, pct_start=0.25),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(
        o, max_lr=0.5, total_steps=STEPS, cycle_momentum=False, div_factor=10.0),
}


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_learning_rates_equal_torchs(name, kind):
    make = SCHEDULES[name]
    optimizer, torch_optimizer = optimizers(kind)
    scheduler, reference = make(schedulers, optimizer), make(torch_schedulers, torch_optimizer)
    assert_same(scheduler, reference, optimizer, torch_optimizer, "after construction")
    assert [g["initial_lr"] for g in optimizer.param_groups] == \
        [g["initial_lr"] for g in torch_optimizer.param_groups]
    step_both([(scheduler, optimizer), (reference, torch_optimizer)])


def test_two_schedulers_on_one_optimizer_compose_like_torch():
    optimizer, torch_optimizer = optimizers()
    ours = [schedulers.ExponentialLR(optimizer, 0.9),
            schedulers.MultiStepLR(optimizer, [3, 8], gamma=0.1)]
    theirs = [torch_schedulers.ExponentialLR(torch_optimizer, 0.9),
              torch_schedulers.MultiStepLR(torch_optimizer, [3, 8], gamma=0.1)]
    for _ in range(12):
        optimizer.step()
        torch_optimizer.step()
        for scheduler, reference in zip(ours, theirs):
            scheduler.step()
            reference.step()
        assert group_values(optimizer) == group_values(torch_optimizer)


PLATEAU = {
    "min-rel": {},
    "min-abs-cooldown": {"threshold_mode": "abs", "threshold": 0.01, "cooldown": 2,
                         "patience": 1},
    "max-rel": {"mode": "max", "patience": 2, "factor": 0.5},
    "max-abs-min_lr": {"mode": "max", "threshold_mode": "abs", "patience": 0,
                       "min_lr": [0.02, 0.001], "factor": 0.5},
}


@pytest.mark.parametrize("name", sorted(PLATEAU))
def test_reduce_on_plateau_follows_the_metric_like_torch(name):
    options = PLATEAU[name]
    optimizer, torch_optimizer = optimizers()
    scheduler = schedulers.ReduceLROnPlateau(optimizer, **options)
    reference = torch_schedulers.ReduceLROnPlateau(torch_optimizer, **options)
    # improves for 8 epochs, then wobbles on a plateau
    metrics = [1 / (1 + i) if i < 8 else 0.12 + 0.01 * ((i * 7) % 5) for i in range(40)]
    if options.get("mode") == "max":
        metrics = [-m for m in metrics]
    step_both([(scheduler, optimizer), (reference, torch_optimizer)], 40, metrics)
    assert optimizer.param_groups[0]["lr"] < 0.1  # it did reduce


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR",
                                  "SequentialLR-warmup-cosine", "LambdaLR"])
def test_state_dict_round_trip_and_torch_interchange(name):
    make = SCHEDULES[name]
    optimizer, torch_optimizer = optimizers()
    scheduler, reference = make(schedulers, optimizer), make(torch_schedulers, torch_optimizer)
    step_both([(scheduler, optimizer), (reference, torch_optimizer)], 10)
    assert set(scheduler.state_dict()) == set(reference.state_dict())

    for source in (scheduler, reference):  # from handgrad, then from torch
        saved = copy.deepcopy(source.state_dict())
        optimizer_state = copy.deepcopy(
            (optimizer if source is scheduler else torch_optimizer).state_dict())
        fresh_optimizer, _ = optimizers()
        fresh = make(schedulers, fresh_optimizer)
        fresh_optimizer.load_state_dict(optimizer_state)
        fresh.load_state_dict(saved)
        copy_of_reference = copy.deepcopy(reference)
        torch_copy = copy_of_reference.optimizer
        step_both([(fresh, fresh_optimizer), (copy_of_reference, torch_copy)], 10)

    torch_fresh_optimizer = optimizers()[1]
    torch_fresh = make(torch_schedulers, torch_fresh_optimizer)
    torch_fresh_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    torch_fresh.load_state_dict(copy.deepcopy(scheduler.state_dict()))
    step_both([(scheduler, optimizer), (torch_fresh, torch_fresh_optimizer)], 10)


def test_reduce_on_plateau_state_dict_interchange():
    optimizer, torch_optimizer = optimizers()
    scheduler = schedulers.ReduceLROnPlateau(optimizer, patience=1)
    reference = torch_schedulers.ReduceLROnPlateau(torch_optimizer, patience=1)
    step_both([(scheduler, optimizer), (reference, torch_optimizer)], 5, [1.0] * 5)
    fresh_optimizer, _ = optimizers()
    fresh = schedulers.ReduceLROnPlateau(fresh_optimizer)
    fresh_optimizer.load_state_dict(torch_optimizer.state_dict())
    fresh.load_state_dict(reference.state_dict())
    step_both([(fresh, fresh_optimizer), (reference, torch_optimizer)], 5, [1.0] * 5)


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "ExponentialLR",
                                  "LinearLR-warmup"])
def test_resuming_with_last_epoch_matches_torch(name):
    make = SCHEDULES[name]
    optimizer, torch_optimizer = optimizers()
    make(schedulers, optimizer)
    make(torch_schedulers, torch_optimizer)
    for group, lr in zip(optimizer.param_groups + torch_optimizer.param_groups, [0.07, 0.03] * 2):
        group["lr"] = lr  # the lr a checkpoint would hold
    resume = {"StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5, last_epoch=9),
              "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, last_epoch=9),
              "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9, last_epoch=9),
              "LinearLR-warmup": lambda m, o: m.LinearLR(o, 0.1, total_iters=8, last_epoch=3)}
    scheduler, reference = (resume[name](schedulers, optimizer),
                            resume[name](torch_schedulers, torch_optimizer))
    assert_same(scheduler, reference, optimizer, torch_optimizer, "after resuming")
    step_both([(scheduler, optimizer), (reference, torch_optimizer)], 10)


def test_step_with_an_epoch_uses_the_closed_form_and_warns_like_torch():
    optimizer, torch_optimizer = optimizers()
    scheduler = schedulers.CosineAnnealingLR(optimizer, T_max=10)
    reference = torch_schedulers.CosineAnnealingLR(torch_optimizer, T_max=10)
    for epoch in (3, 7, 4):
        optimizer.step()
        torch_optimizer.step()
        with pytest.warns(UserWarning, match="deprecated"):
            scheduler.step(epoch)
        with pytest.warns(UserWarning):
            reference.step(epoch)
        assert scheduler.get_last_lr() == reference.get_last_lr()


def test_warns_when_stepped_before_the_optimizer():
    optimizer, _ = optimizers()
    scheduler = schedulers.StepLR(optimizer, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        scheduler.step()
    optimizer, _ = optimizers()
    scheduler = schedulers.StepLR(optimizer, step_size=2)
    optimizer.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()


@pytest.mark.parametrize("make,error,match", [
    (lambda o: schedulers.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)]), 2),
     TypeError, "is not an Optimizer"),
    (lambda o: schedulers.StepLR(o, 2, last_epoch=4), KeyError, "initial_lr"),
    (lambda o: schedulers.LinearLR(o, start_factor=0.0), ValueError, "greater than 0"),
    (lambda o: schedulers.ConstantLR(o, factor=2.0), ValueError, "between 0 and 1"),
    (lambda o: schedulers.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas"),
    (lambda o: schedulers.OneCycleLR(o, max_lr=1.0), ValueError, "total_steps OR"),
    (lambda o: schedulers.OneCycleLR(o, 1.0, total_steps=10, pct_start=1), ValueError,
     "pct_start"),
    (lambda o: schedulers.OneCycleLR(o, 1.0, total_steps=10, anneal_strategy="exp"),
     ValueError, "anneal_strategy"),
    (lambda o: schedulers.OneCycleLR(o, [1.0], total_steps=10), ValueError,
     "max_lr must have the same length"),
    (lambda o: schedulers.OneCycleLR(optim.Adagrad([handgrad.zeros(1, requires_grad=True)]),
                                     1.0, total_steps=10), ValueError, "momentum or beta1"),
    (lambda o: schedulers.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor"),
    (lambda o: schedulers.ReduceLROnPlateau(o, mode="up"), ValueError, "mode 'up'"),
    (lambda o: schedulers.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError,
     "threshold mode"),
    (lambda o: schedulers.SequentialLR(o, [schedulers.StepLR(o, 2)], milestones=[3]),
     ValueError, "one milestone fewer"),
    (lambda o: schedulers.SequentialLR(o, [schedulers.ReduceLROnPlateau(o)], []),
     ValueError, "ReduceLROnPlateau"),
    (lambda o: schedulers.ChainedScheduler([]), ValueError, "at least one"),
])
def test_invalid_arguments_are_refused_like_torch(make, error, match):
    optimizer, _ = optimizers()
    with pytest.raises(error, match=match):
        make(optimizer)


def test_one_cycle_refuses_to_step_past_total_steps():
    optimizer, _ = optimizers()
    scheduler = schedulers.OneCycleLR(optimizer, max_lr=1.0, total_steps=3)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    with pytest.raises(ValueError, match="Tried to step 4 times.*total steps is 3"):
        scheduler.step()


def test_optimizer_and_schedulers_survive_a_checkpoint_file(tmp_path):
    """Through handgrad.train's safetensors+JSON checkpoint (no pickle): int keys, the
    step counts, MultiStepLR's Counter and OneCycleLR's phases come back usable."""
    from handgrad.train.checkpoint import load_state, save_state

    def build():
        w = handgrad.tensor([1.0, -2.0, 3.0], requires_grad=True)
        optimizer = optim.Adam([w], lr=0.1)
        one_cycle = schedulers.OneCycleLR(optimizer, max_lr=0.5, total_steps=20)
        multi_step = schedulers.MultiStepLR(optimizer, milestones=[4, 8, 8], gamma=0.5)
        return w, optimizer, one_cycle, multi_step

    def train(w, optimizer, one_cycle, multi_step, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            (w * w).sum().backward()
            optimizer.step()
            one_cycle.step()
            multi_step.step()

    original = build()
    train(*original, 5)
    path = save_state(tmp_path / "run.safetensors",
                      {"w": original[0].data, "optimizer": original[1].state_dict(),
                       "schedulers": [original[2].state_dict(), original[3].state_dict()]})
    restored = build()
    state = load_state(path)
    restored[0].data.copy_(state["w"].data)
    restored[1].load_state_dict(state["optimizer"])
    restored[2].load_state_dict(state["schedulers"][0])
    restored[3].load_state_dict(state["schedulers"][1])
    train(*original, 10)
    train(*restored, 10)
    assert torch.equal(original[0].data, restored[0].data)
    assert group_values(original[1]) == group_values(restored[1])
