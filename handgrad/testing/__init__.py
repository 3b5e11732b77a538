"""handgrad.testing: the proof that every hand-written gradient is right.

    finite_differences.py  the public checks users run on their own Functions:
                           gradcheck, gradcheck_report, check_grads (re-exported here)
    registry/              the op registry: one OpSpec per checked operation (its torch
                           reference, input shapes and domains, and for every fused
                           Function its composed reference written with primitives)
    oracle.py              runs an OpSpec: forward and backward against torch, finite
                           differences, fused against composed; the `handgrad gradcheck`
                           command

`import handgrad.testing` loads only the finite-difference checks; the registry and the
oracle (which use torch.nn.functional and torch.autograd as the reference, the one place
in the package besides handgrad/bench that may) are imported on their own.

Left out: benchmarks (handgrad/bench), hypothesis strategies for random shapes
(tests/tensor/test_ops.py).
"""

from handgrad.testing.finite_differences import (
    GradcheckError,
    GradcheckReport,
    check_grads,
    gradcheck,
    gradcheck_report,
)

__all__ = ["gradcheck", "gradcheck_report", "check_grads", "GradcheckError", "GradcheckReport"]
