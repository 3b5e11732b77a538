"""The translator: shapes, one float64 forward and backward against a torch.nn twin, cached
vs uncached decoding (greedy and beam: same tokens, same logits), scoring, a tiny
`handgrad train translator` run, `handgrad translate` on its checkpoint, resume, errors,
and a CUDA case."""

import json
import math

import pytest
import torch

from handgrad._tensor import Tensor
from handgrad.cli import main
from handgrad.models import translator as tr

PAIRS = [("Go.", "Va !"), ("Go.", "Marche."), ("Hi.", "Salut !"), ("Run!", "Cours !"),
         ("Wait.", "Attends."), ("I'm tired.", "Je suis fatigué."), ("Get up.", "Lève-toi."),
         ("Don't go.", "N'y va pas."), ("Tom left.", "Tom est parti."), ("I see.", "Je vois."),
         ("Who is it?", "Qui est-ce ?"), ("Help!", "À l'aide !"), ("I'm sad.", "Je suis triste."),
         ("Tom is sad.", "Tom est triste."), ("I left.", "Je suis parti."),
         ("We see.", "Nous voyons."), ("Come in.", "Entrez."), ("I'm here.", "Je suis là.")]
TINY = dict(d_model=16, heads=2, encoder_layers=2, decoder_layers=2, feedforward=32,
            dropout=0.0, max_positions=24)


def _model(norm_first=False, seed=0, dtype=torch.float32, **changes):
    torch.manual_seed(seed)
    config = tr.TranslatorConfig(**{**TINY, "norm_first": norm_first, **changes})
    data = tr.prepare_data(config, pairs=PAIRS)
    model = tr.build_model(config, data)
    if dtype == torch.float64:
        model.double()
    with torch.no_grad():  # random biases and norms: decoding must use every parameter
        for p in model.parameters():
            if p.ndim == 1:
                p.data.normal_(0, 0.5)
    return model.eval(), data


def _source_batch(data, sentences=("I'm tired.", "Go.", "Tom is sad here.")):
    return Tensor(tr.pad_batch([data.source_tokenizer.encode(s, add_bos=False)
                                for s in sentences]))


def test_shapes_tying_and_loss():
    model, data = _model()
    batches = tr.PairBatches(data.splits.train.pairs, data.source_tokenizer,
                             data.target_tokenizer, 4, max_positions=24, shuffle=False)
    src, tgt_in, tgt_out = next(iter(batches))
    assert src.shape[0] == tgt_in.shape[0] == 4 and tgt_in.shape == tgt_out.shape
    assert (tgt_in.data[:, 0] == 1).all()  # <bos>
    logits = model(src, tgt_in)
    assert logits.shape == (4, tgt_in.shape[1], len(data.target_tokenizer))
    assert model.output.weight is model.target_embedding.weight  # tied
    loss = tr.build_loss(model.config)(logits, tgt_out)
    assert math.isfinite(loss.item())


def _torch_twin(model):
    """The same network written with torch.nn, holding the handgrad model's weights."""
    import torch.nn as tnn

    config = model.config

    class Twin(tnn.Module):
        def __init__(self):
            super().__init__()
            self.source_embedding = tnn.Embedding(*model.source_embedding.weight.shape)
            self.target_embedding = tnn.Embedding(*model.target_embedding.weight.shape)
            self.transformer = tnn.Transformer(
                config.d_model, config.heads, config.encoder_layers, config.decoder_layers,
                config.feedforward, 0.0, batch_first=True, norm_first=config.norm_first)
            self.output = tnn.Linear(config.d_model, model.output.weight.shape[0])
            self.output.weight = self.target_embedding.weight

        def forward(self, src, tgt):
            pe = model.positions.pe.data
            scale = math.sqrt(config.d_model)
            s = self.source_embedding(src) * scale + pe[:src.shape[1]]
            t = self.target_embedding(tgt) * scale + pe[:tgt.shape[1]]
            mask = tnn.Transformer.generate_square_subsequent_mask(tgt.shape[1],
                                                                   dtype=torch.float64)
            h = self.transformer(s, t, tgt_mask=mask, src_key_padding_mask=src == 0,
                                 memory_key_padding_mask=src == 0)
            return self.output(h)

    twin = Twin().double()
    twin.load_state_dict({k: v.data.clone() for k, v in model.state_dict().items()})
    return twin


@pytest.mark.parametrize("norm_first", [False, True])
def test_forward_and_backward_match_torch_float64(norm_first):
    model, data = _model(norm_first, dtype=torch.float64)
    model.train()  # dropout 0: the training path, with its gradients
    src = _source_batch(data)
    tgt = torch.tensor([[1, 5, 6, 7, 4], [1, 8, 4, 0, 0], [1, 9, 10, 11, 4]])
    target = torch.tensor([[5, 6, 7, 4, 2], [8, 4, 2, 0, 0], [9, 10, 11, 4, 2]])
    logits = model(src, Tensor(tgt))
    loss = tr.SequenceLoss(0.1)(logits, Tensor(target))
    loss.backward()
    twin = _torch_twin(model)
    expected = twin(src.data, tgt)
    expected_loss = torch.nn.functional.cross_entropy(
        expected.reshape(-1, expected.shape[-1]), target.reshape(-1), ignore_index=0,
        label_smoothing=0.1)
    expected_loss.backward()
    real = (tgt != 0).unsqueeze(-1)  # padded target positions are never scored
    torch.testing.assert_close(logits.data * real, expected.detach() * real)
    torch.testing.assert_close(loss.data, expected_loss.detach())
    grads = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad.data, grads[name].grad, msg=name)


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_and_uncached_decoding_agree(norm_first):
    model, data = _model(norm_first, dtype=torch.float64)
    src = _source_batch(data)
    cached, cached_logits = tr.greedy_decode(model, src, max_length=12)
    plain, plain_logits = tr.greedy_decode(model, src, max_length=12, use_cache=False)
    assert torch.equal(cached, plain)
    torch.testing.assert_close(cached_logits, plain_logits, rtol=1e-10, atol=1e-10)
    assert cached.shape[1] == cached_logits.shape[1] <= 11
    beam, beam_scores = tr.beam_search(model, src, beam=3, max_length=12)
    beam_plain, plain_scores = tr.beam_search(model, src, beam=3, max_length=12,
                                              use_cache=False)
    assert torch.equal(beam, beam_plain)
    torch.testing.assert_close(beam_scores, plain_scores, rtol=1e-10, atol=1e-10)


def test_beam_one_is_greedy_and_beam_scores_are_log_probabilities():
    model, data = _model(dtype=torch.float64)
    src = _source_batch(data)
    greedy, logits = tr.greedy_decode(model, src, max_length=10)
    beam, scores = tr.beam_search(model, src, beam=1, length_penalty=0.0, max_length=10)
    assert torch.equal(beam[:, :greedy.shape[1]], greedy)
    # the beam's score of a hypothesis is the sum of its tokens' log-probabilities
    wide, wide_scores = tr.beam_search(model, src, beam=4, length_penalty=0.0, max_length=10)
    for row in range(src.shape[0]):
        tokens = [1] + [t for t in wide[row].tolist() if t != 0]
        out = model(Tensor(src.data[row:row + 1]), Tensor(torch.tensor([tokens[:-1]])))
        log_p = out.data[0].log_softmax(-1).gather(1, torch.tensor(tokens[1:])[:, None]).sum()
        torch.testing.assert_close(wide_scores[row], log_p)
        assert wide_scores[row] >= scores[row] - 1e-9  # a wider beam finds no worse


def test_score_translations_multi_reference_and_exact_match():
    hypotheses = ["Va !", "Je suis fatiguée.", "Tom part."]
    references = [["Marche.", "Va\u202f!"], ["Je suis fatigué.", "Je suis fatiguée."],
                  ["Tom est parti."]]
    scores = tr.score_translations(hypotheses, references)
    assert scores["exact_match"] == round(2 / 3, 4)
    assert scores["sentences"] == 3 and scores["references"] == 5
    perfect = tr.score_translations(["Tom est parti."], [["Tom est parti."]])
    assert perfect["chrf"] == 100.0 and perfect["bleu"] == 100.0
    with pytest.raises(ValueError, match="2 translations for 1 reference sets"):
        tr.score_translations(["a", "b"], [["a"]])


def test_errors():
    with pytest.raises(ValueError, match="divisible by heads"):
        tr.TranslatorConfig(d_model=30, heads=4)
    with pytest.raises(ValueError, match="unknown case"):
        tr.TranslatorConfig(case="upper")
    model, data = _model()
    long = Tensor(torch.ones(1, 30, dtype=torch.int64))
    with pytest.raises(ValueError, match="30 tokens .* max_positions=24"):
        model(long, Tensor(torch.ones(1, 3, dtype=torch.int64)))
    with pytest.raises(ValueError, match="max_positions=24"):
        tr.translate(model, data.source_tokenizer, data.target_tokenizer, ["go " * 30])
    with pytest.raises(TypeError, match="a list of strings"):
        tr.translate(model, data.source_tokenizer, data.target_tokenizer, "Go.")
    with pytest.raises(ValueError, match="beam must be >= 1"):
        tr.beam_search(model, _source_batch(data), beam=0)


def _write_pairs(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_text("".join(f"{e}\t{f}\tCC-BY\n" for e, f in PAIRS * 2), encoding="utf-8")
    return path


def test_cli_train_translate_and_resume(tmp_path, capsys):
    data = _write_pairs(tmp_path)
    out = tmp_path / "run"
    common = ["train", "translator", "--dataset", str(data), "--d-model", "16", "--heads", "2",
              "--encoder-layers", "1", "--decoder-layers", "1", "--feedforward", "32",
              "--batch-size", "8", "--warmup-steps", "2", "--eval-every", "1", "--beam", "2",
              "--valid-fraction", "0.2", "--test-fraction", "0.2", "--quiet", "--no-plots"]
    assert main([*common, "--epochs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "chrF" in printed and "exact match" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["epochs_done"] == 2 and results["test"]["beam"] == 2
    assert {"bleu", "chrf", "exact_match"} <= set(results["test"])
    assert "valid_chrf" in results["history"][-1]
    assert len(results["examples"]) == min(8, results["sizes"]["test"]["sentences"])
    checkpoint = out / "checkpoint.safetensors"
    # resume: the schedule was planned for 2 epochs, so the run is complete
    assert main(["train", "translator", "--resume", str(checkpoint), "--quiet",
                 "--no-plots"]) == 0
    assert "no epochs left" in capsys.readouterr().out
    assert main(["train", "translator", "--resume", str(checkpoint), "--d-model", "32"]) == 2
    assert "cannot change" in capsys.readouterr().err
    # translate: arguments, --file (blank lines kept), unknown words reported
    assert main(["translate", str(checkpoint), "I'm tired.", "Go.", "--beam", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    sentences = tmp_path / "in.txt"
    sentences.write_text("I'm tired.\n\nZorglub left.\n", encoding="utf-8")
    assert main(["translate", str(checkpoint), "--file", str(sentences)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3 and captured.out.splitlines()[1] == ""
    assert "line 3: not in the English vocabulary" in captured.err
    assert "Zorglub" in captured.err
    # a line past the model's positions: the others are still translated, it gets an
    # empty line and a message with its number, and the exit status says so
    sentences.write_text("Go.\n" + "go " * 200 + "\nI'm tired.\n", encoding="utf-8")
    assert main(["translate", str(checkpoint), "--file", str(sentences)]) == 1
    captured = capsys.readouterr()
    out_lines = captured.out.splitlines()
    assert len(out_lines) == 3 and out_lines[1] == "" and out_lines[0] and out_lines[2]
    assert "line 2: 201 tokens, but the model reads at most" in captured.err
    assert main(["translate", str(checkpoint), "Go.", "Zorglub left."]) == 0
    assert "sentence 2: not in the English vocabulary" in capsys.readouterr().err
    assert main(["translate", str(checkpoint)]) == 2
    assert "nothing to translate" in capsys.readouterr().err
    assert main(["translate", str(tmp_path / "missing.safetensors"), "Go."]) == 2
    capsys.readouterr()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model, data = _model(dtype=torch.float64)
    src = _source_batch(data)
    tokens, logits = tr.greedy_decode(model, src, max_length=10)
    model.to("cuda")
    cuda_tokens, cuda_logits = tr.greedy_decode(model, Tensor(src.data.cuda()), max_length=10)
    assert torch.equal(cuda_tokens.cpu(), tokens)
    torch.testing.assert_close(cuda_logits.cpu(), logits)
    batches = tr.PairBatches(data.splits.train.pairs, data.source_tokenizer,
                             data.target_tokenizer, 4, max_positions=24, device="cuda")
    src, tgt_in, tgt_out = next(iter(batches))
    model.train()
    loss = tr.SequenceLoss(0.1)(model(src, tgt_in), tgt_out)
    loss.backward()
    assert all(p.grad is not None and p.grad.data.is_cuda for p in model.parameters())
