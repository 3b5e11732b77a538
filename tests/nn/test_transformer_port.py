"""A PyTorch Transformer training script runs on handgrad by swapping its imports.

The script below (build_lm / train_lm, build_seq2seq / train_seq2seq / greedy) is written
once, the way a torch user writes it, against a namespace `ns` holding what it would
import (`torch` or `handgrad` as the tensor library, `nn`, `nn.functional` as F, `optim`).
It runs once with torch's modules and once with handgrad's, from the same weights (moved
torch -> handgrad through state_dict), on the same batches of real text, in float64:

* a character-level language model on Tiny Shakespeare: Embedding (padding_idx) scaled by
  sqrt(d), the sinusoidal positional encoding built by hand in the script (torch has
  none; a non-persistent buffer filled through slice assignment), nn.TransformerEncoder
  of pre-norm GELU layers, batch_first, the causal mask of
  nn.Transformer.generate_square_subsequent_mask with is_causal=True and a key padding
  mask (rows of different lengths, right-padded), a final LayerNorm and a Linear head;
  cross-entropy with label_smoothing and ignore_index (the padded targets), AdamW with
  two parameter groups (no weight decay on biases, norms and embeddings), clip_grad_norm_
  and a LambdaLR warm-up; then an evaluation pass in eval mode under no_grad;
* a character-level English -> French nn.Transformer (post-norm, one encoder and one
  decoder layer) on the eng-fra Tatoeba pairs with src / tgt / memory key padding masks
  and the causal tgt mask, teacher forcing, AdamW under OneCycleLR (which cycles Adam's
  beta1), clipping; then greedy decoding in eval mode, where torch's encoder takes its
  nested-tensor fast path (zeros at the padded source positions) and handgrad matches it.

With dropout 0 every step's loss and gradient norm, the evaluation loss, the decoded
tokens and their logits, and every trained weight agree with torch's to 1e-10; the
weights then go back handgrad -> torch and give torch's outputs. One run with dropout
0.1 checks that training stays finite and shaped, that dropout acts in train mode and
not in eval mode (where torch's outputs are matched again).

The data is read from $HANDGRAD_DATA (default /work/shared/data); a test is skipped,
saying which file it looked for, when its text is absent.
"""

from __future__ import annotations

import math
import os
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
import torch.optim as toptim

import handgrad as hg
import handgrad.nn.functional as HF
import handgrad.optim as hoptim
from handgrad import nn as hnn

pytestmark = [pytest.mark.usefixtures("one_thread"),  # small ops: threads only contend
              pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              # a bool key padding mask beside generate_square_subsequent_mask's float
              # one, as torch's tutorials write it: both libraries warn, and allow it
              pytest.mark.filterwarnings("ignore:Support for mismatched")]

DATA = Path(os.environ.get("HANDGRAD_DATA", "/work/shared/data"))
TORCH = types.SimpleNamespace(lib=torch, nn=tnn, F=TF, optim=toptim)
HANDGRAD = types.SimpleNamespace(lib=hg, nn=hnn, F=HF, optim=hoptim)
PAD, BOS, EOS = 0, 1, 2
TOL = dict(rtol=1e-10, atol=1e-12)
# Weights: the key part of in_proj_bias has no gradient in exact arithmetic (q . b_k is
# the same for every key, and softmax ignores it), so it receives rounding noise of
# ~1e-17 on either side, which Adam divides by sqrt(v) + eps = ~1e-8: it moves by ~1e-12
# in each library, differently. An absolute 1e-10 covers that noise and nothing else.
WEIGHT_TOL = dict(rtol=1e-10, atol=1e-10)


def _text(name):
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not found (set HANDGRAD_DATA to the folder holding {name})")
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- the user's script


def positional_encoding(ns, d_model, max_len):
    """The classic "Attention Is All You Need" table, as torch tutorials write it."""
    lib, nn = ns.lib, ns.nn

    class PositionalEncoding(nn.Module):
        def __init__(self):
            super().__init__()
            position = lib.arange(max_len).unsqueeze(1)
            div_term = lib.exp(lib.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
            pe = lib.zeros(max_len, d_model)
            pe[:, 0::2] = lib.sin(position * div_term)
            pe[:, 1::2] = lib.cos(position * div_term)
            self.register_buffer("pe", pe.unsqueeze(0), persistent=False)

        def forward(self, x):  # (N, T, E)
            return x + self.pe[:, :x.size(1)]

    return PositionalEncoding()


def build_lm(ns, vocab, d=32, nhead=4, ff=64, layers=2, max_len=64, dropout=0.0):
    nn = ns.nn

    class CharTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, d, padding_idx=PAD)
            self.pos = positional_encoding(ns, d, max_len)
            self.drop = nn.Dropout(dropout)
            layer = nn.TransformerEncoderLayer(d, nhead, ff, dropout, activation="gelu",
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d),
                                                 enable_nested_tensor=False)
            self.head = nn.Linear(d, vocab)

        def forward(self, x):
            h = self.drop(self.pos(self.embed(x) * math.sqrt(d)))
            mask = nn.Transformer.generate_square_subsequent_mask(x.size(1), dtype=h.dtype)
            h = self.encoder(h, mask=mask, src_key_padding_mask=x == PAD, is_causal=True)
            return self.head(h)

    return CharTransformer()


def lm_loss(ns, logits, y):
    return ns.F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                              ignore_index=PAD, label_smoothing=0.1)


def train_lm(ns, model, batches, warmup=3):
    lib, nn, optim = ns.lib, ns.nn, ns.optim
    decay = [p for name, p in model.named_parameters() if p.dim() >= 2 and "embed" not in name]
    rest = [p for name, p in model.named_parameters() if p.dim() < 2 or "embed" in name]
    opt = optim.AdamW([{"params": decay, "weight_decay": 0.1},
                       {"params": rest, "weight_decay": 0.0}], lr=3e-3, betas=(0.9, 0.95))
    sched = optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
    model.train()
    losses, norms = [], []
    for x, y in batches[:-1]:
        x, y = lib.tensor(x), lib.tensor(y)
        loss = lm_loss(ns, model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), 0.5)))
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    with lib.no_grad():
        x, y = batches[-1]
        logits = model(lib.tensor(x))
        val = lm_loss(ns, logits, lib.tensor(y)).item()
    return losses, norms, val, logits


def build_seq2seq(ns, src_vocab, tgt_vocab, d=32, nhead=4, ff=64, max_len=64, dropout=0.0):
    nn = ns.nn

    class Translator(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = nn.Embedding(src_vocab, d, padding_idx=PAD)
            self.tgt_embed = nn.Embedding(tgt_vocab, d, padding_idx=PAD)
            self.pos = positional_encoding(ns, d, max_len)
            self.transformer = nn.Transformer(d, nhead, 1, 1, ff, dropout, activation="gelu",
                                              batch_first=True)
            self.out = nn.Linear(d, tgt_vocab)

        def encode(self, src):
            return self.transformer.encoder(self.pos(self.src_embed(src) * math.sqrt(d)),
                                            src_key_padding_mask=src == PAD)

        def decode(self, tgt, memory, src):
            h = self.pos(self.tgt_embed(tgt) * math.sqrt(d))
            mask = nn.Transformer.generate_square_subsequent_mask(tgt.size(1), dtype=h.dtype)
            h = self.transformer.decoder(h, memory, tgt_mask=mask, tgt_is_causal=True,
                                         tgt_key_padding_mask=tgt == PAD,
                                         memory_key_padding_mask=src == PAD)
            return self.out(h)

        def forward(self, src, tgt):
            s = self.pos(self.src_embed(src) * math.sqrt(d))
            t = self.pos(self.tgt_embed(tgt) * math.sqrt(d))
            mask = nn.Transformer.generate_square_subsequent_mask(tgt.size(1), dtype=t.dtype)
            h = self.transformer(s, t, tgt_mask=mask, src_key_padding_mask=src == PAD,
                                 tgt_key_padding_mask=tgt == PAD,
                                 memory_key_padding_mask=src == PAD, tgt_is_causal=True)
            return self.out(h)

    return Translator()


def train_seq2seq(ns, model, batches):
    lib, nn, F, optim = ns.lib, ns.nn, ns.F, ns.optim
    opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=len(batches))
    model.train()
    losses, norms = [], []
    for src, tgt in batches:
        src, tgt = lib.tensor(src), lib.tensor(tgt)
        logits = model(src, tgt[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt[:, 1:].reshape(-1),
                               ignore_index=PAD, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), 1.0)))
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses, norms


def greedy(ns, model, src, steps):
    """Greedy decoding in eval mode: the memory once, the decoder over the growing prefix."""
    lib = ns.lib
    model.eval()
    with lib.no_grad():
        src = lib.tensor(src)
        memory = model.encode(src)
        tgt = lib.full((src.size(0), 1), BOS, dtype=lib.int64)
        for _ in range(steps):
            logits = model.decode(tgt, memory, src)[:, -1]
            tgt = lib.cat([tgt, logits.argmax(-1, keepdim=True)], dim=1)
    return memory, tgt, logits


# ---------------------------------------------------------------- data and helpers


def lm_batches(text, stoi, n_batches=7, batch=6, block=32, seed=0):
    """Windows of the play, each row cut to its own length and right-padded with PAD
    (whose targets are ignored); the last batch is for evaluation."""
    rng = np.random.default_rng(seed)
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    batches = []
    for _ in range(n_batches):
        starts = rng.integers(0, len(data) - block - 1, size=batch)
        chunk = np.stack([data[s:s + block + 1] for s in starts])
        for row, length in zip(chunk, rng.integers(block // 2, block + 1, size=batch)):
            row[length:] = PAD
        batches.append((chunk[:, :-1].copy(), chunk[:, 1:].copy()))
    return batches


def pair_batches(pairs, src_stoi, tgt_stoi, n_batches=5, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(n_batches):
        chosen = [pairs[i] for i in rng.choice(len(pairs), size=batch, replace=False)]
        src = [[src_stoi[c] for c in en] for en, _ in chosen]
        tgt = [[BOS] + [tgt_stoi[c] for c in fr] + [EOS] for _, fr in chosen]
        width_s, width_t = max(map(len, src)), max(map(len, tgt))
        batches.append((np.array([s + [PAD] * (width_s - len(s)) for s in src]),
                        np.array([t + [PAD] * (width_t - len(t)) for t in tgt])))
    return batches


def _value(tensor):
    return tensor.data if isinstance(tensor, hg.Tensor) else tensor.detach()


def _twins(build, *args, **options):
    torch.manual_seed(0)
    theirs = build(TORCH, *args, **options).double()
    ours = build(HANDGRAD, *args, **options).double()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _same_weights(ours, theirs):
    state = ours.state_dict()
    assert state.keys() == theirs.state_dict().keys()
    for name, value in theirs.state_dict().items():
        torch.testing.assert_close(_value(state[name]), value, **WEIGHT_TOL, msg=name)


def _back_to_torch(build, ours, *args):
    back = build(TORCH, *args).double()
    back.load_state_dict({name: _value(v) for name, v in ours.state_dict().items()})
    return back


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def shakespeare():
    text = _text("tinyshakespeare.txt")
    chars = sorted(set(text))
    stoi = {c: i + 1 for i, c in enumerate(chars)}  # 0 is PAD
    return lm_batches(text, stoi), len(chars) + 1


@pytest.fixture(scope="module")
def eng_fra():
    lines = _text("eng-fra-tatoeba-5k.tsv").splitlines()
    pairs = [tuple(line.split("\t")[:2]) for line in lines if line.count("\t") >= 1]
    pairs = [(en, fr) for en, fr in pairs if len(en) <= 24 and len(fr) <= 28]
    src_chars = sorted({c for en, _ in pairs for c in en})
    tgt_chars = sorted({c for _, fr in pairs for c in fr})
    src_stoi = {c: i + 1 for i, c in enumerate(src_chars)}
    tgt_stoi = {c: i + 3 for i, c in enumerate(tgt_chars)}  # PAD, BOS, EOS first
    return pairs, src_stoi, tgt_stoi, len(src_chars) + 1, len(tgt_chars) + 3


def test_char_transformer_lm_script_runs_on_handgrad_by_swapping_imports(shakespeare):
    batches, vocab = shakespeare
    assert any((x == PAD).any() for x, _ in batches)  # key padding is exercised
    ours, theirs = _twins(build_lm, vocab)

    expected = train_lm(TORCH, theirs, batches)
    actual = train_lm(HANDGRAD, ours, batches)
    np.testing.assert_allclose(actual[0], expected[0], **TOL)  # training losses
    np.testing.assert_allclose(actual[1], expected[1], **TOL)  # gradient norms
    np.testing.assert_allclose(actual[2], expected[2], **TOL)  # eval loss
    torch.testing.assert_close(actual[3].data, expected[3], **TOL)
    assert expected[0][-1] < expected[0][0]  # it learned something
    assert max(expected[1]) > 0.5  # clipping was active
    _same_weights(ours, theirs)

    back = _back_to_torch(build_lm, ours, vocab).eval()
    x = torch.tensor(batches[0][0])
    with torch.no_grad():
        torch.testing.assert_close(back(x), ours(hg.tensor(x.numpy())).data, **TOL)


def test_translator_script_runs_on_handgrad_by_swapping_imports(eng_fra):
    pairs, src_stoi, tgt_stoi, src_vocab, tgt_vocab = eng_fra
    batches = pair_batches(pairs, src_stoi, tgt_stoi)
    ours, theirs = _twins(build_seq2seq, src_vocab, tgt_vocab)

    expected = train_seq2seq(TORCH, theirs, batches)
    actual = train_seq2seq(HANDGRAD, ours, batches)
    np.testing.assert_allclose(actual[0], expected[0], **TOL)
    np.testing.assert_allclose(actual[1], expected[1], **TOL)
    assert expected[0][-1] < expected[0][0]
    _same_weights(ours, theirs)

    src = batches[0][0]
    assert (src == PAD).any(axis=1).sum() >= 2  # padded sources: torch's fast path runs
    memory, tokens, logits = greedy(TORCH, theirs, src, steps=6)
    our_memory, our_tokens, our_logits = greedy(HANDGRAD, ours, src, steps=6)
    torch.testing.assert_close(our_memory.data, memory, **TOL)
    assert (memory[torch.tensor(src == PAD)] == theirs.transformer.encoder.norm.bias).all()
    assert torch.equal(our_tokens.data, tokens)
    torch.testing.assert_close(our_logits.data, logits, **TOL)

    back = _back_to_torch(build_seq2seq, ours, src_vocab, tgt_vocab)
    back_memory, back_tokens, back_logits = greedy(TORCH, back, src, steps=6)
    torch.testing.assert_close(back_memory, our_memory.data, **TOL)
    assert torch.equal(back_tokens, tokens)
    torch.testing.assert_close(back_logits, our_logits.data, **TOL)


def test_dropout_run_is_finite_and_eval_still_matches_torch(shakespeare, eng_fra):
    batches, vocab = shakespeare
    ours, theirs = _twins(build_lm, vocab, dropout=0.1)
    hg.manual_seed(0)
    losses, norms, val, logits = train_lm(HANDGRAD, ours, batches[:3])
    assert np.isfinite(losses).all() and np.isfinite(norms).all() and math.isfinite(val)
    assert logits.shape == (*batches[-1][0].shape, vocab)

    x = hg.tensor(batches[0][0])
    ours.train()
    assert not torch.equal(ours(x).data, ours(x).data)  # dropout acts in training
    ours.eval()
    back = _back_to_torch(build_lm, ours, vocab).eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x).data, back(torch.tensor(batches[0][0])), **TOL)

    pairs, src_stoi, tgt_stoi, src_vocab, tgt_vocab = eng_fra
    pb = pair_batches(pairs, src_stoi, tgt_stoi, n_batches=2)
    ours, theirs = _twins(build_seq2seq, src_vocab, tgt_vocab, dropout=0.1)
    losses, norms = train_seq2seq(HANDGRAD, ours, pb)
    assert np.isfinite(losses).all() and np.isfinite(norms).all()
    memory, tokens, logits = greedy(HANDGRAD, ours, pb[0][0], steps=3)
    assert tokens.shape == (len(pb[0][0]), 4) and bool(logits.isfinite().all())
    back = _back_to_torch(build_seq2seq, ours, src_vocab, tgt_vocab)
    torch.testing.assert_close(greedy(TORCH, back, pb[0][0], steps=3)[2], logits.data, **TOL)
