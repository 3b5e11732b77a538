"""LR schedulers against PyTorch's: the learning rates (and OneCycleLR's and CyclicLR's
momenta or beta1) set at construction and over 30 steps are exactly equal, with two
param groups; state_dicts round trip and move between the two libraries; resuming with
last_epoch; CosineAnnealingWarmRestarts stepped with fractional epochs; warnings, and
errors of the same type as PyTorch's."""

from __future__ import annotations

import copy
import pickle
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
    "MultiplicativeLR-per-group": lambda m, o: m.MultiplicativeLR(
        o, [lambda epoch: 0.95, lambda epoch: 1.0 if epoch % 4 else 0.5]),
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 20], gamma=0.3),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=6),
    "ConstantLR-defaults": lambda m, o: m.ConstantLR(o),
    "LinearLR-warmup": lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=8),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.2,
                                              total_iters=10),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=12, power=2.0),
    "PolynomialLR-sqrt-longer-than-run": lambda m, o: m.PolynomialLR(o, total_iters=40,
                                                                     power=0.5),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "SequentialLR-warmup-cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)],
        milestones=[5]),
    "SequentialLR-three": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=4), m.ExponentialLR(o, gamma=0.8),
            m.StepLR(o, step_size=3)], milestones=[4, 12]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ExponentialLR(o, gamma=0.9), m.StepLR(o, step_size=5, gamma=0.5)]),
    "ChainedScheduler-constant-polynomial": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.1, total_iters=3), m.PolynomialLR(o, total_iters=25),
         m.MultiplicativeLR(o, lambda epoch: 0.97)]),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7),
    "CosineAnnealingWarmRestarts-T_mult-eta_min": lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=0.001),
    "CyclicLR-triangular": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.2],
                                                   step_size_up=4),
    "CyclicLR-triangular2-asymmetric": lambda m, o: m.CyclicLR(
        o, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=3, step_size_down=5,
        mode="triangular2", base_momentum=[0.85, 0.8], max_momentum=0.95),
    "CyclicLR-exp_range": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=5,
                                                  mode="exp_range", gamma=0.95),
    "CyclicLR-scale_fn-cycle": lambda m, o: m.CyclicLR(
        o, 0.01, 0.1, step_size_up=3, scale_fn=lambda cycle: 1 / cycle),
    "CyclicLR-scale_fn-iterations": lambda m, o: m.CyclicLR(
        o, 0.01, 0.1, step_size_up=3, step_size_down=2,
        scale_fn=lambda iteration: 0.5 * (1 + 0.9 ** iteration), scale_mode="iterations"),
    "CyclicLR-no-momentum": lambda m, o: m.CyclicLR(o, 0.001, 0.01, step_size_up=6,
                                                    cycle_momentum=False),
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
                                  "SequentialLR-warmup-cosine", "LambdaLR", "ConstantLR",
                                  "PolynomialLR", "MultiplicativeLR", "ChainedScheduler",
                                  "CosineAnnealingWarmRestarts-T_mult-eta_min",
                                  "CyclicLR-triangular2-asymmetric", "CyclicLR-exp_range",
                                  "CyclicLR-scale_fn-iterations"])
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


RESUME = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5, last_epoch=9),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, last_epoch=9),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9, last_epoch=9),
    "LinearLR-warmup": lambda m, o: m.LinearLR(o, 0.1, total_iters=8, last_epoch=3),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=7, last_epoch=9),
    "CosineAnnealingWarmRestarts-T_mult-eta_min": lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=0.001, last_epoch=5),
    "CyclicLR-triangular2-asymmetric": lambda m, o: m.CyclicLR(
        o, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=3, step_size_down=5,
        mode="triangular2", base_momentum=[0.85, 0.8], max_momentum=0.95, last_epoch=9),
}


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("name", sorted(RESUME))
def test_resuming_with_last_epoch_matches_torch(name, kind):
    make = SCHEDULES[name]
    optimizer, torch_optimizer = optimizers(kind)
    make(schedulers, optimizer)
    make(torch_schedulers, torch_optimizer)
    for group, lr in zip(optimizer.param_groups + torch_optimizer.param_groups, [0.07, 0.03] * 2):
        group["lr"] = lr  # the lr a checkpoint would hold
    scheduler, reference = (RESUME[name](schedulers, optimizer),
                            RESUME[name](torch_schedulers, torch_optimizer))
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


@pytest.mark.parametrize("T_0,T_mult,eta_min", [(2, 1, 0.0), (2, 2, 0.001), (3, 3, 0.0)])
def test_warm_restarts_follow_fractional_epochs_like_torch(T_0, T_mult, eta_min):
    """Stepped per batch with `epoch + i / iters` (no deprecation warning, as in PyTorch),
    then with whole epochs, then without an epoch, interleaved."""
    optimizer, torch_optimizer = optimizers()
    scheduler = schedulers.CosineAnnealingWarmRestarts(optimizer, T_0, T_mult, eta_min)
    reference = torch_schedulers.CosineAnnealingWarmRestarts(torch_optimizer, T_0, T_mult,
                                                             eta_min)
    iters = 7
    epochs = [epoch + i / iters for epoch in range(12) for i in range(iters)]
    epochs += [26, None, None, 3, None, 0.5, None, 40.25, None]
    for epoch in epochs:
        optimizer.step()
        torch_optimizer.step()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            scheduler.step(epoch)
        reference.step(epoch)
        assert_same(scheduler, reference, optimizer, torch_optimizer, f"epoch {epoch}")
        assert (scheduler.last_epoch, scheduler.T_cur, scheduler.T_i) == \
            (reference.last_epoch, reference.T_cur, reference.T_i), f"epoch {epoch}"


class HalvingScale:
    """A CyclicLR scale_fn that can be saved: its state is its `__dict__`."""

    def __init__(self, rate: float):
        self.rate = rate

    def __call__(self, cycle: float) -> float:
        return self.rate ** (cycle - 1)


def test_cyclic_state_dict_saves_a_callable_scale_fn_and_drops_a_function_like_torch():
    optimizer, torch_optimizer = optimizers("Adam")
    pairs = []
    for scale_fn in (lambda cycle: 1.0, HalvingScale(0.5)):
        scheduler = schedulers.CyclicLR(optimizer, 0.01, 0.1, step_size_up=2, scale_fn=scale_fn)
        reference = torch_schedulers.CyclicLR(torch_optimizer, 0.01, 0.1, step_size_up=2,
                                              scale_fn=scale_fn)
        state, torch_state = scheduler.state_dict(), reference.state_dict()
        assert set(state) == set(torch_state)
        assert state["_scale_fn_custom"] == torch_state["_scale_fn_custom"]
        pickle.dumps(state)  # nothing unpicklable is left in it
        pairs.append((scheduler, reference))
    assert pairs[0][0].state_dict()["_scale_fn_custom"] is None
    assert pairs[1][0].state_dict()["_scale_fn_custom"] == {"rate": 0.5}

    # the saved rate replaces the one the fresh scheduler was built with
    scheduler = pairs[1][0]
    step_both([(scheduler, optimizer), (pairs[1][1], torch_optimizer)], 5)
    fresh_optimizer, _ = optimizers("Adam")
    fresh = schedulers.CyclicLR(fresh_optimizer, 0.01, 0.1, step_size_up=2,
                                scale_fn=HalvingScale(0.9))
    fresh_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    saved = scheduler.state_dict()
    fresh.load_state_dict(saved)
    assert "_scale_fn_custom" in saved  # loading leaves the caller's dict alone
    assert fresh._scale_fn_custom.rate == 0.5
    step_both([(fresh, fresh_optimizer), (pairs[1][1], torch_optimizer)], 10)


def test_cyclic_built_in_mode_survives_a_torch_state_dict():
    """PyTorch drops its bound scale function from the state; loading rebuilds it."""
    optimizer, torch_optimizer = optimizers()
    reference = torch_schedulers.CyclicLR(torch_optimizer, 0.01, 0.1, step_size_up=3,
                                          mode="exp_range", gamma=0.9)
    step_both([(schedulers.CyclicLR(optimizer, 0.01, 0.1, step_size_up=3, mode="exp_range",
                                    gamma=0.9), optimizer), (reference, torch_optimizer)], 4)
    fresh_optimizer, _ = optimizers()
    fresh = schedulers.CyclicLR(fresh_optimizer, 0.02, 0.2, step_size_up=9)  # triangular
    fresh_optimizer.load_state_dict(torch_optimizer.state_dict())
    fresh.load_state_dict(reference.state_dict())
    assert fresh.scale_mode == "iterations"
    step_both([(fresh, fresh_optimizer), (reference, torch_optimizer)], 12)


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


def other_optimizer(m, kind: str = "SGD"):
    """A one-parameter optimizer of the library the scheduler module `m` belongs to."""
    if m is torch_schedulers:
        return getattr(torch.optim, kind)([torch.zeros(1, requires_grad=True)])
    return getattr(optim, kind)([handgrad.zeros(1, requires_grad=True)])


def stepped(scheduler, steps: int):
    """`scheduler` after `steps` optimizer + scheduler steps."""
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
    return scheduler


def nested_sequential(m, o):
    """A SequentialLR that starts a SequentialLR at its milestone (fails in PyTorch too)."""
    inner = m.SequentialLR(o, [m.ConstantLR(o, 0.5, total_iters=2), m.ExponentialLR(o, 0.9)],
                           milestones=[2])
    return m.SequentialLR(o, [m.StepLR(o, 3), inner], milestones=[2])


# Each case is refused with the same exception type by PyTorch; `match` is handgrad's text.
@pytest.mark.parametrize("make,error,match", [
    (lambda m, o: m.StepLR(  # the other library's optimizer
        other_optimizer(torch_schedulers if m is schedulers else schedulers), 2),
     TypeError, "is not an Optimizer"),
    (lambda m, o: m.StepLR(o, 2, last_epoch=4), KeyError, "initial_lr"),
    (lambda m, o: m.LinearLR(o, start_factor=0.0), ValueError, "greater than 0"),
    (lambda m, o: m.ConstantLR(o, factor=2.0), ValueError, "between 0 and 1"),
    (lambda m, o: m.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas"),
    (lambda m, o: m.OneCycleLR(o, max_lr=1.0), ValueError, "total_steps OR"),
    (lambda m, o: m.OneCycleLR(o, 1.0, total_steps=10, pct_start=1), ValueError,
     "pct_start"),
    (lambda m, o: m.OneCycleLR(o, 1.0, total_steps=10, anneal_strategy="exp"),
     ValueError, "anneal_strategy"),
    (lambda m, o: m.OneCycleLR(o, [1.0], total_steps=10), ValueError,
     "max_lr must have the same length"),
    (lambda m, o: m.OneCycleLR(other_optimizer(m, "Adagrad"), 1.0, total_steps=10),
     ValueError, "momentum or beta1"),
    (lambda m, o: m.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor"),
    (lambda m, o: m.ReduceLROnPlateau(o, mode="up"), ValueError, "mode 'up'"),
    (lambda m, o: m.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError,
     "threshold mode"),
    (lambda m, o: m.SequentialLR(o, [m.StepLR(o, 2)], milestones=[3]),
     ValueError, "one milestone fewer"),
    (lambda m, o: m.SequentialLR(o, [m.ReduceLROnPlateau(o)], []),
     ValueError, "ReduceLROnPlateau"),
    (lambda m, o: m.ChainedScheduler([]), ValueError, "at least one"),
    (lambda m, o: stepped(nested_sequential(m, o), 2), NotImplementedError,
     "SequentialLR cannot be restarted at a milestone of another SequentialLR"),
    (lambda m, o: m.SequentialLR(o, [m.StepLR(o, 3), m.ChainedScheduler([m.StepLR(o, 2)])],
                                 milestones=[1]).step(),
     NotImplementedError, "ChainedScheduler cannot be restarted"),
    (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=0), ValueError,
     "Expected positive integer T_0, but got 0"),
    (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2.0), ValueError,
     "positive integer T_0"),
    (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), ValueError,
     "Expected integer T_mult >= 1, but got 0"),
    (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=1.5), ValueError,
     "integer T_mult"),
    (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"), ValueError,
     "Expected float or int eta_min"),
    (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2).step(-1), ValueError,
     "Expected non-negative epoch, but got -1"),
    (lambda m, o: m.CyclicLR(o, 0.01, 0.1, mode="triangle"), ValueError,
     "mode is invalid and scale_fn is None"),
    (lambda m, o: m.CyclicLR(o, [0.01], 0.1), ValueError,
     "base_lr must have the same length as optimizer.param_groups"),
    (lambda m, o: m.CyclicLR(o, 0.01, [0.1, 0.2, 0.3]), ValueError,
     "max_lr must have the same length"),
    (lambda m, o: m.CyclicLR(o, 0.01, 0.1, base_momentum=[0.8]), ValueError,
     "base_momentum must have the same length"),
    (lambda m, o: m.CyclicLR(other_optimizer(m, "Adagrad"), 0.01, 0.1), ValueError,
     "momentum or beta1"),
    (lambda m, o: m.CyclicLR(o, 0.01, 0.1, last_epoch=3), KeyError, "initial_lr"),
])
def test_invalid_arguments_are_refused_like_torch(make, error, match):
    optimizer, torch_optimizer = optimizers()
    with pytest.raises(error, match=match):
        make(schedulers, optimizer)
    with pytest.raises(error):
        make(torch_schedulers, torch_optimizer)


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
