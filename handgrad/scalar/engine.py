"""Value: a scalar autograd engine in pure Python (standard library only).

A `Value` holds one number (`data`), the gradient of some final result with respect to
it (`grad`), and, when an op made it, the Values it was made from (`_prev`) together
with the local derivative of this op with respect to each of them (`_local_grads`).
Each op below computes its result and writes those local derivatives right next to the
forward math; `backward()` is then one loop that applies the chain rule,

    child.grad += d(node)/d(child) * node.grad,

to every node, visiting a node only after every node that uses it.

Coming from micrograd: there each op stores a `_backward` closure that does the
`+=` itself. Here each op stores only the numbers that closure would multiply by (for
`a * b` they are `b` and `a`), computed during the forward pass, and one loop in
`backward()` does every `+=`. Same chain rule; no function object per node (faster,
and no reference cycle, so a graph is freed as soon as it goes out of scope).

Reading order: the ops (binary, reflected, unary, `sum`), then `backward()`, then the
helpers at the bottom: `_node` makes an op's output, the rest handle bad input and the
IEEE corners (division by zero, overflow) where Python would raise.

What it leaves out: arrays (use the tensor engine, `handgrad.tensor`), gradients of
gradients (the backward pass works on plain numbers, not Values), in-place ops.

Numbers follow IEEE floats as PyTorch does (`log(0)` is -inf, `exp(1000)` is inf,
`log(-1)` is nan) instead of raising, so a tiny script and its PyTorch twin agree.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable
from operator import attrgetter

__all__ = ["Value"]

_INF = math.inf
_NAN = math.nan
_ONE_ONE = (1.0, 1.0)  # d(a + b)/da, d(a + b)/db: shared, one tuple for every add

# Every Value takes the next number from this counter when it is made. A Value is always
# made after the Values it is made from, so creation order is a topological order of
# any graph: sorting by it (newest first) visits every node after all the nodes that
# use it. That is the whole topological sort -- no recursion, no depth limit.
_creation_counter = itertools.count()
# Module-level names for what the hot paths call: a global lookup is cheaper than an
# attribute lookup, and these run once per node.
_by_creation = attrgetter("_order")  # the sort key: v -> v._order
_new_object = object.__new__  # makes a bare Value without running __init__


class Value:
    """One scalar in a computation graph, with its gradient.

    >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    >>> c = a * b + a
    >>> c.backward()
    >>> a.grad, b.grad            # dc/da = b + 1, dc/db = a
    (-2.0, 2.0)

    Gradients accumulate: each `backward()` call *adds* into the `grad` of the leaves
    (Values you made yourself, such as weights and inputs), exactly like PyTorch's
    `.grad`. Reset them with `module.zero_grad()` (or `v.grad = 0.0`) before each step.
    The `grad` of an intermediate Value is recomputed from scratch by every call, so it
    always shows the gradient of the last `backward()`.
    """

    __slots__ = ("data", "grad", "label", "_op", "_prev", "_local_grads", "_order")

    def __init__(self, data: float, label: str = "") -> None:
        self.data = _scalar_data(data)
        self.grad = 0.0
        self.label = label
        self._op = ""  # empty for a leaf
        self._prev = ()  # the Values this one was made from
        self._local_grads = ()  # d(self)/d(_prev[i]), one float per entry of _prev
        self._order = next(_creation_counter)

    # ---- binary ops -----------------------------------------------------------------
    # Each takes another Value, or a plain number (then only `self` gets a gradient and
    # the number is kept in `_op` for drawing, as in ("*", 2.0)).

    def __add__(self, other: Value | float) -> Value:
        # a + b:  d/da = 1,  d/db = 1
        if isinstance(other, Value):
            return _node(self.data + other.data, (self, other), _ONE_ONE, "+")
        c = _as_number(other, "+")
        return _node(self.data + c, (self,), (1.0,), ("+", c))

    def __sub__(self, other: Value | float) -> Value:
        # a - b:  d/da = 1,  d/db = -1
        if isinstance(other, Value):
            return _node(self.data - other.data, (self, other), (1.0, -1.0), "-")
        c = _as_number(other, "-")
        return _node(self.data - c, (self,), (1.0,), ("-", c))

    def __mul__(self, other: Value | float) -> Value:
        # a * b:  d/da = b,  d/db = a
        if isinstance(other, Value):
            return _node(self.data * other.data, (self, other), (other.data, self.data), "*")
        c = _as_number(other, "*")
        return _node(self.data * c, (self,), (c,), ("*", c))

    def __truediv__(self, other: Value | float) -> Value:
        # a / b:  d/da = 1/b,  d/db = -a/b**2 = -(a/b)/b
        if isinstance(other, Value):
            b = other.data
            out = _divide(self.data, b)
            return _node(out, (self, other), (_divide(1.0, b), _divide(-out, b)), "/")
        c = _as_number(other, "/")
        return _node(_divide(self.data, c), (self,), (_divide(1.0, c),), ("/", c))

    def __pow__(self, other: Value | float) -> Value:
        # a ** b:  d/da = b * a**(b-1),  d/db = a**b * log(a)
        if isinstance(other, Value):
            a, b = self.data, other.data
            out = _power(a, b)
            local_grads = (_power_grad_base(a, b), _power_grad_exponent(a, b, out))
            return _node(out, (self, other), local_grads, "**")
        n = _as_number(other, "**")
        a = self.data
        return _node(_power(a, n), (self,), (_power_grad_base(a, n),), ("**", n))

    # Reflected forms: `number op self`, when the number is on the left.

    def __radd__(self, other: float) -> Value:  # c + a = a + c
        return self + other

    def __rmul__(self, other: float) -> Value:  # c * a = a * c
        return self * other

    def __rsub__(self, other: float) -> Value:
        # c - a:  d/da = -1
        c = _as_number(other, "-")
        return _node(c - self.data, (self,), (-1.0,), ("r-", c))

    def __rtruediv__(self, other: float) -> Value:
        # c / a:  d/da = -c/a**2 = -(c/a)/a
        c = _as_number(other, "/")
        out = _divide(c, self.data)
        return _node(out, (self,), (_divide(-out, self.data),), ("r/", c))

    def __rpow__(self, other: float) -> Value:
        # c ** a:  d/da = c**a * log(c)
        c = _as_number(other, "**")
        out = _power(c, self.data)
        return _node(out, (self,), (_power_grad_exponent(c, self.data, out),), ("r**", c))

    # ---- unary ops ------------------------------------------------------------------

    def __neg__(self) -> Value:
        # -a:  d/da = -1
        return _node(-self.data, (self,), (-1.0,), "neg")

    def exp(self) -> Value:
        # e**a:  d/da = e**a
        try:
            out = math.exp(self.data)
        except OverflowError:  # IEEE (and PyTorch) say inf
            out = _INF
        return _node(out, (self,), (out,), "exp")

    def log(self) -> Value:
        # log(a):  d/da = 1/a   (natural log; -inf at 0 and nan below 0, as in PyTorch)
        a = self.data
        if a > 0:
            return _node(math.log(a), (self,), (1.0 / a,), "log")
        return _node(-_INF if a == 0 else _NAN, (self,), (_divide(1.0, a),), "log")

    def tanh(self) -> Value:
        # tanh(a):  d/da = 1 - tanh(a)**2   (math.tanh never overflows, unlike
        # (e**2a - 1)/(e**2a + 1), which raises OverflowError for a > 355)
        t = math.tanh(self.data)
        return _node(t, (self,), (1.0 - t * t,), "tanh")

    def sigmoid(self) -> Value:
        # s = 1/(1 + e**-a):  d/da = s * (1 - s)   (written so that e**x never overflows)
        a = self.data
        if a >= 0:
            s = 1.0 / (1.0 + math.exp(-a))
        else:
            e = math.exp(a)
            s = e / (1.0 + e)
        return _node(s, (self,), (s * (1.0 - s),), "sigmoid")

    def relu(self) -> Value:
        # max(a, 0):  d/da = 1 if a > 0 else 0   (0 at the kink, as in PyTorch)
        a = self.data
        if a > 0 or a != a:  # a != a: nan passes through (gradient 1), as in PyTorch
            return _node(a, (self,), (1.0,), "relu")
        return _node(0.0, (self,), (0.0,), "relu")

    def leaky_relu(self, negative_slope: float = 0.01) -> Value:
        # a if a > 0 else slope*a:  d/da = 1 if a > 0 else slope   (PyTorch's default slope;
        # at the kink a = 0 the gradient is the slope, as in PyTorch)
        if type(negative_slope) is not float:
            negative_slope = _as_number(negative_slope, "leaky_relu(negative_slope=...)")
        a = self.data
        if a > 0:
            return _node(a, (self,), (1.0,), "leaky_relu")
        return _node(negative_slope * a, (self,), (negative_slope,), "leaky_relu")

    def abs(self) -> Value:
        # |a|:  d/da = sign(a), 0 at 0 (as in PyTorch)
        a = self.data
        return _node(abs(a), (self,), (1.0 if a > 0 else -1.0 if a < 0 else 0.0,), "abs")

    __abs__ = abs

    @staticmethod
    def sum(values: Iterable[Value | float]) -> Value:
        """Sum many Values in one node: d(sum)/d(v_i) = 1 for every i.

        One node instead of the n - 1 nodes of a chain of `+` (which is what Python's
        built-in `sum` builds): less memory and a faster backward. Plain numbers may be
        mixed in; they add to the result and get no gradient.
        """
        if type(values) is tuple:
            children = values
        else:
            try:
                children = tuple(values)
            except TypeError:
                raise TypeError(f"Value.sum({type(values).__name__}): pass an iterable of "
                                "Values, as in Value.sum([a, b, c])") from None
        total = 0.0
        try:
            for v in children:
                total += v.data
        except AttributeError:  # some entries are plain numbers: keep them out of the graph
            constant = 0.0
            for v in children:
                if not isinstance(v, Value):
                    constant += _as_number(v, "sum")
            children = tuple(v for v in children if isinstance(v, Value))
            total = constant + sum(v.data for v in children)
            return _node(total, children, (1.0,) * len(children), ("sum +", constant))
        return _node(total, children, (1.0,) * len(children), "sum")

    # ---- backward -------------------------------------------------------------------

    def backward(self, gradient: float | None = 1.0) -> None:
        """Fill `grad` of every Value this one depends on: v.grad += d(self)/d(v) * gradient.

        `gradient` is one plain number, d(final result)/d(self); None means 1.0, as in
        PyTorch.

        Leaves (Values you made yourself) *accumulate* across calls, as in PyTorch;
        zero them before each step. Intermediate Values get the gradient of this call.
        The graph is kept, so calling backward twice is allowed (and adds twice).
        Works for graphs of any depth: the walk is a loop over a list, not recursion.
        """
        if not isinstance(self, Value):  # Value.backward(outputs) with a list, say
            raise _not_a_value_error(self)
        seed = 1.0 if gradient is None else _gradient_seed(gradient)
        if not self._prev:  # a leaf: d(self)/d(self) = 1
            self.grad += seed
            return
        # 1. Collect the nodes made by ops that lead here (breadth first: the loop walks
        #    the list while it grows) and zero their grad, so that each one ends up with
        #    exactly this call's gradient (micrograd skips this: a second backward then
        #    adds onto stale intermediate grads and passes wrong sums to the leaves).
        #    Leaves are not collected and keep their grad: that is what makes them
        #    accumulate across calls.
        nodes = [self]
        seen = {self}
        for node in nodes:
            node.grad = 0.0
            order = node._order
            for child in node._prev:
                if child._prev:
                    if child not in seen:
                        seen.add(child)
                        nodes.append(child)
                    if child._order >= order:  # only an edited `_prev` can do this
                        raise _cycle_error(node, child)
        # 2. Newest first is a topological order (see _creation_counter): when the loop
        #    reaches a node, every node that uses it has already added its share, so
        #    node.grad is complete. Apply the chain rule once per edge.
        nodes.sort(key=_by_creation, reverse=True)
        self.grad = seed
        for node in nodes:
            g = node.grad
            for child, local in zip(node._prev, node._local_grads):
                child.grad += local * g

    # ---- display --------------------------------------------------------------------

    def __repr__(self) -> str:
        extra = ""
        if self._op:
            extra += f", op={op_text(self._op)!r}"
        if self.label:
            extra += f", label={self.label!r}"
        return f"Value(data={_short(self.data)}, grad={_short(self.grad)}{extra})"


def _node(data: float, prev: tuple, local_grads: tuple, op) -> Value:
    """Make an op's output Value: the fast path that skips `__init__`'s input checks."""
    out = _new_object(Value)
    out.data = data
    out.grad = 0.0
    out.label = ""
    out._op = op
    out._prev = prev
    out._local_grads = local_grads
    out._order = next(_creation_counter)
    return out


def _short(x: float) -> str:
    """A float in at most 6 significant digits, always looking like a float: 2.0, 0.707107."""
    text = f"{x:.6g}"
    return text + ".0" if text.lstrip("-").isdigit() else text


def op_text(op) -> str:
    """How an op reads in a repr or a drawing: "*", "tanh", "* 2", "1 -" (for 1 - a)."""
    if isinstance(op, str):
        return op
    symbol, c = op
    if symbol.startswith("r"):  # reflected: the number is on the left
        return f"{c:g} {symbol[1:]}"
    return f"{symbol} {c:g}"


# ---- checks and the arithmetic corners --------------------------------------------


def _scalar_data(data) -> float:
    """`data` as a float, or a clear error for anything that is not one real number."""
    if type(data) is float:
        return data
    if isinstance(data, numbers.Real):  # int, bool, numpy scalars
        return float(data)
    if isinstance(data, Value):
        raise TypeError("Value(Value(...)): a Value holds a plain number; use the Value itself, "
                        "or Value(v.data) for an independent copy")
    if isinstance(data, (str, bytes, complex)):
        raise TypeError(f"Value({data!r}): a Value holds one real number (int or float)")
    try:
        size = len(data)
    except TypeError:
        size = None  # no length: perhaps a 0-d array or tensor, which float() accepts
    if size is None:
        try:
            return float(data)
        except (TypeError, ValueError):
            pass
    what = f"{size} numbers" if size is not None else "that"
    raise TypeError(f"Value({type(data).__name__}): a Value holds one real number, not {what}; "
                    "make one Value per number ([Value(x) for x in xs]) or use the tensor "
                    "engine (handgrad.tensor) for arrays")


def _as_number(x, op: str) -> float:
    """The plain-number operand of an op as a float, or a clear error."""
    if type(x) is float:
        return x
    if isinstance(x, numbers.Real):
        return float(x)
    what = "a sequence or array" if hasattr(x, "__len__") or hasattr(x, "__iter__") else "that"
    raise TypeError(f"Value {op} {type(x).__name__}: a Value combines with another Value or "
                    f"one real number (int or float), not {what}; for arrays use the tensor "
                    "engine (handgrad.tensor)")


def _divide(a: float, b: float) -> float:
    """a / b with IEEE's answers (as in PyTorch) where Python raises: x/0 = +-inf, 0/0 = nan."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or a != a:  # 0/0, or a is nan (nan is the one float not equal to itself)
            return _NAN
        return math.copysign(_INF, a) * math.copysign(1.0, b)


def _power(a: float, b: float) -> float:
    """a ** b with IEEE's answers where Python raises or goes complex (as in PyTorch)."""
    try:
        out = a**b
    except (ZeroDivisionError, OverflowError):  # 0.0 ** -1, 10.0 ** 1000, (-10.0) ** 1001
        if a < 0 and not b.is_integer():  # (-10.0) ** 1000.5 overflows as a complex number
            return _NAN
        odd = b % 2 == 1  # an odd integer exponent keeps the sign of the base
        return -_INF if odd and math.copysign(1.0, a) < 0 else _INF
    if type(out) is complex:  # a negative base with a fractional exponent
        return _NAN
    return out


def _power_grad_base(a: float, b: float) -> float:
    # d(a**b)/da = b * a**(b-1); PyTorch defines it as 0 for b == 0 (even at a == 0)
    if b == 0:
        return 0.0
    return b * _power(a, b - 1.0)


def _power_grad_exponent(a: float, b: float, out: float) -> float:
    # d(a**b)/db = a**b * log(a); PyTorch defines it as 0 at a == 0 for b >= 0
    if a > 0:
        return out * math.log(a)
    if a == 0:  # log(0) = -inf; for b < 0, a**b is +-inf (-inf for -0.0 and an odd b)
        return 0.0 if b >= 0 else out * -_INF
    return _NAN  # log of a negative number (or nan)


def _gradient_seed(gradient) -> float:
    """backward's `gradient` as a float, or a clear error saying what to pass instead."""
    if type(gradient) is float:
        return gradient
    if isinstance(gradient, numbers.Real):
        return float(gradient)
    if isinstance(gradient, Value):
        raise TypeError(f"Value.backward(gradient={gradient!r}): pass a plain number, "
                        "gradient.data; the backward pass works on plain numbers (this engine "
                        "computes no gradients of gradients)")
    if isinstance(gradient, (str, bytes)):
        raise TypeError(f"Value.backward(gradient={gradient!r}): the gradient is one real "
                        "number (int or float)")
    try:
        size = f"{len(gradient)} numbers"
    except TypeError:
        size = type(gradient).__name__
    raise TypeError(f"Value.backward(gradient=...): a Value is one number, so its gradient is "
                    f"one number, not {size}; for arrays use the tensor engine (handgrad.tensor)")


def _not_a_value_error(thing) -> TypeError:
    what = type(thing).__name__
    if isinstance(thing, (list, tuple)):
        what = f"a {what} of {len(thing)}"
    return TypeError(f"Value.backward: expected a Value, got {what}. backward() starts from "
                     "one scalar; to backpropagate from several outputs, add them into one "
                     "first: Value.sum(outputs).backward()")


def _cycle_error(node: Value, child: Value) -> ValueError:
    return ValueError(
        f"Value.backward: the graph has a cycle: {child!r} is an input of {node!r} but was "
        "made after it. Ops always make a Value after its inputs, so only a hand edit of "
        "`_prev` can do this; rebuild the expression instead.")
