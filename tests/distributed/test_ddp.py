"""DistributedDataParallel over 2 gloo processes: the same parameters as one process
with the whole batch, and as torch's own DistributedDataParallel (the oracle); no_sync,
unused parameters, state_dict, and a failing rank that must not hang the other."""

import time

import pytest
import torch

from handgrad import nn, optim
from handgrad._tensor import Tensor
from handgrad.nn.parallel import DistributedDataParallel
from tests.distributed import launch, workers

WORLD = 2


def close(a, b, tol=1e-6):
    assert a.shape == b.shape, (a.shape, b.shape)
    return torch.allclose(a, b, rtol=0, atol=tol)


def test_training_equals_single_process_and_torch_ddp():
    names = ["mlp", "lenet", "lstm"]
    results = launch.check(launch.run(workers.train_ddp, WORLD, args=(names,), timeout=120))
    for name in names:
        reference = workers.single_process_run(name, WORLD)
        for rank in range(WORLD):
            run = results[rank][name]
            assert set(run["handgrad"]) == {f"module.{k}" for k in reference}
            assert set(run["torch"]) == set(run["handgrad"])
            for key, value in reference.items():
                ours = run["handgrad"][f"module.{key}"]
                assert close(ours, value), (name, rank, key, (ours - value).abs().max())
                assert close(ours, run["torch"][f"module.{key}"]), (name, rank, key)


def test_no_sync_accumulation_equals_big_batch():
    results = launch.check(launch.run(workers.no_sync_accumulation, WORLD))
    model, _ = workers.PAIRS["mlp"](0)  # one process, the whole batch, plain SGD
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        x, y = workers.batch("mlp", step, WORLD * workers.PER_RANK)
        workers.handgrad_step(model, optimizer, x, y)
    reference = {k: v.data for k, v in model.state_dict().items()}
    for rank in range(WORLD):
        for key, value in reference.items():
            assert close(results[rank][key], value), (rank, key)


def test_find_unused_parameters():
    results = launch.check(launch.run(workers.unused_parameters, WORLD))
    xs = [r["x"] for r in results]
    torch.manual_seed(0)
    twin = workers.Branchy().double()
    for rank, r in enumerate(results):
        first, second = r["first"], r["second"]
        # both heads were used by one rank each: every gradient is the average
        for head, user in (("left", 0), ("right", 1)):
            twin.zero_grad()
            twin(Tensor(xs[user]), head).sum().backward()
            expected = twin.get_submodule(head).weight.grad.data / WORLD
            assert close(first[f"{head}.weight"], expected), (rank, head)
        assert second["right.weight"] is None and second["right.bias"] is None
        assert second["left.weight"] is not None
        assert "find_unused_parameters=True" in r["error"]
        assert "right.weight" in r["error"]


def test_failing_rank_stops_the_other_in_bounded_time():
    start = time.monotonic()
    results = launch.run(workers.fault, WORLD, timeout=60, collective_timeout=5)
    elapsed = time.monotonic() - start
    assert elapsed < 40
    assert isinstance(results[1], launch.Failure) and results[1].kind == "ValueError"
    assert isinstance(results[0], launch.Failure), results[0]
    assert results[0].kind == "RuntimeError", results[0]
    assert "rank 0 of 2" in results[0].message
    assert "DistributedDataParallel" in results[0].message


def test_state_dict_prefix_and_unwrapped_load():
    # a 1-process group is enough for the wrapper's bookkeeping
    results = launch.check(launch.run(_state_dict_worker, 1))
    assert results[0]


def _state_dict_worker(rank, world_size):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ddp = DistributedDataParallel(model)
    keys = list(ddp.state_dict())
    assert keys == [f"module.{k}" for k in model.state_dict()], keys
    plain = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    plain.load_state_dict(ddp.module.state_dict())
    assert ddp.module is model
    return True


def test_needs_a_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedDataParallel(nn.Linear(2, 2))
