"""Grad mode: whether new operations are recorded for backward, per thread, as in torch.

Recording happens when handgrad's grad mode is on in the calling thread *and* torch's
is too, so that `torch.no_grad()` and `torch.inference_mode()`, written around handgrad
code from a PyTorch habit, stop recording as they would in torch. (handgrad only reads
torch's flag; it never computes with torch's autograd.) Each thread starts with grad
mode on, and a `no_grad` block in one thread changes nothing in another.

`no_grad`, `enable_grad` and `set_grad_enabled` work as torch's: context managers and
decorators (a generator function gets the mode around each of its steps).

What this module leaves out: everything about the graph itself (function.py, engine.py).
"""

from __future__ import annotations

import functools
import inspect
import threading

import torch

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]


class _ThreadState(threading.local):
    """handgrad's grad mode of the current thread (a class default: on in every thread)."""

    enabled = True


state = _ThreadState()
_torch_grad_enabled = torch.is_grad_enabled  # torch's per-thread flag, read only


def is_grad_enabled() -> bool:
    """True when new operations are recorded for backward in this thread."""
    return state.enabled and _torch_grad_enabled()


class _GradMode:
    """Context manager and decorator that sets grad mode to `mode` (restores on exit).

    Used as a decorator, grad mode is set around every call of the function (and, for
    a generator function, around every step of the generator, as torch does). The
    previous modes are kept per thread, so one object may be entered by two threads."""

    mode = True

    def __init__(self):
        self._previous = threading.local()

    def _stack(self) -> list:
        stack = getattr(self._previous, "stack", None)
        if stack is None:
            stack = self._previous.stack = []
        return stack

    def __enter__(self):
        self._stack().append(state.enabled)
        state.enabled = self.mode
        return self

    def __exit__(self, *exc):
        state.enabled = self._stack().pop()
        return False

    def __call__(self, fn):
        mode = self.mode
        return decorate_with(lambda: _ModeOnly(mode), fn)


def decorate_with(context, fn):
    """`fn` with a fresh `context()` (a context manager) around each call; for a
    generator function around each of its steps, as torch's grad-mode decorators do
    (the mode holds inside the generator, not in the caller's code between steps)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            with context():
                steps = fn(*args, **kwargs)
            request = None
            while True:
                with context():
                    try:
                        response = steps.send(request)
                    except StopIteration as stop:
                        return stop.value
                request = yield response

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with context():
            return fn(*args, **kwargs)

    return wrapper


class _ModeOnly(_GradMode):
    def __init__(self, mode: bool):
        super().__init__()
        self.mode = mode


class _NoArgumentMode(_GradMode):
    """no_grad / enable_grad: `with no_grad():`, `@no_grad()` and bare `@no_grad`."""

    def __new__(cls, fn=None):
        if fn is None:
            return super().__new__(cls)
        if not callable(fn):
            raise TypeError(f"{cls.__name__}() takes no arguments (got {fn!r}); use it as "
                            f"`with {cls.__name__}():` or as a decorator")
        return cls()(fn)

    def __init__(self, fn=None):
        super().__init__()


class no_grad(_NoArgumentMode):
    """`with handgrad.no_grad():`, `@handgrad.no_grad()` or `@handgrad.no_grad`: record
    nothing for backward (in this thread)."""

    mode = False


class enable_grad(_NoArgumentMode):
    """Turn grad mode back on inside a `no_grad` block (context manager or decorator).
    Inside torch's own no_grad() nothing is recorded all the same: both must be on."""

    mode = True


class set_grad_enabled(_GradMode):
    """Set grad mode to `mode`, as torch: at once when called (`set_grad_enabled(False)`
    as a statement works), and restored on leaving a `with` block; as a decorator it
    sets the mode around each call only."""

    def __init__(self, mode: bool):
        super().__init__()
        self.mode = bool(mode)
        self._before = state.enabled
        state.enabled = self.mode

    def __enter__(self):
        return self  # the mode was set by __init__

    def __exit__(self, *exc):
        state.enabled = self._before
        return False

    def __call__(self, fn):
        state.enabled = self._before  # decorating changes nothing outside the calls
        return super().__call__(fn)
