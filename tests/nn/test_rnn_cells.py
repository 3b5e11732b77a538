"""nn.RNNCell (tanh, relu), nn.LSTMCell and nn.GRUCell against torch.nn's cells: outputs
and the gradients of the input, every weight and the states (h and c of the LSTM, from
both outputs at once) for a random upstream gradient, in float32 and float64, with and
without biases, batched and unbatched, with and without a given state; state_dicts
both ways, the initialisation range, repr, the errors, a few steps of a loop, and CUDA
against the CPU.

Left out: finite differences and the fused-vs-composed proof of the cell steps (their
registry entries in handgrad/testing/registry/rnn_cell.py, run by tests/tensor/test_ops.py
and `handgrad gradcheck --op '*cell*'`).
"""

from __future__ import annotations

import math

import pytest
import torch

import handgrad as hg
from handgrad import nn
from tests.torch_compare import assert_close

CELLS = {
    "rnn_tanh": (lambda *a, **k: nn.RNNCell(*a, **k), lambda *a, **k: torch.nn.RNNCell(*a, **k)),
    "rnn_relu": (lambda *a, **k: nn.RNNCell(*a, nonlinearity="relu", **k),
                 lambda *a, **k: torch.nn.RNNCell(*a, nonlinearity="relu", **k)),
    "lstm": (nn.LSTMCell, torch.nn.LSTMCell),
    "gru": (nn.GRUCell, torch.nn.GRUCell),
}


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64).to(dtype)


def _pair(kind, input_size=4, hidden_size=5, dtype=torch.float64, **options):
    """(ours, theirs) with the same weights: torch's copied into ours by load_state_dict."""
    make_ours, make_theirs = CELLS[kind]
    theirs = make_theirs(input_size, hidden_size, **options).to(dtype)
    ours = make_ours(input_size, hidden_size, **options).to(dtype)
    ours.load_state_dict({k: hg.Tensor(v.detach().clone()) for k, v in
                          theirs.state_dict().items()})
    return ours, theirs


def _outputs(result):
    return list(result) if isinstance(result, tuple) else [result]


def _run_both(kind, batch, dtype, bias=True, with_state=True, seed=0):
    """Forward and backward of both cells on the same input and state; compares every
    output, then the gradients of the input, the states and every parameter."""
    ours, theirs = _pair(kind, dtype=dtype, bias=bias)
    lead = () if batch is None else (batch,)
    x = _randn(*lead, 4, seed=seed, dtype=dtype)
    states = [_randn(*lead, 5, seed=seed + 1 + i, dtype=dtype)
              for i in range(2 if kind == "lstm" else 1)] if with_state else []
    leaves_theirs = [t.clone().requires_grad_() for t in [x, *states]]
    leaves_ours = [hg.Tensor(t.detach().clone(), requires_grad=True) for t in leaves_theirs]

    def call(cell, leaves):
        if not with_state:
            return cell(leaves[0])
        state = tuple(leaves[1:]) if kind == "lstm" else leaves[1]
        return cell(leaves[0], state)

    out_ours, out_theirs = _outputs(call(ours, leaves_ours)), _outputs(call(theirs, leaves_theirs))
    assert len(out_ours) == len(out_theirs)
    upstream = [_randn(*o.shape, seed=seed + 10 + i, dtype=dtype)
                for i, o in enumerate(out_theirs)]
    for i, (a, e) in enumerate(zip(out_ours, out_theirs)):
        assert_close(a, e, dtype, f"{kind} output {i}")
    # one backward through every output at once: h' and c' both reach the loss
    loss_ours = sum((a * hg.Tensor(g)).sum() for a, g in zip(out_ours, upstream))
    loss_theirs = sum((e * g).sum() for e, g in zip(out_theirs, upstream))
    loss_ours.backward()
    loss_theirs.backward()
    for name, a, e in zip(["input", "h", "c"], leaves_ours, leaves_theirs):
        assert_close(a.grad, e.grad, dtype, f"{kind} gradient of {name}")
    theirs_params = dict(theirs.named_parameters())
    assert dict(ours.named_parameters()).keys() == theirs_params.keys()
    for name, p in ours.named_parameters():
        assert_close(p.grad, theirs_params[name].grad, dtype, f"{kind} gradient of {name}")


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_cells_match_torch(kind, bias, dtype):
    _run_both(kind, batch=3, dtype=dtype, bias=bias)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("batch", [None, 1, 2], ids=["unbatched", "batch1", "batch2"])
@pytest.mark.parametrize("with_state", [True, False], ids=["state", "zero_state"])
def test_unbatched_inputs_and_default_states_match_torch(kind, batch, with_state):
    _run_both(kind, batch=batch, dtype=torch.float64, with_state=with_state, seed=4)


@pytest.mark.parametrize("kind", list(CELLS))
def test_a_loop_of_steps_matches_torch(kind):
    """Five steps of the same cell, the state carried: gradients through time."""
    ours, theirs = _pair(kind)
    xs = _randn(5, 2, 4, seed=7)
    x_ours, x_theirs = hg.Tensor(xs.clone(), requires_grad=True), xs.clone().requires_grad_()
    state_ours = state_theirs = None
    total_ours = total_theirs = 0
    for t in range(5):
        state_ours, state_theirs = ours(x_ours[t], state_ours), theirs(x_theirs[t], state_theirs)
        h_ours = state_ours[0] if kind == "lstm" else state_ours
        h_theirs = state_theirs[0] if kind == "lstm" else state_theirs
        weight = _randn(2, 5, seed=20 + t)
        total_ours = total_ours + (h_ours * hg.Tensor(weight)).sum()
        total_theirs = total_theirs + (h_theirs * weight).sum()
    assert_close(total_ours, total_theirs, torch.float64, "loss")
    total_ours.backward()
    total_theirs.backward()
    assert_close(x_ours.grad, x_theirs.grad, torch.float64, "input gradient")
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(p.grad, q.grad, torch.float64, f"gradient of {name}")


@pytest.mark.parametrize("kind", list(CELLS))
def test_parameters_names_shapes_init_and_state_dicts_both_ways(kind):
    make_ours, make_theirs = CELLS[kind]
    ours, theirs = make_ours(6, 7), make_theirs(6, 7)
    shapes = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == shapes
    assert list(shapes) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    bound = 1 / math.sqrt(7)
    for name, p in ours.named_parameters():
        assert p.data.abs().max() <= bound, f"{name} outside U(-1/sqrt(H), 1/sqrt(H))"
        if p.numel() >= 30:  # U(-b, b) has std b / sqrt(3); a 7-value bias may well not
            assert p.data.std() > bound / 3, f"{name} looks not uniform over the range"
    # ours -> torch: torch's cell now computes what ours does
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    x = _randn(2, 6, dtype=torch.float32)
    for a, e in zip(_outputs(ours(hg.Tensor(x))), _outputs(theirs(x))):
        assert_close(a, e.detach(), torch.float32, "output after ours -> torch")
    no_bias = make_ours(6, 7, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight_ih", "weight_hh"]
    assert no_bias.bias_ih is None and no_bias.bias_hh is None


def test_repr_matches_torch():
    for ours, theirs in [(nn.RNNCell(4, 5), torch.nn.RNNCell(4, 5)),
                         (nn.RNNCell(4, 5, bias=False, nonlinearity="relu"),
                          torch.nn.RNNCell(4, 5, bias=False, nonlinearity="relu")),
                         (nn.LSTMCell(3, 2, bias=False), torch.nn.LSTMCell(3, 2, bias=False)),
                         (nn.GRUCell(3, 2), torch.nn.GRUCell(3, 2))]:
        assert repr(ours) == repr(theirs)


def test_float32_parameters_by_dtype_argument():
    cell = nn.LSTMCell(3, 4, dtype=torch.float64)
    assert cell.weight_ih.dtype == torch.float64
    h, c = cell(hg.Tensor(_randn(2, 3)))
    assert h.dtype == c.dtype == torch.float64 and h.shape == (2, 4)


# ========================================================================= errors
@pytest.mark.parametrize("kind", list(CELLS))
def test_errors_name_the_cell_and_the_shapes(kind):
    ours, theirs = _pair(kind, dtype=torch.float32)
    name = type(ours).__name__

    def state(*shape):
        h = hg.zeros(shape)
        return (h, h) if kind == "lstm" else h

    with pytest.raises(ValueError, match=f"{name}: Expected input to be 1D or 2D, got 3D"):
        ours(hg.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D"):
        theirs(torch.zeros(2, 3, 4))
    with pytest.raises(RuntimeError, match=r"input has inconsistent input_size: got 3 "
                                           r"expected 4 \(input of shape \(2, 3\)\)"):
        ours(hg.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="input has inconsistent input_size"):
        theirs(torch.zeros(2, 3))
    which = "hx\\[0\\]" if kind == "lstm" else "hx"
    for bad in [(3, 5), (2, 6), (5,)]:  # batch, hidden size, rank
        with pytest.raises(RuntimeError, match=rf"{name}: {which} of shape \({bad[0]},"
                                               rf".*expected \(2, 5\)"):
            ours(hg.zeros((2, 4)), state(*bad))
        with pytest.raises(RuntimeError):
            theirs(torch.zeros(2, 4), tuple(s.data for s in state(*bad)) if kind == "lstm"
                   else state(*bad).data)
    with pytest.raises(ValueError, match=f"{name}: Expected {which} to be 1D or 2D, got 3D"):
        ours(hg.zeros((2, 4)), state(1, 2, 5))


def test_lstm_cell_wants_a_tuple_state_and_rnn_cell_a_known_nonlinearity():
    with pytest.raises(TypeError, match=r"LSTMCell: hx must be a tuple \(h_0, c_0\)"):
        nn.LSTMCell(4, 5)(hg.zeros((2, 4)), hg.zeros((2, 5)))
    with pytest.raises(TypeError):
        torch.nn.LSTMCell(4, 5)(torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="RNNCell: Unknown nonlinearity 'sigmoid'"):
        nn.RNNCell(4, 5, nonlinearity="sigmoid")


# ========================================================================= CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", list(CELLS))
def test_cuda_matches_cpu(kind):
    """The same cell on the GPU: outputs and every gradient equal the CPU's."""
    results = []
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        ours, _ = _pair(kind)
        ours.to(device)
        x = hg.Tensor(_randn(3, 4).to(device), requires_grad=True)
        h = hg.Tensor(_randn(3, 5, seed=1).to(device), requires_grad=True)
        c = hg.Tensor(_randn(3, 5, seed=2).to(device), requires_grad=True)
        outs = _outputs(ours(x, (h, c)) if kind == "lstm" else ours(x, h))
        loss = sum((o * hg.Tensor(_randn(3, 5, seed=3 + i).to(device))).sum()
                   for i, o in enumerate(outs))
        loss.backward()
        grads = [x.grad, h.grad] + ([c.grad] if kind == "lstm" else [])
        grads += [p.grad for p in ours.parameters()]
        assert all(o.device.type == device for o in outs)
        results.append([o.data.cpu() for o in outs] + [g.data.cpu() for g in grads])
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda, cpu)
