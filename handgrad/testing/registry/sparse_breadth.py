"""Registry entries for embedding_bag (the fused EmbeddingBag Function): sum, mean and
max over 2-d inputs and over offsets, with per_sample_weights, padding_idx,
include_last_offset and scale_grad_by_freq.

The composed form of each is the same bag reduction from primitives: index_select of
the rows, index_add of them into their bags (sum, mean), or the rows laid out as a
(bags, longest bag, dim) block padded with -inf and reduced with amax (max).
scale_grad_by_freq changes the gradient on purpose (torch's convention), so finite
differences do not apply to it, and its reference is F.embedding(scale_grad_by_freq=
True) reduced per bag: torch's CPU embedding_bag kernel divides some rows' gradients by
another row's count (the documented rule is each row's own count).

Left out: the module (tests/nn/test_nn_breadth.py compares it with torch.nn.EmbeddingBag).
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.testing.registry import positive, real, register

OFFSETS = [0, 3, 3, 7]  # four bags over 10 entries, the second one empty
LENGTH = 10


def _bag_ids(offsets, count, include_last_offset=False):
    """The bag of each entry (len(starts) for entries after the last offset)."""
    offsets = offsets.tolist()
    starts = offsets[:-1] if include_last_offset else offsets
    end = offsets[-1] if include_last_offset else count
    bags = [len(starts)] * count
    for b, start in enumerate(starts):
        stop = starts[b + 1] if b + 1 < len(starts) else end
        for i in range(start, stop):
            bags[i] = b
    return bags, len(starts)


def _composed_bag(w, idx, offsets=None, mode="mean", per_sample_weights=None,
                  padding_idx=None, include_last_offset=False, scale_grad_by_freq=False):
    """embedding_bag from index_select, index_add, amax and where."""
    raw = idx.data.reshape(-1)
    if idx.ndim == 2:
        bags, num_bags = [i // idx.shape[1] for i in range(raw.numel())], idx.shape[0]
    else:
        bags, num_bags = _bag_ids(offsets.data, raw.numel(), include_last_offset)
    bags = [num_bags if padding_idx is not None and int(r) == padding_idx else b
            for b, r in zip(bags, raw.tolist())]
    dim = w.shape[1]
    if scale_grad_by_freq:  # value kept, gradient divided by the row's count
        counts = hg.Tensor(torch.bincount(raw, minlength=w.shape[0]).clamp(min=1)
                           .to(w.dtype)).reshape(-1, 1)
        w = w / counts + (w - w / counts).detach()
    if mode == "max":
        members = [[i for i, b in enumerate(bags) if b == bag] for bag in range(num_bags)]
        longest = max(len(m) for m in members)
        table = torch.full((num_bags, longest), w.shape[0], dtype=torch.long)  # -inf row
        for bag, entries in enumerate(members):
            table[bag, :len(entries)] = raw[entries]
        padded = hg.cat([w, hg.full((1, dim), -torch.inf, dtype=w.dtype)])
        block = padded.index_select(0, hg.Tensor(table.reshape(-1))).reshape(
            num_bags, longest, dim)
        filled = hg.Tensor(torch.tensor([len(m) > 0 for m in members]).reshape(-1, 1))
        return hg.where(filled, block.amax(1), 0.0)
    rows = w.index_select(0, hg.Tensor(raw))
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.reshape(-1, 1)
    out = hg.zeros(num_bags + 1, dim, dtype=w.dtype).index_add(
        0, hg.Tensor(torch.tensor(bags)), rows)[:num_bags]
    if mode == "mean":
        sizes = torch.bincount(torch.tensor(bags), minlength=num_bags + 1)[:num_bags]
        out = out / hg.Tensor(sizes.clamp(min=1).to(w.dtype).reshape(-1, 1))
    return out


def _indices_2d(gen, shapes):
    return (torch.randint(0, shapes[0][0], (3, 4), generator=gen),)


def _indices_1d(gen, shapes):
    count = shapes[1][0] if len(shapes) > 1 else LENGTH
    return (torch.randint(0, shapes[0][0], (count,), generator=gen),
            torch.tensor(OFFSETS if count == LENGTH else [0, 2, 2]))


def _scaled_reference(w, idx, offsets, mode):
    rows = TF.embedding(idx, w, scale_grad_by_freq=True)
    starts = offsets.tolist()
    ends = starts[1:] + [idx.numel()]
    reduce = torch.sum if mode == "sum" else torch.mean
    return torch.stack([reduce(rows[a:b], 0) if b > a else w.new_zeros(w.shape[1])
                        for a, b in zip(starts, ends)])


for mode in ("sum", "mean", "max"):
    register(
        f"embedding_bag_{mode}_2d",
        fn=lambda w, idx, m=mode: HF.embedding_bag(idx, w, mode=m),
        ref=lambda w, idx, m=mode: TF.embedding_bag(idx, w, mode=m),
        composed=lambda w, idx, m=mode: _composed_bag(w, idx, mode=m),
        shapes=[((6, 3),), ((5, 2),)],
        extras=_indices_2d,
        covers=(HF.EmbeddingBag,),
    )
    register(
        f"embedding_bag_{mode}_offsets",
        fn=lambda w, idx, off, m=mode: HF.embedding_bag(idx, w, off, mode=m),
        ref=lambda w, idx, off, m=mode: TF.embedding_bag(idx, w, off, mode=m),
        composed=lambda w, idx, off, m=mode: _composed_bag(w, idx, off, mode=m),
        shapes=[((6, 3),), ((5, 2),)],
        extras=_indices_1d,
        covers=(HF.EmbeddingBag,),
    )
    register(  # padding entries are left out of the bag, so the gradient is the derivative
        f"embedding_bag_{mode}_padding",
        fn=lambda w, idx, off, m=mode: HF.embedding_bag(idx, w, off, mode=m, padding_idx=1),
        ref=lambda w, idx, off, m=mode: TF.embedding_bag(idx, w, off, mode=m, padding_idx=1),
        composed=lambda w, idx, off, m=mode: _composed_bag(w, idx, off, mode=m,
                                                           padding_idx=1),
        shapes=[((6, 3),), ((5, 2),)],
        extras=_indices_1d,
        covers=(HF.EmbeddingBag,),
    )
register(
    "embedding_bag_per_sample_weights",
    fn=lambda w, psw, idx, off: HF.embedding_bag(idx, w, off, mode="sum",
                                                 per_sample_weights=psw),
    ref=lambda w, psw, idx, off: TF.embedding_bag(idx, w, off, mode="sum",
                                                  per_sample_weights=psw),
    composed=lambda w, psw, idx, off: _composed_bag(w, idx, off, mode="sum",
                                                    per_sample_weights=psw),
    shapes=[((6, 3), (LENGTH,)), ((5, 2), (4,))],
    domains=(real, positive),
    extras=_indices_1d,
    covers=(HF.EmbeddingBag,),
)
register(
    "embedding_bag_include_last_offset",
    fn=lambda w, idx, off: HF.embedding_bag(idx, w, off, mode="mean",
                                            include_last_offset=True),
    ref=lambda w, idx, off: TF.embedding_bag(idx, w, off, mode="mean",
                                             include_last_offset=True),
    composed=lambda w, idx, off: _composed_bag(w, idx, off, mode="mean",
                                               include_last_offset=True),
    shapes=[((6, 3),)],
    extras=lambda gen, shapes: (torch.randint(0, shapes[0][0], (LENGTH,), generator=gen),
                                torch.tensor([*OFFSETS, LENGTH])),
    covers=(HF.EmbeddingBag,),
)
for mode in ("sum", "mean"):
    register(
        f"embedding_bag_{mode}_scale_grad_by_freq",
        fn=lambda w, idx, off, m=mode: HF.embedding_bag(idx, w, off, mode=m,
                                                        scale_grad_by_freq=True),
        ref=lambda w, idx, off, m=mode: _scaled_reference(w, idx, off, m),
        composed=lambda w, idx, off, m=mode: _composed_bag(w, idx, off, mode=m,
                                                           scale_grad_by_freq=True),
        shapes=[((6, 3),), ((5, 2),)],
        extras=_indices_1d,
        covers=(HF.EmbeddingBag,),
        finite_differences=False,
        note="the gradient is torch's convention, not the derivative",
    )
