"""Saving like torch: Tensors pickle (pickle, copy.deepcopy, torch.save / torch.load,
with torch.load(weights_only=True) giving plain torch tensors), and handgrad.save /
handgrad.load, the pickle-free default (safetensors + JSON, checked, atomic)."""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys

import pytest
import torch

import handgrad as hg


def _torch_round_trip(obj, **load_kwargs):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, **load_kwargs)


# ------------------------------------------------------------------ pickle and torch.save
def test_pickle_keeps_the_class_requires_grad_and_values():
    weight = hg.nn.Parameter(hg.randn(2, 3))
    plain = hg.tensor([1.0, 2.0])
    wants = hg.tensor([3.0], requires_grad=True)
    for t in (weight, plain, wants):
        back = pickle.loads(pickle.dumps(t))
        assert type(back) is type(t) and back.requires_grad == t.requires_grad
        assert back.is_leaf and back.grad is None and torch.equal(back.data, t.data)


def test_a_non_leaf_pickles_as_a_leaf_like_torchs():
    x_torch = torch.ones(2, requires_grad=True)
    x = hg.ones(2, requires_grad=True)
    expected = _torch_round_trip(x_torch * 2, weights_only=False)
    back = pickle.loads(pickle.dumps(x * 2))
    assert (back.is_leaf, back.requires_grad) == (expected.is_leaf, expected.requires_grad)


def test_torch_load_weights_only_reads_a_handgrad_state_dict_as_torch_tensors():
    model = hg.nn.Sequential(hg.nn.Linear(3, 4), hg.nn.BatchNorm1d(4))
    loaded = _torch_round_trip(model.state_dict())  # weights_only=True is torch's default
    assert list(loaded) == list(model.state_dict())
    for name, value in loaded.items():
        assert type(value) is torch.Tensor and not value.requires_grad, name
        assert torch.equal(value, model.state_dict()[name].data)
    fresh = hg.nn.Sequential(hg.nn.Linear(3, 4), hg.nn.BatchNorm1d(4))
    fresh.load_state_dict(loaded)
    assert torch.equal(fresh[0].weight.data, model[0].weight.data)
    reference = torch.nn.Linear(3, 4)
    reference.load_state_dict({k[2:]: v for k, v in loaded.items() if k.startswith("0.")})


def test_torch_save_of_tensors_and_models_without_weights_only_keeps_handgrad_types():
    t = hg.tensor([1.0, 2.0], requires_grad=True)
    back = _torch_round_trip(t, weights_only=False)
    assert isinstance(back, hg.Tensor) and back.requires_grad
    assert type(_torch_round_trip(t)) is torch.Tensor  # weights_only: plain torch
    model = hg.nn.Sequential(hg.nn.Linear(3, 4), hg.nn.BatchNorm1d(4))
    model_back = _torch_round_trip(model, weights_only=False)
    assert type(model_back[0].weight) is hg.nn.Parameter
    assert type(model_back[1].running_mean) is hg.Tensor
    x = hg.randn(2, 3)
    torch.testing.assert_close(model_back(x).data, model(x).data)


def test_weights_only_without_handgrad_imported_names_the_global(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(hg.nn.Linear(2, 2).state_dict(), path)
    code = (f"import torch, sys\ntry:\n    torch.load({str(path)!r})\nexcept Exception as e:\n"
            f"    sys.exit('handgrad._tensor._rebuild_tensor' not in str(e))\nsys.exit(1)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_deepcopy_copies_values_grads_and_shared_weights():
    model = hg.nn.Linear(3, 3)
    model.extra = hg.nn.Linear(3, 3)
    model.extra.weight = model.weight  # tied
    model(hg.randn(2, 3)).sum().backward()
    twin = copy.deepcopy(model)
    assert twin.extra.weight is twin.weight and twin.weight is not model.weight
    assert type(twin.weight) is hg.nn.Parameter and twin.weight.requires_grad
    assert torch.equal(twin.weight.grad.data, model.weight.grad.data)
    twin.weight.data.add_(1)
    assert not torch.equal(twin.weight.data, model.weight.data)
    with pytest.raises(RuntimeError, match="deepcopy"):
        copy.deepcopy(model.weight * 2)


# ------------------------------------------------------------------ handgrad.save / load
def test_save_and_load_nested_state(tmp_path):
    model = hg.nn.Linear(3, 2)
    state = {"model": model.state_dict(), "epoch": 3, "lr": 0.1, "name": "run",
             "flags": [True, None], "pair": (1, 2.5), "tensor": hg.arange(4)}
    hg.save(state, tmp_path / "state.hg")
    back = hg.load(tmp_path / "state.hg", map_location="cpu")
    assert set(back) == set(state) and back["pair"] == (1, 2.5)
    assert back["epoch"] == 3 and back["flags"] == [True, None] and back["name"] == "run"
    assert back["tensor"].tolist() == [0, 1, 2, 3] and back["tensor"].dtype == torch.int64
    for name, value in state["model"].items():
        assert isinstance(back["model"][name], hg.Tensor)
        assert torch.equal(back["model"][name].data, value.data)
    hg.save(hg.ones(2, 2), tmp_path / "one.hg")
    assert hg.load(str(tmp_path / "one.hg")).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.hg", "state.hg"]  # atomic


def test_load_refuses_pickles_damage_and_unpickling(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "pickle.pt")
    with pytest.raises(ValueError, match="never unpickles"):
        hg.load(tmp_path / "pickle.pt")
    hg.save({"w": hg.ones(8)}, tmp_path / "state.hg")
    data = bytearray((tmp_path / "state.hg").read_bytes())
    data[-3] ^= 0xFF  # a flipped bit in the tensor bytes
    (tmp_path / "state.hg").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum|sha256|corrupt"):
        hg.load(tmp_path / "state.hg")
    with pytest.raises(ValueError, match="weights_only=False"):
        hg.load(tmp_path / "state.hg", weights_only=False)


def test_save_refuses_what_it_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="Linear"):
        hg.save({"model": hg.nn.Linear(2, 2)}, tmp_path / "m.hg")
    assert not list(tmp_path.iterdir())
    with pytest.raises(TypeError, match="path"):
        hg.save({"w": hg.ones(1)}, io.BytesIO())
    with pytest.raises(TypeError, match="map_location"):
        hg.load(tmp_path / "m.hg", map_location={"cuda:0": "cpu"})
