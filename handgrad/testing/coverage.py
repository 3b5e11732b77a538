"""`handgrad coverage`: how much of torch's most used API handgrad has, so the gap stays
visible.

For each namespace (Tensor methods, `torch.*` functions, `torch.nn` classes,
`torch.nn.functional`, `torch.optim`) a list of the names real training scripts use most
(chosen by hand from tutorials, course notebooks and example repositories) is checked
against handgrad's namespace of the same role; the command prints the share present and
the missing names. `--all` also counts every public name of torch's namespace (most of
which ordinary scripts never touch). A name counts as present when handgrad defines it;
whether it behaves as torch's is the business of the tests, not of this count.

It lives in handgrad/testing/ because it reads torch.nn and torch.optim (their names
only, never running them), which only the proof and the benchmarks may import.
"""

from __future__ import annotations

import argparse
import json

# The names scripts use most, per namespace (a hand-made list, not torch's __all__).
MOST_USED: dict[str, str] = {
    "Tensor": """
        abs add add_ addcmul addcdiv addmm all allclose amax amin any argmax argmin argsort
        backward baddbmm bmm bool byte ceil chunk clamp clamp_ clip clone contiguous copy_
        cos cpu cuda cumprod cumsum data detach detach_ device diag diagonal diff dim div div_
        dot double dtype element_size eq equal exp exp_ expand expand_as expm1 fill_
        flatten flip float floor fmod gather ge grad grad_fn gt half index_add index_add_
        index_fill index_put index_put_ index_select int is_contiguous is_cuda is_floating_point
        is_leaf isclose isfinite isinf isnan item le lerp log log10 log1p log2 log_softmax
        logical_and logical_not logical_or logsumexp long lt masked_fill masked_fill_
        masked_select matmul max maximum mean median min minimum mm mul mul_ multinomial
        narrow ndim ndimension ne neg new_empty new_full new_ones new_tensor new_zeros nonzero
        norm normal_ numel numpy outer permute pow prod reciprocal relu repeat
        repeat_interleave requires_grad requires_grad_ reshape reshape_as retain_grad roll round
        rsqrt scatter scatter_ scatter_add scatter_add_ select shape sigmoid sign sin size
        softmax sort split sqrt square squeeze std stride sub sub_ sum t tanh tile to tolist
        topk transpose tril triu trunc type type_as unbind unfold uniform_ unique unsqueeze
        var view view_as where zero_ data_ptr remainder floor_divide pin_memory share_memory_
        apply_ abs_ sqrt_ sigmoid_ tanh_ relu_
    """,
    "torch": """
        abs allclose arange argmax argsort bmm cat chunk clamp clone cos cumsum diag
        diagonal einsum empty exp eye flatten flip from_numpy full full_like gather isclose
        linspace log logical_and manual_seed matmul max maximum mean min minimum mm multinomial
        no_grad nonzero norm normal ones ones_like outer permute prod rand rand_like randint
        randn randn_like randperm reshape roll save load set_num_threads sigmoid sin softmax
        sort split sqrt square squeeze stack std sum tanh tensor tile topk transpose tril triu
        unique unsqueeze var where zeros zeros_like inference_mode enable_grad
        set_grad_enabled is_grad_enabled get_num_threads Generator float32 float64 int64 long
        bool device atan2 erf meshgrid broadcast_tensors bincount bernoulli count_nonzero
        remainder floor_divide cdist dropout LongTensor FloatTensor amp autocast compile jit
        distributions
    """,
    "nn": """
        Module Sequential ModuleList ModuleDict Parameter ParameterList ParameterDict Linear
        Bilinear Identity Flatten Unflatten Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d
        MaxPool1d MaxPool2d AvgPool1d AvgPool2d AdaptiveAvgPool1d AdaptiveAvgPool2d
        AdaptiveMaxPool2d BatchNorm1d BatchNorm2d LayerNorm GroupNorm InstanceNorm2d
        Dropout Dropout2d AlphaDropout Embedding EmbeddingBag RNN LSTM GRU RNNCell LSTMCell
        GRUCell MultiheadAttention Transformer TransformerEncoder TransformerEncoderLayer
        TransformerDecoder TransformerDecoderLayer ReLU ReLU6 LeakyReLU PReLU ELU SELU CELU GELU
        SiLU Mish Sigmoid Tanh Softmax LogSoftmax Softmin Softplus Softsign Hardtanh
        Hardswish Hardsigmoid LogSigmoid GLU Threshold Tanhshrink Upsample PixelShuffle
        ZeroPad2d ConstantPad2d ReflectionPad2d CosineSimilarity PairwiseDistance
        CrossEntropyLoss NLLLoss MSELoss L1Loss SmoothL1Loss HuberLoss BCELoss
        BCEWithLogitsLoss KLDivLoss CTCLoss MarginRankingLoss TripletMarginLoss
        CosineEmbeddingLoss HingeEmbeddingLoss PoissonNLLLoss GaussianNLLLoss
        MultiLabelSoftMarginLoss SoftMarginLoss MultiMarginLoss SyncBatchNorm
    """,
    "nn.functional": """
        linear bilinear relu relu6 leaky_relu prelu elu selu celu gelu silu mish sigmoid tanh
        softmax log_softmax softmin softplus softsign hardtanh hardswish hardsigmoid
        logsigmoid glu threshold tanhshrink one_hot normalize cosine_similarity
        pairwise_distance pdist dropout dropout2d alpha_dropout embedding embedding_bag
        conv1d conv2d conv_transpose2d max_pool1d max_pool2d avg_pool1d avg_pool2d
        adaptive_avg_pool2d adaptive_max_pool2d batch_norm layer_norm group_norm
        instance_norm pad interpolate unfold fold pixel_shuffle scaled_dot_product_attention
        multi_head_attention_forward cross_entropy nll_loss mse_loss l1_loss smooth_l1_loss
        huber_loss binary_cross_entropy binary_cross_entropy_with_logits kl_div ctc_loss
        margin_ranking_loss triplet_margin_loss cosine_embedding_loss hinge_embedding_loss
        poisson_nll_loss gaussian_nll_loss soft_margin_loss multi_margin_loss
        multilabel_soft_margin_loss grid_sample affine_grid
    """,
    "optim": """
        Optimizer SGD Adam AdamW RMSprop Adagrad Adadelta Adamax NAdam RAdam ASGD Rprop LBFGS
        SparseAdam lr_scheduler.StepLR lr_scheduler.MultiStepLR lr_scheduler.ExponentialLR
        lr_scheduler.CosineAnnealingLR lr_scheduler.CosineAnnealingWarmRestarts
        lr_scheduler.ReduceLROnPlateau lr_scheduler.OneCycleLR lr_scheduler.LambdaLR
        lr_scheduler.LinearLR lr_scheduler.SequentialLR lr_scheduler.CyclicLR
        swa_utils.AveragedModel swa_utils.SWALR
    """,
}


def _namespaces():
    """(handgrad object, torch object) for each namespace of MOST_USED."""
    import torch

    import handgrad
    import handgrad.nn
    import handgrad.nn.functional
    import handgrad.optim

    return {
        "Tensor": (handgrad.Tensor, torch.Tensor),
        "torch": (handgrad, torch),
        "nn": (handgrad.nn, torch.nn),
        "nn.functional": (handgrad.nn.functional, torch.nn.functional),
        "optim": (handgrad.optim, torch.optim),
    }


def _has(obj, dotted: str) -> bool:
    for part in dotted.split("."):
        try:
            obj = getattr(obj, part)
        except (AttributeError, ImportError):
            return False
    return True


def _public(obj) -> list[str]:
    """Every public name of a torch namespace (its __all__ where it has one)."""
    names = getattr(obj, "__all__", None) or [n for n in dir(obj) if not n.startswith("_")]
    return sorted(set(names))


def coverage(include_all: bool = False) -> dict:
    """{namespace: {"present": n, "total": m, "missing": [...]}} (and "all_present" /
    "all_total" over torch's whole public namespace when include_all)."""
    result = {}
    for name, (ours, theirs) in _namespaces().items():
        wanted = MOST_USED[name].split()
        missing = [n for n in wanted if not _has(ours, n)]
        row = {"present": len(wanted) - len(missing), "total": len(wanted),
               "missing": missing}
        if include_all:
            every = _public(theirs)
            row["all_present"] = sum(_has(ours, n) for n in every)
            row["all_total"] = len(every)
        result[name] = row
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true",
                        help="also count every public name of torch's namespaces")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    parser.add_argument("--quiet", action="store_true", help="figures only, no missing names")


def run(args: argparse.Namespace) -> int:
    result = coverage(args.all)
    print(f"{'namespace':<15}{'most used':>14}{'share':>8}"
          + (f"{'all public':>14}" if args.all else ""))
    for name, row in result.items():
        share = row["present"] / row["total"]
        line = f"{name:<15}{row['present']:>6} / {row['total']:<5}{share:>8.0%}"
        if args.all:
            line += f"{row['all_present']:>7} / {row['all_total']}"
        print(line)
    if not args.quiet:
        for name, row in result.items():
            if row["missing"]:
                print(f"\nmissing from {name} ({len(row['missing'])}): "
                      + " ".join(row["missing"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0
