"""handgrad.nn: modules, layers, losses and initialisation, named like PyTorch's nn.

    module.py         Module, Parameter
    hooks.py          RemovableHandle and the bookkeeping of module backward hooks
    container.py      Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict
    linear.py         Linear, Bilinear, Identity, Flatten, Unflatten
    activation.py     ReLU, LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh, Softplus, Softmax,
                      LogSoftmax, Softmin, LogSigmoid, Hardtanh, ReLU6, Hardswish,
                      Hardsigmoid, Mish, GLU, PReLU, SELU, CELU, Softsign, Tanhshrink,
                      Threshold
    distance.py       CosineSimilarity, PairwiseDistance
    normalization.py  BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, InstanceNorm1d/2d
    dropout.py        Dropout, Dropout1d, Dropout2d, AlphaDropout, FeatureAlphaDropout
    sparse.py         Embedding, EmbeddingBag
    upsampling.py     Upsample, UpsamplingNearest2d, UpsamplingBilinear2d
    pixelshuffle.py   PixelShuffle, PixelUnshuffle
    conv.py           Conv1d, Conv2d, Conv3d (padding modes zeros, reflect, replicate,
                      circular), ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
    pooling.py        MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool1d/2d, AdaptiveMaxPool2d,
                      MaxUnpool1d/2d
    padding.py        ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad (1d/2d)
    loss.py           MSELoss, L1Loss, SmoothL1Loss, HuberLoss, NLLLoss, CrossEntropyLoss,
                      BCELoss, BCEWithLogitsLoss, HingeLoss, KLDivLoss, SoftMarginLoss,
                      MarginRankingLoss, HingeEmbeddingLoss, TripletMarginLoss,
                      CosineEmbeddingLoss, PoissonNLLLoss, GaussianNLLLoss,
                      MultiMarginLoss, MultiLabelSoftMarginLoss, CTCLoss
    mlp.py            MLP (the builder)
    init.py           nn.init: kaiming, xavier, normal, uniform, trunc_normal, ...
    rnn.py            RNN (tanh, relu), LSTM (proj_size), GRU over whole sequences, RNNBase
    rnn_cell.py       RNNCell, LSTMCell, GRUCell (one time step each)
    attention.py      MultiheadAttention; SinusoidalPositionalEncoding and
                      LearnedPositionalEncoding (torch has neither)
    transformer.py    Transformer, TransformerEncoder/Decoder and their layers
    utils/            nn.utils: clip_grad_norm_, clip_grad_value_; nn.utils.rnn
                      (PackedSequence, pack/pad_packed_sequence, pack/pad_sequence, ...)
    functional/       nn.functional (F): the fused Functions behind the layers
    parallel/         DistributedDataParallel; SyncBatchNorm (batch statistics over
                      every process of a group)

Left out here: adaptive pooling of volumes; nested tensors and torch's inference fast
paths for attention (the values are matched, see transformer.py).
"""

from handgrad.nn import functional, init, utils  # noqa: F401  (nn.init etc. as in torch)
from handgrad.nn.activation import (
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softsign,
    Tanh,
    Tanhshrink,
    Threshold,
)
from handgrad.nn.attention import (
    LearnedPositionalEncoding,
    MultiheadAttention,
    SinusoidalPositionalEncoding,
)
from handgrad.nn.container import (
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    Sequential,
)
from handgrad.nn.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
from handgrad.nn.distance import CosineSimilarity, PairwiseDistance
from handgrad.nn.dropout import (
    AlphaDropout,
    Dropout,
    Dropout1d,
    Dropout2d,
    FeatureAlphaDropout,
)
from handgrad.nn.hooks import RemovableHandle
from handgrad.nn.linear import Bilinear, Flatten, Identity, Linear, Unflatten
from handgrad.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CrossEntropyLoss,
    CTCLoss,
    GaussianNLLLoss,
    HingeEmbeddingLoss,
    HingeLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MarginRankingLoss,
    MSELoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    NLLLoss,
    PoissonNLLLoss,
    SmoothL1Loss,
    SoftMarginLoss,
    TripletMarginLoss,
)
from handgrad.nn.mlp import MLP
from handgrad.nn.module import Module, Parameter
from handgrad.nn.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    LayerNorm,
)
from handgrad.nn.padding import (
    CircularPad1d,
    CircularPad2d,
    ConstantPad1d,
    ConstantPad2d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReplicationPad1d,
    ReplicationPad2d,
    ZeroPad1d,
    ZeroPad2d,
)
from handgrad.nn.parallel.sync_batchnorm import SyncBatchNorm
from handgrad.nn.pixelshuffle import PixelShuffle, PixelUnshuffle
from handgrad.nn.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    MaxUnpool1d,
    MaxUnpool2d,
)
from handgrad.nn.rnn import GRU, LSTM, RNN, RNNBase
from handgrad.nn.rnn_cell import GRUCell, LSTMCell, RNNCell, RNNCellBase
from handgrad.nn.sparse import Embedding, EmbeddingBag
from handgrad.nn.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from handgrad.nn.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = [
    "RNNBase", "RNN", "LSTM", "GRU",
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear", "Identity",
    "Flatten", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softplus",
    "Softmax", "LogSoftmax", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout",
    "Embedding", "MSELoss", "L1Loss", "SmoothL1Loss", "NLLLoss", "CrossEntropyLoss",
    "BCELoss", "BCEWithLogitsLoss", "HingeLoss", "MLP", "RemovableHandle", "init", "utils",
    "functional", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "Unflatten",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxUnpool1d", "MaxUnpool2d",
    "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d",
    "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d",
    "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "Dropout1d", "Dropout2d",
    "SyncBatchNorm",
    "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d",
    "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
    "MultiheadAttention", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding",
    "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "Softmin", "LogSigmoid", "Hardtanh", "ReLU6", "Hardswish", "Hardsigmoid", "Mish", "GLU",
    "PReLU", "SELU", "CELU", "Softsign", "Tanhshrink", "Threshold",
    "CosineSimilarity", "PairwiseDistance",
    "KLDivLoss", "HuberLoss", "SoftMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
    "TripletMarginLoss", "CosineEmbeddingLoss", "PoissonNLLLoss", "GaussianNLLLoss",
    "MultiMarginLoss", "MultiLabelSoftMarginLoss", "CTCLoss",
    "ParameterList", "ParameterDict", "Bilinear", "PixelShuffle", "PixelUnshuffle",
    "EmbeddingBag", "AlphaDropout", "FeatureAlphaDropout",
    "Conv3d", "ConvTranspose3d", "MaxPool3d", "AvgPool3d",
]
