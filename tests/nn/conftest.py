"""Fixtures of the nn tests: `dtype` runs a test in float32 and in float64; `one_thread`
runs it on one intra-op thread.

Left out: the module comparison helpers (nn_helpers.py).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture
def one_thread():
    """Run on one intra-op thread (restored afterwards): correctness does not depend on
    it, and on a shared 2-core machine two spinning threads can slow a test 50-fold."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
