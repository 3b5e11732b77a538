"""The recurrent cells, one time step each, as torch.nn's: RNNCell (tanh or relu),
LSTMCell and GRUCell, on their common base RNNCellBase.

Parameters as torch's, so state_dicts move both ways: weight_ih (G*hidden, input),
weight_hh (G*hidden, hidden), bias_ih and bias_hh (G*hidden,) with G = 1, 4 (LSTM gates
i, f, g, o) or 3 (GRU gates r, z, n) stacked in that order; all initialised
U(-1/sqrt(hidden), 1/sqrt(hidden)). Input (B, input_size) or unbatched (input_size,);
the state (hx; for the LSTM the tuple (h, c)) defaults to zeros. Each forward is one
fused Function (handgrad/nn/functional/rnn_cell.py) holding the math and its backward;
this file holds torch's checks and the unbatched and default-state handling.

A cell runs one step; a loop over time with a cell computes what nn.RNN / nn.LSTM /
nn.GRU compute for a whole sequence in one fused Function (handgrad/nn/rnn.py), which
is faster because the input projection of every step is one matmul there.

Left out: device/dtype placement beyond the constructor's device= and dtype=.
"""

from __future__ import annotations

import math

import torch

from handgrad._creation import zeros
from handgrad.autograd import HandgradError
from handgrad.nn import init
from handgrad.nn.functional.rnn_cell import gru_cell, lstm_cell, rnn_relu_cell, rnn_tanh_cell
from handgrad.nn.module import Module, Parameter

__all__ = ["RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


class RNNCellBase(Module):
    """The parameters, init, repr and input checks the three cells share."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        options = {"device": device, "dtype": dtype}
        self.weight_ih = Parameter(torch.empty((num_chunks * hidden_size, input_size),
                                               **options))
        self.weight_hh = Parameter(torch.empty((num_chunks * hidden_size, hidden_size),
                                               **options))
        if bias:
            self.bias_ih = Parameter(torch.empty(num_chunks * hidden_size, **options))
            self.bias_hh = Parameter(torch.empty(num_chunks * hidden_size, **options))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden))."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        return text

    # ---------------------------------------------------------------- checks
    def _batched_input(self, input):
        """(input as (B, input_size), whether it came batched), with torch's checks."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D "
                             f"instead (input of shape {tuple(input.shape)}); a whole "
                             "sequence goes to nn.RNN / nn.LSTM / nn.GRU, or loop over "
                             "its steps")
        if input.shape[-1] != self.input_size:
            raise HandgradError(
                f"{name}: input has inconsistent input_size: got {input.shape[-1]} expected "
                f"{self.input_size} (input of shape {tuple(input.shape)})")
        batched = input.ndim == 2
        return (input if batched else input.unsqueeze(0)), batched

    def _state(self, state, input, batched: bool, which: str):
        """A state (hx, or one half of the LSTM's) as (B, hidden): zeros when None."""
        name = type(self).__name__
        if state is None:
            return zeros((input.shape[0], self.hidden_size), dtype=input.dtype,
                         device=input.device)
        if state.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected {which} to be 1D or 2D, got {state.ndim}D "
                             f"instead ({which} of shape {tuple(state.shape)})")
        expected = (input.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        if tuple(state.shape) != expected:
            raise HandgradError(
                f"{name}: {which} of shape {tuple(state.shape)} does not fit the input of "
                f"shape {tuple(input.shape if batched else input.shape[1:])}: expected "
                f"{expected} (batch size, hidden_size={self.hidden_size})"
                + ("" if batched else "; an unbatched input takes an unbatched state"))
        return state if batched else state.unsqueeze(0)


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu): an Elman RNN step."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: Unknown nonlinearity '{nonlinearity}'. Select from "
                             "'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device,
                         dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        input, batched = self._batched_input(input)
        hx = self._state(hx, input, batched, "hx")
        step = rnn_tanh_cell if self.nonlinearity == "tanh" else rnn_relu_cell
        out = step(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out if batched else out.squeeze(0)


class LSTMCell(RNNCellBase):
    """(h', c') from (x, (h, c)): gates i, f, g, o; c' = f c + i g, h' = o tanh(c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device,
                         dtype=dtype)

    def forward(self, input, hx=None):
        input, batched = self._batched_input(input)
        if hx is None:
            hx = (None, None)
        elif not isinstance(hx, tuple | list) or len(hx) != 2:
            raise TypeError(f"LSTMCell: hx must be a tuple (h_0, c_0) of two tensors, got "
                            f"{type(hx).__name__}")
        h = self._state(hx[0], input, batched, "hx[0]")
        c = self._state(hx[1], input, batched, "hx[1]")
        h, c = lstm_cell(input, (h, c), self.weight_ih, self.weight_hh, self.bias_ih,
                         self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """h' = (1 - z) n + z h with gates r, z and n = tanh(W_in x + b_in + r (W_hn h + b_hn))."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device,
                         dtype=dtype)

    def forward(self, input, hx=None):
        input, batched = self._batched_input(input)
        hx = self._state(hx, input, batched, "hx")
        out = gru_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out if batched else out.squeeze(0)
