"""Where handgrad meets torch: torch functions called with handgrad Tensors, and the
small runtime switches torch users reach for (threads, generators, inference mode).

`torch_function` is handgrad.Tensor's `__torch_function__` (torch's protocol for
tensor-like types): when a torch function receives a handgrad Tensor (`torch.cat([a,
b])`, `torch.clamp(x, 0)`, `torch.nn.functional.relu(x)`, `torch_tensor + x`), torch
hands the call here. This is dispatch, not differentiation; no torch autograd runs:

1. handgrad's own differentiable op runs when handgrad has one by that name: for
   `torch.nn.functional.X`, `handgrad.nn.functional.X`; for `torch.X`, the function
   `handgrad.X`; for a `torch.Tensor.X` method, the handgrad Tensor method `X`. torch
   tensors among the arguments join in as constants (one that requires grad is refused:
   its gradient would be lost).
2. Anything else runs torch on the raw data, without a graph, and gives handgrad Tensors
   back (torch tensors that went in as torch tensors come back as they are, so
   `torch_tensor.add_(x)` returns `torch_tensor`). When grad mode is on and an input
   requires grad, it is refused with an error naming the function, since its gradient
   would be silently lost; `x.detach()` says no gradient should flow.
3. `torch.autograd.grad` / `torch.autograd.backward` with handgrad tensors (torch
   checks its outputs and inputs for __torch_function__ before running its engine) run
   `handgrad.autograd.grad` / `handgrad.autograd.backward` with the same arguments
   (grad_outputs / grad_tensors, retain_graph, allow_unused, materialize_grads,
   inputs=); torch tensors among them (a grad_outputs entry) join as constants.
   create_graph=True and is_grads_batched=True are refused there, by name. Any other
   torch.autograd function that dispatches here is refused, pointing at
   handgrad.autograd (torch.autograd.functional.* does not dispatch: it raises its own
   TypeError; handgrad.autograd.functional has vjp, jacobian and jvp).

The torch callables are recognised by name (`func.__module__` and `func.__name__`),
never by importing them: the package may not touch torch.nn or torch.autograd
(ARCHITECTURE.md section 1, tests/project/test_no_torch_nn.py), and a module string
compared with "torch.nn.functional" only finds handgrad's own function of that name.

Left out: `torch.nn.utils.clip_grad_norm_` (also clip_grad_value_, get_total_norm and
clip_grads_with_norm_) cannot be reached this way, checked with torch 2.13: it never
asks for __torch_function__, and the first thing it does with the gradients, before any
torch function that would dispatch here (torch._foreach_norm, linalg.vector_norm,
_foreach_mul_), is to group them by device and dtype with a C helper
(torch._C._group_tensors_by_device_and_dtype) that accepts torch tensors only: it raises
torch's own TypeError ("incompatible function arguments"), which handgrad cannot reword
without patching torch. Worse, given one handgrad tensor rather than a list, it iterates
over the tensor's elements, finds no .grad on them and returns 0 without clipping. Use
`handgrad.nn.utils.clip_grad_norm_` (and clip_grad_value_), which take torch's arguments
and give its results (tests/tensor/test_interop.py). Also left out: torch's
`TorchFunctionMode`s, and `out=` into a handgrad Tensor through a handgrad op (such calls
take route 2).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading

import torch

from handgrad.autograd import is_grad_enabled, no_grad
from handgrad.autograd.grad_mode import decorate_with

__all__ = ["Generator", "set_num_threads", "get_num_threads", "inference_mode",
           "is_inference_mode_enabled"]

Generator = torch.Generator  # handgrad draws every random number through torch's generators


def set_num_threads(n: int) -> None:
    """The number of threads torch's CPU kernels use (torch.set_num_threads). Small
    models often run faster with few threads (1 to 4): the work per op is too small to
    share, and the threads' start-up costs more than it saves."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expects a positive integer, got {n!r}")
    torch.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads torch's CPU kernels use (torch.get_num_threads)."""
    return torch.get_num_threads()


# ---------------------------------------------------------------- inference mode
class _InferenceState(threading.local):
    depth = 0


_inference = _InferenceState()


class inference_mode(no_grad):
    """`with handgrad.inference_mode():` or `@handgrad.inference_mode()`: handgrad's
    no_grad under torch's name (nothing is recorded), as a context manager and a
    decorator; `inference_mode(False)` changes nothing, as in torch.

    Unlike torch's, the tensors made inside are ordinary tensors (torch's inference
    tensors refuse later in-place updates, which optimizers and running statistics
    need); handgrad gains nothing from them, since it keeps no version counters of its
    own beyond torch's."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):  # bare @inference_mode
            return cls()(mode)
        return object.__new__(cls)

    def __init__(self, mode: bool = True):
        super().__init__()
        self._enabled = bool(mode)

    def __enter__(self):
        if self._enabled:
            _inference.depth += 1
            return super().__enter__()
        return self

    def __exit__(self, *exc):
        if self._enabled:
            _inference.depth -= 1
            return super().__exit__(*exc)
        return False

    def __call__(self, fn):
        """Decorate `fn`: the mode is set around each call (for a generator function,
        around each of its steps, as torch does)."""
        enabled = self._enabled
        return decorate_with(lambda: inference_mode(enabled), fn)


def is_inference_mode_enabled() -> bool:
    """True inside handgrad.inference_mode() (or torch's) in this thread."""
    return _inference.depth > 0 or torch.is_inference_mode_enabled()


# ---------------------------------------------------------------- __torch_function__
def _tensor_type():
    from handgrad._tensor import Tensor
    return Tensor


def _describe(func) -> str:
    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__name__", repr(func))
    if module.startswith("torch._C._nn") or module == "torch.nn.functional":
        return f"torch.nn.functional.{name}"
    if module == "torch._C._linalg":
        return f"torch.linalg.{name.removeprefix('linalg_')}"
    if getattr(torch.Tensor, name, None) is func:
        return f"torch.Tensor.{name}"
    return f"{module or 'torch'}.{name}"


def _handgrad_op(func, args):
    """handgrad's callable of the same meaning as `func`, or None."""
    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__name__", None)
    if not isinstance(name, str):
        return None
    Tensor = _tensor_type()
    if module == "torch.nn.functional" or module.startswith("torch._C._nn"):
        functional = importlib.import_module("handgrad.nn.functional")
        return getattr(functional, name, None) if name in functional.__all__ else None
    if getattr(torch.Tensor, name, None) is func:  # a torch.Tensor method
        method = getattr(Tensor, name, None)
        if method is None or name.startswith("__") or name == "__torch_function__":
            return None
        if name.endswith("_") and args and not isinstance(args[0], Tensor):
            return None  # torch_tensor.add_(x): torch's own tensor changes, not a copy
        return method
    if module == "torch._C._linalg" and name.startswith("linalg_"):  # torch.linalg.X
        linalg = importlib.import_module("handgrad.linalg")
        name = name[len("linalg_"):]
        return getattr(linalg, name, None) if name in linalg.__all__ else None
    if module in ("torch", "torch.functional"):  # torch.functional: einsum, norm, ...
        handgrad = importlib.import_module("handgrad")
        if name in _CONVERSIONS or name in handgrad._SUBMODULES:
            return None
        try:
            return getattr(handgrad, name)
        except AttributeError:
            method = getattr(Tensor, name, None)  # torch.allclose(a, b) is a.allclose(b)
            if method is not None and args and isinstance(args[0], Tensor):
                return method
    return None


# Functions that make a tensor from data: handgrad's factories of these names read
# different arguments, so torch's own run on the raw data.
_CONVERSIONS = frozenset({"tensor", "as_tensor", "asarray", "from_numpy"})


def _walk(value, visit):
    """Apply `visit` to every leaf of nested tuples, lists and dicts (return_types too)."""
    if isinstance(value, list):
        return [_walk(v, visit) for v in value]
    if isinstance(value, tuple):
        items = [_walk(v, visit) for v in value]
        if type(value) is tuple:
            return tuple(items)
        if hasattr(value, "_fields"):  # a namedtuple
            return type(value)(*items)
        return type(value)(items)  # torch.return_types.max, ...
    if isinstance(value, dict):
        return {k: _walk(v, visit) for k, v in value.items()}
    return visit(value)


def _leaves(value):
    out = []
    _walk(value, lambda v: out.append(v))
    return out


def _argument(i: int, args, kwargs) -> str:
    return f"argument {i}" if i < len(args) else f"argument {list(kwargs)[i - len(args)]}="


def _refuse_torch_grad(what: str, args, kwargs) -> None:
    for i, value in enumerate((*args, *kwargs.values())):
        for leaf in _leaves(value):
            if isinstance(leaf, torch.Tensor) and leaf.requires_grad:
                where = _argument(i, args, kwargs)
                raise RuntimeError(
                    f"{what}: {where} is a torch tensor that requires grad (shape "
                    f"{tuple(leaf.shape)}); handgrad computes no torch gradients, so it "
                    "would be silently lost. Make it a handgrad tensor "
                    "(handgrad.tensor(t.detach(), requires_grad=True)), or pass t.detach().")


def torch_function(func, types, args=(), kwargs=None):
    """handgrad.Tensor.__torch_function__: see the module docstring."""
    kwargs = kwargs or {}
    what = _describe(func)
    module = getattr(func, "__module__", None) or ""
    if module.startswith("torch.autograd") and (
            module != "torch.autograd" or func.__name__ not in ("grad", "backward")):
        raise RuntimeError(
            f"{what}: torch's autograd cannot differentiate handgrad tensors (handgrad "
            "computes every gradient itself). Use handgrad.autograd.grad(outputs, inputs) "
            "or loss.backward() (handgrad.autograd.backward).")
    Tensor = _tensor_type()
    if torch.is_grad_enabled():  # under torch.no_grad() torch records nothing to lose
        _refuse_torch_grad(what, args, kwargs)
    if module == "torch.autograd":  # torch.autograd.grad / backward: handgrad's own
        def constant(v):
            return Tensor._make(v, False, None) if isinstance(v, torch.Tensor) else v

        autograd = importlib.import_module("handgrad.autograd")
        return getattr(autograd, func.__name__)(*_walk(args, constant),
                                                **_walk(kwargs, constant))
    if "out" in kwargs and kwargs["out"] is None:  # torch.norm passes out=None along
        kwargs = {k: v for k, v in kwargs.items() if k != "out"}
    op = None if "out" in kwargs else _handgrad_op(func, args)
    if op is not None:
        wrapped: dict[int, torch.Tensor] = {}

        def to_handgrad(v):
            if isinstance(v, torch.Tensor):
                t = Tensor._make(v.detach() if v.requires_grad else v, False, None)
                wrapped[id(t)] = v
                return t
            return v

        kwargs = _keywords_for(op, kwargs)
        result = op(*_walk(args, to_handgrad), **_walk(kwargs, to_handgrad))
        return _walk(result, lambda v: wrapped.get(id(v), v))
    needing = _needing_grad(args, kwargs) if is_grad_enabled() else None
    if needing is not None and getattr(func, "__name__", "").endswith("_"):
        raise _lost_gradient(what, needing, "changes its input in place, unrecorded")
    given: dict[int, Tensor] = {}

    def to_torch(v):
        if isinstance(v, Tensor):
            given[id(v.data)] = v
            return v.data
        return v

    raw_args, raw_kwargs = _walk(args, to_torch), _walk(kwargs, to_torch)
    result = func(*raw_args, **raw_kwargs)
    passed_torch = {id(v) for v in _leaves((args, kwargs)) if isinstance(v, torch.Tensor)}

    def to_result(v):
        if isinstance(v, torch.Tensor):
            if id(v) in given:  # an in-place op on a handgrad tensor returns that tensor
                return given[id(v)]
            if id(v) in passed_torch:
                return v
            return Tensor._make(v, False, None)
        return v

    result = _walk(result, to_result)
    if needing is not None and any(isinstance(v, Tensor) and v.dtype.is_floating_point
                                   for v in _leaves(result)):
        raise _lost_gradient(what, needing, "has no differentiable op in handgrad")
    return result


@functools.lru_cache(maxsize=512)
def _parameters(op) -> frozenset | None:
    """The keyword names `op` takes (None when it takes any)."""
    try:
        parameters = inspect.signature(op).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters)


def _keywords_for(op, kwargs: dict) -> dict:
    """torch passes its defaults along (`_stacklevel=3`, `dtype=None`, `inplace=False`):
    those handgrad's op does not take are dropped when they are private or say 'not
    used' (None, False); any other one is kept, and handgrad's op refuses it by name."""
    known = _parameters(op)
    if known is None:
        return kwargs
    return {k: v for k, v in kwargs.items()
            if k in known or not (k.startswith("_") or v is None or v is False)}


def _needing_grad(args, kwargs) -> str | None:
    """'argument i' / 'argument name=' of the first input that requires grad, or None."""
    Tensor = _tensor_type()
    for i, value in enumerate((*args, *kwargs.values())):
        if any(isinstance(leaf, Tensor) and leaf.requires_grad for leaf in _leaves(value)):
            return _argument(i, args, kwargs)
    return None


def _lost_gradient(what: str, where: str, why: str) -> RuntimeError:
    return RuntimeError(
        f"{what}: {why}, and {where} requires grad, so its gradient would be silently lost. "
        "Use the handgrad op instead (handgrad.X, x.X(), handgrad.nn.functional.X), run it "
        "under `with handgrad.no_grad():`, or pass x.detach() if no gradient should flow. "
        "Results without a gradient (integers, bools) are allowed.")
