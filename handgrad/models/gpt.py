"""A character-level GPT (nanoGPT's shape, handgrad's code): a decoder-only Transformer.

    config = REFERENCE_CONFIGS["tiny-shakespeare"]       # or GPTConfig(n_layer=2, ...)
    data = prepare_data(config)                          # the char-RNN's vocabulary and split
    model = build_model(config, data)                    # a GPT
    logits, loss = model(idx, targets)                   # idx: (B, T) ids -> (B, T, V)

The model, small to large: `CausalSelfAttention` (one `c_attn` Linear makes q, k and v;
causal F.scaled_dot_product_attention, one fused Function with a hand-written backward;
`c_proj` back to the residual width), `MLP` (Linear 4x -> GELU -> Linear), `Block`
(pre-norm: x + attn(ln_1(x)), then x + mlp(ln_2(x))) and `GPT` (token + position
embedding, dropout, the blocks, a final LayerNorm, and an lm head whose weight is the
token embedding's: weight tying). Names and layouts are nanoGPT's (`transformer.wte`,
`transformer.h.0.attn.c_attn.weight`, ..., `lm_head.weight`), so a nanoGPT state_dict
of the same shape loads as it is.
Initialisation is nanoGPT's: every Linear and Embedding weight N(0, 0.02), biases zero,
and the projections that end a residual branch (`c_proj`) N(0, 0.02 / sqrt(2 n_layer)).

`forward(idx, targets=None, cache=None)`: with a `KVCache`, the keys and values of the
new positions are appended to the cache and attention reads the whole cache, so a
decoder that feeds one token at a time pays O(T) per token instead of O(T^2)
(models/decoding.py drives it). A context longer than `block_size` is refused with a
ValueError naming the shapes (positions past block_size have no embedding).

Data: the char-RNN's pipeline (models/char_rnn.py): the same `Vocabulary` and the same
90 / 10 split by position, so the two families are measured on the same validation text.
Training draws `batch_size` windows of `block_size + 1` characters at random positions
of the training part (`RandomWindows`, from a seeded generator the checkpoint saves);
an "epoch" of this model is an evaluation interval of `steps_per_epoch` such batches.
`window_nats` scores a text in consecutive windows of block_size characters (each
character given the characters before it in its window: 0 to block_size - 1 of them,
nanoGPT's validation loss); a stride below block_size gives every character at least
block_size - stride characters of context.

Left out: the command (models/gpt_cli.py), sampling (models/decoding.py), flash /
memory-efficient attention kernels, and loading OpenAI's GPT-2 weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from handgrad import nn
from handgrad._tensor import Tensor
from handgrad.autograd import no_grad
from handgrad.models.char_rnn import (
    DATASETS,
    PreparedText,
    SequenceLoss,
    Vocabulary,
    figures,
    load_text,
    prepare_data,
)
from handgrad.nn import functional as F

__all__ = [
    "GPTConfig", "REFERENCE_CONFIGS", "DATASETS", "OPTIMIZERS", "SCHEDULERS", "Vocabulary",
    "PreparedText", "load_text", "prepare_data", "RandomWindows", "KVCache",
    "CausalSelfAttention", "MLP", "Block", "GPT", "SequenceLoss", "build_model",
    "build_loss", "build_optimizer", "build_scheduler", "window_nats", "figures",
    "describe", "reference_config", "load_trained",
]

OPTIMIZERS = ("adamw", "adam")
SCHEDULERS = ("cosine", "none")


@dataclass
class GPTConfig:
    """One training run of the character-level GPT."""

    # ---- data
    dataset: str = "tiny-shakespeare"  # tiny-shakespeare, or the path of a UTF-8 text file
    valid_fraction: float = 0.1  # the text's last part (by position) held out for validation
    # ---- model
    block_size: int = 128  # context length: the most characters the model looks at
    n_layer: int = 4  # Transformer blocks
    n_head: int = 4  # attention heads per block (n_embd must be a multiple)
    n_embd: int = 128  # width of the residual stream (embedding size)
    dropout: float = 0.0  # dropout on embeddings, attention weights and residual branches
    bias: bool = True  # biases in the Linears and LayerNorms (nanoGPT's GPU recipe: False)
    # ---- training
    batch_size: int = 32  # random windows of block_size characters per step
    steps_per_epoch: int = 250  # steps per "epoch" (evaluation interval)
    epochs: int = 12  # evaluation intervals: epochs * steps_per_epoch steps in all
    optimizer: str = "adamw"  # adamw (decoupled decay) or adam (L2); 2-D weights only decay
    lr: float = 2e-3  # peak learning rate, reached at the end of the warm-up
    min_lr: float = 2e-4  # the cosine schedule ends here (scheduler cosine)
    warmup_steps: int = 100  # linear warm-up from lr / warmup_steps to lr
    scheduler: str = "cosine"  # after the warm-up: cosine from lr to min_lr, or none (constant)
    weight_decay: float = 0.1  # applied to the Linear and Embedding weights only
    beta1: float = 0.9  # Adam's first-moment decay
    beta2: float = 0.99  # Adam's second-moment decay (nanoGPT's char recipe: 0.99)
    clip_grad: float = 1.0  # clip the gradients' joint norm to this value (0: no clipping)
    eval_stride: int = 0  # validation windows start every eval_stride chars (0: block_size)
    seed: int = 0  # seed of the initial weights, the batches, dropout and the samples
    # ---- samples printed after each epoch
    sample_length: int = 200  # characters generated after each epoch (0: no sample)
    sample_prompt: str = "\n"  # the text the per-epoch sample starts from
    temperature: float = 0.8  # sampling temperature of the per-epoch sample

    def __post_init__(self):
        for name, table in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS)):
            if getattr(self, name) not in table:
                raise ValueError(f"GPTConfig: unknown {name} {getattr(self, name)!r}; "
                                 f"choose one of {', '.join(table)}")
        for name in ("block_size", "n_layer", "n_head", "n_embd", "batch_size",
                     "steps_per_epoch", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"GPTConfig: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "weight_decay", "clip_grad", "eval_stride",
                     "sample_length", "min_lr"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"GPTConfig: {name} must be >= 0, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head "
                             f"({self.n_head})")
        if self.eval_stride > self.block_size:
            raise ValueError(f"GPTConfig: eval_stride ({self.eval_stride}) must be at most "
                             f"block_size ({self.block_size})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"GPTConfig: valid_fraction must be in (0, 1), got "
                             f"{self.valid_fraction}")
        if not self.lr > 0 or not self.temperature > 0:
            raise ValueError(f"GPTConfig: lr and temperature must be positive (got "
                             f"{self.lr}, {self.temperature})")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"GPTConfig: beta1 and beta2 must be in [0, 1), got "
                             f"{self.beta1}, {self.beta2}")

    @property
    def steps(self) -> int:
        """Optimizer steps of the whole run."""
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> GPTConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"GPTConfig: unknown fields {unknown}")
        return cls(**values)


def describe(config: GPTConfig) -> str:
    """e.g. 'GPT 4x128 (4 heads, block 128)'."""
    return (f"GPT {config.n_layer}x{config.n_embd} ({config.n_head} heads, block "
            f"{config.block_size})")


# ---------------------------------------------------------------------------- data
class RandomWindows:
    """`steps` batches of `batch_size` windows drawn at random positions of `ids`.

    Each batch is `(x, y)`, both (B, T) int64 Tensors with T = block_size: x = ids[s :
    s + T] and y = ids[s + 1 : s + T + 1] for a start s uniform in [0, n - T - 1], drawn
    from `generator` (a torch.Generator on the CPU; the Learner's checkpoints save its
    state, so a resumed run draws the batches the uninterrupted one would have)."""

    def __init__(self, ids: torch.Tensor, batch_size: int, block_size: int, steps: int,
                 generator: torch.Generator | None = None, device=None):
        ids = getattr(ids, "data", ids)
        if ids.shape[0] < block_size + 1:
            raise ValueError(f"RandomWindows: {ids.shape[0]} characters are too few for "
                             f"windows of block_size + 1 = {block_size + 1}; lower block_size")
        self.ids = ids.to(device)
        self.batch_size, self.block_size, self.steps = batch_size, block_size, steps
        self.generator = generator if generator is not None else torch.Generator()
        self.offsets = torch.arange(block_size, device=self.ids.device)  # (T,)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        last = self.ids.shape[0] - self.block_size  # starts 0 ... last - 1
        for _ in range(self.steps):
            starts = torch.randint(last, (self.batch_size,), generator=self.generator)
            index = starts.to(self.ids.device).unsqueeze(1) + self.offsets  # (B, T)
            yield Tensor(self.ids[index]), Tensor(self.ids[index + 1])  # (B, T), (B, T)


# ---------------------------------------------------------------------------- KV cache
class KVCache:
    """The keys and values of every position a GPT has seen, per layer, for decoding.

    `keys[i]` and `values[i]` of layer i are (B, n_head, T, head_dim) views of buffers
    allocated once for `capacity` positions (the model's block_size); `append` writes the
    new positions after the T already held, so one decoding step copies one position per
    layer, never the whole cache. Raw torch tensors: a cache is for inference (no_grad)."""

    def __init__(self, n_layer: int, capacity: int):
        self.n_layer, self.capacity = n_layer, capacity
        self.length = 0  # positions held
        self._keys: list[torch.Tensor | None] = [None] * n_layer
        self._values: list[torch.Tensor | None] = [None] * n_layer
        self._pending = 0  # positions being appended by the forward pass running now

    def begin(self, new: int) -> int:
        """Called by GPT.forward before the layers: `new` positions come; returns the
        position of the first one. Refuses to go past the capacity."""
        if self.length + new > self.capacity:
            raise ValueError(f"KVCache: {self.length} positions held + {new} new exceed "
                             f"the capacity {self.capacity} (the model's block_size); crop "
                             f"the context and rebuild the cache (KVCache.reset)")
        self._pending = new
        return self.length

    def append(self, layer: int, key: torch.Tensor, value: torch.Tensor):
        """Store layer `layer`'s new keys and values (B, n_head, t, head_dim); returns the
        keys and values of every position held, new ones included (B, n_head, T + t, hd)."""
        held = self._keys[layer]
        if held is None or held.shape[0] != key.shape[0] or held.dtype != key.dtype \
                or held.device != key.device:
            B, H, _, D = key.shape
            self._keys[layer] = key.new_empty(B, H, self.capacity, D)
            self._values[layer] = value.new_empty(B, H, self.capacity, D)
        end = self.length + key.shape[2]
        self._keys[layer][:, :, self.length:end] = key
        self._values[layer][:, :, self.length:end] = value
        return self._keys[layer][:, :, :end], self._values[layer][:, :, :end]

    def end(self) -> None:
        """Called by GPT.forward after the layers: the new positions are now held."""
        self.length += self._pending
        self._pending = 0

    def reset(self) -> None:
        """Forget every position (the buffers are kept)."""
        self.length = self._pending = 0

    def __repr__(self) -> str:
        return f"KVCache({self.length} of {self.capacity} positions, {self.n_layer} layers)"


# ---------------------------------------------------------------------------- model
class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one Linear for q, k and v (nanoGPT's)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"CausalSelfAttention: n_embd ({n_embd}) must be divisible by "
                             f"n_head ({n_head})")
        self.n_embd, self.n_head, self.dropout = n_embd, n_head, dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.shape
        heads, head_dim = self.n_head, C // self.n_head
        # q, k, v from the three row blocks of c_attn (the same products as one Linear
        # and a split, whose backward would add three zero-filled (B, T, 3C) gradients)
        w, b = self.c_attn.weight, self.c_attn.bias
        q, k, v = (F.linear(x, w[i * C:(i + 1) * C], None if b is None else b[i * C:(i + 1) * C])
                   for i in range(3))  # 3 x (B, T, C)
        q = q.view(B, T, heads, head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = k.view(B, T, heads, head_dim).transpose(1, 2)  # (B, nh, T, hd)
        v = v.view(B, T, heads, head_dim).transpose(1, 2)  # (B, nh, T, hd)
        mask, causal = None, True
        if cache is not None:
            start = cache.length
            keys, values = cache.append(layer, k.data, v.data)  # (B, nh, S, hd), S = start + T
            k, v = Tensor(keys), Tensor(values)
            if start > 0:  # query t sits at position start + t: it sees keys 0 ... start + t
                causal = False
                if T > 1:
                    mask = (torch.arange(start + T, device=keys.device)
                            <= torch.arange(start, start + T, device=keys.device)[:, None])
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal,
            dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))  # (B, T, C)

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, n_head={self.n_head}, dropout={self.dropout}"


class MLP(nn.Module):
    """Linear (C -> 4C) -> GELU -> Linear (4C -> C) -> dropout."""

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        x = x + self.attn(self.ln_1(x), cache, layer)  # (B, T, C)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)


class GPT(nn.Module):
    """Token + position embedding -> dropout -> n_layer Blocks -> LayerNorm -> lm head
    (tied to the token embedding).

    forward(idx (B, T) int64, targets=None, cache=None) -> (logits (B, T, V), loss):
    loss is the mean cross-entropy against targets (B, T), or None without targets."""

    def __init__(self, vocab_size: int, block_size: int = 128, n_layer: int = 4,
                 n_head: int = 4, n_embd: int = 128, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.vocab_size, self.block_size, self.n_layer = vocab_size, block_size, n_layer
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab_size, n_embd),
            "wpe": nn.Embedding(block_size, n_embd),
            "drop": nn.Dropout(dropout),
            "h": nn.ModuleList([Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)]),
            "ln_f": nn.LayerNorm(n_embd, bias=bias),
        })
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nanoGPT's initialisation: N(0, 0.02) weights, zero biases, and the residual
        projections N(0, 0.02 / sqrt(2 n_layer))."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, 0.02)
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(parameter, 0.0, 0.02 / math.sqrt(2 * self.n_layer))

    def forward(self, idx, targets=None, cache: KVCache | None = None):
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.block_size:
            held = f" after the {start} positions in the KV cache" if start else ""
            raise ValueError(f"GPT: the input idx of shape {tuple(idx.shape)} (B, T) has T = "
                             f"{T} positions{held}, more than the model's block_size "
                             f"{self.block_size}; crop the context to its last "
                             f"{self.block_size - start} tokens")
        if cache is not None:
            cache.begin(T)
        positions = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)  # (B, T, C)
        x = self.transformer.drop(x)
        for layer, block in enumerate(self.transformer.h):
            x = block(x, cache, layer)  # (B, T, C)
        if cache is not None:
            cache.end()
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss

    def new_cache(self) -> KVCache:
        """An empty KVCache for this model (capacity block_size)."""
        return KVCache(self.n_layer, self.block_size)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, block_size={self.block_size}"


def build_model(config: GPTConfig, data: PreparedText | int) -> GPT:
    """A GPT over the vocabulary of `data` (or a vocabulary size)."""
    size = data if isinstance(data, int) else len(data.vocabulary)
    return GPT(size, config.block_size, config.n_layer, config.n_head, config.n_embd,
               config.dropout, config.bias)


def build_loss(data=None, config=None) -> SequenceLoss:
    return SequenceLoss()


def build_optimizer(config: GPTConfig, model):
    """AdamW (or Adam) with two groups, as nanoGPT: the 2-D weights (Linears, embeddings)
    decay, the biases and LayerNorm parameters do not."""
    from handgrad import optim

    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    kind = optim.AdamW if config.optimizer == "adamw" else optim.Adam
    return kind(groups, lr=config.lr, betas=(config.beta1, config.beta2))


def build_scheduler(config: GPTConfig, optimizer, steps_per_epoch: int | None = None):
    """Per step: a linear warm-up over warmup_steps, then cosine from lr to min_lr over
    the remaining steps (scheduler cosine) or constant (none)."""
    from handgrad.optim import lr_scheduler

    total = config.epochs * (steps_per_epoch or config.steps_per_epoch)
    warmup = min(config.warmup_steps, total - 1)
    rest = max(1, total - warmup)
    if config.scheduler == "cosine":
        after = lr_scheduler.CosineAnnealingLR(optimizer, T_max=rest, eta_min=config.min_lr)
    else:
        after = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup < 1:
        return after
    ramp = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0,
                                 total_iters=warmup)
    return lr_scheduler.SequentialLR(optimizer, [ramp, after], milestones=[warmup])


# ---------------------------------------------------------------------------- measuring
def window_nats(model, ids, block_size: int | None = None, stride: int | None = None,
                batch_size: int = 32, device=None) -> tuple[float, int]:
    """(total nats, characters scored) of the text `ids`: every character after the first
    is scored once. Windows of `block_size` characters (default the model's) start every
    `stride` characters (default block_size: consecutive windows, each character seeing
    the 0 ... block_size - 1 before it in its window); with a smaller stride a window
    scores only its last `stride` targets (the first window scores all of its own), so
    every character past the first window sees at least block_size - stride characters.
    Model in eval mode, no graph. nats/char = total / count."""
    ids = getattr(ids, "data", ids).to(device)
    n = ids.shape[0]
    if n < 2:
        return 0.0, 0
    full = block_size or model.block_size
    if stride is not None and stride and not 0 < stride <= full:
        raise ValueError(f"the stride of the validation windows must be in [1, the model's "
                         f"block size {full}], got {stride}")
    # a text shorter than the block is scored in one window as long as the text
    block_size = min(full, n - 1)
    stride = min(stride or block_size, block_size)
    # windows [s, s + T) with targets [s + 1, s + T + 1); the last one ends at n - 1
    starts = list(range(0, n - 1 - block_size + 1, stride))
    if starts[-1] + block_size < n - 1:
        starts.append(n - 1 - block_size)
    offsets = torch.arange(block_size, device=ids.device)  # (T,)
    total, count, scored_to = 0.0, 0, 0  # scored_to: targets below it are counted
    was_training = model.training
    model.eval()
    with no_grad():
        for first in range(0, len(starts), batch_size):
            chunk = torch.tensor(starts[first:first + batch_size], device=ids.device)
            index = chunk.unsqueeze(1) + offsets  # (b, T)
            logits, _ = model(Tensor(ids[index]))  # (b, T, V)
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                  Tensor(ids[index + 1].reshape(-1)),
                                  reduction="none").data.view(index.shape)  # (b, T)
            for row, start in enumerate(chunk.tolist()):
                keep = max(0, scored_to - start)  # targets start + j for j >= keep are new
                total += nll[row, keep:].sum().item()
                count += block_size - keep
                scored_to = start + block_size
    model.train(was_training)
    return total, count


# ---------------------------------------------------------------------------- recipes
# The recipe behind the figure of docs/training.md (`handgrad train gpt` with no flags):
# the GPTConfig defaults (4 x 128, 4 heads, block 128, 32 windows a step, 3,000 steps of
# AdamW 2e-3 -> 2e-4), measured by a timed trial on the 2-core CPU (docs/training.md,
# "GPT"); validation windows every 64 characters, so each character is scored given at
# least 64 characters before it (`handgrad evaluate --stride 128` gives nanoGPT's figure).
REFERENCE_CONFIGS: dict[str, GPTConfig] = {
    "tiny-shakespeare": GPTConfig(eval_stride=64),
}


def reference_config(dataset: str = "tiny-shakespeare", **overrides) -> GPTConfig:
    base = REFERENCE_CONFIGS.get(dataset, GPTConfig(dataset=dataset))
    return replace(base, **overrides)


# ---------------------------------------------------------------------------- checkpoints
def load_trained(path, device=None, state=None):
    """(model in eval mode, vocabulary, config) from a checkpoint of `handgrad train gpt`;
    a CheckpointError when the file holds another kind of run. `state` is the already
    loaded checkpoint (handgrad.train.load_state), if the caller has it."""
    from handgrad.train import CheckpointError, load_state

    state = load_state(path) if state is None else state
    if not isinstance(state, dict) or "vocabulary" not in state or not state.get("config"):
        raise CheckpointError(f"{path}: not a checkpoint of `handgrad train gpt` (it holds "
                              f"no vocabulary and run config)")
    try:
        config = GPTConfig.from_dict(state["config"])
        vocabulary = Vocabulary.from_json(state["vocabulary"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its run config or vocabulary does not fit a GPT "
                              f"({error})") from None
    model = build_model(config, len(vocabulary))
    model.load_state_dict(state["model"])
    if device is not None:
        model.to(device)
    return model.eval(), vocabulary, config
