"""torch's dtype names at handgrad's top level (`handgrad.float32`, `handgrad.float`,
`handgrad.long`, ...), with devices, sizes and the default dtype. They are torch's own
objects, so `hg.float32 is torch.float32`.

This module rebinds `float`, `int` and `bool` on purpose (torch's names) and so holds
nothing else. What it leaves out: everything that computes.
"""

import torch

__all__ = [
    "float16", "bfloat16", "float32", "float64", "float", "double", "half", "int8",
    "int16", "int32", "int64", "long", "int", "uint8", "bool", "get_default_dtype",
    "set_default_dtype", "device", "dtype", "Size",
]

float16 = half = torch.float16
bfloat16 = torch.bfloat16
float32 = float = torch.float32  # noqa: A001 -- torch's names, on purpose
float64 = double = torch.float64
int8, int16, uint8 = torch.int8, torch.int16, torch.uint8
int32 = int = torch.int32  # noqa: A001
int64 = long = torch.int64
bool = torch.bool  # noqa: A001
device, dtype, Size = torch.device, torch.dtype, torch.Size
get_default_dtype, set_default_dtype = torch.get_default_dtype, torch.set_default_dtype
