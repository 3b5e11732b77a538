#!/usr/bin/env bash
# The GPU check (make gpu-check): everything that needs CUDA, in one short run, for a
# machine with a CUDA build of torch. Uses that machine's own python3 (PYTHON=...) with
# this checkout on PYTHONPATH, so it needs no install and no network.
#
#   0. cuda: torch sees a CUDA device (if not, the other steps are skipped)
#   1. pytest -m cuda: the hand-marked CUDA tests plus every `device`-fixture test's cuda
#      run (tests/conftest.py marks them), i.e. every registered op on CUDA vs torch
#   2. handgrad gradcheck --device cuda: the registry's checks on the GPU
#   3. bench core / mlp / cnn / rnn / transformer --device cuda --quick, figures as JSON
#      under $OUT (or ./gpu-check-out) for docs/benchmarks.md
# Each step has its own time limit (`timeout`), and the whole run stays within
# BUDGET seconds (default 470: under 8 minutes); a step that would start past it is
# skipped. $OUT/summary.txt gets each step's status and seconds.
# Exit status: non-zero when any step failed, timed out or was skipped.
set -u
PYTHON=${PYTHON:-python3}
OUT=${OUT:-gpu-check-out}
BUDGET=${BUDGET:-470}
mkdir -p "$OUT"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
start=$SECONDS
status=0
skip_reason=""

# step NAME LIMIT_SECONDS COMMAND...: run COMMAND for at most LIMIT seconds (less if the
# budget is nearly spent) and record "status seconds name" in the summary.
step() {
  local name=$1 limit=$2 left=$((BUDGET - (SECONDS - start)))
  shift 2
  ((left < limit)) && limit=$left
  if [[ -n $skip_reason ]] || ((limit <= 0)); then
    printf '%-22s %5s  %s\n' "skipped (${skip_reason:-out of time})" - "$name" >> "$SUMMARY"
    status=1
    return 1
  fi
  echo "== $name: $* (limit ${limit}s)"
  local began=$SECONDS rc=0 result=ok
  timeout -k 5 "$limit" "$@" || rc=$?
  if ((rc == 124 || rc == 137)); then
    result="TIMEOUT after ${limit}s"
  elif ((rc != 0)); then
    result="FAILED (exit $rc)"
  fi
  [[ $result == ok ]] || { echo "== $name: $result"; status=1; }
  printf '%-22s %5d  %s\n' "$result" $((SECONDS - began)) "$name" >> "$SUMMARY"
  [[ $result == ok ]]
}

step cuda 60 "$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" \
  || skip_reason="no CUDA"
step "pytest -m cuda" 200 "$PYTHON" -m pytest -q -m cuda -p no:cacheprovider
step "gradcheck cuda" 90 "$PYTHON" -m handgrad gradcheck --device cuda --json "$OUT/gradcheck-cuda.json"
for bench in core mlp cnn rnn transformer; do
  step "bench $bench" 40 "$PYTHON" -m handgrad bench "$bench" --device cuda --quick \
    --json "$OUT/bench-$bench-cuda.json"
done
printf '%-22s %5d  %s\n' "$( ((status == 0)) && echo ok || echo FAILED)" \
  $((SECONDS - start)) "total" >> "$SUMMARY"
echo "== summary ($SUMMARY)"
cat "$SUMMARY"
exit $status
