"""Fixtures of the optim tests: every test runs on one intra-op thread.

The nets here are tiny, so a second thread buys nothing, and on a shared 2-core machine
two spinning threads can slow a test many times over (tests/nn/conftest.py has the same
fixture as an opt-in `one_thread`).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
