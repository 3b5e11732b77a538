"""handgrad.optim.swa_utils against torch.optim.swa_utils: the same small BatchNorm MLP
trained side by side in float64 with SGD + SWALR, averaged every step by AveragedModel
(the default SWA mean, EMA as multi_avg_fn and as avg_fn, a custom avg_fn, with and
without use_buffers), then update_bn over a loader; averaged weights, buffers,
n_averaged and learning rates equal torch's after every step."""

from __future__ import annotations

import pytest
import torch

import handgrad
from handgrad import nn, optim
from handgrad.optim import swa_utils

TOLERANCE = 1e-10


def _models(seed: int = 0):
    torch.manual_seed(seed)
    reference = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8),
                                    torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(),
                          nn.Linear(8, 3)).double()
    model.load_state_dict({k: v.clone() for k, v in reference.state_dict().items()})
    return model, reference


def _batches(count: int = 6):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 5, generator=g, dtype=torch.float64),
             torch.randn(16, 3, generator=g, dtype=torch.float64)) for _ in range(count)]


def _assert_close(averaged, torch_averaged, what: str) -> None:
    ours, theirs = averaged.state_dict(), torch_averaged.state_dict()
    assert list(ours) == list(theirs), what
    for key, value in theirs.items():
        mine = ours[key]
        mine = mine.data if hasattr(mine, "data") and not isinstance(mine, torch.Tensor) \
            else mine
        difference = (mine.double() - value.double()).abs().max().item()
        assert difference <= TOLERANCE, f"{what}: {key} differs from torch by {difference:.3g}"


AVERAGING = {
    "swa": ({}, {}),
    "swa-buffers": ({"use_buffers": True}, {"use_buffers": True}),
    "ema-multi": ({"multi_avg_fn": swa_utils.get_ema_multi_avg_fn(0.9)},
                  {"multi_avg_fn": torch.optim.swa_utils.get_ema_multi_avg_fn(0.9)}),
    "ema-multi-buffers": ({"multi_avg_fn": swa_utils.get_ema_multi_avg_fn(0.8),
                           "use_buffers": True},
                          {"multi_avg_fn": torch.optim.swa_utils.get_ema_multi_avg_fn(0.8),
                           "use_buffers": True}),
    "ema-single": ({"avg_fn": swa_utils.get_ema_avg_fn(0.95)},
                   {"avg_fn": torch.optim.swa_utils.get_ema_avg_fn(0.95)}),
    "swa-single": ({"avg_fn": swa_utils.get_swa_avg_fn()},
                   {"avg_fn": torch.optim.swa_utils.get_swa_avg_fn()}),
    "custom": ({"avg_fn": lambda a, p, n: 0.5 * a + 0.5 * p},
               {"avg_fn": lambda a, p, n: 0.5 * a + 0.5 * p}),
}


@pytest.mark.parametrize("strategy,anneal_epochs", [("cos", 3), ("linear", 4), ("cos", 0)])
@pytest.mark.parametrize("kind", list(AVERAGING))
def test_training_with_averaging_and_swalr_matches_torch(kind, strategy, anneal_epochs):
    options, torch_options = AVERAGING[kind]
    model, reference = _models()
    averaged = swa_utils.AveragedModel(model, **options)
    torch_averaged = torch.optim.swa_utils.AveragedModel(reference, **torch_options)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch_opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    schedule = swa_utils.SWALR(opt, swa_lr=0.02, anneal_epochs=anneal_epochs,
                               anneal_strategy=strategy)
    torch_schedule = torch.optim.swa_utils.SWALR(torch_opt, swa_lr=0.02,
                                                 anneal_epochs=anneal_epochs,
                                                 anneal_strategy=strategy)
    batches = _batches()
    for step, (x, y) in enumerate(batches + batches[:2]):
        for net, o, inputs, targets in ((model, opt, handgrad.tensor(x), handgrad.tensor(y)),
                                        (reference, torch_opt, x, y)):
            o.zero_grad()
            ((net(inputs) - targets) ** 2).mean().backward()
            o.step()
        averaged.update_parameters(model)
        torch_averaged.update_parameters(reference)
        schedule.step()
        torch_schedule.step()
        assert schedule.get_last_lr() == torch_schedule.get_last_lr()
        _assert_close(averaged, torch_averaged, f"{kind} after step {step}")
    assert int(averaged.n_averaged.item()) == int(torch_averaged.n_averaged) == 8

    loader = [(handgrad.tensor(x), handgrad.tensor(y)) for x, y in batches]
    averaged.train(False)
    torch_averaged.train(False)
    swa_utils.update_bn(loader, averaged)
    torch.optim.swa_utils.update_bn([(x, y) for x, y in batches], torch_averaged)
    _assert_close(averaged, torch_averaged, f"{kind} after update_bn")
    assert not averaged.training and averaged.module[1].momentum == 0.1
    x = batches[0][0]
    out = averaged(handgrad.tensor(x)).data
    torch.testing.assert_close(out, torch_averaged(x).detach(), rtol=0, atol=1e-10)


def test_swalr_state_dict_round_trip_and_moves_to_torch():
    model, reference = _models()
    opt = optim.SGD(model.parameters(), lr=0.1)
    torch_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    schedule = swa_utils.SWALR(opt, swa_lr=[0.05], anneal_epochs=5, anneal_strategy="linear")
    for _ in range(2):
        opt.step()
        schedule.step()
    saved = schedule.state_dict()
    assert "anneal_func" not in saved and saved["_anneal_strategy"] == "linear"
    torch_schedule = torch.optim.swa_utils.SWALR(torch_opt, swa_lr=0.05)
    torch_opt.load_state_dict(opt.state_dict())
    torch_schedule.load_state_dict(saved)
    for _ in range(4):
        opt.step()
        torch_opt.step()
        schedule.step()
        torch_schedule.step()
        assert schedule.get_last_lr() == torch_schedule.get_last_lr()


def test_update_bn_leaves_a_model_without_batchnorm_alone_and_takes_plain_tensors():
    model = nn.Sequential(nn.Linear(5, 3))
    swa_utils.update_bn([torch.randn(4, 5)], model)  # nothing to do
    bn_model, reference = _models()
    batches = [x for x, _ in _batches(3)]
    swa_utils.update_bn(batches, bn_model)  # raw torch batches are wrapped
    torch.optim.swa_utils.update_bn(batches, reference)
    torch.testing.assert_close(bn_model[1].running_var.data, reference[1].running_var)


def test_errors_are_torchs():
    model, _ = _models()
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        swa_utils.AveragedModel(model, avg_fn=swa_utils.get_swa_avg_fn(),
                                multi_avg_fn=swa_utils.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="Invalid decay value"):
        swa_utils.get_ema_multi_avg_fn(1.5)
    with pytest.raises(ValueError, match="Invalid decay value"):
        swa_utils.get_ema_avg_fn(-0.1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        swa_utils.SWALR(opt, swa_lr=0.1, anneal_strategy="step")
    with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0"):
        swa_utils.SWALR(opt, swa_lr=0.1, anneal_epochs=-1)
    with pytest.raises(ValueError, match="swa_lr must have the same length"):
        swa_utils.SWALR(opt, swa_lr=[0.1, 0.2])


def test_on_each_device(device):
    """The default SWA mean on the device (CUDA: torch's lerp form)."""
    model, reference = _models()
    model.to(device)
    reference.to(device)
    averaged = swa_utils.AveragedModel(model)
    torch_averaged = torch.optim.swa_utils.AveragedModel(reference)
    for step in range(4):
        with torch.no_grad():
            for p, t in zip(model.parameters(), reference.parameters()):
                t.mul_(0.9).add_(0.01 * (step + 1))
                p.data.copy_(t)
        averaged.update_parameters(model)
        torch_averaged.update_parameters(reference)
        _assert_close(averaged, torch_averaged, f"{device} step {step}")
