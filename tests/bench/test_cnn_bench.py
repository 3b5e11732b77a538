"""`handgrad bench cnn` (handgrad/bench/cnn.py) runs: a --quick smoke test with JSON
figures, the twin LeNets agree, and --device cuda says clearly when there is no GPU.
How fast handgrad is comes from the full command, never from a test."""

import json

import pytest
import torch

from handgrad.bench import cnn
from handgrad.cli import main


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """`--threads 1` sets torch's thread count for the process; later tests get theirs
    back (their float32 sums round differently with another count)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_bench_cnn_quick_writes_json(tmp_path, capsys):
    path = tmp_path / "cnn.json"
    assert main(["bench", "cnn", "--quick", "--threads", "1", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "lenet-5 training step B64" in out and "ratio" in out
    figures = json.loads(path.read_text())
    assert figures["benchmark"] == "cnn" and figures["quick"] is True
    names = [name for name, *_ in cnn.CONVS + cnn.POOLS] + ["lenet-5 training step B64"]
    assert list(figures["results"]) == names
    assert all(r["ratio"] > 0 and r["rounds"] == 2 for r in figures["results"].values())


def test_bench_cnn_only_selects_cases(capsys):
    assert main(["bench", "cnn", "--quick", "--only", "max_pool"]) == 0
    out = capsys.readouterr().out
    assert "max_pool2d 2x2 6x28x28" in out and "lenet" not in out.split("\n", 1)[1]


def test_lenet_twins_take_the_same_step():
    ours, theirs = cnn.lenet_steps(4, "cpu")
    for _ in range(2):
        ours_loss, theirs_loss = ours(), theirs()
        torch.testing.assert_close(ours_loss.data, theirs_loss.detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_bench_cnn_cuda_without_gpu_is_a_clear_error(capsys):
    assert main(["bench", "cnn", "--quick", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "handgrad bench cnn: --device cuda: CUDA is not available" in err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bench_cnn_quick_on_cuda(capsys):
    assert main(["bench", "cnn", "--quick", "--device", "cuda"]) == 0
    assert "lenet-5 training step B64" in capsys.readouterr().out
