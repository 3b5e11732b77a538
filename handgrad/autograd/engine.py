"""The backward engine: one iterative pass over the graph that serves every way of asking
for gradients (`loss.backward()`, `backward(inputs=)`, `grad()`), with torch's checks of
what each backward hands back.

`run_backward` first plans the pass (`_plan`: an iterative depth-first post-order, so a
100,000-op chain works in linear time; for `inputs`, only the nodes between the roots and
the inputs; a step for each leaf whose total gradient is needed, right after the last
node that uses it), then runs it: each node's backward gets its summed output gradient,
what it returns is checked against the inputs recorded by `Function.apply`
(`_checked_gradient`: the count, the shape — summed down where the input was broadcast,
refused where it cannot have been —, the device, the dtype cast as torch casts it), and
each input gradient goes on to its node or into a leaf's `.grad`. Saved tensors are freed
unless `retain_graph`.

Also here: `unbroadcast` (summing a gradient down to a broadcast input's shape, the one
place it is written) and `accumulate` (leaf.grad += grad, never sharing storage).

What this module leaves out: the torch-style API on top (api.py), hooks (hooks.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd.custom_function import OutputNode
from handgrad.autograd.function import Function
from handgrad.autograd.hooks import hooked_leaves

__all__ = ["run_backward", "unbroadcast", "accumulate"]

_TorchTensor = torch.Tensor

# --------------------------------------------------------------------------- helpers
def unbroadcast(grad: torch.Tensor, shape: torch.Size | tuple) -> torch.Tensor:
    """Sum `grad` down to `shape`, undoing broadcasting.

    Broadcasting prepends size-1 dims and stretches size-1 dims; the gradient of a
    stretched input is the sum over the stretched positions.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(dim=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(dim=stretched, keepdim=True)
    return grad


def _broadcasts_to(shape, target) -> bool:
    """True when an input of `shape` broadcasts to `target` (torch's is_expandable_to)."""
    if len(shape) > len(target):
        return False
    return all(s == t or s == 1 for s, t in zip(reversed(shape), reversed(target)))


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def accumulate(tensor, grad: torch.Tensor, leaf_storages: set) -> None:
    """tensor.grad += grad, without ever letting two .grad tensors share storage. (The
    engine has already made `grad` fit the tensor: shape, dtype, device.)"""
    if tensor._grad is None:
        if _storage(grad) in leaf_storages or not grad.is_contiguous():
            grad = grad.contiguous() if not grad.is_contiguous() else grad.clone()
        leaf_storages.add(_storage(grad))
        tensor._grad = tensor._result_type._make(grad, False, None)
    else:
        tensor._grad.data = tensor._grad.data + grad


# ----------------------------------------------------------- what a backward returns
def _gradient_count(node, grads: tuple) -> tuple:
    """A backward must return one gradient per input (torch allows extra Nones)."""
    name, expected = type(node).__name__, len(node.parents)
    if len(grads) > expected and all(g is None for g in grads[expected:]):
        return grads[:expected]
    raise RuntimeError(
        f"{name}.backward returned an incorrect number of gradients (expected {expected}, "
        f"got {len(grads)}): return one gradient per input of forward, in order, with None "
        "for an input that needs none.")


def _checked_gradient(node, parent, grads: tuple, grad, metadata) -> torch.Tensor:
    """`grad` (what `node`'s backward returned, in `grads`, for `parent`) made to fit its
    input, of `metadata` (shape, dtype, device), as torch's validate_outputs makes it fit;
    or an error naming the Function, the input's index and both shapes / dtypes / devices."""
    name = f"{type(node).__name__}.backward"
    index = next(i for i, (p, g) in enumerate(zip(node.parents, grads))
                 if p is parent and g is grad)
    shape, dtype, device = metadata
    if not isinstance(grad, torch.Tensor):
        raise TypeError(f"{name} returned {type(grad).__name__} as the gradient of input "
                        f"{index}; return a torch.Tensor (computed with raw torch ops) or "
                        "None.")
    if grad.shape != shape:
        if not _broadcasts_to(shape, grad.shape):
            raise RuntimeError(
                f"{name}: invalid gradient at index {index} - got shape "
                f"{tuple(grad.shape)} but the input has shape {tuple(shape)}. Return a "
                "gradient of the input's shape (or of a shape the input was broadcast to, "
                "which is then summed down).")
        grad = unbroadcast(grad, shape)
    if grad.device != device:
        if grad.ndim:  # torch moves only a 0-d gradient (a CPU scalar's) to its input
            raise RuntimeError(
                f"{name}: invalid gradient at index {index} - expected device {device} but "
                f"got {grad.device}; compute the gradient on the input's device.")
        grad = grad.to(device)
    if grad.dtype is not dtype:  # torch casts a gradient to its input's dtype
        if not (grad.is_floating_point() or grad.is_complex()):
            raise RuntimeError(
                f"{name}: invalid gradient at index {index} - expected a floating-point "
                f"gradient of dtype {dtype} but got {grad.dtype}.")
        grad = grad.to(dtype)
    return grad


# --------------------------------------------------------------------------- the plan
class LeafStep:
    """The step of a backward at which a leaf's gradient is complete (summed over all
    its uses; it comes right after the last node that uses the leaf, as in torch). Only
    leaves with hooks and leaves in `inputs` get one: the leaf's hooks see the total
    gradient once, then it goes into `.grad` or, for grad(), into `captured`."""

    __slots__ = ("leaf",)
    parents = ()
    _hooks = True  # marks the step for the loop (a class constant: no reference cycle)

    def __init__(self, leaf):
        self.leaf = leaf

    def finish(self, grad: torch.Tensor, leaf_storages: set, captured) -> None:
        leaf = self.leaf
        if grad.dtype != leaf.data.dtype:
            grad = grad.to(leaf.data.dtype)
        hooks = getattr(leaf, "_hooks", None)
        if hooks is not None and hooks.functions:
            grad = hooks.call(grad, leaf_storages)
        if captured is None:
            accumulate(leaf, grad, leaf_storages)
        else:
            captured[self] = grad


def post_order(stack: list) -> list:
    """Iterative depth-first post-order from the nodes on `stack` (as (node, False)):
    every node comes after the nodes it uses, so reversed, it is a backward order."""
    order, visited = [], set()
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for parent in node.parents:
            if parent is not None and isinstance(parent, Function) and parent not in visited:
                stack.append((parent, False))
    return order


class _Plan:
    """The order of one backward pass and where its gradients go.

    steps: the nodes (and leaf steps) in the order they run; grads: node -> gradient
    summed so far (seeded with the roots'); targets: for `inputs`, node -> the gradient
    captured there; runs: the nodes on a path to an input; leaf_steps: leaf -> LeafStep."""

    def __init__(self, roots, gradients, inputs):
        self.leaf_steps = None
        self.targets = self.runs = None
        if inputs is not None:
            self.leaf_steps = {t: LeafStep(t) for t in inputs if t._ctx is None}
            self.targets = {t._ctx: None for t in inputs if t._ctx is not None}
        elif hooked_leaves:
            hooked = [ref() for ref in list(hooked_leaves.values())]
            self.leaf_steps = {t: LeafStep(t) for t in hooked if t is not None}
        self.early = []  # gradients of roots that are plain leaves: (leaf, gradient)
        order = self._order(roots, gradients)
        if self.targets is not None:
            order = self._between(order)
        self.steps = self._with_leaf_steps(order) if self.leaf_steps else reversed(order)

    def _order(self, roots, gradients) -> list:
        """The roots' gradients, and the nodes in depth-first post-order."""
        self.grads = grads = {}
        stack = []
        for root, gradient in zip(roots, gradients):
            node = root._ctx
            if node is None:  # a leaf: its gradient is the incoming gradient
                node = self.leaf_steps.get(root) if self.leaf_steps else None
                if node is None:
                    self.early.append((root, gradient))
                    continue
            else:
                stack.append((node, False))
            previous = grads.get(node)
            grads[node] = gradient if previous is None else previous + gradient
        return post_order(stack)

    def _between(self, order: list) -> list:
        """Keep the nodes on a path to an input (inputs come first in `order`)."""
        runs, targets, leaf_steps = set(), self.targets, self.leaf_steps
        for node in order:
            for parent in node.parents:
                if parent is not None and (parent in runs or parent in targets
                                           or parent in leaf_steps):
                    runs.add(node)
                    break
        self.runs = runs
        return [node for node in order if node in runs or node in targets]

    def _with_leaf_steps(self, order: list) -> list:
        """Each leaf's step goes right after the last node that uses it."""
        leaf_steps, last_user = self.leaf_steps, {}
        for node in reversed(order):
            for parent in node.parents:
                step = leaf_steps.get(parent) if parent is not None else None
                if step is not None:
                    last_user[step] = node
        after: dict = {}
        for step, node in last_user.items():
            after.setdefault(node, []).append(step)
        steps = [step for step in leaf_steps.values()
                 if step in self.grads and step not in last_user]
        for node in reversed(order):
            steps.append(node)
            steps.extend(after.get(node, ()))
        return steps

    def deliver(self, leaf, grad: torch.Tensor, leaf_storages: set, into_grad: bool) -> None:
        """A gradient reaching a leaf: summed until its step, or straight into .grad."""
        step = self.leaf_steps.get(leaf) if self.leaf_steps else None
        if step is not None:
            previous = self.grads.get(step)
            self.grads[step] = grad if previous is None else previous + grad
        elif into_grad:
            accumulate(leaf, grad, leaf_storages)


def _node_hooks(node, grad: torch.Tensor, leaf_storages: set) -> torch.Tensor:
    """A node's output tensor has hooks or retains its grad: run them, keep the grad."""
    hooks = node._hooks
    if hooks.functions:
        grad = hooks.call(grad, leaf_storages)
    if hooks.retained is not None:
        kept = hooks.retained()
        if kept is not None and kept._ctx is node:
            accumulate(kept, grad, leaf_storages)
    return grad


# --------------------------------------------------------------------------- backward
def run_backward(roots, gradients, retain_graph=False, inputs=None, capture=False):
    """Push `gradients[i]` (d out / d roots[i], raw torch tensors) back through the graph.

    * inputs None: every leaf that requires grad accumulates into `.grad` (and every
      non-leaf that called retain_grad()). This is `loss.backward()`.
    * inputs given: only the nodes between the roots and `inputs` run. capture=False:
      the inputs' `.grad` accumulate (a non-leaf input must already retain_grad).
      capture=True: no leaf `.grad` changes; the gradient reaching each input (None
      where none does) is returned, in the order of `inputs`. This is `grad()`."""
    root = roots[0]._ctx if len(roots) == 1 else None
    if root is not None and inputs is None and not hooked_leaves:  # loss.backward()
        plan, grads, targets, direct = None, {root: gradients[0]}, None, True
        steps = reversed(post_order([(root, False)]))
        leaf_storages = {_storage(gradients[0])}
    else:
        plan = _Plan(roots, gradients, inputs)
        grads, targets, steps = plan.grads, plan.targets, plan.steps
        direct = plan.leaf_steps is None
        leaf_storages = set(map(_storage, gradients))
        for leaf, gradient in plan.early:
            if inputs is None:
                accumulate(leaf, gradient, leaf_storages)
    into_grad = inputs is None
    captured = {} if capture else None
    for node in steps:
        grad = grads.pop(node, None)
        if grad is None:  # no gradient flows here (e.g. only through int outputs)
            continue
        if node._hooks is not None:  # user hooks, retain_grad(), a leaf's last step,
            if type(node) is LeafStep:  # or one output of a multi-output Function
                node.finish(grad, leaf_storages, captured)
                continue
            grad = _node_hooks(node, grad, leaf_storages)
            if type(node) is OutputNode:  # into its slot of the Function's gradients
                if targets is not None and node in targets:
                    targets[node] = grad
                    if node not in plan.runs:
                        continue
                node.deliver(grad, grads)
                continue
        if targets is not None and node in targets:
            targets[node] = grad
            if node not in plan.runs:
                continue
        input_grads = type(node).backward(node, grad)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        if len(input_grads) != len(node.parents):
            input_grads = _gradient_count(node, input_grads)
        for parent, input_grad in zip(node.parents, input_grads):
            if parent is None or input_grad is None:
                continue
            is_node = isinstance(parent, Function)
            if is_node:  # checked against the parent node's output, or the leaf itself
                shape, dtype, device = parent.output_metadata
            else:
                data = parent.data
                shape, dtype, device = data.shape, data.dtype, data.device
            if type(input_grad) is not _TorchTensor or input_grad.dtype is not dtype \
                    or input_grad.shape != shape or input_grad.device != device:
                input_grad = _checked_gradient(node, parent, input_grads, input_grad,
                                               (shape, dtype, device))
            if is_node:
                previous = grads.get(parent)
                grads[parent] = input_grad if previous is None else previous + input_grad
            elif direct:
                accumulate(parent, input_grad, leaf_storages)
            else:
                plan.deliver(parent, input_grad, leaf_storages, into_grad)
        if not retain_graph:
            node._free()

    if not capture:
        return None
    results = []
    for t in inputs:
        grad = targets[t._ctx] if t._ctx is not None else captured.get(plan.leaf_steps[t])
        if grad is not None and grad.dtype != t.data.dtype:
            grad = grad.to(t.data.dtype)
        results.append(grad)
    return results
