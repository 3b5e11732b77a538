"""One step of a recurrent cell as one fused Function each, forward and hand-derived
backward side by side (the math of nn.RNNCell, nn.LSTMCell and nn.GRUCell):

    RNNCellStep   h' = tanh or relu(x W_ih^T + b_ih + h W_hh^T + b_hh)
    LSTMCellStep  gates i, f, g, o -> (h', c'), returned as one (B, 2H) tensor [h' | c']
    GRUCellStep   gates r, z, n (r applied to W_hn h + b_hn) -> h'

and their functional forms, spelled as torch's (torch.rnn_tanh_cell, torch.rnn_relu_cell,
torch.lstm_cell, torch.gru_cell): rnn_tanh_cell, rnn_relu_cell, lstm_cell, gru_cell.

Shapes: x (B, I), h and c (B, H), W_ih (G H, I), W_hh (G H, H), biases (G H,) or None,
with G = 1, 4, 3 gates. Every backward below writes dP for the gradient of the gates'
pre-activations P = x W_ih^T + b_ih + h W_hh^T + b_hh (B, G H); from it the inputs'
gradients are the same four matmuls and two sums for every cell:
    dx = dP_x W_ih     dh (+)= dP_h W_hh     dW_ih = dP_x^T x     dW_hh = dP_h^T h
    db_ih = sum_rows dP_x     db_hh = sum_rows dP_h
where dP_x = dP_h = dP, except in the GRU (its candidate gate n sees r * (W_hn h + b_hn),
so the W_hh side of n gets dP_n * r).

An LSTM step has two differentiable outputs, and a handgrad Function one: the step
returns [h' | c'] and lstm_cell slices it (the slices are views whose gradients land in
the two halves of the one upstream gradient).

Left out: the modules, their checks, unbatched input and default states
(handgrad/nn/rnn_cell.py); whole sequences, where the input projection of all steps is
one matmul (handgrad/nn/functional/rnn.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function

__all__ = ["RNNCellStep", "LSTMCellStep", "GRUCellStep", "rnn_tanh_cell", "rnn_relu_cell",
           "lstm_cell", "gru_cell"]


def _affine(x, weight, bias):
    """x W^T + b in one addmm (b may be None)."""
    if bias is None:
        return torch.mm(x, weight.t())
    return torch.addmm(bias, x, weight.t())


def _input_grads(need, d_x_side, d_h_side, x, h, w_ih, w_hh, dh_extra=None):
    """The gradients of (x, h, W_ih, W_hh, b_ih, b_hh) from the pre-activation gradients
    of the x side and the h side (see the module docstring), where `need` (those six
    inputs' needs_input_grad) asks for them."""
    dx = torch.mm(d_x_side, w_ih) if need[0] else None
    dh = None
    if need[1]:
        dh = torch.mm(d_h_side, w_hh)
        if dh_extra is not None:
            dh += dh_extra
    dw_ih = torch.mm(d_x_side.t(), x) if need[2] else None
    dw_hh = torch.mm(d_h_side.t(), h) if need[3] else None
    db_ih = d_x_side.sum(0) if need[4] else None
    db_hh = d_h_side.sum(0) if need[5] else None
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


class RNNCellStep(Function):
    """h' = act(P),  P = x W_ih^T + b_ih + h W_hh^T + b_hh,  act = tanh or relu.

    Backward, with g = dL/dh':
        tanh: dP = g * (1 - h'^2)   (tanh' = 1 - tanh^2, read off the saved output)
        relu: dP = g * [h' > 0]     (relu' = 1 where the output is positive, 0 at and
                                     below the kink, as torch)
    then the shared matmuls: dx = dP W_ih, dh = dP W_hh, dW_ih = dP^T x, dW_hh = dP^T h,
    db_ih = db_hh = sum over the batch of dP. Saved: x, h, the weights and h'."""

    name = "rnn_cell"

    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh"):
        pre = _affine(x, w_ih, b_ih)
        pre = pre.addmm_(h, w_hh.t()) if b_hh is None else pre.add_(_affine(h, w_hh, b_hh))
        out = pre.tanh_() if nonlinearity == "tanh" else pre.clamp_min_(0)
        ctx.nonlinearity = nonlinearity
        ctx.save_for_backward(x, h, w_ih, w_hh, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, h, w_ih, w_hh, out = ctx.saved_tensors
        if ctx.nonlinearity == "tanh":
            d_pre = g * (1 - out * out)
        else:
            d_pre = g * (out > 0).to(g.dtype)
        return _input_grads(ctx.needs_input_grad, d_pre, d_pre, x, h, w_ih, w_hh)


class LSTMCellStep(Function):
    """P = x W_ih^T + b_ih + h W_hh^T + b_hh, split into four (B, H) chunks in torch's
    order i, f, g, o:
        i = sigmoid(P_i)  f = sigmoid(P_f)  g = tanh(P_g)  o = sigmoid(P_o)
        c' = f * c + i * g        h' = o * tanh(c')
    returned as one (B, 2H) tensor [h' | c'].

    Backward, with the upstream gradient split as [gh | gc] and tc = tanh(c'):
        do  = gh * tc
        dc' = gc + gh * o * (1 - tc^2)       (c' reaches the loss directly and via h')
        di  = dc' * g      df = dc' * c      dg = dc' * i      dc = dc' * f
    through the activations (sigmoid' = s (1 - s), tanh' = 1 - t^2):
        dP = [di * i (1 - i) | df * f (1 - f) | dg * (1 - g^2) | do * o (1 - o)]
    then the shared matmuls; dc is c's gradient. Saved: x, h, c, the weights, the four
    activated gates (B, 4H) and tc."""

    name = "lstm_cell"

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        gates = _affine(x, w_ih, b_ih)
        gates = gates.addmm_(h, w_hh.t()) if b_hh is None else gates.add_(
            _affine(h, w_hh, b_hh))
        hidden = h.shape[1]
        gates[:, :2 * hidden].sigmoid_()
        gates[:, 2 * hidden:3 * hidden].tanh_()
        gates[:, 3 * hidden:].sigmoid_()
        i, f, g, o = gates.chunk(4, 1)
        out = torch.empty((x.shape[0], 2 * hidden), dtype=gates.dtype, device=gates.device)
        h_new, c_new = out[:, :hidden], out[:, hidden:]
        torch.mul(f, c, out=c_new)
        c_new.addcmul_(i, g)
        tanh_c = torch.tanh(c_new)
        torch.mul(o, tanh_c, out=h_new)
        ctx.save_for_backward(x, h, c, w_ih, w_hh, gates, tanh_c)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, h, c, w_ih, w_hh, gates, tanh_c = ctx.saved_tensors
        hidden = h.shape[1]
        gh, gc = grad[:, :hidden], grad[:, hidden:]
        i, f, g, o = gates.chunk(4, 1)
        d_c_new = gc + gh * o * (1 - tanh_c * tanh_c)
        d_pre = torch.empty_like(gates)
        di, df, dg, do = d_pre.chunk(4, 1)
        torch.mul(d_c_new * g, i * (1 - i), out=di)
        torch.mul(d_c_new * c, f * (1 - f), out=df)
        torch.mul(d_c_new * i, 1 - g * g, out=dg)
        torch.mul(gh * tanh_c, o * (1 - o), out=do)
        need = ctx.needs_input_grad
        dx, dh, dw_ih, dw_hh, db_ih, db_hh = _input_grads(
            need[:2] + need[3:], d_pre, d_pre, x, h, w_ih, w_hh)
        dc = d_c_new * f if need[2] else None
        return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh


class GRUCellStep(Function):
    """A = x W_ih^T + b_ih and B = h W_hh^T + b_hh, each split in torch's order r, z, n:
        r = sigmoid(A_r + B_r)    z = sigmoid(A_z + B_z)
        n = tanh(A_n + r * B_n)   (r multiplies W_hn h + b_hn, bias included, as torch)
        h' = (1 - z) * n + z * h

    Backward, with g = dL/dh':
        dn = g * (1 - z)      dz = g * (h - n)      dh (direct) = g * z
        dN = dn * (1 - n^2)   (N = A_n + r B_n)
        dr = dN * B_n
        dR = dr * r (1 - r)   dZ = dz * z (1 - z)
    so dA = [dR | dZ | dN] and dB = [dR | dZ | dN * r]; then the shared matmuls with
    dP_x = dA, dP_h = dB, and dh = g * z + dB W_hh. Saved: x, h, the weights, r, z, n
    and B_n."""

    name = "gru_cell"

    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        a = _affine(x, w_ih, b_ih)  # (B, 3H)
        b = _affine(h, w_hh, b_hh)  # (B, 3H)
        hidden = h.shape[1]
        rz = a[:, :2 * hidden].add_(b[:, :2 * hidden]).sigmoid_()  # (B, 2H), in a
        r, z = rz[:, :hidden], rz[:, hidden:]
        b_n = b[:, 2 * hidden:]
        n = a[:, 2 * hidden:].addcmul_(r, b_n).tanh_()  # (B, H), in a
        out = torch.addcmul(n, z, h - n)  # (1 - z) n + z h = n + z (h - n)
        ctx.save_for_backward(x, h, w_ih, w_hh, a, b_n)
        return out

    @staticmethod
    def backward(ctx, g):
        x, h, w_ih, w_hh, a, b_n = ctx.saved_tensors
        hidden = h.shape[1]
        r, z, n = a[:, :hidden], a[:, hidden:2 * hidden], a[:, 2 * hidden:]
        d_a = torch.empty_like(a)
        d_r, d_z, d_n = d_a[:, :hidden], d_a[:, hidden:2 * hidden], d_a[:, 2 * hidden:]
        torch.mul(g * (1 - z), 1 - n * n, out=d_n)
        torch.mul(d_n * b_n, r * (1 - r), out=d_r)
        torch.mul(g * (h - n), z * (1 - z), out=d_z)
        d_b = d_a.clone()
        d_b[:, 2 * hidden:].mul_(r)
        need = ctx.needs_input_grad
        return _input_grads(need, d_a, d_b, x, h, w_ih, w_hh,
                            dh_extra=g * z if need[1] else None)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman step with tanh, as torch.rnn_tanh_cell: (B, I), (B, H) -> (B, H)."""
    return RNNCellStep.apply(input, hx, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh")


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman step with relu, as torch.rnn_relu_cell: (B, I), (B, H) -> (B, H)."""
    return RNNCellStep.apply(input, hx, w_ih, w_hh, b_ih, b_hh, nonlinearity="relu")


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step, as torch.lstm_cell: hx = (h, c), each (B, H) -> (h', c')."""
    h, c = hx
    both = LSTMCellStep.apply(input, h, c, w_ih, w_hh, b_ih, b_hh)
    hidden = h.shape[-1]
    return both[:, :hidden], both[:, hidden:]


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step, as torch.gru_cell: (B, I), (B, H) -> (B, H)."""
    return GRUCellStep.apply(input, hx, w_ih, w_hh, b_ih, b_hh)
