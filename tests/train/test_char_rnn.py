"""The character-level language model (handgrad/models/char_rnn.py) and its commands:
`handgrad train char-rnn`, `handgrad sample`, `handgrad evaluate`, on a tiny text.

What the model reaches on tiny-shakespeare is measured by the full command and recorded
in docs/training.md; these tests check the TBPTT batching, the state carried between
chunks, the vocabulary in the checkpoint, exact resume, deterministic sampling and the
errors, with handgrad's nn.LSTM / nn.GRU / nn.RNN inside the model.
"""

from __future__ import annotations

import json

import pytest
import torch

import handgrad as hg
from handgrad.cli import main
from handgrad.models import char_rnn as lm
from handgrad.models.registry import get_entry
from handgrad.train import load_state

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, "
        "speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n") * 6
TINY = ["--hidden", "16", "--layers", "1", "--embedding", "8", "--seq-len", "16",
        "--batch-size", "4", "--sample-length", "20", "--quiet"]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The commands set torch's thread count (--threads, default 1); put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "play.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- batching
def test_stream_batches_are_contiguous_streams_read_chunk_after_chunk():
    ids = torch.arange(103)
    batches = lm.StreamBatches(ids, batch_size=4, seq_len=10)  # L = 102 // 4 = 25
    assert batches.length == 25 and len(batches) == 3
    chunks = list(batches)
    assert [tuple(x.shape) for x, _ in chunks] == [(4, 10), (4, 10), (4, 5)]
    rows = torch.cat([x.data for x, _ in chunks], dim=1)  # (4, 25)
    targets = torch.cat([y.data for _, y in chunks], dim=1)
    for b in range(4):  # stream b is ids[25 b : 25 (b + 1)], its targets one further
        assert torch.equal(rows[b], ids[25 * b:25 * (b + 1)])
        assert torch.equal(targets[b], ids[25 * b + 1:25 * (b + 1) + 1])


def test_carry_state_feeds_each_chunk_the_detached_state_of_the_previous_one():
    config = lm.CharRNNConfig(hidden=8, layers=1, embedding=4, seq_len=5, batch_size=2)
    model = lm.build_model(config, 7)
    carry = lm.CarryState()

    class FakeLearner:
        training, batch, output = True, None, None

    learner = FakeLearner()
    carry.before_train(learner)
    x = hg.Tensor(torch.randint(0, 7, (2, 5)))
    seen = []
    for _ in range(3):
        learner.batch = (x, x)
        carry.before_batch(learner)
        state = learner.batch[1]
        seen.append(state)
        learner.output = model(x, state)
        carry.after_batch(learner)
    assert seen[0] is None
    for before, after in zip(seen[1:], seen[2:]):
        for s in before if isinstance(before, tuple) else (before,):
            assert not s.requires_grad and s._ctx is None  # detached: the graph ends here
        assert before is not after
    carry.before_train(learner)  # a new epoch starts from zeros
    learner.batch = (x, x)
    carry.before_batch(learner)
    assert learner.batch[1] is None


@pytest.mark.parametrize("cell", lm.CELLS)
def test_chunks_with_the_carried_state_equal_one_pass_over_the_whole_stream(cell):
    """What TBPTT relies on: reading a stream in chunks, each given the state the last
    one ended with, gives the logits of reading it in one go (every cell)."""
    config = lm.CharRNNConfig(cell=cell, hidden=8, layers=2, embedding=4)
    torch.manual_seed(0)
    model = lm.build_model(config, 9).double().eval()
    ids = torch.randint(0, 9, (3, 12))
    whole, _ = model(hg.Tensor(ids))
    state, parts = None, []
    for start in (0, 5, 10):
        logits, state = model(hg.Tensor(ids[:, start:start + 5]), state)
        parts.append(logits.data)
        state = lm.detach_state(state)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole.data)


def test_stream_nats_scores_every_character_once_for_any_batch_size():
    config = lm.CharRNNConfig(hidden=8, layers=1, embedding=4)
    torch.manual_seed(0)
    model = lm.build_model(config, 5)
    ids = torch.randint(0, 5, (203,))
    one_total, one_count = lm.stream_nats(model, ids, batch_size=1, seq_len=50)
    total, count = lm.stream_nats(model, ids, batch_size=1, seq_len=7)
    assert one_count == count == 202 and abs(one_total - total) < 1e-3
    _, count = lm.stream_nats(model, ids, batch_size=4, seq_len=16)  # 202 = 4 * 50 + 2
    assert count == 202


# ---------------------------------------------------------------------------- config, vocabulary
def test_config_round_trip_and_refusals():
    config = lm.CharRNNConfig(cell="gru", hidden=32, embedding=0, dropout=0.1)
    assert lm.CharRNNConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown cell 'transformer'"):
        lm.CharRNNConfig(cell="transformer")
    with pytest.raises(ValueError, match="unknown fields"):
        lm.CharRNNConfig.from_dict({"cells": "lstm"})
    assert get_entry("char-rnn").config_class is lm.CharRNNConfig


def test_one_hot_input_has_the_vocabulary_size():
    model = lm.build_model(lm.CharRNNConfig(hidden=8, layers=1, embedding=0), 6)
    logits, _ = model(hg.Tensor(torch.tensor([[0, 5, 2]])))
    assert tuple(logits.shape) == (1, 3, 6)
    assert not any(name.startswith("encoder") for name in model.state_dict())


def test_vocabulary_round_trips_through_the_checkpoint(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    assert main(["train", "char-rnn", "--dataset", str(text_file), "--epochs", "1",
                 "--out", str(out), "--no-plots", *TINY]) == 0
    state = load_state(out / "checkpoint.safetensors")
    assert state["vocabulary"] == {"chars": sorted(set(TEXT))}
    model, vocabulary, config = lm.load_trained(out / "checkpoint.safetensors")
    assert vocabulary == lm.Vocabulary.from_text(TEXT) and config.hidden == 16
    assert vocabulary.decode(vocabulary.encode("Speak")) == "Speak"


# ---------------------------------------------------------------------------- train
def test_train_writes_results_and_resume_equals_the_whole_run(tmp_path, text_file, capsys):
    whole, part = tmp_path / "whole", tmp_path / "part"
    common = ["train", "char-rnn", "--dataset", str(text_file), "--scheduler", "none", *TINY]
    assert main([*common, "--epochs", "2", "--out", str(whole)]) == 0
    summary = capsys.readouterr().out
    assert "nats/char" in summary and "bits/char" in summary
    results = json.loads((whole / "results.json").read_text())
    assert results["epochs_done"] == 2 and len(results["history"]) == 2
    assert results["valid"]["chars"] == results["sizes"]["valid"] - 1
    assert results["history"][-1]["valid_loss"] == pytest.approx(
        results["valid"]["nats_per_char"])
    assert len(results["sample"]) == 1 + 20 and (whole / "loss.png").is_file()

    assert main([*common, "--epochs", "1", "--out", str(part), "--no-plots"]) == 0
    assert main(["train", "char-rnn", "--resume", str(part / "checkpoint.safetensors"),
                 "--epochs", "2", "--quiet", "--no-plots"]) == 0
    resumed = json.loads((part / "results.json").read_text())
    assert resumed["history"] == [{**r, "time": resumed["history"][i]["time"]}
                                  for i, r in enumerate(results["history"])]
    a = load_state(whole / "checkpoint.safetensors")["model"]
    b = load_state(part / "checkpoint.safetensors")["model"]
    assert all(torch.equal(a[k].data, b[k].data) for k in a)


def test_train_prints_a_sample_each_epoch(tmp_path, text_file, capsys):
    args = [a for a in TINY if a != "--quiet"]
    assert main(["train", "char-rnn", "--dataset", str(text_file), "--epochs", "1",
                 "--out", str(tmp_path), "--no-plots", *args]) == 0
    assert "--- sample after epoch 1" in capsys.readouterr().out


def test_resume_refuses_other_settings(tmp_path, text_file, capsys):
    assert main(["train", "char-rnn", "--dataset", str(text_file), "--epochs", "1",
                 "--out", str(tmp_path), "--no-plots", *TINY]) == 0
    assert main(["train", "char-rnn", "--resume", str(tmp_path / "checkpoint.safetensors"),
                 "--hidden", "32"]) == 2
    assert "--hidden 32 (the checkpoint has 16)" in capsys.readouterr().err


# ---------------------------------------------------------------------------- sample, evaluate
@pytest.fixture
def checkpoint(tmp_path_factory, text_file):
    out = tmp_path_factory.mktemp("lm")
    assert main(["train", "char-rnn", "--dataset", str(text_file), "--epochs", "1",
                 "--out", str(out), "--no-plots", *TINY]) == 0
    return str(out / "checkpoint.safetensors")


def test_sample_is_deterministic_under_a_seed(checkpoint, capsys):
    capsys.readouterr()
    texts = []
    for seed in (3, 3, 4):
        assert main(["sample", checkpoint, "--prompt", "All:", "--length", "60",
                     "--temperature", "0.8", "--top-k", "5", "--seed", str(seed)]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] != texts[2]
    assert texts[0].startswith("All:") and len(texts[0]) == len("All:") + 60 + 1
    assert set(texts[0][:-1]) <= set(TEXT)


def test_sample_refuses_a_prompt_outside_the_vocabulary(checkpoint, capsys):
    assert main(["sample", checkpoint, "--prompt", "ROMEO: qx"]) == 2
    err = capsys.readouterr().err
    assert "outside the model's vocabulary" in err and "['E', 'M', 'O', 'R', 'q', 'x']" in err


def test_evaluate_reports_nats_bits_perplexity_and_counts_unknown_characters(
        checkpoint, tmp_path, capsys):
    known, odd = tmp_path / "known.txt", tmp_path / "odd.txt"
    known.write_text(TEXT[:300], encoding="utf-8")
    odd.write_text(TEXT[:300] + "ZZ@", encoding="utf-8")
    assert main(["evaluate", checkpoint, "--text", str(known), "--json",
                 str(tmp_path / "k.json")]) == 0
    figures = json.loads((tmp_path / "k.json").read_text())
    assert figures["unknown_count"] == 0 and figures["chars"] == 299
    assert figures["bits_per_char"] == pytest.approx(figures["nats_per_char"] / 0.6931471805599453)
    capsys.readouterr()
    assert main(["evaluate", checkpoint, "--text", str(odd), "--json",
                 str(tmp_path / "o.json")]) == 0
    out = capsys.readouterr().out
    assert "3 of 303 characters are outside" in out and "'Z' x2" in out and "'@' x1" in out
    odd_figures = json.loads((tmp_path / "o.json").read_text())
    assert odd_figures["unknown"] == {"Z": 2, "@": 1} and odd_figures["chars"] == 299
    assert odd_figures["nats_per_char"] == pytest.approx(figures["nats_per_char"])


def test_sample_and_evaluate_refuse_other_checkpoints(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err


# ---------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cell", lm.CELLS)
def test_training_step_on_cuda_equals_cpu(cell):
    """Two TBPTT steps (the state carried, detached) on CUDA give the CPU's losses and
    weights, in float64."""
    config = lm.CharRNNConfig(cell=cell, hidden=16, layers=2, embedding=8, dropout=0.0)
    torch.manual_seed(0)
    cpu = lm.build_model(config, 11).double()
    gpu = lm.build_model(config, 11).double().to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    ids = torch.randint(0, 11, (4 * 20 + 1,))
    results = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        optimizer, state, losses = lm.build_optimizer(config, model), None, []
        for x, y in lm.StreamBatches(ids, 4, 10, device=device):
            logits, state = model(x, state)
            loss = lm.build_loss()((logits, state), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state, losses = lm.detach_state(state), losses + [loss.item()]
        results.append((losses, {k: v.data.cpu() for k, v in model.state_dict().items()}))
    assert results[1][0] == pytest.approx(results[0][0])
    for key, value in results[0][1].items():
        torch.testing.assert_close(results[1][1][key], value, msg=key)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_sample_evaluate_on_cuda(tmp_path, text_file, capsys):
    out = tmp_path / "cuda"
    assert main(["train", "char-rnn", "--dataset", str(text_file), "--epochs", "1",
                 "--device", "cuda", "--out", str(out), "--no-plots", *TINY]) == 0
    assert json.loads((out / "results.json").read_text())["device"] == "cuda"
    checkpoint = str(out / "checkpoint.safetensors")
    assert main(["sample", checkpoint, "--device", "cuda", "--length", "10"]) == 0
    assert main(["evaluate", checkpoint, "--device", "cuda", "--text", str(text_file)]) == 0


def test_ctrl_c_prints_the_exact_resume_command(tmp_path, text_file, monkeypatch, capsys):
    import handgrad.models.char_rnn_cli as command

    args = ["train", "char-rnn", "--dataset", str(text_file), "--epochs", "1", "--out",
            str(tmp_path), "--no-plots", *TINY]
    assert main(args) == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "train", interrupted)
    assert main([*args[:4], "--epochs", "3", *args[6:]]) == 130
    err = capsys.readouterr().err
    assert (f"handgrad train char-rnn --resume {tmp_path / 'checkpoint.safetensors'} "
            f"--epochs 3 --out {tmp_path} --quiet --no-plots") in err
