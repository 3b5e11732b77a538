"""The Learner: same numbers as a hand-written loop, callbacks in order, resume bit for bit,
the NaN guard, wrong-model checkpoints, the built-in callbacks, the LR finder, metrics.

Every run here is a tiny MLP on a few hundred 2-D points, so the file takes seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import handgrad as hg
from handgrad import nn, optim
from handgrad.data import DataLoader, RandomSampler, TensorDataset
from handgrad.train import (
    EVENTS,
    CancelBatchException,
    CancelFitException,
    CheckpointError,
    EarlyStopping,
    EpochTable,
    GradientClipping,
    Learner,
    LRSchedulerCallback,
    NaNGuard,
    NonFiniteLossError,
    ProgressBar,
    SaveCheckpoint,
    accuracy,
    confusion_matrix,
    fit,
    lr_find,
    mae,
    mse,
    top_k_accuracy,
)


# ----------------------------------------------------------------------------- helpers
def make_data(n=96, seed=0):
    """Three noisy 2-D blobs: (train, valid) TensorDatasets."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(n // 3)
    centers = torch.tensor([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])
    x = centers[labels] + 0.7 * torch.randn(len(labels), 2, generator=g)
    order = torch.randperm(len(labels), generator=g)
    x, labels = x[order], labels[order]
    cut = n * 3 // 4
    return TensorDataset(x[:cut], labels[:cut]), TensorDataset(x[cut:], labels[cut:])


def make_run(seed=0, epochs=3, dropout=0.2, scheduler=True, generator=None, callbacks=(),
             metrics=(accuracy,), lr=0.02, sampler_generator=None):
    """A fresh learner: MLP with dropout, AdamW, OneCycleLR, shuffled batches of 16
    (shuffled by a RandomSampler with its own generator when `sampler_generator`)."""
    train, valid = make_data()
    hg.manual_seed(seed)
    model = nn.MLP(2, [16, 16], 3, dropout=dropout)
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    if sampler_generator is not None:
        train_dl = DataLoader(train, batch_size=16,
                              sampler=RandomSampler(train, generator=sampler_generator))
    else:
        train_dl = DataLoader(train, batch_size=16, shuffle=True, generator=generator)
    valid_dl = DataLoader(valid, batch_size=10)
    sched = (optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * len(train_dl))
             if scheduler else None)
    learner = Learner(model, train_dl, valid_dl, nn.CrossEntropyLoss(), opt, sched,
                      metrics=metrics, callbacks=callbacks)
    return learner


def assert_same_tensors(a: dict, b: dict, what: str):
    assert list(a) == list(b), f"{what}: keys {list(a)} vs {list(b)}"
    for key in a:
        x, y = getattr(a[key], "data", a[key]), getattr(b[key], "data", b[key])
        assert torch.equal(x, y), f"{what}[{key}] differs"


def optimizer_buffers(opt) -> dict:
    return {f"{i}.{k}": v for i, s in opt.state_dict()["state"].items() for k, v in s.items()
            if isinstance(v, torch.Tensor)}


def without_time(records):
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


class Recorder:
    """Records every event it receives, as (name, event)."""

    def __init__(self, name="rec", order=0, log=None):
        self.name, self.order = name, order
        self.log = [] if log is None else log
        for event in EVENTS:
            setattr(self, event, self._make(event))

    def _make(self, event):
        def handler(learner):
            self.log.append((self.name, event))
        return handler


# ----------------------------------------------------------------------------- the loop
def test_learner_matches_a_hand_written_loop():
    torch.manual_seed(123)
    learner = make_run(epochs=3)
    learner.fit(3)

    # The same run written out: same seed, same data order, same dropout draws.
    train, valid = make_data()
    hg.manual_seed(0)
    model = nn.MLP(2, [16, 16], 3, dropout=0.2)
    opt = optim.AdamW(model.parameters(), lr=0.02, weight_decay=0.01)
    train_dl = DataLoader(train, batch_size=16, shuffle=True)
    valid_dl = DataLoader(valid, batch_size=10)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02, total_steps=3 * len(train_dl))
    loss_fn = nn.CrossEntropyLoss()
    valid_losses = []
    for _ in range(3):
        model.train()
        for x, y in train_dl:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        total, count = 0.0, 0
        with hg.no_grad():
            for x, y in valid_dl:
                total += loss_fn(model(x), y).item() * len(y)
                count += len(y)
        valid_losses.append(total / count)

    assert_same_tensors(learner.model.state_dict(), model.state_dict(), "parameters")
    assert_same_tensors(optimizer_buffers(learner.optimizer), optimizer_buffers(opt), "Adam")
    assert [r["valid_loss"] for r in learner.history.epochs] == valid_losses
    assert learner.step == 3 * len(train_dl) == len(learner.history.steps)
    assert learner.epochs_done == 3


def test_plain_fit_matches_the_learner():
    learner = make_run(epochs=2)
    learner.fit(2)
    twin = make_run(epochs=2)
    history = fit(twin.model, twin.train_dl, twin.valid_dl, twin.loss_fn, twin.optimizer, 2,
                  scheduler=twin.scheduler, metric=accuracy)
    assert_same_tensors(learner.model.state_dict(), twin.model.state_dict(), "parameters")
    for ours, plain in zip(learner.history.epochs, history):
        assert ours["valid_loss"] == plain["valid_loss"]
        assert ours["valid_accuracy"] == plain["valid_accuracy"]
        assert ours["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-12)


def test_training_reduces_the_loss_and_history_holds_every_figure():
    learner = make_run(epochs=5, metrics=[accuracy, top_k_accuracy(2)])
    learner.fit(5)
    first, last = learner.history.epochs[0], learner.history.epochs[-1]
    assert last["valid_loss"] < first["valid_loss"]
    assert last["valid_accuracy"] > 0.9
    assert set(last) == {"epoch", "train_loss", "train_accuracy", "train_top2_accuracy",
                         "valid_loss", "valid_accuracy", "valid_top2_accuracy", "lr", "time"}
    assert [r["epoch"] for r in learner.history.epochs] == [1, 2, 3, 4, 5]


# ----------------------------------------------------------------------------- callbacks
def test_callbacks_fire_in_order():
    log = []
    late, early = Recorder("late", order=5, log=log), Recorder("early", order=-5, log=log)
    train, valid = make_data(n=24)  # 18 train -> 2 batches of 16 + 2; 6 valid -> 1 batch
    hg.manual_seed(0)
    model = nn.MLP(2, [4], 3)
    opt = optim.SGD(model.parameters(), lr=0.1)
    learner = Learner(model, DataLoader(train, batch_size=16), DataLoader(valid, batch_size=8),
                      nn.CrossEntropyLoss(), opt, callbacks=[late, early])
    learner.fit(2)
    train_batch = ["before_batch", "before_backward", "after_backward", "before_step",
                   "after_step", "after_batch"]
    epoch = (["before_epoch", "before_train"] + train_batch * 2
             + ["after_train", "before_validate", "before_batch", "after_batch",
                "after_validate", "after_epoch"])
    expected = ["before_fit"] + epoch * 2 + ["after_fit"]
    assert [event for name, event in log if name == "early"] == expected
    # Each event reaches "early" (order -5) before "late" (order 5).
    assert log[::2] == [("early", e) for e in expected]
    assert log[1::2] == [("late", e) for e in expected]


def test_cancel_exceptions_steer_the_loop():
    class StopAfter:
        def __init__(self):
            self.batches = 0

        def after_step(self, learner):
            if learner.step == 2:
                raise CancelFitException

    learner = make_run()
    learner.fit(3, callbacks=[StopAfter()])
    assert learner.step == 2 and learner.history.epochs == []
    assert not any(isinstance(c, StopAfter) for c in learner.callbacks)  # fit-only callback

    class SkipOdd:
        def before_batch(self, learner):
            if learner.training and learner.batch_index % 2:
                raise CancelBatchException

    learner = make_run()
    learner.fit(1, callbacks=[SkipOdd()])
    assert learner.step == math.ceil(len(learner.train_dl) / 2)


def test_nan_guard_names_the_step_and_stops_before_the_update():
    class PoisonAtStep:
        def __init__(self, loss_fn, step):
            self.loss_fn, self.step, self.learner = loss_fn, step, None

        def __call__(self, output, target):
            loss = self.loss_fn(output, target)
            if self.learner.training and self.learner.step == self.step:
                loss = loss * float("nan")
            return loss

    log = []
    learner = make_run(callbacks=[NaNGuard(), Recorder(log=log)])
    poison = PoisonAtStep(learner.loss_fn, step=7)  # the 8th step: epoch 2, batch 3 of 5
    poison.learner, learner.loss_fn = learner, poison
    snapshot = {}

    class Snapshot:
        def after_step(self, learner):
            snapshot.update({k: v.data.clone() for k, v in learner.model.state_dict().items()})

    with pytest.raises(NonFiniteLossError) as error:
        learner.fit(3, callbacks=[Snapshot()])
    message = str(error.value)
    assert "nan" in message and "epoch 2" in message and "batch 3 of 5" in message
    assert "optimizer step 8" in message and "learning rate" in message
    assert learner.step == 7
    assert_same_tensors(learner.model.state_dict(), snapshot, "parameters after the nan")
    assert log[-1] == ("rec", "after_fit")  # after_fit still runs


def test_nan_guard_can_name_a_parameter_with_a_bad_gradient():
    class BadGradient:
        order = -20  # before NaNGuard (-15) looks at the gradients

        def after_backward(self, learner):
            learner.model[0].bias.grad.data[0] = float("inf")

    learner = make_run(callbacks=[NaNGuard(check_gradients=True), BadGradient()])
    with pytest.raises(NonFiniteLossError, match=r"gradient of 0\.bias"):
        learner.fit(1)


def test_gradient_clipping_bounds_the_norm():
    norms = []

    class Measure:
        order = 1  # after GradientClipping (order 0)

        def after_backward(self, learner):
            grads = [p.grad.data for p in learner.model.parameters()]
            norms.append(float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))))

    clip = GradientClipping(0.05)
    learner = make_run(callbacks=[clip, Measure()], lr=0.05)
    learner.fit(1)
    assert max(norms) <= 0.05 * (1 + 1e-5)
    assert float(clip.last_norm) > 0


def test_lr_scheduler_per_epoch_and_on_plateau():
    learner = make_run(scheduler=False)
    cosine = optim.lr_scheduler.CosineAnnealingLR(learner.optimizer, T_max=2)
    learner.add_callbacks(LRSchedulerCallback(cosine))
    assert learner.callbacks[-1].interval == "epoch"
    learner.fit(2)
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)

    learner = make_run(scheduler=False)
    # mode "max" on a falling loss: every epoch is "worse", so the rate must drop
    plateau = optim.lr_scheduler.ReduceLROnPlateau(learner.optimizer, mode="max", patience=0,
                                                   factor=0.5)
    learner.add_callbacks(LRSchedulerCallback(plateau, monitor="train_loss"))
    learner.fit(3)
    assert learner.optimizer.param_groups[0]["lr"] < 0.02


def test_early_stopping_sets_should_stop_and_restores_the_best():
    stopper = EarlyStopping(monitor="valid_loss", patience=1, restore_best=True, verbose=False)
    learner = make_run(callbacks=[stopper], scheduler=False, lr=1.0)  # lr 1.0: erratic
    learner.fit(30)
    assert stopper.stopped_epoch is not None and learner.epochs_done < 30
    assert learner.epochs_done == stopper.stopped_epoch
    losses = [r["valid_loss"] for r in learner.history.epochs]
    assert stopper.best == min(losses)
    assert learner.evaluate(learner.valid_dl)["loss"] == pytest.approx(min(losses), rel=1e-6)


def test_epoch_table_prints_a_header_and_one_row_per_epoch():
    lines = []
    learner = make_run(callbacks=[EpochTable(print_fn=lines.append)])
    learner.fit(2)
    assert len(lines) == 3
    assert lines[0].split() == ["epoch", "train_loss", "train_accuracy", "valid_loss",
                                "valid_accuracy", "lr", "time"]
    assert lines[2].split()[0] == "2/2"


def test_progress_bar_shows_the_running_loss_of_every_batch():
    """A bar per epoch over the training batches; when it redraws after a batch, it shows
    the running mean loss including that batch (the postfix is set before the update)."""
    import io

    stream = io.StringIO()
    bar = ProgressBar(disable=False, file=stream)
    at_update, expected = [], []

    class Spy:
        order = 49  # just before the bar: wrap its update, note the loss it should show

        def after_batch(self, learner):
            if not learner.training:
                return
            expected.append(f"loss={learner.history.running('loss'):.4f}")
            if learner.batch_index == 0:
                update = bar.bar.update
                bar.bar.update = lambda n=1: (at_update.append(bar.bar.postfix), update(n))

    learner = make_run(callbacks=[bar, Spy()])
    learner.fit(2)
    assert at_update == expected and len(expected) == 2 * len(learner.train_dl)
    text = stream.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text  # (redraws: every 0.1 s at most)
    assert bar.bar is None  # closed after each training phase


# ----------------------------------------------------------------------------- checkpoints
ORDER_SOURCES = ["global-rng", "loader-generator", "sampler-generator"]


def generators_for(order_source: str) -> dict:
    """make_run's arguments for one way of seeding the batch order."""
    generator = torch.Generator().manual_seed(7)
    return {"global-rng": {}, "loader-generator": {"generator": generator},
            "sampler-generator": {"sampler_generator": generator}}[order_source]


@pytest.mark.parametrize("order_source", ORDER_SOURCES)
def test_resume_equals_an_uninterrupted_run_bit_for_bit(tmp_path, order_source):
    torch.manual_seed(1)
    whole = make_run(**generators_for(order_source))
    whole.fit(3)

    torch.manual_seed(1)
    first = make_run(**generators_for(order_source),
                     callbacks=[SaveCheckpoint(tmp_path / "ckpt.safetensors", config={"a": 1})])
    first.fit(1)
    # Disturb everything the checkpoint must restore: other weights, other RNG states.
    torch.manual_seed(999)
    np.random.seed(999)
    second = make_run(seed=5, **generators_for(order_source))
    for generator in second.data_generators().values():
        generator.manual_seed(12345)
    state = second.load_checkpoint(tmp_path / "ckpt.safetensors")
    assert state["config"] == {"a": 1} and second.epochs_done == 1
    second.fit(3)

    assert_same_tensors(second.model.state_dict(), whole.model.state_dict(), "parameters")
    assert_same_tensors(optimizer_buffers(second.optimizer), optimizer_buffers(whole.optimizer),
                        "optimizer state")
    assert second.scheduler.state_dict()["last_epoch"] == whole.scheduler.state_dict()["last_epoch"]
    assert second.optimizer.param_groups[0]["lr"] == whole.optimizer.param_groups[0]["lr"]
    assert without_time(second.history.epochs) == without_time(whole.history.epochs)
    assert second.history.steps == whole.history.steps
    assert second.step == whole.step


def test_loading_into_the_wrong_model_lists_keys_and_shapes(tmp_path):
    learner = make_run()
    learner.fit(1)
    path = learner.save_checkpoint(tmp_path / "ckpt.safetensors")
    other = make_run()
    other.model = nn.MLP(2, [8, 16, 16], 3)  # no dropout, other widths, one more layer
    other.optimizer = optim.SGD(other.model.parameters(), lr=0.1)
    before = {k: v.data.clone() for k, v in other.model.state_dict().items()}
    with pytest.raises(CheckpointError) as error:
        other.load_checkpoint(path)
    message = str(error.value)
    assert "missing keys" in message and "2.weight" in message
    assert "unexpected keys" in message and "3.weight" in message
    assert "mismatched shapes" in message
    assert "0.weight: checkpoint (16, 2), model (8, 2)" in message
    assert_same_tensors(other.model.state_dict(), before, "untouched model")

    smaller = make_run()
    smaller.model = nn.MLP(2, [16], 3)
    with pytest.raises(CheckpointError, match=r"unexpected keys .*6\.weight"):
        smaller.load_checkpoint(path)


# ----------------------------------------------------------------------------- devices
def test_device_placement(device):
    learner = make_run(scheduler=False)
    learner = Learner(learner.model, learner.train_dl, learner.valid_dl, learner.loss_fn,
                      learner.optimizer, metrics=[accuracy], device=device)
    seen = set()

    class Where:
        order = 0

        def before_backward(self, learner):
            seen.update({learner.inputs[0].device.type, learner.output.device.type})

    learner.fit(1, callbacks=[Where()])
    assert seen == {torch.device(device).type}
    assert all(p.device.type == torch.device(device).type for p in learner.model.parameters())
    outputs, targets = learner.predict(learner.valid_dl)
    assert outputs.device.type == "cpu" and outputs.shape == (len(targets), 3)


# ----------------------------------------------------------------------------- LR finder
def test_lr_finder_restores_the_run_and_saves_its_plot(tmp_path):
    learner = make_run(scheduler=False)
    before = {k: v.data.clone() for k, v in learner.model.state_dict().items()}
    rng = torch.get_rng_state()
    result = lr_find(learner, start_lr=1e-5, end_lr=10, num_iter=30, path=tmp_path / "lr.png")
    assert 2 <= len(result.lrs) <= 30 and len(result.lrs) == len(result.losses)
    assert all(a < b for a, b in zip(result.lrs, result.lrs[1:]))
    assert 1e-6 <= result.suggestion <= 1.0
    assert result.path.is_file() and result.path.stat().st_size > 1000
    assert_same_tensors(learner.model.state_dict(), before, "weights after lr_find")
    assert torch.equal(torch.get_rng_state(), rng)
    assert learner.optimizer.param_groups[0]["lr"] == 0.02 and not learner.optimizer.state


@pytest.mark.parametrize("order_source", ORDER_SOURCES)
def test_a_run_after_lr_find_is_the_run_without_it(order_source):
    """The docs promise it: weights, optimizer, schedule and every random generator --
    including a DataLoader's or sampler's own generator, which decides the batch order --
    are put back, so the fit that follows is bit for bit the fit without lr_find."""
    def run(find: bool):
        learner = make_run(seed=3, epochs=2, **generators_for(order_source))
        if find:
            lr_find(learner, num_iter=12)
        learner.fit(2)
        return learner

    plain, after_find = run(False), run(True)
    assert_same_tensors(after_find.model.state_dict(), plain.model.state_dict(), "weights")
    assert without_time(after_find.history.epochs) == without_time(plain.history.epochs)


# ----------------------------------------------------------------------------- metrics
def test_metrics_against_direct_computation():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 2.0], [0.0, 1.0, 2.0]])
    labels = torch.tensor([0, 2, 2, 1])
    assert accuracy(hg.tensor(logits), hg.tensor(labels)) == 0.5
    assert top_k_accuracy(2)(logits, labels) == 1.0
    assert top_k_accuracy(2).__name__ == "top2_accuracy"
    assert accuracy(torch.tensor([[0.3], [-1.0]]), torch.tensor([1, 1])) == 0.5  # one logit
    out, target = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([1.0, 1.0, 1.0])
    assert mse(out, target) == pytest.approx((0 + 1 + 9) / 3)
    assert mae(out, target) == pytest.approx((0 + 1 + 3) / 3)
    matrix = confusion_matrix(logits, labels, 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    with pytest.raises(ValueError, match="mse"):
        mse(torch.zeros(3), torch.zeros(4))
