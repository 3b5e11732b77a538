"""L-BFGS: a quasi-Newton method that builds a curvature model from recent steps.

One `step(closure)` runs up to `max_iter` iterations on the whole parameter vector x
(all parameters flattened together), with the flat gradient g from the closure:

    s_k = x_{k+1} - x_k,  y_k = g_{k+1} - g_k,  rho_k = 1 / (y_k . s_k)
        (a pair is kept only when y . s > 1e-10; at most `history_size` pairs)
    d = -H g by the two-loop recursion:
        q = -g;  for k newest..oldest:  a_k = rho_k s_k . q;  q -= a_k y_k
        r = H0 q with H0 = (y . s) / (y . y) of the newest pair
        for k oldest..newest:  b = rho_k y_k . r;  r += (a_k - b) s_k;  d = r
    x <- x + t d, with t = lr (the first iteration ever: min(1, 1/|g|_1) * lr), or t
        from a strong-Wolfe line search (`line_search_fn="strong_wolfe"`: cubic
        interpolation, sufficient decrease c1 = 1e-4 and curvature c2 = 0.9)

It stops early when max |g| <= tolerance_grad, when g . d > -tolerance_change, when the
step or the loss changes by less than tolerance_change, or after `max_eval` closure
calls. This is PyTorch's LBFGS (itself after minFunc) operation for operation: same
arguments, defaults, state (kept under the first parameter: 'func_evals', 'n_iter', 'd',
't', 'old_dirs', 'old_stps', 'ro', 'H_diag', 'prev_flat_grad', 'prev_loss', 'al') and
the same single parameter group. Left out: complex and sparse parameters, tensor lr.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import torch

from handgrad.optim.optimizer import Optimizer, _evaluate

__all__ = ["LBFGS"]

# Strong-Wolfe constants: sufficient decrease (Armijo) and curvature.
_ARMIJO_C1 = 1e-4
_CURVATURE_C2 = 0.9
# A curvature pair (s, y) enters the history only when y . s exceeds this.
_MIN_CURVATURE = 1e-10


def _clamp(value, low, high):
    """min(max(value, low), high), with Python's min / max (values may be 0-d tensors)."""
    return min(max(value, low), high)


def _cubic_minimizer(x1, f1, g1, x2, f2, g2, bounds=None):
    """Where the cubic through (x1, f1, slope g1) and (x2, f2, slope g2) has its minimum.

    With  p = g1 + g2 - 3 (f1 - f2) / (x1 - x2)  and  r = sqrt(p^2 - g1 g2),  and (b, gb)
    the right-hand point of the two, (a, ga) the left-hand one, the minimiser is

        x* = b - (b - a) (gb + r - p) / (gb - ga + 2 r),

    clamped to `bounds` (by default the interval between the points). When p^2 < g1 g2
    the cubic has no local minimum and the middle of the bounds is returned.
    """
    low, high = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    p = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    discriminant = p ** 2 - g1 * g2
    if not discriminant >= 0:
        return (low + high) / 2.0
    r = discriminant.sqrt()
    (a, ga), (b, gb) = ((x1, g1), (x2, g2)) if x1 <= x2 else ((x2, g2), (x1, g1))
    return _clamp(b - (b - a) * ((gb + r - p) / (gb - ga + 2 * r)), low, high)


class _LinePoint(NamedTuple):
    """One trial of the line search: step t, loss, flat gradient and slope g . d there."""

    t: object
    loss: float
    grad: torch.Tensor
    slope: torch.Tensor


def _strong_wolfe(evaluate_at, t, d, loss, grad, slope, max_ls, tolerance_change=1e-9):
    """A step t along d with  loss(t) <= loss(0) + c1 t slope(0)  (sufficient decrease) and
    |slope(t)| <= -c2 slope(0)  (curvature): Nocedal & Wright's Algorithms 3.5 / 3.6.

    1. Bracket: try steps growing from `t`; stop as soon as a trial meets both conditions,
       or an interval [previous, trial] must hold such a step (the trial breaks sufficient
       decrease, is no lower than the previous one, or the slope turned non-negative). Until
       then extrapolate: the next trial is the cubic minimiser through the last two, kept in
       [t + 0.01 (t - t_prev), 10 t].
    2. Zoom: shrink the interval [low end, high end] (the low end has the smaller loss) by
       cubic interpolation; a trial too near an end (within a tenth of the interval) twice in
       a row, or outside it, is moved that tenth inside. A trial that fails sufficient
       decrease or is no lower than the low end replaces the high end; otherwise it becomes
       the low end (the old low end becoming the high end when the slope says the minimum
       lies the other way), unless it meets the curvature condition, which ends the search.
       The search also ends when the interval is shorter than tolerance_change / max|d|.

    At most `max_ls` trials after the first. `evaluate_at(t)` returns (loss, flat gradient)
    at x + t d. Returns (loss, flat gradient, t, closure calls) of the low end.
    """
    step_scale = d.abs().max()

    def trial(step) -> _LinePoint:
        new_loss, new_grad = evaluate_at(step)
        return _LinePoint(step, new_loss, new_grad, new_grad.dot(d))

    def too_high(point: _LinePoint) -> bool:  # sufficient decrease fails
        return point.loss > (loss + _ARMIJO_C1 * point.t * slope)

    def flat_enough(point: _LinePoint) -> bool:
        return abs(point.slope) <= -_CURVATURE_C2 * slope

    # Every evaluation's gradient is a fresh torch.cat, so the points share no storage.
    start = _LinePoint(0, loss, grad, slope)
    previous, current = start, trial(t)
    calls, trials, found = 1, 0, False
    ends = None
    while trials < max_ls:
        if too_high(current) or (trials > 1 and current.loss >= previous.loss):
            ends = [previous, current]
            break
        if flat_enough(current):
            ends, found = [current], True
            break
        if current.slope >= 0:
            ends = [previous, current]
            break
        lowest = current.t + 0.01 * (current.t - previous.t)
        next_t = _cubic_minimizer(previous.t, previous.loss, previous.slope,
                                  current.t, current.loss, current.slope,
                                  bounds=(lowest, current.t * 10))
        previous, current = current, trial(next_t)
        calls += 1
        trials += 1
    if trials == max_ls:  # out of evaluations: the interval from the start to the last trial
        ends = [start, current]

    def order(pair):
        return (0, 1) if pair[0].loss <= pair[-1].loss else (1, 0)

    low, high = order(ends)
    stalled_once = False
    while not found and trials < max_ls:
        left, right = ends
        if abs(right.t - left.t) * step_scale < tolerance_change:
            break
        t = _cubic_minimizer(left.t, left.loss, left.slope, right.t, right.loss, right.slope)
        top, bottom = max(left.t, right.t), min(left.t, right.t)
        margin = 0.1 * (top - bottom)
        near_an_end = min(top - t, t - bottom) < margin
        if near_an_end and (stalled_once or t >= top or t <= bottom):
            t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
            stalled_once = False
        else:
            stalled_once = near_an_end
        point = trial(t)
        calls += 1
        trials += 1
        if too_high(point) or point.loss >= ends[low].loss:
            ends[high] = point
            low, high = order(ends)
            continue
        if flat_enough(point):
            found = True
        elif point.slope * (ends[high].t - ends[low].t) >= 0:
            ends[high] = ends[low]
        ends[low] = point

    best = ends[low]
    return best.loss, best.grad, best.t, calls


def _two_loop_direction(grad, dirs, steps, rhos, h_diag, alphas):
    """d = -H g by the two-loop recursion over the kept pairs (y_k in `dirs`, s_k in
    `steps`, rho_k in `rhos`); the a_k are written into `alphas` (state 'al')."""
    q = grad.neg()
    for k in reversed(range(len(dirs))):
        alphas[k] = steps[k].dot(q) * rhos[k]
        q.add_(dirs[k], alpha=-alphas[k])
    direction = torch.mul(q, h_diag)
    for k in range(len(dirs)):
        beta = dirs[k].dot(direction) * rhos[k]
        direction.add_(steps[k], alpha=alphas[k] - beta)
    return direction


class LBFGS(Optimizer):

    """L-BFGS (Nocedal, 1980; Liu & Nocedal, 1989), with an optional strong-Wolfe line
    search. It needs a closure that zeroes the gradients, recomputes the loss, calls
    backward and returns the loss: `optimizer.step(closure)`.

    Takes one parameter group only, keeps `history_size + 1` copies of the flattened
    parameters, and wants every parameter on one device.

    Args:
        params: Tensors to optimize (one group).
        lr: learning rate (default 1).
        max_iter: most iterations per step() (default 20).
        max_eval: most closure calls per step() (default max_iter * 5 // 4).
        tolerance_grad: stop when max |gradient| is at most this (default 1e-7).
        tolerance_change: stop when the loss or the parameters change less (default 1e-9).
        history_size: how many (s, y) pairs the curvature model keeps (default 100).
        line_search_fn: None (a fixed step lr) or "strong_wolfe".
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None):
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter "
                             "groups): pass one list of parameters.")
        self._params = self.param_groups[0]["params"]

    def _check_group(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"LBFGS: Invalid learning rate: {group['lr']} (must be >= 0).")

    # ------------------------------------------------------------- flat vectors
    # x and g are all parameters laid end to end, in the group's order.
    def _flat_grad(self) -> torch.Tensor:
        """g as one fresh vector (a parameter without a gradient contributes zeros)."""
        return torch.cat([p.data.new_zeros(p.numel()) if p.grad is None
                          else p.grad.data.reshape(-1) for p in self._params], 0)

    def _move(self, t, direction: torch.Tensor) -> None:
        """x <- x + t * direction, each parameter from its slice of the flat vector."""
        pieces = direction.split([p.numel() for p in self._params])
        for p, piece in zip(self._params, pieces):
            p.data.add_(piece.view_as(p.data), alpha=t)

    def _snapshot(self) -> list[torch.Tensor]:
        return [p.data.clone(memory_format=torch.contiguous_format) for p in self._params]

    def _restore(self, snapshot: list[torch.Tensor]) -> None:
        for p, saved in zip(self._params, snapshot):
            p.data.copy_(saved)

    def _loss_and_grad_at(self, closure, x, d, t):
        """Loss and flat gradient at x + t d; the parameters are put back to x."""
        self._move(t, d)
        loss = float(_evaluate(closure))
        flat_grad = self._flat_grad()
        self._restore(x)
        return loss, flat_grad

    # ------------------------------------------------------------- the step
    def _direction(self, state, grad, history_size):
        """The new search direction; updates the curvature pairs in `state` first.

        The first iteration ever goes down the gradient (H0 = 1). Later ones add the pair
        s = t d (last step), y = g - g_prev when y . s > 1e-10 (dropping the oldest past
        history_size, H0 <- y . s / y . y), then apply the two-loop recursion."""
        if state["n_iter"] == 1:
            state.update(old_dirs=[], old_stps=[], ro=[], H_diag=1)
            return grad.neg()
        y = grad.sub(state["prev_flat_grad"])
        s = state["d"].mul(state["t"])
        ys = y.dot(s)
        if ys > _MIN_CURVATURE:
            pairs = (state["old_dirs"], state["old_stps"], state["ro"])
            for kept, new in zip(pairs, (y, s, 1.0 / ys)):
                if len(kept) == history_size:
                    del kept[0]
                kept.append(new)
            state["H_diag"] = ys / y.dot(y)
        alphas = state.setdefault("al", [None] * history_size)
        return _two_loop_direction(grad, state["old_dirs"], state["old_stps"], state["ro"],
                                   state["H_diag"], alphas)

    def step(self, closure: Callable):
        """Up to max_iter L-BFGS iterations; returns the closure's first loss.

        Each iteration: a direction d (`_direction`), the trial step t (lr, or
        min(1, 1 / |g|_1) lr the first time), a stop if g . d > -tolerance_change, then
        the move x <- x + t d with t from the line search when one is asked for (otherwise
        the closure runs again at the new x, unless this is the last iteration). It stops
        after max_iter iterations, max_eval closure calls, max|g| <= tolerance_grad, a step
        max|t d| <= tolerance_change or a loss change below tolerance_change.
        """
        if closure is None:
            raise RuntimeError("LBFGS.step needs a closure that zeroes the gradients, "
                               "recomputes the loss, calls backward() and returns the loss.")
        group = self.param_groups[0]
        lr, tolerance_change = group["lr"], group["tolerance_change"]
        line_search_fn = group["line_search_fn"]

        def at_optimum(grad) -> bool:
            return bool(grad.abs().max() <= group["tolerance_grad"])

        # the state lives under the first parameter (torch's layout); every key is torch's
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        first_loss = _evaluate(closure)
        loss, calls = float(first_loss), 1
        state["func_evals"] += 1
        grad = self._flat_grad()
        if at_optimum(grad):
            return first_loss

        for iteration in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            state["d"] = d = self._direction(state, grad, group["history_size"])
            if state.get("prev_flat_grad") is None:
                state["prev_flat_grad"] = grad.clone(memory_format=torch.contiguous_format)
            else:
                state["prev_flat_grad"].copy_(grad)
            state["prev_loss"] = loss_before = loss

            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / grad.abs().sum()) * lr
            else:
                t = lr
            state["t"] = t
            slope = grad.dot(d)
            if slope > -tolerance_change:
                break  # d no longer points downhill

            new_calls, converged = 0, False
            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError(f"LBFGS: only 'strong_wolfe' is supported as "
                                       f"line_search_fn (or None), got {line_search_fn!r}.")
                evaluate_at = functools.partial(self._loss_and_grad_at, closure,
                                                self._snapshot(), d)
                # the search's own tolerance stays 1e-9 whatever the group's (as torch)
                loss, grad, t, new_calls = _strong_wolfe(
                    evaluate_at, t, d, loss, grad, slope, max_ls=group["max_eval"] - calls)
                state["t"] = t
                self._move(t, d)
                converged = at_optimum(grad)
            else:
                self._move(t, d)
                if iteration != group["max_iter"]:  # the last iteration skips the re-run
                    loss = float(_evaluate(closure))
                    grad = self._flat_grad()
                    converged = at_optimum(grad)
                    new_calls = 1
            calls += new_calls
            state["func_evals"] += new_calls

            if iteration == group["max_iter"] or calls >= group["max_eval"] or converged:
                break
            step_size = d.mul(t).abs().max()
            if step_size <= tolerance_change or abs(loss - loss_before) < tolerance_change:
                break
        return first_loss
