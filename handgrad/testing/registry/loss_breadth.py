"""Registry entries for the losses beyond cross-entropy and MSE (handgrad/nn/functional/
loss.py): kl_div, huber_loss, the weighted mse_loss / l1_loss, soft_margin_loss,
margin_ranking_loss, hinge_embedding_loss, triplet_margin_loss, cosine_embedding_loss,
poisson_nll_loss, gaussian_nll_loss, multi_margin_loss and multilabel_soft_margin_loss.

Each entry calls the public functional API with torch.nn.functional as the reference,
for every reduction, and carries `composed`, the same loss written with handgrad
primitives (elementwise ops, sum, gather, where, detach). Labels (+-1), class indices
and class weights that are not differentiated arrive as float64 / int64 extras and are
cast to the input's dtype inside the lambdas. Value domains keep the inputs away from
the losses' kinks (hinges at 0, |d| = delta) so finite differences are smooth.

Left out: the modules (tests/nn/test_loss_breadth.py compares them with torch.nn), CTC
(ctc.py here).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as TF

import handgrad as hg
import handgrad.nn.functional as HF
from handgrad.nn.functional import loss as L
from handgrad.testing.registry import (
    even_grid,
    nonzero,
    odd_grid,
    positive,
    real,
    register,
    uniform,
)

REDUCTIONS = ("mean", "sum", "none")


def _as(x, like):
    return x.to(like.dtype)


def _reduce(loss, reduction):
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def _softplus(z):
    """log(1 + e**z) = max(z, 0) + log(1 + e**-|z|)."""
    return z.clamp(min=0) + (1 + (-z.abs()).exp()).log()


def _signs(gen, shape):
    """+1 / -1 labels as float64."""
    return torch.randint(0, 2, shape, generator=gen).to(torch.float64) * 2 - 1


# ====================================================================== regression
WEIGHT_PAIRS = [((4, 3), (4, 3)), ((5,), (5,)), ((2, 3, 2), (2, 3, 2))]


def _composed_weighted(pointwise, by_weights):
    def composed(x, t, w, reduction):
        loss = pointwise(x - t) * w
        if reduction == "mean":
            return loss.sum() / (w.sum() if by_weights else loss.numel())
        return _reduce(loss, reduction)
    return composed


def _huber(delta):
    def pointwise(d):
        return hg.where(d.abs() < delta, 0.5 * d * d, delta * (d.abs() - 0.5 * delta))
    return pointwise


for name, ours, theirs, pointwise, by_weights, cls in [
    ("mse_loss", HF.mse_loss, TF.mse_loss, lambda d: d * d, True, L.MSELoss),
    ("l1_loss", HF.l1_loss, TF.l1_loss, lambda d: d.abs(), True, L.L1Loss),
    ("huber_loss", HF.huber_loss, TF.huber_loss, _huber(1.0), False, L.HuberLoss),
]:
    weighted = _composed_weighted(pointwise, by_weights)
    for reduction in REDUCTIONS:
        # the weight is differentiated too (it is an input like any other in torch)
        register(
            f"{name}_weight_{reduction}",
            fn=lambda x, t, w, f=ours, r=reduction: f(x, t, reduction=r, weight=w),
            ref=lambda x, t, w, f=theirs, r=reduction: f(x, t, reduction=r, weight=w),
            composed=lambda x, t, w, c=weighted, r=reduction: c(x, t, w, r),
            shapes=[(a, b, a) for a, b in WEIGHT_PAIRS],
            domains=(nonzero, nonzero, positive),
            covers=(cls,),
        )
for delta in (1.0, 0.3, 2.5):
    for reduction in REDUCTIONS:
        register(
            f"huber_loss_delta{delta}_{reduction}",
            fn=lambda x, t, d=delta, r=reduction: HF.huber_loss(x, t, reduction=r, delta=d),
            ref=lambda x, t, d=delta, r=reduction: TF.huber_loss(x, t, reduction=r, delta=d),
            composed=lambda x, t, d=delta, r=reduction: _reduce(_huber(d)(x - t), r),
            shapes=[((4, 3), (4, 3)), ((5,), (5,)), ((2, 3, 2), (2, 3, 2))],
            covers=(L.HuberLoss,),
        )


# ================================================================== distributions
def _composed_kl_div(x, t, log_target, reduction):
    loss = t.exp() * (t - x) if log_target else t * (t.log() - x)
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)


def _kl_reference(x, t, log_target, reduction):
    import warnings

    with warnings.catch_warnings():  # 'mean' warns about 'batchmean'
        warnings.simplefilter("ignore")
        return TF.kl_div(x, t, reduction=reduction, log_target=log_target)


def _kl_ours(x, t, log_target, reduction):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HF.kl_div(x, t, reduction=reduction, log_target=log_target)


for log_target in (False, True):
    for reduction in (*REDUCTIONS, "batchmean"):
        register(
            f"kl_div{'_log_target' if log_target else ''}_{reduction}",
            fn=lambda x, t, lt=log_target, r=reduction: _kl_ours(x, t, lt, r),
            ref=lambda x, t, lt=log_target, r=reduction: _kl_reference(x, t, lt, r),
            composed=lambda x, t, lt=log_target, r=reduction: _composed_kl_div(x, t, lt, r),
            shapes=[((4, 5), (4, 5)), ((3, 2, 4), (3, 2, 4)), ((6,), (6,)), ((4, 5), (5,))],
            domains=(real, real if log_target else positive),
            covers=(L.KLDivLoss,),
        )


def _composed_poisson(x, t, log_input, full, eps, reduction):
    loss = x.exp() - t * x if log_input else x - t * (x + eps).log()
    if full:
        stirling = t * t.log() - t + 0.5 * (2 * math.pi * t).log()
        loss = loss + stirling.masked_fill(t <= 1, 0)
    return _reduce(loss, reduction)


for log_input in (True, False):
    for full in (False, True):
        for reduction in REDUCTIONS:
            register(
                f"poisson_nll_loss{'' if log_input else '_rate'}{'_full' if full else ''}"
                f"_{reduction}",
                fn=lambda x, t, li=log_input, f=full, r=reduction: HF.poisson_nll_loss(
                    x, t, log_input=li, full=f, reduction=r),
                ref=lambda x, t, li=log_input, f=full, r=reduction: TF.poisson_nll_loss(
                    x, t, log_input=li, full=f, reduction=r),
                composed=lambda x, t, li=log_input, f=full, r=reduction: _composed_poisson(
                    x, t, li, f, 1e-8, r),
                shapes=[((4, 3), (4, 3)), ((6,), (6,)), ((2, 3), (3,))],
                # counts on both sides of 1, where Stirling's term switches on (away from 1)
                domains=(real if log_input else positive, uniform(0.1, 4.0)),
                covers=(L.PoissonNLLLoss,),
            )


def _composed_gaussian(x, t, var, full, eps, reduction):
    """0.5 (log v + (x - t)**2 / v), v = max(var, eps) with the clamp's gradient passed
    through (torch clamps a copy under no_grad): var + (clamped - var).detach()."""
    v = var + (var.clamp(min=eps) - var).detach()
    loss = 0.5 * (v.log() + (x - t) * (x - t) / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def _unsqueezed(x, var):
    """torch's homoscedastic case: var of the input's shape without the last dim."""
    return var.unsqueeze(-1) if tuple(var.shape) == tuple(x.shape[:-1]) else var


for full in (False, True):
    for reduction in REDUCTIONS:
        register(
            f"gaussian_nll_loss{'_full' if full else ''}_{reduction}",
            fn=lambda x, t, v, f=full, r=reduction: HF.gaussian_nll_loss(
                x, t, v, full=f, reduction=r),
            ref=lambda x, t, v, f=full, r=reduction: TF.gaussian_nll_loss(
                x, t, v, full=f, reduction=r),
            composed=lambda x, t, v, f=full, r=reduction: _composed_gaussian(
                x, t, _unsqueezed(x, v), f, 1e-6, r),
            # the var shapes torch allows: the input's, one dim 1, the last dim dropped
            shapes=[((4, 3), (4, 3), (4, 3)), ((4, 3), (4, 3), (4, 1)),
                    ((4, 3), (4, 3), (4,)), ((2, 3, 2), (3, 2), (2, 1, 2))],
            domains=(real, real, positive),
            covers=(L.GaussianNLLLoss,),
        )
register(
    "gaussian_nll_loss_clamped_var",
    fn=lambda x, t, v: HF.gaussian_nll_loss(x, t, v, eps=0.7),
    ref=lambda x, t, v: TF.gaussian_nll_loss(x, t, v, eps=0.7),
    composed=lambda x, t, v: _composed_gaussian(x, t, v, False, 0.7, "mean"),
    shapes=[((5, 3), (5, 3), (5, 3))],
    domains=(real, real, uniform(0.2, 1.2)),  # some below eps: clamped, gradient kept
    finite_differences=False,
    note="var below eps is clamped with its gradient passed through (torch's no_grad "
         "clamp of a copy): that gradient is not the derivative finite differences see",
    covers=(L.GaussianNLLLoss,),
)


# ======================================================================== margins
def _labels(gen, shapes):
    """+-1 labels of the broadcast shape of the inputs."""
    return (_signs(gen, torch.broadcast_shapes(*shapes)),)


for reduction in REDUCTIONS:
    register(
        f"soft_margin_loss_{reduction}",
        fn=lambda x, y, r=reduction: HF.soft_margin_loss(x, _as(y, x), reduction=r),
        ref=lambda x, y, r=reduction: TF.soft_margin_loss(x, _as(y, x), reduction=r),
        composed=lambda x, y, r=reduction: _reduce(_softplus(-_as(y, x) * x), r),
        shapes=[((4, 3),), ((6,),), ((2, 3, 2),)],
        domains=(lambda gen, shape: 3 * real(gen, shape),),
        extras=_labels,
        covers=(L.SoftMarginLoss,),
    )
def _shifted_grid(gen, shape):
    return even_grid(gen, shape) + 0.05


def _composed_margin_ranking(x1, x2, y, margin, reduction):
    return _reduce((margin - y * (x1 - x2)).clamp(min=0), reduction)


for reduction in REDUCTIONS:
    register(
        f"margin_ranking_loss_{reduction}",
        fn=lambda a, b, y, r=reduction: HF.margin_ranking_loss(a, b, _as(y, a), margin=0.1,
                                                               reduction=r),
        ref=lambda a, b, y, r=reduction: TF.margin_ranking_loss(a, b, _as(y, a), margin=0.1,
                                                                reduction=r),
        composed=lambda a, b, y, r=reduction: _composed_margin_ranking(a, b, _as(y, a), 0.1,
                                                                       r),
        shapes=[((6,), (6,)), ((3, 4), (3, 4)), ((3, 4), (1, 4))],
        # x1 - x2 = 0.2 k - 0.05: margin 0.1 -+ (x1 - x2) is never 0 (the hinge's kink)
        domains=(even_grid, _shifted_grid),
        extras=lambda gen, shapes: _labels(gen, shapes),
        covers=(L.MarginRankingLoss,),
    )
register(
    "margin_ranking_loss_label_gradient",
    fn=lambda a, b, y: HF.margin_ranking_loss(a, b, y, margin=0.3),
    ref=lambda a, b, y: TF.margin_ranking_loss(a, b, y, margin=0.3),
    composed=lambda a, b, y: _composed_margin_ranking(a, b, y, 0.3, "mean"),
    shapes=[((6,), (6,), (6,)), ((3, 4), (3, 4), (3, 1))],
    covers=(L.MarginRankingLoss,),
)


def _composed_hinge_embedding(x, y, margin, reduction):
    zero = x * 0
    loss = hg.where(y != 1, (margin - x).clamp(min=0), zero) + hg.where(y != -1, x, zero)
    return _reduce(loss, reduction)


def _hinge_labels(gen, shapes):
    """Mostly +-1; a few 0 labels, which torch gives both terms."""
    shape = shapes[0]
    labels = _signs(gen, shape)
    labels[torch.rand(shape, generator=gen) < 0.15] = 0
    return (labels,)


for reduction in REDUCTIONS:
    register(
        f"hinge_embedding_loss_{reduction}",
        fn=lambda x, y, r=reduction: HF.hinge_embedding_loss(x, _as(y, x), margin=0.6,
                                                             reduction=r),
        ref=lambda x, y, r=reduction: TF.hinge_embedding_loss(x, _as(y, x), margin=0.6,
                                                              reduction=r),
        composed=lambda x, y, r=reduction: _composed_hinge_embedding(x, _as(y, x), 0.6, r),
        shapes=[((6,),), ((3, 4),), ((2, 2, 3),)],
        domains=(odd_grid,),  # odd multiples of 0.1: never at the margin 0.6
        extras=_hinge_labels,
        covers=(L.HingeEmbeddingLoss,),
    )


def _composed_distance(x1, x2, p, eps):
    v = x1 - x2 + eps
    if math.isinf(p):
        return v.abs().amax(-1)
    if p == 2:
        return (v * v).sum(-1).sqrt()
    return v.abs().pow(p).sum(-1).pow(1 / p)


def _composed_triplet(a, p, n, margin, norm, eps, swap, reduction):
    d_pos = _composed_distance(a, p, norm, eps)
    d_neg = _composed_distance(a, n, norm, eps)
    if swap:
        d_neg = hg.minimum(d_neg, _composed_distance(p, n, norm, eps))
    return _reduce((margin + d_pos - d_neg).clamp(min=0), reduction)


TRIPLET_SHAPES = [((5, 4), (5, 4), (5, 4)), ((4,), (4,), (4,)), ((2, 3, 4), (2, 3, 4),
                                                                  (2, 3, 4)),
                  ((5, 4), (1, 4), (5, 4))]
for norm, swap, reduction in [(2.0, False, "mean"), (2.0, False, "sum"), (2.0, False, "none"),
                              (2.0, True, "mean"), (1.0, False, "none"), (3.0, True, "sum"),
                              (1.5, False, "mean"), (math.inf, False, "none"),
                              (math.inf, True, "mean")]:
    register(
        f"triplet_margin_loss_p{norm}{'_swap' if swap else ''}_{reduction}",
        fn=lambda a, p, n, q=norm, s=swap, r=reduction: HF.triplet_margin_loss(
            a, p, n, margin=2.0, p=q, swap=s, reduction=r),
        ref=lambda a, p, n, q=norm, s=swap, r=reduction: TF.triplet_margin_loss(
            a, p, n, margin=2.0, p=q, swap=s, reduction=r),
        composed=lambda a, p, n, q=norm, s=swap, r=reduction: _composed_triplet(
            a, p, n, 2.0, q, 1e-6, s, r),
        shapes=TRIPLET_SHAPES,
        # distinct coordinates: no ties in the max of the inf-norm, no |v| = 0 for p = 1
        domains=(lambda gen, shape: 0.5 * real(gen, shape),) * 3,
        covers=(L.TripletMarginLoss,),
    )


def _composed_cosine_embedding(x1, x2, y, margin, reduction):
    m1 = (x1 * x1).sum(-1) + 1e-12
    m2 = (x2 * x2).sum(-1) + 1e-12
    c = (x1 * x2).sum(-1) / (m1 * m2).sqrt()
    zero = c * 0
    loss = hg.where(y == 1, 1 - c, zero) + hg.where(y == -1, (c - margin).clamp(min=0), zero)
    return _reduce(loss, reduction)


def _cosine_labels(gen, shapes):
    rows = torch.broadcast_shapes(*shapes)[:-1]
    labels = _signs(gen, rows)
    if labels.ndim:
        labels[0] = 0  # neither +1 nor -1: no loss, as in torch
    return (labels,)


for reduction in REDUCTIONS:
    register(
        f"cosine_embedding_loss_{reduction}",
        fn=lambda a, b, y, r=reduction: HF.cosine_embedding_loss(a, b, _as(y, a), margin=-0.2,
                                                                 reduction=r),
        ref=lambda a, b, y, r=reduction: TF.cosine_embedding_loss(a, b, _as(y, a),
                                                                  margin=-0.2, reduction=r),
        composed=lambda a, b, y, r=reduction: _composed_cosine_embedding(a, b, _as(y, a), -0.2,
                                                                         r),
        shapes=[((6, 4), (6, 4)), ((5,), (5,)), ((6, 4), (1, 4))],
        extras=_cosine_labels,
        covers=(L.CosineEmbeddingLoss,),
    )


def _composed_multi_margin(x, y, p, margin, weight, reduction):
    classes = x.shape[-1] if x.ndim else 1
    rows = x.reshape(-1, classes)
    index = y.reshape(-1, 1)
    z = (margin - rows.gather(1, index) + rows).clamp(min=0)
    other = hg.arange(classes, device=x.device).reshape(1, -1) != index
    terms = hg.where(other, z, z * 0)
    if p == 2:
        terms = terms * terms
    if weight is not None:
        terms = terms * weight.index_select(0, index.reshape(-1)).reshape(-1, 1)
    loss = terms.sum(1) / classes
    return _reduce(loss.reshape(()) if x.ndim < 2 else loss, reduction)


def _margin_targets(gen, shapes):
    shape = shapes[0]
    classes = shape[-1]
    target = torch.randint(0, classes, shape[:-1], generator=gen)
    return target, 0.5 + torch.rand(classes, generator=gen, dtype=torch.float64)


def _scores(gen, shape):
    """Scores on a grid 0.1 k + 0.05: margin 0.65 - x_y + x_i = 0.65 + 0.1 m is never 0."""
    return 0.1 * torch.randint(-15, 15, shape, generator=gen).to(torch.float64) + 0.05


for p in (1, 2):
    for weighted in (False, True):
        for reduction in REDUCTIONS:
            register(
                f"multi_margin_loss_p{p}{'_weight' if weighted else ''}_{reduction}",
                fn=lambda x, y, w, p=p, wt=weighted, r=reduction: HF.multi_margin_loss(
                    x, y, p=p, margin=0.65, weight=_as(w, x) if wt else None, reduction=r),
                ref=lambda x, y, w, p=p, wt=weighted, r=reduction: TF.multi_margin_loss(
                    x, y, p=p, margin=0.65, weight=_as(w, x) if wt else None, reduction=r),
                composed=lambda x, y, w, p=p, wt=weighted, r=reduction: _composed_multi_margin(
                    x, y, p, 0.65, _as(w, x) if wt else None, r),
                shapes=[((5, 4),), ((4,),), ((1, 3),)],
                domains=(_scores,),
                extras=_margin_targets,
                covers=(L.MultiMarginLoss,),
            )


def _composed_multilabel(x, t, weight, reduction):
    loss = _softplus(-x) * t + _softplus(x) * (1 - t)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.sum(x.ndim - 1) / x.shape[-1], reduction)


for reduction in REDUCTIONS:
    register(
        f"multilabel_soft_margin_loss_{reduction}",
        fn=lambda x, t, r=reduction: HF.multilabel_soft_margin_loss(x, t, reduction=r),
        ref=lambda x, t, r=reduction: TF.multilabel_soft_margin_loss(x, t, reduction=r),
        composed=lambda x, t, r=reduction: _composed_multilabel(x, t, None, r),
        shapes=[((4, 5), (4, 5)), ((5,), (5,)), ((2, 3, 4), (2, 3, 4)), ((4, 5), (5,))],
        domains=(lambda gen, shape: 3 * real(gen, shape), uniform(0.0, 1.0)),
        covers=(L.MultiLabelSoftMarginLoss,),
    )
    register(
        f"multilabel_soft_margin_loss_weight_{reduction}",
        fn=lambda x, t, w, r=reduction: HF.multilabel_soft_margin_loss(x, t, weight=w,
                                                                       reduction=r),
        ref=lambda x, t, w, r=reduction: TF.multilabel_soft_margin_loss(x, t, weight=w,
                                                                        reduction=r),
        composed=lambda x, t, w, r=reduction: _composed_multilabel(x, t, w, r),
        shapes=[((4, 5), (4, 5), (5,)), ((2, 3, 4), (2, 3, 4), (3, 1))],
        domains=(real, uniform(0.0, 1.0), positive),
        covers=(L.MultiLabelSoftMarginLoss,),
    )
