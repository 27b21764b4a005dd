#!/usr/bin/env bash
# The test suite under every condition that changes the CPU's floating-point kernels here: 1 and 2 threads
# (OMP_NUM_THREADS), and each instruction set PyTorch can dispatch to on this CPU (ATEN_CPU_CAPABILITY:
# default = scalar, avx2, avx512 where the CPU has them). Every test must pass under each (docs/testing.md).
#   bash scripts/test_matrix.sh [pytest arguments]     # e.g. tests/test_train.py -x
# Run it inside the activated .venv, on an otherwise idle machine: it is the suite len(conditions) times.
set -uo pipefail
cd "$(dirname "$0")/.."
capabilities=(default)
grep -qw avx2 /proc/cpuinfo && capabilities+=(avx2)
grep -qw avx512f /proc/cpuinfo && capabilities+=(avx512)  # asking for a set the CPU lacks crashes
failed=()
for threads in 1 2; do
  for capability in "${capabilities[@]}"; do
    echo "== OMP_NUM_THREADS=$threads ATEN_CPU_CAPABILITY=$capability"
    OMP_NUM_THREADS=$threads ATEN_CPU_CAPABILITY=$capability python -m pytest -q -p no:cacheprovider "$@" \
      | tail -n 3 || failed+=("threads=$threads capability=$capability")
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'failed under: %s\n' "${failed[@]}"
  exit 1
fi
echo "every condition passed"
