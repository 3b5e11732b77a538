"""SyncBatchNorm. Over 2 gloo processes (one launch, many checks): forward, input
gradients, the sum of the ranks' weight / bias gradients, the running statistics and
evaluation equal one process with the whole batch (torch.nn.SyncBatchNorm outside a
process group, which is torch's batch norm), for unequal per-rank batches and an empty
rank; evaluation and a group of one process communicate nothing; a global batch of one
value per channel raises on every rank; DDP over a converted conv net equals one
process with the whole batch for 3 steps. On one process: torch.nn.SyncBatchNorm's
values, gradients, buffers, names, repr and errors, and convert_sync_batchnorm.
"""

import pytest
import torch

import handgrad.nn.functional as F
from handgrad import nn, optim
from handgrad._tensor import Tensor
from tests.distributed import launch
from tests.distributed import sync_batchnorm_workers as workers

WORLD = 2
TOL = 1e-10


def assert_close(ours, expected, what):
    assert ours.shape == expected.shape, (what, ours.shape, expected.shape)
    error = (ours - expected).abs().max().item() if ours.numel() else 0.0
    assert error <= TOL, (what, error)


@pytest.fixture(scope="module")
def results():
    return launch.check(launch.run(workers.sync_batchnorm_checks, WORLD, timeout=90))


def torch_reference(name: str) -> dict:
    """One process, the whole batch: torch.nn.SyncBatchNorm without a process group
    (torch falls back to its batch norm there), the same steps as the ranks."""
    sample, sizes, options = workers.CASES[name]
    _, _, weight, bias = workers.case_data(name, 0)
    layer = torch.nn.SyncBatchNorm(sample[0], **options).double()
    with torch.no_grad():
        if layer.weight is not None:
            layer.weight.copy_(weight)
        if layer.bias is not None:
            layer.bias.copy_(bias)
    steps = []
    for step in range(workers.STEPS):
        x, upstream, _, _ = workers.case_data(name, step)
        layer.zero_grad()
        x = x.clone().requires_grad_()
        y = layer(x)
        y.backward(upstream)
        steps.append({"y": y.detach(), "dx": x.grad,
                      "dweight": None if layer.weight is None else layer.weight.grad.clone(),
                      "dbias": None if layer.bias is None else layer.bias.grad.clone()})
    layer.eval()
    x, _, _, _ = workers.case_data(name, workers.STEPS)
    with torch.no_grad():
        y_eval = layer(x)
    return {"steps": steps, "eval": y_eval,
            "buffers": {k: v.detach() for k, v in layer.named_buffers()}}


@pytest.mark.parametrize("name", list(workers.CASES))
def test_equals_one_process_with_the_whole_batch(results, name):
    sizes = workers.CASES[name][1]
    reference = torch_reference(name)
    for step, expected in enumerate(reference["steps"]):
        for key in ("dweight", "dbias"):  # each rank holds its share: they sum to it
            if expected[key] is None:
                assert all(results[r][name]["steps"][step][key] is None for r in range(WORLD))
                continue
            total = sum(results[r][name]["steps"][step][key] for r in range(WORLD))
            assert_close(total, expected[key], (name, step, key))
        for rank in range(WORLD):
            ours = results[rank][name]["steps"][step]
            part = workers.rank_slice(sizes, rank)
            assert_close(ours["y"], expected["y"][part], (name, step, rank, "y"))
            assert_close(ours["dx"], expected["dx"][part], (name, step, rank, "dx"))
            # forward: sums and counts, then squared deviations; backward: gradient sums
            assert ours["collectives"] == (2, 1), (name, ours["collectives"])
    for rank in range(WORLD):
        run = results[rank][name]
        part = workers.rank_slice(sizes, rank)
        assert run["eval_collectives"] == 0, name
        expected = reference["eval"][part]
        if not reference["buffers"]:  # no running statistics: this rank's own batch's
            x, _, _, _ = workers.case_data(name, workers.STEPS)
            expected = torch.nn.functional.batch_norm(x[part], None, None, training=True)
        assert_close(run["eval"], expected, (name, rank, "eval"))
        assert set(run["buffers"]) == set(reference["buffers"])
        for key, value in reference["buffers"].items():
            assert_close(run["buffers"][key].double(), value.double(), (name, rank, key))


def test_group_of_one_process_is_plain_batch_norm(results):
    run = results[0]["group_of_one"]
    sample, sizes, _ = workers.CASES["2d_unequal"]
    part = workers.rank_slice(sizes, 0)
    x, upstream, weight, bias = workers.case_data("2d_unequal", 0)
    x = x[part].clone().requires_grad_()
    w, b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
    y = torch.nn.functional.batch_norm(x, None, None, w, b, training=True)
    y.backward(upstream[part])
    first = run["steps"][0]
    assert first["collectives"] == (0, 0)
    assert_close(first["y"], y.detach(), "y")
    assert_close(first["dx"], x.grad, "dx")
    assert_close(first["dweight"], w.grad, "dweight")
    assert "group_of_one" not in results[1]


def test_one_value_per_channel_over_the_group_raises_everywhere(results):
    for rank in range(WORLD):
        message = results[rank]["too_small"]
        assert message is not None and "more than 1 value per channel" in message, message
        assert "got 1 over the 2 processes" in message


def test_ddp_over_a_conv_net_equals_one_process(results):
    torch.manual_seed(0)  # rank 0's model, which DDP gives every rank
    model = workers.SmallConvNet().double()
    twin = torch.nn.Sequential()
    twin.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    twin.norm = torch.nn.BatchNorm2d(4)
    twin.head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Flatten(),
                                    torch.nn.Linear(4 * 4 * 4, 3))
    twin.load_state_dict({k: v.data.clone() for k, v in model.state_dict().items()})
    twin.double()
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    for step in range(workers.CONV_STEPS):
        x, y = workers.conv_batch(step, WORLD * workers.CONV_PER_RANK)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(twin(x), y).backward()
        optimizer.step()
    expected = twin.state_dict()
    for rank in range(WORLD):
        run = results[rank]["ddp"]
        assert run["kinds"]["norm"] == "SyncBatchNorm" and run["kinds"]["conv"] == "Conv2d"
        assert set(run["state"]) == set(expected)
        for key, value in expected.items():
            assert_close(run["state"][key].double(), value.double(), (rank, key))


# ------------------------------------------------------------------ one process
SHAPES = [(6, 3), (4, 3, 5), (2, 3, 2, 3), (2, 3, 2, 2, 2)]
OPTIONS = [{}, {"momentum": None}, {"affine": False}, {"bias": False, "eps": 1e-3},
           {"track_running_stats": False}]


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_one_process_matches_torch(options):
    ours = nn.SyncBatchNorm(3, **options).double()
    theirs = torch.nn.SyncBatchNorm(3, **options).double()
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ([(n, tuple(p.shape)) for n, p in ours.named_parameters()]
            == [(n, tuple(p.shape)) for n, p in theirs.named_parameters()])
    assert ours.process_group is None
    g = torch.Generator().manual_seed(3)
    for shape in SHAPES:
        for training in (True, True, False):
            ours.train(training)
            theirs.train(training)
            x = torch.randn(shape, generator=g, dtype=torch.float64)
            upstream = torch.randn(shape, generator=g, dtype=torch.float64)
            ours.zero_grad()
            theirs.zero_grad()
            x_ours, x_theirs = Tensor(x.clone(), requires_grad=True), x.clone().requires_grad_()
            y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
            y_ours.backward(Tensor(upstream))
            y_theirs.backward(upstream)
            assert_close(y_ours.data, y_theirs.detach(), (shape, training, "y"))
            assert_close(x_ours.grad.data, x_theirs.grad, (shape, training, "dx"))
            for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
                assert_close(p.grad.data, q.grad, (shape, training, name))
            for (name, b), c in zip(ours.named_buffers(), theirs.buffers()):
                assert torch.equal(b.data, c) or (b.data - c).abs().max() <= TOL, name


def test_one_process_errors_match_torch():
    layer = nn.SyncBatchNorm(3)
    for bad, kind in ((torch.randn(3), ValueError), (torch.randn(4, 0, 2), ValueError),
                      (torch.randn(1, 3), ValueError), (torch.randn(4, 2), RuntimeError)):
        with pytest.raises(kind):
            torch.nn.SyncBatchNorm(3)(bad)
        with pytest.raises(kind) as caught:
            layer(Tensor(bad))
        assert "SyncBatchNorm" in str(caught.value) or "batch_norm" in str(caught.value)
    with pytest.raises(ValueError, match="expected at least 2D input"):
        layer(Tensor(torch.randn(3)))
    with pytest.raises(ValueError, match="channels should be non-zero"):
        layer(Tensor(torch.randn(4, 0, 2)))


def _nets(library):
    return library.Sequential(
        library.Linear(4, 3), library.BatchNorm1d(3),
        library.Sequential(library.Conv2d(1, 2, 1), library.BatchNorm2d(2, momentum=None,
                                                                         bias=False)),
        library.InstanceNorm2d(2, affine=True), library.BatchNorm1d(3, affine=False,
                                                                    track_running_stats=False))


def test_convert_sync_batchnorm_as_torch():
    torch.manual_seed(0)
    model = _nets(nn).double()
    model[2][1].eval()
    old_weight, old_mean = model[1].weight, model[1].running_mean
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group="group")
    theirs = torch.nn.SyncBatchNorm.convert_sync_batchnorm(_nets(torch.nn),
                                                           process_group="group")
    assert converted is model  # containers change in place, as torch's
    assert ([(n, type(m).__name__) for n, m in converted.named_modules()]
            == [(n, type(m).__name__) for n, m in theirs.named_modules()])
    assert list(converted.state_dict()) == list(theirs.state_dict())
    assert repr(converted) == repr(theirs).replace("torch.nn.", "")
    assert converted[1].weight is old_weight and converted[1].running_mean is old_mean
    assert converted[1].process_group == "group"
    assert converted[2][1].training is False and converted[1].training is True
    assert converted[2][1].momentum is None and converted[2][1].bias is None
    assert converted[4].running_mean is None and converted[4].weight is None
    single = nn.BatchNorm2d(2)
    new = nn.SyncBatchNorm.convert_sync_batchnorm(single)
    assert isinstance(new, nn.SyncBatchNorm) and new is not single
    assert new.weight is single.weight and new.num_batches_tracked is single.num_batches_tracked
    # the converted model trains like the plain one on one process
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.randint(0, 3, (5,))
    plain = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).double()
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(
        nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).double())
    synced.load_state_dict(plain.state_dict())
    for net in (plain, synced):
        opt = optim.SGD(net.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(net(Tensor(x)), Tensor(y)).backward()
            opt.step()
    for key, value in plain.state_dict().items():
        assert torch.equal(synced.state_dict()[key].data, value.data), key
