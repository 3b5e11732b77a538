"""glibc's malloc, tuned for training loops: `tune_allocator()`.

A training step frees and reallocates the same multi-MB temporaries (columns,
activations, gradients) every step. With glibc's defaults a freed block above the
dynamic mmap threshold goes back to the system (munmap, or a heap trim) and the next
step faults the same pages in again: thousands of page faults a LeNet-5 step, measured
as the larger part of the gap to torch in `handgrad bench cnn` (docs/benchmarks.md).
`tune_allocator()` sets two of glibc's knobs through `mallopt`:

    M_MMAP_THRESHOLD = 32 MiB   blocks below this come from the heap, not from mmap
    M_TRIM_THRESHOLD = 1 GiB    freed heap is kept for reuse up to this much

so the process keeps and reuses its freed memory (its resident size stays at its peak
instead of shrinking between steps). The `handgrad` command calls it at start; a
program that imports handgrad may call it too. It is a no-op (returning False) where
the C library is not glibc (macOS, Windows, musl) or when HANDGRAD_MALLOC_TUNING=0.
Standard library only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_allocator"]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 1 << 30


def tune_allocator() -> bool:
    """Keep freed memory for reuse (see the module docstring); True when it applied."""
    if os.environ.get("HANDGRAD_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only  # noqa: B018
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
