"""nn.utils.rnn against torch.nn.utils.rnn: PackedSequence (its fields, batch_sizes as
int64 on the CPU, sorted/unsorted indices, tuple unpacking, moves and casts),
pack_padded_sequence (batch_first, enforce_sorted both ways, lengths as a list or a
tensor), pad_packed_sequence (padding_value, total_length), pack_sequence, pad_sequence
(padding_side, batch_first), unpad_sequence and unpack_sequence: values and the
gradients that flow back through them for a random upstream gradient, float32 and
float64, non-contiguous inputs; and the errors (unsorted lengths with
enforce_sorted=True names the fix, zero lengths, lengths that do not fit the input).

Left out: finite differences (the registry entries in
handgrad/testing/registry/rnn_cell.py, run by tests/tensor/test_ops.py) and the
sequence layers that take a PackedSequence (tests of nn.RNN / nn.LSTM / nn.GRU).
"""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import rnn as torch_rnn

import handgrad as hg
from handgrad import nn
from handgrad.nn.utils import rnn
from handgrad.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)
from tests.torch_compare import assert_close


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64).to(dtype)


def _leaves(values, dtype):
    """The same values as torch leaves and as handgrad leaves."""
    theirs = [v.to(dtype).clone().requires_grad_() for v in values]
    ours = [hg.Tensor(t.detach().clone(), requires_grad=True) for t in theirs]
    return ours, theirs


def _same_packed(ours: PackedSequence, theirs, dtype):
    assert isinstance(ours, tuple) and ours._fields == theirs._fields
    assert_close(ours.data, theirs.data, dtype, "packed data")
    assert ours.batch_sizes.dtype == torch.int64 and ours.batch_sizes.device.type == "cpu"
    assert torch.equal(ours.batch_sizes.data, theirs.batch_sizes), "batch_sizes"
    for name in ("sorted_indices", "unsorted_indices"):
        a, e = getattr(ours, name), getattr(theirs, name)
        assert (a is None) == (e is None), f"{name}: {a} vs {e}"
        if e is not None:
            assert torch.equal(a.data, e), f"{name}: {a.data} vs {e}"


def _backward_both(out_ours, out_theirs, leaves_ours, leaves_theirs, dtype, seed=5):
    """One random upstream per output; every leaf's gradient must agree."""
    outs_ours = out_ours if isinstance(out_ours, list | tuple) else [out_ours]
    outs_theirs = out_theirs if isinstance(out_theirs, list | tuple) else [out_theirs]
    loss_ours = loss_theirs = 0
    for i, (a, e) in enumerate(zip(outs_ours, outs_theirs)):
        assert_close(a, e, dtype, f"output {i}")
        g = _randn(*e.shape, seed=seed + i, dtype=dtype)
        loss_ours = loss_ours + (a * hg.Tensor(g)).sum()
        loss_theirs = loss_theirs + (e * g).sum()
    loss_ours.backward()
    loss_theirs.backward()
    for i, (a, e) in enumerate(zip(leaves_ours, leaves_theirs)):
        assert_close(a.grad, e.grad, dtype, f"gradient of input {i}")


LENGTHS = {"sorted": [5, 3, 3, 1], "unsorted": [3, 5, 1, 3], "equal": [5, 5, 5, 5]}


# ============================================================ pack / pad padded
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_first", "batch_first"])
@pytest.mark.parametrize("lengths_kind", list(LENGTHS))
@pytest.mark.parametrize("as_tensor", [False, True], ids=["list", "tensor"])
def test_pack_padded_then_pad_packed_match_torch(batch_first, lengths_kind, as_tensor, dtype):
    lengths = LENGTHS[lengths_kind]
    enforce_sorted = lengths_kind != "unsorted"
    shape = (4, 6, 3) if batch_first else (6, 4, 3)  # one step more than the longest
    (x_ours,), (x_theirs,) = _leaves([_randn(*shape)], dtype)
    given = torch.tensor(lengths) if as_tensor else lengths
    packed_ours = pack_padded_sequence(x_ours, hg.Tensor(given) if as_tensor else given,
                                       batch_first=batch_first, enforce_sorted=enforce_sorted)
    packed_theirs = torch_rnn.pack_padded_sequence(x_theirs, given, batch_first=batch_first,
                                                   enforce_sorted=enforce_sorted)
    _same_packed(packed_ours, packed_theirs, dtype)
    padded_ours, lengths_ours = pad_packed_sequence(packed_ours, batch_first, -1.5, 7)
    padded_theirs, lengths_theirs = torch_rnn.pad_packed_sequence(packed_theirs, batch_first,
                                                                  -1.5, 7)
    assert torch.equal(lengths_ours.data, lengths_theirs) and lengths_ours.dtype == torch.int64
    # gradients from the packed data and from the padded output together
    _backward_both([packed_ours.data, padded_ours], [packed_theirs.data, padded_theirs],
                   [x_ours], [x_theirs], dtype)


def test_random_lengths_and_shapes_round_trip_like_torch():
    """Twenty seeded draws of T, B, trailing dims, lengths, layout and sortedness."""
    gen = torch.Generator().manual_seed(3)
    for draw in range(20):
        steps, batch = (int(v) for v in torch.randint(1, 6, (2,), generator=gen))
        trailing = tuple(int(v) for v in torch.randint(1, 3, (draw % 3,), generator=gen))
        lengths = torch.randint(1, steps + 1, (batch,), generator=gen)
        batch_first, enforce_sorted = bool(draw % 2), bool(draw % 4 < 2)
        if enforce_sorted:
            lengths = lengths.sort(descending=True).values
        shape = (batch, steps, *trailing) if batch_first else (steps, batch, *trailing)
        (x_ours,), (x_theirs,) = _leaves([_randn(*shape, seed=draw)], torch.float64)
        options = {"batch_first": batch_first, "enforce_sorted": enforce_sorted}
        packed_ours = pack_padded_sequence(x_ours, lengths, **options)
        packed_theirs = torch_rnn.pack_padded_sequence(x_theirs, lengths, **options)
        _same_packed(packed_ours, packed_theirs, torch.float64)
        padded_ours, _ = pad_packed_sequence(packed_ours, batch_first, total_length=steps)
        padded_theirs, _ = torch_rnn.pad_packed_sequence(packed_theirs, batch_first,
                                                         total_length=steps)
        _backward_both(padded_ours, padded_theirs, [x_ours], [x_theirs], torch.float64,
                       seed=draw)


def test_pad_packed_sequence_without_total_length_stops_at_the_longest():
    x = _randn(4, 3, 2)
    packed = pack_padded_sequence(hg.Tensor(x), [3, 2, 1])
    padded, lengths = pad_packed_sequence(packed)
    expected, expected_lengths = torch_rnn.pad_packed_sequence(
        torch_rnn.pack_padded_sequence(x, [3, 2, 1]))
    assert padded.shape == (3, 3, 2)
    assert torch.equal(padded.data, expected) and torch.equal(lengths.data, expected_lengths)


def test_a_non_contiguous_input_packs_like_torch():
    (base_ours,), (base_theirs,) = _leaves([_randn(3, 5, 4)], torch.float64)
    x_ours = base_ours.transpose(0, 1)[:, :, ::2]  # (5, 3, 2), strided
    x_theirs = base_theirs.transpose(0, 1)[:, :, ::2]
    assert not x_ours.is_contiguous()
    packed_ours = pack_padded_sequence(x_ours, [5, 4, 2])
    packed_theirs = torch_rnn.pack_padded_sequence(x_theirs, [5, 4, 2])
    _backward_both(packed_ours.data, packed_theirs.data, [base_ours], [base_theirs],
                   torch.float64)


# ============================================================ lists of sequences
SEQUENCES = [(3, 2), (5, 2), (1, 2), (5, 2)]


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_first", "batch_first"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, padding_side, dtype):
    values = [_randn(*s, seed=i) for i, s in enumerate(SEQUENCES)]
    ours, theirs = _leaves(values, dtype)
    out_ours = pad_sequence(ours, batch_first, padding_value=0.25, padding_side=padding_side)
    out_theirs = torch_rnn.pad_sequence(theirs, batch_first, padding_value=0.25,
                                        padding_side=padding_side)
    _backward_both(out_ours, out_theirs, ours, theirs, dtype)


@pytest.mark.parametrize("enforce_sorted", [True, False], ids=["sorted", "unsorted"])
def test_pack_sequence_unpack_sequence_and_unpad_sequence_match_torch(enforce_sorted, dtype):
    shapes = sorted(SEQUENCES, reverse=True) if enforce_sorted else SEQUENCES
    values = [_randn(*s, 3, seed=i) for i, s in enumerate(shapes)]
    ours, theirs = _leaves(values, dtype)
    packed_ours = pack_sequence(ours, enforce_sorted=enforce_sorted)
    packed_theirs = torch_rnn.pack_sequence(theirs, enforce_sorted=enforce_sorted)
    _same_packed(packed_ours, packed_theirs, dtype)
    unpacked_ours, unpacked_theirs = unpack_sequence(packed_ours), torch_rnn.unpack_sequence(
        packed_theirs)
    assert [u.shape for u in unpacked_ours] == [tuple(v.shape) for v in values]
    _backward_both(unpacked_ours, unpacked_theirs, ours, theirs, dtype)
    # unpad_sequence, both layouts (torch's transposes its argument in place: give a copy)
    for batch_first in (False, True):
        padded_ours = pad_sequence(ours, batch_first)
        padded_theirs = torch_rnn.pad_sequence(theirs, batch_first)
        lengths = torch.tensor([s[0] for s in shapes])
        got = unpad_sequence(padded_ours, lengths, batch_first)
        want = torch_rnn.unpad_sequence(padded_theirs.clone(), lengths, batch_first)
        for a, e in zip(got, want):
            assert_close(a, e, dtype, "unpadded")


# ============================================================ PackedSequence itself
def test_packed_sequence_is_a_tuple_with_torch_s_fields_and_moves():
    packed = pack_sequence([hg.tensor([1.0, 2.0, 3.0]), hg.tensor([4.0, 5.0])])
    data, batch_sizes, *rest = packed
    assert data.tolist() == [1.0, 4.0, 2.0, 5.0, 3.0]
    assert batch_sizes.tolist() == [2, 2, 1] and rest == [None, None]
    assert packed._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    assert not packed.is_cuda
    assert packed.double().data.dtype == torch.float64
    assert packed.double().float().data.dtype == torch.float32
    assert packed.to(torch.float64).batch_sizes.device.type == "cpu"
    assert packed.to("cpu") is packed
    assert nn.utils.rnn.PackedSequence is PackedSequence and rnn.pack_sequence is pack_sequence
    unsorted = pack_sequence([hg.tensor([1.0]), hg.tensor([2.0, 3.0])], enforce_sorted=False)
    again = PackedSequence(unsorted.data, unsorted.batch_sizes, unsorted.sorted_indices)
    assert again.unsorted_indices.tolist() == unsorted.unsorted_indices.tolist() == [1, 0]
    assert PackedSequence(tuple(unsorted)).data is unsorted.data


def test_nn_utils_keeps_gradient_clipping():
    from handgrad.nn.utils import clip_grad_norm_, clip_grad_value_
    assert nn.utils.clip_grad_norm_ is clip_grad_norm_
    assert nn.utils.clip_grad_value_ is clip_grad_value_


# ========================================================================= errors
def _both_raise(ours, theirs, error, match):
    with pytest.raises(error, match=match):
        ours()
    with pytest.raises(error, match=match):
        theirs()


def test_unsorted_lengths_with_enforce_sorted_name_the_fix():
    x = _randn(4, 3, 2)
    _both_raise(lambda: pack_padded_sequence(hg.Tensor(x), [2, 4, 1]),
                lambda: torch_rnn.pack_padded_sequence(x, [2, 4, 1]), RuntimeError,
                "must be sorted in decreasing order when `enforce_sorted` is True. You can "
                "pass `enforce_sorted=False`")
    sequences = [_randn(2), _randn(3)]
    _both_raise(lambda: pack_sequence([hg.Tensor(s) for s in sequences]),
                lambda: torch_rnn.pack_sequence(sequences), RuntimeError,
                "`enforce_sorted=False`")


def test_lengths_that_do_not_fit_are_refused():
    x = _randn(4, 3, 2)
    ours = hg.Tensor(x)
    _both_raise(lambda: pack_padded_sequence(ours, [3, 0, 0]),
                lambda: torch_rnn.pack_padded_sequence(x, [3, 0, 0]), RuntimeError,
                "Length of all samples has to be greater than 0")
    _both_raise(lambda: pack_padded_sequence(ours, [3, 2]),
                lambda: torch_rnn.pack_padded_sequence(x, [3, 2]), RuntimeError,
                r"Expected `len\(lengths\)` to be equal to batch_size, but got 2 "
                r"\(batch_size=3\)")
    _both_raise(lambda: pack_padded_sequence(ours, torch.tensor([[3, 2, 1]])),
                lambda: torch_rnn.pack_padded_sequence(x, torch.tensor([[3, 2, 1]])),
                RuntimeError, "'lengths' argument should be a 1D CPU int64 tensor, but got 2D")
    # torch reads past the input here; handgrad says what is wrong
    with pytest.raises(RuntimeError, match="a length of 5 exceeds the input's 4 time steps"):
        pack_padded_sequence(ours, [5, 2, 1])
    with pytest.raises(RuntimeError, match="at least 2 dims"):
        pack_padded_sequence(hg.Tensor(_randn(4)), [4])
    packed = pack_padded_sequence(ours, [3, 2, 1])
    _both_raise(lambda: pad_packed_sequence(packed, total_length=2),
                lambda: torch_rnn.pad_packed_sequence(
                    torch_rnn.pack_padded_sequence(x, [3, 2, 1]), total_length=2),
                ValueError, "Expected total_length to be at least the length of the longest "
                            "sequence in input, but got total_length=2 and max sequence "
                            "length being 3")


def test_pad_sequence_errors_match_torch():
    _both_raise(lambda: pad_sequence([]), lambda: torch_rnn.pad_sequence([]), RuntimeError,
                "received an empty list of sequences")
    _both_raise(lambda: pad_sequence([hg.zeros((2, 3))], padding_side="up"),
                lambda: torch_rnn.pad_sequence([torch.zeros(2, 3)], padding_side="up"),
                RuntimeError, "Expected padding_side to be one of left or right, but got up")
    with pytest.raises(RuntimeError, match=r"sequence 1 has shape \(3, 4\) but sequence 0 "
                                           r"has \(2, 3\)"):
        pad_sequence([hg.zeros((2, 3)), hg.zeros((3, 4))])
    _both_raise(lambda: pack_sequence([]), lambda: torch_rnn.pack_sequence([]), RuntimeError,
                "received an empty list of sequences")


# ========================================================================= CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_packing_matches_cpu():
    """Data and indices on the GPU, batch_sizes on the CPU, the values and gradients the
    CPU's; lengths on the GPU are refused with torch's message."""
    x = _randn(5, 3, 2)
    results = []
    for device in ("cpu", "cuda"):
        leaf = hg.Tensor(x.to(device), requires_grad=True)
        packed = pack_padded_sequence(leaf, [2, 5, 3], enforce_sorted=False)
        assert packed.is_cuda == (device == "cuda")
        assert packed.batch_sizes.device.type == "cpu"
        assert packed.sorted_indices.device.type == device
        padded, _ = pad_packed_sequence(packed, batch_first=True)
        (padded * hg.Tensor(_randn(*padded.shape, seed=1).to(device))).sum().backward()
        results.append((packed.data.data.cpu(), padded.data.cpu(), leaf.grad.data.cpu()))
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda, cpu)
    moved = pack_sequence([hg.Tensor(_randn(3, 2)), hg.Tensor(_randn(1, 2))],
                          enforce_sorted=False).to("cuda")
    assert moved.is_cuda and moved.sorted_indices.device.type == "cuda"
    with pytest.raises(RuntimeError, match="should be a 1D CPU int64 tensor"):
        pack_padded_sequence(hg.Tensor(x.cuda()), torch.tensor([5, 3, 2], device="cuda"))
