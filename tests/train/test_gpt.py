"""The character-level GPT (handgrad/models/gpt.py), its decoding (models/decoding.py) and
its commands: `handgrad train gpt`, `handgrad sample` and `handgrad evaluate` on a GPT
checkpoint, on a tiny text.

What the model reaches on tiny-shakespeare is measured by the full command and recorded
in docs/training.md; these tests check the model against a torch.nn twin with the same
weights (float64: logits, loss and every gradient), the KV cache (cached and uncached
decoding give the same tokens and logits, across window moves), the sampling filters
(top-k, top-p, greedy), the block-size error, the validation scoring, exact resume and
the commands; and, under the cuda marker, a training step on CUDA against the CPU.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import handgrad as hg
from handgrad.cli import main
from handgrad.models import decoding
from handgrad.models import gpt as G
from handgrad.models.char_rnn import Vocabulary
from handgrad.train import load_state

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, "
        "speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n") * 6
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
        "--batch-size", "4", "--steps-per-epoch", "5", "--warmup-steps", "2",
        "--sample-length", "20", "--quiet"]


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


# ---------------------------------------------------------------------------- the torch twin
class TorchGPT(torch.nn.Module):
    """nanoGPT's model in torch.nn (the oracle), with the same parameter names."""

    def __init__(self, vocab, block, layers, heads, width, bias=True):
        super().__init__()
        nn = torch.nn
        self.heads = heads
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab, width), "wpe": nn.Embedding(block, width),
            "h": nn.ModuleList([nn.ModuleDict({
                "ln_1": nn.LayerNorm(width, bias=bias),
                "attn": nn.ModuleDict({"c_attn": nn.Linear(width, 3 * width, bias=bias),
                                       "c_proj": nn.Linear(width, width, bias=bias)}),
                "ln_2": nn.LayerNorm(width, bias=bias),
                "mlp": nn.ModuleDict({"c_fc": nn.Linear(width, 4 * width, bias=bias),
                                      "c_proj": nn.Linear(4 * width, width, bias=bias)}),
            }) for _ in range(layers)]),
            "ln_f": nn.LayerNorm(width, bias=bias)})
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx, targets):
        F = torch.nn.functional
        B, T = idx.shape
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T))
        for block in self.transformer.h:
            q, k, v = block.attn.c_attn(block.ln_1(x)).split(x.shape[-1], dim=2)
            q, k, v = (t.view(B, T, self.heads, -1).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + block.attn.c_proj(y.transpose(1, 2).reshape(B, T, -1))
            x = x + block.mlp.c_proj(F.gelu(block.mlp.c_fc(block.ln_2(x))))
        logits = self.lm_head(self.transformer.ln_f(x))
        return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@pytest.mark.parametrize("bias", [True, False])
def test_model_equals_a_torch_twin_in_float64(bias):
    """Same weights: logits, loss and every gradient agree to ~1e-10."""
    torch.manual_seed(0)
    model = G.GPT(11, block_size=12, n_layer=2, n_head=2, n_embd=8, bias=bias).double()
    twin = TorchGPT(11, 12, 2, 2, 8, bias=bias).double()
    twin.load_state_dict({k: v.data.clone() for k, v in model.state_dict().items()})
    idx, targets = torch.randint(0, 11, (3, 12)), torch.randint(0, 11, (3, 12))
    logits, loss = model(hg.tensor(idx), hg.tensor(targets))
    expected_logits, expected_loss = twin(idx, targets)
    torch.testing.assert_close(logits.data, expected_logits.detach(), rtol=0, atol=1e-10)
    assert loss.item() == pytest.approx(expected_loss.item(), abs=1e-12)
    loss.backward()
    expected_loss.backward()
    grads = dict(twin.named_parameters())
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.grad.data, grads[name].grad, rtol=0, atol=1e-10,
                                   msg=name)


def test_initialisation_is_nanogpts_and_the_head_is_tied():
    torch.manual_seed(0)
    model = G.GPT(65, block_size=32, n_layer=4, n_head=4, n_embd=128)
    assert model.lm_head.weight is model.transformer.wte.weight
    parameters = dict(model.named_parameters())
    assert "lm_head.weight" not in parameters  # listed once, as torch does
    assert parameters["transformer.h.0.mlp.c_fc.weight"].data.std().item() == \
        pytest.approx(0.02, rel=0.05)
    assert parameters["transformer.h.0.attn.c_proj.weight"].data.std().item() == \
        pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert parameters["transformer.h.0.attn.c_attn.bias"].data.abs().max().item() == 0


def test_a_context_longer_than_the_block_size_is_refused_with_the_shapes():
    model = G.GPT(5, block_size=8, n_layer=1, n_head=1, n_embd=4)
    with pytest.raises(ValueError, match=r"GPT: the input idx of shape \(2, 9\).*T = 9.*"
                                         r"block_size 8"):
        model(hg.tensor(torch.zeros(2, 9, dtype=torch.int64)))
    cache = model.new_cache()
    with hg.no_grad():
        model(hg.tensor(torch.zeros(1, 6, dtype=torch.int64)), cache=cache)
        with pytest.raises(ValueError, match="after the 6 positions in the KV cache"):
            model(hg.tensor(torch.zeros(1, 3, dtype=torch.int64)), cache=cache)


def test_config_refuses_heads_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match="n_embd \\(10\\) must be divisible by n_head \\(4\\)"):
        G.GPTConfig(n_embd=10, n_head=4)


# ---------------------------------------------------------------------------- KV cache
def _tiny_model(block=10):
    torch.manual_seed(1)
    model = G.GPT(7, block_size=block, n_layer=2, n_head=2, n_embd=8).double()
    for p in model.parameters():  # spread the logits so that sampling is not uniform
        p.data.mul_(8)
    return model.eval()


@pytest.mark.parametrize("keep", [None, 5])
def test_cached_and_uncached_decoding_give_the_same_tokens_and_logits(keep):
    """Past the block size (the window moves and the cache is rebuilt) too."""
    model, vocabulary = _tiny_model(), Vocabulary("abcdefg")
    runs = {}
    for use_cache in (True, False):
        logits = []
        text = "".join(decoding.generate(
            model, vocabulary, "abc", 30, temperature=1.0,
            generator=torch.Generator().manual_seed(0), use_cache=use_cache, keep=keep,
            logits_out=logits))
        runs[use_cache] = text, torch.stack(logits)
    assert runs[True][0] == runs[False][0] and len(runs[True][0]) == 30
    torch.testing.assert_close(runs[True][1], runs[False][1], rtol=0, atol=1e-10)


def test_the_default_window_is_the_last_block_size_tokens():
    """keep=None: every logit is the model's on the last block_size tokens of the context
    (nanoGPT's uncached loop), computed here directly."""
    model, vocabulary = _tiny_model(block=6), Vocabulary("abcdefg")
    logits = []
    text = "".join(decoding.generate(model, vocabulary, "abcdefgab", 12, greedy=True,
                                     logits_out=logits))
    context = vocabulary.encode("abcdefgab").tolist()
    with hg.no_grad():
        for step, char in enumerate(text):
            expected, _ = model(hg.tensor(torch.tensor([context[-6:]])))
            torch.testing.assert_close(logits[step], expected.data[0, -1], rtol=0, atol=1e-10)
            assert vocabulary.stoi[char] == int(expected.data[0, -1].argmax())
            context.append(vocabulary.stoi[char])


def test_the_cache_grows_by_one_position_per_token_and_rebuilds_when_full():
    model = _tiny_model(block=8)
    stepper = decoding.GPTStepper(model, keep=4)
    with hg.no_grad():
        stepper.start(torch.tensor([1, 2, 3]))
        assert stepper.cache.length == 3 and stepper.rebuilds == 1
        for n in range(5):
            stepper.step(n)
        assert stepper.cache.length == 8 and stepper.rebuilds == 1
        stepper.step(0)  # the 9th token: the window moves to the last 4, one prefill
        assert stepper.cache.length == 4 and stepper.rebuilds == 2
        assert stepper.cache._keys[0].shape == (1, 2, 8, 4)  # (B, heads, capacity, hd)


# ---------------------------------------------------------------------------- the next token
def test_top_k_keeps_the_k_largest_scores():
    logits = torch.tensor([1.0, 4.0, 3.0, 2.0])
    scores = decoding.filter_scores(logits, top_k=2)
    assert torch.isinf(scores[[0, 3]]).all() and scores[[1, 2]].tolist() == [4.0, 3.0]


def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p():
    probs = torch.tensor([0.1, 0.5, 0.3, 0.1], dtype=torch.float64)
    logits = probs.log()
    kept = lambda p: (~torch.isinf(decoding.filter_scores(logits, top_p=p))).nonzero().flatten()  # noqa: E731
    assert kept(0.5).tolist() == [1]  # 0.5 alone reaches 0.5
    assert kept(0.6).tolist() == [1, 2]  # 0.5 + 0.3
    tied = kept(0.85).tolist()  # the first of the two 0.1s (mass 0.8 before it) is in
    assert len(tied) == 3 and {1, 2} < set(tied)
    assert kept(0.95).tolist() == [0, 1, 2, 3]
    assert kept(0.01).tolist() == [1]  # always the likeliest
    assert kept(1.0).tolist() == [0, 1, 2, 3]


def test_temperature_scales_and_greedy_takes_the_argmax():
    logits = torch.tensor([0.0, 2.0, 1.0])
    assert decoding.filter_scores(logits, temperature=0.5).tolist() == [0.0, 4.0, 2.0]
    assert decoding.choose_next(logits, greedy=True) == 1
    draws = {decoding.choose_next(logits, top_k=1, generator=torch.Generator().manual_seed(s))
             for s in range(20)}
    assert draws == {1}
    with pytest.raises(ValueError, match="top_p must be in \\(0, 1\\]"):
        decoding.check_sampling_options(top_p=1.5)


# ---------------------------------------------------------------------------- data, scoring
def test_random_windows_are_shifted_pairs_from_a_seeded_generator():
    ids = torch.arange(50)
    first = list(G.RandomWindows(ids, 3, 8, steps=4, generator=torch.Generator().manual_seed(2)))
    again = list(G.RandomWindows(ids, 3, 8, steps=4, generator=torch.Generator().manual_seed(2)))
    assert len(first) == 4 and all(torch.equal(a.data, b.data) for (a, _), (b, _) in
                                   zip(first, again, strict=True))
    for x, y in first:
        assert x.shape == (3, 8) and torch.equal(y.data, x.data + 1)
        assert int(y.data.max()) <= 49


def test_window_nats_on_a_text_shorter_than_the_block():
    """A text shorter than the block is one window as long as the text, whatever the
    stride asked for (up to the block size); a stride past the block size is refused."""
    model = _tiny_model(block=8)
    ids = torch.randint(0, 7, (5,), generator=torch.Generator().manual_seed(1))
    assert G.window_nats(model, ids, stride=6)[1] == 4
    assert G.window_nats(model, ids)[1] == 4
    with pytest.raises(ValueError, match="block size 8"):
        G.window_nats(model, ids, stride=9)


@pytest.mark.parametrize("stride", [None, 3, 1])
def test_window_nats_scores_every_character_once(stride):
    model = _tiny_model(block=8)
    ids = torch.randint(0, 7, (37,), generator=torch.Generator().manual_seed(0))
    total, count = G.window_nats(model, ids, stride=stride, batch_size=4)
    assert count == 36
    if stride is None:  # consecutive windows: the direct sum
        expected = 0.0
        with hg.no_grad():
            for start in list(range(0, 29, 8)) + [28]:
                if start == 28:  # the last window, only the targets not scored yet
                    first_new = 32 - start
                else:
                    first_new = 0
                x = ids[start:start + 8]
                logits, _ = model(hg.tensor(x.unsqueeze(0)))
                nll = -torch.log_softmax(logits.data[0], -1)[torch.arange(8), ids[start + 1:
                                                                                  start + 9]]
                expected += nll[first_new:].sum().item()
        assert total == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------------------- the commands
def test_train_writes_results_checkpoint_and_resumes_exactly(tmp_path, text_file):
    whole, half = tmp_path / "whole", tmp_path / "half"
    args = ["train", "gpt", "--dataset", str(text_file), "--no-plots", *TINY]
    assert main([*args, "--epochs", "2", "--out", str(whole)]) == 0
    results = json.loads((whole / "results.json").read_text())
    assert results["model"] == "gpt" and results["epochs_done"] == 2 and results["steps"] == 10
    assert results["valid"]["chars"] == results["sizes"]["valid"] - 1
    assert len(results["sample"]) == 1 + 20
    state = load_state(whole / "checkpoint.safetensors")
    assert state["kind"] == "gpt" and state["vocabulary"]["chars"] == sorted(set(TEXT))
    # one epoch, then resume for the second: the same weights, bit for bit
    assert main([*args, "--epochs", "2", "--out", str(half), "--scheduler", "none"]) == 0
    assert main([*args, "--epochs", "1", "--out", str(half / "a"), "--scheduler", "none"]) == 0
    assert main(["train", "gpt", "--resume", str(half / "a" / "checkpoint.safetensors"),
                 "--epochs", "2", "--quiet", "--no-plots"]) == 0
    resumed = load_state(half / "a" / "checkpoint.safetensors")["model"]
    straight = load_state(half / "checkpoint.safetensors")["model"]
    for key, value in straight.items():
        assert torch.equal(getattr(resumed[key], "data", resumed[key]),
                           getattr(value, "data", value)), key


def test_resume_refuses_a_changed_setting(tmp_path, text_file, capsys):
    assert main(["train", "gpt", "--dataset", str(text_file), "--epochs", "1", "--out",
                 str(tmp_path), "--no-plots", *TINY]) == 0
    assert main(["train", "gpt", "--resume", str(tmp_path / "checkpoint.safetensors"),
                 "--n-embd", "32"]) == 2
    assert "--n-embd 32 (the checkpoint has 16)" in capsys.readouterr().err


@pytest.fixture
def checkpoint(tmp_path_factory, text_file):
    out = tmp_path_factory.mktemp("gpt")
    assert main(["train", "gpt", "--dataset", str(text_file), "--epochs", "1",
                 "--out", str(out), "--no-plots", *TINY]) == 0
    return str(out / "checkpoint.safetensors")


def test_sample_a_gpt_checkpoint_with_and_without_the_cache(checkpoint, capsys):
    capsys.readouterr()
    texts = []
    for extra in ([], ["--no-cache"], ["--top-p", "0.9"]):
        assert main(["sample", checkpoint, "--prompt", "All:", "--length", "40",
                     "--temperature", "0.8", "--seed", "3", *extra]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1]  # 40 characters past a block of 16: the window moved
    assert texts[0].startswith("All:") and len(texts[0]) == len("All:") + 40 + 1
    assert set(texts[2][:-1]) <= set(TEXT)
    assert main(["sample", checkpoint, "--prompt", "ROMEO: qx"]) == 2
    assert "outside the model's vocabulary" in capsys.readouterr().err


def test_evaluate_a_gpt_checkpoint(checkpoint, tmp_path, capsys):
    path = tmp_path / "odd.txt"
    path.write_text(TEXT[:300] + "ZZ", encoding="utf-8")
    assert main(["evaluate", checkpoint, "--text", str(path), "--json",
                 str(tmp_path / "e.json")]) == 0
    figures = json.loads((tmp_path / "e.json").read_text())
    assert figures["chars"] == 299 and figures["unknown"] == {"Z": 2}
    model, vocabulary, _, kind = decoding.load_language_model(checkpoint)
    total, count = G.window_nats(model, vocabulary.encode(TEXT[:300]))
    assert kind == "gpt" and figures["nats_per_char"] == pytest.approx(total / count)


def test_sampling_speed_reports_both_rates_on_the_same_text():
    model, vocabulary = _tiny_model(block=8), Vocabulary("abcdefg")
    speed = decoding.sampling_speed(model, vocabulary, "ab", length=20, keep=4)
    assert speed["same_text"] and len(speed["text"]) == 20
    assert speed["cached_tokens_per_second"] > 0 and speed["uncached_tokens_per_second"] > 0


# ---------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_step_and_decoding_on_cuda_equal_cpu():
    config = G.GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, batch_size=3)
    torch.manual_seed(0)
    cpu = G.build_model(config, 11).double()
    gpu = G.build_model(config, 11).double().to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    ids = torch.randint(0, 11, (100,))
    results = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        optimizer, losses = G.build_optimizer(config, model), []
        batches = G.RandomWindows(ids, 3, 8, 3, torch.Generator().manual_seed(0), device)
        for x, y in batches:
            _, loss = model(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        text = "".join(decoding.generate(model, Vocabulary("abcdefghijk"), "abc", 12,
                                         greedy=True, device=device))
        results.append((losses, {k: v.data.cpu() for k, v in model.state_dict().items()},
                        text))
    assert results[1][0] == pytest.approx(results[0][0])
    for key, value in results[0][1].items():
        torch.testing.assert_close(results[1][1][key], value, msg=key)
    assert results[1][2] == results[0][2]
