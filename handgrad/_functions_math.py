"""Free functions of the math family, as torch's (`handgrad.f(x, ...)`); they
delegate to the Tensor methods (handgrad/_tensor_math.py) and the ops.
"""

from __future__ import annotations

__all__: list[str] = []
