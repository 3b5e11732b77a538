"""nn.RNN, nn.LSTM and nn.GRU against torch.nn's: every argument combination (layers,
directions, batch_first, bias, proj_size, initial states given or not, unbatched and
packed input, dropout in eval and its train-mode mask), float32 and float64; outputs,
final states, and the gradients of the input, every weight and the initial states from
the output and the final states together; state_dicts both ways; torch's errors; CUDA
against the CPU (cuda marker).

Left out: the fused Function's own registry checks (finite differences, the composed
step loop: handgrad/testing/registry/rnn.py, run by tests/tensor/test_ops.py), the cells
and the packing functions (tests/nn/test_rnn_cell.py, tests/nn/test_rnn_utils.py).
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch

import handgrad as hg
import handgrad.nn as nn
import handgrad.nn.functional as F
from handgrad.nn.utils.rnn import PackedSequence
from tests.torch_compare import assert_close

T, B, I, H, P = 5, 3, 4, 6, 3
MODES = {"rnn_tanh": (nn.RNN, torch.nn.RNN, {}),
         "rnn_relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
         "lstm": (nn.LSTM, torch.nn.LSTM, {}),
         "gru": (nn.GRU, torch.nn.GRU, {})}


def _pair(mode, dtype, device="cpu", **options):
    """A handgrad layer and torch's with the same weights (torch's state_dict loaded)."""
    ours_cls, theirs_cls, extra = MODES[mode]
    options = {**extra, **options}
    theirs = theirs_cls(I, H, dtype=dtype, device=device, **options)
    ours = ours_cls(I, H, dtype=dtype, device=device, **options)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _leaf(x):
    return hg.Tensor(x.detach().clone(), requires_grad=True)


def _compare(mode, dtype, *, num_layers=1, bidirectional=False, batch_first=False,
             bias=True, proj_size=0, initial=False, unbatched=False, packed=False,
             dropout=0.0, train=False, seed=0):
    torch.manual_seed(seed)
    options = dict(num_layers=num_layers, bidirectional=bidirectional,
                   batch_first=batch_first, bias=bias, dropout=dropout)
    if proj_size:
        options["proj_size"] = proj_size
    ours, theirs = _pair(mode, dtype, **options)
    ours.train(train)
    theirs.train(train)
    directions = 2 if bidirectional else 1
    real = proj_size or H
    shape = (T, I) if unbatched else ((B, T, I) if batch_first else (T, B, I))
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    state_shape = (num_layers * directions,) if unbatched else (num_layers * directions, B)
    hx = cx = None
    if initial:
        hx = torch.randn(*state_shape, real, dtype=dtype, requires_grad=True)
        cx = torch.randn(*state_shape, H, dtype=dtype, requires_grad=True)
    if packed:
        lengths = torch.tensor([4, 5, 2])  # unsorted: sorted_indices matter
        t_in = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=batch_first,
                                                       enforce_sorted=False)
        data = _leaf(t_in.data)
        t_in = torch.nn.utils.rnn.PackedSequence(t_in.data.detach().requires_grad_(),
                                                 t_in.batch_sizes, t_in.sorted_indices,
                                                 t_in.unsorted_indices)
        x_theirs = t_in.data
        h_in = PackedSequence(data, t_in.batch_sizes, hg.Tensor(t_in.sorted_indices),
                              hg.Tensor(t_in.unsorted_indices))
        x_ours = data
    else:
        t_in, x_theirs = x, x
        h_in = x_ours = _leaf(x)
    ours_states = theirs_states = None
    if initial:
        if mode == "lstm":
            theirs_states = (hx, cx)
            ours_states = (_leaf(hx), _leaf(cx))
        else:
            theirs_states, ours_states = hx, _leaf(hx)
    out_t, hid_t = theirs(t_in, theirs_states)
    out_o, hid_o = ours(h_in, ours_states)
    if packed:
        assert isinstance(out_o, PackedSequence)
        assert torch.equal(out_o.batch_sizes.data, out_t.batch_sizes)
        out_t, out_o = out_t.data, out_o.data
    hid_t = hid_t if isinstance(hid_t, tuple) else (hid_t,)
    hid_o = hid_o if isinstance(hid_o, tuple) else (hid_o,)
    assert_close(out_o, out_t, dtype, "output")
    for k, (a, e) in enumerate(zip(hid_o, hid_t)):
        assert_close(a, e, dtype, f"final state {k}")
    gen = torch.Generator().manual_seed(seed + 1)
    loss_t, loss_o = 0, 0
    for a, e in zip((out_o, *hid_o), (out_t, *hid_t)):
        g = torch.randn(e.shape, generator=gen, dtype=dtype)
        loss_t = loss_t + (e * g).sum()
        loss_o = loss_o + (a * hg.Tensor(g)).sum()
    loss_t.backward()
    loss_o.backward()
    assert_close(x_ours.grad, x_theirs.grad, dtype, "input gradient")
    params_t = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, params_t[name].grad, dtype, f"gradient of {name}")
    if initial:
        pairs = (zip(ours_states, theirs_states) if mode == "lstm"
                 else [(ours_states, theirs_states)])
        for k, (a, e) in enumerate(pairs):
            assert_close(a.grad, e.grad, dtype, f"initial state {k} gradient")


GRID = list(itertools.product([1, 2], [False, True], [False, True], [True, False],
                              [False, True]))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,initial", GRID)
def test_layer_matches_torch(mode, num_layers, bidirectional, batch_first, bias, initial,
                             dtype, one_thread):
    _compare(mode, dtype, num_layers=num_layers, bidirectional=bidirectional,
             batch_first=batch_first, bias=bias, initial=initial)


@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,initial", GRID)
def test_lstm_projection_matches_torch(num_layers, bidirectional, batch_first, bias,
                                       initial, dtype, one_thread):
    _compare("lstm", dtype, num_layers=num_layers, bidirectional=bidirectional,
             batch_first=batch_first, bias=bias, initial=initial, proj_size=P)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("bidirectional,initial", [(False, False), (True, True)])
def test_unbatched_input(mode, bidirectional, initial, dtype, one_thread):
    _compare(mode, dtype, num_layers=2, bidirectional=bidirectional, initial=initial,
             unbatched=True)
    _compare(mode, dtype, bidirectional=bidirectional, initial=initial, unbatched=True,
             batch_first=True)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,initial",
                         [(1, False, False, False), (2, True, False, True),
                          (1, True, True, True), (2, False, True, False)])
def test_packed_input(mode, num_layers, bidirectional, batch_first, initial, dtype,
                      one_thread):
    _compare(mode, dtype, num_layers=num_layers, bidirectional=bidirectional,
             batch_first=batch_first, initial=initial, packed=True)


def test_packed_lstm_projection(one_thread):
    _compare("lstm", torch.float64, num_layers=2, bidirectional=True, initial=True,
             packed=True, proj_size=P)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_handgrad_packing_end_to_end(mode, enforce_sorted, one_thread):
    """handgrad's own pack_padded_sequence -> layer -> pad_packed_sequence against
    torch's, padded output, lengths and final states in the batch's original order, and
    the gradient of the padded input through the packing."""
    from handgrad.nn.utils import rnn as hg_rnn

    torch.manual_seed(3)
    ours, theirs = _pair(mode, torch.float64, num_layers=2, bidirectional=True)
    lengths = [5, 3, 2] if enforce_sorted else [3, 5, 2]
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    leaf = _leaf(x)
    out_t, hid_t = theirs(torch.nn.utils.rnn.pack_padded_sequence(
        x, lengths, enforce_sorted=enforce_sorted))
    out_o, hid_o = ours(hg_rnn.pack_padded_sequence(leaf, lengths,
                                                    enforce_sorted=enforce_sorted))
    padded_t, lengths_t = torch.nn.utils.rnn.pad_packed_sequence(out_t)
    padded_o, lengths_o = hg_rnn.pad_packed_sequence(out_o)
    assert_close(padded_o, padded_t, torch.float64, "padded output")
    assert torch.equal(getattr(lengths_o, "data", lengths_o), lengths_t)
    hid_t = hid_t if isinstance(hid_t, tuple) else (hid_t,)
    hid_o = hid_o if isinstance(hid_o, tuple) else (hid_o,)
    for k, (a, e) in enumerate(zip(hid_o, hid_t)):
        assert_close(a, e, torch.float64, f"final state {k}")
    (padded_t.sum() + sum(h.pow(2).sum() for h in hid_t)).backward()
    total = padded_o.sum()
    for h in hid_o:
        total = total + (h * h).sum()
    total.backward()
    assert_close(leaf.grad, x.grad, torch.float64, "padded input gradient")


@pytest.mark.parametrize("mode", list(MODES))
def test_dropout_is_off_in_eval(mode, one_thread):
    _compare(mode, torch.float64, num_layers=2, bidirectional=True, dropout=0.5,
             train=False, initial=True)


def test_dropout_mask_statistics_and_gradient(one_thread):
    """Layer 0 outputs relu(b) (zero weights), layer 1 passes its input through
    (W_ih = I, the rest 0): the output is the dropout mask m / (1 - p) times relu(b).
    About p of it is zero, the rest is b / (1 - p); d sum(out) / d b_ih_l0 is the sum
    of the mask over the steps and the batch, so out.sum(0, 1) / b."""
    p, size, steps, batch = 0.3, 8, 50, 40
    layer = nn.RNN(size, size, num_layers=2, nonlinearity="relu", dropout=p,
                   dtype=torch.float64)
    for w in layer.parameters():
        w.data.zero_()
    layer.bias_ih_l0.data.copy_(torch.linspace(0.5, 1.5, size, dtype=torch.float64))
    layer.weight_ih_l1.data.copy_(torch.eye(size, dtype=torch.float64))
    x = hg.Tensor(torch.randn(steps, batch, size, dtype=torch.float64))
    torch.manual_seed(0)
    out, _ = layer(x)
    b = layer.bias_ih_l0.data
    kept = out.data != 0
    fraction_zero = 1 - kept.double().mean().item()
    assert abs(fraction_zero - p) < 0.02, fraction_zero
    scaled = (out.data / b)[kept]
    torch.testing.assert_close(scaled, torch.full_like(scaled, 1 / (1 - p)))
    out.sum().backward()
    torch.testing.assert_close(layer.bias_ih_l0.grad.data, out.data.sum((0, 1)) / b)
    torch.manual_seed(1)
    again, _ = layer(x)
    assert not torch.equal(again.data, out.data), "a new mask each call"
    layer.eval()
    evaluated, _ = layer(x)
    torch.testing.assert_close(evaluated.data, b.expand(steps, batch, size))


# ============================================================ construction and state
@pytest.mark.parametrize("mode", list(MODES))
def test_parameters_state_dict_and_init_as_torch(mode):
    options = dict(num_layers=2, bidirectional=True)
    if mode == "lstm":
        options["proj_size"] = P
    ours, theirs = _pair(mode, torch.float32, **options)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, a), (_, e) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert tuple(a.shape) == tuple(e.shape), name
    fresh = MODES[mode][0](I, H, **MODES[mode][2], **options)
    bound = 1 / H ** 0.5
    for name, w in fresh.named_parameters():
        assert w.data.abs().max() <= bound, name
        assert w.data.std() > bound / 3, name
    theirs.load_state_dict({k: v.data.clone() for k, v in fresh.state_dict().items()})
    for k, v in theirs.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k].data), k
    assert repr(ours) == repr(theirs)
    assert [[w.data.shape for w in ws] for ws in ours.all_weights] == \
        [[w.shape for w in ws] for ws in theirs.all_weights]
    ours.flatten_parameters()


def test_repr_as_torch():
    for ours, theirs in [
        (nn.LSTM(4, 6, 2, bias=False, batch_first=True, dropout=0.25, bidirectional=True,
                 proj_size=2),
         torch.nn.LSTM(4, 6, 2, bias=False, batch_first=True, dropout=0.25,
                       bidirectional=True, proj_size=2)),
        (nn.RNN(3, 5, 1, "relu"), torch.nn.RNN(3, 5, 1, "relu")),
        (nn.GRU(3, 5), torch.nn.GRU(3, 5)),
    ]:
        assert repr(ours) == repr(theirs)


# ==================================================================== errors
def _raises_like_torch(make, call):
    """The same exception type, and the same message, from torch's layer and ours."""
    with pytest.raises(Exception) as theirs:
        call(make(torch.nn), torch)
    with pytest.raises(type(theirs.value)) as ours:
        call(make(nn), hg)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_forward_errors_as_torch(name):
    def layer(lib):
        return getattr(lib, name)(I, H, num_layers=2)

    def tensor(lib, *shape, dtype=torch.float32):
        return lib.zeros(*shape, dtype=dtype)

    _raises_like_torch(layer, lambda m, lib: m(tensor(lib, B, T, I, 2)))  # rank
    _raises_like_torch(layer, lambda m, lib: m(tensor(lib, T, B, I + 1)))  # features
    _raises_like_torch(layer, lambda m, lib: m(tensor(lib, T, B, I, dtype=torch.float64)))
    if name == "LSTM":
        _raises_like_torch(layer, lambda m, lib: m(
            tensor(lib, T, B, I), (tensor(lib, 2, B + 1, H), tensor(lib, 2, B, H))))
        _raises_like_torch(layer, lambda m, lib: m(
            tensor(lib, T, B, I), (tensor(lib, 2, B, H), tensor(lib, 1, B, H))))
        _raises_like_torch(layer, lambda m, lib: m(
            tensor(lib, T, B, I), (tensor(lib, B, H), tensor(lib, 2, B, H))))
        _raises_like_torch(layer, lambda m, lib: m(
            tensor(lib, T, I), (tensor(lib, 2, 1, H), tensor(lib, 2, 1, H))))
    else:
        _raises_like_torch(layer, lambda m, lib: m(tensor(lib, T, B, I),
                                                   tensor(lib, 2, B + 1, H)))
        _raises_like_torch(layer, lambda m, lib: m(tensor(lib, T, B, I), tensor(lib, B, H)))
        _raises_like_torch(layer, lambda m, lib: m(tensor(lib, T, I), tensor(lib, 2, 1, H)))


@pytest.mark.parametrize("arguments", [
    dict(dropout=1.5), dict(dropout=True), dict(hidden_size=0), dict(hidden_size=2.0),
    dict(num_layers=0), dict(proj_size=-1), dict(proj_size=6), dict(bias=1),
    dict(batch_first=None), dict(input_size=0),
])
def test_constructor_errors_as_torch(arguments):
    base = dict(input_size=I, hidden_size=H)
    _raises_like_torch(lambda lib: lib.LSTM(**{**base, **arguments}), lambda m, lib: None)


def test_constructor_errors_of_rnn_and_gru_as_torch():
    _raises_like_torch(lambda lib: lib.GRU(I, H, proj_size=2), lambda m, lib: None)
    _raises_like_torch(lambda lib: lib.RNN(I, H, proj_size=2), lambda m, lib: None)
    _raises_like_torch(lambda lib: lib.RNN(I, H, nonlinearity="gelu"), lambda m, lib: None)


def test_dropout_with_one_layer_warns_as_torch():
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        torch.nn.GRU(I, H, dropout=0.2)
    with pytest.warns(UserWarning) as ours:
        nn.GRU(I, H, dropout=0.2)
    assert str(ours[0].message) == str(theirs[0].message)


def test_second_backward_through_freed_graph_raises(one_thread):
    layer = nn.LSTM(I, H)
    out, (h, c) = layer(hg.randn(T, B, I))
    out.sum().backward(retain_graph=True)
    (h.sum() + c.sum()).backward()
    with pytest.raises(RuntimeError, match="second time"):
        out.sum().backward()


# ===================================================================== CUDA
@pytest.mark.cuda
@pytest.mark.parametrize("mode", list(MODES))
def test_cuda_matches_cpu(mode):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(0)
    options = dict(num_layers=2, bidirectional=True)
    if mode == "lstm":
        options["proj_size"] = P
    cpu = MODES[mode][0](I, H, **MODES[mode][2], **options, dtype=torch.float64)
    gpu = MODES[mode][0](I, H, **MODES[mode][2], **options, dtype=torch.float64,
                         device="cuda")
    gpu.load_state_dict({k: v.data.cuda() for k, v in cpu.state_dict().items()})
    x = torch.randn(T, B, I, dtype=torch.float64)
    lengths = torch.tensor([5, 3, 2])
    for packed in (False, True):
        results = []
        for layer, device in ((cpu, "cpu"), (gpu, "cuda")):
            layer.zero_grad()
            leaf = _leaf(x.to(device))
            if packed:
                p = torch.nn.utils.rnn.pack_padded_sequence(leaf.data, lengths)
                leaf = _leaf(p.data)
                inp = PackedSequence(leaf, p.batch_sizes)
            else:
                inp = leaf
            out, hidden = layer(inp)
            out = out.data if packed else out
            hidden = hidden if isinstance(hidden, tuple) else (hidden,)
            total = (out * out).sum() + sum((h * h).sum() for h in hidden)
            total.backward()
            results.append([out.data, *(h.data for h in hidden), leaf.grad.data,
                            *(w.grad.data for w in layer.parameters())])
        for a, b in zip(*results):
            torch.testing.assert_close(b.cpu(), a)


def test_functional_stack_refuses_what_it_would_broadcast_or_drop():
    """F.lstm / F.gru check the states and packed rows themselves (nn.LSTM is not the only
    caller): a batch-1 hx for a batch of 3, and packed rows that batch_sizes do not add
    up to, are errors, not a broadcast or dropped rows."""
    weights = list(nn.LSTM(5, 6).parameters())  # w_ih, w_hh, b_ih, b_hh
    x = hg.randn(4, 3, 5)
    h, c = hg.zeros(1, 1, 6), hg.zeros(1, 3, 6)
    with pytest.raises(RuntimeError, match=r"lstm: expected hx of shape \(1, 3, 6\)"):
        F.lstm(x, (h, c), weights, True, 1, 0.0, False, False, False)
    with pytest.raises(RuntimeError, match="add up to 12 rows, but the packed data has 13"):
        F.lstm(hg.randn(13, 5), None, weights, True, 1, 0.0, False, False, False,
               batch_sizes=[3, 3, 3, 3])
    with pytest.raises(RuntimeError, match="I = 5"):
        F.gru(hg.randn(4, 3, 4), None, list(nn.GRU(5, 6).parameters()), True, 1, 0.0,
              False, False, False)
