"""Checkpoint integrity and all-or-nothing loading: a flipped bit anywhere in the file is
refused naming what failed; every kind of bad metadata is refused before the learner
changes (model, optimizer, scheduler, counters, RNG states stay bit for bit); pickle files
are named as such; killed saves leave no stray files; files respect the umask; and the
atomic JSON writer."""

from __future__ import annotations

import json
import os
import pickle
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import handgrad as hg
from handgrad import nn, optim
from handgrad.data import DataLoader, TensorDataset
from handgrad.train import (
    CheckpointError,
    Learner,
    load_checkpoint,
    load_state,
    save_checkpoint,
    save_state,
)
from handgrad.train.callbacks import Callback, _clone_state
from handgrad.train.checkpoint import write_json_atomic


# ----------------------------------------------------------------------------- helpers
def make_learner(seed=0, optimizer="AdamW", scheduler="OneCycleLR", callbacks=()):
    """A tiny MLP learner with AdamW, OneCycleLR and a loader with its own generator."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(48, 2, generator=g), torch.randint(0, 3, (48,), generator=g)
    hg.manual_seed(seed)
    model = nn.MLP(2, [8], 3, dropout=0.1)
    opt = (optim.AdamW(model.parameters(), lr=0.01) if optimizer == "AdamW"
           else optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    train_dl = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,
                          generator=torch.Generator().manual_seed(seed + 1))
    sched = {"OneCycleLR": lambda: optim.lr_scheduler.OneCycleLR(opt, 0.01, total_steps=30),
             "StepLR": lambda: optim.lr_scheduler.StepLR(opt, 2)}[scheduler]()
    return Learner(model, train_dl, None, nn.CrossEntropyLoss(), opt, sched,
                   callbacks=list(callbacks))


def header_of(path: Path) -> tuple[int, dict]:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return length, json.loads(data[8:8 + length])


def flip_bit(path: Path, offset: int, bit: int = 0) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    flipped = path.with_name(f"flipped-{offset}-{bit}.safetensors")
    flipped.write_bytes(bytes(data))
    return flipped


def tensor_offset(path: Path, name: str) -> int:
    """Where tensor `name`'s bytes start in the file."""
    length, header = header_of(path)
    return 8 + length + header[name]["data_offsets"][0]


def fingerprint(learner) -> dict:
    """Everything a refused load must leave as it was, cloned."""
    return _clone_state({
        "model": dict(learner.model.state_dict()),
        "optimizer": learner.optimizer.state_dict(),
        "groups": [dict(g, params=len(g["params"])) for g in learner.optimizer.param_groups],
        "scheduler": learner.scheduler.state_dict(),
        "scheduler_attributes": sorted(vars(learner.scheduler)),
        "counters": (learner.epochs_done, learner.step),
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "generators": {k: g.get_state() for k, g in learner.data_generators().items()},
        "history": learner.history.state_dict(),
    })


def assert_identical(a, b, where="learner"):
    if isinstance(b, torch.Tensor) or hasattr(b, "data") and isinstance(b.data, torch.Tensor):
        x, y = getattr(a, "data", a), getattr(b, "data", b)
        assert x.dtype == y.dtype and torch.equal(x, y), f"{where} changed"
    elif isinstance(b, np.ndarray):
        assert np.array_equal(a, b), f"{where} changed"
    elif isinstance(b, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in b:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(b, list | tuple):
        assert len(a) == len(b), f"{where} changed length"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


@pytest.fixture()
def trained(tmp_path):
    """(learner trained 2 epochs, path of its checkpoint after 1 epoch)."""
    learner = make_learner()
    learner.fit(1)
    path = learner.save_checkpoint(tmp_path / "ckpt.safetensors", config={"width": 8})
    learner.fit(2)  # now the learner differs from the checkpoint everywhere
    random.random()
    np.random.rand()
    return learner, path


# ----------------------------------------------------------------------------- checksums
def test_every_bit_of_the_header_and_sampled_data_bits_are_checked(tmp_path):
    path = save_checkpoint(tmp_path / "small.safetensors",
                           {"w": torch.randn(3, 2), "step": torch.tensor(4)},
                           {"epoch": 2, "lr": 0.1})
    length, header = header_of(path)
    assert set(json.loads(header["__metadata__"]["handgrad.sha256"])["tensors"]) == {"w", "step"}
    size = path.stat().st_size
    offsets = list(range(8 + length)) + list(range(8 + length, size, 3))
    for offset in offsets:
        for bit in range(8):
            flipped = flip_bit(path, offset, bit)
            with pytest.raises(CheckpointError):
                load_checkpoint(flipped)
            flipped.unlink()


@pytest.mark.parametrize("region", ["model tensor", "rng tensor", "json metadata",
                                    "checksum entry", "header length"])
def test_a_flipped_bit_in_a_learner_checkpoint_names_what_failed(trained, region):
    learner, path = trained
    length, header = header_of(path)
    data = path.read_bytes()
    # A digit of Python's RNG state, inside the metadata JSON (a flip keeps it a digit).
    meta_start = data.index(b'state\\": [', data.index(b'"handgrad.meta":')) + 12
    assert chr(data[meta_start]).isdigit()
    sums_start = data.index(b'"handgrad.sha256":') + 40
    offset, expected = {
        "model tensor": (tensor_offset(path, "model.0.weight") + 5, "tensor 'model.0.weight'"),
        "rng tensor": (tensor_offset(path, "rng.torch") + 100, "tensor 'rng.torch'"),
        "json metadata": (meta_start, "the JSON metadata"),
        "checksum entry": (sums_start, "checksum"),
        "header length": (3, "not a readable safetensors checkpoint"),
    }[region]
    before = fingerprint(learner)
    with pytest.raises(CheckpointError, match=expected) as error:
        learner.load_checkpoint(flip_bit(path, offset, 1))
    assert "corrupt" in str(error.value) or "damaged" in str(error.value)
    assert_identical(fingerprint(learner), before)


def test_format_1_files_without_checksums_still_load(tmp_path):
    save_file({"w": torch.ones(2)}, tmp_path / "v1.safetensors",
              metadata={"handgrad.checkpoint": "1", "handgrad.meta": '{"epoch": 3}',
                        "handgrad.order": '["w"]'})
    tensors, meta = load_checkpoint(tmp_path / "v1.safetensors")
    assert meta == {"epoch": 3} and torch.equal(tensors["w"].data, torch.ones(2))


def test_a_pickle_file_is_named_and_never_unpickled(tmp_path, monkeypatch):
    torch.save({"model": {"w": torch.ones(2)}, "epoch": 1}, tmp_path / "torch.pt")
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"epoch": 1}))

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    for name in ("torch.pt", "plain.pkl"):
        with pytest.raises(CheckpointError, match=r"is a (PyTorch )?pickle file.*never "
                                                  r"unpickles"):
            load_checkpoint(tmp_path / name)
    learner = make_learner()
    with pytest.raises(CheckpointError, match="torch.save"):
        learner.load_checkpoint(tmp_path / "torch.pt")


# ----------------------------------------------------------------------------- bad metadata
def _set_lr(state, value):
    state["optimizer"]["param_groups"][0]["lr"] = value


def _drop_scheduler_kind_and_set(key, value):
    def change(state):
        state["scheduler"][key] = value
    return change


BAD_STATES = {
    "negative epoch": (lambda s: s.update(epoch=-1), "'epoch' is -1"),
    "epoch not an int": (lambda s: s.update(epoch=1.5), "'epoch' is 1.5"),
    "negative step": (lambda s: s.update(step=-3), "'step' is -3"),
    "negative lr": (lambda s: _set_lr(s, -0.1), "lr -0.1"),
    "lr a string": (lambda s: _set_lr(s, "fast"), "lr 'fast'"),
    "betas of another type": (
        lambda s: s["optimizer"]["param_groups"][0].update(betas=0.9), "betas 0.9"),
    "optimizer state for no parameter": (
        lambda s: s["optimizer"]["state"].update({99: {"step": 1}}),
        "parameter 99, which matches no parameter"),
    "optimizer buffer of another shape": (
        lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(5)),
        "'exp_avg' of parameter 0 has shape"),
    "one parameter group too many": (
        lambda s: s["optimizer"]["param_groups"].append(
            dict(s["optimizer"]["param_groups"][0])), "2 parameter groups"),
    "optimizer of another kind": (lambda s: s.update(optimizer_kind="SGD"),
                                  "optimizer is a SGD, this learner's is a AdamW"),
    "scheduler of another kind": (lambda s: s.update(scheduler_kind="StepLR"),
                                  "scheduler is a StepLR"),
    "scheduler last_epoch below -1": (_drop_scheduler_kind_and_set("last_epoch", -5),
                                      "last_epoch is -5"),
    "scheduler base_lrs of another length": (_drop_scheduler_kind_and_set("base_lrs", [0.1, 0.2]),
                                             "base_lrs"),
    "python rng state cut short": (
        lambda s: s["rng"]["python"].update(state=s["rng"]["python"]["state"][:5]),
        "Python random state"),
    "torch rng state of another size": (
        lambda s: s["rng"].update(torch=torch.zeros(7, dtype=torch.uint8)), "torch CPU"),
    "numpy position out of range": (lambda s: s["rng"]["numpy"].update(pos=5000), "numpy"),
    "generator state of another size": (
        lambda s: s["generators"].update(train_dl=torch.zeros(3, dtype=torch.uint8)),
        "generator 'train_dl'"),
    "model entry not a tensor": (lambda s: s["model"].update({"0.weight": 3.0}),
                                 "not tensors: 0.weight"),
    "callback state not a dict": (lambda s: s["callbacks"].update(History=[1, 2]),
                                  "'callbacks'"),
    "config not a dict": (lambda s: s.update(config=[1]), "'config' is a list"),
}


@pytest.mark.parametrize("kind", list(BAD_STATES))
def test_bad_metadata_is_refused_and_changes_nothing(trained, tmp_path, kind):
    learner, path = trained
    change, message = BAD_STATES[kind]
    state = load_state(path)
    change(state)
    bad = save_state(tmp_path / "bad.safetensors", state)  # a whole file: checksums pass
    before = fingerprint(learner)
    with pytest.raises(CheckpointError, match=message):
        learner.load_checkpoint(bad)
    assert_identical(fingerprint(learner), before)
    learner.load_checkpoint(path)  # and the good checkpoint still loads
    assert learner.epochs_done == 1


def test_checkpoints_without_kinds_are_still_matched_by_their_contents(tmp_path):
    sgd = make_learner(optimizer="SGD", scheduler="StepLR")
    sgd.fit(1)
    state = load_state(sgd.save_checkpoint(tmp_path / "sgd.safetensors"))
    del state["optimizer_kind"], state["scheduler_kind"]  # as older checkpoints are
    legacy = save_state(tmp_path / "legacy.safetensors", state)
    adamw = make_learner()
    before = fingerprint(adamw)
    with pytest.raises(CheckpointError, match="another kind of optimizer than AdamW"):
        adamw.load_checkpoint(legacy)
    del state["optimizer"]
    state["optimizer"] = adamw.optimizer.state_dict()
    with pytest.raises(CheckpointError, match="another kind of scheduler"):
        adamw.load_checkpoint(save_state(tmp_path / "legacy2.safetensors", state))
    assert_identical(fingerprint(adamw), before)


class FailingCallback(Callback):
    """Its state fails to load once: the failure comes after the checks, while loading
    (after the optimizer, scheduler, counters and generators have been loaded)."""

    failures_left = 1

    def state_dict(self):
        return {"n": 1}

    def load_state_dict(self, state):
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("cannot take this state")

    def after_epoch(self, learner):
        pass


def test_a_failure_while_loading_puts_everything_back(tmp_path):
    learner = make_learner(callbacks=[FailingCallback()])
    learner.fit(1)
    path = learner.save_checkpoint(tmp_path / "ckpt.safetensors")
    learner.fit(2)
    before = fingerprint(learner)
    with pytest.raises(CheckpointError, match="callback FailingCallback .*cannot take this "
                                              "state.*put back"):
        learner.load_checkpoint(path)
    assert_identical(fingerprint(learner), before)


# ----------------------------------------------------------------------------- files
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_save_leaves_no_stray_files_after_the_next_save(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.safetensors", {"w": torch.ones(1000)}, {"v": 1})
    whole = path.read_bytes()
    # What killed saves leave: safetensors' own temporary file (older handgrad) and ours.
    (tmp_path / ".tmpAb12Cd").write_bytes(whole[:len(whole) // 2])
    (tmp_path / f".ckpt.safetensors.tmp-{dead_pid()}-0a1b2c3d").write_bytes(whole[:100])
    # Left alone: a save in progress in a live process, another program's temporary file.
    live = tmp_path / f".ckpt.safetensors.tmp-{os.getpid()}-deadbeef"
    live.write_bytes(b"in progress")
    (tmp_path / ".tmpZzZzZz").write_bytes(b"not a checkpoint")
    save_checkpoint(path, {"w": torch.zeros(1000)}, {"v": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        live.name, ".tmpZzZzZz", "ckpt.safetensors"]
    assert load_checkpoint(path)[1] == {"v": 2}


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_files_get_the_permissions_open_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        checkpoint = save_checkpoint(tmp_path / "c.safetensors", {"w": torch.ones(2)})
        results = write_json_atomic(tmp_path / "results.json", {"a": 1})
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    for path in (checkpoint, results, tmp_path / "plain.txt"):
        assert path.stat().st_mode & 0o777 == expected, (path.name, oct(path.stat().st_mode))


def test_write_json_atomic(tmp_path):
    value = {"loss": [0.5, float("nan")], "name": "mlp", "nested": {"k": None}}
    path = write_json_atomic(tmp_path / "out" / "results.json", value)
    assert path.read_text() == json.dumps(value, indent=2) + "\n"
    with pytest.raises(TypeError):
        write_json_atomic(path, {"when": object()})  # the old file stays whole
    assert path.read_text() == json.dumps(value, indent=2) + "\n"
    assert os.listdir(tmp_path / "out") == ["results.json"]
