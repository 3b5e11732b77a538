#!/usr/bin/env bash
# The GPU check (make gpu-check): everything that needs CUDA, in one short run, for a
# machine with a CUDA build of torch. Uses that machine's own python3 (PYTHON=...) with
# this checkout on PYTHONPATH, so it needs no install and no network.
#
#   1. pytest -m cuda: the hand-marked CUDA tests plus every `device`-fixture test's cuda
#      run (tests/conftest.py marks them), i.e. every registered op on CUDA vs torch
#   2. handgrad gradcheck --device cuda: the registry's checks on the GPU
#   3. bench core / mlp / cnn --device cuda --quick, figures as JSON under $OUT (or
#      ./gpu-check-out) for docs/benchmarks.md
# Exit status: non-zero when any step failed (every step still runs).
set -u
PYTHON=${PYTHON:-python3}
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
status=0
step() { echo "== $*"; "$@" || { echo "== FAILED: $*"; status=1; }; }
step "$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
step "$PYTHON" -m pytest -q -m cuda -p no:cacheprovider
step "$PYTHON" -m handgrad gradcheck --device cuda --json "$OUT/gradcheck-cuda.json"
for bench in core mlp cnn; do
  step "$PYTHON" -m handgrad bench "$bench" --device cuda --quick --json "$OUT/bench-$bench-cuda.json"
done
exit $status
