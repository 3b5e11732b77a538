"""`handgrad bench transformer` (handgrad/bench/transformer.py) runs: a --quick smoke
test with JSON figures on the attention case, the twins of each case compute the same
(attention, the encoder layer, the GPT step with AdamW and clipping, step after step),
and --device cuda says clearly when there is no GPU. How fast handgrad is comes from
the full command, never a test."""

import json

import pytest
import torch

from handgrad.bench import transformer
from handgrad.cli import main


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """`--threads 1` sets torch's thread count for the process; give it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_bench_transformer_quick_writes_json(tmp_path, capsys):
    path = tmp_path / "transformer.json"
    assert main(["bench", "transformer", "--quick", "--threads", "1", "--only", "attention",
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert transformer.ATTENTION_CASE[0] in out and "ratio" in out
    figures = json.loads(path.read_text())
    assert figures["benchmark"] == "transformer" and figures["quick"] is True
    assert list(figures["results"]) == [transformer.ATTENTION_CASE[0],
                                        transformer.GPT_ATTENTION_CASE[0]]
    result = figures["results"][transformer.ATTENTION_CASE[0]]
    assert result["ratio"] > 0 and result["rounds"] == 2 and result["target"] == 0.9


def test_twin_attention_computes_the_same():
    ours, theirs = transformer.attention_case(2, 2, 5, 4, "cpu")
    torch.testing.assert_close(ours().data, theirs().detach())


def test_twin_encoder_layers_compute_the_same():
    ours, theirs = transformer.encoder_layer_case(8, 2, 16, 3, 5, "cpu")
    torch.testing.assert_close(ours().data, theirs().detach())


def test_twin_gpts_train_the_same():
    """Both GPT steps (AdamW with two groups, clipping) give the same loss, step after step."""
    ours, theirs = transformer.gpt_steps(11, 2, 2, 8, 6, 3, "cpu")
    for _ in range(3):
        torch.testing.assert_close(ours().data, theirs().detach())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_bench_transformer_cuda_without_gpu_is_a_clear_error():
    assert main(["bench", "transformer", "--quick", "--device", "cuda"]) == 2
