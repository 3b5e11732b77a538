"""gather_gradients: an identity on a group of tensors whose backward hands the group's
gradients, all at once, to a function that may replace them. Module backward hooks
(handgrad/nn/hooks.py) are built on it.

The graph it records, for tensors x_1 ... x_n:

    x_1 ... x_n  ->  Gate  ->  token  ->  Slot_1 -> y_1,  ...,  Slot_n -> y_n

y_i is x_i (same values, same storage), but its only graph parent is the token, which
every slot shares. Backward reaches each Slot_i first (it stores the gradient of y_i and
passes a zero back to the token) and the Gate only after all of them, because the Gate is
an input of every slot: the engine runs a node only when all of its consumers are done.
The Gate then calls `on_backward` with the n gradients and returns what it gives back as
the gradients of x_1 ... x_n.

Left out: gradients of gradients (handgrad has no double backward).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from handgrad.autograd import Function, link_aliases


class _Gathered:
    """What the slots and the gate of one gather_gradients call share."""

    __slots__ = ("grads", "on_backward", "shapes")

    def __init__(self, shapes: list, on_backward: Callable):
        self.shapes = shapes
        self.grads: list = [None] * len(shapes)
        self.on_backward = on_backward


class BackwardHookGate(Function):
    """token = 0 (a scalar that stands for the whole group x_1 ... x_n);
    dx_i = on_backward(g_1, ..., g_n)[i], where g_i is the gradient the slot of x_i
    collected (None where none reached it). The token's own gradient is ignored."""

    name = "backward_hook_gate"

    @staticmethod
    def forward(ctx, gathered, *tensors):
        ctx.save_for_backward(gathered)
        return torch.zeros(())

    @staticmethod
    def backward(ctx, g):
        (gathered,) = ctx.saved_tensors
        grads, gathered.grads = tuple(gathered.grads), [None] * len(gathered.grads)
        return (None, *gathered.on_backward(grads))


class BackwardHookSlot(Function):
    """y = x (x arrives as a constant: the slot's graph parent is the gate's token);
    backward stores g = dL/dy for the gate and gives the token dtoken = 0."""

    name = "backward_hook_slot"

    @staticmethod
    def forward(ctx, token, gathered, index, x):
        ctx.save_for_backward(gathered, index)
        return x

    @staticmethod
    def backward(ctx, g):
        gathered, index = ctx.saved_tensors
        gathered.grads[index] = g
        return torch.zeros(()), None, None, None


def gather_gradients(tensors: Sequence, on_backward: Callable[[tuple], Sequence]) -> list:
    """Return tensors y_i equal to `tensors` x_i (sharing their storage). When backward
    reaches them, `on_backward((g_1, ..., g_n))` is called once with the raw torch
    gradients of y_1 ... y_n (None where none arrived) and must return n gradients
    (raw torch tensors or None), used as the gradients of x_1 ... x_n.

    Every x_i must require grad, and grad mode must be on (otherwise there is nothing to
    record: call it only then)."""
    gathered = _Gathered([t.shape for t in tensors], on_backward)
    token = BackwardHookGate.apply(gathered, *tensors)
    out = []
    for index, x in enumerate(tensors):
        y = BackwardHookSlot.apply(token, gathered, index, x.data)
        link_aliases(x, y)  # y shares x's storage: in-place changes to either are refused
        out.append(y)
    return out
