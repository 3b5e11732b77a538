"""A character-level language model: embedding (or one-hot) -> stacked RNN/LSTM/GRU -> Linear.

    config = REFERENCE_CONFIGS["tiny-shakespeare"]       # or CharRNNConfig(cell="gru", ...)
    data = prepare_data(config)                          # vocabulary, train / valid ids
    model = build_model(config, data)                    # a CharRNN
    logits, state = model(x)                             # x: (B, T) ids -> (B, T, V)
    for char in generate(model, data.vocabulary, "ROMEO:", 200): print(char, end="")

Training uses truncated backpropagation through time (TBPTT): the training text is cut
into `batch_size` contiguous streams, each read from left to right in chunks of
`seq_len` characters (`StreamBatches`); chunk k+1 of every stream starts where chunk k
ended, so the hidden state reached at the end of one chunk is carried into the next one,
detached from the graph (`CarryState`), and reset to zeros at the start of each epoch.
The validation figure (`stream_nats`) reads the whole validation part the same way and
counts every one of its characters: nats per character, the mean of -ln p(next char).

Data: the text's first 90 % (by position, not shuffled) is the training part, the last
10 % the validation part. The vocabulary (`Vocabulary`) is the sorted set of the whole
text's characters; it goes into the checkpoint as JSON metadata, so `handgrad sample`
and `handgrad evaluate` need only the checkpoint.

Left out: the command that runs the training (models/char_rnn_cli.py), word-level
models, and beam search.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch

from handgrad import nn
from handgrad._tensor import Tensor
from handgrad.autograd import no_grad
from handgrad.nn import functional as F

__all__ = [
    "CharRNNConfig", "REFERENCE_CONFIGS", "DATASETS", "CELLS", "OPTIMIZERS", "SCHEDULERS",
    "Vocabulary", "PreparedText", "load_text", "prepare_data", "StreamBatches", "OneHot",
    "CharRNN", "CarryState", "SequenceLoss", "build_model", "build_loss", "build_optimizer",
    "build_scheduler", "stream_nats", "figures", "generate", "describe", "detach_state",
    "reference_config",
]

CELLS = ("rnn", "lstm", "gru")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULERS = ("none", "cosine", "onecycle")


@dataclass
class CharRNNConfig:
    """One training run of a character-level language model."""

    # ---- data
    dataset: str = "tiny-shakespeare"  # tiny-shakespeare, or the path of a UTF-8 text file
    valid_fraction: float = 0.1  # the text's last part (by position) held out for validation
    # ---- model
    cell: str = "lstm"  # recurrent layer: rnn (tanh), lstm or gru (nn.RNN / nn.LSTM / nn.GRU)
    embedding: int = 64  # embedding size of each character (0: one-hot vectors of the vocabulary)
    hidden: int = 384  # hidden size of each recurrent layer
    layers: int = 2  # stacked recurrent layers
    dropout: float = 0.0  # dropout between the recurrent layers and before the Linear head
    # ---- training
    seq_len: int = 64  # characters per chunk: the truncation length of backprop through time
    batch_size: int = 64  # parallel streams over the training text (chunks per step)
    optimizer: str = "adam"  # one of OPTIMIZERS
    lr: float = 3e-3  # learning rate (the peak of the schedule for onecycle)
    weight_decay: float = 0.0  # L2 penalty (adam, sgd, rmsprop) or decoupled decay (adamw)
    momentum: float = 0.9  # momentum of sgd and rmsprop (ignored by the others)
    scheduler: str = "cosine"  # learning rate per step: cosine to 0, onecycle, or none (constant)
    clip_grad: float = 1.0  # clip the gradients' joint norm to this value (0: no clipping)
    epochs: int = 5  # passes over the training text
    seed: int = 0  # seed of the initial weights, dropout and the per-epoch samples
    # ---- samples printed after each epoch
    sample_length: int = 200  # characters generated after each epoch (0: no sample)
    sample_prompt: str = "\n"  # the text the per-epoch sample starts from
    temperature: float = 0.8  # sampling temperature of the per-epoch sample

    def __post_init__(self):
        for name, table in (("cell", CELLS), ("optimizer", OPTIMIZERS),
                            ("scheduler", SCHEDULERS)):
            if getattr(self, name) not in table:
                raise ValueError(f"CharRNNConfig: unknown {name} {getattr(self, name)!r}; "
                                 f"choose one of {', '.join(table)}")
        for name in ("hidden", "layers", "seq_len", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"CharRNNConfig: {name} must be >= 1, got "
                                 f"{getattr(self, name)}")
        for name in ("embedding", "sample_length", "weight_decay", "momentum", "clip_grad"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"CharRNNConfig: {name} must be >= 0, got "
                                 f"{getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"CharRNNConfig: dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"CharRNNConfig: valid_fraction must be in (0, 1), got "
                             f"{self.valid_fraction}")
        if not self.lr > 0 or not self.temperature > 0:
            raise ValueError(f"CharRNNConfig: lr and temperature must be positive (got "
                             f"{self.lr}, {self.temperature})")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> CharRNNConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"CharRNNConfig: unknown fields {unknown}")
        return cls(**values)


def describe(config: CharRNNConfig) -> str:
    """e.g. 'char-LSTM 2x256 (embedding 64)'."""
    inputs = f"embedding {config.embedding}" if config.embedding else "one-hot"
    return f"char-{config.cell.upper()} {config.layers}x{config.hidden} ({inputs})"


# ---------------------------------------------------------------------------- data
@dataclass(frozen=True)
class DatasetSpec:
    note: str  # what it is, for --help


DATASETS = {"tiny-shakespeare": DatasetSpec(
    "1,115,394 characters of Shakespeare (tinyshakespeare.txt in --data-root or "
    "$HANDGRAD_DATA, or --download); or give the path of any UTF-8 text file")}


class Vocabulary:
    """The characters a model knows, sorted: `stoi` / `itos`, `encode` / `decode`.

    Saved as JSON (`to_json()`: {"chars": [...]}) in the checkpoint's metadata."""

    def __init__(self, chars):
        chars = list(chars)
        if not chars or len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("Vocabulary: expected distinct single characters, got "
                             f"{len(chars)} entries")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        if not text:
            raise ValueError("Vocabulary: the text is empty")
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.chars == other.chars

    def unknown(self, text: str) -> dict[str, int]:
        """The characters of `text` outside the vocabulary, with their counts."""
        counts: dict[str, int] = {}
        for c in text:
            if c not in self.stoi:
                counts[c] = counts.get(c, 0) + 1
        return counts

    def encode(self, text: str, what: str = "the text") -> torch.Tensor:
        unknown = self.unknown(text)
        if unknown:
            raise ValueError(f"{what} has {sum(unknown.values())} characters outside the "
                             f"model's vocabulary of {len(self)}: {sorted(unknown)!r}; use "
                             f"only these: {''.join(self.chars)!r}")
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.int64)

    def decode(self, ids) -> str:
        values = getattr(ids, "data", ids)
        values = values.tolist() if isinstance(values, torch.Tensor) else list(values)
        return "".join(self.chars[int(i)] for i in values)

    def to_json(self) -> dict:
        return {"chars": list(self.chars)}

    @classmethod
    def from_json(cls, value: dict) -> Vocabulary:
        if not isinstance(value, dict) or not isinstance(value.get("chars"), list):
            raise ValueError(f"Vocabulary.from_json: expected {{'chars': [...]}}, got "
                             f"{type(value).__name__}")
        return cls(value["chars"])

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} characters)"


@dataclass
class PreparedText:
    """The vocabulary and the encoded training and validation parts."""

    vocabulary: Vocabulary
    train: torch.Tensor  # int64 ids of the text's first part
    valid: torch.Tensor  # int64 ids of the last valid_fraction of the text
    description: str = ""


def load_text(config: CharRNNConfig, data_root=None, download: bool = False) -> str:
    from handgrad.data.datasets.text import _read_text, tiny_shakespeare

    if config.dataset == "tiny-shakespeare":
        return tiny_shakespeare(data_root, download=download)
    path = Path(config.dataset).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"char-rnn: --dataset {config.dataset}: no such text file; "
                                f"give tiny-shakespeare or the path of a UTF-8 text file")
    return _read_text(path)


def prepare_data(config: CharRNNConfig, data_root=None, download: bool = False,
                 text: str | None = None) -> PreparedText:
    """The vocabulary of the whole text, and its 90 / 10 % train / valid parts by position
    (`valid_fraction`). `text` replaces reading `config.dataset`."""
    text = load_text(config, data_root, download) if text is None else text
    vocabulary = Vocabulary.from_text(text)
    ids = vocabulary.encode(text)
    n_valid = max(2, int(round(len(ids) * config.valid_fraction)))
    if len(ids) - n_valid < 2:
        raise ValueError(f"char-rnn: the text has {len(ids)} characters, too few to split")
    train, valid = ids[:-n_valid], ids[-n_valid:]
    return PreparedText(vocabulary, train, valid,
                        f"{len(text):,} characters, vocabulary {len(vocabulary)}; train "
                        f"{len(train):,}, valid {len(valid):,} (last {config.valid_fraction:.0%})")


class StreamBatches:
    """TBPTT batches over one id sequence: `batch_size` contiguous streams, read in chunks.

    With n ids and B streams, each stream holds L = (n - 1) // B consecutive characters:
    stream b is ids[b L : (b + 1) L] and its targets ids[b L + 1 : (b + 1) L + 1]. Batch k
    is `(x, y)`, both (B, T) int64 Tensors: columns k T ... (k + 1) T - 1 of every stream
    (the last batch is shorter when T does not divide L), so row b of batch k + 1 continues
    row b of batch k exactly. The (n - 1) - B L characters left at the end are not read
    (stream_nats reads them too)."""

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int, device=None):
        ids = getattr(ids, "data", ids)
        self.length = (ids.shape[0] - 1) // batch_size
        if self.length < 1:
            raise ValueError(f"StreamBatches: {ids.shape[0]} characters cannot feed "
                             f"{batch_size} streams; lower the batch size")
        used = batch_size * self.length
        self.inputs = ids[:used].reshape(batch_size, self.length).to(device)  # (B, L)
        self.targets = ids[1:used + 1].reshape(batch_size, self.length).to(device)  # (B, L)
        self.batch_size, self.seq_len = batch_size, seq_len

    def __len__(self) -> int:
        return -(-self.length // self.seq_len)

    def __iter__(self):
        for start in range(0, self.length, self.seq_len):
            end = start + self.seq_len
            yield (Tensor(self.inputs[:, start:end].contiguous()),  # (B, T)
                   Tensor(self.targets[:, start:end].contiguous()))  # (B, T)


# ---------------------------------------------------------------------------- model
def _recurrent_class(cell: str):
    return getattr(nn, {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell])


def detach_state(state):
    """The hidden state (a Tensor, or LSTM's (h, c)) cut from the graph."""
    if state is None:
        return None
    if isinstance(state, tuple | list):
        return type(state)(s.detach() for s in state)
    return state.detach()


class OneHot(nn.Module):
    """ids (B, T) -> one-hot float vectors (B, T, V); no parameters, no gradient."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, input):
        ids = getattr(input, "data", input)
        out = torch.zeros(*ids.shape, self.size, device=ids.device)
        return Tensor(out.scatter_(-1, ids.unsqueeze(-1), 1.0))  # (B, T, V)

    def extra_repr(self) -> str:
        return f"{self.size}"


class CharRNN(nn.Module):
    """encoder (Embedding or one-hot) -> nn.RNN / LSTM / GRU (batch_first) -> Linear.

    forward(input (B, T) ids, state=None) -> (logits (B, T, V), state), state as the
    recurrent layer gives it: h_n (layers, B, H), or (h_n, c_n) for the LSTM."""

    def __init__(self, vocab_size: int, cell: str = "lstm", embedding: int = 64,
                 hidden: int = 256, layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.cell = cell
        self.encoder = nn.Embedding(vocab_size, embedding) if embedding else OneHot(vocab_size)
        self.rnn = _recurrent_class(cell)(embedding or vocab_size, hidden, layers,
                                          batch_first=True,
                                          dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, input, state=None):
        x = self.encoder(input)  # (B, T, E)
        output, state = self.rnn(x, state)  # (B, T, H)
        return self.head(self.dropout(output)), state  # (B, T, V)


def build_model(config: CharRNNConfig, data: PreparedText | int):
    """A CharRNN over the vocabulary of `data` (or a vocabulary size)."""
    size = data if isinstance(data, int) else len(data.vocabulary)
    return CharRNN(size, config.cell, config.embedding, config.hidden, config.layers,
                       config.dropout)


class SequenceLoss:
    """Mean cross-entropy (nats per character) of `(logits (B, T, V), state)` against
    target ids (B, T): the loss the Learner minimises."""

    def __call__(self, output, target):
        logits = output[0] if isinstance(output, tuple) else output
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))

    def __repr__(self) -> str:
        return "SequenceLoss()"


def build_loss(data=None, config=None):
    return SequenceLoss()


def build_optimizer(config: CharRNNConfig, model):
    from handgrad import optim

    params, lr, wd = model.parameters(), config.lr, config.weight_decay
    if config.optimizer == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    if config.optimizer == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=wd)
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    return optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=wd)


def build_scheduler(config: CharRNNConfig, optimizer, steps_per_epoch: int):
    """Per step: cosine from lr to 0 over the run, onecycle, or None (constant)."""
    from handgrad.optim import lr_scheduler

    total = config.epochs * steps_per_epoch
    if config.scheduler == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if config.scheduler == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    return None


class CarryState:
    """The Learner callback of TBPTT: feeds each training chunk the hidden state the
    previous chunk ended with, detached, and starts every epoch from zeros.

    Before each training batch `(x, y)` becomes `(x, state, y)`, so the model is called
    as `model(x, state)`; after it, the state of `learner.output` is kept, detached."""

    order = -15  # after DeviceCallback (-20) moved the batch, before the History (-10)

    def __init__(self):
        self.state = None

    def before_train(self, learner) -> None:
        self.state = None

    def before_batch(self, learner) -> None:
        if learner.training:
            x, y = learner.batch
            learner.batch = (x, self.state, y)

    def after_batch(self, learner) -> None:
        if learner.training:
            self.state = detach_state(learner.output[1])

    def __repr__(self) -> str:
        return "CarryState()"


# ---------------------------------------------------------------------------- measuring
def stream_nats(model, ids, batch_size: int = 32, seq_len: int = 256,
                device=None) -> tuple[float, int]:
    """(total nats, characters scored) of the text `ids` under `model`: every character
    after the first is scored, given all the characters before it (the state is carried
    along `batch_size` streams; the few characters after the last full stream continue
    the last stream). Model in eval mode, no graph. nats/char = total / count."""
    ids = getattr(ids, "data", ids).to(device)
    n = ids.shape[0]
    if n < 2:
        return 0.0, 0
    batch_size = max(1, min(batch_size, n - 1))
    batches = StreamBatches(ids, batch_size, seq_len, device=device)
    total, count, state = 0.0, 0, None
    was_training = model.training
    model.eval()
    with no_grad():
        for x, y in batches:
            logits, state = model(x, state)  # (B, T, V)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="sum").item()
            count += y.data.numel()
        used = batch_size * batches.length
        if used < n - 1:  # the tail continues the last stream
            last = detach_state(state)
            last = (tuple(s[:, -1:].contiguous() for s in last) if isinstance(last, tuple)
                    else last[:, -1:].contiguous())
            x = Tensor(ids[used:n - 1].unsqueeze(0))  # (1, r)
            y = ids[used + 1:n]
            logits, _ = model(x, last)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Tensor(y),
                                     reduction="sum").item()
            count += y.numel()
    model.train(was_training)
    return total, count


def figures(total: float, count: int) -> dict:
    """nats/char, bits/char and perplexity of a total of nats over `count` characters."""
    nats = total / count if count else float("nan")
    return {"nats_per_char": nats, "bits_per_char": nats / math.log(2),
            "perplexity": math.exp(nats) if nats == nats else float("nan"), "chars": count}


def generate(model, vocabulary: Vocabulary, prompt: str, length: int,
             temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None, device=None,
             top_p: float | None = None, greedy: bool = False) -> Iterator[str]:
    """Yield `length` characters sampled after `prompt`, one at a time (the prompt itself
    is not yielded): models/decoding.py's generate, the one decoding path of every
    language model (temperature, top-k, top-p, greedy). A ValueError lists the prompt's
    characters outside the vocabulary."""
    from handgrad.models.decoding import generate as decode

    return decode(model, vocabulary, prompt, length, temperature, top_k, top_p, greedy,
                  generator, device)


# ---------------------------------------------------------------------------- recipes
# The recipe behind the figures of docs/training.md (`handgrad train char-rnn`); the
# --cell flag swaps the recurrent layer and keeps the rest (the same budget).
REFERENCE_CONFIGS: dict[str, CharRNNConfig] = {
    "tiny-shakespeare": CharRNNConfig(),
}


def reference_config(dataset: str = "tiny-shakespeare", **overrides) -> CharRNNConfig:
    base = REFERENCE_CONFIGS.get(dataset, CharRNNConfig(dataset=dataset))
    return replace(base, **overrides)


# ---------------------------------------------------------------------------- checkpoints
def load_trained(path, device=None, state=None):
    """(model in eval mode, vocabulary, config) from a checkpoint of `handgrad train
    char-rnn`; a CheckpointError when the file holds another kind of run. `state` is the
    already loaded checkpoint (handgrad.train.load_state), if the caller has it."""
    from handgrad.train import CheckpointError, load_state

    state = load_state(path) if state is None else state
    if not isinstance(state, dict) or "vocabulary" not in state or not state.get("config"):
        raise CheckpointError(f"{path}: not a checkpoint of `handgrad train char-rnn` "
                              f"or `handgrad train gpt` (it holds no vocabulary and run "
                              f"config)")
    try:
        config = CharRNNConfig.from_dict(state["config"])
        vocabulary = Vocabulary.from_json(state["vocabulary"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its run config or vocabulary does not fit a char-rnn "
                              f"({error})") from None
    model = build_model(config, len(vocabulary))
    model.load_state_dict(state["model"])
    if device is not None:
        model.to(device)
    return model.eval(), vocabulary, config
