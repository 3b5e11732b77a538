"""`handgrad bench rnn`: the LSTM and GRU layers over a whole sequence, handgrad's fused
BPTT (handgrad/nn/functional/rnn.py) vs torch.nn.LSTM / torch.nn.GRU (torch's native
kernels: oneDNN's LSTM on CPU where torch uses it, cuDNN on GPU).

Each case times forward + backward (a fixed random upstream gradient on the output and
on the final states; the gradients of the input and of every parameter) in one
process, alternating, after warm-up (handgrad.bench.timing.compare), and reports the
median ratio torch_time / handgrad_time (above 1.0: handgrad is faster), at the issue's
sizes: T=64 steps, B=32, I=65 (a character vocabulary), H=128 and H=512, one layer.

The char-LM training step ("char-lstm training step ..."): the reference char-LSTM
(handgrad/models/char_rnn.py's CharRNN with the reference config's sizes: vocabulary 65,
embedding 64, 2 layers of H=384) at B=32, T=64, one step of zero_grad, forward,
cross-entropy over all B*T positions, backward, clip_grad_norm_ to 1.0 and Adam
(lr 3e-3), on twin models (handgrad.nn and torch.nn + torch.optim) with identical weights
and the same batch; the hidden state starts at zeros (no carried state).

Targets: >= 0.8 at H=128 and >= 1.0 at H=512; the training step has none (the issue
asks for its figure only). Left out: RNN with tanh/relu (the same loop, fewer kernels),
the learning rate schedule of the reference recipe (no kernels on either side).
"""

from __future__ import annotations

import argparse

import torch

import handgrad as hg
from handgrad.bench.timing import add_case_arguments, compare, run_cases

# (name, mode, steps, batch, input size, hidden size, target)
CASES = [
    ("lstm T64 B32 I65 H128", "LSTM", 64, 32, 65, 128, 0.8),
    ("gru T64 B32 I65 H128", "GRU", 64, 32, 65, 128, 0.8),
    ("lstm T64 B32 I65 H512", "LSTM", 64, 32, 65, 512, 1.0),
    ("gru T64 B32 I65 H512", "GRU", 64, 32, 65, 512, 1.0),
]
# the char-LM training step: (name, vocabulary, embedding, hidden, layers, batch, steps)
STEP_CASE = ("char-lstm training step 2x384 E64 B32 T64", 65, 64, 384, 2, 32, 64)


def layer_case(mode, steps, batch, features, hidden, device):
    """(handgrad_fn, torch_fn): one layer forward + backward each, on twin layers with
    the same weights, the same input and the same upstream gradients."""
    torch.manual_seed(0)
    ours = getattr(hg.nn, mode)(features, hidden).to(device)
    theirs = getattr(torch.nn, mode)(features, hidden).to(device)
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(steps, batch, features, generator=gen).to(device)
    g_out = torch.randn(steps, batch, hidden, generator=gen).to(device)
    g_h = torch.randn(1, batch, hidden, generator=gen).to(device)
    hx, tx = hg.Tensor(x.clone(), requires_grad=True), x.clone().requires_grad_()
    hg_out, hg_h = hg.Tensor(g_out), hg.Tensor(g_h)
    our_params, their_params = list(ours.parameters()), list(theirs.parameters())

    def handgrad_step():
        hx.grad = None
        for p in our_params:
            p.grad = None
        out, hidden_state = ours(hx)
        h_n = hidden_state[0] if mode == "LSTM" else hidden_state
        hg.autograd.backward([out, h_n], [hg_out, hg_h])

    def torch_step():
        tx.grad = None
        for p in their_params:
            p.grad = None
        out, hidden_state = theirs(tx)
        h_n = hidden_state[0] if mode == "LSTM" else hidden_state
        torch.autograd.backward([out, h_n], [g_out, g_h])

    return handgrad_step, torch_step


class TorchCharLSTM(torch.nn.Module):
    """torch.nn's twin of handgrad.models.char_rnn.CharRNN (cell lstm, no dropout): the
    same submodule names, so the same state_dict keys."""

    def __init__(self, vocab_size, embedding, hidden, layers):
        super().__init__()
        self.encoder = torch.nn.Embedding(vocab_size, embedding)
        self.rnn = torch.nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.head = torch.nn.Linear(hidden, vocab_size)

    def forward(self, input):
        output, state = self.rnn(self.encoder(input))
        return self.head(output), state


def char_lm_steps(vocab, embedding, hidden, layers, batch, steps, device, lr=3e-3,
                  clip=1.0):
    """(handgrad_step, torch_step): zero_grad, forward, cross-entropy over every position,
    backward, clip_grad_norm_, Adam step, on twin char-LSTMs with identical weights."""
    from handgrad.models.char_rnn import CharRNN

    torch.manual_seed(0)
    ours = CharRNN(vocab, "lstm", embedding, hidden, layers).to(device)
    theirs = TorchCharLSTM(vocab, embedding, hidden, layers).to(device)
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, vocab, (batch, steps), generator=gen).to(device)
    y = torch.randint(0, vocab, (batch, steps), generator=gen).to(device)
    hx, hy = hg.Tensor(x), hg.Tensor(y.reshape(-1))
    ty = y.reshape(-1)
    our_params, their_params = list(ours.parameters()), list(theirs.parameters())
    our_opt = hg.optim.Adam(our_params, lr=lr)
    their_opt = torch.optim.Adam(their_params, lr=lr)

    def handgrad_step():
        our_opt.zero_grad()
        logits, _ = ours(hx)
        loss = hg.nn.functional.cross_entropy(logits.reshape(-1, vocab), hy)
        loss.backward()
        hg.nn.utils.clip_grad_norm_(our_params, clip)
        our_opt.step()
        return loss

    def torch_step():
        their_opt.zero_grad()
        logits, _ = theirs(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), ty)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(their_params, clip)
        their_opt.step()
        return loss

    return handgrad_step, torch_step


def run_all(device, rounds: int, inner: int, warmup: int = 2, only: str | None = None) -> dict:
    """Every case's compare() figures, keyed by its name (`only`: names containing it)."""

    results = {}
    for name, mode, steps, batch, features, hidden, target in CASES:
        if only and only not in name:
            continue
        ours, theirs = layer_case(mode, steps, batch, features, hidden, device)
        results[name] = {**compare(ours, theirs, rounds=rounds, inner=inner, warmup=warmup,
                                   device=device), "target": target}
    name, *spec = STEP_CASE
    if not only or only in name:
        ours, theirs = char_lm_steps(*spec, device)
        results[name] = {**compare(ours, theirs, rounds=rounds, inner=inner, warmup=warmup,
                                   device=device), "target": None}
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_case_arguments(parser, only_examples="'lstm', 'H512', 'step'", default_rounds=15)


def run(args: argparse.Namespace) -> int:
    return run_cases(args, "rnn", run_all, rounds=15, inner=3, warmup=2)
