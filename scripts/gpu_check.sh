#!/usr/bin/env bash
# The GPU checks of issue 12, prepared to run in two short calls on a machine with a CUDA device and a Python
# that has PyTorch, torchvision, pandas, matplotlib, typer, tqdm, pyyaml and pytest (no DVC needed; nothing is
# installed):
#   bash scripts/gpu_check.sh tests [OUT]   # tests/test_cuda.py: the GPU paths, and every stage of the smoke pipeline
#   bash scripts/gpu_check.sh bench [OUT]   # ResNet-20/18 throughput, landscape, EL2N and LeNet benchmarks on cuda
# Every step has its own time limit: `tests` at most 5.5 minutes, `bench` at most 6.5, so both parts and a machine's
# start fit in 15 minutes of device time. At most 4 logs go to OUT (default: $OUT, else gpu-check/).
# The numbers go into docs/benchmarks.md with the GPU's name, the software versions and the date.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: bash scripts/gpu_check.sh tests|bench [OUT]}
out=${2:-${OUT:-gpu-check}}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

step() {  # step LOG SECONDS COMMAND...: run, keep the output in LOG, never stop the script
  local log=$1 seconds=$2
  shift 2
  echo "== $* (limit ${seconds}s)" | tee -a "$out/$log"
  timeout "$seconds" "$@" 2>&1 | tr '\r' '\n' | grep -v '^\s*$' | grep -v 'step/s\]' >>"$out/$log"
  echo "== exit ${PIPESTATUS[0]}" | tee -a "$out/$log"
}

case $part in
  tests)
    { nvidia-smi; "$python" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'; } \
      >"$out/device.txt" 2>&1
    step test_cuda.log 330 "$python" -m pytest -q -p no:cacheprovider --durations=5 tests/test_cuda.py
    ;;
  bench)
    step bench_resnet.log 190 "$python" bench/bench_resnet.py --device cuda --models resnet20 --steps 100
    step bench_resnet.log 50 "$python" bench/bench_resnet.py --device cuda --models resnet18 --steps 50 --no-compile
    step bench_batched.log 40 "$python" bench/bench_landscape.py --device cuda --points 256 --examples 10000
    step bench_batched.log 50 "$python" bench/bench_el2n.py --device cuda --model resnet20 --channels 3 --side 32 \
      --networks 4 --steps 100 --examples 10000 --repeats 1
    step bench_train.log 60 "$python" bench/bench_train.py --device cuda --steps 500 --repeats 1
    ;;
  *)
    echo "error: part must be tests or bench, got '$part'" >&2
    exit 2
    ;;
esac
