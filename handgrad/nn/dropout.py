"""Dropout: while training, zero each element (Dropout) or each whole channel
(Dropout1d, Dropout2d) with probability p and scale the others by 1 / (1 - p); in
evaluation, the identity. The mask is drawn from torch's random generator (seed it
with handgrad.manual_seed), or from the `generator` you give. AlphaDropout and
FeatureAlphaDropout (for SELU networks) set dropped values to SELU's negative saturation
and rescale so that a zero-mean unit-variance input keeps its mean and variance.

Left out: Dropout3d.
"""

from __future__ import annotations

from handgrad.nn import functional as F
from handgrad.nn.module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "FeatureAlphaDropout"]


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


class Dropout1d(Dropout):
    """Randomly zeroes whole channels of (N, C, L) or (C, L) inputs with probability p
    while training (identity in eval)."""

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace, self.generator)


class Dropout2d(Dropout):
    """Randomly zeroes whole channels of (N, C, H, W) inputs with probability p while
    training (identity in eval); a 3-d input is read as (N, C, L), as in torch."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace, self.generator)


class AlphaDropout(Dropout):
    """Alpha dropout of elements with probability p while training (identity in eval):
    keeps the mean and variance of a SELU network's activations."""

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training, self.inplace, self.generator)


class FeatureAlphaDropout(Dropout):
    """Alpha dropout of whole channels (dim 1) of (N, C, *) inputs with probability p
    while training (identity in eval)."""

    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training, self.inplace,
                                       self.generator)
