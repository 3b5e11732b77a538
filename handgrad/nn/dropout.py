"""Dropout: while training, zero each element with probability p and scale the others
by 1 / (1 - p); in evaluation, the identity. The mask is drawn from torch's random
generator (seed it with handgrad.manual_seed), or from the `generator` you give.

Left out: Dropout1d/2d/3d (whole channels), AlphaDropout.
"""

from __future__ import annotations

from handgrad.nn import functional as F
from handgrad.nn.module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Randomly zeroes elements with probability p while training (identity in eval)."""

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace
        self.generator = generator

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
