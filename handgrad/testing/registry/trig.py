"""Registry entries for asin / acos / atan, sinh / cosh, erf, atan2 (handgrad/ops/trig.py)
and bernoulli (handgrad/ops/bernoulli.py).

asin and acos are drawn inside (-1, 1), where their derivative is finite; atan2's points
keep away from the origin (x in [0.5, 2], also mirrored to x < 0 so every quadrant is
tried). bernoulli is drawn from a generator seeded alike for handgrad and torch; its
gradient is torch's zero, which finite differences of a fixed draw cannot check (the
number-p form, whose backward torch refuses, is in tests/tensor/test_trig_bernoulli.py).
"""

from __future__ import annotations

import torch

import handgrad as hg
from handgrad.ops.bernoulli import Bernoulli
from handgrad.ops.trig import Acos, Asin, Atan, Atan2, Cosh, Erf, Sinh
from handgrad.testing.registry import positive, real, register, uniform

inside_unit = uniform(-0.9, 0.9)
probability = uniform(0.1, 0.9)
UNARY = [((3, 4),), ((),), ((2, 1, 3),)]

register("asin", lambda x: hg.asin(x) + x.arcsin(), ref=lambda x: torch.asin(x) * 2,
         shapes=UNARY, domains=inside_unit, covers=(Asin,), random_shapes="unary")
register("acos", lambda x: x.acos() + hg.arccos(x), ref=lambda x: torch.acos(x) * 2,
         shapes=UNARY, domains=inside_unit, covers=(Acos,), random_shapes="unary")
register("atan", lambda x: x.atan(), shapes=UNARY, covers=(Atan,), random_shapes="unary")
register("sinh_cosh", lambda x: hg.sinh(x) * x.cosh(),
         ref=lambda x: torch.sinh(x) * torch.cosh(x), shapes=UNARY, covers=(Sinh, Cosh),
         random_shapes="unary")
register("erf", lambda x: x.erf(), shapes=UNARY, covers=(Erf,), random_shapes="unary")
register("atan2", lambda y, x: hg.atan2(y, x) + y.atan2(-x),
         ref=lambda y, x: torch.atan2(y, x) + y.atan2(-x),
         shapes=[((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1), (1, 3)), ((), ())],
         domains=(real, positive), covers=(Atan2,), random_shapes="binary",
         note="x kept away from 0 (the origin has no derivative); -x tries the left half")


def _seeded(x) -> torch.Generator:
    """A generator on x's device, seeded the same for handgrad's call and torch's."""
    return torch.Generator(device=x.device).manual_seed(5)


register("bernoulli", lambda p: hg.bernoulli(p, generator=_seeded(p)) * p,
         ref=lambda p: torch.bernoulli(p, generator=_seeded(p)) * p,
         shapes=[((3, 4),), ((20,),)], domains=probability, covers=(Bernoulli,),
         finite_differences=False,
         note="the draw times p: p's gradient is the draw alone, bernoulli's own being "
              "torch's zero; finite differences would see the draw change")
