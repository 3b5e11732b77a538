"""The learner's loop-based conv2d of docs/nn.md ("Convolution the way a learner first
writes it"), taken from the guide itself between its `# begin: loop_conv2d` and
`# end: loop_conv2d` markers, against the fast F.conv2d over stride, padding, dilation
and bias: the code a reader is shown is the code that is checked.

Left out: running the guide's other blocks (tests/project/test_docs_examples.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import handgrad as hg
import handgrad.nn.functional as F
from tests.torch_compare import assert_close

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "nn.md"


def _loop_conv2d():
    """The function the guide defines between its markers."""
    text = GUIDE.read_text(encoding="utf-8")
    begin, end = "# begin: loop_conv2d\n", "# end: loop_conv2d"
    assert begin in text and end in text, f"{GUIDE}: the loop_conv2d markers are missing"
    code = text[text.index(begin) + len(begin):text.index(end)]
    namespace = {"torch": torch}
    exec(compile(code, str(GUIDE), "exec"), namespace)  # noqa: S102 -- the guide's code
    return namespace["loop_conv2d"]


@pytest.mark.parametrize("stride,padding,dilation,bias", [
    (1, 0, 1, False), (2, 1, 1, True), (1, 2, 2, True), (3, 1, 2, False), (2, 0, 3, True)])
def test_the_guides_loop_conv2d_equals_the_fast_one(stride, padding, dilation, bias):
    loop_conv2d = _loop_conv2d()
    gen = torch.Generator().manual_seed(stride * 100 + padding * 10 + dilation)
    x = torch.randn(2, 3, 9, 8, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(4, generator=gen, dtype=torch.float64) if bias else None
    options = {"stride": stride, "padding": padding, "dilation": dilation}
    fast = F.conv2d(hg.Tensor(x), hg.Tensor(w), None if b is None else hg.Tensor(b),
                    **options)
    assert_close(loop_conv2d(x, w, b, **options), fast, torch.float64, f"conv2d {options}")
