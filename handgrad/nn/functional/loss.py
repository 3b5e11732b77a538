"""Loss functions, each one fused Function with a hand-derived backward.

Every loss takes torch's `reduction` ('mean', 'sum' or 'none'). Writing l_i for the
loss of element (or position) i and g for the upstream gradient, the backward of each
loss is d l_i / d input_i times the gradient that reaches l_i: g / n for 'mean' (n the
denominator of the mean), g for 'sum', g_i for 'none'. `_scale` builds that factor.

Class-index targets live on dim 1 of the input, (N, C, d1, d2, ...) with targets
(N, d1, d2, ...), or an unbatched (C,) input with a () target, as in torch.

Left out: the losses as modules (handgrad/nn/loss.py); KL divergence, CTC, margin
ranking, cosine and triplet losses.
"""

from __future__ import annotations

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
    each input. Subclasses give `elementwise` (l(d)) and `derivative` (dl/dd)."""

    @staticmethod
    def elementwise(d, ctx):  # l(d)
        raise NotImplementedError

    @staticmethod
    def derivative(d, ctx):  # dl/dd
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, input, target, reduction="mean", *options):
        d = input - target
        ctx.options = options
        ctx.save_for_backward(d)
        ctx.shapes = (input.shape, target.shape, reduction)
        return _reduce(cls.elementwise(d, ctx), reduction)

    @classmethod
    def backward(cls, ctx, g):
        (d,) = ctx.saved_tensors
        shape_x, shape_t, reduction = ctx.shapes
        grad = cls.derivative(d, ctx) * _scale(g, reduction, d.numel())
        need_x, need_t = ctx.needs_input_grad[:2]
        return ((unbroadcast(grad, shape_x) if need_x else None),
                (unbroadcast(-grad, shape_t) if need_t else None),
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


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """mean((input - target)**2) (or 'sum' / 'none')."""
    reduction = legacy_reduction("mse_loss", size_average, reduce, reduction)
    _broadcast_warning("mse_loss", input, target)
    return MSELoss.apply(input, target, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """mean(|input - target|) (or 'sum' / 'none')."""
    reduction = legacy_reduction("l1_loss", size_average, reduce, reduction)
    _broadcast_warning("l1_loss", input, target)
    return L1Loss.apply(input, target, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta=1.0):
    """Quadratic below |d| = beta, linear above (Huber loss divided by beta)."""
    reduction = legacy_reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    _broadcast_warning("smooth_l1_loss", input, target)
    return SmoothL1Loss.apply(input, target, reduction, float(beta))


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
