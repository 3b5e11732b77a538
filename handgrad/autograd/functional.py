"""torch.autograd.functional on handgrad's engine: `vjp`, `jacobian` and `jvp` of a
Python function of Tensors, with torch's arguments, defaults and nesting of results.

Each function takes `func` and `inputs` (a Tensor or a tuple of Tensors); it calls `func`
on fresh leaves that share the inputs' data and require grad, and gives results of the
shapes torch gives (a Tensor where torch gives a Tensor, a tuple where it gives a tuple).

* vjp(func, inputs, v): (func(inputs), v^T J), one backward pass.
* jacobian(func, inputs): J, by reverse mode: one backward pass per element of each
  output (grad() with a one-hot gradient); entry [i][j] has shape
  outputs[i].shape + inputs[j].shape. `vectorize=True` gives the same values by the same
  loop (handgrad has no vmap), and so does strategy="forward-mode" (which torch accepts
  only with vectorize=True, as here).
* jvp(func, inputs, v): (func(inputs), J v). handgrad has no forward-mode AD, so this is
  computed from the full Jacobian (numel(outputs) backward passes): exact, but slower
  than torch's for large outputs.
* strict=True: an output that does not depend on an input is an error (RuntimeError, as
  in torch) instead of a zero block.

What this module leaves out: `hessian`, `hvp` and `vhp` raise NotImplementedError: they
need the gradient of a gradient, and handgrad's backward functions compute with raw torch
tensors and record no graph (no create_graph), so a gradient cannot be differentiated
again. For the same reason `create_graph=True` is refused everywhere.
"""

from __future__ import annotations

import torch

from handgrad.autograd.api import grad
from handgrad.autograd.function import TensorBase
from handgrad.autograd.grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]

_NO_SECOND_ORDER = (
    "second-order gradients are not supported: handgrad's backward functions compute "
    "with raw torch tensors and record no graph (there is no create_graph), so a "
    "gradient cannot be differentiated again. Write the gradient as handgrad ops and use "
    "jacobian() on it, or use torch.autograd.functional.{} on torch tensors.")


def _no_create_graph(who: str, create_graph: bool) -> None:
    if create_graph:
        raise NotImplementedError(
            f"{who}: create_graph=True is not supported; {_NO_SECOND_ORDER.format(who)}")


def _as_tuple(who: str, what: str, value) -> tuple[bool, tuple]:
    """(was it a tuple, the tuple), with torch's TypeError for anything but Tensors."""
    is_tuple = isinstance(value, tuple | list)
    values = tuple(value) if is_tuple else (value,)
    for i, v in enumerate(values):
        if not isinstance(v, TensorBase):
            raise TypeError(
                f"{who}: The {what} must be either a Tensor or a tuple of Tensors but the "
                f"value at index {i} has type {type(v)}. Pass handgrad Tensors "
                "(handgrad.tensor(t) for a torch tensor).")
    return is_tuple, values


def _shaped(is_tuple: bool, values: tuple):
    return values if is_tuple else values[0]


def _leaves(inputs: tuple) -> tuple:
    """Fresh leaves sharing the inputs' data, that require grad (torch's preprocessing)."""
    return tuple(t._result_type._make(t.data, True, None) for t in inputs)


def _call(who: str, func, inputs: tuple, is_inputs_tuple: bool) -> tuple[bool, tuple]:
    with enable_grad():
        outputs = func(*inputs) if is_inputs_tuple else func(inputs[0])
    return _as_tuple(who, "outputs of the user-provided function", outputs)


def _detached(outputs: tuple) -> tuple:
    return tuple(o._result_type._make(o.data, False, None) for o in outputs)


def _independent(i: int, j: int, who: str):
    return RuntimeError(
        f"{who}: Output {i} of the user-provided function is independent of input {j}. "
        "This is not allowed in strict mode (strict=True); pass strict=False to get "
        "zeros there.")


def _gradients(who: str, outputs: tuple, inputs: tuple, grad_outputs: list,
               strict: bool, output_index: int | None = None) -> list:
    """d(sum_i <outputs[i], grad_outputs[i]>)/d inputs[j] as raw tensors (zeros where
    none flows; strict mode refuses that)."""
    used = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    found = [None] * len(inputs)
    if used:
        found = list(grad([o for o, _ in used], inputs, [g for _, g in used],
                          retain_graph=True, allow_unused=True))
    results = []
    for j, (t, g) in enumerate(zip(inputs, found)):
        if g is None:
            if strict:
                raise _independent(0 if output_index is None else output_index, j, who)
            results.append(torch.zeros_like(t.data))
        else:
            results.append(g.data)
    return results


def _vectors(who: str, v, like: tuple, is_tuple: bool, name: str) -> list:
    """The raw tensors of `v`, one per tensor of `like`, of their shapes."""
    if v is None:
        if len(like) != 1 or like[0].data.numel() != 1:
            raise RuntimeError(
                f"{who}: The vector v can only be None if the {name} is a single Tensor "
                "with a single element; pass v of the same shape.")
        return [torch.ones_like(like[0].data)]
    v_is_tuple, vs = _as_tuple(who, "v", v)
    if v_is_tuple != is_tuple and not (len(vs) == 1 and len(like) == 1):
        raise RuntimeError(f"{who}: v must be a tuple exactly when the {name} is one.")
    if len(vs) != len(like):
        raise RuntimeError(f"{who}: v has {len(vs)} Tensors but the {name} has "
                           f"{len(like)}; pass one vector per {name[:-1] or name}.")
    for i, (vector, t) in enumerate(zip(vs, like)):
        if vector.shape != t.shape:
            raise RuntimeError(
                f"{who}: Mismatch in shape: v[{i}] has a shape of {tuple(vector.shape)} "
                f"and the {name}[{i}] has a shape of {tuple(t.shape)}; they must match.")
    return [vector.data.to(t.data.dtype) for vector, t in zip(vs, like)]


# --------------------------------------------------------------------------- vjp
def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), v^T J): the gradient of <func(inputs), v> with respect to each
    input, by one backward pass (torch.autograd.functional.vjp)."""
    who = "vjp"
    _no_create_graph(who, create_graph)
    is_inputs_tuple, inputs = _as_tuple(who, "inputs given to vjp", inputs)
    inputs = _leaves(inputs)
    is_outputs_tuple, outputs = _call(who, func, inputs, is_inputs_tuple)
    vectors = _vectors(who, v, outputs, is_outputs_tuple, "outputs")
    found = _gradients(who, outputs, inputs, vectors, strict)
    make = inputs[0]._result_type._make
    return (_shaped(is_outputs_tuple, _detached(outputs)),
            _shaped(is_inputs_tuple, tuple(make(g, False, None) for g in found)))


# ----------------------------------------------------------------------- jacobian
def _jacobian_blocks(who: str, outputs: tuple, inputs: tuple, strict: bool) -> list:
    """blocks[i][j]: the raw Jacobian of outputs[i] w.r.t. inputs[j], shaped
    outputs[i].shape + inputs[j].shape, one backward pass per element of outputs[i]."""
    blocks = []
    for i, out in enumerate(outputs):
        n = out.data.numel()
        rows = [[] for _ in inputs]
        if out.requires_grad:
            flat = torch.zeros(n, dtype=out.data.dtype, device=out.data.device)
            for k in range(n):
                flat.zero_()
                flat[k] = 1
                found = grad(out, inputs, flat.view(out.shape).clone(), retain_graph=True,
                             allow_unused=True)
                for j, g in enumerate(found):
                    rows[j].append(g)
        row_blocks = []
        for j, t in enumerate(inputs):
            if not out.requires_grad or all(g is None for g in rows[j]):
                if strict:
                    raise _independent(i, j, who)
                block = torch.zeros(n, *t.shape, dtype=t.data.dtype, device=t.data.device)
            else:
                block = torch.stack([torch.zeros_like(t.data) if g is None else g.data
                                     for g in rows[j]]) if n else \
                    torch.zeros(0, *t.shape, dtype=t.data.dtype, device=t.data.device)
            row_blocks.append(block.reshape(*out.shape, *t.shape))
        blocks.append(row_blocks)
    return blocks


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of `func` at `inputs` (torch.autograd.functional.jacobian): a Tensor
    of shape output.shape + input.shape; a tuple over the inputs when `inputs` is a
    tuple; a tuple over the outputs (of those) when `func` returns a tuple."""
    who = "jacobian"
    _no_create_graph(who, create_graph)
    if strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError(f'{who}: Expected strategy to be either "forward-mode" or '
                         f'"reverse-mode", but got {strategy!r}.')
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError(f"{who}: Computing Jacobian using forward-AD requires "
                                  "vectorize=True (as in torch).")
    if strict and vectorize:
        raise RuntimeError(f"{who}: strict=True and vectorize=True are not supported "
                           "together; pass one of them only.")
    is_inputs_tuple, inputs = _as_tuple(who, "inputs given to jacobian", inputs)
    inputs = _leaves(inputs)
    is_outputs_tuple, outputs = _call(who, func, inputs, is_inputs_tuple)
    make = inputs[0]._result_type._make
    blocks = [tuple(make(b, False, None) for b in row)
              for row in _jacobian_blocks(who, outputs, inputs, strict)]
    rows = tuple(_shaped(is_inputs_tuple, row) for row in blocks)
    return _shaped(is_outputs_tuple, rows)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), J v) (torch.autograd.functional.jvp), from the full Jacobian:
    handgrad has no forward-mode AD (see the module docstring)."""
    who = "jvp"
    _no_create_graph(who, create_graph)
    is_inputs_tuple, inputs = _as_tuple(who, "inputs given to jvp", inputs)
    vectors = _vectors(who, v, inputs, is_inputs_tuple, "inputs")
    inputs = _leaves(inputs)
    is_outputs_tuple, outputs = _call(who, func, inputs, is_inputs_tuple)
    blocks = _jacobian_blocks(who, outputs, inputs, strict)
    make = inputs[0]._result_type._make
    products = []
    for out, row in zip(outputs, blocks):
        total = torch.zeros_like(out.data)
        for block, vector in zip(row, vectors):
            flat = block.reshape(out.data.numel(), vector.numel())
            total = total + (flat @ vector.reshape(-1).to(flat.dtype)).reshape(out.shape)
        products.append(make(total, False, None))
    return (_shaped(is_outputs_tuple, _detached(outputs)),
            _shaped(is_outputs_tuple, tuple(products)))


# ------------------------------------------------------------- second order: refused
def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """Not supported: see the module docstring."""
    raise NotImplementedError(f"hessian: {_NO_SECOND_ORDER.format('hessian')}")


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """Not supported: see the module docstring."""
    raise NotImplementedError(f"hvp: {_NO_SECOND_ORDER.format('hvp')}")


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """Not supported: see the module docstring."""
    raise NotImplementedError(f"vhp: {_NO_SECOND_ORDER.format('vhp')}")
