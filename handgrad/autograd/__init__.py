"""The autograd core, one job per module (read them in this order):

    grad_mode.py   whether operations are recorded: no_grad, enable_grad, set_grad_enabled
                   (per thread; torch's no_grad / inference_mode count too)
    function.py    Function (the op and its graph node: forward, backward, save_for_backward,
                   needs_input_grad, apply), TensorBase (what the core knows of a tensor),
                   HandgradError, alias groups for in-place checks
    hooks.py       tensor hooks, retain_grad's bookkeeping, RemovableHandle
    engine.py      the backward engine: one iterative pass, the checks of what each
                   backward returns, unbroadcast, accumulation into .grad
    api.py         torch's API on the engine: grad(), backward()

Imports point down this list only. What this package leaves out: the Tensor class
(handgrad/_tensor.py) and the ops (handgrad/ops/).
"""

from handgrad.autograd.api import backward, backward_inputs, grad
from handgrad.autograd.engine import accumulate, run_backward, unbroadcast
from handgrad.autograd.function import (
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
from handgrad.autograd.hooks import RemovableHandle, register_hook, tensor_hooks

__all__ = [
    "Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "unbroadcast", "backward", "grad", "HandgradError", "RemovableHandle",
]

# Names used across the package (not re-exported as handgrad.<name>).
_internal = (accumulate, backward_inputs, describe, link_aliases, live_aliases, op_name,
             register_hook, run_backward, tensor_hooks, unlink_aliases, TensorBase)
