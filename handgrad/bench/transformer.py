"""`handgrad bench transformer`: attention and the Transformer layers, handgrad vs torch
in the same run (issue 11's sizes).

Cases, each forward + backward (a fixed random upstream gradient; the gradients of the
inputs and of every parameter), timed alternately in one process after warm-up
(handgrad.bench.timing.compare), reported as the median ratio torch_time /
handgrad_time (above 1.0: handgrad is faster):

1. "attention causal B32 h4 T64 d32": F.scaled_dot_product_attention(q, k, v,
   is_causal=True) with q, k, v of shape (32, 4, 64, 32), handgrad's fused Function
   (handgrad/nn/functional/attention.py) vs torch's (on the CPU its flash-attention
   kernel, on CUDA whichever kernel torch picks); the same at T=128 ("... T128 ...",
   the GPT's block size, no target);
2. "encoder layer d128 h4 ff512 B32 T64": nn.TransformerEncoderLayer(128, 4, 512,
   dropout=0.0, batch_first=True) on a (32, 64, 128) input, twins with identical
   weights (torch's loaded from handgrad's state_dict); in training mode, so torch
   takes its ordinary path (its fused fast path serves inference only);
3. "gpt training step 4x128 B32 T128": one step of the reference character GPT
   (handgrad/models/gpt.py with GPTConfig's defaults: 4 layers, 4 heads, width 128,
   block 128, vocabulary 65, batch 32): zero_grad, forward, cross-entropy over every
   position, backward, clip_grad_norm_ to 1.0, AdamW with nanoGPT's two groups; the
   torch twin (TorchGPT below: torch.nn modules, torch's SDPA, torch.optim.AdamW) has the
   same parameter names and loads the same weights.

Targets: >= 0.9 for the issue's three cases (its goal is 1.0). A case whose handgrad
side is missing (handgrad.nn.TransformerEncoderLayer, handgrad.models.gpt) is skipped
with a message.
Left out: the decoder layer and the translator (the same kernels), half precision.
"""

from __future__ import annotations

import argparse
import importlib.util

import torch

import handgrad as hg
from handgrad.bench.timing import add_case_arguments, compare, run_cases

# (name, batch, heads, steps, head size, target)
ATTENTION_CASE = ("attention causal B32 h4 T64 d32", 32, 4, 64, 32, 0.9)
# the GPT's attention (block 128): no target of its own, it tells the GPT step's story
GPT_ATTENTION_CASE = ("attention causal B32 h4 T128 d32", 32, 4, 128, 32, None)
# (name, d_model, nhead, dim_feedforward, batch, steps, target)
ENCODER_CASE = ("encoder layer d128 h4 ff512 B32 T64", 128, 4, 512, 32, 64, 0.9)
# (name, vocabulary, layers, heads, width, block, batch, target)
GPT_CASE = ("gpt training step 4x128 B32 T128", 65, 4, 4, 128, 128, 32, 0.9)


# ---------------------------------------------------------------------------- attention
def attention_case(batch, heads, steps, head_size, device, causal=True):
    """(handgrad_fn, torch_fn): causal attention forward + backward each, on the same
    q, k, v and the same upstream gradient."""
    gen = torch.Generator().manual_seed(0)
    shape = (batch, heads, steps, head_size)
    values = [torch.randn(shape, generator=gen).to(device) for _ in range(3)]
    upstream = torch.randn(shape, generator=gen).to(device)
    ours = [hg.Tensor(v.clone(), requires_grad=True) for v in values]
    theirs = [v.clone().requires_grad_() for v in values]
    hg_upstream = hg.Tensor(upstream)

    def handgrad_step():
        for x in ours:
            x.grad = None
        out = hg.nn.functional.scaled_dot_product_attention(*ours, is_causal=causal)
        out.backward(hg_upstream)
        return out

    def torch_step():
        for x in theirs:
            x.grad = None
        out = torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=causal)
        out.backward(upstream)
        return out

    return handgrad_step, torch_step


# ---------------------------------------------------------------------------- encoder layer
def encoder_layer_case(d_model, nhead, dim_feedforward, batch, steps, device):
    """(handgrad_fn, torch_fn): one TransformerEncoderLayer forward + backward each (twins
    with the same weights, the same input and upstream gradient)."""
    torch.manual_seed(0)
    options = dict(dim_feedforward=dim_feedforward, dropout=0.0, batch_first=True)
    ours = hg.nn.TransformerEncoderLayer(d_model, nhead, **options).to(device)
    theirs = torch.nn.TransformerEncoderLayer(d_model, nhead, **options).to(device)
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, steps, d_model, generator=gen).to(device)
    upstream = torch.randn(batch, steps, d_model, generator=gen).to(device)
    hx, tx = hg.Tensor(x.clone(), requires_grad=True), x.clone().requires_grad_()
    hg_upstream = hg.Tensor(upstream)
    our_params, their_params = list(ours.parameters()), list(theirs.parameters())

    def handgrad_step():
        hx.grad = None
        for p in our_params:
            p.grad = None
        out = ours(hx)
        out.backward(hg_upstream)
        return out

    def torch_step():
        tx.grad = None
        for p in their_params:
            p.grad = None
        out = theirs(tx)
        out.backward(upstream)
        return out

    return handgrad_step, torch_step


# ---------------------------------------------------------------------------- GPT
class TorchBlock(torch.nn.Module):
    """torch.nn's twin of handgrad.models.gpt.Block (pre-norm, causal SDPA, GELU MLP),
    with the same parameter names."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = torch.nn.LayerNorm(n_embd)
        self.attn = torch.nn.Module()
        self.attn.c_attn = torch.nn.Linear(n_embd, 3 * n_embd)
        self.attn.c_proj = torch.nn.Linear(n_embd, n_embd)
        self.ln_2 = torch.nn.LayerNorm(n_embd)
        self.mlp = torch.nn.Module()
        self.mlp.c_fc = torch.nn.Linear(n_embd, 4 * n_embd)
        self.mlp.c_proj = torch.nn.Linear(4 * n_embd, n_embd)

    def attention(self, x):
        B, T, C = x.shape
        q, k, v = self.attn.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in (q, k, v))  # (B, nh, T, hd)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.attn.c_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp.c_proj(torch.nn.functional.gelu(self.mlp.c_fc(self.ln_2(x))))


class TorchGPT(torch.nn.Module):
    """torch.nn's twin of handgrad.models.gpt.GPT (dropout 0, biases): token + position
    embedding, the blocks, the final LayerNorm, the lm head tied to the token embedding;
    the same state_dict keys."""

    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd):
        super().__init__()
        self.transformer = torch.nn.ModuleDict({
            "wte": torch.nn.Embedding(vocab_size, n_embd),
            "wpe": torch.nn.Embedding(block_size, n_embd),
            "h": torch.nn.ModuleList([TorchBlock(n_embd, n_head) for _ in range(n_layer)]),
            "ln_f": torch.nn.LayerNorm(n_embd),
        })
        self.lm_head = torch.nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying

    def forward(self, idx):
        positions = torch.arange(idx.shape[1], device=idx.device)  # (T,)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))  # (B, T, V)


def gpt_steps(vocab, n_layer, n_head, n_embd, block_size, batch, device, clip=1.0):
    """(handgrad_step, torch_step): zero_grad, forward, cross-entropy, backward,
    clip_grad_norm_, AdamW (the GPT recipe's lr, betas and two weight-decay groups), on
    twin GPTs with identical weights and the same batch; each returns its loss."""
    from handgrad.models.gpt import GPT, GPTConfig, build_optimizer

    config = GPTConfig(block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                       batch_size=batch)
    torch.manual_seed(0)
    ours = GPT(vocab, block_size, n_layer, n_head, n_embd).to(device)
    theirs = TorchGPT(vocab, block_size, n_layer, n_head, n_embd).to(device)
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, vocab, (batch, block_size), generator=gen).to(device)
    y = torch.randint(0, vocab, (batch, block_size), generator=gen).to(device)
    hx, hy = hg.Tensor(x), hg.Tensor(y)
    our_opt = build_optimizer(config, ours)
    decay = [p for p in theirs.parameters() if p.dim() >= 2]
    rest = [p for p in theirs.parameters() if p.dim() < 2]
    their_opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay},
         {"params": rest, "weight_decay": 0.0}],
        lr=config.lr, betas=(config.beta1, config.beta2))
    our_params, their_params = list(ours.parameters()), list(theirs.parameters())

    def handgrad_step():
        our_opt.zero_grad()
        _, loss = ours(hx, hy)
        loss.backward()
        hg.nn.utils.clip_grad_norm_(our_params, clip)
        our_opt.step()
        return loss

    def torch_step():
        their_opt.zero_grad()
        logits = theirs(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(their_params, clip)
        their_opt.step()
        return loss

    return handgrad_step, torch_step


# ---------------------------------------------------------------------------- the command
def _missing(case: str) -> str | None:
    """Why a case cannot run yet (its handgrad side is not in this checkout), or None."""
    if case == "encoder" and not hasattr(hg.nn, "TransformerEncoderLayer"):
        return "handgrad.nn.TransformerEncoderLayer is not there yet"
    if case == "gpt" and importlib.util.find_spec("handgrad.models.gpt") is None:
        return "handgrad.models.gpt is not there yet"
    return None


def run_all(device, rounds: int, inner: int, warmup: int = 2, only: str | None = None) -> dict:
    """Every case's compare() figures, keyed by its name (`only`: names containing it)."""
    cases = [
        ("attention", ATTENTION_CASE, attention_case),
        ("attention", GPT_ATTENTION_CASE, attention_case),
        ("encoder", ENCODER_CASE, encoder_layer_case),
        ("gpt", GPT_CASE, gpt_steps),
    ]
    results = {}
    for kind, (name, *sizes, target), build in cases:
        if only and only not in name:
            continue
        why = _missing(kind)
        if why:
            print(f"skipped {name}: {why}")
            continue
        ours, theirs = build(*sizes, device)
        results[name] = {**compare(ours, theirs, rounds=rounds, inner=inner, warmup=warmup,
                                   device=device), "target": target}
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_case_arguments(parser, only_examples="'attention', 'encoder', 'gpt'", default_rounds=15)


def run(args: argparse.Namespace) -> int:
    return run_cases(args, "transformer", run_all, rounds=15, inner=3, warmup=2)

