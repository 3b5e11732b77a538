"""torch's autograd API on the engine: `backward(tensors, grad_tensors, inputs=)` and
`grad(outputs, inputs)`, with torch's arguments, defaults and checks of what they are given.

What this module leaves out: the engine itself (engine.py); higher-order gradients
(`create_graph=True` is refused: backward functions compute with raw torch tensors and
record nothing), `is_grads_batched`, forward-mode AD.
"""

from __future__ import annotations

import torch

from handgrad.autograd.engine import run_backward
from handgrad.autograd.function import TensorBase

__all__ = ["backward", "grad"]


# --------------------------------------------------------------------------- grad API
_NO_CREATE_GRAPH = (
    "create_graph=True (higher-order gradients) is not supported: handgrad's backward "
    "functions compute with raw torch tensors and record no graph of their own. Write "
    "the first derivative as handgrad ops and differentiate that instead.")


def _as_tuple(tensors) -> tuple:
    if tensors is None:
        return ()
    if isinstance(tensors, TensorBase | torch.Tensor):
        return (tensors,)
    return tuple(tensors)


def _output_gradients(who: str, outputs: tuple, grad_outputs) -> list:
    """One raw gradient per output: the given one, or 1 for a scalar output (as torch)."""
    given = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    if len(given) != len(outputs):
        raise RuntimeError(f"{who}: got {len(outputs)} tensors and {len(given)} gradients; "
                           "pass one gradient (or None) per output.")
    gradients = []
    for i, (out, gradient) in enumerate(zip(outputs, given)):
        if not isinstance(out, TensorBase):
            raise TypeError(f"{who}: outputs must be handgrad Tensors, element {i} is "
                            f"{type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(
                f"{who}: element {i} of tensors does not require grad and does not have a "
                "grad_fn. Create the inputs with requires_grad=True (and not under "
                "no_grad()) first.")
        if gradient is None:
            if out.data.numel() != 1:
                raise RuntimeError(
                    f"{who}: grad can be implicitly created only for scalar outputs, but "
                    f"output {i} has shape {tuple(out.shape)}. Pass a gradient of that "
                    "shape, or reduce the output first (e.g. .sum()).")
            gradient = torch.ones_like(out.data)
        else:
            if isinstance(gradient, TensorBase):
                gradient = gradient.data
            elif not isinstance(gradient, torch.Tensor):
                gradient = torch.as_tensor(gradient, dtype=out.dtype, device=out.device)
            if gradient.dtype != out.data.dtype:  # torch casts it to the output's dtype
                gradient = gradient.to(out.data.dtype)
            if gradient.shape != out.data.shape:
                raise RuntimeError(
                    f"{who}: Mismatch in shape: grad_output[{i}] has a shape of "
                    f"{tuple(gradient.shape)} and output[{i}] has a shape of "
                    f"{tuple(out.shape)}; they must match.")
        gradients.append(gradient)
    return gradients


def _input_tensors(who: str, inputs) -> tuple:
    inputs = _as_tuple(inputs)
    if not inputs:
        raise RuntimeError(f"{who}: `inputs` argument to `{who}()` cannot be empty.")
    for i, t in enumerate(inputs):
        if not isinstance(t, TensorBase):
            raise TypeError(f"{who}: all inputs have to be handgrad Tensors, but input {i} "
                            f"is {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError(
                f"{who}: input {i} (shape {tuple(t.shape)}) does not require grad, so it "
                "has no gradient; create it with requires_grad=True.")
    return inputs


def backward_inputs(inputs) -> tuple:
    """Check `inputs` of backward(); a non-leaf among them keeps its `.grad` from now on
    (it is made to retain_grad(), as torch does)."""
    inputs = _input_tensors("backward", inputs)
    for t in inputs:
        if t._ctx is not None:
            t.retain_grad()
    return inputs


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             inputs=None) -> None:
    """Accumulate the gradients of `tensors` (summed, each weighted by its entry of
    `grad_tensors`; a scalar may leave its entry None) into the `.grad` of the leaves, or
    of `inputs` only when given (PyTorch's autograd.backward)."""
    if create_graph:
        raise RuntimeError(f"backward: {_NO_CREATE_GRAPH}")
    tensors = _as_tuple(tensors)
    gradients = _output_gradients("backward", tensors, grad_tensors)
    if inputs is not None:
        inputs = backward_inputs(inputs)
    run_backward(tensors, gradients, bool(retain_graph), inputs)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False,
         materialize_grads=False) -> tuple:
    """The gradients of `outputs` with respect to each of `inputs`, as a tuple of Tensors
    (PyTorch's autograd.grad). No `.grad` is touched (except that of a non-leaf which called
    retain_grad(), as in torch); `inputs` may be non-leaves; only the part of the graph
    between them and `outputs` runs.

    grad_outputs: d loss / d output for each output (None: 1 for a scalar output).
    retain_graph: keep the saved tensors for another backward (default: create_graph).
    allow_unused: return None for an input the outputs do not depend on (otherwise an
    error); materialize_grads: return zeros there instead. `only_inputs` is ignored, as
    in torch; create_graph and is_grads_batched are not supported."""
    if create_graph:
        raise RuntimeError(f"grad: {_NO_CREATE_GRAPH}")
    if is_grads_batched:
        raise RuntimeError("grad: is_grads_batched=True is not supported; call grad() once "
                           "per row of grad_outputs.")
    if materialize_grads and allow_unused is False:
        raise ValueError("grad: Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    allow_unused = materialize_grads if allow_unused is None else allow_unused
    outputs = _as_tuple(outputs)
    gradients = _output_gradients("grad", outputs, grad_outputs)
    inputs = _input_tensors("grad", inputs)
    retain_graph = create_graph if retain_graph is None else retain_graph
    found = run_backward(outputs, gradients, retain_graph, inputs, capture=True)
    results = []
    for i, (t, gradient) in enumerate(zip(inputs, found)):
        if gradient is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: The differentiated Tensor at index {i} appears to not have been "
                    "used in the graph. Set allow_unused=True if this is the desired "
                    "behavior (its gradient is then None, or zeros with "
                    "materialize_grads=True).")
            results.append(t._result_type._make(torch.zeros_like(t.data), False, None)
                           if materialize_grads else None)
        else:
            results.append(t._result_type._make(gradient, False, None))
    return tuple(results)
