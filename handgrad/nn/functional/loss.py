"""Loss functions, each one fused Function with a hand-derived backward.

Every loss takes torch's `reduction` ('mean', 'sum' or 'none'). Writing l_i for the
loss of element (or position) i and g for the upstream gradient, the backward of each
loss is d l_i / d input_i times the gradient that reaches l_i: g / n for 'mean' (n the
denominator of the mean), g for 'sum', g_i for 'none'. `_scale` builds that factor.

Class-index targets live on dim 1 of the input, (N, C, d1, d2, ...) with targets
(N, d1, d2, ...), or an unbatched (C,) input with a () target, as in torch.

Families, in file order: class-index targets (cross_entropy, nll_loss); regression
(mse_loss, l1_loss, smooth_l1_loss, huber_loss; mse / l1 / huber take torch's
elementwise `weight`); binary (binary_cross_entropy(_with_logits), hinge_loss);
distributions (kl_div, poisson_nll_loss, gaussian_nll_loss); margins and embeddings
(soft_margin_loss, margin_ranking_loss, hinge_embedding_loss, triplet_margin_loss,
cosine_embedding_loss, multi_margin_loss, multilabel_soft_margin_loss). Arguments,
defaults, broadcasting, warnings and the exception types of their errors are torch's.

Left out: the losses as modules (handgrad/nn/loss.py); CTC (ctc.py);
multilabel_margin_loss; gradients of the class weights of cross_entropy, nll_loss and
multi_margin_loss (torch has none either).
"""

from __future__ import annotations

import math
import warnings

import torch

from handgrad.autograd import Function, HandgradError, describe, unbroadcast

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def legacy_reduction(op: str, size_average, reduce, reduction: str) -> str:
    """The reduction string, also from torch's deprecated size_average/reduce flags."""
    if size_average is not None or reduce is not None:
        warnings.warn(f"{op}: size_average and reduce are deprecated, use "
                      "reduction='mean'|'sum'|'none' instead", stacklevel=3)
        if reduce is not None and not reduce:
            reduction = "none"
        else:
            reduction = "mean" if size_average is None or size_average else "sum"
    _check_reduction(op, reduction)
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _scale(g, reduction, n):
    """The gradient reaching each element's loss: g / n, g, or g itself elementwise."""
    return g / n if reduction == "mean" else g


# ============================================================== class-index targets
def _class_targets(target, ignore_index):
    """(index, valid) for class-index targets: the target as an int64 index of shape
    (N, 1, *) into dim 1 (ignored positions point at class 0) and the mask of the
    positions that are not ignored."""
    valid = target != ignore_index
    index = torch.where(valid, target, 0).unsqueeze(1)
    if index.dtype != torch.int64:
        index = index.long()
    return index, valid


def _pick(op: str, x, index, target, ignore_index):
    """x_i[y_i] for every position, shape (N, 1, *). The gather checks bounds on the CPU;
    its error becomes one that names the bad target. (On CUDA an out-of-range target is
    a device-side assert, as in torch.)"""
    try:
        return x.gather(1, index)
    except RuntimeError:
        bad = target[(target != ignore_index) & ((target < 0) | (target >= x.shape[1]))]
        if not bad.numel():
            raise
        raise HandgradError(
            f"{op}: target values must be class indices in [0, {x.shape[1]}) (or "
            f"ignore_index={ignore_index}); got {bad.flatten()[0].item()} (input "
            f"{describe(x)}, target {describe(target)})") from None


def _nonzero(denominator):
    """The 'mean' denominator for backward: 1 where it is 0. Then no position counted
    (all targets ignored) means a zero gradient, as in torch, where g / 0 would have made
    it nan (the forward's 0 / 0 = nan loss is torch's too). On the CPU, reading the value
    costs less than an op; on a GPU it would wait for the device, so an op it is there."""
    if denominator.is_cuda:
        return torch.where(denominator == 0, 1, denominator)
    return denominator if denominator.item() != 0 else torch.ones_like(denominator)


def _target_weights(index, valid, weight):
    """w[y_i] per position, 0 where the target is ignored; without class weights, the
    mask itself (bool: arithmetic with it promotes to the float dtype)."""
    if weight is None:
        return valid
    return weight[index.squeeze(1)] * valid


class CrossEntropy(Function):
    """Cross-entropy of logits against class indices: log-softmax and NLL in one node.

    For position i with logits x_i (over the C classes of dim 1), target y_i, class
    weights w (all 1 when not given) and label smoothing eps, the target distribution is
        q_i[c] = (1 - eps) w[y_i] [c == y_i] + eps w[c] / C     (0 if y_i == ignore_index)
    and, with lse_i = log sum_c e**x_i[c] (so log p_i = x_i - lse_i),
        l_i = -sum_c q_i[c] log p_i[c] = lse_i sum_c q_i[c] - q_i . x_i.
    Every term is formed from the shifted logits z_i = x_i - max_c x_i[c], in which
    lse_i - x_i[c] = log sum_c e**z_i[c] - z_i[c]: two numbers of the loss's own size.
    (lse_i and x_i[y_i] themselves may be ~1e6, where float32 keeps only 1/16; a row of
    all -3e38 has lse = x, and smoothing's C lse - sum_c x_c would be inf - inf.)
    'mean' divides sum_i l_i by sum_i w[y_i] over non-ignored positions (torch's rule,
    also with smoothing). Gradient, h_i being the gradient reaching l_i:
        dx_i = h_i (softmax(x_i) sum_c q_i[c] - q_i)
    which, without weights and smoothing, is (softmax(x_i) - onehot(y_i)) g / N.
    """

    name = "cross_entropy"
    unbatched = False  # set by forward for a (C,) input

    @staticmethod
    def forward(ctx, x, target, weight=None, ignore_index=-100, label_smoothing=0.0,
                reduction="mean"):
        if x.ndim == 1:  # unbatched: one position
            x, target = x.unsqueeze(0), target.unsqueeze(0)
            ctx.unbatched = True
        index, valid = _class_targets(target, ignore_index)
        picked = _pick("cross_entropy", x, index, target, ignore_index)  # x_i[y_i]
        w_target = _target_weights(index, valid, weight)
        eps = label_smoothing
        m = x.amax(1, keepdim=True)
        z = x - m  # shifted logits, (N, C, *); smoothing reads them, else exp_ reuses them
        e = z.exp() if eps else z.exp_()  # e**z; softmax = e / total, kept for backward
        total = e.sum(1, keepdim=True)
        log_total = total.log()  # lse - m, (N, 1, *)
        loss = (log_total - (picked - m)).squeeze(1)  # -log p_i[y_i], (N, *)
        if eps:
            loss = loss * w_target * (1 - eps)  # (bool * number would be float32)
            if weight is None:  # sum_c (lse - x_c) = C log(total) - sum_c z_c
                smooth = log_total.squeeze(1) * x.shape[1] - z.sum(1)
            else:
                w = weight.view(-1, *(1,) * (x.ndim - 2))
                smooth = log_total.squeeze(1) * weight.sum() - (z * w).sum(1)
            loss = loss + smooth * (eps / x.shape[1]) * valid
        else:
            loss = loss * w_target
        ctx.save_for_backward(e, total, index, w_target, weight, valid if eps else None)
        ctx.options = (eps, reduction)
        if reduction == "none":
            return loss.squeeze(0) if ctx.unbatched else loss
        if reduction == "sum":
            return loss.sum()
        ctx.denominator = w_target.sum()
        return loss.sum() / ctx.denominator

    @staticmethod
    def backward(ctx, g):
        e, total, index, w_target, weight, valid = ctx.saved_tensors
        eps, reduction = ctx.options
        classes = e.shape[1]
        if reduction == "none":
            h = g.unsqueeze(0) if ctx.unbatched else g
        else:
            h = g / _nonzero(ctx.denominator) if reduction == "mean" else g
        # q_i = (1 - eps) w[y_i] onehot(y_i) + eps w / C (valid positions only)
        hot = (h * w_target).unsqueeze(1)  # h_i w[y_i], (N, 1, *)
        if eps:
            hot = hot * (1 - eps)
            spread = (h * valid).unsqueeze(1) * (eps / classes)  # h_i eps / C
            weight_sum = weight.sum() if weight is not None else classes
            row_total = hot + spread * weight_sum  # h_i sum_c q_i[c]
        else:
            row_total = hot
        dx = e * (row_total / total)  # softmax(x_i) h_i sum_c q_i[c]
        dx.scatter_add_(1, index, -hot)
        if eps:
            if weight is None:
                dx.sub_(spread)
            else:
                dx.sub_(spread * weight.view(-1, *(1,) * (e.ndim - 2)))
        if ctx.unbatched:
            dx = dx.squeeze(0)
        return dx, None, None, None, None, None


class CrossEntropyProbabilities(Function):
    """Cross-entropy of logits against class probabilities (a target of the input's shape).

    With smoothing eps the target becomes t' = (1 - eps) t + eps / C; with class weights
    q = w t'. For position i:  l_i = -sum_c q_i[c] log p_i[c] = lse_i sum_c q_i[c] - q_i . x_i,
    'mean' divides by the number of positions (numel / C). Gradients:
        dx_i = h_i (softmax(x_i) sum_c q_i[c] - q_i),
        dt_i = -h_i (1 - eps) w log p_i.
    As in CrossEntropy, all of it is computed from z_i = x_i - max_c x_i[c]:
    -log p_i = log sum_c e**z_i[c] - z_i, never lse_i - x_i with its large cancellation.
    """

    name = "cross_entropy_probabilities"

    @staticmethod
    def forward(ctx, x, target, weight=None, label_smoothing=0.0, reduction="mean"):
        unbatched = x.ndim == 1
        if unbatched:
            x, target = x.unsqueeze(0), target.unsqueeze(0)
        classes = x.shape[1]
        q = target * (1 - label_smoothing) + label_smoothing / classes \
            if label_smoothing else target
        w = None if weight is None else weight.view(-1, *(1,) * (x.ndim - 2))
        if w is not None:
            q = q * w
        z = x - x.amax(1, keepdim=True)  # shifted logits, (N, C, *)
        log_total = z.exp().sum(1, keepdim=True).log_()  # lse - max, (N, 1, *)
        loss = (log_total * q.sum(1, keepdim=True) - (q * z).sum(1, keepdim=True)).squeeze(1)
        ctx.save_for_backward(z, log_total, q, w)
        ctx.options = (unbatched, label_smoothing, reduction, loss.numel())
        if reduction == "none":
            return loss.squeeze(0) if unbatched else loss
        return loss.sum() if reduction == "sum" else loss.mean()

    @staticmethod
    def backward(ctx, g):
        z, log_total, q, w = ctx.saved_tensors  # -log p = log_total - z
        unbatched, eps, reduction, positions = ctx.options
        h = _scale(g, reduction, positions)
        if reduction == "none":
            h = (h.unsqueeze(0) if unbatched else h).unsqueeze(1)
        need_x, need_t = ctx.needs_input_grad[:2]
        dx = dt = None
        if need_x:
            dx = (torch.exp(z - log_total) * q.sum(1, keepdim=True) - q) * h
        if need_t:
            dt = (log_total - z) * (h * (1 - eps))
            if w is not None:
                dt = dt * w
        if unbatched:
            dx = None if dx is None else dx.squeeze(0)
            dt = None if dt is None else dt.squeeze(0)
        return dx, dt, None, None, None


class NLLLoss(Function):
    """Negative log-likelihood of log-probabilities x against class indices.

    l_i = -w[y_i] x_i[y_i]  (0 where y_i == ignore_index); 'mean' divides by
    sum_i w[y_i] over non-ignored positions.  dx_i = -h_i w[y_i] onehot(y_i).
    """

    name = "nll_loss"

    @staticmethod
    def forward(ctx, x, target, weight=None, ignore_index=-100, reduction="mean"):
        unbatched = x.ndim == 1
        if unbatched:
            x, target = x.unsqueeze(0), target.unsqueeze(0)
        index, valid = _class_targets(target, ignore_index)
        picked = _pick("nll_loss", x, index, target, ignore_index)
        w_target = _target_weights(index, valid, weight)
        loss = -picked.squeeze(1) * w_target
        ctx.save_for_backward(index, w_target)
        ctx.options = (unbatched, reduction, x.shape)
        if reduction == "none":
            return loss.squeeze(0) if unbatched else loss
        if reduction == "sum":
            return loss.sum()
        ctx.denominator = w_target.sum()
        return loss.sum() / ctx.denominator

    @staticmethod
    def backward(ctx, g):
        index, w_target = ctx.saved_tensors
        unbatched, reduction, shape = ctx.options
        if reduction == "none":
            h = g.unsqueeze(0) if unbatched else g
        else:
            h = g / _nonzero(ctx.denominator) if reduction == "mean" else g
        dx = torch.zeros(shape, dtype=g.dtype, device=g.device)
        dx.scatter_(1, index, (-h * w_target).unsqueeze(1).expand(index.shape))
        return (dx.squeeze(0) if unbatched else dx), None, None, None, None


def _check_class_weight(op: str, input, weight) -> None:
    classes = input.shape[0 if input.ndim == 1 else 1]
    if weight is not None and tuple(weight.shape) != (classes,):
        raise HandgradError(
            f"{op}: weight must hold one per class ({classes}: the size of the input's "
            f"dim {0 if input.ndim == 1 else 1}), got shape {tuple(weight.shape)} (input "
            f"shape {tuple(input.shape)})")


def _class_index_checks(op: str, input, target, weight=None) -> None:
    """Clear messages for the usual mistakes: wrong dtype, wrong shape (of the target or
    of the class weights)."""
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise HandgradError(
            f"{op}: class-index targets must be integers (int64), got {describe(target)}; "
            f"use target.long(). (Probability targets must have the input's shape, "
            f"{tuple(input.shape)}.)")
    expected = tuple(input.shape[:1]) + tuple(input.shape[2:]) if input.ndim != 1 else ()
    _check_class_weight(op, input, weight)
    if tuple(target.shape) != expected:
        raise HandgradError(
            f"{op}: input of shape {tuple(input.shape)} (classes on dim "
            f"{0 if input.ndim == 1 else 1}) needs a target of shape {expected}, got "
            f"{describe(target)}")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """PyTorch's nn.functional.cross_entropy: log-softmax + NLL of logits, one fused node.

    `target` holds class indices (integers, the input's shape without dim 1) or class
    probabilities (floats, the input's shape)."""
    reduction = legacy_reduction("cross_entropy", size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    if input.ndim == 0:
        raise HandgradError("cross_entropy: input must have a class dim, got a 0-d tensor")
    if target.dtype.is_floating_point and target.shape == input.shape:
        if target.dtype != input.dtype:
            raise HandgradError(
                f"cross_entropy: probability targets must have the input's dtype, input "
                f"{describe(input)}, target {describe(target)}")
        _check_class_weight("cross_entropy", input, weight)
        return CrossEntropyProbabilities.apply(input, target, weight, label_smoothing,
                                               reduction)
    _class_index_checks("cross_entropy", input, target, weight)
    return CrossEntropy.apply(input, target, weight, ignore_index, label_smoothing,
                              reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100,
             reduce=None, reduction="mean"):
    """PyTorch's nn.functional.nll_loss: -w[y] input[y] for log-probability inputs."""
    reduction = legacy_reduction("nll_loss", size_average, reduce, reduction)
    if input.ndim == 0:
        raise HandgradError("nll_loss: input must have a class dim, got a 0-d tensor")
    _class_index_checks("nll_loss", input, target, weight)
    return NLLLoss.apply(input, target, weight, ignore_index, reduction)


# ======================================================================= regression
def _broadcast_warning(op: str, input, target) -> None:
    if input.shape != target.shape:
        warnings.warn(
            f"{op}: using a target size ({tuple(target.shape)}) that is different to the "
            f"input size ({tuple(input.shape)}). This will likely lead to incorrect results "
            "due to broadcasting. Please ensure they have the same size.", stacklevel=3)


class _DifferenceLoss:
    """What the losses of d = input - target (broadcast like torch) share, mixed into
    their Functions: forward saves d; backward computes h dl/dd and unbroadcasts it to
    each input. Subclasses give `elementwise` (l(d)) and `derivative` (dl/dd).

    With an elementwise `weight` w (torch's: of the input's shape) the loss is w l(d);
    'mean' is sum_i w_i l_i / sum_i w_i for MSE and L1 (`mean_by_weights`) and
    sum_i w_i l_i / n for Huber, as torch has them. Gradients: dd = h w dl/dd, and
        dw_i = h l_i                      ('sum', 'none', Huber's 'mean': h = g / n)
        dw_i = g (l_i - L) / sum_j w_j    (MSE / L1 'mean', L the loss).
    """

    mean_by_weights = True

    @staticmethod
    def elementwise(d, ctx):  # l(d)
        raise NotImplementedError

    @staticmethod
    def derivative(d, ctx):  # dl/dd
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, input, target, weight=None, reduction="mean", *options):
        d = input - target
        ctx.options = options
        loss = cls.elementwise(d, ctx)
        ctx.shapes = (input.shape, target.shape, reduction)
        if weight is None:
            ctx.save_for_backward(d, None)
            return _reduce(loss, reduction)
        weighted = loss * weight
        ctx.save_for_backward(d, weight)
        if reduction == "mean" and cls.mean_by_weights:
            ctx.weight_sum = weight.sum()
            ctx.value = weighted.sum() / ctx.weight_sum
            return ctx.value
        return _reduce(weighted, reduction)

    @classmethod
    def backward(cls, ctx, g):
        d, weight = ctx.saved_tensors
        shape_x, shape_t, reduction = ctx.shapes
        by_weights = weight is not None and reduction == "mean" and cls.mean_by_weights
        h = g / ctx.weight_sum if by_weights else _scale(g, reduction, d.numel())
        grad = cls.derivative(d, ctx) * (h if weight is None else h * weight)
        need_x, need_t, need_w = ctx.needs_input_grad[:3]
        dw = None
        if need_w:
            loss = cls.elementwise(d, ctx)
            dw = unbroadcast((loss - ctx.value) * h if by_weights else loss * h, weight.shape)
        return ((unbroadcast(grad, shape_x) if need_x else None),
                (unbroadcast(-grad, shape_t) if need_t else None), dw,
                *(None,) * (1 + len(ctx.options)))


class MSELoss(_DifferenceLoss, Function):
    """l = (x - t)**2;  dx = 2 (x - t) h,  dt = -dx."""

    name = "mse_loss"

    @staticmethod
    def elementwise(d, ctx):
        return d * d

    @staticmethod
    def derivative(d, ctx):
        return 2 * d


class L1Loss(_DifferenceLoss, Function):
    """l = |x - t|;  dx = sign(x - t) h (0 where x == t, as torch),  dt = -dx."""

    name = "l1_loss"

    @staticmethod
    def elementwise(d, ctx):
        return d.abs()

    @staticmethod
    def derivative(d, ctx):
        return torch.sign(d)


class SmoothL1Loss(_DifferenceLoss, Function):
    """With d = x - t:  l = d**2 / (2 beta) where |d| < beta, else |d| - beta / 2.
    dx = h d / beta where |d| < beta, else h sign(d);  dt = -dx.  beta = 0 is L1."""

    name = "smooth_l1_loss"

    @staticmethod
    def elementwise(d, ctx):
        (beta,) = ctx.options
        if beta == 0:
            return d.abs()
        a = d.abs()
        return torch.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)

    @staticmethod
    def derivative(d, ctx):
        (beta,) = ctx.options
        if beta == 0:
            return torch.sign(d)
        return torch.where(d.abs() < beta, d / beta, torch.sign(d))


class HuberLoss(_DifferenceLoss, Function):
    """With d = x - t:  l = d**2 / 2 where |d| < delta, else delta (|d| - delta / 2)
    (smooth L1 times delta).  dl/dd = clamp(d, -delta, delta);  dx = h dl/dd,  dt = -dx.
    A weighted 'mean' divides by the number of elements, not by the weights' sum."""

    name = "huber_loss"
    mean_by_weights = False

    @staticmethod
    def elementwise(d, ctx):
        (delta,) = ctx.options
        a = d.abs()
        return torch.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))

    @staticmethod
    def derivative(d, ctx):
        (delta,) = ctx.options
        return d.clamp(-delta, delta)


def _elementwise_weight(op: str, input, weight) -> None:
    if weight is not None and weight.shape != input.shape:
        raise ValueError(
            f"{op}: Weights and input must have the same size: weight "
            f"{tuple(weight.shape)}, input {tuple(input.shape)}")


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """mean((input - target)**2) (or 'sum' / 'none'); with an elementwise weight of the
    input's shape, sum(w (input - target)**2) / sum(w)."""
    _broadcast_warning("mse_loss", input, target)
    reduction = legacy_reduction("mse_loss", size_average, reduce, reduction)
    _elementwise_weight("mse_loss", input, weight)
    return MSELoss.apply(input, target, weight, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """mean(|input - target|) (or 'sum' / 'none'); weighted as mse_loss."""
    _broadcast_warning("l1_loss", input, target)
    reduction = legacy_reduction("l1_loss", size_average, reduce, reduction)
    _elementwise_weight("l1_loss", input, weight)
    return L1Loss.apply(input, target, weight, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta=1.0):
    """Quadratic below |d| = beta, linear above (Huber loss divided by beta)."""
    reduction = legacy_reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise HandgradError(f"smooth_l1_loss: does not support negative values for beta, "
                            f"got {beta}")
    _broadcast_warning("smooth_l1_loss", input, target)
    return SmoothL1Loss.apply(input, target, None, reduction, float(beta))


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """Quadratic below |d| = delta, linear above; an elementwise weight of the input's
    shape multiplies each term ('mean' still divides by the number of elements)."""
    _broadcast_warning("huber_loss", input, target)
    _check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise HandgradError(f"huber_loss: does not support non-positive values for delta, "
                            f"got {delta}")
    _elementwise_weight("huber_loss", input, weight)
    return HuberLoss.apply(input, target, weight, reduction, float(delta))


# =========================================================================== binary
_LOG_FLOOR = -100.0  # torch clamps log(p) and log(1 - p) from below at -100


class BinaryCrossEntropy(Function):
    """Binary cross-entropy of probabilities p against targets t in [0, 1]:
        l = -w (t log p + (1 - t) log(1 - p))     (each log clamped at >= -100, as torch)
        dp = h w (p - t) / max(p (1 - p), 1e-12)
        dt = -h w (log p - log(1 - p)).
    """

    name = "binary_cross_entropy"

    @staticmethod
    def forward(ctx, p, t, weight=None, reduction="mean"):
        log_p = torch.log(p).clamp_(min=_LOG_FLOOR)
        log_q = torch.log1p(-p).clamp_(min=_LOG_FLOOR)
        loss = -(t * log_p + (1 - t) * log_q)
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(p, t, weight)
        ctx.reduction = reduction
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        p, t, weight = ctx.saved_tensors
        h = _scale(g, ctx.reduction, p.numel())
        if weight is not None:
            h = h * weight
        need_p, need_t = ctx.needs_input_grad[:2]
        dp = dt = None
        if need_p:
            dp = h * (p - t) / (p * (1 - p)).clamp_(min=1e-12)
        if need_t:
            dt = -h * (torch.log(p).clamp_(min=_LOG_FLOOR)
                       - torch.log1p(-p).clamp_(min=_LOG_FLOOR))
        return dp, dt, None, None


class BinaryCrossEntropyWithLogits(Function):
    """Binary cross-entropy of logits x (sigmoid folded in, numerically stable):
        l = w ((1 - t) x + c softplus(-x)),   c = 1 + (pos_weight - 1) t  (c = 1 without)
    which is -w (pos_weight t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))). With
    softplus(-x) = max(-x, 0) + log(1 + e**-|x|), the large terms are combined first:
        l = w ((1 - t) x  if x >= 0,  else  -pos_weight t x) + w c log(1 + e**-|x|)
    so a very negative x with a small t keeps its loss (float32 x = -30, t = 0 gives 9e-14;
    float16 x = -6e4, t = 1e-3 gives 60.03 (exactly 60.02), where (1 - t) x + softplus(-x)
    gives 0 and 64).
    Gradients:
        dx = h w ((1 - t) - c sigmoid(-x))     (= h w (sigmoid(x) - t) without pos_weight)
        dt = h w ((pos_weight - 1) softplus(-x) - x)     (= -h w x without pos_weight).
    """

    name = "binary_cross_entropy_with_logits"

    @staticmethod
    def forward(ctx, x, t, weight=None, pos_weight=None, reduction="mean"):
        tail = torch.log1p(torch.exp(-x.abs()))  # log(1 + e**-|x|), in [0, log 2]
        if pos_weight is None:
            loss = torch.where(x >= 0, (1 - t) * x, -t * x) + tail
        else:
            loss = (torch.where(x >= 0, (1 - t) * x, -(pos_weight * t) * x)
                    + (1 + (pos_weight - 1) * t) * tail)
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(x, t, weight, pos_weight)
        ctx.shape_reduction = (torch.broadcast_shapes(x.shape, t.shape), reduction)
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        x, t, weight, pos_weight = ctx.saved_tensors
        shape, reduction = ctx.shape_reduction
        h = _scale(g, reduction, shape.numel())
        if weight is not None:
            h = h * weight
        need_x, need_t = ctx.needs_input_grad[:2]
        dx = dt = None
        if need_x:
            if pos_weight is None:
                dx = (torch.sigmoid(x) - t) * h
            else:
                dx = ((1 - t) - (1 + (pos_weight - 1) * t) * torch.sigmoid(-x)) * h
            dx = unbroadcast(dx, x.shape)
        if need_t:
            if pos_weight is None:
                dt = -x * h
            else:
                softplus_neg = torch.clamp_min(-x, 0) + torch.log1p(torch.exp(-x.abs()))
                dt = ((pos_weight - 1) * softplus_neg - x) * h
            dt = unbroadcast(dt, t.shape)
        return dx, dt, None, None, None


class HingeLoss(Function):
    """Hinge loss of scores s against labels y in {-1, +1}:
        l = max(0, margin - y s);   ds = -h y,  dy = -h s  where margin - y s > 0, else 0.
    """

    name = "hinge_loss"

    @staticmethod
    def forward(ctx, scores, targets, margin=1.0, reduction="mean"):
        slack = margin - targets * scores
        ctx.save_for_backward(scores, targets, slack > 0)
        ctx.shape_reduction = (slack.shape, reduction)
        return _reduce(slack.clamp_(min=0), reduction)

    @staticmethod
    def backward(ctx, g):
        scores, targets, active = ctx.saved_tensors
        shape, reduction = ctx.shape_reduction
        h = -_scale(g, reduction, shape.numel()) * active
        need_s, need_y = ctx.needs_input_grad[:2]
        ds = unbroadcast(h * targets, scores.shape) if need_s else None
        dy = unbroadcast(h * scores, targets.shape) if need_y else None
        return ds, dy, None, None


def _same_size(op: str, input, target, **weights) -> None:
    """Target of the input's shape; weights that broadcast to it (not beyond: torch
    refuses what would silently average the loss over copies)."""
    if target.shape != input.shape:
        raise ValueError(
            f"{op}: using a target size ({tuple(target.shape)}) that is different to the "
            f"input size ({tuple(input.shape)}) is not supported; give them the same shape")
    for name, weight in weights.items():
        if weight is None:
            continue
        try:
            fits = torch.broadcast_shapes(weight.shape, input.shape) == input.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise HandgradError(
                f"{op}: {name} of shape {tuple(weight.shape)} does not broadcast to the "
                f"input's shape {tuple(input.shape)}")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-w (t log p + (1 - t) log(1 - p)) for probabilities p (after a sigmoid)."""
    reduction = legacy_reduction("binary_cross_entropy", size_average, reduce, reduction)
    _same_size("binary_cross_entropy", input, target, weight=weight)
    if input.device.type == "cpu" and ((input.data < 0) | (input.data > 1)).any():
        raise HandgradError(
            "binary_cross_entropy: all elements of input should be between 0 and 1 (they "
            "are probabilities); for raw scores use binary_cross_entropy_with_logits")
    return BinaryCrossEntropy.apply(input, target, weight, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable node; pos_weight weighs positives
    (broadcast along the last dim, one per class)."""
    reduction = legacy_reduction("binary_cross_entropy_with_logits", size_average, reduce,
                                 reduction)
    _same_size("binary_cross_entropy_with_logits", input, target, weight=weight,
               pos_weight=pos_weight)
    return BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight, reduction)


def hinge_loss(scores, targets, margin=1.0, reduction="mean"):
    """mean(max(0, margin - targets * scores)) for labels targets in {-1, +1} (the SVM
    loss; torch's HingeEmbeddingLoss is a different loss, of distances). A 0 label, the
    usual slip (0/1 labels), is refused on the CPU (checking on a GPU would wait for the
    device); other values are taken as given, so the labels can be differentiated."""
    _check_reduction("hinge_loss", reduction)
    if targets.device.type == "cpu" and not targets.data.all():
        raise HandgradError(
            f"hinge_loss: labels must be -1 or +1, got 0 (targets {describe(targets)}); "
            "for 0/1 labels y pass 2 * y - 1")
    return HingeLoss.apply(scores, targets, margin, reduction)


# ===================================================================== distributions
def _softplus(z):
    """log(1 + e**z) without overflow: max(z, 0) + log(1 + e**-|z|)."""
    return z.clamp(min=0) + torch.log1p(torch.exp(-z.abs()))


def _reduce_with(loss, reduction, denominator):
    """'mean' as loss.sum() / denominator (torch's batchmean divides by the batch)."""
    if reduction == "mean":
        return loss.sum() / denominator
    return loss.sum() if reduction == "sum" else loss


class KLDivLoss(Function):
    """Kullback-Leibler divergence of a target distribution from log-probabilities x.

        l = t (log t - x) = xlogy(t, t) - t x          (target as probabilities)
        l = e**t (t - x)                               (log_target: target as log-probs)
    'mean' divides by the number of elements, 'batchmean' by the batch size (dim 0).
    Gradients, h the gradient reaching l:
        dx = -h t,          dt = h (log t + 1 - x)       (probabilities)
        dx = -h e**t,       dt = h e**t (t - x + 1)       (log_target)
    At t = 0, torch's xlogy backward makes dt = h (0 + t / t - x), nan; so does this.
    """

    name = "kl_div"

    @staticmethod
    def forward(ctx, x, t, log_target=False, reduction="mean", denominator=1):
        if log_target:
            p = torch.exp(t)
            loss = p * (t - x)
        else:
            p = t
            loss = torch.xlogy(t, t) - t * x
        ctx.save_for_backward(x, t, p)
        ctx.options = (log_target, reduction, denominator, loss.shape)
        return _reduce_with(loss, reduction, denominator)

    @staticmethod
    def backward(ctx, g):
        x, t, p = ctx.saved_tensors
        log_target, reduction, denominator, shape = ctx.options
        h = g / denominator if reduction == "mean" else g
        need_x, need_t = ctx.needs_input_grad[:2]
        dx = dt = None
        if need_x:
            dx = -(p * h).expand(shape)
        if need_t:
            if log_target:
                dt = p * (t - x + 1) * h
            else:
                dt = (torch.where(t == 0, 0, torch.log(t)) + t / t - x) * h
        return dx, dt, None, None, None


class PoissonNLLLoss(Function):
    """Negative log-likelihood of a Poisson distribution of rate r for counts t:
        l = e**x - t x                  (log_input: x = log r)
        l = x - t log(x + eps)          (x = r)
    plus, with `full`, Stirling's term s(t) = t log t - t + log(2 pi t) / 2 where t > 1.
    Gradients:
        dx = h (e**x - t),         dt = h (-x + s'(t))           (log_input)
        dx = h (1 - t / (x + eps)),  dt = h (-log(x + eps) + s'(t))
    with s'(t) = log t + 1 / (2 t) where t > 1, else 0.
    """

    name = "poisson_nll_loss"

    @staticmethod
    def forward(ctx, x, t, log_input=True, full=False, eps=1e-8, reduction="mean"):
        if log_input:
            rate = torch.exp(x)
            loss = rate - t * x
        else:
            rate = x + eps
            loss = x - t * torch.log(rate)
        if full:
            stirling = t * torch.log(t) - t + 0.5 * torch.log(2 * math.pi * t)
            loss = loss + stirling.masked_fill(t <= 1, 0)
        ctx.save_for_backward(x, t, rate)
        ctx.options = (log_input, full, reduction, loss.shape)
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        x, t, rate = ctx.saved_tensors
        log_input, full, reduction, shape = ctx.options
        h = _scale(g, reduction, shape.numel())
        need_x, need_t = ctx.needs_input_grad[:2]
        dx = dt = None
        if need_x:
            dx = (rate - t) * h if log_input else (1 - t / rate) * h
        if need_t:
            dt = -x if log_input else -torch.log(rate)
            if full:
                dt = dt + (torch.log(t) + 0.5 / t).masked_fill(t <= 1, 0)
            dt = dt * h
        return dx, dt, None, None, None, None


class GaussianNLLLoss(Function):
    """Negative log-likelihood of a Gaussian of mean x and variance v for targets t:
        l = (log v + (x - t)**2 / v) / 2   (+ log(2 pi) / 2 with `full`)
    where v = max(var, eps). As torch clamps a copy of var under no_grad, the clamp
    passes the gradient through unchanged. Gradients:
        dx = h (x - t) / v,   dt = -dx,   dvar = h (1 / v - (x - t)**2 / v**2) / 2.
    """

    name = "gaussian_nll_loss"

    @staticmethod
    def forward(ctx, x, t, var, full=False, eps=1e-6, reduction="mean"):
        v = var.clamp(min=eps) if isinstance(var, torch.Tensor) \
            else torch.full_like(x, max(var, eps))  # a float var: torch's var * ones
        d = x - t
        loss = 0.5 * (torch.log(v) + d * d / v)
        if full:
            loss = loss + 0.5 * math.log(2 * math.pi)
        ctx.save_for_backward(d, v)
        ctx.options = (reduction, loss.shape)
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        d, v = ctx.saved_tensors
        reduction, shape = ctx.options
        h = _scale(g, reduction, shape.numel())
        need_x, need_t, need_v = ctx.needs_input_grad[:3]
        dx = (d / v * h).expand(shape) if need_x or need_t else None
        dv = 0.5 * (1 - d * d / v) / v * h if need_v else None  # (a float var: no grad)
        return (dx if need_x else None), (-dx if need_t else None), dv, None, None, None


# ====================================================================== margins
class SoftMarginLoss(Function):
    """Two-class logistic loss of scores x against labels y (+-1):
        l = log(1 + e**(-y x)),   dx = -h y sigmoid(-y x)   (y has no gradient in torch).
    Computed as softplus(-y x) = max(-y x, 0) + log(1 + e**-|y x|) (no overflow, where
    torch's log1p(exp(-y x)) gives inf past |x| ~ 88 in float32)."""

    name = "soft_margin_loss"

    @staticmethod
    def forward(ctx, x, y, reduction="mean"):
        z = -y * x
        ctx.save_for_backward(y, z)
        ctx.reduction = reduction
        return _reduce(_softplus(z), reduction)

    @staticmethod
    def backward(ctx, g):
        y, z = ctx.saved_tensors
        return -torch.sigmoid(z) * _scale(g, ctx.reduction, z.numel()) * y, None, None


class MarginRankingLoss(Function):
    """Ranking loss of two scores x1, x2 and a label y (+1: x1 should rank higher):
        l = max(0, -y (x1 - x2) + margin)
        dx1 = -h y a,   dx2 = h y a,   dy = -h (x1 - x2) a
    with a = [-y (x1 - x2) + margin >= 0] (torch's clamp_min passes the gradient at 0)."""

    name = "margin_ranking_loss"

    @staticmethod
    def forward(ctx, x1, x2, y, margin=0.0, reduction="mean"):
        difference = x1 - x2
        z = margin - y * difference
        ctx.save_for_backward(difference, y, z >= 0)
        ctx.options = (reduction, z.shape)
        return _reduce(z.clamp_(min=0), reduction)

    @staticmethod
    def backward(ctx, g):
        difference, y, active = ctx.saved_tensors
        reduction, shape = ctx.options
        h = _scale(g, reduction, shape.numel()) * active
        need_1, need_2, need_y = ctx.needs_input_grad[:3]
        dx1 = -h * y if need_1 or need_2 else None
        dy = -h * difference if need_y else None
        return (dx1 if need_1 else None), (-dx1 if need_2 else None), dy, None, None


class HingeEmbeddingLoss(Function):
    """Loss of distances x for pairs labelled y = 1 (similar) or -1 (dissimilar):
        l = x [y != -1] + max(0, margin - x) [y != 1]
    (torch's form: a label that is neither gets both terms). y has no gradient.
        dx = h ([y != -1] - [y != 1] [margin - x >= 0])."""

    name = "hinge_embedding_loss"

    @staticmethod
    def forward(ctx, x, y, margin=1.0, reduction="mean"):
        slack = margin - x
        self_term, margin_term = y != -1, y != 1
        loss = (torch.where(margin_term, slack.clamp(min=0), 0)
                + torch.where(self_term, x, 0))
        ctx.save_for_backward(self_term, margin_term & (slack >= 0))
        ctx.options = (reduction, loss.shape, loss.dtype)
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        self_term, active = ctx.saved_tensors
        reduction, shape, dtype = ctx.options
        h = _scale(g, reduction, shape.numel())
        dx = (self_term.to(dtype) - active.to(dtype)) * h
        return dx, None, None, None


def _norm_derivative(v, norm, p):
    """d ||v||_p / dv along the last dim, torch's convention where the norm is 0 (0)."""
    if p == 0:
        return torch.zeros_like(v)
    if p == 1:
        return torch.sign(v)
    n = norm.unsqueeze(-1)
    if math.isinf(p):
        hit = v.abs() == n
        return torch.sign(v) * hit / hit.sum(-1, keepdim=True)
    if p == 2:
        return v / torch.where(n == 0, 1, n) * (n != 0)
    scaled = torch.sign(v) * (v.abs() / torch.where(n == 0, 1, n)) ** (p - 1)
    return torch.where((n == 0) | (v == 0), 0, scaled)


def _distance(x1, x2, p, eps):
    """(v, ||v||_p) for v = x1 - x2 + eps over the last dim (torch's pairwise_distance)."""
    v = x1 - x2 + eps
    return v, torch.linalg.vector_norm(v, ord=p, dim=-1)


class TripletMarginLoss(Function):
    """Triplet loss of an anchor a, a positive p and a negative n (vectors on the last
    dim), with d(x, y) = ||x - y + eps||_q (torch's pairwise_distance, q = the `p` arg):
        l = max(0, margin + d(a, p) - d_neg),   d_neg = d(a, n), or with `swap`
            d_neg = min(d(a, n), d(p, n)) (half the gradient to each at a tie, as torch).
    With u(x, y) = d d(x, y) / d(x - y) (sign(v) |v|**(q-1) / d**(q-1), 0 where d = 0),
    b = h [margin + d(a, p) - d_neg >= 0], and the min's shares s_an, s_pn:
        da = b (u(a, p) - s_an u(a, n)),   dp = -b (u(a, p) + s_pn u(p, n)),
        dn = b (s_an u(a, n) + s_pn u(p, n)).
    """

    name = "triplet_margin_loss"

    @staticmethod
    def forward(ctx, a, p, n, margin=1.0, norm=2.0, eps=1e-6, swap=False,
                reduction="mean"):
        v_ap, d_ap = _distance(a, p, norm, eps)
        v_an, d_an = _distance(a, n, norm, eps)
        if swap:
            v_pn, d_pn = _distance(p, n, norm, eps)
            d_neg = torch.minimum(d_an, d_pn)
        else:
            v_pn = d_pn = None
            d_neg = d_an
        z = margin + d_ap - d_neg
        ctx.save_for_backward(v_ap, d_ap, v_an, d_an, v_pn, d_pn, z >= 0)
        ctx.options = (norm, reduction, z.shape)
        return _reduce(z.clamp(min=0), reduction)

    @staticmethod
    def backward(ctx, g):
        v_ap, d_ap, v_an, d_an, v_pn, d_pn, active = ctx.saved_tensors
        norm, reduction, shape = ctx.options
        b = (_scale(g, reduction, shape.numel()) * active).unsqueeze(-1)
        pos = b * _norm_derivative(v_ap, d_ap, norm)
        if v_pn is None:
            neg_a, neg_p = b * _norm_derivative(v_an, d_an, norm), 0
        else:
            share_an = torch.where(d_an < d_pn, 1.0, torch.where(d_an == d_pn, 0.5, 0.0))
            neg_a = b * share_an.unsqueeze(-1) * _norm_derivative(v_an, d_an, norm)
            neg_p = b * (1 - share_an).unsqueeze(-1) * _norm_derivative(v_pn, d_pn, norm)
        need_a, need_p, need_n = ctx.needs_input_grad[:3]
        return ((pos - neg_a) if need_a else None), ((-pos - neg_p) if need_p else None), \
            ((neg_a + neg_p) if need_n else None), None, None, None, None, None


_COSINE_EPS = 1e-12  # torch adds it to each squared norm


class CosineEmbeddingLoss(Function):
    """Loss of the cosine of x1, x2 (vectors on the last dim) for labels y = +-1:
        c = x1 . x2 / sqrt((|x1|**2 + e) (|x2|**2 + e)),   e = 1e-12 (torch's)
        l = (1 - c) [y == 1] + max(0, c - margin) [y == -1]      (0 for other labels)
    With m_i = |x_i|**2 + e and D = sqrt(m1 m2), dc/dx1 = x2 / D - c x1 / m1 (and the
    same with 1 and 2 exchanged), and k = h (-[y == 1] + [y == -1] [c - margin >= 0]):
        dx1 = k dc/dx1,   dx2 = k dc/dx2;  y has no gradient.
    """

    name = "cosine_embedding_loss"

    @staticmethod
    def forward(ctx, x1, x2, y, margin=0.0, reduction="mean"):
        m1 = (x1 * x1).sum(-1) + _COSINE_EPS
        m2 = (x2 * x2).sum(-1) + _COSINE_EPS
        denominator = torch.sqrt(m1 * m2)
        c = (x1 * x2).sum(-1) / denominator
        similar, dissimilar = y == 1, y == -1
        loss = torch.where(similar, 1 - c, 0) + torch.where(dissimilar,
                                                            (c - margin).clamp(min=0), 0)
        slope = dissimilar & (c - margin >= 0)
        ctx.save_for_backward(x1, x2, m1, m2, denominator, c,
                              slope.to(c.dtype) - similar.to(c.dtype))
        ctx.options = (reduction, loss.shape)
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        x1, x2, m1, m2, denominator, c, slope = ctx.saved_tensors
        reduction, shape = ctx.options
        k = (_scale(g, reduction, shape.numel()) * slope).unsqueeze(-1)
        need_1, need_2 = ctx.needs_input_grad[:2]
        d, c_ = denominator.unsqueeze(-1), c.unsqueeze(-1)
        dx1 = k * (x2 / d - c_ * x1 / m1.unsqueeze(-1)) if need_1 else None
        dx2 = k * (x1 / d - c_ * x2 / m2.unsqueeze(-1)) if need_2 else None
        return dx1, dx2, None, None, None


class MultiMarginLoss(Function):
    """Multi-class hinge loss of scores x_n (C classes, last dim) for a class y_n:
        l_n = sum_{i != y_n} w[y_n] max(0, margin - x_n[y_n] + x_n[i])**p / C,  p = 1, 2
    With z_i = margin - x_n[y_n] + x_n[i] and r_i = h_n w[y_n] p z_i**(p-1) / C where
    z_i > 0 and i != y_n (else 0), the gradient is dx_n[i] = r_i, dx_n[y_n] = -sum_i r_i.
    """

    name = "multi_margin_loss"

    @staticmethod
    def forward(ctx, x, y, p=1, margin=1.0, weight=None, reduction="mean"):
        shape = x.shape
        classes = shape[-1] if x.ndim else 1
        rows = x.reshape(-1, classes)
        index = y.reshape(-1, 1)
        z = margin - rows.gather(1, index) + rows  # (N, C)
        active = (z > 0).scatter_(1, index, False)
        terms = torch.where(active, z, 0)
        if p == 2:
            terms = terms * terms
        w = None if weight is None else weight[index]  # w[y_n], (N, 1)
        if w is not None:
            terms = terms * w
        loss = terms.sum(1) / classes
        if x.ndim < 2:
            loss = loss.reshape(())
        ctx.save_for_backward(index, active, z if p == 2 else None, w)
        ctx.options = (p, classes, reduction, shape, loss.shape)
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        index, active, z, w = ctx.saved_tensors
        p, classes, reduction, shape, loss_shape = ctx.options
        h = _scale(g, reduction, loss_shape.numel()).reshape(-1, 1) / classes
        r = active * h if p == 1 else torch.where(active, 2 * z, 0) * h
        if w is not None:
            r = r * w
        r = r.scatter_add(1, index, -r.sum(1, keepdim=True))
        return r.reshape(shape), None, None, None, None, None


class MultiLabelSoftMarginLoss(Function):
    """One-versus-all logistic loss of scores x over C labels (last dim), targets t:
        l_n = sum_c w_c (t_c softplus(-x_c) + (1 - t_c) softplus(x_c)) / C
            = sum_c w_c (softplus(x_c) - t_c x_c) / C
    Gradients, with k = h_n w_c / C:
        dx = k (sigmoid(x) - t),   dt = -k x,   dw = h_n (softplus(x) - t x) / C.
    """

    name = "multilabel_soft_margin_loss"

    @staticmethod
    def forward(ctx, x, t, weight=None, reduction="mean"):
        elementwise = _softplus(x) - t * x
        if weight is not None:
            elementwise_w = elementwise * weight
        else:
            elementwise_w = elementwise
        classes = x.shape[-1]
        loss = elementwise_w.sum(x.ndim - 1) / classes
        ctx.save_for_backward(x, t, weight, elementwise if weight is not None else None)
        ctx.options = (reduction, loss.shape, classes, x.ndim - 1)
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        x, t, weight, elementwise = ctx.saved_tensors
        reduction, shape, classes, dim = ctx.options
        h = _scale(g, reduction, shape.numel()) / classes
        if reduction == "none":
            h = h.unsqueeze(dim)
        k = h if weight is None else h * weight
        need_x, need_t, need_w = ctx.needs_input_grad[:3]
        dx = (torch.sigmoid(x) - t) * k if need_x else None
        dt = -x * k if need_t else None
        dw = elementwise * h if need_w else None
        return dx, dt, dw, None


# ============================================================ the functional forms
def _torch_reduction(op: str, size_average, reduce, reduction: str) -> str:
    """legacy_reduction with torch's message for a bad name (a ValueError)."""
    if size_average is None and reduce is None and reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; use "
                         "'mean', 'sum' or 'none'")
    return legacy_reduction(op, size_average, reduce, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target=False):
    """KL(target || exp(input)) elementwise, for log-probabilities `input`; the target
    holds probabilities (or log-probabilities with log_target=True). reduction may be
    'batchmean' (the sum over the batch size: the KL divergence of each row's
    distribution, averaged); 'mean' divides by every element and warns, as torch."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction("kl_div", size_average, reduce, "mean")
    elif reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.", stacklevel=2)
    if reduction == "batchmean":
        return KLDivLoss.apply(input, target, log_target, "mean",
                               input.shape[0] if input.ndim else 1)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"kl_div: {reduction!r} is not a valid value for reduction; use "
                         "'batchmean', 'mean', 'sum' or 'none'")
    count = torch.broadcast_shapes(input.shape, target.shape).numel()
    return KLDivLoss.apply(input, target, log_target, reduction, count)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """Poisson negative log-likelihood: exp(input) - target * input for log-rates (or
    input - target * log(input + eps) for rates); `full` adds Stirling's approximation
    of log(target!) where target > 1."""
    reduction = _torch_reduction("poisson_nll_loss", size_average, reduce, reduction)
    return PoissonNLLLoss.apply(input, target, bool(log_input), bool(full), float(eps),
                                reduction)


def _gaussian_variance(input, var):
    """torch's shape rules for var: the input's shape; the input's shape without its last
    dim (then unsqueezed); or the input's dims with exactly one of them 1."""
    if var.shape == input.shape:
        return var
    if tuple(var.shape) == tuple(input.shape[:-1]):
        return var.unsqueeze(-1)
    if var.ndim == input.ndim and sum(v for x, v in zip(input.shape, var.shape)
                                      if x != v) == 1:
        return var
    raise ValueError(
        f"gaussian_nll_loss: var is of incorrect size: {tuple(var.shape)} for an input of "
        f"shape {tuple(input.shape)}; give it the input's shape, the input's shape without "
        "its last dim, or the input's shape with one dim 1")


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log-likelihood of targets under mean `input` and variance `var`
    (a tensor broadcast as torch allows, or a float); var is clamped at eps with its
    gradient passed through, as torch does."""
    if isinstance(var, float):
        if var < 0:
            raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    elif not hasattr(var, "shape"):
        raise TypeError(f"gaussian_nll_loss: var must be a tensor or a float, got "
                        f"{type(var).__name__}")
    else:
        if var.device.type == "cpu" and bool((var.data < 0).any()):
            raise ValueError("gaussian_nll_loss: var has negative entry/entries")
        var = _gaussian_variance(input, var)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"gaussian_nll_loss: {reduction!r} is not valid; use 'mean', 'sum' "
                         "or 'none'")
    return GaussianNLLLoss.apply(input, target, var, bool(full), float(eps), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-target * input)) for labels +-1, averaged over every element."""
    reduction = _torch_reduction("soft_margin_loss", size_average, reduce, reduction)
    if getattr(target, "requires_grad", False):
        raise HandgradError("soft_margin_loss: is not differentiable with respect to the "
                            "target (as in torch); pass target.detach()")
    shape = torch.broadcast_shapes(input.shape, target.shape)
    if shape != input.shape:
        raise HandgradError(
            f"soft_margin_loss: the target of shape {tuple(target.shape)} must broadcast to "
            f"the input's shape {tuple(input.shape)} (the broadcast shape is "
            f"{tuple(shape)}); torch refuses it too")
    return SoftMarginLoss.apply(input, target, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    """max(0, -target * (input1 - input2) + margin): target 1 means input1 should score
    higher than input2, -1 the opposite. The three tensors need the same number of dims."""
    reduction = _torch_reduction("margin_ranking_loss", size_average, reduce, reduction)
    if not input1.ndim == input2.ndim == target.ndim:
        raise HandgradError(
            f"margin_ranking_loss: All input tensors should have same dimension but got "
            f"sizes: input1: {tuple(input1.shape)}, input2: {tuple(input2.shape)}, target: "
            f"{tuple(target.shape)}")
    return MarginRankingLoss.apply(input1, input2, target, float(margin), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """input where target == 1, max(0, margin - input) where target == -1: a loss of
    distances (torch's; hinge_loss is the SVM loss of scores)."""
    reduction = _torch_reduction("hinge_embedding_loss", size_average, reduce, reduction)
    return HingeEmbeddingLoss.apply(input, target, float(margin), reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)) with the p-norm
    distance of the last dim; swap uses min(d(a, n), d(p, n)) as the negative's."""
    reduction = _torch_reduction("triplet_margin_loss", size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise HandgradError(
            "triplet_margin_loss: The anchor, positive, and negative tensors are expected to "
            f"have the same number of dimensions, but got: anchor {anchor.ndim}D, positive "
            f"{positive.ndim}D, and negative {negative.ndim}D inputs")
    return TripletMarginLoss.apply(anchor, positive, negative, float(margin), float(p),
                                   float(eps), bool(swap), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    """1 - cos(input1, input2) where target == 1, max(0, cos - margin) where -1: rows of
    (N, D) inputs with an (N,) target, or (D,) inputs with a 0-d target."""
    reduction = _torch_reduction("cosine_embedding_loss", size_average, reduce, reduction)
    if target.ndim not in (0, 1):
        raise HandgradError(
            f"cosine_embedding_loss: 0D or 1D target tensor expected, multi-target not "
            f"supported (got target {tuple(target.shape)})")
    want = target.ndim + 1
    if input1.ndim != want or input2.ndim != want:
        raise HandgradError(
            f"cosine_embedding_loss: {target.ndim}D target tensor expects {want}D input "
            f"tensors, but found inputs with sizes {list(input1.shape)} and "
            f"{list(input2.shape)}")
    return CosineEmbeddingLoss.apply(input1, input2, target, float(margin), reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """Multi-class hinge loss: sum over the wrong classes i of
    max(0, margin - input[y] + input[i])**p / C (p = 1 or 2), each weighted by weight[y]."""
    reduction = _torch_reduction("multi_margin_loss", size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 supported, got {p}")
    if weight is not None and weight.ndim != 1:
        raise ValueError(f"multi_margin_loss: weight must be one-dimensional, got shape "
                         f"{tuple(weight.shape)}")
    if input.ndim > 2 or (input.ndim and input.shape[-1] == 0):
        raise HandgradError(
            f"multi_margin_loss: Expected non-empty vector or matrix with optional 0-dim "
            f"batch size, but got: {list(input.shape)}")
    classes = input.shape[-1] if input.ndim else 1
    if target.dtype != torch.int64:
        raise HandgradError(f"multi_margin_loss: expected scalar type Long but found "
                            f"{target.dtype} for the target; use target.long()")
    rows = input.shape[0] if input.ndim == 2 else 1
    if target.numel() != rows or target.ndim > 1 or (input.ndim == 2 and target.ndim != 1):
        raise HandgradError(
            f"multi_margin_loss: target tensor should be 1-D with size equal to the number "
            f"of input samples (batch size). Expected target size [{rows}], but got "
            f"{list(target.shape)}. Input has shape {list(input.shape)}.")
    if weight is not None and weight.numel() != classes:
        raise HandgradError(f"multi_margin_loss: inconsistent weight size, expected "
                            f"{classes} but got {list(weight.shape)}")
    if target.device.type == "cpu" and target.numel() and \
            bool(((target.data < 0) | (target.data >= classes)).any()):
        raise HandgradError(f"multi_margin_loss: target out of range: class indices must "
                            f"be in [0, {classes}), got {target.data.flatten().tolist()}")
    return MultiMarginLoss.apply(input, target, int(p), float(margin), weight, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """Per-label logistic loss of scores against 0/1 targets, averaged over the C labels
    of the last dim (one loss per sample), each label weighted by weight."""
    if input.ndim == 0:
        raise IndexError("multilabel_soft_margin_loss: Dimension specified as -1 but tensor "
                         "has no dimensions (the input needs a label dim)")
    reduction = _torch_reduction("multilabel_soft_margin_loss", size_average, reduce,
                                 reduction)
    return MultiLabelSoftMarginLoss.apply(input, target, weight, reduction)
