"""Weight initialisation schemes (PyTorch's nn.init names, arguments and arithmetic).

Each function fills a tensor (a Parameter, any handgrad Tensor, or a torch.Tensor) in
place, without recording anything for backward, and returns it. The random draws are
the same calls, in the same order, as torch's, so with the same seed a handgrad layer
starts from exactly the weights of its PyTorch twin.

    gain = calculate_gain(nonlinearity, param)      the std multiplier that keeps
                                                    activations' variance steady
    kaiming (He):   std = gain / sqrt(fan)           fan = fan_in or fan_out
    xavier (Glorot): std = gain sqrt(2 / (fan_in + fan_out))
    a uniform(-b, b) has std b / sqrt(3), so the uniform variants use b = sqrt(3) std.
    orthogonal_:     Q of the QR of a standard normal matrix, its columns' signs fixed
                     so Q is uniform (Haar) over orthogonal matrices; W W^T = gain^2 I
                     (or W^T W, for more rows than columns)
    eye_, dirac_:    the identity of a Linear / of a Conv (per group)
    sparse_:         N(0, std^2) with ceil(sparsity * rows) zeros in each column

Left out: the deprecated names without the trailing underscore (uniform, normal, ...).
"""

from __future__ import annotations

import math
import warnings

import torch

from handgrad._tensor import to_torch

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_",
    "zeros_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
    "orthogonal_", "eye_", "dirac_", "sparse_",
]


def _raw(tensor) -> torch.Tensor:
    return to_torch(tensor, "init")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity: 1 for linear/conv/sigmoid, 5/3 for tanh,
    sqrt(2) for relu, sqrt(2 / (1 + slope**2)) for leaky_relu (slope = param, default
    0.01), 3/4 for selu."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, int | float):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (the
    receptive field is the product of the dims after the first two, 1 for Linear)."""
    shape = _raw(tensor).shape
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than "
                         f"2 dimensions (got shape {tuple(shape)})")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _calculate_correct_fan(tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with values drawn from U(a, b)."""
    _raw(tensor).uniform_(a, b, generator=generator)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with values drawn from N(mean, std**2)."""
    _raw(tensor).normal_(mean, std, generator=generator)
    return tensor


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None):
    """Fill with N(mean, std**2) values restricted to [a, b], by rejection sampling
    (torch's algorithm, hence torch's draws): when [a, b] holds more than 30% of the
    mass, draw normals and redraw those outside; otherwise draw x uniformly in [a, b]
    and keep it with probability pdf(x) / pdf(mode), redrawing the rest."""
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The "
                      "distribution of values may be incorrect.", stacklevel=2)

    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    raw = _raw(tensor)
    mass = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std)
    if mass > 0.3:
        low = raw.new_tensor(a, device="cpu").item()  # the bounds in the tensor's dtype
        high = raw.new_tensor(b, device="cpu").item()
        result = raw.normal_(mean, std, generator=generator)
        while (outside := (result < low) | (result > high)).any():
            redraw = torch.empty_like(result).normal_(mean, std, generator=generator)
            result = torch.where(outside, redraw, result)
    else:
        mode = max(a, min(mean, b))
        log_peak = -0.5 * ((mode - mean) / std) ** 2

        def log_density_ratio(x):  # log(pdf(x) / pdf(mode)), in place in x
            return x.sub_(mean).div_(std).pow_(2).mul_(-0.5).sub_(log_peak)

        candidates, accept = torch.empty_like(raw), torch.empty_like(raw)
        result = raw.uniform_(a, b, generator=generator)
        log_density_ratio(candidates.copy_(raw))
        pending = accept.uniform_(generator=generator).log_().gt(candidates)
        while pending.any():
            candidates.uniform_(a, b, generator=generator)
            result = torch.where(pending, candidates, result)
            log_density_ratio(candidates)
            rejected = accept.uniform_(generator=generator).log_().gt(candidates)
            pending = torch.where(pending, rejected, pending)
    if result is not raw:
        raw.copy_(result)
    return tensor


def constant_(tensor, val: float):
    """Fill with `val`."""
    _raw(tensor).fill_(val)
    return tensor


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    _raw(tensor).zero_()
    return tensor


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """Glorot uniform: U(-b, b), b = gain sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """Glorot normal: N(0, std**2), std = gain sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity) -> float | None:
    if 0 in _raw(tensor).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None):
    """He uniform: U(-b, b), b = sqrt(3) gain / sqrt(fan) (`a`: the leaky_relu slope)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None):
    """He normal: N(0, std**2), std = gain / sqrt(fan)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain: float = 1, generator=None):
    """A (semi-)orthogonal matrix, scaled by gain; dims after the first are flattened.

    Draw A (rows x cols) from N(0, 1); for a wide A use A^T. A = Q R; multiplying each
    column of Q by sign(R_ii) makes Q Haar-distributed (Mezzadri, 2007). Then the rows
    (wide) or the columns (tall) of W are orthonormal, times gain. torch's draws and
    arithmetic, so the same seed gives torch's tensor."""
    raw = _raw(tensor)
    if raw.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if raw.numel() == 0:
        return tensor
    rows = raw.shape[0]
    cols = raw.numel() // rows
    flattened = raw.new_empty((rows, cols)).normal_(0, 1, generator=generator)
    if rows < cols:
        flattened.t_()
    q, r = torch.linalg.qr(flattened)
    q *= torch.diag(r, 0).sign()
    if rows < cols:
        q.t_()
    raw.view_as(q).copy_(q)
    raw.mul_(gain)
    return tensor


def eye_(tensor):
    """The identity matrix of a 2-D tensor (ones on the main diagonal of a rectangle)."""
    raw = _raw(tensor)
    if raw.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    raw.copy_(torch.eye(*raw.shape, dtype=raw.dtype, device=raw.device))
    return tensor


def dirac_(tensor, groups: int = 1):
    """The Dirac delta of a conv weight (out, in, *kernel) with 3, 4 or 5 dims: in each
    of `groups` groups of out // groups output channels, output channel d of the group
    copies input channel d through the kernel's centre (index size // 2 per spatial
    dim), for d < min(out // groups, in); everything else is zero."""
    raw = _raw(tensor)
    if raw.ndim not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if raw.shape[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = raw.shape[0] // groups
    channels = min(out_per_group, raw.shape[1])
    centre = tuple(size // 2 for size in raw.shape[2:])
    raw.zero_()
    for group in range(groups):
        for d in range(channels):
            raw[(group * out_per_group + d, d, *centre)] = 1
    return tensor


def sparse_(tensor, sparsity: float, std: float = 0.01, generator=None):
    """A sparse 2-D matrix (Martens, 2010): N(0, std^2) values, then in each column the
    rows of the first ceil(sparsity * rows) entries of a random permutation set to zero.
    As torch, the values use `generator` but the permutations use the global generator."""
    raw = _raw(tensor)
    if raw.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = raw.shape
    num_zeros = math.ceil(sparsity * rows)
    raw.normal_(0, std, generator=generator)
    for column in range(cols):
        raw[torch.randperm(rows)[:num_zeros], column] = 0
    return tensor
