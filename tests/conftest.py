"""Suite-wide test settings: the devices every tensor test runs on, and hypothesis profiles.

* `device` (a parametrized fixture): "cpu" always, "cuda" too when torch sees a GPU; the
  "cuda" runs carry the `cuda` marker, so `pytest -m cuda` (make gpu-check) selects them
  with the tests marked by hand.
* hypothesis profiles: "ci" (the default: 10 examples, no deadline, so the suite stays
  fast on a 2-core machine) and "thorough" (200 examples); pick one with
  HYPOTHESIS_PROFILE=thorough.

Left out: helpers of one test area (they live in that area's conftest.py).
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=10, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile(
    "thorough", max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_collection_modifyitems(items):
    """Mark every run of the `device` fixture on "cuda" with `cuda`."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("device") == "cuda":
            item.add_marker(pytest.mark.cuda)


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Run the test once per available device: cpu always, cuda when present."""
    return request.param
