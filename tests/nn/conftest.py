"""Fixtures of the nn tests: `dtype` runs a test in float32 and in float64.

Left out: the module comparison helpers (nn_helpers.py).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    return request.param
