"""handgrad.nn.functional (import it as F): layers and losses as functions, named and
called like PyTorch's nn.functional.

The fused layer-level Functions live here, one file per family, each with its forward
and hand-derived backward side by side:

    linear.py         the affine map x W^T + b; bilinear (composed from einsum)
    loss.py           losses (cross-entropy, NLL, MSE, L1, smooth L1, Huber, BCE, hinge,
                      KL divergence, the margin, embedding, Poisson and Gaussian NLL losses)
    ctc.py            ctc_loss: the forward-backward (alpha-beta) algorithm in log space
    distance.py       normalize, cosine_similarity, pairwise_distance, pdist
    normalization.py  batch norm, layer norm, group norm, instance norm
    dropout.py        dropout, dropout1d / dropout2d (whole channels), alpha_dropout,
                      feature_alpha_dropout
    sparse.py         embedding, embedding_bag
    upsampling.py     interpolate (nearest, linear, bilinear)
    pixelshuffle.py   pixel_shuffle, pixel_unshuffle (reshape and permute)
    grid_sample.py    affine_grid (a matmul of a base grid), grid_sample (bilinear /
                      trilinear, nearest, bicubic; three padding modes; GridSample)
    conv.py           conv1d, conv2d, conv3d, unfold (im2col), fold (col2im)
    conv_transpose.py conv_transpose1d, conv_transpose2d, conv_transpose3d (the adjoint
                      of conv)
    padding.py        pad with modes constant, reflect, replicate, circular (composed
                      from slices, Pad and index_select; no Function of its own)
    pooling.py        max and average pooling, 1-d to 3-d; adaptive pooling, 1-d and 2-d;
                      max_unpool1d/2d
    rnn.py            whole-sequence RNN / LSTM / GRU stacks, one fused Function
                      (RNNStack) with BPTT by hand: rnn_tanh, rnn_relu, lstm, gru
                      (torch._VF's names and argument order; not torch public API)
    rnn_cell.py       one step of the RNN (tanh, relu), LSTM and GRU cells: rnn_tanh_cell,
                      rnn_relu_cell, lstm_cell, gru_cell (torch.* spells them so)
    attention.py      scaled_dot_product_attention, one fused Function with the softmax
                      backward fused into the matmuls (masks, causal, dropout, GQA)
    multi_head_attention.py  multi_head_attention_forward (composed from linear and
                      scaled_dot_product_attention; no Function of its own)
    hooks.py          gather_gradients (an identity whose backward hands a group's
                      gradients to a function, for module backward hooks)

Each file's docstring lists its Functions; `handgrad gradcheck --list` lists every one
that is registered (a test fails for a Function without a registry entry).

Activations (relu, gelu, softmax, log_softmax, ...) are primitives of the tensor core,
which activation.py gives PyTorch's functional spelling; the rarer ones are fused
Functions there (logsigmoid, hardtanh / relu6, hardswish, hardsigmoid, mish, glu,
prelu, selu / celu, softsign, tanhshrink, threshold), with softmin and one_hot.

Left out: adaptive pooling of volumes; torch's flash and memory-efficient attention
kernels (scaled_dot_product_attention forms the whole (L, S) weight matrix) and nested
tensors.
"""

from handgrad.nn.functional.activation import (
    GLU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LogSigmoid,
    Mish,
    PReLU,
    ScaledElu,
    Softsign,
    Tanhshrink,
    Threshold,
    celu,
    celu_,
    elu,
    gelu,
    glu,
    hardsigmoid,
    hardswish,
    hardtanh,
    hardtanh_,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    logsigmoid,
    mish,
    one_hot,
    prelu,
    relu,
    relu6,
    selu,
    selu_,
    sigmoid,
    silu,
    softmax,
    softmin,
    softplus,
    softsign,
    tanh,
    tanhshrink,
    threshold,
    threshold_,
)
from handgrad.nn.functional.attention import (
    ScaledDotProductAttention,
    scaled_dot_product_attention,
)
from handgrad.nn.functional.conv import (
    ConvNd,
    Fold,
    Unfold,
    conv1d,
    conv2d,
    conv3d,
    fold,
    unfold,
)
from handgrad.nn.functional.conv_transpose import (
    ConvTransposeNd,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from handgrad.nn.functional.ctc import CTCLoss, ctc_loss
from handgrad.nn.functional.distance import (
    CosineSimilarity,
    Normalize,
    PairwiseDistance,
    PDist,
    cosine_similarity,
    normalize,
    pairwise_distance,
    pdist,
)
from handgrad.nn.functional.dropout import (
    Dropout,
    FeatureDropout,
    alpha_dropout,
    dropout,
    dropout1d,
    dropout2d,
    feature_alpha_dropout,
)
from handgrad.nn.functional.grid_sample import GridSample, affine_grid, grid_sample
from handgrad.nn.functional.hooks import BackwardHookGate, BackwardHookSlot, gather_gradients
from handgrad.nn.functional.linear import Linear, bilinear, linear
from handgrad.nn.functional.loss import (
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    CrossEntropyProbabilities,
    HingeLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cross_entropy,
    gaussian_nll_loss,
    hinge_embedding_loss,
    hinge_loss,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    multi_margin_loss,
    multilabel_soft_margin_loss,
    nll_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    soft_margin_loss,
    triplet_margin_loss,
)
from handgrad.nn.functional.multi_head_attention import multi_head_attention_forward
from handgrad.nn.functional.normalization import (
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
)
from handgrad.nn.functional.padding import pad
from handgrad.nn.functional.pixelshuffle import pixel_shuffle, pixel_unshuffle
from handgrad.nn.functional.pooling import (
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    AvgPool,
    MaxPool,
    MaxUnpool,
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
)
from handgrad.nn.functional.rnn import RNNStack, gru, lstm, rnn_relu, rnn_tanh
from handgrad.nn.functional.rnn_cell import (
    GRUCellStep,
    LSTMCellStep,
    RNNCellStep,
    gru_cell,
    lstm_cell,
    rnn_relu_cell,
    rnn_tanh_cell,
)
from handgrad.nn.functional.sparse import Embedding, EmbeddingBag, embedding, embedding_bag
from handgrad.nn.functional.upsampling import UpsampleLinear, UpsampleNearest, interpolate

__all__ = [
    # recurrent stacks
    "rnn_tanh", "rnn_relu", "lstm", "gru", "RNNStack",
    # activations
    "relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", "softplus", "softmax",
    "log_softmax",
    # layers
    "linear", "batch_norm", "layer_norm", "dropout", "embedding", "gather_gradients",
    # losses
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "hinge_loss",
    # the fused Functions
    "Linear", "BatchNorm", "LayerNorm", "Dropout", "Embedding", "CrossEntropy",
    "CrossEntropyProbabilities", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss",
    "BinaryCrossEntropy", "BinaryCrossEntropyWithLogits", "HingeLoss", "BackwardHookGate",
    "BackwardHookSlot",
    # convolution
    "conv1d", "conv2d", "unfold", "fold", "ConvNd", "Unfold", "Fold",
    "conv_transpose1d", "conv_transpose2d", "ConvTransposeNd", "pad",
    "conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d",
    # pooling
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_max_pool2d", "MaxPool", "AvgPool", "AdaptiveAvgPool",
    "AdaptiveMaxPool", "max_unpool1d", "max_unpool2d", "MaxUnpool",
    # recurrent cells (one step)
    "rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell", "RNNCellStep", "LSTMCellStep",
    "GRUCellStep",
    # group / instance normalisation
    "group_norm", "instance_norm", "GroupNorm", "InstanceNorm",
    # channel dropout
    "dropout1d", "dropout2d", "FeatureDropout",
    # resampling
    "interpolate", "UpsampleNearest", "UpsampleLinear",
    # multi-head attention (composed from linear, matmul, softmax and SDPA)
    "multi_head_attention_forward",
    # attention
    "scaled_dot_product_attention", "ScaledDotProductAttention",
    # more activations (fused Functions) and one_hot
    "softmin", "logsigmoid", "log_sigmoid", "hardtanh", "hardtanh_", "relu6", "hardswish",
    "hardsigmoid", "mish", "glu", "prelu", "selu", "selu_", "celu", "celu_", "softsign",
    "tanhshrink", "threshold", "threshold_", "one_hot", "LogSigmoid", "Hardtanh",
    "Hardswish", "Hardsigmoid", "Mish", "GLU", "PReLU", "ScaledElu", "Softsign",
    "Tanhshrink", "Threshold",
    # norms and distances
    "normalize", "cosine_similarity", "pairwise_distance", "pdist", "Normalize",
    "CosineSimilarity", "PairwiseDistance", "PDist",
    # more losses (their Functions live in handgrad.nn.functional.loss and .ctc)
    "kl_div", "huber_loss", "soft_margin_loss", "margin_ranking_loss", "hinge_embedding_loss",
    "triplet_margin_loss", "cosine_embedding_loss", "poisson_nll_loss", "gaussian_nll_loss",
    "multi_margin_loss", "multilabel_soft_margin_loss", "ctc_loss", "CTCLoss",
    # bilinear map, sub-pixel rearrangement
    "bilinear", "pixel_shuffle", "pixel_unshuffle", "embedding_bag", "EmbeddingBag",
    "alpha_dropout", "feature_alpha_dropout",
    # spatial transformers
    "affine_grid", "grid_sample", "GridSample",
]
