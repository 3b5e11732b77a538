"""torch's runtime switches and constants, under handgrad's names.

handgrad's arrays are torch tensors, so the switches that steer torch's kernels steer
handgrad's too: `handgrad.cuda` (device management: is_available, device_count,
manual_seed_all, synchronize...), `handgrad.backends` (cudnn.deterministic, mps...),
`handgrad.random` (get_rng_state / set_rng_state), `use_deterministic_algorithms`, `seed`,
`initial_seed`, `set_printoptions` (handgrad prints through torch's formatter), and the
numeric constants and type information (`inf`, `nan`, `pi`, `e`, `finfo`, `iinfo`). A torch
script that sets them keeps working when its imports are swapped. None of them computes
a gradient.
"""

from __future__ import annotations

import math

import torch
import torch.backends as backends
import torch.cuda as cuda
import torch.random as random

__all__ = ["cuda", "backends", "random", "use_deterministic_algorithms", "seed",
           "initial_seed", "set_printoptions", "finfo", "iinfo", "inf", "nan", "pi", "e",
           "numel", "is_floating_point", "set_float32_matmul_precision",
           "get_float32_matmul_precision"]

use_deterministic_algorithms = torch.use_deterministic_algorithms
seed = torch.seed
initial_seed = torch.initial_seed
set_printoptions = torch.set_printoptions
# TF32 matmuls on GPUs that have them ("high"), torch's switch, which handgrad's kernels obey
set_float32_matmul_precision = torch.set_float32_matmul_precision
get_float32_matmul_precision = torch.get_float32_matmul_precision
finfo = torch.finfo
iinfo = torch.iinfo
inf, nan, pi, e = math.inf, math.nan, math.pi, math.e


def numel(x) -> int:
    """The number of elements of a handgrad Tensor (torch.numel)."""
    return x.numel()


def is_floating_point(x) -> bool:
    return x.is_floating_point()
