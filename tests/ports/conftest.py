"""The ports run on one intra-op thread (tiny ops: threads only contend)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
