"""Registry entries for the fused layer-level Functions of handgrad.nn.functional: linear,
the losses, batch and layer norm, dropout, embedding, gather_gradients (module backward
hooks).

Each entry calls the public functional API with torch.nn.functional as the reference.
torch's nll_loss backward refuses non-contiguous inputs, so its reference gets
x.contiguous(). Float arguments that are not differentiated (class weights, running statistics,
pos_weight, +-1 labels) arrive as float64 extras and are cast to the input's dtype
inside the lambdas. Dropout is compared with its formula x * mask / (1 - p) under the
same seeded generator (torch draws CUDA masks with a different kernel).

Left out: the modules (tests/nn compares them with torch.nn, weights copied).
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.testing.registry import positive, real, register, uniform


def _classes(gen, shape, classes, ignore=None):
    """Class indices of `shape` in [0, classes); about 1 in 4 set to `ignore` if given."""
    target = torch.randint(0, classes, shape, generator=gen)
    if ignore is not None:
        target[torch.rand(shape, generator=gen) < 0.25] = ignore
    return target


def _target_shape(input_shape):
    """The class-index target's shape for an input of `input_shape` (classes on dim 1)."""
    return tuple(input_shape[:1]) + tuple(input_shape[2:]) if len(input_shape) > 1 else ()


def _class_count(input_shape):
    return input_shape[0] if len(input_shape) == 1 else input_shape[1]


def _as(x, like):
    return x.to(like.dtype)


# ============================================================== composed references
# The same math as each fused Function, written with handgrad primitives (elementwise
# ops, sum/mean/amax, matmul, index_select/gather, where, detach); the oracle checks the
# fused Function against these: values and input gradients, float64.
def _reduce(loss, reduction):
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def _log_softmax(x, dim):
    """log p = z - log(sum exp z), z = x - max(x): the max is a constant shift."""
    z = x - x.amax(dim, keepdim=True).detach()
    return z - z.exp().sum(dim, keepdim=True).log()


def _along_classes(v, x):
    """A (C,) vector shaped to multiply x's class dim 1: (1, C, 1, ...)."""
    return v.reshape(1, -1, *([1] * (x.ndim - 2)))


def _batched(loss):
    """Losses over an unbatched (C,) input run on (1, C), their target on (1,)."""
    def composed(x, target, *rest, reduction="mean", **options):
        if x.ndim == 1:
            out = loss(x.unsqueeze(0), target.unsqueeze(0), *rest, reduction=reduction,
                       **options)
            return out.squeeze(0) if reduction == "none" else out
        return loss(x, target, *rest, reduction=reduction, **options)
    return composed


@_batched
def _composed_class_index_loss(log_p, y, weight=None, ignore_index=-100, smoothing=0.0,
                               reduction="mean"):
    """l_n = w_{y_n} ((1 - eps) (-log p_{n, y_n}) + eps / C sum_c w_c (-log p_{n, c}))
    over the targets y_n != ignore_index; mean divides by sum_n w_{y_n}."""
    classes = log_p.shape[1]
    if weight is None:
        weight = hg.ones(classes, dtype=log_p.dtype, device=log_p.device)
    valid = y != ignore_index
    safe = hg.where(valid, y, 0)
    w_y = weight.index_select(0, safe.reshape(-1)).reshape(safe.shape) * valid
    nll = -log_p.gather(1, safe.unsqueeze(1)).squeeze(1) * w_y
    loss = (1 - smoothing) * nll
    if smoothing:
        smooth = -(log_p * _along_classes(weight, log_p)).sum(1) * valid
        loss = loss + smoothing / classes * smooth
    return loss.sum() / w_y.sum() if reduction == "mean" else _reduce(loss, reduction)


def _composed_cross_entropy(x, y, weight=None, reduction="mean", **options):
    dim = 0 if x.ndim == 1 else 1
    return _composed_class_index_loss(_log_softmax(x, dim), y, weight, reduction=reduction,
                                      **options)


@_batched
def _composed_cross_entropy_probabilities(x, t, weight=None, smoothing=0.0,
                                          reduction="mean"):
    """l_n = -sum_c w_c ((1 - eps) t_{n, c} + eps / C) log p_{n, c}; mean over n."""
    q = (1 - smoothing) * t + smoothing / x.shape[1]
    if weight is not None:
        q = q * _along_classes(weight, x)
    return _reduce(-(q * _log_softmax(x, 1)).sum(1), reduction)


def _composed_smooth_l1(x, t, beta=1.0, reduction="mean"):
    """|d| < beta: d^2 / (2 beta), else |d| - beta / 2 (beta = 0: |d|)."""
    d = x - t
    if beta == 0:
        return _reduce(d.abs(), reduction)
    return _reduce(hg.where(d.abs() < beta, 0.5 * d * d / beta, d.abs() - 0.5 * beta),
                   reduction)


def _composed_bce(p, t, weight=None, reduction="mean"):
    """-w (t log p + (1 - t) log(1 - p)), each log clamped at -100 as torch does."""
    loss = -(t * p.log().clamp(min=-100) + (1 - t) * (1 - p).log().clamp(min=-100))
    return _reduce(loss if weight is None else weight * loss, reduction)


def _composed_bce_with_logits(x, t, weight=None, pos_weight=None, reduction="mean"):
    """-w (pos_weight t log sigmoid(x) + (1 - t) log sigmoid(-x)), with
    log sigmoid(x) = -(max(-x, 0) + log(1 + exp(-|x|)))."""
    def log_sigmoid(z):
        return -((-z).clamp(min=0) + (1 + (-z.abs()).exp()).log())

    positive_term = t * log_sigmoid(x)
    if pos_weight is not None:
        positive_term = pos_weight * positive_term
    loss = -(positive_term + (1 - t) * log_sigmoid(-x))
    return _reduce(loss if weight is None else weight * loss, reduction)


def _composed_batch_norm(x, weight=None, bias=None, mean=None, var=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * w + b per channel (dim 1); training: the batch's
    mean and biased variance over every dim but 1, else the given running statistics."""
    dims = (0, *range(2, x.ndim))
    if mean is None:
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, keepdim=True, correction=0)
    else:
        mean, var = _along_classes(mean, x), _along_classes(var, x)
    out = (x - mean) * (var + eps).rsqrt()
    if weight is not None:
        out = out * _along_classes(weight, x) + _along_classes(bias, x)
    return out


def _composed_layer_norm(x, normalized_ndim, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * w + b over the last normalized_ndim dims."""
    dims = tuple(range(-normalized_ndim, 0))
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, correction=0)
    out = (x - mean) * (var + eps).rsqrt()
    return out if weight is None else out * weight + bias


def _composed_embedding(w, idx, padding_idx=None, scale_grad_by_freq=False):
    """Rows of w picked by idx. torch's gradient conventions are composed with detach,
    which keeps the value and changes the gradient: the padding row gets none, a row
    used k times gets its gradient divided by k."""
    rows = hg.arange(w.shape[0], device=w.device).reshape(-1, 1)
    if padding_idx is not None:
        keep = rows != padding_idx
        w = hg.where(keep, w, w.detach())
    if scale_grad_by_freq:
        counts = hg.Tensor(torch.bincount(idx.data.reshape(-1), minlength=w.shape[0])
                           .clamp(min=1).to(w.dtype)).reshape(-1, 1)
        w = w / counts + (w - w / counts).detach()
    return w.index_select(0, idx.reshape(-1)).reshape(*idx.shape, w.shape[1])


# ============================================================================ linear
register(
    "linear",
    fn=lambda x, w, b: HF.linear(x, w, b),
    ref=lambda x, w, b: TF.linear(x, w, b),
    composed=lambda x, w, b: x @ w.T + b,
    shapes=[((4, 5), (3, 5), (3,)), ((2, 3, 5), (4, 5), (4,)), ((5,), (3, 5), (3,)),
            ((2, 1, 3), (2, 3), (2,))],
    covers=(HF.Linear,),
)
register(
    "linear_no_bias",
    fn=lambda x, w: HF.linear(x, w),
    ref=lambda x, w: TF.linear(x, w),
    composed=lambda x, w: x @ w.T,
    shapes=[((4, 5), (3, 5)), ((2, 3, 5), (4, 5))],
    covers=(HF.Linear,),
)

# ============================================================================ losses
CE_SHAPES = [((6, 5),), ((3, 4, 2),), ((5,),), ((2, 3, 2, 2),)]


def _ce_targets(ignore=None):
    def extras(gen, shapes):
        shape = shapes[0]
        return (_classes(gen, _target_shape(shape), _class_count(shape), ignore),)
    return extras


register(
    "cross_entropy",
    fn=lambda x, y: HF.cross_entropy(x, y),
    ref=lambda x, y: TF.cross_entropy(x, y),
    composed=lambda x, y: _composed_cross_entropy(x, y),
    shapes=CE_SHAPES,
    extras=_ce_targets(),
    covers=(HF.CrossEntropy,),
)
for reduction in ("sum", "none"):
    register(
        f"cross_entropy_{reduction}",
        fn=lambda x, y, r=reduction: HF.cross_entropy(x, y, reduction=r),
        ref=lambda x, y, r=reduction: TF.cross_entropy(x, y, reduction=r),
        composed=lambda x, y, r=reduction: _composed_cross_entropy(x, y, reduction=r),
        shapes=CE_SHAPES,
        extras=_ce_targets(ignore=-100),
        covers=(HF.CrossEntropy,),
    )


def _ce_weighted_extras(gen, shapes):
    shape = shapes[0]
    classes = _class_count(shape)
    weight = 0.5 + torch.rand(classes, generator=gen, dtype=torch.float64)
    # keep one position of the batch valid so the weighted mean has a denominator
    target = _classes(gen, _target_shape(shape), classes, ignore=1)
    target.view(-1)[0] = 0
    return target, weight


for reduction in ("mean", "sum", "none"):
    register(
        f"cross_entropy_weight_ignore_smoothing_{reduction}",
        fn=lambda x, y, w, r=reduction: HF.cross_entropy(
            x, y, weight=_as(w, x), ignore_index=1, label_smoothing=0.2, reduction=r),
        ref=lambda x, y, w, r=reduction: TF.cross_entropy(
            x, y, weight=_as(w, x), ignore_index=1, label_smoothing=0.2, reduction=r),
        composed=lambda x, y, w, r=reduction: _composed_cross_entropy(
            x, y, _as(w, x), ignore_index=1, smoothing=0.2, reduction=r),
        shapes=CE_SHAPES,
        extras=_ce_weighted_extras,
        covers=(HF.CrossEntropy,),
    )
register(
    "cross_entropy_smoothing",
    fn=lambda x, y: HF.cross_entropy(x, y, label_smoothing=0.1),
    ref=lambda x, y: TF.cross_entropy(x, y, label_smoothing=0.1),
    composed=lambda x, y: _composed_cross_entropy(x, y, smoothing=0.1),
    shapes=CE_SHAPES,
    extras=_ce_targets(),
    covers=(HF.CrossEntropy,),
)
register(
    "cross_entropy_probabilities",
    fn=lambda x, t: HF.cross_entropy(x, t),
    ref=lambda x, t: TF.cross_entropy(x, t),
    composed=lambda x, t: _composed_cross_entropy_probabilities(x, t),
    shapes=[((6, 5), (6, 5)), ((3, 4, 2), (3, 4, 2)), ((5,), (5,))],
    domains=(real, uniform(0.0, 1.0)),
    covers=(HF.CrossEntropyProbabilities,),
)
for reduction in ("sum", "none"):
    register(
        f"cross_entropy_probabilities_weight_smoothing_{reduction}",
        fn=lambda x, t, w, r=reduction: HF.cross_entropy(
            x, t, weight=_as(w, x), label_smoothing=0.3, reduction=r),
        ref=lambda x, t, w, r=reduction: TF.cross_entropy(
            x, t, weight=_as(w, x), label_smoothing=0.3, reduction=r),
        composed=lambda x, t, w, r=reduction: _composed_cross_entropy_probabilities(
            x, t, _as(w, x), smoothing=0.3, reduction=r),
        shapes=[((6, 5), (6, 5)), ((3, 4, 2), (3, 4, 2))],
        domains=(real, uniform(0.0, 1.0)),
        extras=lambda gen, shapes: (0.5 + torch.rand(shapes[0][1], generator=gen,
                                                     dtype=torch.float64),),
        covers=(HF.CrossEntropyProbabilities,),
    )
for reduction in ("mean", "sum", "none"):
    register(
        f"nll_loss_{reduction}",
        fn=lambda x, y, w, r=reduction: HF.nll_loss(x, y, weight=_as(w, x), ignore_index=1,
                                                     reduction=r),
        ref=lambda x, y, w, r=reduction: TF.nll_loss(x.contiguous(), y, weight=_as(w, x),
                                                     ignore_index=1, reduction=r),
        composed=lambda x, y, w, r=reduction: _composed_class_index_loss(
            x, y, _as(w, x), ignore_index=1, reduction=r),
        shapes=CE_SHAPES,
        extras=_ce_weighted_extras,
        covers=(HF.NLLLoss,),
    )
register(
    "nll_loss",
    fn=lambda x, y: HF.nll_loss(x, y),
    ref=lambda x, y: TF.nll_loss(x.contiguous(), y),
    composed=lambda x, y: _composed_class_index_loss(x, y),
    shapes=CE_SHAPES,
    extras=_ce_targets(),
    covers=(HF.NLLLoss,),
)

PAIRS = [((4, 3), (4, 3)), ((5,), (5,)), ((2, 3, 2), (2, 3, 2))]
for name, ours, theirs, pointwise, cls in [
    ("mse_loss", HF.mse_loss, TF.mse_loss, lambda d: d * d, HF.MSELoss),
    ("l1_loss", HF.l1_loss, TF.l1_loss, lambda d: d.abs(), HF.L1Loss),
]:
    for reduction in ("mean", "sum", "none"):
        register(
            f"{name}_{reduction}",
            fn=lambda x, t, f=ours, r=reduction: f(x, t, reduction=r),
            ref=lambda x, t, f=theirs, r=reduction: f(x, t, reduction=r),
            composed=lambda x, t, f=pointwise, r=reduction: _reduce(f(x - t), r),
            shapes=PAIRS,
            covers=(cls,),
        )
for beta in (1.0, 0.5, 0.0):
    register(
        f"smooth_l1_loss_beta{beta}",
        fn=lambda x, t, b=beta: HF.smooth_l1_loss(x, t, beta=b),
        ref=lambda x, t, b=beta: TF.smooth_l1_loss(x, t, beta=b),
        composed=lambda x, t, b=beta: _composed_smooth_l1(x, t, beta=b),
        shapes=PAIRS,
        covers=(HF.SmoothL1Loss,),
    )
register(
    "smooth_l1_loss_none",
    fn=lambda x, t: HF.smooth_l1_loss(x, t, reduction="none", beta=0.7),
    ref=lambda x, t: TF.smooth_l1_loss(x, t, reduction="none", beta=0.7),
    composed=lambda x, t: _composed_smooth_l1(x, t, beta=0.7, reduction="none"),
    shapes=PAIRS,
    covers=(HF.SmoothL1Loss,),
)
for reduction in ("mean", "sum", "none"):
    register(
        f"binary_cross_entropy_{reduction}",
        fn=lambda p, t, w, r=reduction: HF.binary_cross_entropy(p, t, weight=_as(w, p),
                                                                reduction=r),
        ref=lambda p, t, w, r=reduction: TF.binary_cross_entropy(p, t, weight=_as(w, p),
                                                                 reduction=r),
        composed=lambda p, t, w, r=reduction: _composed_bce(p, t, _as(w, p), r),
        shapes=PAIRS,
        domains=(uniform(0.05, 0.95), uniform(0.0, 1.0)),
        extras=lambda gen, shapes: (positive(gen, shapes[0][-1:]),),
        covers=(HF.BinaryCrossEntropy,),
    )
register(
    "binary_cross_entropy",
    fn=lambda p, t: HF.binary_cross_entropy(p, t),
    ref=lambda p, t: TF.binary_cross_entropy(p, t),
    composed=lambda p, t: _composed_bce(p, t),
    shapes=PAIRS,
    domains=(uniform(0.05, 0.95), uniform(0.0, 1.0)),
    covers=(HF.BinaryCrossEntropy,),
)
register(
    "binary_cross_entropy_with_logits",
    fn=lambda x, t: HF.binary_cross_entropy_with_logits(x, t),
    ref=lambda x, t: TF.binary_cross_entropy_with_logits(x, t),
    composed=lambda x, t: _composed_bce_with_logits(x, t),
    shapes=PAIRS,
    domains=(real, uniform(0.0, 1.0)),
    covers=(HF.BinaryCrossEntropyWithLogits,),
)
for reduction in ("mean", "sum", "none"):
    register(
        f"binary_cross_entropy_with_logits_weights_{reduction}",
        fn=lambda x, t, w, pw, r=reduction: HF.binary_cross_entropy_with_logits(
            x, t, weight=_as(w, x), pos_weight=_as(pw, x), reduction=r),
        ref=lambda x, t, w, pw, r=reduction: TF.binary_cross_entropy_with_logits(
            x, t, weight=_as(w, x), pos_weight=_as(pw, x), reduction=r),
        composed=lambda x, t, w, pw, r=reduction: _composed_bce_with_logits(
            x, t, _as(w, x), _as(pw, x), r),
        shapes=PAIRS,
        domains=(real, uniform(0.0, 1.0)),
        extras=lambda gen, shapes: (positive(gen, shapes[0][-1:]),
                                    positive(gen, shapes[0][-1:])),
        covers=(HF.BinaryCrossEntropyWithLogits,),
    )


def _signs(gen, shapes):
    return (torch.randint(0, 2, shapes[0], generator=gen).to(torch.float64) * 2 - 1,)


def _hinge_reference(s, y, margin=1.0, reduction="mean"):
    """max(0, margin - y s): torch has no such loss, so this one formula, written with
    methods torch and handgrad share, is both the torch reference and the composed one."""
    return _reduce((margin - y * s).clamp(min=0), reduction)


for reduction in ("mean", "sum", "none"):
    register(
        f"hinge_loss_{reduction}",
        fn=lambda s, y, r=reduction: HF.hinge_loss(s, _as(y, s), margin=0.5, reduction=r),
        ref=lambda s, y, r=reduction: _hinge_reference(s, _as(y, s), 0.5, r),
        composed=lambda s, y, r=reduction: _hinge_reference(s, _as(y, s), 0.5, r),
        shapes=[((6,),), ((3, 4),)],
        extras=_signs,
        covers=(HF.HingeLoss,),
    )
register(
    "hinge_loss_label_gradient",
    fn=lambda s, y: HF.hinge_loss(s, y),
    ref=lambda s, y: _hinge_reference(s, y),
    composed=lambda s, y: _hinge_reference(s, y),
    shapes=[((6,), (6,)), ((3, 4), (3, 4))],
    covers=(HF.HingeLoss,),
)

# ===================================================================== normalisation
BN_SHAPES = [((6, 3), (3,), (3,)), ((4, 3, 5), (3,), (3,)), ((2, 3, 2, 2), (3,), (3,))]
register(
    "batch_norm_training",
    fn=lambda x, w, b: HF.batch_norm(x, None, None, w, b, training=True),
    ref=lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
    composed=lambda x, w, b: _composed_batch_norm(x, w, b),
    shapes=BN_SHAPES,
    covers=(HF.BatchNorm,),
)
register(
    "batch_norm_training_no_affine",
    fn=lambda x: HF.batch_norm(x, None, None, training=True, eps=1e-3),
    ref=lambda x: TF.batch_norm(x, None, None, training=True, eps=1e-3),
    composed=lambda x: _composed_batch_norm(x, eps=1e-3),
    shapes=[((6, 3),), ((4, 3, 5),)],
    covers=(HF.BatchNorm,),
)


def _running_stats(gen, shapes):
    channels = shapes[0][1]
    return (torch.randn(channels, generator=gen, dtype=torch.float64),
            positive(gen, (channels,)))


register(
    "batch_norm_eval",
    fn=lambda x, w, b, mean, var: HF.batch_norm(x, _as(mean, x), _as(var, x), w, b),
    ref=lambda x, w, b, mean, var: TF.batch_norm(x, _as(mean, x), _as(var, x), w, b),
    composed=lambda x, w, b, mean, var: _composed_batch_norm(x, w, b, _as(mean, x),
                                                             _as(var, x)),
    shapes=BN_SHAPES,
    extras=_running_stats,
    covers=(HF.BatchNorm,),
)
register(
    "layer_norm",
    fn=lambda x, w, b: HF.layer_norm(x, w.shape, w, b),
    ref=lambda x, w, b: TF.layer_norm(x, w.shape, w, b),
    composed=lambda x, w, b: _composed_layer_norm(x, w.ndim, w, b),
    shapes=[((4, 5), (5,), (5,)), ((2, 3, 4), (3, 4), (3, 4)), ((2, 3, 4), (4,), (4,))],
    covers=(HF.LayerNorm,),
)
register(
    "layer_norm_no_affine",
    fn=lambda x: HF.layer_norm(x, x.shape[-1:], eps=1e-3),
    ref=lambda x: TF.layer_norm(x, x.shape[-1:], eps=1e-3),
    composed=lambda x: _composed_layer_norm(x, 1, eps=1e-3),
    shapes=[((4, 5),), ((2, 3, 4),)],
    covers=(HF.LayerNorm,),
)


# ================================================================== dropout, embedding
def _seeded(x):
    return torch.Generator(device=x.device).manual_seed(0)


def _dropout_reference(x, p):
    mask = torch.empty_like(x).bernoulli_(1 - p, generator=_seeded(x))
    return x * (mask / (1 - p))


def _composed_dropout(x, p):
    """x * m / (1 - p) with the mask m drawn from the same seeded generator: a fixed mask
    makes dropout deterministic, so fused and composed see the same one."""
    mask = torch.empty_like(x.data).bernoulli_(1 - p, generator=_seeded(x.data))
    return x * hg.Tensor(mask) / (1 - p)


register(
    "dropout",
    fn=lambda x: HF.dropout(x, 0.3, generator=_seeded(x)),
    ref=lambda x: _dropout_reference(x, 0.3),
    composed=lambda x: _composed_dropout(x, 0.3),
    shapes=[((5, 4),), ((3, 2, 4),), ((7,),)],
    covers=(HF.Dropout,),
    note="the same seeded generator draws the mask on both sides",
)
register(
    "dropout_all",
    fn=lambda x: HF.dropout(x, 1.0),
    ref=lambda x: TF.dropout(x, 1.0),
    composed=lambda x: x * 0.0,
    shapes=[((5, 4),)],
    covers=(HF.Dropout,),
)


def _indices(gen, shapes):
    rows = shapes[0][0]
    return (torch.randint(0, rows, (3, 4), generator=gen),)


register(
    "embedding",
    fn=lambda w, idx: HF.embedding(idx, w),
    ref=lambda w, idx: TF.embedding(idx, w),
    composed=_composed_embedding,
    shapes=[((5, 3),), ((4, 2),)],
    extras=_indices,
    covers=(HF.Embedding,),
)
# padding_idx and scale_grad_by_freq change the gradient on purpose (torch's convention:
# the padding row learns nothing, frequent rows learn less), so it is not the derivative
# that finite differences measure; torch.autograd is the reference for them.
for name, options in [("embedding_padding", {"padding_idx": 1}),
                      ("embedding_scale_grad_by_freq", {"scale_grad_by_freq": True})]:
    register(
        name,
        fn=lambda w, idx, o=options: HF.embedding(idx, w, **o),
        ref=lambda w, idx, o=options: TF.embedding(idx, w, **o),
        composed=lambda w, idx, o=options: _composed_embedding(w, idx, **o),
        shapes=[((5, 3),), ((4, 2),)],
        extras=_indices,
        covers=(HF.Embedding,),
        finite_differences=False,
        note="the gradient is torch's convention, not the derivative",
    )


# ================================================================== backward hooks
# gather_gradients is an identity: x * y computed on the gathered x, y must have x * y's
# gradients. The second entry's on_backward doubles x's gradient, as a module backward
# hook returning a new grad_input does; its reference gets the same doubled gradient
# from x + x - x.detach() (value x, gradient 2), so finite differences do not apply.
def _gathered_product(x, y, on_backward):
    gx, gy = HF.gather_gradients((x, y), on_backward)
    return gx * gy


register(
    "gather_gradients",
    fn=lambda x, y: _gathered_product(x, y, lambda grads: grads),
    ref=lambda x, y: x * y,
    composed=lambda x, y: x * y,
    shapes=[((4, 3), (4, 3)), ((2, 3, 2), (3, 2)), ((), ())],
    covers=(HF.BackwardHookGate, HF.BackwardHookSlot),
)
register(
    "gather_gradients_replaced",
    fn=lambda x, y: _gathered_product(x, y, lambda grads: (2 * grads[0], grads[1])),
    ref=lambda x, y: (x + x - x.detach()) * y,
    composed=lambda x, y: (x + x - x.detach()) * y,
    shapes=[((4, 3), (4, 3)), ((5,), (5,))],
    covers=(HF.BackwardHookGate, HF.BackwardHookSlot),
    finite_differences=False,
    note="the hook doubles x's gradient on purpose",
)
