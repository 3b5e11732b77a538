"""`handgrad bench rnn` (handgrad/bench/rnn.py) runs: a --quick smoke test with JSON
figures on the smallest cases, the twin layers agree, and --device cuda says clearly
when there is no GPU. How fast handgrad is comes from the full command, never a test."""

import json

import pytest
import torch

from handgrad.bench import rnn
from handgrad.cli import main


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """`--threads 1` sets torch's thread count for the process; give it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_bench_rnn_quick_writes_json(tmp_path, capsys):
    path = tmp_path / "rnn.json"
    assert main(["bench", "rnn", "--quick", "--threads", "1", "--only", "H128",
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "lstm T64 B32 I65 H128" in out and "ratio" in out
    figures = json.loads(path.read_text())
    assert figures["benchmark"] == "rnn" and figures["quick"] is True
    assert list(figures["results"]) == [name for name, *_ in rnn.CASES if "H128" in name]
    assert all(r["ratio"] > 0 and r["rounds"] == 2 for r in figures["results"].values())

    step = tmp_path / "step.json"
    assert main(["bench", "rnn", "--quick", "--threads", "1", "--only", "step",
                 "--json", str(step)]) == 0
    assert "char-lstm training step" in capsys.readouterr().out
    results = json.loads(step.read_text())["results"]
    assert list(results) == [rnn.STEP_CASE[0]]
    assert results[rnn.STEP_CASE[0]]["ratio"] > 0 and results[rnn.STEP_CASE[0]]["target"] is None


def test_twin_char_lms_train_the_same():
    """Both steps (Adam, clipping) give the same loss, step after step, on small sizes."""
    ours, theirs = rnn.char_lm_steps(11, 6, 8, 2, 3, 5, "cpu")
    for _ in range(3):
        torch.testing.assert_close(ours().data, theirs().detach())


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_twin_layers_compute_the_same(mode):
    import handgrad as hg

    torch.manual_seed(0)
    ours = getattr(hg.nn, mode)(5, 7)
    theirs = getattr(torch.nn, mode)(5, 7)
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    x = torch.randn(4, 3, 5)
    torch.testing.assert_close(ours(hg.Tensor(x))[0].data, theirs(x)[0].detach())
    ours_step, theirs_step = rnn.layer_case(mode, 4, 3, 5, 7, "cpu")
    ours_step()
    theirs_step()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_bench_rnn_cuda_without_gpu_is_a_clear_error():
    assert main(["bench", "rnn", "--quick", "--device", "cuda"]) == 2
