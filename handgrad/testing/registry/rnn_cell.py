"""Registry entries for one step of the recurrent cells (handgrad/nn/functional/rnn_cell.py:
RNNCellStep with tanh and relu, LSTMCellStep, GRUCellStep, with and without biases) and
for nn.utils.rnn's packing and padding (composed from index_select and cat, so they
cover those primitives; the entries prove that gradients flow through the packing).

References: torch's own cell kernels (torch.rnn_tanh_cell, torch.lstm_cell,
torch.gru_cell, the ATen functions behind torch.nn's cells) and torch.nn.utils.rnn.
The composed references write each step's math with handgrad primitives: matmuls with
the transposed weights, chunk, sigmoid, tanh, relu, products.

Left out: the modules (tests/nn/test_rnn_cells.py compares them with torch.nn's cells) and
PackedSequence's fields other than data (tests/nn/test_rnn_utils.py).
"""

from __future__ import annotations

import torch
from torch.nn.utils import rnn as torch_rnn

from handgrad import ops
from handgrad.nn.functional import rnn_cell as cells
from handgrad.nn.utils import rnn as packing
from handgrad.testing.registry import register


# ============================================================== composed references
def _pre(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """x W_ih^T + b_ih and h W_hh^T + b_hh, the two halves of the pre-activations."""
    a, b = x @ w_ih.T, h @ w_hh.T
    if b_ih is not None:
        a, b = a + b_ih, b + b_hh
    return a, b


def _composed_rnn(nonlinearity):
    def step(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        a, b = _pre(x, h, w_ih, w_hh, b_ih, b_hh)
        return (a + b).tanh() if nonlinearity == "tanh" else (a + b).relu()
    return step


def _composed_lstm(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    a, b = _pre(x, h, w_ih, w_hh, b_ih, b_hh)
    i, f, g, o = (a + b).chunk(4, 1)
    c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_new.tanh(), c_new


def _composed_gru(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    a, b = _pre(x, h, w_ih, w_hh, b_ih, b_hh)
    a_r, a_z, a_n = a.chunk(3, 1)
    b_r, b_z, b_n = b.chunk(3, 1)
    r, z = (a_r + b_r).sigmoid(), (a_z + b_z).sigmoid()
    n = (a_n + r * b_n).tanh()
    return (1 - z) * n + z * h


# ============================================================================ cells
def _cell_shapes(gates, batch_sizes=(3, 1), with_c=False, bias=True):
    """(x, h[, c], W_ih, W_hh[, b_ih, b_hh]) for a few (B, I, H)."""
    cases = []
    for batch, features, hidden in [(batch_sizes[0], 4, 5), (batch_sizes[1], 2, 3)]:
        case = [(batch, features), (batch, hidden)] + ([(batch, hidden)] if with_c else [])
        case += [(gates * hidden, features), (gates * hidden, hidden)]
        if bias:
            case += [(gates * hidden,), (gates * hidden,)]
        cases.append(tuple(case))
    return cases


for bias in (True, False):
    suffix = "" if bias else "_no_bias"
    for nonlinearity in ("tanh", "relu"):
        functional = getattr(cells, f"rnn_{nonlinearity}_cell")
        reference = getattr(torch, f"rnn_{nonlinearity}_cell")
        register(
            f"rnn_{nonlinearity}_cell{suffix}",
            fn=lambda x, h, *w, f=functional: f(x, h, *w),
            ref=lambda x, h, *w, f=reference: f(x, h, *w),
            composed=_composed_rnn(nonlinearity),
            shapes=_cell_shapes(1, bias=bias),
            covers=(cells.RNNCellStep,),
            note="relu: a pre-activation within the finite-difference step of 0 would "
                 "break the check; the seeded draws stay clear of it"
            if nonlinearity == "relu" else "",
        )
    register(
        f"lstm_cell{suffix}",
        fn=lambda x, h, c, *w: cells.lstm_cell(x, (h, c), *w),
        ref=lambda x, h, c, *w: torch.lstm_cell(x, (h, c), *w),
        composed=_composed_lstm,
        shapes=_cell_shapes(4, with_c=True, bias=bias),
        covers=(cells.LSTMCellStep,),
    )
    register(
        f"gru_cell{suffix}",
        fn=lambda x, h, *w: cells.gru_cell(x, h, *w),
        ref=lambda x, h, *w: torch.gru_cell(x, h, *w),
        composed=_composed_gru,
        shapes=_cell_shapes(3, bias=bias),
        covers=(cells.GRUCellStep,),
    )


# ============================================================ packing and padding
def _lengths(gen, shapes, batch_first=False, shuffled=False):
    """Lengths in [1, T] for the B sequences of a padded (T, B, *) or (B, T, *) input,
    one of them T; decreasing unless shuffled."""
    steps, batch = shapes[0][:2][::-1] if batch_first else shapes[0][:2]
    lengths = torch.randint(1, steps + 1, (batch,), generator=gen)
    lengths[0] = steps
    lengths = lengths.sort(descending=True).values
    if shuffled:
        lengths = lengths[torch.randperm(batch, generator=gen)]
    return (lengths.tolist(),)


PADDED = [((5, 3, 2),), ((4, 1),), ((3, 4, 2, 2),)]
for batch_first in (False, True):
    for enforce_sorted in (True, False):
        name = "pack_padded_sequence" + ("_batch_first" if batch_first else "") + (
            "" if enforce_sorted else "_unsorted")
        options = {"batch_first": batch_first, "enforce_sorted": enforce_sorted}
        register(
            name,
            fn=lambda x, lengths, o=options: packing.pack_padded_sequence(x, lengths, **o).data,
            ref=lambda x, lengths, o=options: torch_rnn.pack_padded_sequence(
                x, lengths, **o).data,
            shapes=PADDED,
            extras=lambda gen, shapes, b=batch_first, s=not enforce_sorted: _lengths(
                gen, shapes, b, s),
            covers=(ops.IndexSelect, ops.Reshape),
        )
        # the round trip: pack, then pad again (padding_value where nothing was)
        register(
            name.replace("pack_padded", "pad_packed"),
            fn=lambda x, lengths, o=options: packing.pad_packed_sequence(
                packing.pack_padded_sequence(x, lengths, **o), o["batch_first"],
                padding_value=-2.0, total_length=x.shape[1 if o["batch_first"] else 0] + 1)[0],
            ref=lambda x, lengths, o=options: torch_rnn.pad_packed_sequence(
                torch_rnn.pack_padded_sequence(x, lengths, **o), o["batch_first"],
                padding_value=-2.0, total_length=x.shape[1 if o["batch_first"] else 0] + 1)[0],
            shapes=PADDED,
            extras=lambda gen, shapes, b=batch_first, s=not enforce_sorted: _lengths(
                gen, shapes, b, s),
            covers=(ops.IndexSelect, ops.Cat),
        )

for batch_first in (False, True):
    for side in ("right", "left"):
        register(
            f"pad_sequence_{side}" + ("_batch_first" if batch_first else ""),
            fn=lambda a, b, c, bf=batch_first, s=side: packing.pad_sequence(
                [a, b, c], bf, 0.5, s),
            ref=lambda a, b, c, bf=batch_first, s=side: torch_rnn.pad_sequence(
                [a, b, c], bf, 0.5, s),
            shapes=[((2, 3), (4, 3), (1, 3)), ((3,), (1,), (3,)), ((1, 2, 2), (2, 2, 2),
                                                                   (3, 2, 2))],
            covers=(ops.IndexSelect, ops.Cat),
        )
register(
    "pack_sequence_unsorted",
    fn=lambda a, b, c: packing.pack_sequence([a, b, c], enforce_sorted=False).data,
    ref=lambda a, b, c: torch_rnn.pack_sequence([a, b, c], enforce_sorted=False).data,
    shapes=[((2, 3), (4, 3), (1, 3)), ((3,), (1,), (2,))],
    covers=(ops.IndexSelect, ops.Cat),
)
register(
    "unpack_sequence",
    fn=lambda a, b, c: tuple(packing.unpack_sequence(
        packing.pack_sequence([a, b, c], enforce_sorted=False))),
    ref=lambda a, b, c: tuple(torch_rnn.unpack_sequence(
        torch_rnn.pack_sequence([a, b, c], enforce_sorted=False))),
    shapes=[((2, 3), (4, 3), (1, 3))],
    covers=(ops.IndexSelect, ops.GetItem),
)
