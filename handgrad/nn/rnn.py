"""The sequence layers RNN (tanh, relu), LSTM (with proj_size) and GRU, and their base
RNNBase, as torch.nn's: the same constructor, parameter names, shapes and registration
order (weight_ih_l{k}{_reverse}, weight_hh_l..., bias_ih_l..., bias_hh_l...,
weight_hr_l...), so state_dicts move both ways; init U(-1/sqrt(H), 1/sqrt(H)) for every
parameter; forward(input, hx=None) on (T, B, I) / (B, T, I) / unbatched (T, I) input or
a PackedSequence, returning (output, h_n) or, for the LSTM, (output, (h_n, c_n)).

Each forward is one fused Function over the whole stack (RNNStack in
handgrad/nn/functional/rnn.py, with the BPTT derivations); this file holds the argument
checks (torch's messages and exception types) and the batching, unbatching and packed
bookkeeping (the initial states are reordered by sorted_indices, the final ones put
back by unsorted_indices).

Left out: the cells (rnn_cell.py), the packing functions (handgrad/nn/utils/rnn.py),
cuDNN's flattened weight buffer (flatten_parameters() is a no-op, as on torch's CPU).
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch

from handgrad.nn import init
from handgrad.nn.functional import rnn as rnn_functional
from handgrad.nn.module import Module, Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_FUNCTIONS = {"RNN_TANH": rnn_functional.rnn_tanh, "RNN_RELU": rnn_functional.rnn_relu,
              "GRU": rnn_functional.gru, "LSTM": rnn_functional.lstm}
_NAMES = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


def _packed_type():
    from handgrad.nn.utils.rnn import PackedSequence  # lazily: utils sits above nn.rnn

    return PackedSequence


class RNNBase(Module):
    """What RNN, LSTM and GRU share: the parameters of every layer and direction, the
    checks of forward's arguments, and the call of the fused stack."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        options = {"device": device, "dtype": dtype}
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, "
                          "so non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        for name, value in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        gate_size = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(directions):
                layer_input = input_size if layer == 0 else real_hidden * directions
                shapes = [("weight_ih_l{}{}", (gate_size, layer_input)),
                          ("weight_hh_l{}{}", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih_l{}{}", (gate_size,)), ("bias_hh_l{}{}", (gate_size,))]
                if proj_size > 0:
                    shapes += [("weight_hr_l{}{}", (proj_size, hidden_size))]
                suffix = "_reverse" if direction == 1 else ""
                names = []
                for pattern, shape in shapes:
                    name = pattern.format(layer, suffix)
                    setattr(self, name, Parameter(torch.empty(shape, **options)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    # ------------------------------------------------------------------ parameters
    def reset_parameters(self) -> None:
        """torch's init: every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(...))."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Parameter]]:
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op: handgrad keeps no flattened weight buffer (torch's is for cuDNN)."""

    # ---------------------------------------------------------------------- checks
    def _real_hidden(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def check_input(self, input, batch_sizes) -> None:
        weight = self._flat_weights[0]
        if input.dtype != weight.dtype:
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype "
                             f"({weight.dtype}). Convert input: input.to({weight.dtype}), or "
                             f"convert model: model.to({input.dtype})")
        expected = 2 if batch_sizes is not None else 3
        if input.ndim != expected:
            raise RuntimeError(f"input must have {expected} dimensions, got {input.ndim}")
        if self.input_size != input.shape[-1]:
            raise RuntimeError("input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {input.shape[-1]}")

    def get_expected_hidden_size(self, input, batch_sizes) -> tuple[int, int, int]:
        if batch_sizes is not None:
            batch = int(batch_sizes[0])
        else:
            batch = input.shape[0] if self.batch_first else input.shape[1]
        directions = 2 if self.bidirectional else 1
        return (self.num_layers * directions, batch, self._real_hidden())

    def check_hidden_size(self, hx, expected, msg: str = "Expected hidden size {}, got {}"):
        if tuple(hx.shape) != tuple(expected):
            raise RuntimeError(msg.format(tuple(expected), list(hx.shape)))

    def check_forward_args(self, input, hidden, batch_sizes) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    # --------------------------------------------------------------------- forward
    def _prepare(self, input, hx):
        """(input data, hx, batch_sizes, packed input or None, batched?) with hx put in
        sorted order for packed input, and the rank checks of torch's forward."""
        packed_type = _packed_type()
        if isinstance(input, packed_type):
            data, batch_sizes, sorted_indices, _ = input
            if hx is not None and sorted_indices is not None:
                hx = self._permute(hx, sorted_indices)
            return data, hx, batch_sizes, input, True
        if input.ndim not in (2, 3):
            tail = " tensor instead" if self.mode.startswith("RNN") else " instead"
            raise ValueError(f"{_NAMES[self.mode]}: Expected input to be 2D or 3D, got "
                             f"{input.ndim}D{tail}")
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(0 if self.batch_first else 1)
        return input, hx, None, None, batched

    @staticmethod
    def _permute(hx, index):
        if isinstance(hx, tuple):
            return tuple(h.index_select(1, index) for h in hx)
        return hx.index_select(1, index)

    def _finish(self, output, hidden, packed, batched):
        if packed is not None:
            packed_type = _packed_type()
            output = packed_type(output, packed.batch_sizes, packed.sorted_indices,
                                 packed.unsorted_indices)
            if packed.unsorted_indices is not None:
                hidden = self._permute(hidden, packed.unsorted_indices)
            return output, hidden
        if not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            hidden = (tuple(h.squeeze(1) for h in hidden) if isinstance(hidden, tuple)
                      else hidden.squeeze(1))
        return output, hidden

    def forward(self, input, hx=None):
        data, hx, batch_sizes, packed, batched = self._prepare(input, hx)
        if hx is not None and packed is None:
            if batched and hx.ndim != 3:
                raise RuntimeError("For batched 3-D input, hx should also be 3-D but got "
                                   f"{hx.ndim}-D tensor")
            if not batched:
                if hx.ndim != 2:
                    raise RuntimeError("For unbatched 2-D input, hx should also be 2-D but "
                                       f"got {hx.ndim}-D tensor")
                hx = hx.unsqueeze(1)
        self.check_input(data, batch_sizes)
        if hx is not None:
            self.check_hidden_size(hx, self.get_expected_hidden_size(data, batch_sizes))
        output, h_n = _FUNCTIONS[self.mode](
            data, hx, self._flat_weights, self.bias, self.num_layers, self.dropout,
            self.training, self.bidirectional, self.batch_first, batch_sizes)
        return self._finish(output, h_n, packed, batched)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (nonlinearity
    'tanh' or 'relu'). RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh',
    bias=True, batch_first=False, dropout=0.0, bidirectional=False, device, dtype)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from "
                             "'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit, gates r, z, n as torch's:
        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + ... + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class LSTM(RNNBase):
    """Long short-term memory, gates i, f, g, o as torch's:
        c' = f * c + i * g,  h' = o * tanh(c')   (proj_size > 0: h' = W_hr (o * tanh(c'))).
    forward(input, (h0, c0)=None) -> (output, (h_n, c_n))."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def get_expected_cell_size(self, input, batch_sizes) -> tuple[int, int, int]:
        expected = self.get_expected_hidden_size(input, batch_sizes)
        return (expected[0], expected[1], self.hidden_size)

    def check_forward_args(self, input, hidden, batch_sizes) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden[0], self.get_expected_hidden_size(input, batch_sizes),
                               "Expected hidden[0] size {}, got {}")
        self.check_hidden_size(hidden[1], self.get_expected_cell_size(input, batch_sizes),
                               "Expected hidden[1] size {}, got {}")

    def forward(self, input, hx=None):
        data, hx, batch_sizes, packed, batched = self._prepare(input, hx)
        if hx is not None and packed is None:
            h, c = hx
            if batched and (h.ndim != 3 or c.ndim != 3):
                raise RuntimeError("For batched 3-D input, hx and cx should also be 3-D but "
                                   f"got ({h.ndim}-D, {c.ndim}-D) tensors")
            if not batched:
                if h.ndim != 2 or c.ndim != 2:
                    raise RuntimeError("For unbatched 2-D input, hx and cx should also be "
                                       f"2-D but got ({h.ndim}-D, {c.ndim}-D) tensors")
                hx = (h.unsqueeze(1), c.unsqueeze(1))
        if hx is not None:
            self.check_forward_args(data, hx, batch_sizes)
        else:
            self.check_input(data, batch_sizes)
        output, h_n, c_n = rnn_functional.lstm(
            data, hx, self._flat_weights, self.bias, self.num_layers, self.dropout,
            self.training, self.bidirectional, self.batch_first, batch_sizes)
        return self._finish(output, (h_n, c_n), packed, batched)
