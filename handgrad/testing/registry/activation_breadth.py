"""Registry entries for the less common activations of handgrad.nn.functional
(activation.py): logsigmoid, hardtanh, relu6, hardswish, hardsigmoid, mish, glu, prelu,
selu, celu, softsign, tanhshrink, threshold, softmin, and one_hot (through a product, so
its exact 0/1 values are compared and the gradient of the other factor is checked).

torch.nn.functional is the reference. Each fused Function also gets its composed
reference: the same math from handgrad primitives (clamp, where, exp, tanh, softplus,
sigmoid, chunk, abs). Piecewise-linear functions draw from domains away from their kinks
(the odd grid against even bounds, ranges where hitting the kink has probability zero);
the kinks themselves (torch's subgradients) are tested in
tests/nn/test_activation_breadth.py.

Left out: the modules and in-place forms (tests/nn/test_activation_breadth.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad import ops
from handgrad.nn.functional import activation as A
from handgrad.testing.registry import nonzero, odd_grid, real, register, uniform

UNARY = [((3, 4),), ((),), ((2, 3, 4),), ((5,),)]


# ============================================================== composed references
def _selu(x):
    return A.SELU_SCALE * hg.where(x > 0, x, A.SELU_ALPHA * (x.exp() - 1))


def _celu(alpha):
    return lambda x: hg.where(x > 0, x, alpha * ((x / alpha).exp() - 1))


def _prelu(x, w):
    """where(x > 0, x, w x), w shaped (1, C, 1, ...) when it has C slopes."""
    if w.shape[0] != 1:
        w = w.reshape(1, -1, *([1] * (x.ndim - 2)))
    elif x.ndim == 0:
        w = w.reshape(())
    return hg.where(x > 0, x, w * x)


def _glu(x, dim):
    a, b = x.chunk(2, dim)
    return a * b.sigmoid()


# ============================================================== elementwise
for name, fn, ref, cls, composed, domain in [
    ("logsigmoid", HF.logsigmoid, TF.logsigmoid, A.LogSigmoid,
     lambda x: -(-x).softplus(), real),
    ("hardtanh", HF.hardtanh, TF.hardtanh, A.Hardtanh, lambda x: x.clamp(-1.0, 1.0),
     odd_grid),
    ("hardtanh_bounds", lambda x: HF.hardtanh(x, -0.4, 0.6),
     lambda x: TF.hardtanh(x, -0.4, 0.6), A.Hardtanh, lambda x: x.clamp(-0.4, 0.6), odd_grid),
    ("relu6", HF.relu6, TF.relu6, A.Hardtanh, lambda x: x.clamp(0.0, 6.0), uniform(-3, 9)),
    ("hardswish", HF.hardswish, TF.hardswish, A.Hardswish,
     lambda x: x * (x + 3).clamp(0, 6) / 6, uniform(-5, 5)),
    ("hardsigmoid", HF.hardsigmoid, TF.hardsigmoid, A.Hardsigmoid,
     lambda x: (x + 3).clamp(0, 6) / 6, uniform(-5, 5)),
    ("mish", HF.mish, TF.mish, A.Mish, lambda x: x * x.softplus().tanh(), uniform(-4, 4)),
    ("selu", HF.selu, TF.selu, A.ScaledElu, _selu, nonzero),
    ("celu", HF.celu, TF.celu, A.ScaledElu, _celu(1.0), nonzero),
    ("celu_alpha", lambda x: HF.celu(x, 0.7), lambda x: TF.celu(x, 0.7), A.ScaledElu,
     _celu(0.7), nonzero),
    ("softsign", HF.softsign, TF.softsign, A.Softsign, lambda x: x / (1 + x.abs()), nonzero),
    ("tanhshrink", HF.tanhshrink, TF.tanhshrink, A.Tanhshrink, lambda x: x - x.tanh(), real),
    # 0.4 is on the even grid: x on the odd grid is never at the threshold
    ("threshold", lambda x: HF.threshold(x, 0.4, -2.5), lambda x: TF.threshold(x, 0.4, -2.5),
     A.Threshold, lambda x: hg.where(x > 0.4, x, -2.5), odd_grid),
]:
    register(name, fn, ref=ref, shapes=UNARY, covers=(cls,), domains=domain,
             random_shapes="unary", composed=composed)

register("softmin", lambda x, dim: HF.softmin(x, dim), ref=lambda x, dim: TF.softmin(x, dim),
         shapes=[((3, 4),), ((2, 3, 4),), ((5,),)], covers=(ops.Neg, ops.Softmax),
         extras=lambda gen, shapes: (int(torch.randint(-len(shapes[0]), len(shapes[0]), (),
                                                       generator=gen)),),
         note="softmax(-x): composed from two primitives, no Function of its own")
register("softmin_dtype", lambda x: HF.softmin(x, 1, dtype=torch.float64),
         ref=lambda x: TF.softmin(x, 1, dtype=torch.float64), shapes=[((3, 4),)],
         covers=(ops.Neg, ops.Softmax, ops.To))

# ============================================================== glu, prelu
for name, dim, cases in [("glu", -1, [((3, 4),), ((2, 3, 6),), ((4,),)]),
                         ("glu_dim1", 1, [((3, 4),), ((2, 6, 3),)])]:
    register(name, lambda x, d=dim: HF.glu(x, d), ref=lambda x, d=dim: TF.glu(x, d),
             shapes=cases, covers=(A.GLU,), composed=lambda x, d=dim: _glu(x, d))

register("prelu", HF.prelu, ref=TF.prelu,
         shapes=[((2, 3, 4), (3,)), ((2, 3, 4), (1,)), ((4, 5), (5,)), ((3,), (1,)),
                 ((), (1,)), ((2, 3, 2, 2), (3,))],
         covers=(A.PReLU,), domains=(nonzero, real), composed=_prelu)


# ============================================================== one_hot
def _classes(gen, shapes):
    """Class indices for an input of shape (*, C): (*,) values in [0, C)."""
    shape = shapes[0]
    return (torch.randint(0, shape[-1], shape[:-1], generator=gen),)


register("one_hot", lambda x, target: x * HF.one_hot(target, x.shape[-1]),
         ref=lambda x, target: x * TF.one_hot(target, x.shape[-1]),
         shapes=[((3, 4),), ((2, 3, 5),), ((4,),)], covers=(ops.Mul,), extras=_classes,
         note="one_hot has no gradient; its 0/1 values enter through a product")
register("one_hot_inferred", lambda x, target: HF.one_hot(target),
         ref=lambda x, target: TF.one_hot(target), shapes=[((3, 4),), ((6, 2),)],
         covers=(ops.Mul,), extras=_classes,
         note="the int64 output itself, num_classes=-1 (max + 1), compared exactly")
