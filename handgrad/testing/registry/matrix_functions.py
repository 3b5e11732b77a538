"""Registry entries of handgrad/ops/matrix_functions.py: the matrix exponential and
solve, the two matrix functions behind nn.utils.parametrizations.orthogonal, checked
against torch.linalg.matrix_exp and torch.linalg.solve."""

from __future__ import annotations

import torch

import handgrad as hg
from handgrad.ops.matrix_functions import MatrixExp, Solve
from handgrad.testing.registry import register, unit


def _well_conditioned(a, eye):
    """a + 4 I: with entries of a standard normal a 3x3 or 4x4 this stays far from
    singular, so the finite differences of solve are well conditioned."""
    return a + 4 * eye(a.shape[-1], dtype=a.dtype, device=a.device)


register("matrix_exp", lambda a: MatrixExp.apply(a), ref=lambda a: torch.linalg.matrix_exp(a),
         shapes=[((3, 3),), ((2, 4, 4),), ((1, 1),)], domains=unit, covers=(MatrixExp,))
register("solve", lambda a, b: Solve.apply(_well_conditioned(a, hg.eye), b),
         ref=lambda a, b: torch.linalg.solve(_well_conditioned(a, torch.eye), b),
         shapes=[((3, 3), (3, 2)), ((2, 4, 4), (2, 4, 3)), ((1, 1), (1, 1))], covers=(Solve,))
