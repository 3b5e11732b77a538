"""Benchmarks, and nothing else: side by side against PyTorch (core, mlp), against
micrograd (scalar), and the DataLoader's worker processes (data). Together with the
oracle and registry in handgrad/testing, the only part of the package that may call
torch's NN-level functions.

Every benchmark times handgrad and its PyTorch equivalent in the same process,
alternating, after warm-up, and reports the median ratio torch_time / handgrad_time
(above 1.0: handgrad is faster). `timing.compare` does that for all of them.

Left out: correctness checks (handgrad/testing: gradcheck, the oracle, the op registry).
"""
