"""The reference CNNs (handgrad.models.cnn) and `handgrad train cnn`, on tiny settings.

LeNet-5 and the small ResNet are written a second time with torch.nn here: same
parameter names, shapes and counts, state_dicts moved both ways, the same outputs in
train and eval mode and the same input gradient. Then a one-epoch run of the command on
digits (results.json, PNGs, checkpoint, resume), the config's round trip and the
registry entry. The figures the recipes reach are measured by the full commands and
recorded in docs/training.md.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

from handgrad import Tensor
from handgrad.cli import main
from handgrad.models import cnn
from handgrad.models.registry import MODELS, entry_for, get_entry


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The command sets torch's thread count (--threads, default 1); put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- the torch.nn twins
def torch_lenet(image_size: int) -> tnn.Module:
    pad2 = 0 if image_size // 2 >= 10 else 2
    side = (image_size // 2 + 2 * pad2 - 4) // 2
    model = tnn.Module()
    model.features = tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5, padding=pad2), tnn.ReLU(), tnn.MaxPool2d(2))
    model.classifier = tnn.Sequential(
        tnn.Flatten(), tnn.Linear(16 * side * side, 120), tnn.ReLU(), tnn.Dropout(0.0),
        tnn.Linear(120, 84), tnn.ReLU(), tnn.Dropout(0.0), tnn.Linear(84, 10))
    model.forward = lambda x: model.classifier(model.features(x))
    return model


class TorchBlock(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                             tnn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(TF.relu(self.bn1(self.conv1(x)))))
        return TF.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchResNet(tnn.Module):
    def __init__(self, widths=(4, 8), blocks=2):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, widths[0], 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(widths[0])
        channels = widths[0]
        for i, width in enumerate(widths, start=1):
            setattr(self, f"layer{i}", tnn.Sequential(*[
                TorchBlock(channels if b == 0 else width, width, 1 if i == 1 or b else 2)
                for b in range(blocks)]))
            channels = width
        self.widths = widths
        self.fc = tnn.Linear(channels, 10)

    def forward(self, x):
        x = TF.relu(self.bn1(self.conv1(x)))
        for i in range(1, len(self.widths) + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(x.mean(dim=(2, 3)))


def _check_twins(ours, theirs, image_size: int):
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in theirs_state.items():
        assert tuple(ours_state[key].shape) == tuple(value.shape), key
    assert (sum(p.numel() for p in ours.parameters())
            == sum(p.numel() for p in theirs.parameters()))
    ours.load_state_dict(theirs.state_dict())  # torch -> handgrad
    torch.manual_seed(0)
    x = torch.randn(5, 1, image_size, image_size, dtype=torch.float64)
    ours.double(), theirs.double()
    for train in (True, False):  # batch statistics, then the running ones
        ours.train(train), theirs.train(train)
        xt = x.clone().requires_grad_()
        expected = theirs(xt)
        expected.backward(torch.ones_like(expected))
        xo = Tensor(x.clone(), requires_grad=True)
        out = ours(xo)
        out.backward(Tensor(torch.ones_like(expected)))
        torch.testing.assert_close(out.data, expected.detach())
        torch.testing.assert_close(xo.grad.data, xt.grad)
    back = type(theirs)() if isinstance(theirs, TorchResNet) else torch_lenet(image_size)
    back.double().load_state_dict({k: v.data for k, v in ours.state_dict().items()})
    for key, value in back.state_dict().items():  # handgrad -> torch, exactly
        assert torch.equal(value, ours.state_dict()[key].data), key
    # after the same train-mode forward, the running statistics agree too
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key].data, value)


@pytest.mark.parametrize("image_size, parameters", [(28, 61_706), (8, 21_386)])
def test_lenet_matches_torch_nn(image_size, parameters):
    ours = cnn.LeNet5(1, 10, image_size)
    assert sum(p.numel() for p in ours.parameters()) == parameters
    _check_twins(ours, torch_lenet(image_size), image_size)


def test_resnet_matches_torch_nn():
    ours = cnn.ResNet(1, 10, widths=(4, 8), blocks=2)
    assert "layer2.0.downsample.0.weight" in ours.state_dict()  # projection at stride 2
    assert "layer1.0.downsample.0.weight" not in ours.state_dict()
    _check_twins(ours, TorchResNet(), 12)
    default = cnn.ResNet()
    assert sum(p.numel() for p in default.parameters()) == 77_754


def test_lenet_refuses_tiny_images():
    with pytest.raises(ValueError, match="too small"):
        cnn.LeNet5(image_size=3)


# ---------------------------------------------------------------- config and registry
def test_config_round_trip_and_errors():
    config = cnn.reference_config("digits", model="resnet", widths=(8, 16), epochs=3)
    again = cnn.CNNConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.widths == (8, 16)
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        cnn.CNNConfig(model="vgg")
    with pytest.raises(ValueError, match="unknown fields"):
        cnn.CNNConfig.from_dict({"hidden": [3]})
    with pytest.raises(ValueError, match="no reference config"):
        cnn.reference_config("clusters")


def test_registry_lists_cnn_with_recipes_per_model():
    entry = get_entry("cnn")
    assert list(MODELS)[:2] == ["mlp", "cnn"]
    assert entry.config_class is cnn.CNNConfig
    assert entry.recipe() == cnn.REFERENCE_CONFIGS["lenet", "mnist5k"]
    assert entry.recipe("digits", "resnet") == cnn.REFERENCE_CONFIGS["resnet", "digits"]
    assert entry_for(cnn.CNNConfig()) is entry
    for (model, dataset), config in cnn.REFERENCE_CONFIGS.items():
        assert (config.model, config.dataset) == (model, dataset)
    assert {d for _, d in cnn.REFERENCE_CONFIGS} == set(cnn.DATASETS)


# ---------------------------------------------------------------- the command
TINY = ["--dataset", "digits", "--epochs", "1", "--quiet"]


def test_train_cnn_writes_results_plots_checkpoint_and_resumes(tmp_path, capsys):
    out = tmp_path / "lenet"
    assert main(["train", "cnn", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "training LeNet-5 dropout 0.2 (augmented) on digits" in printed
    assert "digits: test" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "cnn" and results["config"]["model"] == "lenet"
    assert results["sizes"] == {"train": 1258, "valid": 180, "test": 359}
    assert 0 <= results["test"]["accuracy"] <= 1 and results["epochs_done"] == 1
    for name in ("loss", "accuracy", "confusion_matrix", "misclassified"):
        assert (out / f"{name}.png").stat().st_size > 1000, name
    checkpoint = out / "checkpoint.safetensors"
    assert main(["train", "cnn", "--resume", str(checkpoint), "--quiet", "--no-plots"]) == 0
    assert "no epochs left" in capsys.readouterr().out
    assert main(["train", "cnn", "--resume", str(checkpoint), "--model", "resnet"]) == 2
    assert "--model resnet (the checkpoint has lenet)" in capsys.readouterr().err
    assert main(["train", "mlp", "--resume", str(checkpoint)]) == 2
    assert "does not fit MLPConfig" in capsys.readouterr().err


def test_train_cnn_resnet_without_augmentation(tmp_path, capsys):
    out = tmp_path / "resnet"
    assert main(["train", "cnn", *TINY, "--model", "resnet", "--widths", "4,8", "--no-augment",
                 "--no-plots", "--batch-size", "128", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["widths"] == [4, 8] and results["config"]["augment"] is False
    assert "ResNet 4-8 x1" in capsys.readouterr().out


def test_train_cnn_refuses_flags_of_other_models(capsys):
    with pytest.raises(SystemExit):
        main(["train", "cnn", "--hidden", "8"])
    assert "--hidden" in capsys.readouterr().err
    assert main(["train", "cnn", "--dataset", "digits", "--optimizer", "adamw",
                 "--momentum", "0.5"]) == 2
    assert "--momentum applies to sgd only" in capsys.readouterr().err


def test_train_cnn_on_mnist_idx_files(tmp_path):
    from tests.train.test_train_cli import _write_idx

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    root.mkdir()
    for split, n in (("train", 5100), ("t10k", 50)):  # 5,000 go to the validation split
        _write_idx(root / f"{split}-images-idx3-ubyte.gz",
                   rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(root / f"{split}-labels-idx1-ubyte.gz",
                   rng.integers(0, 10, n, dtype=np.uint8))
    out = tmp_path / "out"
    assert main(["train", "cnn", "--dataset", "mnist", "--data-root", str(root), "--out",
                 str(out), "--no-plots", "--epochs", "1", "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["sizes"] == {"train": 100, "valid": 5000, "test": 50}


def test_resume_with_augmentation_continues_exactly(tmp_path):
    """A 2-epoch augmented run stopped after epoch 1 and resumed by the command equals
    the uninterrupted run bit for bit (weights, history): the checkpoint carries the
    generator state the augmentation draws from."""
    from handgrad.models.cli import train
    from handgrad.train import load_state

    class Interrupt:
        order = 90  # after SaveCheckpoint has written epoch 1

        def after_epoch(self, learner):
            learner.should_stop = True

    config = cnn.reference_config("digits", model="lenet", epochs=2, batch_size=128)
    torch.set_num_threads(1)  # as the command runs (--threads 1): the same float sums
    quiet = {"progress": False, "table": False, "plots": False}
    train(config, tmp_path / "whole", **quiet)
    assert train(config, tmp_path / "part", callbacks=[Interrupt()], **quiet)["epochs_done"] == 1
    assert main(["train", "cnn", "--resume", str(tmp_path / "part" / "checkpoint.safetensors"),
                 "--out", str(tmp_path / "resumed"), "--quiet", "--no-plots"]) == 0
    whole = load_state(tmp_path / "whole" / "checkpoint.safetensors")
    resumed = load_state(tmp_path / "resumed" / "checkpoint.safetensors")
    assert resumed["epoch"] == 2 and resumed["step"] == whole["step"]
    for key in whole["model"]:
        assert torch.equal(resumed["model"][key].data, whole["model"][key].data), key
    history = [json.loads((tmp_path / run / "results.json").read_text())["history"]
               for run in ("whole", "resumed")]
    assert [r["valid_loss"] for r in history[0]] == [r["valid_loss"] for r in history[1]]


# ---------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["lenet", "resnet"])
def test_training_step_on_cuda_equals_cpu(name):
    """One SGD step of each model on CUDA gives the CPU's loss, gradients and weights."""
    config = cnn.reference_config("mnist5k", model=name, widths=(4, 8))
    data = cnn.PreparedImages(None, None, None, in_channels=1, image_size=28, out_features=10)
    torch.manual_seed(0)
    cpu = cnn.build_model(config, data).double()
    gpu = cnn.build_model(config, data).double().to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(6, 1, 28, 28, dtype=torch.float64)
    y = torch.randint(0, 10, (6,))
    results = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        optimizer = cnn.build_optimizer(config, model)
        loss = cnn.build_loss(data, config)(model(Tensor(x.to(device))), Tensor(y.to(device)))
        loss.backward()
        optimizer.step()
        results.append((loss.data.cpu(), {k: v.data.cpu() for k, v in
                                         model.state_dict().items()}))
    torch.testing.assert_close(results[1][0], results[0][0])
    for key, value in results[0][1].items():
        torch.testing.assert_close(results[1][1][key], value, msg=key)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_cnn_on_cuda(tmp_path):
    out = tmp_path / "cuda"
    assert main(["train", "cnn", *TINY, "--device", "cuda", "--no-plots", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["device"] == "cuda" and 0 <= results["test"]["accuracy"] <= 1
