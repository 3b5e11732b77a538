"""Side-by-side benchmarks against PyTorch and the oracle that checks ops against torch;
the only part of the package that may call torch's NN-level functions.

Every benchmark times handgrad and its PyTorch equivalent in the same process,
alternating, after warm-up, and reports the median ratio torch_time / handgrad_time
(above 1.0: handgrad is faster). `timing.compare` does that for all of them.
"""
