"""The autograd core, one job per module (read them in this order):

    grad_mode.py   whether operations are recorded: no_grad, enable_grad, set_grad_enabled
                   (per thread; torch's no_grad / inference_mode count too)
    function.py    Function (the op and its graph node: forward, backward, save_for_backward,
                   needs_input_grad, apply), TensorBase (what the core knows of a tensor),
                   HandgradError, alias groups for in-place checks
    hooks.py       tensor hooks, retain_grad's bookkeeping, RemovableHandle
    custom_function.py  Functions with torch's semantics for several outputs (one
                   gradient per output), once_differentiable
    engine.py      the backward engine: one iterative pass, the checks of what each
                   backward returns, unbroadcast, accumulation into .grad
    api.py         torch's API on the engine: grad(), backward()
    functional.py  torch.autograd.functional on grad(): vjp, jacobian, jvp

Imports point down this list only. Besides the public names in `__all__`, the package
gives the rest of handgrad its internal helpers (accumulate, describe, link_aliases, ...),
hence the `noqa: F401` on the imports. What this package leaves out: the Tensor class
(handgrad/_tensor.py) and the ops (handgrad/ops/).
"""

from handgrad.autograd import functional  # noqa: F401
from handgrad.autograd.api import backward, backward_inputs, grad  # noqa: F401
from handgrad.autograd.custom_function import once_differentiable
from handgrad.autograd.engine import accumulate, run_backward, unbroadcast  # noqa: F401
from handgrad.autograd.function import (  # noqa: F401
    Function,
    HandgradError,
    TensorBase,
    describe,
    link_aliases,
    live_aliases,
    op_name,
    unlink_aliases,
)
from handgrad.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from handgrad.autograd.hooks import RemovableHandle, register_hook, tensor_hooks  # noqa: F401

__all__ = [
    "Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "unbroadcast", "backward", "grad", "HandgradError", "RemovableHandle",
    "once_differentiable",
]
