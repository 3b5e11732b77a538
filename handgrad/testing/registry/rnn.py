"""Registry entries for the whole-sequence recurrent stacks (handgrad/nn/functional/rnn.py:
RNNStack through rnn_tanh, rnn_relu, lstm, gru): one and two layers, one and two
directions, batch_first, without biases, the LSTM projection, no initial states, and
packed input (per-step batch sizes, decreasing).

Every entry takes the input, the initial states and every weight as differentiable
inputs (torch's _flat_weights order) and returns (output, h_n[, c_n]), so the checks
cover the gradients of all of them from all outputs. The reference is torch's own
kernel behind torch.nn's layers (torch._VF.rnn_tanh / rnn_relu / lstm / gru). The
composed reference is the step loop written with handgrad primitives: each step is the
cell's composed math (registry/rnn_cell.py: matmuls with the transposed weights, chunk,
sigmoid, tanh, relu), the rows of step t are the first batch_sizes[t] of a running
state (cat keeps the rest), and the outputs are cat over steps and directions.

Left out: the modules (tests/nn/test_rnn.py compares them with torch.nn's) and dropout
between layers (random; tests/nn/test_rnn.py checks its mask statistics).
"""

from __future__ import annotations

import torch

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.testing.registry import register
from handgrad.testing.registry.rnn_cell import _composed_gru, _composed_lstm, _composed_rnn

_FUNCTIONS = {"rnn_tanh": HF.rnn_tanh, "rnn_relu": HF.rnn_relu, "lstm": HF.lstm,
              "gru": HF.gru}
_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


# ============================================================== composed reference
def _composed_stack(mode, x, h0, c0, weights, bias, layers, bidirectional, batch_first,
                    batch_sizes=None):
    directions = 2 if bidirectional else 1
    if batch_sizes is None:
        seq = x.transpose(0, 1) if batch_first else x
        steps, batch = seq.shape[0], seq.shape[1]
        rows, sizes = seq.reshape(steps * batch, seq.shape[2]), [batch] * steps
    else:
        rows, sizes = x, list(batch_sizes)
        steps, batch = len(sizes), sizes[0]
    starts = [sum(sizes[:t]) for t in range(steps)]
    per = len(weights) // (layers * directions)
    step = {"rnn_tanh": _composed_rnn("tanh"), "rnn_relu": _composed_rnn("relu"),
            "gru": _composed_gru}.get(mode)
    finals_h, finals_c, layer_input = [], [], rows
    for layer in range(layers):
        outputs = []
        for direction in range(directions):
            k = layer * directions + direction
            w = weights[k * per:(k + 1) * per]
            w_ih, w_hh = w[0], w[1]
            biases = tuple(w[2:4]) if bias else ()
            w_hr = w[-1] if per in (3, 5) else None
            h, c = h0[k], (c0[k] if c0 is not None else None)
            out_steps = [None] * steps
            order = range(steps - 1, -1, -1) if direction == 1 else range(steps)
            for t in order:
                n = sizes[t]
                x_t = layer_input[starts[t]:starts[t] + n]
                if mode == "lstm":
                    h_new, c_new = _composed_lstm(x_t, h[:n], c[:n], w_ih, w_hh, *biases)
                    if w_hr is not None:
                        h_new = h_new @ w_hr.T
                    c = c_new if n == batch else hg.cat([c_new, c[n:]])
                else:
                    h_new = step(x_t, h[:n], w_ih, w_hh, *biases)
                h = h_new if n == batch else hg.cat([h_new, h[n:]])
                out_steps[t] = h_new
            outputs.append(hg.cat(out_steps))
            finals_h.append(h)
            finals_c.append(c)
        layer_input = hg.cat(outputs, 1) if directions == 2 else outputs[0]
    out = layer_input
    if batch_sizes is None:
        out = out.reshape(steps, batch, out.shape[1])
        if batch_first:
            out = out.transpose(0, 1)
    if mode == "lstm":
        return out, hg.stack(finals_h), hg.stack(finals_c)
    return out, hg.stack(finals_h)


# =========================================================================== entries
def _shapes(mode, steps, batch, features, hidden, layers, bidirectional, batch_first,
            bias, proj, initial, batch_sizes):
    """(x, [h0, c0], *weights) shapes in torch's _flat_weights order."""
    directions = 2 if bidirectional else 1
    gates = _GATES[mode] * hidden
    real = proj or hidden
    if batch_sizes is not None:
        shapes = [(sum(batch_sizes), features)]
        batch = batch_sizes[0]
    else:
        shapes = [(batch, steps, features) if batch_first else (steps, batch, features)]
    if initial:
        shapes.append((layers * directions, batch, real))
        if mode == "lstm":
            shapes.append((layers * directions, batch, hidden))
    for layer in range(layers):
        for _ in range(directions):
            width = features if layer == 0 else real * directions
            shapes += [(gates, width), (gates, real)]
            if bias:
                shapes += [(gates,), (gates,)]
            if proj:
                shapes.append((proj, hidden))
    return tuple(shapes)


def _reference(mode, x, hx, weights, bias, layers, bidirectional, batch_first,
               batch_sizes):
    kernel = getattr(torch._VF, mode)
    if batch_sizes is None:
        return tuple(kernel(x, hx, weights, bias, layers, 0.0, False, bidirectional,
                            batch_first))
    return tuple(kernel(x, torch.tensor(batch_sizes), hx, weights, bias, layers, 0.0, False,
                        bidirectional))


def _register(name, mode, *, layers=1, bidirectional=False, batch_first=False, bias=True,
              proj=0, initial=True, batch_sizes=None, cases=((4, 3, 3, 4), (2, 1, 2, 3))):
    states = (2 if mode == "lstm" else 1) if initial else 0
    config = (bias, layers, bidirectional, batch_first)

    def split(inputs):
        x, rest = inputs[0], inputs[1:]
        h0 = rest[0] if states else None
        c0 = rest[1] if states == 2 else None
        return x, h0, c0, list(rest[states:])

    def fn(*inputs):
        x, h0, c0, weights = split(inputs)
        hx = ((h0, c0) if initial else None) if mode == "lstm" else h0
        return tuple(_FUNCTIONS[mode](x, hx, weights, *config[:2], 0.0, False, *config[2:],
                                      batch_sizes))

    def ref(*inputs):
        x, h0, c0, weights = split(inputs)
        directions = 2 if bidirectional else 1
        batch = batch_sizes[0] if batch_sizes else x.shape[0 if batch_first else 1]
        if h0 is None:
            h0 = x.new_zeros(layers * directions, batch, proj or weights[1].shape[1])
            c0 = x.new_zeros(layers * directions, batch, weights[1].shape[0] // 4)
        hx = (h0, c0) if mode == "lstm" else h0
        return _reference(mode, x, hx, weights, *config, batch_sizes)

    def composed(*inputs):
        x, h0, c0, weights = split(inputs)
        directions = 2 if bidirectional else 1
        batch = batch_sizes[0] if batch_sizes else x.shape[0 if batch_first else 1]
        hidden = weights[1].shape[0] // _GATES[mode]
        if h0 is None:
            h0 = hg.zeros(layers * directions, batch, weights[1].shape[1], dtype=x.dtype)
            if mode == "lstm":
                c0 = hg.zeros(layers * directions, batch, hidden, dtype=x.dtype)
        return _composed_stack(mode, x, h0, c0, weights, *config, batch_sizes)

    register(
        name, fn=fn, ref=ref, composed=composed,
        shapes=[_shapes(mode, *case, layers, bidirectional, batch_first, bias, proj,
                        initial, batch_sizes) for case in cases],
        covers=(HF.RNNStack,),
        note=f"{layers} layer(s), {'bi' if bidirectional else 'uni'}directional"
             + (", packed" if batch_sizes else ""),
    )


PACKED = (3, 3, 2, 1)  # batch sizes of four steps: lengths 4, 3, 2
PACKED_CASES = ((4, 3, 3, 4), (4, 3, 2, 3))  # steps and batch follow PACKED
for mode in ("rnn_tanh", "rnn_relu", "lstm", "gru"):
    _register(mode, mode)
    _register(f"{mode}_2_layers_bidirectional", mode, layers=2, bidirectional=True)
    _register(f"{mode}_batch_first_no_bias", mode, batch_first=True, bias=False)
    _register(f"{mode}_no_initial_state", mode, initial=False, bidirectional=True)
    _register(f"{mode}_packed_bidirectional", mode, bidirectional=True, batch_sizes=PACKED,
              cases=PACKED_CASES)
_register("lstm_projection_2_layers_bidirectional", "lstm", layers=2, bidirectional=True,
          proj=2)
_register("lstm_projection_packed_no_bias", "lstm", proj=2, bias=False, batch_sizes=PACKED,
          cases=PACKED_CASES)
