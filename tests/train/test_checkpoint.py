"""Checkpoints: round trips, errors, nothing unpickled, atomic writes (a process killed
with SIGKILL in the middle of a large save leaves the previous checkpoint intact),
nested state such as torch.optim state_dicts, and RNG states."""

import json
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from handgrad._tensor import Tensor
from handgrad.train import (
    CheckpointError,
    flatten_state,
    get_rng_state,
    load_checkpoint,
    load_state,
    save_checkpoint,
    save_state,
    set_rng_state,
    unflatten_state,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def assert_equal_state(ours, expected, where="state"):
    """Structure and values equal; handgrad Tensors compare with torch tensors."""
    if isinstance(expected, torch.Tensor | Tensor):
        a = ours.data if isinstance(ours, Tensor) else ours
        b = expected.data if isinstance(expected, Tensor) else expected
        assert isinstance(a, torch.Tensor), f"{where}: {type(ours)}"
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(expected, np.ndarray):
        assert isinstance(ours, np.ndarray) and ours.dtype == expected.dtype, where
        assert np.array_equal(ours, expected), where
    elif isinstance(expected, dict):
        assert isinstance(ours, dict) and list(ours) == list(expected), (where, ours.keys())
        for key in expected:
            assert_equal_state(ours[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, list | tuple):
        assert type(ours) is type(expected) and len(ours) == len(expected), where
        for i, (a, b) in enumerate(zip(ours, expected)):
            assert_equal_state(a, b, f"{where}[{i}]")
    elif isinstance(expected, float) and expected != expected:
        assert ours != ours, where  # NaN
    else:
        assert ours == expected and type(ours) is type(expected), (where, ours, expected)


def test_round_trip(tmp_path):
    tensors = {
        "weight": Tensor(torch.randn(4, 3)),
        "bias": torch.randn(3, dtype=torch.float64),
        "step": torch.tensor(7),
        "mask": torch.tensor([True, False]),
        "half": torch.randn(2, 2).to(torch.bfloat16),
        "empty": torch.zeros(0, 5),
        "strided": torch.randn(6, 4).t(),  # non-contiguous
    }
    meta = {"epoch": 3, "config": {"lr": 0.1, "layers": [64, 32], "name": "mlp"},
            "best": float("inf"), "note": None, "ok": True, "pair": (1, 2)}
    path = save_checkpoint(tmp_path / "run" / "ckpt.safetensors", tensors, meta)
    loaded, loaded_meta = load_checkpoint(path)
    assert all(isinstance(t, Tensor) for t in loaded.values())
    assert_equal_state(loaded, {k: v.data if isinstance(v, Tensor) else v
                                for k, v in tensors.items()})
    assert loaded_meta == {**meta, "pair": [1, 2]}  # JSON has no tuples
    assert sorted(os.listdir(tmp_path / "run")) == ["ckpt.safetensors"]  # no temporaries
    # It is an ordinary safetensors file: other tools read the tensors.
    assert torch.equal(load_file(path)["bias"], tensors["bias"])


def test_tied_tensors_and_plain_safetensors_files(tmp_path):
    shared = torch.randn(3, 3)
    save_checkpoint(tmp_path / "tied.safetensors", {"a": shared, "b": shared, "c": shared[0]})
    loaded, _ = load_checkpoint(tmp_path / "tied.safetensors")
    assert torch.equal(loaded["b"].data, shared) and torch.equal(loaded["c"].data, shared[0])
    save_file({"x": torch.ones(2)}, tmp_path / "plain.safetensors")
    tensors, meta = load_checkpoint(tmp_path / "plain.safetensors")
    assert meta == {} and torch.equal(tensors["x"].data, torch.ones(2))


def test_save_errors_name_the_problem(tmp_path):
    path = tmp_path / "c.safetensors"
    with pytest.raises(TypeError, match="tensors\\['w'\\] is a list"):
        save_checkpoint(path, {"w": [1, 2]})
    with pytest.raises(TypeError, match="names must be strings"):
        save_checkpoint(path, {3: torch.ones(1)})
    with pytest.raises(TypeError, match=r"meta\['optimizer'\]\['buf'\] is a Tensor.*save_state"):
        save_checkpoint(path, {}, {"optimizer": {"buf": torch.ones(1)}})
    with pytest.raises(TypeError, match=r"meta\['state'\] has a non-string key 0"):
        save_checkpoint(path, {}, {"state": {0: 1}})
    with pytest.raises(TypeError, match=r"meta\['when'\] is a object"):
        save_checkpoint(path, {}, {"when": object()})
    assert not path.exists() and not list(tmp_path.iterdir())


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.safetensors")
    path = save_checkpoint(tmp_path / "c.safetensors", {"w": torch.randn(100)}, {"epoch": 1})
    data = path.read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(data[:-50])
    with pytest.raises(CheckpointError, match="truncated.safetensors.*truncated or corrupt"):
        load_checkpoint(tmp_path / "truncated.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_checkpoint(tmp_path / "junk.safetensors")
    save_file({"w": torch.ones(1)}, tmp_path / "future.safetensors",
              metadata={"handgrad.checkpoint": "99", "handgrad.meta": "{}"})
    with pytest.raises(CheckpointError, match="format '99'"):
        load_checkpoint(tmp_path / "future.safetensors")
    save_file({"w": torch.ones(1)}, tmp_path / "badjson.safetensors",
              metadata={"handgrad.checkpoint": "1", "handgrad.meta": "{not json"})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "badjson.safetensors")


def test_loading_never_unpickles(tmp_path, monkeypatch):
    state = {"model": {"w": torch.randn(3)}, "optimizer": {"state": {0: {"m": torch.ones(3)}}},
             "rng": get_rng_state(), "epoch": 2}
    path = save_state(tmp_path / "c.safetensors", state)
    # The file is a safetensors header (8-byte length + JSON) and raw tensor bytes.
    data = path.read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_length])
    assert json.loads(header["__metadata__"]["handgrad.meta"])["state"]["epoch"] == 2

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = load_state(path)
    assert_equal_state(loaded["optimizer"], state["optimizer"])


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from handgrad.train import checkpoint

    path = save_checkpoint(tmp_path / "c.safetensors", {"w": torch.ones(4)}, {"epoch": 1})

    def broken_write(file, tensors, metadata):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "_write_safetensors", broken_write)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": torch.zeros(4)}, {"epoch": 2})
    monkeypatch.undo()
    tensors, meta = load_checkpoint(path)
    assert meta == {"epoch": 1} and torch.equal(tensors["w"].data, torch.ones(4))
    assert os.listdir(tmp_path) == ["c.safetensors"]


KILLED_SAVER = textwrap.dedent("""
    import sys, torch
    from handgrad.train import save_checkpoint
    path, megabytes = sys.argv[1], int(sys.argv[2])
    n = megabytes * 2**20 // 4
    save_checkpoint(path, {"w": torch.full((n,), 1.0)}, {"version": 1})
    print("saved version 1", flush=True)
    version = 2
    while True:  # keep saving new versions until killed
        save_checkpoint(path, {"w": torch.full((n,), float(version))}, {"version": version})
        version += 1
""")


def test_sigkill_during_a_large_save_leaves_a_whole_checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    script = tmp_path / "saver.py"
    script.write_text(KILLED_SAVER)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    caught_mid_save = 0
    for _attempt in range(3):
        child = subprocess.Popen([sys.executable, str(script), str(path), "64"],
                                 stdout=subprocess.PIPE, env=env, text=True)
        try:
            assert child.stdout.readline().strip() == "saved version 1"
            # Wait until a new save has started (its temporary file exists), then kill.
            deadline = time.monotonic() + 30
            while not list(tmp_path.glob(".ckpt.safetensors.tmp-*")):
                assert time.monotonic() < deadline, "the child never started a second save"
                time.sleep(0.002)  # a save of 64 MB takes far longer; leave the core to it
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGKILL
        leftovers = list(tmp_path.glob(".ckpt.safetensors.tmp-*"))
        caught_mid_save += bool(leftovers)
        tensors, meta = load_checkpoint(path)  # whole, whichever version it is
        version = meta["version"]
        w = tensors["w"].data
        assert w.numel() == 64 * 2**20 // 4 and bool((w == float(version)).all())
        if caught_mid_save:
            break
    assert caught_mid_save, "never killed the child in the middle of a save"
    # The next save in this directory removes the dead process's temporary file.
    save_checkpoint(path, {"w": torch.ones(1)}, {"version": 0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors", "saver.py"]


def test_flatten_state_round_trip(tmp_path):
    state = {
        "model": {"layer.weight": Tensor(torch.randn(2, 2)), "layer.bias": torch.zeros(2)},
        "layer": {"weight": torch.ones(1)},  # dotted names that could collide
        "int_keys": {0: "a", 1: [1, 2.5, None, True]},
        "tuple_keys": {(1, 2): "x", None: 3, False: 0.5},
        "marker_like": {"__tensor__": "just a string"},
        "tuple": (1, (2, torch.arange(3))),
        "numpy": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "numpy_scalar": np.float32(1.5),
        "floats": [float("nan"), float("inf"), -float("inf"), 1e-300],
        "empty": {"list": [], "dict": {}, "tuple": ()},
    }
    tensors, skeleton = flatten_state(state)
    text = json.dumps(skeleton)  # the skeleton is JSON (NaN != NaN, so compare the text)
    assert len(tensors) == 5 and json.dumps(json.loads(text)) == text
    assert "model.layer.weight" in tensors and "tuple.1.1" in tensors
    expected = dict(state, numpy_scalar=1.5)
    assert_equal_state(unflatten_state(tensors, skeleton), expected)
    path = save_state(tmp_path / "s.safetensors", state)
    assert_equal_state(load_state(path), expected)
    with pytest.raises(TypeError, match="flatten_state: config.when is a object"):
        flatten_state({"config": {"when": object()}})
    with pytest.raises(CheckpointError, match="names tensor 'gone'"):
        unflatten_state({}, {"__tensor__": "gone"})
    save_checkpoint(tmp_path / "plain.safetensors", {}, {"epoch": 1})
    with pytest.raises(CheckpointError, match="not written by save_state"):
        load_state(tmp_path / "plain.safetensors")


def test_torch_optimizer_state_dict_survives_a_checkpoint(tmp_path):
    """The helper fits optimizer state: int keys, per-parameter tensors, param_groups."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(2))]
    optimizer = torch.optim.Adam(params, lr=1e-2, betas=(0.8, 0.9))
    for _ in range(3):
        optimizer.zero_grad()
        (params[0].sum() ** 2 + params[1].pow(3).sum()).backward()
        optimizer.step()
    original = optimizer.state_dict()
    path = save_state(tmp_path / "opt.safetensors", {"optimizer": original, "step": 3})
    loaded = load_state(path)["optimizer"]
    as_torch = unflatten_state(*flatten_state(loaded))  # same structure, Tensors inside
    assert_equal_state(as_torch, original)
    raw = _to_torch(loaded)
    fresh = torch.optim.Adam([torch.nn.Parameter(p.detach().clone()) for p in params])
    fresh.load_state_dict(raw)
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9)
    assert torch.equal(fresh.state[fresh.param_groups[0]["params"][0]]["exp_avg"],
                       original["state"][0]["exp_avg"])


def _to_torch(state):
    if isinstance(state, Tensor):
        return state.data
    if isinstance(state, dict):
        return {k: _to_torch(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_to_torch(v) for v in state)
    return state


def draws():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_rng_state_round_trip_through_a_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    state = get_rng_state()
    expected = draws()
    path = save_state(tmp_path / "rng.safetensors", {"rng": state})
    draws()
    set_rng_state(load_state(path)["rng"])
    assert draws() == expected
    assert {"python", "numpy", "torch"} <= set(state)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_cuda_states_without_cuda_warn():
    state = get_rng_state()
    assert "cuda" not in state
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8)]
    with pytest.warns(UserWarning, match="CUDA is not available"):
        set_rng_state(state)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rng_state_round_trip(tmp_path):
    torch.cuda.manual_seed_all(5)
    state = get_rng_state()
    assert len(state["cuda"]) == torch.cuda.device_count()
    expected = torch.rand(4, device="cuda").tolist()
    path = save_state(tmp_path / "rng.safetensors", {"rng": state})
    torch.rand(4, device="cuda")
    set_rng_state(load_state(path)["rng"])
    assert torch.rand(4, device="cuda").tolist() == expected
