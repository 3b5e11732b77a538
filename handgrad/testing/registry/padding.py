"""Registry entries for F.pad (handgrad/nn/functional/padding.py) in its four modes:
constant (with a value, with negative amounts that crop, over more dims than the
other modes allow), reflect, replicate and circular over 1, 2 and 3 trailing dims,
batched and unbatched, with negative amounts where torch accepts them.

F.pad is composed from primitives (slices, the Pad primitive, one index_select per
padded dim), so its gradient is theirs and these entries have no `composed`
reference: they check that composition against torch.nn.functional.pad, torch.autograd
and finite differences, contiguous and strided.

Left out: the modules (tests/nn/test_padding.py compares them with torch.nn).
"""

from __future__ import annotations

import torch.nn.functional as TF

import handgrad.nn.functional as HF
from handgrad import ops
from handgrad.testing.registry import register

# (name, input shapes, pad, mode, value)
PADS = [
    ("pad_constant_crop", [(3, 4, 5), (4, 6)], (1, -2, -1, 2), "constant", 0.5),
    ("pad_constant_three_dims", [(2, 3, 4)], (0, 1, 2, 0, 1, 1), "constant", None),
    ("pad_reflect_1d", [(2, 3, 6), (3, 5)], (2, 4), "reflect", None),
    ("pad_reflect_2d_negative", [(2, 2, 4, 5), (2, 4, 5)], (1, -1, 3, 2), "reflect", None),
    ("pad_reflect_3d", [(1, 2, 3, 4, 5)], (1, 2, 2, 1, 1, 2), "reflect", None),
    ("pad_replicate_1d", [(2, 3, 4), (3, 4)], (5, 1), "replicate", None),
    ("pad_replicate_2d", [(2, 2, 3, 4), (2, 3, 4)], (2, 0, -1, 3), "replicate", None),
    ("pad_circular_1d", [(2, 3, 5), (3, 5)], (5, 2), "circular", None),
    ("pad_circular_2d_negative", [(2, 2, 4, 5), (2, 4, 5)], (2, -1, -2, 1), "circular",
     None),
]
for name, shapes, amounts, mode, value in PADS:
    register(
        name,
        fn=lambda x, p=amounts, m=mode, v=value: HF.pad(x, p, mode=m, value=v),
        ref=lambda x, p=amounts, m=mode, v=value: TF.pad(x, p, mode=m, value=v),
        shapes=[(s,) for s in shapes],
        covers=(ops.Pad, ops.GetItem) if mode == "constant" else (ops.IndexSelect,),
        note=f"F.pad mode={mode!r}",
    )
