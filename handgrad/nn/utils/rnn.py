"""nn.utils.rnn, as torch's: batches of sequences of different lengths, packed and padded.

    PackedSequence        (data, batch_sizes, sorted_indices, unsorted_indices), a
                          NamedTuple: `data` holds the steps of every sequence, time step
                          by time step, longest sequences first (sorted batch order);
                          batch_sizes[t] is how many sequences are longer than t
    pack_padded_sequence  (T, B, *) or (B, T, *) padded input + lengths -> PackedSequence
    pad_packed_sequence   PackedSequence -> (padded, lengths), its inverse
    pack_sequence         a list of (L_i, *) tensors -> PackedSequence
    pad_sequence          a list of (L_i, *) tensors -> (T, B, *) or (B, T, *), padded
    unpad_sequence        padded + lengths -> the list of (L_i, *) tensors
    unpack_sequence       PackedSequence -> the list of (L_i, *) tensors

Gradients flow through all of them: each is composed from handgrad primitives, so no
Function of its own and no hand-written backward here. Every one gathers the rows it
needs with ONE index_select over the input's first two dims flattened (the backward of
index_select, a scatter-add, is exactly the inverse map); the padding, where there is
some, is one constant row concatenated below the data that the index points at. The
index is built once, on the CPU from the lengths, and moved to the data's device.

Left out: torch's ONNX/tracing paths and the pinned-memory helpers (`pin_memory`,
`is_pinned`); `unpad_sequence` does not transpose its input in place (torch's does,
as a side effect).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from handgrad._functions import cat
from handgrad._tensor import Tensor
from handgrad.autograd import HandgradError

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
           "pad_sequence", "unpad_sequence", "unpack_sequence", "invert_permutation"]


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def invert_permutation(permutation):
    """The inverse permutation (None stays None): out[permutation[i]] = i."""
    if permutation is None:
        return None
    raw = _raw(permutation)
    inverse = torch.empty_like(raw, memory_format=torch.legacy_contiguous_format)
    inverse.scatter_(0, raw, torch.arange(0, raw.numel(), device=raw.device))
    return Tensor(inverse)


class _PackedSequenceFields(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(_PackedSequenceFields):
    """Holds the data and the list of batch_sizes of a packed sequence, as torch's.

    data: (sum of the lengths, *) - step t of every sequence longer than t, in sorted
    batch order (longest first), for t = 0, 1, ...; batch_sizes: int64 on the CPU, one
    count per time step; sorted_indices: sorted position -> original batch index (None
    when the batch came sorted); unsorted_indices: its inverse. A tuple, so
    `data, batch_sizes, *_ = packed` works. Build one with pack_padded_sequence or
    pack_sequence rather than by hand (as in torch)."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:  # PackedSequence((data, batch_sizes, ...)), as torch
            data, batch_sizes, *rest = data
            sorted_indices, unsorted_indices = (list(rest) + [None, None])[:2]
        batch_sizes = _as_tensor(batch_sizes)
        if batch_sizes.dtype != torch.int64 or batch_sizes.device.type != "cpu" \
                or batch_sizes.ndim != 1:
            raise HandgradError(
                "PackedSequence: batch_sizes must be a 1-d int64 CPU tensor, got "
                f"{batch_sizes.ndim}-d {batch_sizes.dtype} on {batch_sizes.device}. "
                "Build packed sequences with pack_padded_sequence or pack_sequence.")
        if sorted_indices is not None:
            sorted_indices = _as_tensor(sorted_indices)
            if unsorted_indices is None:
                unsorted_indices = invert_permutation(sorted_indices)
        if unsorted_indices is not None:
            unsorted_indices = _as_tensor(unsorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    # ------------------------------------------------ moves and casts, as torch's
    def to(self, *args, **kwargs) -> PackedSequence:
        """data.to(*args, **kwargs); the indices follow data's device, batch_sizes stay
        on the CPU. Returns self when nothing changes."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        def move(indices):
            return None if indices is None else Tensor(indices.data.to(data.device))

        return type(self)(data, self.batch_sizes, move(self.sorted_indices),
                          move(self.unsorted_indices))

    def cuda(self, *args, **kwargs) -> PackedSequence:
        device = args[0] if args else kwargs.pop("device", None)
        return self.to("cuda" if device is None else device, **kwargs)

    def cpu(self, *args, **kwargs) -> PackedSequence:
        return self.to("cpu", *args, **kwargs)

    def double(self) -> PackedSequence:
        return self.to(dtype=torch.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=torch.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=torch.float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=torch.int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=torch.int32)

    @property
    def is_cuda(self) -> bool:
        """True when data lives on a CUDA device."""
        return self.data.device.type == "cuda"


def _as_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, torch.Tensor):
        return Tensor(x)
    return Tensor(torch.as_tensor(x, dtype=torch.int64))


def _lengths_tensor(lengths) -> torch.Tensor:
    """lengths (a list, a handgrad or torch tensor) as a 1-d int64 CPU torch tensor,
    with torch's error for a tensor elsewhere or of another rank."""
    if isinstance(lengths, Tensor | torch.Tensor):
        raw = _raw(lengths)
        if raw.ndim != 1 or raw.device.type != "cpu":
            kind = {torch.int64: "Long", torch.int32: "Int", torch.float32: "Float",
                    torch.float64: "Double"}.get(raw.dtype, str(raw.dtype))
            raise HandgradError(
                "pack_padded_sequence: 'lengths' argument should be a 1D CPU int64 tensor, "
                f"but got {raw.ndim}D {raw.device} {kind} tensor. Pass lengths.cpu() (or "
                "a list of ints); the lengths decide the shapes, so they live on the CPU.")
        return raw.to(torch.int64)
    return torch.as_tensor(list(lengths), dtype=torch.int64)


def _batch_sizes(lengths: torch.Tensor) -> torch.Tensor:
    """batch_sizes[t] = how many lengths exceed t, for t < max length (lengths sorted
    in decreasing order)."""
    steps = torch.arange(int(lengths[0]))
    return (lengths.unsqueeze(0) > steps.unsqueeze(1)).sum(1)


def _packed_rows(batch_sizes: torch.Tensor):
    """For each row of packed data, in order: its time step t and sorted batch slot s."""
    steps = int(batch_sizes.numel())
    width = int(batch_sizes[0]) if steps else 0
    t = torch.arange(steps).unsqueeze(1).expand(steps, width)
    s = torch.arange(width).unsqueeze(0).expand(steps, width)
    keep = s < batch_sizes.unsqueeze(1)
    return t[keep], s[keep]


def pack_padded_sequence(input, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Packs a padded batch of sequences of different lengths, as torch's.

    input: (T, B, *) (or (B, T, *) with batch_first), sequence b's steps in
    input[:lengths[b], b]; lengths: a list of ints or a 1-d CPU tensor, all > 0. With
    enforce_sorted=True the lengths must be in decreasing order; with False the batch is
    sorted here and the permutation kept in sorted_indices. The packed data is one
    index_select of the rows it keeps (gradient: those rows get the gradient of data,
    padding gets zero)."""
    if input.ndim < 2:
        raise HandgradError(
            f"pack_padded_sequence: expected an input of at least 2 dims ((T, B, *), or "
            f"(B, T, *) with batch_first), got shape {tuple(input.shape)}")
    lengths = _lengths_tensor(lengths)
    time_dim, batch_dim = (1, 0) if batch_first else (0, 1)
    steps, batch = input.shape[time_dim], input.shape[batch_dim]
    if lengths.numel() != batch:
        raise HandgradError(
            f"pack_padded_sequence: Expected `len(lengths)` to be equal to batch_size, but "
            f"got {lengths.numel()} (batch_size={batch}); input of shape "
            f"{tuple(input.shape)}, batch_first={batch_first}")
    if batch and int(lengths.min()) <= 0:
        raise HandgradError(
            "pack_padded_sequence: Length of all samples has to be greater than 0, but "
            f"found an element in 'lengths' that is <= 0 (lengths {lengths.tolist()}). "
            "Drop the empty sequences from the batch before packing.")
    if batch and int(lengths.max()) > steps:
        raise HandgradError(
            f"pack_padded_sequence: a length of {int(lengths.max())} exceeds the input's "
            f"{steps} time steps (input of shape {tuple(input.shape)}, batch_first="
            f"{batch_first}); check the lengths, or pass batch_first to match the layout")
    if enforce_sorted:
        if bool((lengths[1:] > lengths[:-1]).any()):
            raise HandgradError(
                "pack_padded_sequence: `lengths` array must be sorted in decreasing order "
                "when `enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                "pack_padded_sequence and/or pack_sequence to sidestep this requirement if "
                f"you do not need ONNX exportability. (lengths {lengths.tolist()})")
        sorted_indices = None
        order = torch.arange(batch)
    else:
        lengths, order = torch.sort(lengths, descending=True)
        sorted_indices = order
    batch_sizes = _batch_sizes(lengths)
    t, s = _packed_rows(batch_sizes)
    b = order[s]  # the original batch index of each packed row
    flat = t * batch + b if not batch_first else b * steps + t
    data = input.reshape(steps * batch, *input.shape[2:])
    data = data.index_select(0, flat.to(input.device))
    if sorted_indices is not None:
        sorted_indices = Tensor(sorted_indices.to(input.device))
    return PackedSequence(data, Tensor(batch_sizes), sorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """The inverse of pack_padded_sequence, as torch's: (padded, lengths).

    padded: (T, B, *) (or (B, T, *) with batch_first), T = total_length or the longest
    length, in the original batch order (unsorted_indices applied), padding_value past
    each sequence's end; lengths: int64 on the CPU, in the same order. One constant
    padding row is concatenated below data and one index_select places every row."""
    data, batch_sizes = sequence.data, _raw(sequence.batch_sizes)
    steps = int(batch_sizes.numel())
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence "
                f"in input, but got total_length={total_length} and max sequence length "
                f"being {steps}")
        steps = total_length
    batch = int(batch_sizes[0])
    lengths = (batch_sizes.unsqueeze(0) > torch.arange(batch).unsqueeze(1)).sum(1)
    t, s = _packed_rows(batch_sizes)
    unsorted = sequence.unsorted_indices
    # where[t, s] = packed row of step t of sorted slot s, or the padding row
    where = torch.full((steps, batch), data.shape[0], dtype=torch.int64)
    where[t, s] = torch.arange(t.numel())
    if unsorted is not None:
        order = _raw(unsorted).cpu()
        where, lengths = where[:, order], lengths[order]
    if batch_first:
        where = where.t()
    padding = Tensor(torch.full((1, *data.shape[1:]), padding_value, dtype=data.dtype,
                                device=data.device))
    padded = cat([data, padding]).index_select(0, where.reshape(-1).to(data.device))
    return padded.reshape(*where.shape, *data.shape[1:]), Tensor(lengths)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right"):
    """Stacks a list of (L_i, *) tensors into (T, B, *) (or (B, T, *) with batch_first),
    T = max L_i, padded with padding_value after each sequence (padding_side='right') or
    before it ('left'), as torch's. One cat of the sequences plus a padding row, and one
    index_select that places every row."""
    if padding_side not in ("left", "right"):
        raise HandgradError(
            f"pad_sequence: Expected padding_side to be one of left or right, but got "
            f"{padding_side}.")
    if isinstance(sequences, Tensor):
        sequences = sequences.unbind(0)
    sequences = list(sequences)
    if not sequences:
        raise HandgradError("pad_sequence: received an empty list of sequences")
    first = sequences[0]
    for i, seq in enumerate(sequences):
        if seq.ndim == 0 or tuple(seq.shape[1:]) != tuple(first.shape[1:]):
            raise HandgradError(
                f"pad_sequence: sequence {i} has shape {tuple(seq.shape)} but sequence 0 "
                f"has {tuple(first.shape)}; every sequence is (L_i, *) with the same *")
    lengths = torch.tensor([seq.shape[0] for seq in sequences], dtype=torch.int64)
    steps = int(lengths.max())
    starts = torch.cumsum(lengths, 0) - lengths  # first row of each sequence in the cat
    total = int(lengths.sum())
    time = torch.arange(steps).unsqueeze(1)  # (T, 1)
    shift = (steps - lengths).unsqueeze(0) if padding_side == "left" else 0
    position = time - shift  # step of the sequence at padded position t (T, B)
    inside = (position >= 0) & (position < lengths.unsqueeze(0))
    where = torch.where(inside, starts.unsqueeze(0) + position, torch.tensor(total))
    if batch_first:
        where = where.t()
    padding = Tensor(torch.full((1, *first.shape[1:]), padding_value, dtype=first.dtype,
                                device=first.device))
    rows = cat([*sequences, padding]).index_select(0, where.reshape(-1).to(first.device))
    return rows.reshape(*where.shape, *first.shape[1:])


def unpad_sequence(padded_sequences, lengths, batch_first: bool = False) -> list:
    """The list of sequences padded_sequences[:lengths[b], b] (or [b, :lengths[b]] with
    batch_first), as torch's: one slice each (their gradients land in place)."""
    lengths = _lengths_tensor(lengths).tolist()
    if batch_first:
        return [padded_sequences[b, :length] for b, length in enumerate(lengths)]
    return [padded_sequences[:length, b] for b, length in enumerate(lengths)]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Packs a list of (L_i, *) tensors, as torch's: pad_sequence, then
    pack_padded_sequence with their lengths."""
    sequences = list(sequences)
    if not sequences:
        raise HandgradError("pack_sequence: received an empty list of sequences")
    lengths = [seq.shape[0] for seq in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of sequences a PackedSequence holds, in the original order, as torch's:
    pad_packed_sequence, then unpad_sequence."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
