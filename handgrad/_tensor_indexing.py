"""Tensor methods of the indexing family, as a mixin of handgrad.Tensor (kept out of
_tensor.py so that file stays readable; the ops themselves live in handgrad/ops/).

This module must not import handgrad._tensor at import time (that module imports this
one): results are made with Function.apply or `self._result_type._make(data, False,
None)`.
"""

from __future__ import annotations

__all__: list[str] = []


class _IndexingMethods:
    __slots__ = ()
