"""Registry entries for ctc_loss (handgrad/nn/functional/ctc.py).

The differentiable input is a batch of logits x (T, N, C) and both sides take
log_softmax(x) first: torch's ctc_loss backward returns exp(log_probs) - posterior, the
gradient for the logits of a log_softmax rather than for log_probs themselves (see
ctc.py), so torch and handgrad are compared where they must agree, on the logits,
while finite differences check handgrad's gradient. Extras: targets (labels never
blank, a repeated pair in the first item, so the alignment must pass a blank between
them), input lengths in [2 S_n, T] (every alignment possible) and target lengths, one of
them 0.

`composed` is the alpha recursion again, from handgrad primitives (gather, stack,
logsumexp, where) with -1e30 standing for log 0 (a finite stand-in keeps the primitives'
gradients free of inf - inf); its gradient comes from the graph, not from beta.

Left out: impossible alignments and every error (tests/nn/test_ctc.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.nn.functional.ctc import CTCLoss
from handgrad.testing.registry import register

_LOG_ZERO = -1e30


def _ctc_extras(blank, layout="padded"):
    def extras(gen, shapes):
        frames, batch, classes = shapes[0]
        longest = max(frames // 3, 1)
        labels = [c for c in range(classes) if c != (blank % classes)]
        pick = torch.randint(0, len(labels), (batch, longest), generator=gen)
        targets = torch.tensor(labels)[pick]
        target_lengths = torch.randint(1, longest + 1, (batch,), generator=gen)
        if longest > 1:
            targets[0, 1] = targets[0, 0]  # a repeat: needs a blank between
            target_lengths[0] = longest
        if batch > 1:
            target_lengths[-1] = 0  # an empty target: all blanks
        low = (2 * target_lengths).clamp(min=1)
        input_lengths = low + (torch.rand(batch, generator=gen) * (frames + 1 - low)).long()
        input_lengths[0] = frames
        if layout == "concatenated":
            targets = torch.cat([targets[n, :target_lengths[n]] for n in range(batch)])
        return targets, input_lengths, target_lengths
    return extras


def _composed_ctc(x, targets, input_lengths, target_lengths, blank, reduction):
    """-log P(target | x) by the alpha recursion over handgrad primitives."""
    log_probs = x.log_softmax(2)
    frames, batch, classes = log_probs.shape
    lengths = target_lengths.data.tolist()
    if targets.ndim == 1:  # concatenated -> padded
        rows, start = [], 0
        for n in lengths:
            rows.append(targets.data[start:start + n].tolist())
            start += n
        longest = max(lengths + [0])
        targets = hg.tensor([r + [blank] * (longest - len(r)) for r in rows],
                            dtype=hg.int64).reshape(batch, longest)
    states = 2 * targets.shape[1] + 1
    extended = torch.full((batch, states), blank, dtype=torch.long)
    extended[:, 1::2] = targets.data
    skip = torch.zeros(batch, states, dtype=torch.bool)
    skip[:, 3::2] = extended[:, 3::2] != extended[:, 1:-2:2]
    y = log_probs.gather(2, hg.tensor(extended).unsqueeze(0).expand(frames, batch, states))
    floor = hg.full((batch, 1), _LOG_ZERO, dtype=x.dtype)
    start = torch.full((batch, states), _LOG_ZERO, dtype=x.dtype)
    start[:, :2] = 0
    alpha = y[0] + hg.tensor(start)
    alphas = [alpha]
    for t in range(1, frames):
        one = hg.cat([floor, alpha[:, :-1]], dim=1)
        two = hg.where(hg.tensor(skip), hg.cat([floor, floor, alpha[:, :-2]], dim=1),
                       _LOG_ZERO)
        alpha = hg.stack([alpha, one, two]).logsumexp(0) + y[t]
        alphas.append(alpha)
    losses = []
    for n in range(batch):
        last = alphas[int(input_lengths.data[n]) - 1][n]
        end = 2 * lengths[n]
        ends = hg.stack([last[end], last[end - 1]]) if end else last[end:end + 1]
        losses.append(-ends.logsumexp(0))
    loss = hg.stack(losses)
    if reduction == "mean":
        return (loss / target_lengths.clamp(min=1).to(x.dtype)).mean()
    return loss.sum() if reduction == "sum" else loss


SHAPES = [((8, 3, 4),), ((6, 1, 3),)]
for blank, layout, reduction in [(0, "padded", "mean"), (0, "padded", "sum"),
                                 (0, "padded", "none"), (2, "concatenated", "mean"),
                                 (-1, "padded", "none"), (1, "concatenated", "sum")]:
    def blank_of(x, b=blank):
        return b % x.shape[-1]

    register(
        f"ctc_loss_blank{blank}_{layout}_{reduction}",
        fn=lambda x, tg, il, tl, b=blank_of, r=reduction: HF.ctc_loss(
            x.log_softmax(2), tg, il, tl, blank=b(x), reduction=r),
        ref=lambda x, tg, il, tl, b=blank_of, r=reduction: TF.ctc_loss(
            x.log_softmax(2), tg, il, tl, blank=b(x), reduction=r),
        composed=lambda x, tg, il, tl, b=blank_of, r=reduction: _composed_ctc(
            x, tg, il, tl, b(x), r),
        shapes=SHAPES,
        extras=_ctc_extras(blank, layout),
        covers=(CTCLoss,),
    )
register(
    "ctc_loss_unbatched",
    fn=lambda x, tg, il, tl: HF.ctc_loss(x.log_softmax(1), tg.reshape(-1), il.reshape(()),
                                         tl.reshape(()), reduction="none"),
    ref=lambda x, tg, il, tl: TF.ctc_loss(x.log_softmax(1), tg.reshape(-1), il.reshape(()),
                                          tl.reshape(()), reduction="none"),
    composed=lambda x, tg, il, tl: _composed_ctc(x.unsqueeze(1), tg, il, tl, 0,
                                                 "none").reshape(()),
    shapes=[((8, 4),)],
    extras=lambda gen, shapes: _ctc_extras(0, "concatenated")(
        gen, ((shapes[0][0], 1, shapes[0][1]),)),
    covers=(CTCLoss,),
)
