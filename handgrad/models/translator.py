"""An English -> French translator: handgrad's nn.Transformer between two word vocabularies.

    config = REFERENCE_CONFIGS["tatoeba-5k"]             # or TranslatorConfig(d_model=128, ...)
    data = prepare_data(config)                          # splits, tokenizers, encoded pairs
    model = build_model(config, data)                    # a Translator
    logits = model(src, tgt_in)                          # (B, S), (B, T) ids -> (B, T, V)
    translate(model, data.source_tokenizer, data.target_tokenizer, ["I'm tired."], beam=4)
    score_translations(hypotheses, references)   # BLEU, chrF, exact

The model (`Translator`): source and target token embeddings scaled by sqrt(d_model),
plus Vaswani et al.'s sinusoidal positions (nn.SinusoidalPositionalEncoding) and
dropout; nn.Transformer(batch_first=True) with a padding mask on the source (used by the
encoder's self-attention and by the decoder's attention over the memory) and the causal
mask on the target; a Linear output projection whose weight is the target embedding's
(weight tying, `tie_embeddings`). The target is not padding-masked: with the causal mask
a real position never sees the padding after it, and the loss ignores padded targets.

Training is teacher forcing: the decoder reads ``<bos> y1 .. yn`` and is scored on
``y1 .. yn <eos>`` with label-smoothed cross-entropy (`SequenceLoss`, ignoring ``<pad>``).
The schedule is a linear warm-up then cosine decay to 0 (per step); gradients are
clipped by their joint norm. The command is models/translator_cli.py.

Decoding (`greedy_decode`, `beam_search`) runs the encoder once, then the decoder one
token at a time with a KV cache (`DecoderCache`): each decoder layer keeps the keys and
values of its self-attention for every position decoded so far in preallocated
(B, heads, T_max, head_dim) buffers, and the keys and values of its attention over the
memory, computed once. A new token then costs one position's projections and attention
over the t cached positions, O(t), instead of re-running the decoder over the whole
prefix, O(t^2). `use_cache=False` runs the whole prefix through nn.TransformerDecoder at
every step: the reference the tests compare against (same tokens, same logits). Beam
search keeps `beam` hypotheses per sentence (finished ones are carried with their score
unchanged) and ranks the finished ones by log p / lp(length), GNMT's length penalty
lp = ((5 + length) / 6) ** alpha (alpha = `length_penalty`; 0: none).

Scores (`score_translations`): sacrebleu's corpus BLEU and chrF against every reference
of each English sentence (multi-reference), and exact match: the translation has the same
words and punctuation as one of the references, as the target tokenizer splits them
(case kept; typographic apostrophes and spaces do not count).

Left out: subword vocabularies, sampling, and batching by length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from handgrad import nn
from handgrad._tensor import Tensor
from handgrad.autograd import no_grad
from handgrad.nn import functional as F

__all__ = [
    "TranslatorConfig", "REFERENCE_CONFIGS", "DATASETS", "OPTIMIZERS", "SCHEDULERS",
    "PreparedPairs", "prepare_data", "PairBatches", "Translator", "DecoderCache",
    "SequenceLoss", "build_model", "build_loss", "build_optimizer", "build_scheduler",
    "greedy_decode", "beam_search", "translate", "score_translations", "describe",
    "pad_batch",
]

OPTIMIZERS = ("adamw", "adam")
SCHEDULERS = ("cosine", "none")


@dataclass
class TranslatorConfig:
    """One training run of the English -> French translator."""

    # ---- data
    dataset: str = "tatoeba-5k"  # tatoeba-5k, or the path of a manythings-format TSV file
    data_seed: int = 0  # seed of the split by English sentence
    valid_fraction: float = 0.05  # share of the English sentences held out for validation
    test_fraction: float = 0.10  # share of the English sentences held out for the final score
    case: str = "truecase"  # tokenizer case rule: keep, lower or truecase (tokenizer.py)
    min_frequency: int = 1  # words seen fewer times in training become <unk>
    # ---- model
    d_model: int = 128  # width of embeddings and of every layer
    heads: int = 4  # attention heads (d_model must be divisible by it)
    encoder_layers: int = 2  # TransformerEncoderLayers
    decoder_layers: int = 2  # TransformerDecoderLayers
    feedforward: int = 512  # hidden width of each layer's feed-forward block
    dropout: float = 0.1  # dropout in the layers and after the embeddings
    norm_first: bool = False  # pre-norm layers (False: the original post-norm)
    tie_embeddings: bool = True  # the output projection reuses the target embedding matrix
    max_positions: int = 64  # positions in the sinusoidal table: the longest sentence in tokens
    # ---- training
    batch_size: int = 32  # sentence pairs per optimizer step
    optimizer: str = "adamw"  # one of OPTIMIZERS (betas 0.9, 0.98)
    lr: float = 1e-3  # peak learning rate, reached at the end of the warm-up
    weight_decay: float = 0.01  # decoupled weight decay (adamw) or L2 penalty (adam)
    scheduler: str = "cosine"  # per step: warm-up then cosine to 0, or none (warm-up, then flat)
    warmup_steps: int = 300  # steps of linear warm-up from lr / warmup_steps to lr
    label_smoothing: float = 0.1  # cross-entropy label smoothing
    clip_grad: float = 1.0  # clip the gradients' joint norm to this value (0: no clipping)
    epochs: int = 40  # passes over the training pairs
    seed: int = 0  # seed of the initial weights, batch order and dropout
    # ---- evaluation
    beam: int = 4  # beam size of the final test translations (1: greedy)
    length_penalty: float = 0.6  # alpha of GNMT's length penalty in beam search (0: none)
    eval_every: int = 5  # greedy chrF on the validation split every N epochs (0: never)

    def __post_init__(self):
        from handgrad.models.tokenizer import CASES

        for name, table in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS),
                            ("case", CASES)):
            if getattr(self, name) not in table:
                raise ValueError(f"TranslatorConfig: unknown {name} {getattr(self, name)!r}; "
                                 f"choose one of {', '.join(table)}")
        for name in ("d_model", "heads", "encoder_layers", "decoder_layers", "feedforward",
                     "max_positions", "batch_size", "epochs", "beam", "min_frequency"):
            if getattr(self, name) < 1:
                raise ValueError(f"TranslatorConfig: {name} must be >= 1, got "
                                 f"{getattr(self, name)}")
        if self.d_model % self.heads:
            raise ValueError(f"TranslatorConfig: d_model ({self.d_model}) must be divisible by "
                             f"heads ({self.heads})")
        for name in ("weight_decay", "clip_grad", "warmup_steps", "eval_every",
                     "length_penalty"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TranslatorConfig: {name} must be >= 0, got "
                                 f"{getattr(self, name)}")
        if not 0 <= self.dropout < 1 or not 0 <= self.label_smoothing < 1:
            raise ValueError(f"TranslatorConfig: dropout and label_smoothing must be in "
                             f"[0, 1), got {self.dropout}, {self.label_smoothing}")
        if not (0 < self.valid_fraction < 1 and 0 < self.test_fraction < 1
                and self.valid_fraction + self.test_fraction < 1):
            raise ValueError(f"TranslatorConfig: valid_fraction and test_fraction must be in "
                             f"(0, 1) with a sum below 1, got {self.valid_fraction}, "
                             f"{self.test_fraction}")
        if not self.lr > 0:
            raise ValueError(f"TranslatorConfig: lr must be positive, got {self.lr}")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> TranslatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TranslatorConfig: unknown fields {unknown}")
        return cls(**values)


def describe(config: TranslatorConfig) -> str:
    """e.g. 'Transformer 2+2 layers, d128 h4 ff512'."""
    return (f"Transformer {config.encoder_layers}+{config.decoder_layers} layers, "
            f"d{config.d_model} h{config.heads} ff{config.feedforward}"
            + (" pre-norm" if config.norm_first else ""))


# ---------------------------------------------------------------------------- data
@dataclass(frozen=True)
class DatasetSpec:
    note: str  # what it is, for --help


DATASETS = {"tatoeba-5k": DatasetSpec(
    "5,000 short English-French Tatoeba pairs, 2,597 English sentences "
    "(eng-fra-tatoeba-5k.tsv in --data-root or $HANDGRAD_DATA); or give the path of a "
    "manythings.org fra.txt")}

REFERENCE_CONFIGS = {"tatoeba-5k": TranslatorConfig()}


@dataclass
class PreparedPairs:
    """The splits, the two tokenizers and the encoded training pairs of a run."""

    splits: object  # DataSplits of TranslationPairs (train, valid, test)
    source_tokenizer: object  # WordTokenizer of the English side (fitted on train)
    target_tokenizer: object  # WordTokenizer of the French side (fitted on train)
    description: str  # what the data is
    unknown: dict  # split -> {"unknown", "words", "rate", "top"} for the English side


def _unknown_report(tokenizer, sentences) -> dict:
    batch = tokenizer.encode_batch(sentences)
    return {"unknown": batch.unknown, "words": batch.words,
            "rate": round(batch.unknown_rate, 4),
            "top": dict(batch.unknown_words.most_common(10))}


def prepare_data(config: TranslatorConfig, data_root=None, *, pairs=None,
                 tokenizers=None) -> PreparedPairs:
    """Split the pairs by English sentence (data_seed) and fit the tokenizers on the
    training split (or use `tokenizers`, a (source, target) pair, when resuming)."""
    from handgrad.data.datasets.translation import translation_splits
    from handgrad.models.tokenizer import WordTokenizer

    fractions = (1 - config.valid_fraction - config.test_fraction, config.valid_fraction,
                 config.test_fraction)
    path = None if config.dataset in DATASETS else config.dataset
    splits = translation_splits(path, root=data_root, fractions=fractions,
                                seed=config.data_seed, pairs=pairs)
    if tokenizers is None:
        train = splits.train.pairs
        tokenizers = (
            WordTokenizer.fit([e for e, _ in train], language="en", case=config.case,
                              min_frequency=config.min_frequency),
            WordTokenizer.fit([f for _, f in train], language="fr", case=config.case,
                              min_frequency=config.min_frequency))
    source, target = tokenizers
    unknown = {name: _unknown_report(source, part.sources)
               for name, part in (("train", splits.train), ("valid", splits.valid),
                                  ("test", splits.test))}
    return PreparedPairs(splits, source, target,
                         f"{splits.description}; vocabularies {len(source)} English / "
                         f"{len(target)} French words", unknown)


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> torch.Tensor:
    """int64 (B, T_max) of the id lists, padded at the end with pad_id."""
    length = max(len(s) for s in sequences)
    out = torch.full((len(sequences), length), pad_id, dtype=torch.int64)
    for row, sequence in enumerate(sequences):
        out[row, :len(sequence)] = torch.tensor(sequence, dtype=torch.int64)
    return out


class PairBatches:
    """The training batches: ``(src (B, S), tgt_in (B, T), tgt_out (B, T))`` Tensors, the
    pairs shuffled each epoch by ``generator``; ``tgt_in`` is ``<bos> y``, ``tgt_out`` is
    ``y <eos>`` (teacher forcing), all padded with 0 (``<pad>``)."""

    def __init__(self, pairs, source_tokenizer, target_tokenizer, batch_size: int, *,
                 max_positions: int, shuffle: bool = True, generator=None, device=None):
        self.sources = source_tokenizer.encode_batch([e for e, _ in pairs], add_bos=False).ids
        self.targets = target_tokenizer.encode_batch([f for _, f in pairs]).ids
        longest = max(max(map(len, self.sources)), max(map(len, self.targets)))
        if longest > max_positions:
            raise ValueError(f"PairBatches: a sentence has {longest} tokens but the model has "
                             f"max_positions={max_positions}; raise --max-positions")
        self.batch_size, self.shuffle, self.device = batch_size, shuffle, device
        self.generator = generator if generator is not None else torch.Generator()

    def __len__(self) -> int:
        return math.ceil(len(self.sources) / self.batch_size)

    def __iter__(self):
        n = len(self.sources)
        order = (torch.randperm(n, generator=self.generator).tolist() if self.shuffle
                 else list(range(n)))
        for start in range(0, n, self.batch_size):
            rows = order[start:start + self.batch_size]
            src = pad_batch([self.sources[i] for i in rows])
            tgt = pad_batch([self.targets[i] for i in rows])
            src, tgt = (t.to(self.device) if self.device is not None else t for t in (src, tgt))
            yield Tensor(src), Tensor(tgt[:, :-1]), Tensor(tgt[:, 1:])


# ---------------------------------------------------------------------------- the model
def _causal_mask(size: int, device) -> torch.Tensor:
    """bool (T, T): True above the diagonal (may not attend)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).triu(1)


class Translator(nn.Module):
    """Embeddings * sqrt(d) + sinusoidal positions -> nn.Transformer -> Linear to the target
    vocabulary (see the module docstring)."""

    def __init__(self, config: TranslatorConfig, source_vocab: int, target_vocab: int,
                 pad_id: int = 0) -> None:
        super().__init__()
        d = config.d_model
        self.config, self.pad_id = config, pad_id
        self.source_embedding = nn.Embedding(source_vocab, d)
        self.target_embedding = nn.Embedding(target_vocab, d)
        self.positions = nn.SinusoidalPositionalEncoding(d, config.max_positions,
                                                         dropout=config.dropout,
                                                         batch_first=True)
        self.transformer = nn.Transformer(d, config.heads, config.encoder_layers,
                                          config.decoder_layers, config.feedforward,
                                          config.dropout, batch_first=True,
                                          norm_first=config.norm_first)
        self.output = nn.Linear(d, target_vocab)
        with no_grad():  # N(0, 1/d): times sqrt(d) the embedded tokens have unit scale
            for embedding in (self.source_embedding, self.target_embedding):
                nn.init.normal_(embedding.weight, 0.0, d ** -0.5)
            nn.init.zeros_(self.output.bias)
        if config.tie_embeddings:
            self.output.weight = self.target_embedding.weight
        self.scale = math.sqrt(d)

    # ---- the training / reference path
    def embed_source(self, src: Tensor) -> Tensor:
        return self.positions(self.source_embedding(src) * self.scale)  # (B, S, d)

    def embed_target(self, tgt: Tensor) -> Tensor:
        return self.positions(self.target_embedding(tgt) * self.scale)  # (B, T, d)

    def encode(self, src: Tensor) -> tuple[Tensor, torch.Tensor]:
        """(memory (B, S, d), source padding mask (B, S) bool, True at <pad>)."""
        self._check_length("source", src)
        padding = src.data == self.pad_id
        memory = self.transformer.encoder(self.embed_source(src),
                                          src_key_padding_mask=padding)
        return memory, padding

    def decode(self, tgt_in: Tensor, memory: Tensor, padding: torch.Tensor) -> Tensor:
        """Logits (B, T, V) of every next token after each prefix of tgt_in."""
        self._check_length("target", tgt_in)
        mask = _causal_mask(tgt_in.shape[1], tgt_in.data.device)
        hidden = self.transformer.decoder(self.embed_target(tgt_in), memory, tgt_mask=mask,
                                          memory_key_padding_mask=padding,
                                          tgt_is_causal=True)
        return self.output(hidden)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        memory, padding = self.encode(src)
        return self.decode(tgt_in, memory, padding)

    def _check_length(self, what: str, ids: Tensor) -> None:
        if ids.ndim != 2:
            raise ValueError(f"Translator: the {what} must be (batch, length) token ids, got "
                             f"shape {tuple(ids.shape)}")
        if ids.shape[1] > self.config.max_positions:
            raise ValueError(f"Translator: the {what} has {ids.shape[1]} tokens (shape "
                             f"{tuple(ids.shape)}) but the model has max_positions="
                             f"{self.config.max_positions}; shorten the sentence")

    # ---- incremental decoding
    def start_cache(self, memory: Tensor, padding: torch.Tensor,
                    max_length: int) -> DecoderCache:
        return DecoderCache(self, memory, padding, max_length)

    def decode_step(self, tokens: torch.Tensor, cache: DecoderCache) -> Tensor:
        """Logits (B, V) of the token after `tokens` (B,), the next position of `cache`."""
        t = cache.length
        if t >= cache.capacity:
            raise ValueError(f"Translator.decode_step: the cache holds {cache.capacity} "
                             f"positions, all used; start it with a larger max_length")
        x = self.target_embedding(Tensor(tokens[:, None])) * self.scale  # (B, 1, d)
        x = x + Tensor(self.positions.pe[t:t + 1][None])
        for index, layer in enumerate(self.transformer.decoder.layers):
            if layer.norm_first:
                x = x + cache.self_attention(index, layer.norm1(x))
                x = x + cache.memory_attention(index, layer.norm2(x))
                x = x + _feed_forward(layer, layer.norm3(x))
            else:
                x = layer.norm1(x + cache.self_attention(index, x))
                x = layer.norm2(x + cache.memory_attention(index, x))
                x = layer.norm3(x + _feed_forward(layer, x))
        cache.length += 1
        if self.transformer.decoder.norm is not None:
            x = self.transformer.decoder.norm(x)
        return self.output(x)[:, 0]  # (B, V)


def _feed_forward(layer, x: Tensor) -> Tensor:
    return layer.linear2(layer.activation(layer.linear1(x)))  # dropout: off in decoding


def _heads(x: Tensor, heads: int) -> Tensor:
    batch, length, width = x.shape
    return x.reshape(batch, length, heads, width // heads).transpose(1, 2)  # (B, H, L, hd)


class DecoderCache:
    """The keys and values every decoder layer has seen: self-attention ones in
    (B, H, capacity, hd) buffers filled one position per step, and the memory's, projected
    once. `reorder(rows)` keeps the given batch rows (beam search)."""

    def __init__(self, model: Translator, memory: Tensor, padding: torch.Tensor,
                 capacity: int) -> None:
        if capacity > model.config.max_positions:
            raise ValueError(f"DecoderCache: {capacity} positions asked for, but the model has "
                             f"max_positions={model.config.max_positions}")
        self.capacity, self.length = capacity, 0
        layers = model.transformer.decoder.layers
        attention = layers[0].self_attn
        self.heads, self.head_dim = attention.num_heads, attention.head_dim
        batch, d = memory.shape[0], attention.embed_dim
        self.layers = layers
        self.keys = torch.zeros(len(layers), batch, self.heads, capacity, self.head_dim,
                                dtype=memory.dtype, device=memory.data.device)
        self.values = torch.zeros_like(self.keys)
        self.memory_keys, self.memory_values = [], []
        for layer in layers:
            weight, bias = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            k = F.linear(memory, weight[d:2 * d], None if bias is None else bias[d:2 * d])
            v = F.linear(memory, weight[2 * d:], None if bias is None else bias[2 * d:])
            self.memory_keys.append(_heads(k, self.heads).data)  # (B, H, S, hd)
            self.memory_values.append(_heads(v, self.heads).data)
        # additive mask (B, 1, 1, S): -inf at the source's padding
        self.memory_mask = torch.zeros(padding.shape, dtype=memory.dtype,
                                       device=memory.data.device).masked_fill(
            padding, float("-inf"))[:, None, None, :]

    def _attend(self, q: Tensor, k: torch.Tensor, v: torch.Tensor, mask, attention) -> Tensor:
        """softmax(q k^T / sqrt(hd) + mask) v over the heads, then out_proj: (B, 1, d)."""
        scores = (q @ Tensor(k).transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        if mask is not None:
            scores = scores + Tensor(mask)
        out = F.softmax(scores, dim=-1) @ Tensor(v)  # (B, H, 1, hd)
        batch = out.shape[0]
        out = out.transpose(1, 2).reshape(batch, 1, self.heads * self.head_dim)
        return attention.out_proj(out)

    def self_attention(self, index: int, x: Tensor) -> Tensor:
        attention = self.layers[index].self_attn
        qkv = F.linear(x, attention.in_proj_weight, attention.in_proj_bias)  # (B, 1, 3d)
        q, k, v = (_heads(part, self.heads) for part in qkv.chunk(3, dim=-1))
        t = self.length
        self.keys[index, :, :, t] = k.data[:, :, 0]
        self.values[index, :, :, t] = v.data[:, :, 0]
        return self._attend(q, self.keys[index, :, :, :t + 1],
                            self.values[index, :, :, :t + 1], None, attention)

    def memory_attention(self, index: int, x: Tensor) -> Tensor:
        attention = self.layers[index].multihead_attn
        d = attention.embed_dim
        bias = attention.in_proj_bias
        q = F.linear(x, attention.in_proj_weight[:d], None if bias is None else bias[:d])
        return self._attend(_heads(q, self.heads), self.memory_keys[index],
                            self.memory_values[index], self.memory_mask, attention)

    def reorder(self, rows: torch.Tensor) -> None:
        self.keys = self.keys[:, rows]
        self.values = self.values[:, rows]
        self.memory_keys = [k[rows] for k in self.memory_keys]
        self.memory_values = [v[rows] for v in self.memory_values]
        self.memory_mask = self.memory_mask[rows]


# ---------------------------------------------------------------------------- decoding
def _decode_length(src: Tensor, model: Translator, max_length: int | None) -> int:
    """Target positions to decode (with <bos>): 1.5 x the source length + 10, within the
    position table."""
    wanted = src.shape[1] * 3 // 2 + 10 if max_length is None else max_length
    return max(2, min(wanted, model.config.max_positions))


class _Decoder:
    """Next-token logits for a growing batch of prefixes, with or without the cache."""

    def __init__(self, model: Translator, memory, padding, capacity: int, use_cache: bool):
        self.model, self.use_cache = model, use_cache
        self.memory, self.padding = memory, padding
        self.cache = model.start_cache(memory, padding, capacity) if use_cache else None

    def next_logits(self, prefix: torch.Tensor) -> torch.Tensor:
        if self.use_cache:
            return self.model.decode_step(prefix[:, -1], self.cache).data  # (B, V)
        return self.model.decode(Tensor(prefix), self.memory, self.padding).data[:, -1]

    def reorder(self, rows: torch.Tensor) -> None:
        self.memory = Tensor(self.memory.data[rows])
        self.padding = self.padding[rows]
        if self.cache is not None:
            self.cache.reorder(rows)


def greedy_decode(model: Translator, src: Tensor, *, max_length: int | None = None,
                  use_cache: bool = True, bos_id: int = 1, eos_id: int = 2
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The most likely token at each step: (ids (B, L) without <bos>, padded with 0 after
    <eos>; logits (B, L, V) of every step)."""
    model.eval()
    with no_grad():
        memory, padding = model.encode(src)
        length = _decode_length(src, model, max_length)
        decoder = _Decoder(model, memory, padding, length, use_cache)
        batch = src.shape[0]
        prefix = torch.full((batch, 1), bos_id, dtype=torch.int64, device=src.data.device)
        done = torch.zeros(batch, dtype=torch.bool, device=src.data.device)
        all_logits = []
        for _ in range(length - 1):
            logits = decoder.next_logits(prefix)  # (B, V)
            all_logits.append(logits)
            token = logits.argmax(dim=-1).masked_fill(done, model.pad_id)
            prefix = torch.cat([prefix, token[:, None]], dim=1)
            done = done | (token == eos_id)
            if bool(done.all()):
                break
    return prefix[:, 1:], torch.stack(all_logits, dim=1)


def beam_search(model: Translator, src: Tensor, *, beam: int = 4, length_penalty: float = 0.6,
                max_length: int | None = None, use_cache: bool = True, bos_id: int = 1,
                eos_id: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The best of `beam` hypotheses per sentence by log p / lp(length): (ids (B, L)
    without <bos>, padded with 0; scores (B,) of the chosen ones)."""
    if beam < 1:
        raise ValueError(f"beam_search: beam must be >= 1, got {beam}")
    model.eval()
    with no_grad():
        memory, padding = model.encode(src)
        batch, device = src.shape[0], src.data.device
        rows = torch.arange(batch, device=device).repeat_interleave(beam)
        length = _decode_length(src, model, max_length)
        decoder = _Decoder(model, Tensor(memory.data[rows]), padding[rows], length, use_cache)
        prefix = torch.full((batch * beam, 1), bos_id, dtype=torch.int64, device=device)
        scores = torch.full((batch, beam), float("-inf"), dtype=memory.dtype, device=device)
        scores[:, 0] = 0.0  # the first step expands one hypothesis only
        done = torch.zeros(batch * beam, dtype=torch.bool, device=device)
        lengths = torch.zeros(batch * beam, dtype=memory.dtype, device=device)
        for _ in range(length - 1):
            logits = decoder.next_logits(prefix)
            log_probs = F.log_softmax(Tensor(logits), dim=-1).data  # (B*K, V)
            vocab = log_probs.shape[-1]
            # a finished hypothesis continues with <pad> at no cost, and with nothing else
            finished = torch.full_like(log_probs, float("-inf"))
            finished[:, model.pad_id] = 0.0
            log_probs = torch.where(done[:, None], finished, log_probs)
            candidates = (scores[:, :, None] + log_probs.view(batch, beam, vocab))
            scores, flat = candidates.view(batch, beam * vocab).topk(beam, dim=-1)
            parent = flat // vocab + torch.arange(batch, device=device)[:, None] * beam
            parent, token = parent.reshape(-1), (flat % vocab).reshape(-1)
            was_done = done[parent]
            lengths = lengths[parent] + (~was_done).to(lengths.dtype)
            done = was_done | (token == eos_id)
            prefix = torch.cat([prefix[parent], token[:, None]], dim=1)
            decoder.reorder(parent)
            if bool(done.all()):
                break
        penalty = ((5.0 + lengths) / 6.0) ** length_penalty
        final = scores.reshape(-1) / penalty
        final = torch.where(done, final, final - 1e4)  # unfinished ones rank last
        best = final.view(batch, beam).argmax(dim=-1)
        chosen = torch.arange(batch, device=device) * beam + best
    return prefix[chosen, 1:], scores.reshape(-1)[chosen]


def translate(model: Translator, source_tokenizer, target_tokenizer, sentences: Sequence[str],
              *, beam: int = 1, length_penalty: float = 0.6, batch_size: int = 64,
              device=None, use_cache: bool = True) -> list[str]:
    """French translations of `sentences` (English), greedy (beam=1) or by beam search.
    Words outside the English vocabulary are read as <unk> (see
    source_tokenizer.unknown_words to report them)."""
    if isinstance(sentences, str):
        raise TypeError("translate: sentences must be a list of strings, got one string")
    device = device or next(iter(model.parameters())).data.device
    out = []
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        ids = [source_tokenizer.encode(s, add_bos=False) for s in chunk]
        longest = max(map(len, ids))
        if longest > model.config.max_positions:
            raise ValueError(f"translate: a sentence has {longest} tokens but the model has "
                             f"max_positions={model.config.max_positions}; split it")
        src = Tensor(pad_batch(ids).to(device))
        if beam > 1:
            tokens, _ = beam_search(model, src, beam=beam, length_penalty=length_penalty,
                                    use_cache=use_cache)
        else:
            tokens, _ = greedy_decode(model, src, use_cache=use_cache)
        out.extend(target_tokenizer.decode(row) for row in tokens.tolist())
    return out


def score_translations(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """sacrebleu corpus BLEU and chrF (every reference of each sentence) and exact match
    against any reference (the same words and punctuation as tokenizer.split_words cuts
    them, case kept)."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"score_translations: {len(hypotheses)} translations for "
                         f"{len(references)} reference sets")
    most = max(len(r) for r in references)
    # sacrebleu takes reference streams: stream i holds each sentence's i-th reference
    streams = [[refs[i] if i < len(refs) else None for refs in references]
               for i in range(most)]
    bleu = sacrebleu.corpus_bleu(list(hypotheses), streams)
    chrf = sacrebleu.corpus_chrf(list(hypotheses), streams)

    from handgrad.models.tokenizer import split_words

    exact = sum(split_words(h) in [split_words(r) for r in refs]
                for h, refs in zip(hypotheses, references))
    return {"bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2),
            "exact_match": round(exact / len(hypotheses), 4), "sentences": len(hypotheses),
            "references": sum(len(r) for r in references)}


# ---------------------------------------------------------------------------- builders
def build_model(config: TranslatorConfig, data: PreparedPairs) -> Translator:
    return Translator(config, len(data.source_tokenizer), len(data.target_tokenizer))


class SequenceLoss:
    """Label-smoothed cross-entropy of (B, T, V) logits against (B, T) targets, padding
    (id 0) ignored: the mean over the real target tokens."""

    def __init__(self, label_smoothing: float = 0.0, pad_id: int = 0) -> None:
        self.label_smoothing, self.pad_id = label_smoothing, pad_id

    def __call__(self, logits: Tensor, target: Tensor) -> Tensor:
        vocab = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1),
                               ignore_index=self.pad_id, label_smoothing=self.label_smoothing)


def build_loss(config: TranslatorConfig) -> SequenceLoss:
    return SequenceLoss(config.label_smoothing)


def build_optimizer(config: TranslatorConfig, model: Translator):
    from handgrad import optim

    cls = optim.AdamW if config.optimizer == "adamw" else optim.Adam
    return cls(model.parameters(), lr=config.lr, betas=(0.9, 0.98),
               weight_decay=config.weight_decay)


def build_scheduler(config: TranslatorConfig, optimizer, steps_per_epoch: int):
    """Per step: linear warm-up over warmup_steps, then cosine to 0 (or constant)."""
    from handgrad.optim import lr_scheduler

    total = config.epochs * steps_per_epoch
    warmup = min(config.warmup_steps, max(total - 1, 0))
    after = (lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1))
             if config.scheduler == "cosine" else lr_scheduler.ConstantLR(optimizer, 1.0, 1))
    if warmup == 0:
        return after
    ramp = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup, total_iters=warmup)
    return lr_scheduler.SequentialLR(optimizer, [ramp, after], milestones=[warmup])


def load_translator(path: str | Path, device=None):
    """(model, source tokenizer, target tokenizer, config) of a `handgrad train
    translator` checkpoint."""
    from handgrad.models.tokenizer import WordTokenizer
    from handgrad.train import CheckpointError, load_state

    state = load_state(path)
    tokenizers = state.get("tokenizers")
    if not isinstance(tokenizers, dict) or state.get("config") is None:
        raise CheckpointError(f"{path}: holds no translator config and tokenizers: it was not "
                              f"written by `handgrad train translator`")
    config = TranslatorConfig.from_dict(state["config"])
    source = WordTokenizer.from_dict(tokenizers["source"])
    target = WordTokenizer.from_dict(tokenizers["target"])
    model = Translator(config, len(source), len(target))
    model.load_state_dict(state["model"])
    if device is not None:
        model.to(device)
    model.eval()
    return model, source, target, config
