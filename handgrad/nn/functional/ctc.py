"""Connectionist temporal classification (CTC) loss: ctc_loss and its fused Function,
the forward-backward (alpha-beta) algorithm of Graves et al. (2006) in log space,
written by hand.

A target l_1..l_S of batch item n is spread over its T_n = input_lengths[n] frames by
every alignment that, after merging repeats and dropping blanks, reads l. The extended
label sequence l' = (blank, l_1, blank, l_2, ..., l_S, blank) has L = 2 S + 1 states;
an alignment walks through them, one state per frame, staying, stepping one state on,
or skipping a blank between two different labels. With y_t(c) = exp(log_probs[t, n, c]):

    alpha_0(0) = y_0(blank),  alpha_0(1) = y_0(l_1)
    alpha_t(s) = y_t(l'_s) (alpha_{t-1}(s) + alpha_{t-1}(s-1) + [skip s] alpha_{t-1}(s-2))
    P(l | x) = alpha_{T_n-1}(L-1) + alpha_{T_n-1}(L-2),     loss_n = -log P
    beta_{T_n-1}(L-1) = y(blank),  beta_{T_n-1}(L-2) = y(l_S)
    beta_t(s) = y_t(l'_s) (beta_{t+1}(s) + beta_{t+1}(s+1) + [skip s+2] beta_{t+1}(s+2))

where [skip s] is: l'_s is a label and l'_s != l'_{s-2}. Everything is kept as logs
(alpha, beta, log P), sums of exps computed around their max. One Python loop runs over
time; each step works on the whole batch and every state at once (the targets padded to
the longest; items whose frames have ended keep their alpha and have beta -inf).

Gradient. alpha_t(s) beta_t(s) / (y_t(l'_s) P) is the posterior probability gamma_t(s)
of being in state s at frame t, so
    d loss_n / d log_probs[t, n, c] = -sum_{s: l'_s = c} gamma_t(s)     (t < T_n, else 0)
computed as exp(log alpha + log beta - log y + loss_n), a number in [0, 1]. The
gradient reaching loss_n is g / (N max(S_n, 1)) for 'mean' (torch divides each loss by
its target length, then averages), g for 'sum', g_n for 'none'.

How it differs from torch: torch's ctc_loss backward returns exp(log_probs) - gamma,
the gradient with respect to the logits of a log_softmax, not the gradient with
respect to log_probs (it fails torch.autograd.gradcheck on log_probs). Wherever the
log_probs are normalised (log_softmax, or any log of a distribution), the extra
exp(log_probs) term is orthogonal to every direction the log_probs can move in, so
every gradient upstream of them (the logits, the weights) is the same as torch's; only
log_probs.grad itself differs, by exp(log_probs) times the gradient reaching the loss.
handgrad returns the true gradient, which finite differences confirm.

Impossible alignments (T_n too short for the target and its repeats) have P = 0: the
loss is inf and, as in torch, the gradient nan, unless zero_infinity, which makes both 0.

Left out: cuDNN's and torch's CUDA kernels (this runs the same algorithm on any device),
double backward.
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function, HandgradError

__all__ = ["CTCLoss", "ctc_loss"]


def _logsumexp(*terms):
    """log(sum_i exp(terms_i)) elementwise around the max; -inf where every term is."""
    top = terms[0]
    for term in terms[1:]:
        top = torch.maximum(top, term)
    shift = torch.where(top == -torch.inf, 0, top)
    total = torch.exp(terms[0] - shift)
    for term in terms[1:]:
        total = total + torch.exp(term - shift)
    return shift + torch.log(total)


def _logsumexp_last(x):
    """log(sum exp(x)) over the last dim around its max; -inf where all of it is. (The
    max is floored at the dtype's lowest number, so an all -inf row stays -inf, not nan.)"""
    top = x.amax(-1, keepdim=True).clamp_(min=torch.finfo(x.dtype).min)
    return (x - top).exp_().sum(-1).log_().add_(top.squeeze(-1))


class CTCLoss(Function):
    """CTC loss of log-probabilities (T, N, C) against padded targets (N, S): see the
    module docstring for the recursions and the gradient (-gamma, summed per class)."""

    name = "ctc_loss"

    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, blank=0,
                reduction="mean", zero_infinity=False):
        frames, batch, _ = log_probs.shape
        states = 2 * targets.shape[1] + 1
        device = log_probs.device
        s = torch.arange(states, device=device)
        # the extended labels l' (blank where a state lies past the target), (N, L)
        position = (s - 1).div(2, rounding_mode="floor").clamp(min=0)
        is_label = (s % 2 == 1) & (position < target_lengths.unsqueeze(1))
        if targets.shape[1]:
            labels = targets.gather(1, position.expand(batch, states).clamp(
                max=targets.shape[1] - 1))
        else:
            labels = torch.zeros(batch, states, dtype=torch.long, device=device)
        extended = torch.where(is_label, labels, blank)
        skip = is_label & (s >= 3)
        skip[:, 2:] &= extended[:, 2:] != extended[:, :-2]
        y = log_probs.gather(2, extended.unsqueeze(0).expand(frames, batch, states))  # (T,N,L)

        # alpha over time in a buffer with two -inf states on the left (s - 1, s - 2 < 0):
        # row t - 1 seen as (N, L, 3) windows (s - 2, s - 1, s) is one strided view, and
        # `allowed` (0 or -inf) switches the skip from s - 2 on or off. Past an item's
        # frames alpha runs on unread (beta is -inf there and P is read at T_n - 1).
        neg_inf = torch.tensor(-torch.inf, dtype=log_probs.dtype, device=device)
        alpha = torch.full((frames, batch, states + 2), -torch.inf, dtype=log_probs.dtype,
                           device=device)
        alpha[0, :, 2] = y[0, :, 0]
        if states > 1:
            alpha[0, :, 3] = torch.where(target_lengths > 0, y[0, :, 1], neg_inf)
        allowed = torch.zeros(batch, states, 3, dtype=log_probs.dtype, device=device)
        allowed[:, :, 0] = torch.where(skip, 0.0, -torch.inf)
        for t in range(1, frames):
            previous = alpha[t - 1]
            windows = previous.as_strided((batch, states, 3), (states + 2, 1, 1),
                                          previous.storage_offset())
            alpha[t, :, 2:] = _logsumexp_last(windows + allowed) + y[t]
        log_alpha = alpha[:, :, 2:]

        # log P from each item's last frame: the last blank and the last label
        last = (input_lengths - 1).clamp(min=0).view(1, batch, 1).expand(1, batch, states)
        final = log_alpha.gather(0, last).squeeze(0)  # (N, L)
        end = (2 * target_lengths).unsqueeze(1)
        log_p = _logsumexp(final.gather(1, end).squeeze(1),
                           torch.where(target_lengths > 0,
                                       final.gather(1, (end - 1).clamp(min=0)).squeeze(1),
                                       neg_inf))
        # no frames: P = 1 for an empty target, 0 otherwise
        empty = torch.where(target_lengths == 0, 0.0, -torch.inf).to(log_probs.dtype)
        nll = -torch.where(input_lengths == 0, empty, log_p)  # (N,)

        infinite = torch.isinf(nll) if zero_infinity else None
        loss = torch.where(infinite, 0, nll) if zero_infinity else nll
        ctx.save_for_backward(y, log_alpha, nll, extended, skip, input_lengths,
                              target_lengths, infinite)
        ctx.options = (reduction, log_probs.shape)
        if reduction == "mean":
            return (loss / target_lengths.clamp(min=1)).mean()
        return loss.sum() if reduction == "sum" else loss

    @staticmethod
    def backward(ctx, g):
        (y, log_alpha, nll, extended, skip, input_lengths, target_lengths,
         infinite) = ctx.saved_tensors
        reduction, shape = ctx.options
        frames, batch, states = y.shape
        device, dtype = y.device, y.dtype
        s = torch.arange(states, device=device)
        neg_inf = torch.tensor(-torch.inf, dtype=dtype, device=device)

        # beta over time, backwards, in a buffer with two -inf states on the right
        # (s + 1, s + 2 >= L): windows (s, s + 1, s + 2) of row t + 1, the skip from s + 2
        # allowed where [skip s + 2]. Each item starts at its last frame T_n - 1 (from
        # its last blank and last label); before that (t >= T_n) beta stays -inf.
        allowed = torch.zeros(batch, states, 3, dtype=dtype, device=device)
        allowed[:, :, 2] = -torch.inf
        allowed[:, :-2, 2] = torch.where(skip[:, 2:], 0.0, -torch.inf)
        end = (2 * target_lengths).unsqueeze(1)
        is_end = (s == end) | ((s == end - 1) & (target_lengths.unsqueeze(1) > 0))
        starts = torch.where(is_end, y, neg_inf)  # (T, N, L)
        live = torch.arange(frames, device=device).view(-1, 1) < input_lengths  # (T, N)
        first = (torch.arange(frames, device=device).view(-1, 1)
                 == input_lengths - 1).unsqueeze(-1)  # (T, N, 1)
        beta = torch.full((frames + 1, batch, states + 2), -torch.inf, dtype=dtype,
                          device=device)
        for t in range(frames - 1, -1, -1):
            after = beta[t + 1]
            windows = after.as_strided((batch, states, 3), (states + 2, 1, 1),
                                       after.storage_offset())
            step = _logsumexp_last(windows + allowed) + y[t]
            beta[t, :, :-2] = torch.where(first[t], starts[t], step)
        log_beta = beta[:frames, :, :-2]

        # gamma_t(s) = alpha beta / (y P), 0 past each item's frames and states
        log_ab = log_alpha + log_beta
        gamma = torch.exp(log_ab - y + nll.view(1, batch, 1))
        gamma = torch.where(live.unsqueeze(-1) & (log_ab != -torch.inf), gamma, 0)
        if reduction == "mean":
            h = g / (target_lengths.clamp(min=1) * batch)
        else:
            h = g.expand(batch) if reduction == "sum" else g
        if infinite is not None:
            h = torch.where(infinite, 0, h)
            gamma = torch.where(infinite.view(1, batch, 1), 0, gamma)
        grad = torch.zeros(shape, dtype=dtype, device=device)
        grad.scatter_add_(2, extended.unsqueeze(0).expand(frames, batch, states),
                          gamma * -h.to(dtype).view(1, batch, 1))
        if infinite is None:  # P = 0: nan on the item's frames, every class, as torch
            lost = (live & torch.isinf(nll)).unsqueeze(-1)  # (T, N, 1)
            grad = torch.where(lost, torch.nan, grad)
        return grad, None, None, None, None, None, None


# ------------------------------------------------------------------ the functional form
def _lengths(name: str, lengths, batch: int, device) -> torch.Tensor:
    """input_lengths / target_lengths (a tensor, a sequence or one int) as an (N,) int64
    tensor, with torch's checks."""
    data = getattr(lengths, "data", lengths)
    if not isinstance(data, torch.Tensor):
        data = torch.as_tensor(data)
    if data.dtype.is_floating_point or data.dtype == torch.bool:
        raise HandgradError(f"ctc_loss: {name} must be integral, got {data.dtype}")
    data = data.reshape(-1)
    if data.numel() != batch:
        raise HandgradError(f"ctc_loss: {name} must be of size batch_size ({batch}), got "
                            f"{data.numel()} values")
    return data.to(device=device, dtype=torch.long)


def _padded_targets(targets, target_lengths, batch: int, classes: int) -> torch.Tensor:
    """Targets as (N, S) int64 whatever their layout: padded (N, S) with S >= every
    target length, or concatenated (sum of the target lengths,)."""
    data = getattr(targets, "data", targets)
    if not isinstance(data, torch.Tensor):
        data = torch.as_tensor(data)
    data = data.to(device=target_lengths.device, dtype=torch.long)
    lengths = target_lengths.cpu()
    longest = int(lengths.max()) if lengths.numel() else 0
    if data.ndim == 1:  # concatenated
        total = int(lengths.sum())
        if data.numel() != total:
            raise HandgradError(
                f"ctc_loss: concatenated targets (1-d) must hold sum(target_lengths) = "
                f"{total} labels, got {data.numel()}; for padded targets pass an (N, S) "
                "tensor")
        starts = torch.cumsum(target_lengths, 0) - target_lengths
        offsets = torch.arange(longest, device=data.device)
        index = (starts.unsqueeze(1) + offsets).clamp(max=max(total - 1, 0))
        inside = offsets < target_lengths.unsqueeze(1)
        padded = data[index] if total else torch.zeros(batch, longest, dtype=torch.long,
                                                       device=data.device)
    elif data.ndim == 2:
        if data.shape[0] != batch or data.shape[1] < longest:
            raise HandgradError(
                f"ctc_loss: padded targets must have shape (N, S) = ({batch}, >= "
                f"{longest}) (the batch, the longest target length), got "
                f"{tuple(data.shape)}")
        padded = data
        inside = torch.arange(data.shape[1], device=data.device) < target_lengths.unsqueeze(1)
    else:
        raise HandgradError(f"ctc_loss: targets must be (N, S) padded or 1-d concatenated, "
                            f"got shape {tuple(data.shape)}")
    if padded.device.type == "cpu":
        used = padded[inside]
        bad = used[(used < 0) | (used >= classes)]
        if bad.numel():
            raise HandgradError(f"ctc_loss: target labels must be in [0, {classes}) (the "
                                f"classes of log_probs), got {bad[0].item()}")
    return padded


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """PyTorch's nn.functional.ctc_loss: the negative log-likelihood of each target
    sequence under every alignment with the frames of log_probs.

    log_probs: (T, N, C) or unbatched (T, C) log-probabilities (e.g. log_softmax over
    C); targets: padded (N, S) or concatenated (sum(target_lengths),) class indices,
    never `blank`; input_lengths, target_lengths: (N,) tensors or sequences of ints.
    reduction 'mean' divides each loss by its target length, then averages the batch.
    zero_infinity: infinite losses (impossible alignments) and their gradients become 0.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"ctc_loss: {reduction!r} is not a valid value for reduction; use "
                         "'mean', 'sum' or 'none'")
    if log_probs.ndim not in (2, 3):
        raise HandgradError(f"ctc_loss: log_probs must be (T, N, C) or unbatched (T, C), "
                            f"got shape {tuple(log_probs.shape)}")
    batched = log_probs.ndim == 3
    if not batched:
        log_probs = log_probs.unsqueeze(1)
    frames, batch, classes = log_probs.shape
    if not 0 <= blank < classes:
        raise HandgradError(f"ctc_loss: blank must be in label range [0, {classes}), got "
                            f"{blank}")
    device = log_probs.device
    input_lengths = _lengths("input_lengths", input_lengths, batch, device)
    target_lengths = _lengths("target_lengths", target_lengths, batch, device)
    given = input_lengths.cpu()
    if given.numel() and (int(given.max()) > frames or int(given.min()) < 0):
        bad = int(given.max()) if int(given.max()) > frames else int(given.min())
        raise HandgradError(f"ctc_loss: input_lengths must be in [0, {frames}] (the frames "
                            f"of log_probs), got {bad}")
    if target_lengths.numel() and int(target_lengths.min()) < 0:
        raise HandgradError(f"ctc_loss: target_lengths must be >= 0, got "
                            f"{int(target_lengths.min())}")
    padded = _padded_targets(targets, target_lengths, batch, classes)
    loss = CTCLoss.apply(log_probs, padded, input_lengths, target_lengths, int(blank),
                         reduction, bool(zero_infinity))
    if not batched and reduction == "none":
        loss = loss.squeeze(0)
    return loss
